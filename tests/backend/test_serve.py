"""`t2bs serve` through a real subprocess: the protocol the Blender add-on depends on."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


class ServeProcess:
    """A `t2bs serve` child with a reader thread, so tests can wait for events with a timeout."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "t2bs", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.raw_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw_lines.append(line)
            self.events.put(json.loads(line))  # a non-JSON line fails the test via raw_lines check

    def send(self, request: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        line = request if isinstance(request, str) else json.dumps(request)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Events until one matches `predicate`; returns it and all events seen before it."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            if predicate(event):
                return event, seen
            seen.append(event)

    def finish(self, timeout: float = 15.0) -> tuple[int, str]:
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        rc = self.proc.wait(timeout=timeout)
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()


@pytest.fixture
def server(plugin_env: dict[str, str]):
    proc = ServeProcess(plugin_env)
    yield proc
    if proc.proc.poll() is None:
        proc.proc.kill()
        proc.proc.wait()


def is_final(request_id: str):
    return lambda e: e.get("id") == request_id and e["event"] in ("result", "error")


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text())


def test_ping_lists_the_plugin_pipeline(server: ServeProcess) -> None:
    server.send({"id": "p", "cmd": "ping"})
    event = server.next_event()
    assert event["event"] == "result" and event["id"] == "p"
    assert event["result"]["pong"] is True and "sleepy" in event["result"]["pipelines"]
    rc, stderr = server.finish()
    assert rc == 0 and "Traceback" not in stderr


def test_run_streams_ordered_progress_logs_and_a_result(server: ServeProcess, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    args = {"stages": 3, "steps": 4, "step_s": 0.02, "print_junk": True}
    server.send({"id": "r1", "cmd": "run", "pipeline": "sleepy", "args": args, "out": str(out)})
    final, seen = server.wait_for(is_final("r1"))
    assert final["event"] == "result", final
    assert final["result"] == {"bundle": str(out), "status": "complete"}
    progress = [e for e in seen if e["event"] == "progress"]
    assert all(e["id"] == "r1" for e in progress)
    assert [e["stage"] for e in progress if e["fraction"] == 1.0] == ["s0", "s1", "s2"]
    overall = [e["overall"] for e in progress]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0)
    for e in progress:
        assert set(e) >= {"stage", "fraction", "message", "eta_s", "overall"}
    assert any(e["event"] == "log" and "sleepy stage s1 begins" in e["message"] for e in seen)
    assert manifest(out)["status"] == "complete"
    rc, stderr = server.finish()
    assert rc == 0
    # Stray prints from stage code end up on stderr, never in the protocol stream.
    assert "junk on stdout" in stderr
    assert all(line.startswith("{") for line in server.raw_lines)


def test_cancel_stops_within_two_seconds_and_resume_completes(server: ServeProcess, tmp_path: Path) -> None:
    args = {"stages": 3, "steps": 100, "step_s": 0.05}
    out2 = tmp_path / "bundle2"
    server.send({"id": "r2", "cmd": "run", "pipeline": "sleepy", "args": args, "out": str(out2)})
    server.wait_for(lambda e: e["event"] == "progress" and e["stage"] == "s1" and e["fraction"] > 0)
    first_stage_output = (out2 / "sleepy" / "s0.txt").read_text()
    asked = time.monotonic()
    server.send({"id": "c", "cmd": "cancel", "target": "r2"})
    final, seen = server.wait_for(is_final("r2"))
    assert time.monotonic() - asked < 2.0
    assert final["event"] == "error" and final["code"] == "cancelled"
    assert any(e["id"] == "c" and e["event"] == "result" for e in seen)
    data = manifest(out2)
    assert data["status"] == "cancelled"
    assert data["stages"]["s0"]["status"] == "done" and data["stages"]["s1"]["status"] == "interrupted"
    assert not (out2 / "sleepy" / "s1.txt").exists()

    server.send(
        {
            "id": "r3",
            "cmd": "run",
            "pipeline": "sleepy",
            "args": {**args, "step_s": 0.0},
            "out": str(out2),
            "resume": True,
        }
    )
    final, seen = server.wait_for(is_final("r3"))
    assert final["event"] == "result", final
    assert manifest(out2)["status"] == "complete"
    # The finished stage was skipped, not redone.
    assert (out2 / "sleepy" / "s0.txt").read_text() == first_stage_output
    assert [e["message"] for e in seen if e["event"] == "progress" and e["stage"] == "s0"] == ["already done"]
    server.finish()


