"""The add-on's side of the backend: one `Backend` interface, two implementations, no bpy.

- `SubprocessBackend` (the default) starts `<python> -m t2bs serve` in an environment that has torch and
  speaks its JSON-lines protocol (see backend/src/t2bs/serve.py). A reader thread turns stdout lines into
  events; a second thread drains stderr (a full pipe would stall the backend) and keeps its tail for
  crash reports.
- `InProcessBackend` runs the same `t2bs.serve.Server` on a worker thread inside Blender, for users whose
  Blender Python can import `t2bs` and torch. Same events, no process.

Nothing here touches bpy: Blender's main thread calls `poll()` from a `bpy.app.timers` callback (see
`runtime.py`) and applies the events there, because bpy data may only change on the main thread. That
split is what lets tests drive the bridge against a real `t2bs serve` without Blender.

Every event is a dict as the protocol defines (`progress`, `log`, `result`, `error`). The bridge adds
one error code of its own: `backend` (the backend is missing, would not start, or died), whose message
says what happened and what to do.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]

BACKEND_ERROR = "backend"  # bridge-level error code: missing, failed to start, or died
STDERR_TAIL_LINES = 40
STOP_TIMEOUT_S = 5.0


class BackendError(Exception):
    """The backend cannot be used; the message is one line the panel shows as it is."""


class Backend(ABC):
    """What the add-on needs from a backend. Requests return the id their events will carry."""

    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._ids = itertools.count(1)
        self._pending: set[str] = set()  # requests still waiting for their result or error
        self._lock = threading.Lock()

    # -- the interface ------------------------------------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start the backend; raises BackendError with a clear message when it cannot."""

    @abstractmethod
    def alive(self) -> bool:
        """Whether requests can be sent now."""

    @abstractmethod
    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Cancel any run, stop the backend and wait for it (never raises)."""

    @abstractmethod
    def _send(self, request: dict[str, Any]) -> None:
        """Deliver one request; raises BackendError when the backend is gone."""

    def ping(self) -> str:
        return self.request({"cmd": "ping"})

    def run(self, pipeline: str, args: dict[str, Any], out: str | Path, *, resume: bool = False) -> str:
        """Start a run; its progress, log and final result/error events carry the returned id."""
        return self.request({"cmd": "run", "pipeline": pipeline, "args": args, "out": str(out), "resume": resume})

    def cancel(self, target: str | None = None) -> str:
        request: dict[str, Any] = {"cmd": "cancel"}
        if target is not None:
            request["target"] = target
        return self.request(request)

    def request(self, request: dict[str, Any]) -> str:
        """Send any protocol request with a fresh id; returns the id."""
        request_id = f"b{next(self._ids)}"
        with self._lock:
            self._pending.add(request_id)
        try:
            self._send({"id": request_id, **request})
        except BackendError:
            with self._lock:
                self._pending.discard(request_id)
            raise
        return request_id

    def poll(self) -> list[Event]:
        """Every event that arrived since the last call, in order; never blocks (main thread)."""
        events: list[Event] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def wait(self, predicate: Any, timeout: float) -> tuple[Event, list[Event]]:
        """Block until an event matches (tests and scripts; the UI uses `poll`). Returns it and those before."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching backend event within {timeout} s; saw {seen[-5:]}")
            try:
                event = self._events.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if predicate(event):
                return event, seen
            seen.append(event)

    # -- for implementations ------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        if event.get("event") in ("result", "error"):
            with self._lock:
                self._pending.discard(str(event.get("id")))
        self._events.put(event)

    def _fail_pending(self, message: str) -> None:
        """The backend is gone: every request still waiting gets a final error, so no UI waits forever."""
        with self._lock:
            pending, self._pending = sorted(self._pending), set()
        for request_id in pending:
            self._events.put({"event": "error", "id": request_id, "code": BACKEND_ERROR, "message": message})
        if not pending:
            self._events.put({"event": "error", "id": None, "code": BACKEND_ERROR, "message": message})


# Backends still running when Blender quits are stopped; Blender runs atexit handlers on exit.
_LIVE: weakref.WeakSet[Backend] = weakref.WeakSet()


def stop_all() -> None:
    """Stop every live backend (Blender quitting, the add-on being disabled)."""
    for backend in list(_LIVE):
        backend.stop(timeout=2.0)


