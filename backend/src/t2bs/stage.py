"""The interface every pipeline stage implements, and what the runner hands it."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import Bundle, Manifest
from .errors import InputError
from .progress import CancelToken, StageProgress

CHECKPOINT_DIR = ".checkpoints"


@dataclass
class StageContext:
    """What a stage may touch.

    A stage reads earlier stages' finished files under `bundle.root` and writes its own outputs under
    `staging`, with the same relative paths they will have in the bundle; the runner moves them into
    the bundle only when `run` returns, so an interrupted stage never leaves partial outputs behind.
    """

    bundle: Bundle
    staging: Path
    settings: dict[str, Any]
    manifest: Manifest
    progress: StageProgress
    cancel: CancelToken
    log: logging.Logger

    def input(self, relative: str) -> Path:
        path = self.bundle.path(relative)
        if not path.exists():
            raise InputError(f"The bundle in {self.bundle.root} lacks {relative}; run earlier stages.")
        return path

    @property
    def checkpoint_dir(self) -> Path:
        """A folder that survives an interrupted stage (unlike `staging`), for resumable long work.

        The runner removes it once the stage has finished.
        """
        path = self.bundle.root / CHECKPOINT_DIR / self.progress.stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output(self, relative: str) -> Path:
        """Path to write `relative` to (inside the staging folder); its parent exists."""
        path = self.staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def step(self, fraction: float, message: str = "") -> None:
        """Report progress and stop here if the run was cancelled."""
        self.cancel.raise_if_cancelled()
        self.progress(fraction, message)

    def record_provider(self, **info: Any) -> None:
        self.manifest.providers[self.progress.stage] = info

    def record_metrics(self, **metrics: Any) -> None:
        self.manifest.metrics.setdefault(self.progress.stage, {}).update(metrics)

    def record_seed(self, seed: int) -> None:
        self.manifest.seeds[self.progress.stage] = int(seed)


class Stage(ABC):
    """One step of a pipeline. Subclasses set `name` and `outputs` and implement `run`.

    `outputs` lists the files or folders (relative to the bundle root) the stage produces; the runner
    moves exactly these from staging into the bundle. `optional_outputs` are moved when the stage
    wrote them (a texture only a textured head has).
    """

    name: str
    outputs: tuple[str, ...]
    optional_outputs: tuple[str, ...] = ()

    @abstractmethod
    def run(self, ctx: StageContext) -> None: ...
