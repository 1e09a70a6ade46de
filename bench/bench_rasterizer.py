"""Time the Gaussian rasterizer: forward and forward+backward, median of several runs.

The scene is what the fitting stage renders: N Gaussians spread evenly over a sphere of radius 0.5
(a head-sized blob; half of them face away and are occluded), seen from B cameras 2 units away
around it, isotropic scales from the point spacing, opacities near 1.

    python bench/bench_rasterizer.py                      # CPU standard size: B=4, N=20k, 128 px
    python bench/bench_rasterizer.py --device cuda        # GPU standard sizes, gsplat and torch
    python bench/bench_rasterizer.py --device cuda --backend torch --sizes 4x20000x128
    python bench/bench_rasterizer.py --sizes 8x30000x128 --threads 2

CPU timings need an otherwise idle machine: with another busy process on a 2-core machine, torch's
OpenMP threads wait for each other at every operation and 2 threads can be many times slower than 1.

Sizes are BxNxPX (views x Gaussians x square image side). Reference for bare gsplat on an H100
(DESIGN.md): 100k Gaussians, 4 views at 512: 3.3 ms; 50k Gaussians, 16 views at 256: 3.6 ms.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

try:
    from t2bs.capture import look_at_camera
    from t2bs.render import rasterize
    from t2bs.render.gaussians import resolve_backend
except ImportError:  # running from a source checkout without an installed backend
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend" / "src"))
    from t2bs.capture import look_at_camera
    from t2bs.render import rasterize
    from t2bs.render.gaussians import resolve_backend

CPU_SIZES = ["4x20000x128"]
GPU_SIZES = ["4x100000x512", "16x50000x256"]


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """OpenCV world-to-camera [4, 4] for a camera at `eye` looking at `target`, world +Y up."""
    camera = look_at_camera("bench", eye.tolist(), target.tolist(), (0.0, 1.0, 0.0), 1, 1, 60.0)
    return torch.tensor(camera.world_to_camera, dtype=eye.dtype)


def sphere_scene(
    views: int, count: int, size: int, device: torch.device, seed: int = 0, scale_factor: float = 1.0
) -> dict[str, torch.Tensor]:
    """A batch of `views` copies of a Gaussian sphere and one camera per copy (see module doc)."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.arange(count, dtype=torch.float64) + 0.5
    phi = torch.acos(1 - 2 * i / count)  # Fibonacci sphere: even spacing
    theta = math.pi * (1 + 5**0.5) * i
    radius = 0.5
    pts = (
        radius
        * torch.stack(
            [torch.sin(phi) * torch.cos(theta), torch.cos(phi), torch.sin(phi) * torch.sin(theta)], dim=1
        ).float()
    )
    spacing = math.sqrt(4 * math.pi * radius**2 / count)
    means = pts[None].repeat(views, 1, 1)
    # Small per-view jitter, as deformed copies would have.
    means = means + 0.05 * spacing * torch.randn(means.shape, generator=gen)
    quats = torch.nn.functional.normalize(torch.randn(views, count, 4, generator=gen), dim=-1)
    scales = torch.full((views, count, 3), scale_factor * spacing)
    opacities = 0.9 + 0.099 * torch.rand(views, count, generator=gen)
    colors = torch.rand(views, count, 3, generator=gen)
    viewmats, ks = [], []
    focal = 0.5 * size / math.tan(math.radians(40.0) / 2)  # 40 degree field of view
    for v in range(views):
        az = 2 * math.pi * v / views
        eye = torch.tensor([2.0 * math.sin(az), 0.3, 2.0 * math.cos(az)])
        viewmats.append(look_at(eye, torch.zeros(3)))
        ks.append(torch.tensor([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1.0]]))
    scene = {
        "means": means, "quats": quats, "scales": scales, "opacities": opacities, "colors": colors,
        "viewmats": torch.stack(viewmats), "Ks": torch.stack(ks),
    }  # fmt: skip
    return {k: v.to(device) for k, v in scene.items()}


def timed(fn: Callable[[], None], device: torch.device, warmup: int, runs: int) -> list[float]:
    """Wall-clock seconds of `runs` calls after `warmup` calls (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - start)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux/macOS; 0 elsewhere)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def bench_one(
    spec: str, device: torch.device, backend: str, warmup: int, runs: int, scale_factor: float
) -> dict[str, float | str]:
    views, count, size = (int(x) for x in spec.lower().split("x"))
    scene = sphere_scene(views, count, size, device, scale_factor=scale_factor)
    params = {k: scene[k].clone().requires_grad_(True) for k in ("means", "quats", "scales", "opacities", "colors")}
    background = torch.tensor([0.2, 0.3, 0.4], device=device)

    def forward() -> torch.Tensor:
        out = rasterize(
            params["means"], params["quats"], params["scales"], params["opacities"], params["colors"],
            scene["viewmats"], scene["Ks"], size, size, background=background, backend=backend,
        )  # fmt: skip
        return out.rgb.sum() + out.alpha.sum() + 0.1 * out.depth.sum()

    def fwd() -> None:
        with torch.no_grad():
            forward()

    def fwd_bwd() -> None:
        for p in params.values():
            p.grad = None
        forward().backward()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t_fwd = timed(fwd, device, warmup, runs)
    t_fb = timed(fwd_bwd, device, warmup, runs)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        peak_label = "peak gpu MiB"
    else:
        peak = peak_rss_mb()
        peak_label = "peak rss MiB"
    with torch.no_grad():
        out = rasterize(
            scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["colors"],
            scene["viewmats"], scene["Ks"], size, size, backend=backend,
        )  # fmt: skip
    coverage = float((out.alpha > 0.5).float().mean())
    return {
        "size": spec,
        "backend": resolve_backend(backend, device),
        "fwd ms": 1000 * statistics.median(t_fwd),
        "fwd+bwd ms": 1000 * statistics.median(t_fb),
        "min fwd+bwd ms": 1000 * min(t_fb),
        peak_label: peak,
        "coverage": coverage,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=["torch", "gsplat", "auto"],
        help="backends to time (default: torch on the CPU; gsplat and torch on CUDA)",
    )
    parser.add_argument("--sizes", nargs="+", help="BxNxPX specs; default: the standard sizes for --device")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--scale-factor", type=float, default=1.0, help="Gaussian scale / point spacing")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine", file=sys.stderr)
        return 2
    sizes = args.sizes or (GPU_SIZES if device.type == "cuda" else CPU_SIZES)
    backends = args.backend or (["gsplat", "torch"] if device.type == "cuda" else ["torch"])
    try:
        for backend in backends:
            resolve_backend(backend, device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rss_before = peak_rss_mb()
    rows = [bench_one(s, device, b, args.warmup, args.runs, args.scale_factor) for s in sizes for b in backends]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads"
    print(
        f"device: {name}; torch {torch.__version__}; median of {args.runs} runs after {args.warmup} warm-up"
        + (f"; rss before the first scene {rss_before:.0f} MiB" if device.type == "cpu" else "")
    )
    headers = list(rows[0].keys())
    widths = [max(len(h), 12) for h in headers]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        cells = [
            f"{v:.1f}" if isinstance(v, float) and k != "coverage" else (f"{v:.2f}" if isinstance(v, float) else str(v))
            for k, v in row.items()
        ]
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
