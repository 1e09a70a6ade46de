"""Stage 6, `model`: registered frames -> the blendshape model, `model.npz` (DESIGN.md).

The math is in `t2bs.blendshape_model`; this stage reads the bundle, orders the sequences as the
capture lists them, and records what it built in the manifest.
"""

from __future__ import annotations

import json

import numpy as np

from ..blendshape_model import build_model
from ..bundle import CAPTURE_DIR, MODEL, REGISTERED_DIR, read_registered, write_model
from ..capture import read_capture
from ..errors import InputError
from ..expressions import LIBRARY_BY_NAME, Expression, canonical_name
from ..stage import Stage, StageContext
from .asset import load_asset
from .prompt import PROMPTS


class ModelStage(Stage):
    name = "model"
    outputs = (MODEL,)

    def run(self, ctx: StageContext) -> None:
        mesh = load_asset(ctx.bundle.root)
        names = registered_sequence_order(ctx)
        sequences = {}
        for index, name in enumerate(names):
            ctx.step(0.4 * index / len(names), f"reading registered frames of {name}")
            sequences[name] = read_registered(ctx.input(f"{REGISTERED_DIR}/{name}.npz"), mesh.vertex_count)
        ctx.step(0.4, f"building blendshapes from {len(names)} sequences")
        # The character's left is +X of the normalised frame; the model lives in the file's frame.
        left = mesh.to_source[:3, :3] @ np.array([1.0, 0.0, 0.0])
        model = build_model(
            mesh.source_vertices().astype(np.float32),
            mesh.faces,
            sequences,
            left_hint=left,
            uv=mesh.uv,
            colors=mesh.vertex_colors,
            acts=run_acts(ctx),
        )
        ctx.step(0.9, f"writing {MODEL}")
        write_model(ctx.output(MODEL), model.to_arrays())
        diagonal = model.diagonal
        ctx.record_metrics(
            blendshapes=model.names,
            pca_components=len(model.pca.stdev),
            pca_variance_explained_10=float(model.pca.variance_ratio[:10].sum()),
            peak_displacement_over_diagonal={
                name: float(np.linalg.norm(shape, axis=1).max() / diagonal)
                for name, shape in zip(model.names, model.shapes, strict=True)
            },
        )
        ctx.step(1.0, f"{len(model.names)} blendshapes")


def run_acts(ctx: StageContext) -> dict[str, Expression]:
    """The acts the prompt stage defined (prompts.json), by sequence name; empty without it."""
    path = ctx.bundle.path(PROMPTS)
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["expressions"]
        return {
            entry["name"]: Expression(
                entry["name"],
                entry["action"],
                tuple(entry["shapes"]) if len(entry["shapes"]) == 2 else None,
                entry["region"],
            )
            for entry in entries
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); run the prompt stage again.") from None


def registered_sequence_order(ctx: StageContext) -> list[str]:
    """Sequence names in the capture's order (the order the animator chose), else in the expression
    library's order (most used first) and then alphabetical."""
    folder = ctx.input(REGISTERED_DIR)
    found = sorted(path.stem for path in folder.glob("*.npz"))
    if not found:
        raise InputError(f"{folder} holds no registered sequences; run the register stage first.")
    capture_dir = ctx.bundle.path(CAPTURE_DIR)
    if (capture_dir / "capture.json").is_file():
        listed = read_capture(capture_dir, check_media=False).sequence_names
        return [name for name in listed if name in found] + [name for name in found if name not in listed]
    library = list(LIBRARY_BY_NAME)

    def rank(name: str) -> tuple[int, str]:
        key = canonical_name(name)
        return (library.index(key) if key in library else len(library), name)

    return sorted(found, key=rank)


class ImportRegisteredStage(Stage):
    """The `register` stage's output taken from files the user made elsewhere (`t2bs blendshapes`).

    Setting `registered`: a folder of `<sequence>.npz` files, each with `vertices` [T, V, 3] in the
    asset file's coordinates, frame 0 neutral; they are checked against the asset and copied in.
    """

    name = "register"
    outputs = (REGISTERED_DIR,)

    def run(self, ctx: StageContext) -> None:
        from pathlib import Path

        from ..bundle import write_registered

        folder = Path(str(ctx.settings.get("registered", "")))
        if not folder.is_dir():
            raise InputError(f"The registered-frames folder {folder} does not exist.")
        files = sorted(folder.glob("*.npz"))
        if not files:
            raise InputError(f"{folder} holds no <sequence>.npz files of registered frames.")
        mesh = load_asset(ctx.bundle.root)
        for index, path in enumerate(files):
            ctx.step(index / len(files), f"checking {path.name}")
            vertices = read_registered(path, mesh.vertex_count)
            if len(vertices) < 2:
                raise InputError(f"{path} has a single frame; a sequence needs the neutral and at least one more.")
            write_registered(ctx.output(f"{REGISTERED_DIR}/{path.stem}.npz"), vertices)
        ctx.record_provider(name="registered", path=str(folder.resolve()))
        ctx.record_metrics(sequences=len(files))
