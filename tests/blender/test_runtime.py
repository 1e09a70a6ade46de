"""The add-on's main-thread glue with a real backend: operators, `runtime.tick`, import of the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def runtime(addon: Any, backend_env: dict[str, str], tmp_path: Path) -> Any:
    """The add-on's RUNTIME, its preferences pointed at the backend .venv and a scratch output folder."""
    from tests.blender.conftest import backend_python

    preferences = bpy.context.preferences.addons[addon.__name__].preferences
    preferences.backend_mode = "SUBPROCESS"
    preferences.backend_python = backend_python() or ""
    preferences.output_dir = str(tmp_path / "bundles")
    runtime = addon.runtime.RUNTIME
    yield runtime
    runtime.shutdown()
    runtime.job = addon.bridge.JobState()


def tick_until_idle(runtime: Any, timeout: float = 30.0) -> None:
    """Call the timer callback as Blender's event loop would, until it unregisters itself (returns None)."""
    deadline = time.monotonic() + timeout
    while runtime.tick() is not None:
        assert time.monotonic() < deadline, runtime.job
        time.sleep(0.05)


def test_run_result_is_imported_on_the_main_thread(clean_scene: Any, runtime: Any, tmp_path: Path) -> None:
    out = tmp_path / "bundles" / "gen"
    preferences = prefs_of(runtime)
    runtime.start_run(preferences, "t2bs_test_generate", {"prompt": "a test orc", "shapes": 4}, out, eigen_count=0)
    assert runtime.job.running and bpy.app.timers.is_registered(runtime_tick(runtime))
    seen_progress = False
    deadline = time.monotonic() + 30
    while runtime.tick() is not None:
        seen_progress |= 0.0 < runtime.job.overall < 1.0
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert runtime.job.error == "", runtime.job.error
    head = bpy.data.objects[runtime.imported]
    assert head["t2bs_prompt"] == "a test orc" and head["t2bs_bundle"] == str(out.resolve())
    assert [k.name for k in head.data.shape_keys.key_blocks][1:] == [
        "jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft"
    ]  # fmt: skip
    assert "imported" in runtime.job.message and runtime.job.overall == 1.0


def runtime_tick(runtime: Any) -> Any:
    import sys

    return sys.modules[type(runtime).__module__].tick


def prefs_of(runtime: Any) -> Any:
    """The add-on's preferences (the package is the runtime module's parent)."""
    return bpy.context.preferences.addons[type(runtime).__module__.rsplit(".", 1)[0]].preferences


def test_unusable_result_and_stage_errors_reach_the_panel(clean_scene: Any, runtime: Any, tmp_path: Path) -> None:
    preferences = prefs_of(runtime)
    # The sleepy pipeline finishes without a model.npz: the import fails with one clear line.
    runtime.start_run(preferences, "sleepy", {"stages": 1, "step_s": 0.0}, tmp_path / "sleepy")
    tick_until_idle(runtime)
    assert runtime.job.error_code == "input" and "has no model.npz" in runtime.job.error

    runtime.start_run(preferences, "sleepy", {"fail_in": "s0", "step_s": 0.0}, tmp_path / "fail")
    tick_until_idle(runtime)
    assert runtime.job.error_code == "internal" and "broke on purpose" in runtime.job.error


def test_cancel_operator_and_backend_crash(clean_scene: Any, runtime: Any, tmp_path: Path) -> None:
    preferences = prefs_of(runtime)
    runtime.start_run(preferences, "sleepy", {"stages": 1, "steps": 500, "step_s": 0.05}, tmp_path / "c")
    while runtime.job.overall == 0.0:
        runtime.tick()
        time.sleep(0.02)
    assert bpy.ops.t2bs.cancel() == {"FINISHED"}
    tick_until_idle(runtime)
    assert runtime.job.error_code == "cancelled" and not runtime.job.running

    runtime.start_run(preferences, "sleepy", {"stages": 1, "steps": 500, "step_s": 0.05}, tmp_path / "k")
    runtime.backend.kill()
    tick_until_idle(runtime)
    assert runtime.job.error_code == "backend" and "stopped" in runtime.job.error
    # The next run starts a fresh backend by itself.
    runtime.start_run(preferences, "sleepy", {"stages": 1, "step_s": 0.0}, tmp_path / "again")
    tick_until_idle(runtime)
    assert runtime.job.error_code == "input"  # finished; only the (model-less) import complained


def test_generate_with_a_missing_backend_reports_it(clean_scene: Any, runtime: Any, tmp_path: Path) -> None:
    preferences = prefs_of(runtime)
    preferences.backend_python = str(tmp_path / "no" / "python")
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.t2bs.generate()
    assert "does not exist" in runtime.job.error and not runtime.job.running


def test_setup_backend_refuses_offline(addon: Any) -> None:
    assert bpy.app.online_access is False  # the bpy module starts offline
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.t2bs.setup_backend()


def test_generate_args_follow_the_panel(clean_scene: Any, addon: Any) -> None:
    settings = bpy.context.scene.t2bs
    settings.prompt = "a grumpy troll"
    assert bpy.ops.t2bs.expressions_defaults() == {"FINISHED"}
    settings.expressions[1].enabled = False  # mouthSmile
    preferences = bpy.context.preferences.addons[addon.__name__].preferences
    args = addon.operators.generate_args(bpy.context, preferences)
    assert args["prompt"] == "a grumpy troll" and args["preset"] == "preview"
    assert args["expressions"] == ["jawOpen", "eyeBlink", "browInnerUp"]
    assert args["allow_download"] is False and args["asset"] == "procedural"


def test_busy_refusal_is_retried(clean_scene: Any, runtime: Any, tmp_path: Path) -> None:
    preferences = prefs_of(runtime)
    # Another client's run keeps the server busy for about a second.
    backend = runtime.ensure_backend(preferences)
    backend.run("sleepy", {"stages": 1, "steps": 20, "step_s": 0.05}, tmp_path / "other")
    runtime.start_run(preferences, "sleepy", {"stages": 1, "step_s": 0.0}, tmp_path / "mine")
    first = runtime.job.request_id
    tick_until_idle(runtime)
    assert runtime.job.request_id != first  # refused as busy, then resent
    assert runtime.job.error_code == "input" and "has no model.npz" in runtime.job.error  # our run finished
    assert (tmp_path / "mine" / "manifest.json").is_file()
