"""Set Up Backend's job, offline: a venv made with this Python, local fake `t2bs` and `mediapipe` wheels
pip-installed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from t2bs_blender.setup_backend import SetupJob, venv_python

pytestmark = pytest.mark.timeout(180)


def fake_wheel(folder: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A hand-made pure-Python wheel (pip needs no build tools to install it)."""
    import base64
    import hashlib
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def fake_backend_wheel(folder: Path) -> Path:
    """A fake `t2bs` whose `python -m t2bs --version` works, beside a fake `mediapipe` 0.10.21 (Set Up
    Backend installs it after the backend) in the same folder."""
    fake_wheel(folder, "mediapipe", "0.10.21", {"mediapipe/__init__.py": ""})
    return fake_wheel(
        folder,
        "t2bs",
        "0.0.0",
        {"t2bs/__init__.py": '__version__ = "0.0.fake"\n', "t2bs/__main__.py": 'print("t2bs 0.0.fake")\n'},
    )


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
    # --no-index: no network; the fake mediapipe is found beside the fake backend.
    job = addon.setup_backend.SetupJob(tmp_path / "venv", str(wheel), f"--no-index --find-links {wheel.parent}")
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
        assert [step.split()[:2] for step in steps] == [["-m", "venv"], ["-m", "pip"], ["-m", "pip"], ["-m", "t2bs"]]
        assert job.commands[2][-2:] == ["--no-deps", "mediapipe==0.10.21"]
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
