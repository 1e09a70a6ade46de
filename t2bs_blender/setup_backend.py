"""Set Up Backend: a virtual environment with the backend pip-installed, made on a worker thread.

No bpy here: the operator checks `bpy.app.online_access` (pip downloads) and polls `SetupJob` from the
main thread's timer like a backend run. Events have the bridge's shapes (`log`, `progress`, `result`,
`error`) with id "setup", so the panel shows them the same way.
"""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SETUP_ID = "setup"


def venv_python(venv: str | Path) -> Path:
    """The interpreter of a virtual environment on this platform."""
    venv = Path(venv)
    return venv / "Scripts" / "python.exe" if sys.platform == "win32" else venv / "bin" / "python"


# build.py puts the backend's wheel here, inside the extension (the backend is not on PyPI).
BUNDLED_BACKEND_DIR = "backend_dist"


# Extras an animator needs: the diffusion-model providers, and the face finder that lets Rig Selected
# Mesh act the procedural expressions on a human head.
BACKEND_EXTRAS = "[gen,landmarks]"
# MediaPipe goes in without its declared dependencies (they would downgrade numpy under torch); the
# backend's `landmarks` extra holds what it really imports (backend/pyproject.toml).
MEDIAPIPE_SPEC = "mediapipe==0.10.21"


def default_package_spec(addon_dir: str | Path) -> str:
    """What Set Up Backend installs by default: the backend wheel shipped with the extension (with the
    extras animators need), else `t2bs`."""
    wheels = sorted(Path(addon_dir, BUNDLED_BACKEND_DIR).glob("t2bs-*.whl"))
    return f"{wheels[-1]}{BACKEND_EXTRAS}" if wheels else f"t2bs{BACKEND_EXTRAS}"


def base_python() -> str:
    """The Python that creates the venv: Blender's own (3.11 in 4.2 to 5.0, which torch supports)."""
    return sys.executable


def setup_commands(venv: str | Path, package: str, extra_args: str = "") -> list[list[str]]:
    """The commands Set Up Backend runs, in order (shown to the user and tested as data)."""
    python = str(venv_python(venv))
    commands: list[list[str]] = []
    if not venv_python(venv).exists():
        commands.append([base_python(), "-m", "venv", str(venv)])
    # The venv's own pip (ensurepip) installs wheels fine; upgrading it first would be one more download.
    commands.append([python, "-m", "pip", "install", *shlex.split(extra_args), *shlex.split(package)])
    commands.append([python, "-m", "pip", "install", *shlex.split(extra_args), "--no-deps", MEDIAPIPE_SPEC])
    commands.append([python, "-m", "t2bs", "--version"])  # proves the install imports
    return commands


class SetupJob:
    """Runs `setup_commands` on a thread; `poll()` returns its events (main thread)."""

    def __init__(self, venv: str | Path, package: str, extra_args: str = "") -> None:
        self.venv = Path(venv)
        self.commands = setup_commands(venv, package, extra_args)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="t2bs-setup", daemon=True)
        self.proc: subprocess.Popen[str] | None = None
        self.cancelled = False

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def poll(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def _emit(self, event: str, **fields: Any) -> None:
        self.events.put({"event": event, "id": SETUP_ID, **fields})

    def _run(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        for index, command in enumerate(self.commands):
            if self.cancelled:
                self._emit("error", code="cancelled", message="Backend setup was cancelled.")
                return
            step = " ".join(command[1:4])
            done = index / len(self.commands)
            self._emit("progress", stage="setup", fraction=done, overall=done, message=step, eta_s=None)
            tail: list[str] = []
            try:
                self.proc = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
                )
                assert self.proc.stdout is not None
                for line in self.proc.stdout:
                    if line.strip():
                        tail = [*tail[-20:], line.rstrip()]
                        self._emit("log", level="INFO", message=line.rstrip())
                code = self.proc.wait()
            except OSError as exc:
                self._emit("error", code="backend", message=f"Backend setup could not run {command[0]}: {exc}.")
                return
            if code != 0:
                last = _reason(tail)
                self._emit("error", code="backend", message=f"Backend setup failed at '{step}' (exit {code}): {last}")
                return
        self._emit("result", result={"python": str(venv_python(self.venv))})


def _reason(lines: list[str]) -> str:
    """The line of pip's output that says why it failed (its last "ERROR:"/"error:" line, not a hint)."""
    for line in reversed(lines):
        text = line.strip()
        if text.lower().startswith("error"):
            return text
    for line in reversed(lines):
        text = line.strip()
        if text and not text.lower().startswith(("hint", "note")):
            return text
    return "no output"
