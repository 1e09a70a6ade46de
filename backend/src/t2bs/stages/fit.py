"""The `fit` stage (DESIGN.md stage 4): deformable Gaussians fitted to the capture."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ..bundle import CAPTURE_DIR
from ..capture import read_capture
from ..errors import BundleError, InputError
from ..fit.model import DeformableGaussians
from ..fit.presets import PRESETS, FitPreset
from ..fit.scaffold import Scaffold, build_scaffold
from ..fit.sparse import SparseMatrix
from ..fit.storage import (
    FIT_FORMAT_VERSION,
    FIT_JSON,
    GAUSSIANS_PLY,
    SCAFFOLD,
    WEIGHTS,
    load_weights,
    save_scaffold,
    save_weights,
    write_fit_json,
    write_gaussians_ply,
)
from ..fit.trainer import FitData, Trainer, load_fit_data
from ..mesh_io import HeadMesh
from ..render.gaussians import resolve_backend
from ..stage import Stage, StageContext
from .asset import load_asset

CHECKPOINT = "weights.safetensors"


def resume_from_checkpoint(ctx: StageContext, model: DeformableGaussians, path: Path) -> int:
    """Load an interrupted fit's checkpoint into `model` and return the step to go on from (0: none).

    The runner lets a run resume only with the settings it started with, but the code may have been
    upgraded in between: a checkpoint of another format is set aside and the fit starts over, since
    reading its tensors with a new meaning would go on from a state the new model never reached.
    """
    if not path.exists():
        return 0
    from safetensors import SafetensorError, safe_open

    # A load that fails part-way has already copied the tensors that matched.
    fresh = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != str(FIT_FORMAT_VERSION):
            raise BundleError(f"format {metadata.get('format')!r}, this version writes {FIT_FORMAT_VERSION}")
        load_weights(model, path)
        start = int(metadata.get("step", 0))
    except (OSError, ValueError, SafetensorError, BundleError) as exc:
        ctx.log.warning("the interrupted fit's checkpoint cannot be continued (%s); starting over", exc)
        model.load_state_dict(fresh)
        path.unlink()
        return 0
    ctx.log.info("resuming the fit from step %d", start)
    ctx.record_metrics(resumed_from_step=start)
    return start


def resolve_device(name: str) -> torch.device:
    if name in ("auto", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but torch sees no CUDA device; use --device cpu or auto.")
    if name not in ("cuda", "cpu"):
        raise InputError(f"Unknown device {name!r}; choose auto, cuda or cpu.")
    return torch.device(name)


def sparse_laplacian(matrix: Any, device: torch.device) -> SparseMatrix:
    return SparseMatrix.from_scipy(matrix, device)


def build_trainer(
    mesh: HeadMesh, data: FitData, preset: FitPreset, device: torch.device, seed: int
) -> tuple[Scaffold, Trainer]:
    """The static Gaussians, the deformable model and its optimiser, as `t2bs fit` builds them."""
    scaffold = build_scaffold(
        mesh, surface_samples=preset.surface_samples, control_count=preset.control_count, seed=seed
    )
    model = DeformableGaussians(
        scaffold,
        [s.frame_count for s in data.sequences],
        code_dim=preset.code_dim,
        hidden=preset.hidden,
        layers=preset.layers,
    ).to(device)
    return scaffold, Trainer(model, data, preset, laplacian=sparse_laplacian(scaffold.laplacian, device), seed=seed)


class FitStage(Stage):
    name = "fit"
    outputs = ("fit",)

    def run(self, ctx: StageContext) -> None:
        preset_name = str(ctx.settings.get("preset", "preview"))
        if preset_name not in PRESETS:
            raise InputError(f"Unknown preset {preset_name!r}; choose one of: {', '.join(PRESETS)}.")
        preset = PRESETS[preset_name]
        if ctx.settings.get("fit_steps") is not None:
            steps = int(ctx.settings["fit_steps"])
            if steps < 1:
                raise InputError("--fit-steps must be at least 1.")
            preset = dataclasses.replace(preset, steps=steps)
        # Checkpoints at least five times per fit, so a cancelled short fit also resumes part-way.
        preset = dataclasses.replace(preset, checkpoint_every=max(1, min(preset.checkpoint_every, preset.steps // 5)))
        device = resolve_device(str(ctx.settings.get("device", "auto")))
        seed = int(ctx.settings.get("seed", 0))
        torch.manual_seed(seed)
        ctx.record_seed(seed)

        mesh = load_asset(ctx.bundle.root)
        capture = read_capture(ctx.input(CAPTURE_DIR), check_media=False)
        ctx.step(0.0, "reading the capture")
        data = load_fit_data(capture, mesh, device, progress=lambda f, m: ctx.step(0.05 * f, m))
        ctx.step(0.05, "building Gaussians and control points")
        scaffold, trainer = build_trainer(mesh, data, preset, device, seed)
        model = trainer.model

        checkpoint_path = ctx.checkpoint_dir / CHECKPOINT
        start = resume_from_checkpoint(ctx, model, checkpoint_path)

        def checkpoint(state: dict[str, torch.Tensor], step: int) -> None:
            save_weights(checkpoint_path, state, {"step": str(step), "format": str(FIT_FORMAT_VERSION)})

        result = trainer.run(
            start_step=start,
            step_callback=lambda f, m: ctx.step(0.07 + 0.9 * f, m),
            checkpoint=checkpoint,
        )
        ctx.step(0.98, "writing the model")
        save_scaffold(ctx.output(SCAFFOLD), scaffold)
        save_weights(ctx.output(WEIGHTS), model.state_dict())
        write_fit_json(
            ctx.output(FIT_JSON),
            {
                "preset": preset_name,
                "preset_values": preset.to_dict(),
                "sequences": [
                    {"name": s.name, "first_frame": s.first_frame, "frame_count": s.frame_count} for s in data.sequences
                ],
                "canonical_view": data.canonical_view.cpu().tolist(),
                "frame_count": data.frame_count,
                "gaussians": scaffold.count,
                "controls": len(scaffold.controls),
            },
        )
        with torch.no_grad():
            # The neutral head as the frontal video shows it: shaded, without the per-image drift.
            first = torch.tensor([data.sequences[0].first_frame], device=device)
            neutral, _ = model.gaussians(model.frame_codes(first), data.canonical_view[None], deform=False)
            opacities = model.opacities().cpu().numpy()
        write_gaussians_ply(
            ctx.output(GAUSSIANS_PLY),
            neutral.means[0].cpu().numpy(),
            neutral.quats[0].cpu().numpy(),
            neutral.scales[0].cpu().numpy(),
            neutral.shaded[0].clamp(0, 1).cpu().numpy(),
            opacities,
            mesh,
        )
        ctx.record_provider(
            name="deformable-gaussians",
            preset=preset_name,
            device=str(device),
            rasterizer=resolve_backend(trainer.backend, device),  # the one that ran, not "auto"
        )
        ctx.record_metrics(
            psnr=result.per_sequence_psnr,
            final_losses={k: round(v, 6) for k, v in result.metrics.items()},
            steps=result.steps_done,
            seconds=round(result.seconds, 2),
            gaussians=scaffold.count,
            controls=len(scaffold.controls),
        )
