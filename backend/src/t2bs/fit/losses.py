"""Loss terms of the fit. Images are [B, H, W, C] in 0..1; positions in normalised units."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .sparse import SparseMatrix


def _gaussian_taps(size: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_window_size(sigma: float) -> int:
    """The odd window width (px) that holds a Gaussian of standard deviation `sigma` (px): 11 for the
    classic 1.5 px, 7 for 1 px, 5 for 0.75 px."""
    return 2 * round(3.3 * sigma) + 1


def ssim(a: Tensor, b: Tensor, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity of [B, H, W, C] images (Wang et al. 2004), Gaussian window of
    standard deviation `sigma` px (1.5 px and 11 px wide: the classic setting)."""
    window = ssim_window_size(sigma)
    x, y = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)
    channels = x.shape[1]
    # The five local means in one pass, and the Gaussian window as a row then a column filter: the
    # same sums as five 2D convolutions at a fraction of the cost.
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)
    taps = _gaussian_taps(window, sigma, x.device, x.dtype)
    count = stack.shape[1]
    rows = F.conv2d(stack, taps.view(1, 1, 1, -1).expand(count, 1, 1, window), padding=(0, window // 2), groups=count)
    means = F.conv2d(rows, taps.view(1, 1, -1, 1).expand(count, 1, window, 1), padding=(window // 2, 0), groups=count)
    mu_x, mu_y, exx, eyy, exy = means.split(channels, 1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return value.mean()


def photometric(
    rendered: Tensor, target: Tensor, ssim_weight: float, gradient_weight: float = 0.0, ssim_sigma: float = 1.5
) -> Tensor:
    """Robust (L1) colour error plus (1 - SSIM at window `ssim_sigma` px), plus `gradient_weight` times
    `gradient_l1`.

    rendered, target [B, H, W, 3] in 0..1.
    """
    loss = (rendered - target).abs().mean()
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1.0 - ssim(rendered, target, ssim_sigma))
    if gradient_weight > 0:
        loss = loss + gradient_weight * gradient_l1(rendered, target)
    return loss


def gradient_l1(rendered: Tensor, target: Tensor) -> Tensor:
    """L1 error of the images' horizontal and vertical differences of neighbouring pixels.

    rendered, target [B, H, W, C] -> scalar (the two directions' mean errors summed). Blind to a
    colour offset and to slow shading, it weighs where edges and texture lie, which is how motion
    along the skin shows in an image.
    """
    error = rendered - target
    across = (error[:, :, 1:] - error[:, :, :-1]).abs().mean()
    down = (error[:, 1:] - error[:, :-1]).abs().mean()
    return across + down


def psnr(rendered: Tensor, target: Tensor) -> Tensor:
    mse = ((rendered - target) ** 2).mean().clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def laplacian_loss(laplacian: SparseMatrix, deformed: Tensor, static_delta: Tensor) -> Tensor:
    """Keep the mesh's local shape: ||L x' - L x||^2. laplacian [V, V], deformed [B, V, 3]."""
    batch = deformed.shape[0]
    stacked = deformed.permute(1, 0, 2).reshape(deformed.shape[1], batch * 3)
    delta = (laplacian @ stacked).reshape(-1, batch, 3).permute(1, 0, 2)
    return ((delta - static_delta[None]) ** 2).sum(-1).mean()


def best_fit_rotations(edge: Tensor, moved: Tensor) -> Tensor:
    """Per control, the rotation that best turns its rest edges onto the moved ones (Kabsch).

    edge [C, J, 3], moved [B, C, J, 3] -> [B, C, 3, 3], proper rotations (det +1).
    """
    covariance = torch.einsum("cjx,bcjy->bcyx", edge, moved)  # sum_j moved_j edge_j^T
    # A diverged fit must reach the trainer's non-finite-loss check, not fail inside the SVD: the
    # energy stays non-finite through `moved`, whatever rotation is fitted here.
    covariance = torch.nan_to_num(covariance, nan=0.0, posinf=0.0, neginf=0.0)
    u, _, vh = torch.linalg.svd(covariance)
    sign = torch.ones_like(u[..., 0])
    sign[..., 2] = torch.det(u @ vh)
    return u @ torch.diag_embed(sign) @ vh


def arap_loss(controls: Tensor, neighbors: Tensor, rotation: Tensor, translation: Tensor, spacing: float) -> Tensor:
    """As-rigid-as-possible between controls: each control's neighbourhood may turn, not stretch.

    Each control's moved edges are compared with the best rotation of its rest edges (the classic ARAP
    energy), so a region that turns as a whole (an opening jaw, a bulging cheek) pays nothing and only
    stretch and shear cost. The field's own rotations, which the skinning applies, are tied to that
    best fit. (Comparing with the field's rotations instead made this a membrane on the translations
    wherever those rotations had not been learned, which held back motion in depth and jaws.)

    controls [C, 3], neighbors [C, J], rotation [B, C, 3, 3], translation [B, C, 3]; stretch is
    measured in units of `spacing` (the controls' typical distance).
    """
    edge = controls[neighbors] - controls[:, None]  # [C, J, 3]
    moved = edge[None] + translation[:, neighbors] - translation[:, :, None]  # [B, C, J, 3]
    # The best fit is a minimum over rotations: the energy's gradient does not flow through it.
    best = best_fit_rotations(edge, moved.detach())
    predicted = torch.einsum("bcxy,cjy->bcjx", best, edge)
    stretch = ((predicted - moved) ** 2).sum(-1).mean() / spacing**2
    return stretch + ((rotation - best) ** 2).sum((-1, -2)).mean()


def transform_gap(
    rotation: Tensor, translation: Tensor, other_rotation: Tensor, other_translation: Tensor, spacing: float
) -> Tensor:
    """How far apart two batches of rigid transforms are: the mean squared difference of the rotations
    [..., 3, 3] plus that of the translations [..., 3] in units of `spacing` (broadcast like tensors)."""
    return ((rotation - other_rotation) ** 2).sum((-1, -2)).mean() + ((translation - other_translation) ** 2).sum(
        -1
    ).mean() / spacing**2


def identity_loss(rotation: Tensor, translation: Tensor, global_rotation: Tensor, global_translation: Tensor) -> Tensor:
    """How far a deformation is from the identity (ties frame 0 to the static asset)."""
    eye = torch.eye(3, dtype=rotation.dtype, device=rotation.device)
    return (
        ((rotation - eye) ** 2).sum((-1, -2)).mean()
        + (translation**2).sum(-1).mean()
        + ((global_rotation - eye) ** 2).sum((-1, -2)).mean()
        + (global_translation**2).sum(-1).mean()
    )
