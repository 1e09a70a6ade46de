"""Set Up Backend's job, offline: a venv made with this Python, a local fake `t2bs` wheel pip-installed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from t2bs_blender.setup_backend import SetupJob, venv_python

pytestmark = pytest.mark.timeout(180)


def fake_backend_wheel(folder: Path) -> Path:
    """A hand-made wheel of a fake `t2bs` whose `python -m t2bs --version` works (pip needs no build tools)."""
    import base64
    import hashlib
    import zipfile

    files = {
        "t2bs/__init__.py": '__version__ = "0.0.fake"\n',
        "t2bs/__main__.py": 'print("t2bs 0.0.fake")\n',
        "t2bs-0.0.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: t2bs\nVersion: 0.0.0\n",
        "t2bs-0.0.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("t2bs-0.0.0.dist-info/RECORD,,")
    files["t2bs-0.0.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t2bs-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def run_job(job: SetupJob, timeout: float = 150.0) -> list[dict[str, Any]]:
    job.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not any(e["event"] in ("result", "error") for e in events):
        assert time.monotonic() < deadline, events[-5:]
        events += job.poll()
        time.sleep(0.1)
    return events


def test_setup_installs_into_a_new_venv_and_sets_the_preference(tmp_path: Path, addon: Any) -> None:
    """Through the add-on's runtime, as the Set Up Backend operator starts it (its online check aside)."""
    import bpy

    preferences = bpy.context.preferences.addons[addon.__name__].preferences
    preferences.backend_python = ""
    wheel = fake_backend_wheel(tmp_path / "wheels")
    job = addon.setup_backend.SetupJob(tmp_path / "venv", str(wheel), "--no-index")  # --no-index: no network
    runtime = addon.runtime.RUNTIME
    runtime.start_setup(job)
    events: list[dict[str, Any]] = []
    original_poll = job.poll

    def recording_poll() -> list[dict[str, Any]]:
        got = original_poll()
        events.extend(got)
        return got

    job.poll = recording_poll  # type: ignore[method-assign]
    deadline = time.monotonic() + 150
    while runtime.tick() is not None:
        assert time.monotonic() < deadline, runtime.job
        time.sleep(0.1)
    try:
        assert runtime.job.error == "", runtime.job.error
        python = str(venv_python(tmp_path / "venv"))
        assert preferences.backend_python == python and runtime.job.message == f"backend ready: {python}"
        assert any(e["event"] == "log" and "t2bs 0.0.fake" in e["message"] for e in events)
        steps = [e["message"] for e in events if e["event"] == "progress"]
        assert [step.split()[:2] for step in steps] == [["-m", "venv"], ["-m", "pip"], ["-m", "t2bs"]]
    finally:
        preferences.backend_python = ""
        runtime.job = addon.bridge.JobState()


def test_setup_failure_is_one_clear_line(tmp_path: Path) -> None:
    job = SetupJob(tmp_path / "venv", str(tmp_path / "no-such-project"), "--no-index")
    final = run_job(job)[-1]
    assert final["event"] == "error" and final["code"] == "backend"
    message = final["message"]
    assert message.startswith("Backend setup failed at '-m pip install'") and "\n" not in message
    assert "ERROR" in message and "hint" not in message
