"""`t2bs serve`: the JSON-lines protocol the Blender add-on speaks.

One JSON object per line in each direction. stdout carries protocol lines only; logs go to stderr.

Requests (each has an ``id`` the client chooses; replies and events carry it back):

    {"id": "1", "cmd": "ping"}
    {"id": "2", "cmd": "run", "pipeline": "generate", "args": {...}, "out": "/dir", "resume": false}
    {"id": "3", "cmd": "cancel", "target": "2"}        # target defaults to the active run
    {"id": "4", "cmd": "shutdown"}

Events:

    {"event": "result",   "id": ..., "result": {...}}          # a request finished
    {"event": "error",    "id": ..., "code": ..., "message": ...}
    {"event": "progress", "id": ..., "stage": ..., "fraction": ..., "message": ..., "eta_s": ..., "overall": ...}
    {"event": "log",      "id": ..., "level": "INFO", "message": ...}

Error codes: "input" (bad request or bad input files; fix and retry), "busy" (a run is active),
"cancelled", "not_found" (no such run), "internal" (a bug or an environment fault; details on stderr).
One run at a time; the server stays alive after any error. End of stdin means shutdown.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import IO, Any

from . import __version__
from .errors import Cancelled, T2bsError
from .pipelines import PIPELINES, load_plugins, start_run
from .progress import CancelToken, ProgressEvent

PROTOCOL_VERSION = 1
PROGRESS_INTERVAL_S = 0.05  # a stage may report thousands of steps; the add-on needs ~20 per second
SHUTDOWN_GRACE_S = 10.0

log = logging.getLogger("t2bs.serve")


class _ActiveRun:
    def __init__(self, request_id: Any, thread: threading.Thread, cancel: CancelToken) -> None:
        self.request_id = request_id
        self.thread = thread
        self.cancel = cancel


class _EventLogHandler(logging.Handler):
    """Forwards the run's log records to the client as `log` events."""

    def __init__(self, server: Server) -> None:
        super().__init__(level=logging.INFO)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        run = self.server.active
        if run is None or record.name.startswith("t2bs.serve"):
            return
        self.server.emit(
            {"event": "log", "id": run.request_id, "level": record.levelname, "message": record.getMessage()}
        )


