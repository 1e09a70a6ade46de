"""The stage runner: atomic outputs, manifest records, resume, cancel, refusal of foreign folders."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import t2bs_sleepy  # noqa: F401  (registers the `sleepy` pipeline)

from t2bs.bundle import Bundle
from t2bs.errors import Cancelled, InputError
from t2bs.pipelines import start_run
from t2bs.progress import CancelToken, ProgressEvent
from t2bs.runner import STAGING_DIR, Runner
from t2bs.stage import Stage, StageContext


class WriteStage(Stage):
    def __init__(self, name: str, fail_after_write: bool = False) -> None:
        self.name = name
        self.outputs = (f"out/{name}.txt", f"dir_{name}")
        self.fail_after_write = fail_after_write
        self.runs = 0

    def run(self, ctx: StageContext) -> None:
        self.runs += 1
        ctx.output(self.outputs[0]).write_text(self.name)
        ctx.output(f"dir_{self.name}/a.bin").write_bytes(b"x")
        ctx.step(0.5, "half")
        if self.fail_after_write:
            raise RuntimeError("boom")
        ctx.record_metrics(answer=42)
        ctx.record_provider(name="test", model_id="none")
        ctx.record_seed(7)


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def test_complete_run_records_stages_timings_and_metrics(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    stages = [WriteStage("a"), WriteStage("b")]
    Runner("p", stages, tmp_path / "b", {"k": 1}, prompt="a troll", on_progress=events.append).run()
    data = manifest(tmp_path / "b")
    assert data["status"] == "complete"
    assert data["prompt"] == "a troll"
    assert data["settings"] == {"k": 1}
    assert data["software"]["t2bs"] and data["software"]["python"]
    for name in "ab":
        assert data["stages"][name]["status"] == "done"
        assert data["stages"][name]["seconds"] >= 0
        assert data["metrics"][name] == {"answer": 42}
        assert data["providers"][name] == {"name": "test", "model_id": "none"}
        assert (tmp_path / "b" / "out" / f"{name}.txt").read_text() == name
        assert (tmp_path / "b" / f"dir_{name}" / "a.bin").exists()
    assert not (tmp_path / "b" / STAGING_DIR).exists()
    assert [e.stage for e in events if e.fraction == 1.0] == ["a", "b"]
    overall = [e.overall for e in events]
    assert overall == sorted(overall) and overall[-1] == 1.0


def test_failed_stage_leaves_no_outputs_and_resume_redoes_only_it(tmp_path: Path) -> None:
    a, b = WriteStage("a"), WriteStage("b", fail_after_write=True)
    with pytest.raises(RuntimeError):
        Runner("p", [a, b], tmp_path / "b").run()
    data = manifest(tmp_path / "b")
    assert data["status"] == "failed" and "boom" in data["error"]
    assert data["stages"]["b"]["status"] == "interrupted"
    # The failed stage's files stay in staging, never in the bundle.
    assert not (tmp_path / "b" / "out" / "b.txt").exists()
    with pytest.raises(BundleLike):
        Bundle.open_complete(tmp_path / "b")

    b.fail_after_write = False
    Runner("p", [a, b], tmp_path / "b", resume=True).run()
    assert (a.runs, b.runs) == (1, 2)
    assert manifest(tmp_path / "b")["status"] == "complete"
    Bundle.open_complete(tmp_path / "b")


BundleLike = InputError  # BundleError is an InputError: exit code 2 with one sentence


def test_resume_redoes_a_stage_whose_output_vanished(tmp_path: Path) -> None:
    a, b = WriteStage("a"), WriteStage("b")
    Runner("p", [a, b], tmp_path / "b").run()
    (tmp_path / "b" / "out" / "a.txt").unlink()
    Runner("p", [a, b], tmp_path / "b", resume=True).run()
    assert (a.runs, b.runs) == (2, 1)


def test_cancel_between_steps(tmp_path: Path) -> None:
    token = CancelToken()

    class Cancelling(Stage):
        name = "c"
        outputs = ("c.txt",)

        def run(self, ctx: StageContext) -> None:
            ctx.step(0.1)
            token.cancel()
            ctx.step(0.2)  # raises
            ctx.output("c.txt").write_text("never")

    with pytest.raises(Cancelled):
        Runner("p", [WriteStage("a"), Cancelling()], tmp_path / "b", cancel=token).run()
    data = manifest(tmp_path / "b")
    assert data["status"] == "cancelled"
    assert data["stages"]["a"]["status"] == "done"
    assert not (tmp_path / "b" / "c.txt").exists()


def test_refuses_existing_bundle_without_resume_and_foreign_folders(tmp_path: Path) -> None:
    Runner("p", [WriteStage("a")], tmp_path / "b").run()
    with pytest.raises(InputError, match="--resume"):
        Runner("p", [WriteStage("a")], tmp_path / "b").run()
    with pytest.raises(InputError, match="other settings"):
        Runner("p", [WriteStage("a")], tmp_path / "b", {"k": 2}, resume=True).run()
    with pytest.raises(InputError, match="'p' bundle"):
        Runner("q", [WriteStage("a")], tmp_path / "b", resume=True).run()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="other files"):
        Runner("p", [WriteStage("a")], tmp_path / "junk").run()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file"):
        Runner("p", [WriteStage("a")], tmp_path / "file").run()


def test_manifest_is_valid_json_whenever_a_reader_looks(tmp_path: Path) -> None:
    """Atomic manifest writes: a reader polling during a run never sees a torn file."""
    out = tmp_path / "b"
    stop = threading.Event()
    torn: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            try:
                json.loads((out / "manifest.json").read_text())
            except FileNotFoundError:
                pass
            except json.JSONDecodeError as exc:
                torn.append(str(exc))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i in range(3):
            start_run("sleepy", {"stages": 4, "steps": 3, "step_s": 0.0}, out=out / str(i)).run()
    finally:
        stop.set()
        reader.join()
    assert torn == []


def test_sleepy_pipeline_through_start_run(tmp_path: Path) -> None:
    runner = start_run("sleepy", {"stages": 2, "steps": 2, "step_s": 0.0}, out=tmp_path / "b")
    bundle = runner.run()
    assert sorted(p.name for p in (bundle.root / "sleepy").iterdir()) == ["s0.txt", "s1.txt"]
    with pytest.raises(InputError, match="Unknown pipeline 'nope'"):
        start_run("nope", {}, out=tmp_path / "c")
