"""How much of the ICT ground-truth motion the fit's skinning can hold at best, with no images at all.

The fit moves the mesh by per-control translations blended with fixed skinning weights (preview:
1,000 controls). Least squares of those translations straight onto the true displacement of every frame
gives the representation's ceiling: no fit of the images can recover more of the motion than this.
With --affine each control also carries a free linear part (a 3x3 matrix applied about the control,
as the skinning's blended affine maps allow), which is what a richer per-control field could reach.

    python bench/bench_skinning_ceiling.py [--preset preview] [--controls N] [--affine] [--seed 0] [--work DIR]

Scores as bench_fit_ict.py: motion recovered over the face vertices that move (1 - mean error / mean
error of holding the static head still).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from t2bs.fit.presets import PRESETS, FitPreset
from t2bs.fit.scaffold import Scaffold, build_scaffold
from t2bs.mesh_io import HeadMesh, load_head_mesh
from t2bs.testing.ict_fixture import make_ict_capture, registration_scores


def skinning_basis(
    vertices: np.ndarray, controls: np.ndarray, index: np.ndarray, weight: np.ndarray, affine: bool
) -> sp.csr_matrix:
    """Sparse [V, C] (or [V, 4C] with `affine`) map from per-control parameters to one coordinate's displacement.

    vertices [V, 3], controls [C, 3], index/weight [V, K] skinning. Column block 0 holds the weights
    (translations); with `affine`, block j + 1 holds weight * (vertex - control)_j, so that row i of a
    control's linear part moves coordinate i by that amount.
    """
    rows = np.repeat(np.arange(len(vertices)), index.shape[1])
    cols, values = index.reshape(-1), weight.reshape(-1).astype(np.float64)
    shape = (len(vertices), len(controls))
    blocks = [sp.csr_matrix((values, (rows, cols)), shape=shape)]
    if affine:
        for axis in range(3):
            lever = vertices[rows, axis] - controls[cols, axis]
            blocks.append(sp.csr_matrix((values * lever, (rows, cols)), shape=shape))
    return sp.hstack(blocks).tocsr()


def least_squares_frames(
    mesh: HeadMesh, scaffold: Scaffold, truth: Mapping[str, np.ndarray], affine: bool = False
) -> dict[str, np.ndarray]:
    """Per sequence [T, V, 3], in the asset file's coordinates: every true frame as close as the scaffold's
    skinning can hold it (least squares of the per-control parameters onto the true displacements)."""
    count = scaffold.vertex_count
    rest = scaffold.means[:count].astype(np.float64)
    basis = skinning_basis(
        rest, scaffold.controls.astype(np.float64), scaffold.skin_index[:count], scaffold.skin_weight[:count], affine
    )
    normal = (basis.T @ basis).toarray()
    # A whisper of damping: controls far from any moving vertex are otherwise free in the solve.
    normal += 1e-6 * np.trace(normal) / len(normal) * np.eye(len(normal))
    factor = scipy.linalg.cho_factor(normal)
    registered: dict[str, np.ndarray] = {}
    for name in sorted(name for name in truth if name not in ("face_vertices", "diagonal")):
        frames = []
        for true in truth[name]:
            displacement = mesh.from_source_points(true) - rest  # normalised frame
            solved = scipy.linalg.cho_solve(factor, basis.T @ displacement)
            frames.append(mesh.to_source_points(rest + basis @ solved))
        registered[name] = np.asarray(frames, np.float32)
    return registered


def ceiling(asset: Path, truth_path: Path, preset: FitPreset, affine: bool = False, seed: int = 0) -> dict:
    """Least-squares fit of the skinning's parameters to every true frame, scored like the fit.

    The scaffold is the one `t2bs fit --preset ... --seed seed` builds (its controls depend on both).
    """
    mesh = load_head_mesh(asset)
    scaffold = build_scaffold(
        mesh, surface_samples=preset.surface_samples, control_count=preset.control_count, seed=seed
    )
    with np.load(truth_path) as truth:
        registered = least_squares_frames(mesh, scaffold, truth, affine)
    overall = registration_scores(registered, truth_path)
    return {
        "controls": preset.control_count,
        "affine": affine,
        "motion_recovered": round(overall["motion_recovered"], 4),
        "mean_error_over_diagonal": round(overall["mean_error_over_diagonal"], 6),
        "per_sequence": {
            name: round(registration_scores({name: frames}, truth_path)["motion_recovered"], 4)
            for name, frames in registered.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="folder for the capture (default: temp)")
    parser.add_argument("--preset", default="preview", choices=sorted(PRESETS))
    parser.add_argument("--controls", type=int, default=None, help="instead of the preset's control count")
    parser.add_argument("--affine", action="store_true", help="a free linear part per control besides its translation")
    parser.add_argument("--seed", type=int, default=0, help="the capture's seed (bench_fit_ict.py's --seed)")
    parser.add_argument("--fit-seed", type=int, default=0, help="the fit's seed, which places the controls")
    parser.add_argument("--sequences", type=int, default=3)
    ns = parser.parse_args()
    work = ns.work or Path(tempfile.mkdtemp(prefix="t2bs-ceiling-"))
    preset = PRESETS[ns.preset]
    if ns.controls is not None:
        preset = dataclasses.replace(preset, control_count=ns.controls)
    # The same sequences as bench_fit_ict.py's capture of that seed at any view count and size
    # (ict_fixture.SHARED_DRIFT_VIEWS); small images keep the capture quick to write.
    fixture = make_ict_capture(work / "fixture", sequences=ns.sequences, views=4, size=32, seed=ns.seed)
    print(json.dumps(ceiling(fixture.asset, fixture.truth, preset, ns.affine, ns.fit_seed), indent=2))


if __name__ == "__main__":
    main()
