"""Shared fixtures. Tests import the fake `sleepy` pipeline plugin from tests/plugins."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

TESTS = Path(__file__).resolve().parent
PLUGINS = TESTS / "plugins"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"
ICT_HEAD = Path(os.environ.get("T2BS_ICT_HEAD") or SHARED_DATA / "ict_facekit" / "ict_head.npz")  # as ict_fixture

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment for a `t2bs` subprocess that loads the test plugins."""
    env = dict(os.environ)
    env["T2BS_PLUGINS"] = "t2bs_sleepy"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH", "")]))
    return env


BENCH = TESTS.parent / "bench"


def load_bench(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is scripts, not a package); loaded once per test session."""
    if name in sys.modules:
        return sys.modules[name]
    # Benches take shared helpers from each other by plain import (bench_fit_step from bench_rasterizer).
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


GLTF_VALIDATOR = TESTS.parent / "tools" / "gltf-validator"


def validate_gltf(path: Path) -> dict:  # type: ignore[type-arg]
    """The Khronos glTF validator's report on `path` (installed by scripts/test.sh with npm)."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    assert node is not None, "node is needed to run the glTF validator"
    assert (GLTF_VALIDATOR / "node_modules" / "gltf-validator").is_dir(), (
        f"the glTF validator is not installed: npm ci --prefix {GLTF_VALIDATOR}"
    )
    result = subprocess.run(
        [node, str(GLTF_VALIDATOR / "validate.mjs"), str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    report: dict = json.loads(result.stdout)  # type: ignore[type-arg]
    return report
