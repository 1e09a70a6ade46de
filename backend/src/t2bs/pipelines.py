"""Named pipelines: a pipeline turns run arguments into settings and an ordered list of stages.

The CLI and `t2bs serve` both start runs through `start_run`, so a run behaves the same whether an
animator starts it from Blender or a pipeline engineer from a shell.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .progress import CancelToken, ProgressCallback
from .registry import Registry
from .runner import Runner
from .stage import Stage


@dataclass
class PipelinePlan:
    """What a pipeline builder returns: the stages to run and the settings to record."""

    stages: list[Stage]
    settings: dict[str, Any]
    prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


PipelineBuilder = Callable[[dict[str, Any]], PipelinePlan]

PIPELINES: Registry[PipelineBuilder] = Registry("pipeline")

PLUGIN_ENV = "T2BS_PLUGINS"
PLUGIN_GROUP = "t2bs.plugins"
_plugins_loaded = False


def load_plugins() -> None:
    """Import plugin modules so that they register pipelines and providers.

    Plugins come from the `t2bs.plugins` entry-point group (installed packages) and from the
    comma-separated module names in $T2BS_PLUGINS (a studio's own stages, the test suite's fakes).
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry_point in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        entry_point.load()
    for name in filter(None, (part.strip() for part in os.environ.get(PLUGIN_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise InputError(f"Plugin module {name!r} named in ${PLUGIN_ENV} cannot be imported ({exc}).") from None


def start_run(
    pipeline: str,
    args: dict[str, Any],
    *,
    out: str | Path,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Runner:
    """Build the runner for `pipeline` with `args`; call `.run()` on the result."""
    load_plugins()
    plan = PIPELINES.get(pipeline)(dict(args))
    return Runner(
        pipeline,
        plan.stages,
        out,
        plan.settings,
        prompt=plan.prompt,
        resume=resume,
        on_progress=on_progress,
        cancel=cancel,
    )


# -- built-in pipelines ---------------------------------------------------------------------------------


def _absolute_spec(prefix: str, value: str) -> str:
    """`PATH` or `prefix:PATH` -> `prefix:/absolute/PATH` (a run may resume from another folder)."""
    path = value[len(prefix) + 1 :] if value.startswith(prefix + ":") else value
    return f"{prefix}:{Path(path).expanduser().resolve()}"


@PIPELINES.register("fit")
def build_fit(args: dict[str, Any]) -> PipelinePlan:
    """`t2bs fit`: the user's mesh and capture -> fitted deformable Gaussians and registered frames.

    args: asset (mesh path), capture (capture folder), preset, device, seed, up_axis, front_axis and
    optionally fit_steps (overrides the preset's optimisation steps).
    """
    from .stages.asset import AssetStage
    from .stages.capture import CaptureStage
    from .stages.export import ExportStage
    from .stages.fit import FitStage
    from .stages.model import ModelStage
    from .stages.register import RegisterStage

    for key in ("asset", "capture"):
        if not isinstance(args.get(key), str) or not args[key]:
            raise InputError(f"The fit needs '{key}': t2bs fit --asset MESH --capture DIR --out BUNDLE.")
    settings = {
        "asset": _absolute_spec("mesh", args["asset"]),
        "video": _absolute_spec("capture", args["capture"]),
        "preset": str(args.get("preset", "preview")),
        "device": str(args.get("device", "auto")),
        "seed": int(args.get("seed", 0)),
        "up_axis": str(args.get("up_axis", "+y")),
        "front_axis": str(args.get("front_axis", "+z")),
    }
    if args.get("fit_steps") is not None:
        settings["fit_steps"] = int(args["fit_steps"])
    stages = [AssetStage(), CaptureStage(), FitStage(), RegisterStage(), ModelStage(), ExportStage()]
    return PipelinePlan(stages=stages, settings=settings)


@PIPELINES.register("blendshapes")
def build_blendshapes(args: dict[str, Any]) -> PipelinePlan:
    """`t2bs blendshapes`: the user's mesh and registered frames made elsewhere -> model and exports.

    args: asset (mesh path), registered (folder of <sequence>.npz), up_axis, front_axis.
    """
    from .stages.asset import AssetStage
    from .stages.export import ExportStage
    from .stages.model import ImportRegisteredStage, ModelStage

    for key in ("asset", "registered"):
        if not isinstance(args.get(key), str) or not args[key]:
            raise InputError(f"Blendshapes need '{key}': t2bs blendshapes --asset MESH --registered DIR --out BUNDLE.")
    settings = {
        "asset": _absolute_spec("mesh", args["asset"]),
        "registered": str(Path(args["registered"]).expanduser().resolve()),
        "up_axis": str(args.get("up_axis", "+y")),
        "front_axis": str(args.get("front_axis", "+z")),
    }
    return PipelinePlan(stages=[AssetStage(), ImportRegisteredStage(), ModelStage(), ExportStage()], settings=settings)