class Server:
    """Reads requests from `inp`, writes events to `out`; `serve()` returns the exit code."""

    def __init__(self, inp: IO[str], out: IO[str]) -> None:
        self.inp = inp
        self.out = out
        self._write_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.active: _ActiveRun | None = None

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str)
        with self._write_lock:
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the client went away; nothing left to tell
                pass

    def _error(self, request_id: Any, code: str, message: str) -> None:
        self.emit({"event": "error", "id": request_id, "code": code, "message": message})

    def serve(self) -> int:
        handler = _EventLogHandler(self)
        logging.getLogger("t2bs").addHandler(handler)
        try:
            for number, raw in enumerate(self.inp, start=1):
                line = raw.strip()
                if not line:
                    continue
                if not self._handle_line(number, line):
                    break
        finally:
            self._stop_active_run()
            logging.getLogger("t2bs").removeHandler(handler)
        return 0

    # -- requests ---------------------------------------------------------------------------------

    def _handle_line(self, number: int, line: str) -> bool:
        """Handle one request; False means stop serving."""
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            self._error(None, "input", f"Line {number} is not valid JSON ({exc.msg}).")
            return True
        if not isinstance(request, dict):
            self._error(None, "input", f"Line {number} is not a JSON object.")
            return True
        request_id = request.get("id")
        if request_id is None:
            self._error(None, "input", f"Line {number} has no 'id'; every request needs one.")
            return True
        try:
            return self._dispatch(request_id, request)
        except T2bsError as exc:
            self._error(request_id, "input", str(exc))
        except Exception as exc:  # whatever goes wrong with one request, the server keeps serving
            log.exception("request %r failed", request_id)
            self._error(request_id, "internal", f"{type(exc).__name__}: {exc}")
        return True

    def _dispatch(self, request_id: Any, request: dict[str, Any]) -> bool:
        cmd = request.get("cmd")
        if cmd == "ping":
            load_plugins()
            self.emit(
                {
                    "event": "result",
                    "id": request_id,
                    "result": {
                        "pong": True,
                        "version": __version__,
                        "protocol": PROTOCOL_VERSION,
                        "pipelines": PIPELINES.names(),
                        "busy": self.active is not None,
                    },
                }
            )
        elif cmd == "run":
            self._start(request_id, request)
        elif cmd == "cancel":
            self._cancel(request_id, request.get("target"))
        elif cmd == "shutdown":
            self._stop_active_run()
            self.emit({"event": "result", "id": request_id, "result": {"shutdown": True}})
            return False
        else:
            known = "ping, run, cancel, shutdown"
            self._error(request_id, "input", f"Unknown command {cmd!r}; the commands are {known}.")
        return True

    def _start(self, request_id: Any, request: dict[str, Any]) -> None:
        pipeline, args, out = request.get("pipeline"), request.get("args", {}), request.get("out")
        if not isinstance(pipeline, str) or not isinstance(out, str) or not isinstance(args, dict):
            self._error(request_id, "input", "A run needs 'pipeline' (string), 'out' (string) and 'args' (object).")
            return
        with self._run_lock:
            if self.active is not None:
                self._error(request_id, "busy", f"Run {self.active.request_id!r} is still active; cancel it or wait.")
                return
            cancel = CancelToken()
            try:
                runner = start_run(
                    pipeline,
                    args,
                    out=out,
                    resume=bool(request.get("resume", False)),
                    on_progress=self._progress_forwarder(request_id),
                    cancel=cancel,
                )
            except T2bsError as exc:
                self._error(request_id, "input", str(exc))
                return
            except Exception as exc:  # a plugin's builder failing must not end the server
                log.exception("building run %r failed", request_id)
                self._error(request_id, "internal", f"{type(exc).__name__}: {exc}")
                return
            thread = threading.Thread(
                target=self._run, args=(request_id, runner), name=f"t2bs-run-{request_id}", daemon=True
            )
            self.active = _ActiveRun(request_id, thread, cancel)
            thread.start()

    def _run(self, request_id: Any, runner: Any) -> None:
        outcome: tuple[str, str] | None = None
        bundle: Any = None
        try:
            bundle = runner.run()
        except Cancelled:
            outcome = ("cancelled", "The run was cancelled; run it again with resume to continue.")
        except T2bsError as exc:
            outcome = ("input" if exc.exit_code == 2 else "internal", str(exc))
        except Exception as exc:
            log.exception("run %r failed", request_id)
            outcome = ("internal", f"{type(exc).__name__}: {exc}")
        finally:
            # Free the slot before the final event: a client that starts its next run the moment it
            # reads the result must not be told the server is busy.
            with self._run_lock:
                self.active = None
        if outcome is not None:
            self._error(request_id, *outcome)
        else:
            self.emit(
                {"event": "result", "id": request_id, "result": {"bundle": str(bundle.root), "status": "complete"}}
            )

    def _progress_forwarder(self, request_id: Any) -> Any:
        last: dict[str, Any] = {"time": 0.0, "stage": None}

        def forward(event: ProgressEvent) -> None:
            now = time.monotonic()
            boundary = event.fraction in (0.0, 1.0) or event.stage != last["stage"]
            if not boundary and now - float(last["time"] or 0.0) < PROGRESS_INTERVAL_S:
                return
            last["time"], last["stage"] = now, event.stage
            self.emit({"event": "progress", "id": request_id, **event.to_dict()})

        return forward

    def _cancel(self, request_id: Any, target: Any) -> None:
        run = self.active
        if run is None or (target is not None and target != run.request_id):
            self._error(request_id, "not_found", f"No active run {target!r} to cancel.")
            return
        run.cancel.cancel()
        self.emit({"event": "result", "id": request_id, "result": {"cancelling": run.request_id}})

    def _stop_active_run(self) -> None:
        run = self.active
        if run is not None:
            run.cancel.cancel()
            run.thread.join(SHUTDOWN_GRACE_S)


def main() -> int:
    """Entry point: protect the protocol stream, then serve until shutdown or end of input."""
    # Anything a library prints (even from C) must not corrupt the protocol: keep a private handle on
    # the real stdout and point file descriptor 1 at stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    server = Server(sys.stdin, protocol_out)
    try:
        return server.serve()
    except KeyboardInterrupt:
        return 130