atexit.register(stop_all)


class SubprocessBackend(Backend):
    """`<python> -m t2bs serve` as a child process speaking JSON lines."""

    def __init__(self, python: str | Path, *, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        super().__init__()
        self.python = str(python)
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stopping = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.alive():
            return
        python = Path(self.python).expanduser()
        if not self.python.strip():
            raise BackendError("No backend Python is set: run Set Up Backend or choose one in the add-on preferences.")
        if not python.exists():
            raise BackendError(
                f"The backend Python {python} does not exist: run Set Up Backend or fix the path in the preferences."
            )
        if python.is_dir() or not os.access(python, os.X_OK):
            raise BackendError(f"The backend Python {python} is not an executable program.")
        env = dict(os.environ if self.env is None else self.env)
        # Blender sets PYTHONHOME/PYTHONPATH for its own Python; the backend's must not inherit them.
        for key in ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
            env.pop(key, None)
        env["PYTHONUNBUFFERED"] = "1"
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0
        try:
            self.proc = subprocess.Popen(
                [str(python), "-m", "t2bs", "serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                env=env,
                cwd=self.cwd,
                creationflags=flags,
            )
        except OSError as exc:
            raise BackendError(f"The backend at {python} could not start: {exc.strerror or exc}.") from exc
        self._stopping = False
        self.stderr_tail.clear()
        self._threads = [
            threading.Thread(target=self._read_stdout, name="t2bs-bridge-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="t2bs-bridge-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        _LIVE.add(self)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self._stopping

    def _send(self, request: dict[str, Any]) -> None:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise BackendError(self._death_message(proc.poll() if proc else None, "is not running"))
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise BackendError(self._death_message(proc.poll(), f"stopped accepting requests ({exc})")) from exc

    def _read_stdout(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                # serve keeps stdout clean; anything else is shown as a log line, not a crash.
                event = {"event": "log", "id": None, "level": "WARNING", "message": line}
            if isinstance(event, dict):
                self._deliver(event)
        # End of stdout: the backend exited. Tell the UI unless we asked for it.
        code = proc.wait()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(1.0)  # let stderr's last lines arrive for the message
        if not self._stopping:
            self._fail_pending(self._death_message(code, "stopped"))

    def _read_stderr(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    def _death_message(self, code: int | None, what: str) -> str:
        detail = ""
        for line in reversed(self.stderr_tail):
            # The last meaningful stderr line says why (e.g. "No module named t2bs").
            if line.strip() and not line.startswith((" ", "\t", "Traceback")):
                detail = line.strip()
                break
        where = f"The backend ({self.python})"
        status = "" if code is None else f" with exit code {code}" if code >= 0 else f" (killed by signal {-code})"
        hint = " Check the backend Python in the preferences or run Set Up Backend."
        if "No module named" in detail and "t2bs" in detail:
            hint = " That Python has no t2bs installed: run Set Up Backend or choose another Python."
        return f"{where} {what}{status}{': ' + detail if detail else '.'}{hint}"

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        proc = self.proc
        if proc is None:
            return
        self._stopping = True
        try:
            if proc.poll() is None and proc.stdin is not None:
                # serve cancels the active run on shutdown or end of input, then exits.
                proc.stdin.write(json.dumps({"id": "shutdown", "cmd": "shutdown"}) + "\n")
                proc.stdin.flush()
                proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        _LIVE.discard(self)

    def kill(self) -> None:
        """Kill the process without asking (tests use it to simulate a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()


class _LineQueue:
    """A text stream made of a queue: the in-process server reads requests from it line by line."""

    _EOF = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()

    def put(self, line: str) -> None:
        self._queue.put(line)

    def close(self) -> None:
        self._queue.put(self._EOF)

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._queue.get()
            if item is self._EOF:
                return
            yield item


@dataclass
class _EventSink:
    """A text stream the in-process server writes protocol lines to; each line becomes an event."""

    backend: InProcessBackend
    buffer: list[str] = field(default_factory=list)

    def write(self, text: str) -> int:
        self.buffer.append(text)
        joined = "".join(self.buffer)
        *lines, rest = joined.split("\n")
        self.buffer = [rest] if rest else []
        for line in lines:
            if line.strip():
                self.backend._deliver(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass


class InProcessBackend(Backend):
    """The `t2bs serve` server on a worker thread of Blender's own Python (needs t2bs and torch there)."""

    def __init__(self) -> None:
        super().__init__()
        self._input: _LineQueue | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.alive():
            return
        try:
            from t2bs.serve import Server
        except Exception as exc:  # ImportError, or torch failing to load its libraries
            raise BackendError(
                f"In-process mode needs t2bs and torch in Blender's Python ({type(exc).__name__}: {exc}); "
                "use the subprocess mode instead."
            ) from exc
        self._input = _LineQueue()
        # Duck-typed streams; the ignore matters only where mypy sees t2bs (the add-on checks do not).
        server = Server(self._input, _EventSink(self))  # type: ignore[arg-type,unused-ignore]
        self._thread = threading.Thread(target=self._serve, args=(server,), name="t2bs-inprocess", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def _serve(self, server: Any) -> None:
        try:
            server.serve()
        except Exception as exc:  # the server catches per-request errors; this is a last resort
            self._fail_pending(f"The in-process backend failed: {type(exc).__name__}: {exc}")

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _send(self, request: dict[str, Any]) -> None:
        if not self.alive() or self._input is None:
            raise BackendError("The in-process backend is not running.")
        self._input.put(json.dumps(request))

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self._input is not None:
            self._input.close()  # end of input: the server cancels its run and returns
        if self._thread is not None:
            self._thread.join(timeout)
        _LIVE.discard(self)


# -- the job the panel shows ------------------------------------------------------------------------


@dataclass
class JobState:
    """What the panel draws about the current run; updated from events on the main thread."""

    request_id: str | None = None
    running: bool = False
    stage: str = ""
    message: str = ""
    overall: float = 0.0
    eta_s: float | None = None
    error: str = ""
    error_code: str = ""
    bundle: str | None = None
    cancelling: bool = False
    log: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))

    def begin(self, request_id: str) -> None:
        self.request_id, self.running, self.cancelling = request_id, True, False
        self.stage, self.message, self.overall, self.eta_s = "starting", "", 0.0, None
        self.error, self.error_code, self.bundle = "", "", None

    def fail(self, message: str, code: str = BACKEND_ERROR) -> None:
        self.running, self.cancelling = False, False
        self.error, self.error_code = message, code

    def apply(self, event: Event) -> str | None:
        """Fold one event in. Returns "finished" (bundle ready), "failed", "cancelled", or None."""
        kind, event_id = event.get("event"), event.get("id")
        if kind == "log":
            self.log.append(f"{event.get('level', 'INFO')}: {event.get('message', '')}")
            return None
        if kind == "error" and event.get("code") == BACKEND_ERROR and (event_id is None or event_id == self.request_id):
            self.log.append(f"ERROR: {event.get('message', '')}")
            if self.running or event_id is None:
                self.fail(str(event.get("message", "")), BACKEND_ERROR)
                return "failed"
            return None
        if event_id != self.request_id or self.request_id is None:
            return None  # replies to ping/cancel, or events of an older run
        if kind == "progress":
            self.stage = str(event.get("stage", ""))
            self.message = str(event.get("message", ""))
            self.overall = float(event.get("overall", event.get("fraction", 0.0)) or 0.0)
            eta = event.get("eta_s")
            self.eta_s = float(eta) if isinstance(eta, (int, float)) else None
        elif kind == "result":
            self.running, self.cancelling, self.overall = False, False, 1.0
            self.bundle = str((event.get("result") or {}).get("bundle") or "") or None
            self.stage, self.message = "done", "bundle ready"
            return "finished"
        elif kind == "error":
            code = str(event.get("code", "internal"))
            self.fail(str(event.get("message", "")), code)
            self.log.append(f"ERROR ({code}): {self.error}")
            return "cancelled" if code == "cancelled" else "failed"
        return None

    def status_text(self) -> str:
        """One line for the progress bar: stage, message and time left."""
        text = self.stage + (f": {self.message}" if self.message else "")
        if self.eta_s is not None and self.eta_s > 0:
            minutes, seconds = divmod(round(self.eta_s), 60)
            text += f" ({minutes}:{seconds:02d} left)" if minutes else f" ({seconds} s left)"
        return text
