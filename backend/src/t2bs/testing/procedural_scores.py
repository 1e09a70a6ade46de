"""Score a generated bundle's blendshapes against the procedural performance it was fitted to.

The procedural video provider moves the static head with `procedural.performance.deform`, so for a bundle
made on the offline defaults the true shape of every act is known: `deform(static, regions, act, 1)`.
The score per act is the motion recovered, 1 - mean error / mean true displacement, over the vertices the
act moves by more than 1/1000 of the head (normalised units), with the split halves summed back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..expressions import expression
from ..procedural.performance import deform
from ..procedural.regions import REGIONS_FILE, load_regions
from ..stages.asset import load_asset

MOVING_THRESHOLD = 1e-3


def act_scores(bundle: str | Path) -> dict[str, dict[str, float]]:
    """Per act: `true` mean displacement, `error` mean error (normalised units), `recovered`."""
    root = Path(bundle)
    mesh = load_asset(root)
    regions = load_regions(root / REGIONS_FILE)
    with np.load(root / "model.npz") as model:
        shapes = model["blendshapes"]
        sources = [str(source) for source in model["blendshape_sources"]]
    scores = {}
    for act in dict.fromkeys(sources):
        truth = deform(mesh.vertices, regions, expression(act), 1.0) - mesh.vertices
        # The model is in the file's coordinates; back to the normalised frame for the comparison.
        rotation = mesh.to_source[:3, :3] / mesh.source_scale
        offsets = sum(shapes[i] for i, source in enumerate(sources) if source == act)
        got = (np.asarray(offsets, dtype=np.float64) @ rotation) / mesh.source_scale
        moving = np.linalg.norm(truth, axis=1) > MOVING_THRESHOLD
        still = float(np.linalg.norm(truth, axis=1)[moving].mean())
        error = float(np.linalg.norm(got - truth, axis=1)[moving].mean())
        scores[act] = {"true": still, "error": error, "recovered": 1.0 - error / still}
    return scores
