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
