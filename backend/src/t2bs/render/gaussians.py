"""One interface to rasterize 3D Gaussians, with a gsplat (CUDA) and a pure-PyTorch backend.

The fitting stage renders batches of (deformed Gaussians, camera) pairs and needs the same picture
and the same gradients whichever backend runs: gsplat on CUDA for speed, the PyTorch rasterizer on
the CPU (tests, previews, machines without CUDA). The PyTorch rasterizer reproduces gsplat 1.5.3's
3DGS math, so either can stand in for the other: EWA projection with the Jacobian clamped to 1.3x
the field of view, a low-pass of `eps2d` px^2 (0.3 by default) on the 2D covariance, either as in
3DGS ("classic": it also adds to a small Gaussian's mass) or mass-preserving ("antialiased": the
opacity is scaled by sqrt(det cov2d / det(cov2d + eps2d I)), as Mip-Splatting's 2D filter),
alpha = min(0.999, opacity * exp(-d^T conic d / 2)) with pairs below 1/255 skipped (which is what
gsplat's opacity-aware radius and 16 px tiles amount to), depth-sorted front-to-back compositing
that stops before the Gaussian that would bring the transmittance to 1e-4 or below, and Gaussians
culled when their centre's camera z is outside [near, far] or their opacity is below 1/255.

Conventions (shared by both backends):

* world units are those of the means; cameras are OpenCV-style world-to-camera matrices
  (x right, y down, z forward) with pixel intrinsics `K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`;
* pixel (x, y) has its centre at (x + 0.5, y + 0.5), as in gsplat;
* quaternions are (w, x, y, z) and need not be normalised; scales are linear standard deviations
  along the Gaussian's axes (not log scales); opacities are in 0..1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Backend = Literal["auto", "torch", "gsplat"]


@dataclass
class RenderOutput:
    """What `rasterize` returns; every tensor is differentiable where its inputs are.

    Attributes:
        rgb: [B, H, W, 3] colour, premultiplied by coverage and composited over `background`
            (black when none), i.e. ``sum_i w_i c_i + (1 - alpha) * background``.
        alpha: [B, H, W, 1] accumulated opacity ``sum_i w_i = 1 - T_final``, in 0..1.
        depth: [B, H, W, 1] accumulated camera-space z ``sum_i w_i z_i`` in world units; it is
            NOT divided by alpha (divide by ``alpha.clamp_min(eps)`` for the expected depth).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor


@functools.lru_cache(maxsize=1)
def gsplat_importable() -> bool:
    """Whether `import gsplat` works (cached: the import is slow and its answer cannot change)."""
    try:
        import gsplat  # noqa: F401
    except Exception:
        return False
    return True


def available_backends() -> list[str]:
    """Backends that can render on this machine: always "torch"; "gsplat" with CUDA and gsplat.

    gsplat imports on a CPU-only machine but cannot render there (its reference path still calls
    CUDA code), so it is listed only when CUDA is available too.
    """
    backends = ["torch"]
    if torch.cuda.is_available() and gsplat_importable():
        backends.append("gsplat")
    return backends


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ("torch" or "gsplat") that `backend` means for tensors on `device`."""
    if backend == "auto":
        return "gsplat" if device.type == "cuda" and gsplat_importable() else "torch"
    if backend not in ("torch", "gsplat"):
        raise ValueError(f"unknown rasterizer backend {backend!r}; use 'auto', 'torch' or 'gsplat'")
    if backend == "gsplat":
        if device.type != "cuda":
            raise ValueError("the gsplat backend renders CUDA tensors only; use backend='torch' on the CPU")
        if not gsplat_importable():
            raise ValueError("the gsplat backend needs the gsplat package (pip install 't2bs[cuda]')")
    return backend


def rasterize(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    background: Tensor | None = None,
    near: float = 0.01,
    far: float = 100.0,
    eps2d: float = 0.3,
    antialiased: bool = False,
    backend: Backend | str = "auto",
) -> RenderOutput:
    """Render B independent (Gaussians, camera) pairs: item b draws means[b] etc. with viewmats[b].

    Args:
        means: [B, N, 3] Gaussian centres, world units.
        quats: [B, N, 4] rotations as (w, x, y, z) quaternions, not necessarily normalised.
        scales: [B, N, 3] standard deviations along the Gaussian's local axes, world units (linear).
        opacities: [B, N] peak opacities in 0..1.
        colors: [B, N, 3] colours (any range; typically 0..1).
        viewmats: [B, 4, 4] world-to-camera transforms, OpenCV convention (x right, y down, z forward).
        Ks: [B, 3, 3] pixel intrinsics.
        width, height: image size in pixels.
        background: [B, 3], [3] or None (black): colour behind the Gaussians.
        near, far: Gaussians whose centre has camera z outside [near, far] are dropped.
        eps2d: low-pass added to every 2D covariance, px^2.
        antialiased: gsplat's "antialiased" mode; False is its "classic" mode, as in 3DGS.
        backend: "torch", "gsplat" or "auto" (gsplat when the tensors are on CUDA and gsplat
            imports, the PyTorch rasterizer otherwise).

    Returns:
        RenderOutput with rgb [B, H, W, 3], alpha [B, H, W, 1] and depth [B, H, W, 1].

    Gradients flow to means, quats, scales, opacities and colors with either backend.
    """
    if means.dim() != 3 or means.shape[-1] != 3:
        raise ValueError(f"means must be [B, N, 3], got {tuple(means.shape)}")
    b, n = means.shape[:2]
    expected = {
        "quats": (quats, (b, n, 4)),
        "scales": (scales, (b, n, 3)),
        "opacities": (opacities, (b, n)),
        "colors": (colors, (b, n, 3)),
        "viewmats": (viewmats, (b, 4, 4)),
        "Ks": (Ks, (b, 3, 3)),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{name} must be {list(shape)} to match means {list(means.shape)}, got {list(tensor.shape)}"
            )
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    bg: Tensor | None = None
    if background is not None:
        bg = torch.as_tensor(background, dtype=means.dtype, device=means.device)
        if bg.shape == (3,):
            bg = bg.expand(b, 3)
        if tuple(bg.shape) != (b, 3):
            raise ValueError(f"background must be [3] or [B, 3], got {list(bg.shape)}")

    chosen = resolve_backend(str(backend), means.device)
    if chosen == "gsplat":
        from .gsplat_rasterizer import rasterize_gsplat

        return rasterize_gsplat(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            background=bg, near=near, far=far, eps2d=eps2d, antialiased=antialiased,
        )  # fmt: skip
    from .torch_rasterizer import rasterize_torch

    return rasterize_torch(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        background=bg, near=near, far=far, eps2d=eps2d, antialiased=antialiased,
    )  # fmt: skip
