"""Ground truth for the blendshape model: the ICT-FaceKit expression shapes as acted sequences.

ICT's 53 shapes use `_L`/`_R` halves (`eyeBlink_L`), as a rig does. A performer acts both halves at
once (a blink closes both eyes), so `ict_acts` pairs them into the acts of our expression library
(`eyeBlink` = eyeBlink_L + eyeBlink_R; looking left = eyeLookOut_L + eyeLookIn_R). `act_sequences`
turns acts into registered frames rising from neutral, the model stage's input; `ict_true_shapes`
gives ICT's own shapes under our names, to compare the model's split halves with.

    python -m t2bs.testing.ict_blendshapes    # prints the figures of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..expressions import LIBRARY_BY_NAME, canonical_name
from .ict_fixture import IctHead, load_ict_head

# ICT pairs whose act is not named after their stem.
_GAZE_ACTS = {"eyeLookLeft": ("eyeLookOut_L", "eyeLookIn_R"), "eyeLookRight": ("eyeLookIn_L", "eyeLookOut_R")}
_FACE_PARTS = ("face",)


def ict_true_shapes(head: IctHead) -> dict[str, np.ndarray]:
    """ICT's shapes keyed by our camelCase names (`eyeBlink_L` -> `eyeBlinkLeft`): [V, 3] offsets."""
    return {canonical_name(name): head.expressions[i] for i, name in enumerate(head.expression_names)}


def ict_acts(head: IctHead) -> dict[str, np.ndarray]:
    """Acts of the expression library (and ICT's unpaired shapes) as [V, 3] offsets at full strength."""
    index = {name: i for i, name in enumerate(head.expression_names)}
    acts: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for act, pair in _GAZE_ACTS.items():
        acts[act] = head.expressions[index[pair[0]]] + head.expressions[index[pair[1]]]
        used.update(pair)
    for name in head.expression_names:
        if name in used:
            continue
        if name.endswith("_L"):
            stem = name[:-2]
            acts[stem] = head.expressions[index[name]] + head.expressions[index[stem + "_R"]]
            used.update((name, stem + "_R"))
        elif not name.endswith("_R"):
            acts[name] = head.expressions[index[name]]
            used.add(name)
    return acts


def act_sequences(neutral: np.ndarray, acts: dict[str, np.ndarray], frames: int = 9) -> dict[str, np.ndarray]:
    """Registered sequences: each act rising linearly from neutral (frame 0) to full strength."""
    ramp = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None, None]
    return {name: (neutral[None] + ramp * offset[None]).astype(np.float32) for name, offset in acts.items()}


def write_ict_registered(out: str | Path, acts: list[str] | None = None, frames: int = 9) -> tuple[Path, Path]:
    """Write the ICT head (head.ply, vertex-coloured, centimetres) and registered frames of its acts
    (registered/<act>.npz), the input of `t2bs blendshapes`. Returns (asset path, registered folder).
    """
    import trimesh

    from ..bundle import write_registered

    out = Path(out)
    head = load_ict_head()
    all_acts = ict_acts(head)
    chosen = {name: all_acts[name] for name in (acts if acts is not None else list(all_acts))}
    out.mkdir(parents=True, exist_ok=True)
    asset = out / "head.ply"
    shade = np.clip(0.55 + 0.1 * np.sin(head.neutral / 3.0), 0.0, 1.0)
    trimesh.Trimesh(head.neutral, head.faces, vertex_colors=(shade * 255).astype(np.uint8), process=False).export(asset)
    folder = out / "registered"
    folder.mkdir(exist_ok=True)
    for name, sequence in act_sequences(head.neutral, chosen, frames).items():
        write_registered(folder / f"{name}.npz", sequence)
    return asset, folder


def face_vertices(head: IctHead) -> np.ndarray:
    """Indices of the skin of the face region (where the expressions act)."""
    return np.concatenate([head.part_indices(part) for part in _FACE_PARTS])


def evaluate(held_out: int = 6, mixes: int = 40, seed: int = 0) -> dict[str, float]:
    """Build a model from ICT acts and score it; the figures of docs/benchmarks.md (see the tests).

    * mixes: random mixes of 2-5 acts at random strengths (frames the model never saw), rebuilt by
      least-squares slider weights; mean vertex error over the face, / diagonal.
    * leave-out: `held_out` acts left out of the model's input, each rebuilt from the others.
    * split: the largest |Left + Right - whole| over the split acts, / diagonal.
    * halves: mean error of our Left/Right halves against ICT's own `_L`/`_R` shapes, / diagonal.
    """
    from ..blendshape_model import build_model, solve_weights

    head = load_ict_head()
    acts = ict_acts(head)
    neutral = head.neutral
    diagonal = float(np.linalg.norm(neutral.max(0) - neutral.min(0)))
    face = face_vertices(head)
    left = np.array([1.0, 0.0, 0.0])
    model = build_model(neutral, head.faces, act_sequences(neutral, acts), left_hint=left)

    rng = np.random.default_rng(seed)
    names = list(acts)
    mix_errors = []
    for _ in range(mixes):
        chosen = rng.choice(len(names), size=rng.integers(2, 6), replace=False)
        target = neutral + sum(rng.uniform(0.2, 1.0) * acts[names[i]] for i in chosen)
        weights = solve_weights(model, target, face)
        mix_errors.append(np.linalg.norm(model.evaluate(weights)[face] - target[face], axis=1).mean())

    unsplit = build_model(neutral, head.faces, act_sequences(neutral, acts), left_hint=left, split=False)
    split_error = 0.0
    for name in acts:
        entry = LIBRARY_BY_NAME.get(name)
        if entry is None or not entry.is_split:
            continue
        halves = model.shapes[[i for i, source in enumerate(model.sources) if source == name]].sum(axis=0)
        whole = unsplit.shapes[unsplit.names.index(name)]
        split_error = max(split_error, float(np.abs(halves - whole).max()))

    truth = ict_true_shapes(head)
    half_errors = [
        float(np.linalg.norm(model.shapes[i][face] - truth[name][face], axis=1).mean())
        for i, name in enumerate(model.names)
        if name in truth
        and LIBRARY_BY_NAME.get(model.sources[i]) is not None
        and LIBRARY_BY_NAME[model.sources[i]].is_split
    ]

    leave_out_errors = []
    for name in rng.choice(names, size=held_out, replace=False):
        rest = {n: a for n, a in acts.items() if n != name}
        partial = build_model(neutral, head.faces, act_sequences(neutral, rest), left_hint=left)
        target = neutral + acts[str(name)]
        weights = solve_weights(partial, target, face)
        leave_out_errors.append(np.linalg.norm(partial.evaluate(weights)[face] - target[face], axis=1).mean())

    return {
        "acts": len(acts),
        "shapes": len(model.names),
        "pca_components": len(model.pca.stdev),
        "mix_error_over_diagonal": float(np.mean(mix_errors) / diagonal),
        "mix_error_max_over_diagonal": float(np.max(mix_errors) / diagonal),
        "leave_out_error_over_diagonal": float(np.mean(leave_out_errors) / diagonal),
        "split_sum_error_over_diagonal": split_error / diagonal,
        "half_vs_ict_error_over_diagonal": float(np.mean(half_errors) / diagonal),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(evaluate(seed=args.seed), indent=2))


if __name__ == "__main__":
    main()
