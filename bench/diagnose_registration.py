"""Where a fit's registration misses the ICT ground truth, beside what the fit's own skinning could hold.

Reads what `bench_fit_ict.py --work DIR` leaves behind (DIR/fixture, DIR/bundle). The ceiling is the
least-squares projection of the truth onto the fit's own scaffold (bundle/fit/scaffold.safetensors),
as in bench_skinning_ceiling.py. Prints, for the fit and for that ceiling:

- motion recovered in bands of true motion size, in multiples of the threshold that marks a vertex as
  moving (1/1000 of the diagonal). A fit held back by a noise floor loses most on the small motions;
  one held back by a prior that shrinks motion loses about the same share in every band.
- per sequence, the last frame against the ceiling's projection of the truth: the gain (how much of the
  representable motion the fit reaches on average, overall and per axis of the asset file) and the rest
  (the share of that motion the fit puts in the wrong pattern rather than at the wrong size).

With --map PNG it also draws every sequence's last frame from the front: the true motion, the ceiling's
error and the fit's error, blue (none) to red (1/100 of the diagonal or more).

    python bench/bench_fit_ict.py --work /tmp/ict
    python bench/diagnose_registration.py --work /tmp/ict [--map /tmp/ict/errors.png]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from bench_skinning_ceiling import least_squares_frames
from PIL import Image

from t2bs.bundle import read_registered
from t2bs.fit.storage import SCAFFOLD, load_scaffold
from t2bs.mesh_io import HeadMesh, load_head_mesh
from t2bs.meshrender import render_mesh
from t2bs.testing.ict_fixture import ict_cameras

MOVING_THRESHOLD = 1e-3  # of the diagonal, as registration_scores counts a vertex as moving
BAND_EDGES = (1.0, 2.0, 4.0, 8.0, 16.0)  # multiples of the threshold; the last band is open


def motion_bands(registered: dict[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Motion recovered over the moving face vertices, in bands of their true motion.

    registered: per sequence [T, V, 3]; truth: the fixture's truth.npz as a mapping. Errors and motions
    are in the asset file's units.
    """
    face, diagonal = truth["face_vertices"], float(truth["diagonal"])
    errors, motions = [], []
    for name, predicted in registered.items():
        true = truth[name][:, face]
        motion = np.linalg.norm(true - true[:1], axis=-1)
        moving = motion > MOVING_THRESHOLD * diagonal
        errors.append(np.linalg.norm(predicted[:, face] - true, axis=-1)[moving])
        motions.append(motion[moving])
    error, motion = np.concatenate(errors), np.concatenate(motions)
    bands = []
    for low, high in zip(BAND_EDGES, (*BAND_EDGES[1:], np.inf), strict=True):
        inside = (motion >= low * MOVING_THRESHOLD * diagonal) & (motion < high * MOVING_THRESHOLD * diagonal)
        if not inside.any():
            continue
        bands.append(
            {
                "band": f"{low:g}-{high:g}x" if np.isfinite(high) else f"{low:g}x+",
                "vertices": int(inside.sum()),
                "share_of_motion": round(float(motion[inside].sum() / motion.sum()), 3),
                "mean_motion": round(float(motion[inside].mean()), 5),
                "mean_error": round(float(error[inside].mean()), 5),
                "recovered": round(float(1.0 - error[inside].mean() / motion[inside].mean()), 4),
            }
        )
    return bands


