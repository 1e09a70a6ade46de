"""The `register` stage (DESIGN.md stage 5): the static mesh moved to every frame.

The deformation is evaluated at the canonical (frontal) view code, which leaves out the part the
fit explained by the view alone, and applied to the mesh's own vertices: every registered frame has
the static mesh's topology, in the asset file's coordinates.
"""

from __future__ import annotations

import numpy as np
import torch

from ..bundle import REGISTERED_DIR, write_registered
from ..fit.model import DeformableGaussians
from ..fit.storage import FIT_JSON, SCAFFOLD, WEIGHTS, load_scaffold, load_weights, read_fit_json
from ..fit.trainer import register_sequence
from ..stage import Stage, StageContext
from .asset import load_asset


class RegisterStage(Stage):
    name = "register"
    outputs = (REGISTERED_DIR,)

    def run(self, ctx: StageContext) -> None:
        mesh = load_asset(ctx.bundle.root)
        info = read_fit_json(ctx.input(FIT_JSON))
        scaffold = load_scaffold(ctx.input(SCAFFOLD))
        preset = info["preset_values"]
        model = DeformableGaussians(
            scaffold,
            [int(s["frame_count"]) for s in info["sequences"]],
            code_dim=int(preset["code_dim"]),
            hidden=int(preset["hidden"]),
            layers=int(preset["layers"]),
        )
        load_weights(model, ctx.input(WEIGHTS))
        model.eval()
        canonical = torch.tensor(info["canonical_view"], dtype=torch.float32)
        sequences = info["sequences"]
        motion = {}
        for index, sequence in enumerate(sequences):
            ctx.step(index / len(sequences), f"registering {sequence['name']}")
            first, count = int(sequence["first_frame"]), int(sequence["frame_count"])
            vertices = register_sequence(model, torch.arange(first, first + count), canonical)
            source = mesh.to_source_points(vertices.numpy().astype(np.float64)).astype(np.float32)
            write_registered(ctx.output(f"{REGISTERED_DIR}/{sequence['name']}.npz"), source)
            motion[sequence["name"]] = float(np.linalg.norm(source - source[:1], axis=-1).mean())
        ctx.record_metrics(sequences=len(sequences), vertex_count=mesh.vertex_count, mean_motion=motion)
