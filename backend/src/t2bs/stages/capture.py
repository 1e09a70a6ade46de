"""Stage 3, `capture`: expression videos of the static head, as a capture directory.

A video provider writes the capture directory (format in `t2bs.capture`) into the bundle's
`capture/` folder. Providers are chosen by the `video` setting, a spec such as ``procedural``,
``wan`` or ``capture:/path/to/takes``, and register themselves in `VIDEO_PROVIDERS`; a provider
module must be imported (directly or as a plugin) before a run names it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ..bundle import CAPTURE_DIR
from ..capture import Capture, copy_capture, read_capture
from ..errors import InputError
from ..registry import Registry, split_spec
from ..stage import Stage, StageContext

DEFAULT_VIDEO_PROVIDER = "procedural"


class VideoProvider(ABC):
    """Makes the expression videos of one run.

    Subclasses set `name` (the registry name) and implement `make`. They check their argument in
    `__init__`, so a bad spec fails before any work starts.
    """

    name: ClassVar[str]

    def __init__(self, argument: str | None) -> None:
        self.argument = argument

    @abstractmethod
    def make(self, ctx: StageContext, dest: Path) -> Capture:
        """Write a complete capture directory into `dest` (absent or empty) and return it as read
        back; report progress and honour cancellation through `ctx.step`."""

    def info(self) -> dict[str, Any]:
        """What the manifest records about this provider (name, argument, model ids, ...)."""
        return {"name": self.name, "argument": self.argument}


VIDEO_PROVIDERS: Registry[type[VideoProvider]] = Registry("video provider")


def make_video_provider(spec: str) -> VideoProvider:
    """The provider for a spec like ``capture:DIR``; raises InputError for unknown names or bad
    arguments."""
    name, argument = split_spec(spec)
    return VIDEO_PROVIDERS.get(name)(argument)


@VIDEO_PROVIDERS.register("capture")
class CaptureDirProvider(VideoProvider):
    """``capture:DIR``: videos the user made elsewhere, validated and copied into the bundle.

    Only the files that `DIR/capture.json` references are copied, so the bundle stays
    self-contained and later edits to DIR do not change a finished run.
    """

    name = "capture"

    def __init__(self, argument: str | None) -> None:
        super().__init__(argument)
        if argument is None or not argument.strip():
            raise InputError("The capture video provider needs a folder: --video capture:DIR.")
        self.source = Path(argument.strip()).expanduser().absolute()

    def make(self, ctx: StageContext, dest: Path) -> Capture:
        capture = read_capture(self.source, check_media=False)
        count = len(capture.sequences)
        # Validation probes every file and copying moves every byte: half of the progress each.
        for index, name in enumerate(capture.sequence_names):
            ctx.step(0.5 * index / count, f"checking {name}")
            capture.check_media([name])

        def on_sequence(index: int, total: int, name: str) -> None:
            ctx.step(0.5 + 0.5 * index / total, f"copying {name}")

        copied = copy_capture(capture, dest, on_sequence=on_sequence)
        ctx.step(1.0, f"copied {count} sequences")
        return copied

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "argument": self.argument, "source": str(self.source)}


class CaptureStage(Stage):
    """Writes `capture/` with the provider named by the `video` setting (default "procedural")."""

    name = "capture"
    outputs = (CAPTURE_DIR,)

    def run(self, ctx: StageContext) -> None:
        spec = ctx.settings.get("video") or DEFAULT_VIDEO_PROVIDER
        if not isinstance(spec, str):
            raise InputError(f"The video provider must be given as text such as 'capture:DIR', not {spec!r}.")
        provider = make_video_provider(spec)
        ctx.step(0.0, f"video provider {provider.name}")
        dest = ctx.output(CAPTURE_DIR)
        capture = provider.make(ctx, dest)
        if capture.root.resolve() != dest.resolve():
            raise RuntimeError(f"video provider {provider.name} returned a capture outside {dest}")
        ctx.record_provider(**provider.info())
        frames = {name: capture.frame_count(name) for name in capture.sequence_names}
        ctx.record_metrics(
            sequences=len(capture.sequences),
            cameras=len(capture.cameras),
            views=sum(len(sequence.views) for sequence in capture.sequences),
            frames=sum(frames.values()),
            images=sum(frames[s.name] * len(s.views) for s in capture.sequences),
        )


# isort: off
# The offline default `procedural` video provider registers itself on import (it needs this module's
# registry, hence the import at the end).
from ..procedural import providers as _procedural_providers  # noqa: E402, F401

# The generative video providers (extra `gen`) register the same way; diffusers is imported only when
# one runs, so this import stays cheap.
from ..generative import cogvideox as _cogvideox, ltx as _ltx, wan as _wan  # noqa: E402, F401
# isort: on
