"""The subprocess bridge against a real `t2bs serve` (the backend's .venv) running fake pipelines.

These tests need no bpy: the bridge hands events to whoever polls. The last ones drive the add-on's
main-thread glue (`runtime.tick`, normally a `bpy.app.timers` callback) by hand, since timers do not
fire in a headless bpy process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from t2bs_blender.bridge import BACKEND_ERROR, BackendError, JobState, SubprocessBackend

pytestmark = pytest.mark.timeout(60)


def final(request_id: str) -> Any:
    return lambda e: e.get("id") == request_id and e.get("event") in ("result", "error")


@pytest.fixture
def backend(backend_env: dict[str, str]) -> Any:
    from tests.blender.conftest import backend_python

    bridge = SubprocessBackend(backend_python() or "", env=backend_env)
    bridge.start()
    yield bridge
    bridge.stop()


def test_ping_and_a_run_stream_progress_then_a_result(backend: SubprocessBackend, tmp_path: Path) -> None:
    ping = backend.ping()
    pong, _ = backend.wait(final(ping), timeout=20)
    assert pong["result"]["pong"] is True and "sleepy" in pong["result"]["pipelines"]

    run = backend.run("sleepy", {"stages": 2, "steps": 4, "step_s": 0.02, "print_junk": True}, tmp_path / "b")
    result, seen = backend.wait(final(run), timeout=20)
    assert result["event"] == "result" and result["result"]["bundle"] == str(tmp_path / "b")
    progress = [e for e in seen if e["event"] == "progress"]
    assert progress and all(e["id"] == run for e in progress)
    assert [e["overall"] for e in progress] == sorted(e["overall"] for e in progress)
    assert any(e["event"] == "log" and "sleepy stage s1 begins" in e["message"] for e in seen)
    assert backend.poll() == []  # everything was consumed; poll never blocks

    job = JobState()
    job.begin(run)
    outcomes = [job.apply(e) for e in [*seen, result]]
    assert outcomes[-1] == "finished" and job.bundle == str(tmp_path / "b") and not job.running


def test_cancel_stops_the_run_quickly(backend: SubprocessBackend, tmp_path: Path) -> None:
    run = backend.run("sleepy", {"stages": 2, "steps": 200, "step_s": 0.05}, tmp_path / "c")
    backend.wait(lambda e: e.get("event") == "progress" and e.get("fraction", 0) > 0, timeout=20)
    asked = time.monotonic()
    backend.cancel(run)
    event, _ = backend.wait(final(run), timeout=10)
    assert time.monotonic() - asked < 2.0
    assert event["event"] == "error" and event["code"] == "cancelled"
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["status"] == "cancelled"
    assert backend.alive()  # the server lives on for the next run


def test_stage_failure_is_reported_and_the_backend_stays(backend: SubprocessBackend, tmp_path: Path) -> None:
    run = backend.run("sleepy", {"fail_in": "s0", "step_s": 0.0}, tmp_path / "f")
    event, _ = backend.wait(final(run), timeout=20)
    assert event["code"] == "internal" and "broke on purpose" in event["message"]
    # serve emits a run's final event just before it clears its active run, so a request sent the
    # instant the error arrives can be refused as "busy" (reported to the backend's owner). A ping
    # round trip first, as the backend's own test does.
    backend.wait(final(backend.ping()), timeout=20)
    again = backend.run("sleepy", {"stages": 1, "step_s": 0.0}, tmp_path / "g")
    event, _ = backend.wait(final(again), timeout=20)
    assert event["event"] == "result", event


def test_backend_crash_mid_run_gives_a_clear_report(backend: SubprocessBackend, tmp_path: Path) -> None:
    run = backend.run("sleepy", {"stages": 1, "steps": 500, "step_s": 0.05}, tmp_path / "k")
    backend.wait(lambda e: e.get("event") == "progress", timeout=20)
    backend.kill()
    event, _ = backend.wait(final(run), timeout=10)
    assert event["event"] == "error" and event["code"] == BACKEND_ERROR
    assert "stopped" in event["message"] and "signal 9" in event["message"]
    assert "\n" not in event["message"] and not backend.alive()
    with pytest.raises(BackendError, match="is not running"):
        backend.ping()

    job = JobState()
    job.begin(run)
    assert job.apply(event) == "failed" and job.error_code == BACKEND_ERROR and not job.running


def test_missing_executable_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist: run Set Up Backend"):
        SubprocessBackend(tmp_path / "nope" / "python").start()
    with pytest.raises(BackendError, match="No backend Python is set"):
        SubprocessBackend("").start()
    with pytest.raises(BackendError, match="not an executable"):
        SubprocessBackend(tmp_path).start()


def test_python_without_t2bs_is_reported(tmp_path: Path) -> None:
    # This test environment's own Python has bpy but no t2bs: the serve process exits at once.
    bridge = SubprocessBackend(sys.executable)
    bridge.start()
    try:
        event, _ = bridge.wait(lambda e: e.get("event") == "error", timeout=20)
    finally:
        bridge.stop()
    assert event["code"] == BACKEND_ERROR and event["id"] is None
    assert "No module named t2bs" in event["message"] and "Set Up Backend" in event["message"]


def test_stop_ends_the_process_and_its_run(backend: SubprocessBackend, tmp_path: Path) -> None:
    backend.run("sleepy", {"stages": 1, "steps": 500, "step_s": 0.05}, tmp_path / "s")
    backend.wait(lambda e: e.get("event") == "progress", timeout=20)
    started = time.monotonic()
    backend.stop()
    assert time.monotonic() - started < 5.0
    assert backend.proc is not None and backend.proc.returncode == 0 and not backend.alive()
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["status"] == "cancelled"
    # Stopping on purpose is not reported as a crash.
    time.sleep(0.2)
    assert not [e for e in backend.poll() if e.get("code") == BACKEND_ERROR]


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from t2bs_blender.bridge import SubprocessBackend
backend = SubprocessBackend({python!r})
backend.start()
backend.run("sleepy", {{"stages": 1, "steps": 1000, "step_s": 0.05}}, {out!r})
backend.wait(lambda e: e.get("event") == "progress", timeout=20)
print(backend.proc.pid, flush=True)
{ending}
"""


def _gone(pid: int, timeout: float = 10.0) -> bool:
    import os

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie (exited, not yet reaped by init) counts as gone.
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "zombie" in status.read_text():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("ending", ["sys.exit(0)", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
def test_backend_stops_when_blender_exits(backend_env: dict[str, str], tmp_path: Path, ending: str) -> None:
    """A normal exit stops the backend through atexit; a hard kill closes its stdin, which ends serve too."""
    import subprocess

    from tests.blender.conftest import REPO, backend_python

    code = CHILD.format(repo=str(REPO), python=backend_python(), out=str(tmp_path / "b"), ending=ending)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=backend_env, timeout=60)
    pid = int(child.stdout.split()[0])
    assert _gone(pid), f"backend {pid} outlived its parent"
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["status"] == "cancelled"
