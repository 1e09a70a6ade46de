"""The bridge's job state and the in-process backend (needs t2bs here; the main suite's .venv has it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from t2bs_blender.bridge import BACKEND_ERROR, InProcessBackend, JobState
from t2bs_blender.setup_backend import setup_commands, venv_python


def test_job_state_follows_one_run() -> None:
    job = JobState()
    job.begin("b2")
    assert job.running and job.stage == "starting"
    assert job.apply({"event": "progress", "id": "b1", "stage": "old", "overall": 0.9}) is None
    assert job.stage == "starting"  # events of another request are ignored
    job.apply({"event": "progress", "id": "b2", "stage": "fit", "fraction": 0.5, "message": "step 50",
               "eta_s": 125.0, "overall": 0.4})  # fmt: skip
    assert (job.stage, job.overall) == ("fit", 0.4)
    assert job.status_text() == "fit: step 50 (2:05 left)"
    job.apply({"event": "log", "id": "b2", "level": "INFO", "message": "hello"})
    assert list(job.log) == ["INFO: hello"]
    assert job.apply({"event": "result", "id": "b2", "result": {"bundle": "/x", "status": "complete"}}) == "finished"
    assert job.bundle == "/x" and not job.running and job.overall == 1.0


def test_job_state_errors() -> None:
    job = JobState()
    job.begin("b1")
    cancelled = {"event": "error", "id": "b1", "code": "cancelled", "message": "The run was cancelled"}
    assert job.apply(cancelled) == "cancelled"
    assert job.error_code == "cancelled" and not job.running
    job.begin("b3")
    assert job.error == ""
    assert job.apply({"event": "error", "id": None, "code": BACKEND_ERROR, "message": "died"}) == "failed"
    assert job.error == "died"
    job.begin("b4")
    job.apply({"event": "progress", "id": "b4", "stage": "s", "overall": 0.2, "eta_s": 5})
    assert job.status_text() == "s (5 s left)"


def test_setup_commands(tmp_path: Path) -> None:
    commands = setup_commands(tmp_path / "venv", "t2bs[test]", "--extra-index-url https://example.org/simple")
    assert commands[0][1:] == ["-m", "venv", str(tmp_path / "venv")]
    python = str(venv_python(tmp_path / "venv"))
    index_args = ["--extra-index-url", "https://example.org/simple"]
    assert commands[1] == [python, "-m", "pip", "install", *index_args, "t2bs[test]"]
    assert commands[2] == [python, "-m", "pip", "install", *index_args, "--no-deps", "mediapipe==0.10.21"]
    assert commands[-1] == [python, "-m", "t2bs", "--version"]


@pytest.mark.skipif(importlib.util.find_spec("t2bs") is None, reason="in-process mode needs t2bs in this Python")
def test_in_process_backend_runs_and_cancels(tmp_path: Path) -> None:
    import t2bs_sleepy  # noqa: F401  (tests/plugins is on sys.path via tests/conftest.py; registers "sleepy")

    backend = InProcessBackend()
    backend.start()
    try:
        run = backend.run("sleepy", {"stages": 2, "steps": 3, "step_s": 0.0}, tmp_path / "a")
        result, seen = backend.wait(lambda e: e.get("id") == run and e["event"] in ("result", "error"), timeout=30)
        assert result["event"] == "result", result
        assert any(e["event"] == "progress" for e in seen)

        run = backend.run("sleepy", {"stages": 1, "steps": 400, "step_s": 0.05}, tmp_path / "b")
        backend.wait(lambda e: e.get("event") == "progress" and e.get("fraction", 0) > 0, timeout=30)
        backend.cancel(run)
        event, _ = backend.wait(lambda e: e.get("id") == run and e["event"] == "error", timeout=10)
        assert event["code"] == "cancelled"
    finally:
        backend.stop()
    assert not backend.alive()


def test_in_process_backend_without_t2bs_is_a_clear_error() -> None:
    if importlib.util.find_spec("t2bs") is not None:
        pytest.skip("t2bs is importable here")
    from t2bs_blender.bridge import BackendError

    with pytest.raises(BackendError, match="In-process mode needs t2bs and torch"):
        InProcessBackend().start()


def test_set_up_backend_installs_the_wheel_shipped_with_the_extension(tmp_path: Path) -> None:
    from t2bs_blender.setup_backend import BUNDLED_BACKEND_DIR, default_package_spec

    assert default_package_spec(tmp_path) == "t2bs[gen,landmarks]"  # a source checkout: the package name
    (tmp_path / BUNDLED_BACKEND_DIR).mkdir()
    wheel = tmp_path / BUNDLED_BACKEND_DIR / "t2bs-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert default_package_spec(tmp_path) == f"{wheel}[gen,landmarks]"
