"""Runs a pipeline's stages into a bundle directory, resumably and cancellably.

Life of a run: the manifest is written with status "running"; each stage runs into
`<bundle>/.partial/<stage>/`, its outputs are moved into the bundle, and only then is the stage marked
"done" with its timing. `--resume` skips done stages whose outputs exist and redoes the rest from a
clean staging folder. The manifest ends "complete", "cancelled" or "failed"; readers of results accept
only "complete".
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bundle import Bundle, Manifest
from .errors import Cancelled, InputError
from .fileio import replace_path
from .progress import CancelToken, ProgressCallback, StageProgress
from .stage import CHECKPOINT_DIR, Stage, StageContext

log = logging.getLogger("t2bs")

STAGING_DIR = ".partial"


class Runner:
    """Runs `stages` in order into the bundle at `out`.

    Args:
        pipeline: name recorded in the manifest (and checked on resume).
        stages: the stages, in order; names must be unique.
        out: bundle directory; created if missing, must be empty or a bundle of this pipeline.
        settings: JSON-serialisable options, recorded in the manifest; a resumed run must match.
        prompt: the identity prompt, if the pipeline has one.
        resume: continue the bundle in `out` instead of refusing it.
        on_progress: receives a `ProgressEvent` per stage step.
        cancel: polled between steps; once set, the run stops with `Cancelled`.
    """

    def __init__(
        self,
        pipeline: str,
        stages: Sequence[Stage],
        out: str | Path,
        settings: dict[str, Any] | None = None,
        *,
        prompt: str | None = None,
        resume: bool = False,
        on_progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        self.pipeline = pipeline
        self.stages = list(stages)
        self.bundle = Bundle(out)
        self.settings = dict(settings or {})
        self.prompt = prompt
        self.resume = resume
        self.on_progress = on_progress
        self.cancel = cancel or CancelToken()

    def run(self) -> Bundle:
        manifest = self._open_manifest()
        staging_root = self.bundle.root / STAGING_DIR
        try:
            for index, stage in enumerate(self.stages):
                progress = StageProgress(stage.name, index, len(self.stages), self.on_progress)
                if self._is_done(manifest, stage):
                    log.info("stage %s: already done, skipped", stage.name)
                    progress(1.0, "already done")
                    continue
                self.cancel.raise_if_cancelled()
                self._run_stage(stage, manifest, staging_root / stage.name, progress)
        except (Cancelled, KeyboardInterrupt):
            self._finish(manifest, "cancelled", "the run was cancelled")
            raise
        except BaseException as exc:
            self._finish(manifest, "failed", str(exc) or type(exc).__name__)
            raise
        shutil.rmtree(staging_root, ignore_errors=True)
        shutil.rmtree(self.bundle.root / CHECKPOINT_DIR, ignore_errors=True)
        self._finish(manifest, "complete", None)
        return self.bundle

    # -- internals -------------------------------------------------------------------------------

    def _open_manifest(self) -> Manifest:
        root = self.bundle.root
        if root.exists() and not root.is_dir():
            raise InputError(f"--out {root} is a file, not a folder.")
        if self.bundle.has_manifest():
            if not self.resume:
                raise InputError(
                    f"{root} already holds a bundle; pass --resume to continue it or choose another --out."
                )
            manifest = self.bundle.read_manifest()
            if manifest.pipeline != self.pipeline:
                raise InputError(
                    f"{root} holds a '{manifest.pipeline}' bundle, not '{self.pipeline}'; choose another --out."
                )
            changed = sorted(
                key
                for key in set(manifest.settings) | set(self.settings)
                if manifest.settings.get(key) != self.settings.get(key)
            )
            if changed:
                raise InputError(
                    f"{root} was started with other settings ({', '.join(changed)}); resume it with "
                    "the same options or choose another --out."
                )
            if manifest.prompt != self.prompt:
                raise InputError(f"{root} was started with another prompt; choose another --out.")
        else:
            if root.is_dir() and any(root.iterdir()):
                raise InputError(f"--out {root} is a folder with other files in it; give an empty or new one.")
            root.mkdir(parents=True, exist_ok=True)
            manifest = Manifest(pipeline=self.pipeline, prompt=self.prompt, settings=self.settings)
        manifest.status = "running"
        manifest.error = None
        self.bundle.write_manifest(manifest)
        return manifest

    def _is_done(self, manifest: Manifest, stage: Stage) -> bool:
        record = manifest.stages.get(stage.name, {})
        return record.get("status") == "done" and all(self.bundle.path(output).exists() for output in stage.outputs)

    def _run_stage(self, stage: Stage, manifest: Manifest, staging: Path, progress: StageProgress) -> None:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        started = time.time()
        manifest.stages[stage.name] = {"status": "running", "started": started}
        manifest.metrics.pop(stage.name, None)
        self.bundle.write_manifest(manifest)
        log.info("stage %s: started", stage.name)
        progress(0.0, "starting")
        ctx = StageContext(
            bundle=self.bundle,
            staging=staging,
            settings=self.settings,
            manifest=manifest,
            progress=progress,
            cancel=self.cancel,
            log=log.getChild(stage.name),
        )
        try:
            stage.run(ctx)
        except BaseException:
            manifest.stages[stage.name]["status"] = "interrupted"
            raise
        for output in stage.outputs:
            produced = staging / output
            if not produced.exists():
                raise RuntimeError(f"stage {stage.name} did not write its output {output}")
            replace_path(produced, self.bundle.path(output))
        for output in stage.optional_outputs:
            produced = staging / output
            if produced.exists():
                replace_path(produced, self.bundle.path(output))
            elif self.bundle.path(output).is_file():
                # A redo that no longer makes it must not leave the old run's file looking current.
                self.bundle.path(output).unlink()
        finished = time.time()
        manifest.stages[stage.name] = {
            "status": "done",
            "started": started,
            "finished": finished,
            "seconds": round(finished - started, 3),
        }
        self.bundle.write_manifest(manifest)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(self.bundle.root / CHECKPOINT_DIR / stage.name, ignore_errors=True)
        progress(1.0, "done")
        log.info("stage %s: done in %.1f s", stage.name, finished - started)

    def _finish(self, manifest: Manifest, status: str, error: str | None) -> None:
        manifest.status = status
        manifest.error = error
        self.bundle.write_manifest(manifest)
