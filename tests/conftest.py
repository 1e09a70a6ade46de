"""Shared fixtures. Tests import the fake `sleepy` pipeline plugin from tests/plugins."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PLUGINS = TESTS / "plugins"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"
ICT_HEAD = SHARED_DATA / "ict_facekit" / "ict_head.npz"

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment for a `t2bs` subprocess that loads the test plugins."""
    env = dict(os.environ)
    env["T2BS_PLUGINS"] = "t2bs_sleepy"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH", "")]))
    return env


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