def gain_and_rest(predicted: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How a predicted displacement field [N, 3] relates to a reference one [N, 3].

    gain: the least-squares scale of the reference that best matches the prediction (1: the right size
    on average); gain per axis likewise; rest: what remains of the prediction beyond that scaled
    reference, as a share of the reference's size (0: the right pattern).
    """
    scale = float((reference**2).sum())
    gain = float((predicted * reference).sum() / max(scale, 1e-30))
    per_axis = (predicted * reference).sum(0) / np.maximum((reference**2).sum(0), 1e-30)
    rest = float(np.linalg.norm(predicted - gain * reference) / max(np.sqrt(scale), 1e-30))
    return {"gain": round(gain, 3), "gain_per_axis": [round(float(g), 3) for g in per_axis], "rest": round(rest, 3)}


def diagnose(
    truth: Mapping[str, np.ndarray], registered: dict[str, np.ndarray], ceiling: dict[str, np.ndarray]
) -> dict:
    """The fit's registered frames against the truth and against its own skinning's ceiling.

    truth: the fixture's truth.npz as a mapping; registered and ceiling: per sequence [T, V, 3] (the
    ceiling from `least_squares_frames` on the fit's scaffold).
    """
    face, diagonal = truth["face_vertices"], float(truth["diagonal"])
    sequences = {}
    for name, predicted in registered.items():
        true, projected = truth[name], ceiling[name]
        motion = np.linalg.norm(true[-1, face] - true[0, face], axis=-1)
        moving = face[motion > MOVING_THRESHOLD * diagonal]
        sequences[name] = gain_and_rest(
            predicted[-1, moving] - true[0, moving], projected[-1, moving] - true[0, moving]
        )
    return {
        "fit": motion_bands(registered, truth),
        "ceiling": motion_bands({name: ceiling[name] for name in registered}, truth),
        "last_frame_against_ceiling": sequences,
    }


def error_map(
    mesh: HeadMesh,
    truth: Mapping[str, np.ndarray],
    registered: dict[str, np.ndarray],
    ceiling: dict[str, np.ndarray],
    size: int = 256,
) -> np.ndarray:
    """[3 * size per sequence, 3 * size, 3] uint8: rows of true motion, ceiling error, fit error (front view)."""
    camera = ict_cameras(1, size)[0]
    face, diagonal = truth["face_vertices"], float(truth["diagonal"])
    on_face = np.zeros(len(mesh.vertices), bool)
    on_face[face] = True
    full_scale = 10 * MOVING_THRESHOLD * diagonal

    def coloured(values: np.ndarray) -> np.ndarray:
        t = np.clip(np.where(on_face, values, 0.0) / full_scale, 0.0, 1.0)[:, None]
        return (np.concatenate([t, 1.0 - np.abs(2.0 * t - 1.0), 1.0 - t], 1) * 0.9 + 0.05).astype(np.float32)

    rows = []
    for name, predicted in registered.items():
        true = truth[name]
        tiles = []
        for values in (
            np.linalg.norm(true[-1] - true[0], axis=-1),
            np.linalg.norm(ceiling[name][-1] - true[-1], axis=-1),
            np.linalg.norm(predicted[-1] - true[-1], axis=-1),
        ):
            rgba = render_mesh(true[-1], mesh.faces, coloured(values), camera.K, camera.world_to_camera, size, size)
            tiles.append((np.clip(rgba[..., :3], 0.0, 1.0) * 255 + 0.5).astype(np.uint8))
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="bench_fit_ict.py's --work folder")
    parser.add_argument("--map", type=Path, default=None, help="also draw the errors into this PNG")
    ns = parser.parse_args()
    fixture, bundle = ns.work / "fixture", ns.work / "bundle"
    mesh = load_head_mesh(fixture / "head.ply")
    scaffold = load_scaffold(bundle / SCAFFOLD)
    names = sorted(path.stem for path in (bundle / "registered").glob("*.npz"))
    registered = {name: read_registered(bundle / "registered" / f"{name}.npz", len(mesh.vertices)) for name in names}
    # Read once: the standard capture's truth is a few hundred megabytes.
    with np.load(fixture / "truth.npz") as data:
        truth = {name: data[name] for name in data.files}
    ceiling = least_squares_frames(mesh, scaffold, truth)
    print(json.dumps(diagnose(truth, registered, ceiling), indent=2))
    if ns.map is not None:
        Image.fromarray(error_map(mesh, truth, registered, ceiling)).save(ns.map)
        print(f"error map: {ns.map}")


if __name__ == "__main__":
    main()
