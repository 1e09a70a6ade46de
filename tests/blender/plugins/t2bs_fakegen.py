"""Backend test plugin: the `t2bs_test_generate` pipeline writes a small but real model.npz.

Loaded into a real `t2bs serve` (in the backend's .venv) through $T2BS_PLUGINS, so the add-on's whole
path runs: run request -> progress events -> result -> main-thread import. Needs the repository root on
PYTHONPATH for the synthetic head of tests/addon/bundle_fixture.py.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from t2bs.pipelines import PIPELINES, PipelinePlan
from t2bs.stage import Stage, StageContext
from tests.addon.bundle_fixture import shape_offsets, sphere


class FakeModelStage(Stage):
    name = "model"
    outputs = ("model.npz",)

    def __init__(self, shapes: int, steps: int, step_s: float) -> None:
        self.shapes, self.steps, self.step_s = shapes, steps, step_s

    def run(self, ctx: StageContext) -> None:
        for step in range(self.steps):
            ctx.step(step / self.steps, f"step {step + 1} of {self.steps}")
            time.sleep(self.step_s)
        vertices, faces, uv = sphere(10, 12)
        names, regions, offsets = shape_offsets(vertices, self.shapes)
        with ctx.output("model.npz").open("wb") as handle:
            np.savez(
                handle,
                neutral=vertices,
                faces=faces,
                uv=uv,
                colors=np.full((len(vertices), 3), 200, dtype=np.uint8),
                blendshape_names=np.array(names),
                blendshapes=offsets,
                blendshape_regions=np.array(regions),
            )


@PIPELINES.register("t2bs_test_generate")
def build(args: dict[str, Any]) -> PipelinePlan:
    stage = FakeModelStage(int(args.get("shapes", 3)), int(args.get("steps", 4)), float(args.get("step_s", 0.01)))
    settings = {"up_axis": "+y", "front_axis": "+z", "shapes": stage.shapes}
    return PipelinePlan(stages=[stage], settings=settings, prompt=args.get("prompt"))
