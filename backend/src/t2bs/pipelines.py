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
    optionally fit_steps (overrides the preset's optimisation steps) and landmarks (the mesh's facial
    landmarks file, t2bs.procedural.face_landmarks; the bundle then carries facial regions).
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
    if args.get("landmarks") is not None:
        settings["landmarks"] = _landmarks_path(args["landmarks"])
    stages = [AssetStage(), CaptureStage(), FitStage(), RegisterStage(), ModelStage(), ExportStage()]
    return PipelinePlan(stages=stages, settings=settings)


@PIPELINES.register("generate")
def build_generate(args: dict[str, Any]) -> PipelinePlan:
    """`t2bs generate PROMPT`: the whole method, from text to a head with named blendshapes.

    args: prompt, asset (provider spec, default procedural), video (provider spec, default
    procedural), expressions (names or `name=action` items; default the preset's list), preset,
    device, seed, allow_download (generative providers may download weights), and optionally fit_steps
    and landmarks (facial landmarks of a `mesh:` asset, t2bs.procedural.face_landmarks).
    """
    from .registry import split_spec
    from .stages.asset import ASSET_PROVIDERS, DEFAULT_ASSET_PROVIDER, AssetStage
    from .stages.capture import DEFAULT_VIDEO_PROVIDER, CaptureStage, make_video_provider
    from .stages.export import ExportStage
    from .stages.fit import FitStage
    from .stages.model import ModelStage
    from .stages.prompt import PromptStage, chosen_expressions
    from .stages.register import RegisterStage

    prompt = args.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError('Describe the character: t2bs generate "a grumpy old troll with a big nose" --out DIR.')
    settings: dict[str, Any] = {
        "asset": _provider_spec(args.get("asset"), DEFAULT_ASSET_PROVIDER, "mesh"),
        "video": _provider_spec(args.get("video"), DEFAULT_VIDEO_PROVIDER, "capture"),
        "preset": str(args.get("preset", "preview")),
        "device": str(args.get("device", "auto")),
        "seed": int(args.get("seed", 0)),
        # Generative providers download weights only when this is true (--allow-download, or
        # Blender's online access in the add-on).
        "allow_download": bool(args.get("allow_download", False)),
    }
    # Unknown providers and bad arguments fail here, before any stage starts.
    asset_name, asset_argument = split_spec(settings["asset"])
    ASSET_PROVIDERS.get(asset_name)(asset_argument)
    make_video_provider(settings["video"])
    if args.get("landmarks") is not None:
        if asset_name != "mesh":
            raise InputError("--landmarks gives the face of your own mesh: use it with --asset mesh:PATH.")
        settings["landmarks"] = _landmarks_path(args["landmarks"])
    if args.get("expressions") is not None:
        settings["expressions"] = list(args["expressions"])
    # Check the acts now, so that a typo fails before any work starts.
    settings["expressions"] = [
        expression.name
        if expression.name in _library_names()
        else f"{expression.name}={expression.action}" + ("|split" if expression.is_split else "")
        for expression in chosen_expressions(settings)
    ]
    if args.get("fit_steps") is not None:
        settings["fit_steps"] = int(args["fit_steps"])
    stages = [PromptStage(), AssetStage(), CaptureStage(), FitStage(), RegisterStage(), ModelStage(), ExportStage()]
    return PipelinePlan(stages=stages, settings=settings, prompt=prompt.strip())


def _landmarks_path(value: Any) -> str:
    """A landmarks file's absolute path (a run may resume from another folder), its format checked now
    so that a typo fails before any work starts (its points are checked against the mesh later)."""
    from .procedural.face_landmarks import read_landmarks_file

    path = Path(str(value)).expanduser().resolve()
    read_landmarks_file(path)
    return str(path)


def _library_names() -> set[str]:
    from .expressions import LIBRARY_BY_NAME

    return set(LIBRARY_BY_NAME)


def _provider_spec(value: Any, default: str, path_prefix: str) -> str:
    """A provider spec as given (paths made absolute, so that --resume works from anywhere)."""
    spec = str(value).strip() if value else default
    if spec.startswith(path_prefix + ":"):
        return _absolute_spec(path_prefix, spec)
    return spec


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
