"""Cost of one fit step against a bare rasterizer forward+backward of the same batch, in one run.

Issue 3 asks that an optimisation step of the fit cost at most 2x a bare gsplat forward+backward
of the same (frame, view) batch on an H100. This builds the fit as `t2bs fit` does on a small ICT
capture (the step's cost depends on the preset's Gaussians and batch and on the image size, not on
how many frames the capture has), times `Trainer.step` past the colour warm-up, then times the
rasterizer alone on exactly the arguments that step passed it, and prints both and their ratio.

    python bench/bench_fit_step.py --preset standard --device cuda --views 8 --size 512   # the issue's
    python bench/bench_fit_step.py                                  # CPU: preview, 4 views, 128 px
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from bench_rasterizer import timed  # bench/ is on the path of a script run from it

from t2bs.capture import read_capture
from t2bs.fit import trainer as trainer_module
from t2bs.fit.presets import PRESETS
from t2bs.fit.trainer import load_fit_data
from t2bs.mesh_io import load_head_mesh
from t2bs.render import rasterize
from t2bs.render.gaussians import resolve_backend
from t2bs.stages.fit import build_trainer
from t2bs.testing.ict_fixture import make_ict_capture


def measure(
    work: Path,
    *,
    preset_name: str = "preview",
    device_name: str = "cpu",
    views: int = 4,
    size: int = 128,
    sequences: int = 2,
    frames: int = 5,
    warmup: int = 3,
    runs: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    device = torch.device(device_name)
    preset = PRESETS[preset_name]
    fixture = make_ict_capture(work / "fixture", sequences=sequences, views=views, frames=frames, size=size, seed=seed)
    mesh = load_head_mesh(fixture.asset)
    data = load_fit_data(read_capture(fixture.capture, check_media=False), mesh, device)
    scaffold, trainer = build_trainer(mesh, data, preset, device, seed)

    # Steps after the colour warm-up: the deformation, the geometry terms and the change term all run.
    first = int(preset.color_warmup * preset.steps) + 1
    counter = iter(range(first, first + warmup + runs))
    step_seconds = timed(lambda: trainer.step(next(counter)), device, warmup, runs)

    # The rasterizer's own arguments in one such step, caught on their way in.
    caught: dict[str, Any] = {}
    real_rasterize = trainer_module.rasterize

    def catch(*args: Any, **kwargs: Any) -> Any:
        caught.setdefault("args", args)
        caught.setdefault("kwargs", kwargs)
        return real_rasterize(*args, **kwargs)

    trainer_module.rasterize = catch  # type: ignore[assignment]
    try:
        trainer.step(first + warmup + runs)
    finally:
        trainer_module.rasterize = real_rasterize  # type: ignore[assignment]
    args = list(caught["args"])
    leaves = [a.detach().clone().requires_grad_(True) for a in args[:5]]  # means, quats, scales, opacities, colors

    def bare() -> None:
        for leaf in leaves:
            leaf.grad = None
        out = rasterize(*leaves, *args[5:], **caught["kwargs"])
        (out.rgb.sum() + out.alpha.sum()).backward()

    bare_seconds = timed(bare, device, warmup, runs)
    step_median, bare_median = statistics.median(step_seconds), statistics.median(bare_seconds)
    return {
        "preset": preset_name,
        "device": str(device),
        "backend": resolve_backend(str(caught["kwargs"].get("backend", "auto")), device),
        "batch": f"{preset.batch} images of {size}x{size}, {views} views",
        "gaussians": scaffold.count,
        "gaussians_rendered_per_image": int(args[0].shape[1]),
        "step_ms": round(1000 * step_median, 2),
        "bare_rasterize_fwd_bwd_ms": round(1000 * bare_median, 2),
        "ratio": round(step_median / bare_median, 2),
        "target_ratio": "<= 2 (H100, standard preset, 512 px)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="preview")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--runs", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="folder for the capture (default: temp)")
    ns = parser.parse_args(argv)
    if ns.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine; use --device cpu.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="t2bs-bench-step-") as temp:
        work = ns.work or Path(temp)
        result = measure(
            work,
            preset_name=ns.preset,
            device_name=ns.device,
            views=ns.views,
            size=ns.size,
            warmup=ns.warmup,
            runs=ns.runs,
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
