"""The gsplat backend of `t2bs.render.rasterize`: a thin wrapper over `gsplat.rasterization`.

gsplat (>= 1.5, CUDA only) is imported lazily, inside the call, so that this module imports on any
machine. Written against gsplat 1.5.3: `rasterization()` takes leading batch dimensions (means
[..., N, 3], viewmats [..., C, 4, 4], outputs [..., C, H, W, channels]), so the B (Gaussians,
camera) pairs are passed as batch dimension B with one camera each (C = 1).
"""

from __future__ import annotations

from torch import Tensor

from .gaussians import RenderOutput


def rasterize_gsplat(
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
) -> RenderOutput:
    """Render with gsplat; arguments as `t2bs.render.rasterize` (background is [B, 3] or None)."""
    import gsplat  # lazy: gsplat needs CUDA to render, and compiles its kernels on first use

    render, alpha, _meta = gsplat.rasterization(
        means.contiguous(),
        quats.contiguous(),
        scales.contiguous(),
        opacities.contiguous(),
        colors.contiguous(),
        viewmats[:, None].contiguous(),  # [B, C=1, 4, 4]
        Ks[:, None].contiguous(),  # [B, C=1, 3, 3]
        width,
        height,
        near_plane=near,
        far_plane=far,
        eps2d=eps2d,
        # "RGB+D": the extra channel is the accumulated depth sum_i w_i z_i ("ED" would divide it
        # by alpha); gsplat composites it with background 0.
        render_mode="RGB+D",
        backgrounds=None if background is None else background[:, None].contiguous(),  # [B, C=1, 3]
        packed=False,
        rasterize_mode="antialiased" if antialiased else "classic",
        tile_size=16,
    )
    render = render[:, 0]  # [B, H, W, 4]
    return RenderOutput(rgb=render[..., :3], alpha=alpha[:, 0], depth=render[..., 3:4])