def test_stage_exception_becomes_error_and_server_stays_alive(server: ServeProcess, tmp_path: Path) -> None:
    server.send(
        {
            "id": "r",
            "cmd": "run",
            "pipeline": "sleepy",
            "args": {"fail_in": "s1", "step_s": 0.0},
            "out": str(tmp_path / "b"),
        }
    )
    final, _ = server.wait_for(is_final("r"))
    assert final["event"] == "error" and final["code"] == "internal"
    assert "broke on purpose" in final["message"]
    assert manifest(tmp_path / "b")["status"] == "failed"

    server.send(
        {
            "id": "r2",
            "cmd": "run",
            "pipeline": "sleepy",
            "args": {"bad_input_in": "s0", "step_s": 0.0},
            "out": str(tmp_path / "c"),
        }
    )
    final, _ = server.wait_for(is_final("r2"))
    assert final == {"event": "error", "id": "r2", "code": "input", "message": "Stage s0 found the input unusable."}

    server.send({"id": "p", "cmd": "ping"})
    assert server.wait_for(is_final("p"))[0]["event"] == "result"
    server.send({"id": "r3", "cmd": "run", "pipeline": "sleepy", "args": {"step_s": 0.0}, "out": str(tmp_path / "d")})
    assert server.wait_for(is_final("r3"))[0]["event"] == "result"
    assert server.finish()[0] == 0


def test_bad_requests_get_error_events_without_a_traceback(server: ServeProcess, tmp_path: Path) -> None:
    server.send("this is not json")
    server.send("[1, 2]")
    server.send({"cmd": "ping"})
    server.send({"id": 1, "cmd": "dance"})
    server.send({"id": 2, "cmd": "run", "pipeline": "sleepy"})
    server.send({"id": 3, "cmd": "run", "pipeline": "nope", "args": {}, "out": str(tmp_path / "x")})
    server.send({"id": 4, "cmd": "cancel", "target": "ghost"})
    server.send({"id": 5, "cmd": "ping"})
    events = [server.next_event() for _ in range(8)]
    assert [e["event"] for e in events] == ["error"] * 7 + ["result"]
    assert [e["id"] for e in events] == [None, None, None, 1, 2, 3, 4, 5]
    assert "not valid JSON" in events[0]["message"]
    assert "not a JSON object" in events[1]["message"]
    assert "no 'id'" in events[2]["message"]
    assert "Unknown command 'dance'" in events[3]["message"]
    assert "needs 'pipeline'" in events[4]["message"]
    assert "Unknown pipeline 'nope'" in events[5]["message"]
    assert events[6]["code"] == "not_found"
    for e in events[:7]:
        assert "\n" not in e["message"]
    rc, stderr = server.finish()
    assert rc == 0 and "Traceback" not in stderr


def test_second_run_while_busy_is_refused(server: ServeProcess, tmp_path: Path) -> None:
    slow = {"stages": 1, "steps": 100, "step_s": 0.02}
    server.send({"id": "a", "cmd": "run", "pipeline": "sleepy", "args": slow, "out": str(tmp_path / "a")})
    server.send({"id": "b", "cmd": "run", "pipeline": "sleepy", "args": slow, "out": str(tmp_path / "b")})
    busy, _ = server.wait_for(is_final("b"))
    assert busy["event"] == "error" and busy["code"] == "busy"
    server.send({"id": "c", "cmd": "cancel"})
    assert server.wait_for(is_final("a"))[0]["code"] == "cancelled"
    server.finish()


def test_closed_stdin_mid_run_stops_the_server_promptly(server: ServeProcess, tmp_path: Path) -> None:
    slow = {"stages": 2, "steps": 200, "step_s": 0.05}
    server.send({"id": "a", "cmd": "run", "pipeline": "sleepy", "args": slow, "out": str(tmp_path / "a")})
    server.wait_for(lambda e: e["event"] == "progress" and e["fraction"] > 0)
    started = time.monotonic()
    rc, stderr = server.finish(timeout=10)
    assert rc == 0 and time.monotonic() - started < 5
    assert "Traceback" not in stderr
    assert manifest(tmp_path / "a")["status"] == "cancelled"


def test_shutdown_request(server: ServeProcess) -> None:
    server.send({"id": "s", "cmd": "shutdown"})
    assert server.next_event() == {"event": "result", "id": "s", "result": {"shutdown": True}}
    assert server.proc.wait(timeout=10) == 0
