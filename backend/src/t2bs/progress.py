"""Progress events and cancellation, shared by the runner, the CLI and `t2bs serve`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes:
        stage: name of the running stage.
        fraction: progress within the stage, 0..1.
        message: what is being done, for humans.
        eta_s: estimated seconds left in the stage, or None while unknown.
        overall: progress of the whole run, 0..1 (stages weighted equally).
    """

    stage: str
    fraction: float
    message: str
    eta_s: float | None
    overall: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """Thread-safe flag that long work polls between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class StageProgress:
    """Turns a stage's (fraction, message) calls into `ProgressEvent`s with an ETA.

    The ETA extrapolates the elapsed time linearly from the fraction done; it is None until 2% is
    done, because the first steps of a stage (loading, compiling) say little about the rest.
    """

    def __init__(
        self,
        stage: str,
        index: int,
        count: int,
        callback: ProgressCallback | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage = stage
        self._index = index
        self._count = count
        self._callback = callback
        self._clock = clock
        self._start = clock()

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        elapsed = self._clock() - self._start
        eta = elapsed * (1.0 - fraction) / fraction if fraction >= 0.02 else None
        overall = (self._index + fraction) / max(self._count, 1)
        if self._callback is not None:
            self._callback(ProgressEvent(self.stage, fraction, message, eta, overall))
