"""Blender tests: run through the `bpy` wheel by scripts/test_blender.sh, not by the main suite.

Harmless elsewhere: without bpy every test module here is left uncollected (the main run should still
pass --ignore=tests/blender, so that it never even looks). With bpy, Blender's user folder is pointed at
an empty temporary folder before bpy is first imported, so installing the extension touches nothing of
the user's.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).resolve().parent / "plugins"
BACKEND_TEST_PLUGINS = REPO / "tests" / "plugins"
HAVE_BPY = importlib.util.find_spec("bpy") is not None
EXTENSION_MODULE = "bl_ext.user_default.t2bs_blender"

if not HAVE_BPY:
    collect_ignore_glob = ["test_*.py"]
else:
    # Must happen before `import bpy` anywhere in this process: Blender reads it once, at start-up.
    _USER = tempfile.mkdtemp(prefix="t2bs-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER


def backend_python() -> str | None:
    """The Python of the backend's environment ($T2BS_BACKEND_PYTHON, else the repo's .venv)."""
    configured = os.environ.get("T2BS_BACKEND_PYTHON") or str(REPO / ".venv" / "bin" / "python")
    path = Path(configured)
    if not path.is_absolute():
        path = REPO / path
    return str(path) if path.exists() else None


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ for a backend subprocess that loads the test plugins (sleepy and fakegen)."""
    python = backend_python()
    if python is None:
        pytest.skip("no backend Python: set T2BS_BACKEND_PYTHON or run `bash scripts/setup.sh`")
    monkeypatch.setenv("T2BS_PLUGINS", "t2bs_sleepy,t2bs_fakegen")
    path = os.pathsep.join([str(BACKEND_TEST_PLUGINS), str(PLUGINS), str(REPO), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path.rstrip(os.pathsep))
    return dict(os.environ)


# The acts of the real-backend bundle: a jaw, a split act and a gaze whose halves differ in stem.
ICT_ACTS = ["jawOpen", "eyeBlink", "mouthSmile", "eyeLookLeft"]


@pytest.fixture(scope="session")
def ict_backend_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle the real backend wrote: `t2bs blendshapes` on ICT-FaceKit expressions (24,591 vertices)."""
    python = backend_python()
    assert python is not None, "the backend's Python is needed: bash scripts/setup.sh, or set T2BS_BACKEND_PYTHON"
    root = tmp_path_factory.mktemp("ict-backend-bundle")
    script = (
        "import sys; from t2bs.testing.ict_blendshapes import write_ict_registered; "
        f"write_ict_registered(sys.argv[1], {ICT_ACTS!r}, frames=4)"
    )
    subprocess.run([python, "-c", script, str(root / "in")], check=True, timeout=120)
    subprocess.run(
        [python, "-m", "t2bs", "blendshapes", "--asset", str(root / "in" / "head.ply"),
         "--registered", str(root / "in" / "registered"), "--out", str(root / "bundle"), "--quiet"],
        check=True, timeout=240,
    )  # fmt: skip
    return root / "bundle"


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension built by build.py with Blender's own builder and validator."""
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [sys.executable, str(REPO / "build.py"), "--out", str(out), "--build-dir", str(build)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    zip_path = Path(result.stdout.strip().splitlines()[-1])
    assert zip_path.is_file() and zip_path.parent == out
    return zip_path


@pytest.fixture(scope="session")
def addon(extension_zip: Path) -> Any:
    """The extension installed from its zip into the isolated user folder, enabled; its module."""
    import bpy

    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    module = importlib.import_module(EXTENSION_MODULE)
    yield module
    module.runtime.RUNTIME.shutdown()


@pytest.fixture
def clean_scene(addon: Any) -> Any:
    """An empty scene for each test (the add-on stays enabled)."""
    import bpy

    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    for mesh in list(bpy.data.meshes):
        bpy.data.meshes.remove(mesh)
    for action in list(bpy.data.actions):
        bpy.data.actions.remove(action)
    return bpy.context.scene


_EXIT_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave bpy 4.2 without interpreter finalization: after a glTF export, its teardown segfaults.

    Seen with the bpy 4.2.23 wheel: `import bpy; bpy.ops.export_scene.gltf(...)` then a normal exit
    crashes with SIGSEGV (a plain exit without the export does not; 4.5 and 5.0 do not). Rig Selected Mesh
    exports a GLB, so its test would turn a passing run into exit code 139. Everything of ours is already
    stopped by fixture teardown; pytest has written its report.
    """
    bpy = sys.modules.get("bpy")
    if bpy is not None and tuple(bpy.app.version[:2]) == (4, 2):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS.get("status", 0))
