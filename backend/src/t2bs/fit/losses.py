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


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity of [B, H, W, C] images (Wang et al. 2004, Gaussian window)."""
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


def photometric(rendered: Tensor, target: Tensor, ssim_weight: float) -> Tensor:
    """Robust (L1) colour error plus (1 - SSIM)."""
    loss = (rendered - target).abs().mean()
    if ssim_weight > 0:
        loss = loss + ssim_weight * (1.0 - ssim(rendered, target))
    return loss


def psnr(rendered: Tensor, target: Tensor) -> Tensor:
    mse = ((rendered - target) ** 2).mean().clamp_min(1e-10)
    return -10.0 * torch.log10(mse)


def laplacian_loss(laplacian: SparseMatrix, deformed: Tensor, static_delta: Tensor) -> Tensor:
    """Keep the mesh's local shape: ||L x' - L x||^2. laplacian [V, V], deformed [B, V, 3]."""
    batch = deformed.shape[0]
    stacked = deformed.permute(1, 0, 2).reshape(deformed.shape[1], batch * 3)
    delta = (laplacian @ stacked).reshape(-1, batch, 3).permute(1, 0, 2)
    return ((delta - static_delta[None]) ** 2).sum(-1).mean()


def arap_loss(controls: Tensor, neighbors: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """As-rigid-as-possible between controls: each control's transform should carry its neighbours.

    controls [C, 3], neighbors [C, J], rotation [B, C, 3, 3], translation [B, C, 3].
    """
    edge = controls[neighbors] - controls[:, None]  # [C, J, 3]
    predicted = (rotation[:, :, None] @ edge[None, ..., None]).squeeze(-1)  # [B, C, J, 3]
    actual = edge[None] + translation[:, neighbors] - translation[:, :, None]
    return ((predicted - actual) ** 2).sum(-1).mean()


def identity_loss(rotation: Tensor, translation: Tensor, global_rotation: Tensor, global_translation: Tensor) -> Tensor:
    """How far a deformation is from the identity (ties frame 0 to the static asset)."""
    eye = torch.eye(3, dtype=rotation.dtype, device=rotation.device)
    return (
        ((rotation - eye) ** 2).sum((-1, -2)).mean()
        + (translation**2).sum(-1).mean()
        + ((global_rotation - eye) ** 2).sum((-1, -2)).mean()
        + (global_translation**2).sum(-1).mean()
    )
