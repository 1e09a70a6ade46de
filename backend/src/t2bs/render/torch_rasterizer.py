"""Pure-PyTorch Gaussian rasterizer with gsplat 1.5.3's 3DGS math, "classic" and "antialiased"; any device.

Why not a dense tile rasterizer: on a 2-core CPU the cost is the number of (pixel, Gaussian) pairs
that are evaluated and differentiated. A 16x16 tile holding a Gaussian of radius r makes 256 pixels
pay for it although only ~pi r^2 of them see it; and without early termination the occluded back
half of a head costs as much as the visible front. This rasterizer therefore works on an explicit,
sparse list of pairs:

1. project (autograd, O(B N)): camera-space centre, EWA 2D covariance with the clamped Jacobian,
   the low-pass (in antialiased mode scaling the opacity to keep the Gaussian's mass), conic, and
   the culling rules (near/far, degenerate, opacity < 1/255 after that scaling);
2. build pairs (no autograd, `build_pairs`): Gaussians in depth order, in front-to-back depth
   slices; each emits, scanline by scanline, exactly the pixels of its ellipse alpha >= 1/255; a
   stable sort by pixel groups each pixel's pairs front to back; a segmented running sum of
   log(1 - alpha) finds where each pixel's transmittance would fall to 1e-4 (gsplat's early stop)
   and drops everything behind; before each slice, Gaussians whose box covers no still-open pixel
   are culled (a summed-area table), which removes most occluded Gaussians before any pair is made;
3. composite (`_Composite`, a custom autograd function, in chunks of whole pixel runs): alpha,
   transmittance from a segmented exclusive running sum, weights w = alpha T, scatter-add of
   w * (colour, depth) into the pixels; the backward pass is gsplat's analytic one, with the
   "pairs behind" term as a segmented suffix sum.

Equivalence with gsplat's tiles: gsplat lets a Gaussian reach the pixels of the 16 px tiles its
radius box touches and skips pairs with alpha < 1/255. Its radius is ceil(extend * sqrt(cov_xx))
with extend = min(3.33, sqrt(2 ln(255 opacity))), which bounds exactly the ellipse where
alpha >= 1/255 (for opacity <= 1, sqrt(2 ln 255) = 3.329 < 3.33), so the set of contributing pairs,
their order (depth, ties by index) and their values are the same; only float rounding differs.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .gaussians import RenderOutput

# gsplat 1.5.3 constants (gsplat/cuda/include/Common.h, RasterizeToPixels3DGSFwd.cu, rendering.py).
ALPHA_THRESHOLD = 1.0 / 255.0  # pairs with smaller alpha are skipped; Gaussians below it are culled
ALPHA_MAX = 0.999  # alpha clamp (keeps 1 - alpha > 0 so transmittance stays invertible)
T_STOP = 1e-4  # a pixel stops at the Gaussian that would bring its transmittance to <= T_STOP
EPS2D = 0.3  # default low-pass added to the 2D covariance diagonal, px^2
EXTEND_MAX = 3.33  # radius cap in standard deviations
FOV_GUARD = 0.3  # the Jacobian is evaluated with x/z, y/z clamped to 1.3x the field of view

# Pair-building works on chunks of at most this many candidate pairs (about 40 bytes each).
DEFAULT_CHUNK_PAIRS = 1 << 20
# Front-to-back slices for culling occluded Gaussians (more slices: finer culling, more overhead).
DEFAULT_DEPTH_SLICES = 8
# Pairs composited per chunk (bounds the size of every temporary).
DEFAULT_COMPOSITE_CHUNK = 1 << 18
# On the CPU, sum each pixel's run with segment_reduce instead of index_add (same result, faster).
DEFAULT_SEGMENT_SUMS = True


@dataclass
class Projection:
    """Per-Gaussian screen-space quantities, all [B, N] (or [B, N, k]); differentiable.

    means2d: [B, N, 2] projected centre in pixels; conics: [B, N, 3] the inverse of the blurred 2D
    covariance as (a, b, c) with sigma = 0.5 (a dx^2 + c dy^2) + b dx dy; depths: [B, N] camera z;
    cov_diag: [B, N, 2] blurred 2D variances (px^2), for the extent; valid: [B, N] bool, False for
    Gaussians gsplat culls (outside [near, far], degenerate, opacity < 1/255); opacities: [B, N]
    the opacities the compositing uses (in antialiased mode scaled by sqrt(det cov / det blurred)).
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    cov_diag: Tensor
    valid: Tensor
    opacities: Tensor


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[..., 4] (w, x, y, z) quaternions, any norm, to [..., 3, 3] rotation matrices."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    x2, y2, z2 = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = [
        1 - 2 * (y2 + z2), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (x2 + z2), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (x2 + y2),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def project_gaussians(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float = EPS2D,
    antialiased: bool = False,
) -> Projection:
    """EWA-project [B, N] Gaussians into their item's camera (shapes as in `rasterize`)."""
    rot_w2c = viewmats[:, :3, :3]  # [B, 3, 3]
    mean_c = means @ rot_w2c.transpose(1, 2) + viewmats[:, None, :3, 3]  # [B, N, 3]
    x, y, z = mean_c.unbind(-1)
    valid = (z >= near) & (z <= far) & (opacities >= ALPHA_THRESHOLD)
    # Culled Gaussians still go through the arithmetic below; a safe z keeps their (unused) values
    # finite, because autograd multiplies a zero gradient by an infinite local derivative into NaN.
    z = torch.where(valid, z, torch.ones_like(z))
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [B, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    rz = 1.0 / z
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    # Jacobian of the perspective map at the centre. Like gsplat, x/z and y/z are clamped to 1.3x
    # the field of view first, so that Gaussians far outside the image do not blow up.
    lim_x_pos = (width - cx) / fx + FOV_GUARD * 0.5 * width / fx
    lim_x_neg = cx / fx + FOV_GUARD * 0.5 * width / fx
    lim_y_pos = (height - cy) / fy + FOV_GUARD * 0.5 * height / fy
    lim_y_neg = cy / fy + FOV_GUARD * 0.5 * height / fy
    tx = z * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    # T = J @ W (2x3 per Gaussian): J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]].
    r0, r1, r2 = rot_w2c[:, None, 0, :], rot_w2c[:, None, 1, :], rot_w2c[:, None, 2, :]  # [B, 1, 3]
    rz2 = rz * rz
    t0 = (fx * rz)[..., None] * r0 - (fx * tx * rz2)[..., None] * r2  # [B, N, 3]
    t1 = (fy * rz)[..., None] * r1 - (fy * ty * rz2)[..., None] * r2
    # cov2d = T R S S R^T T^T = V V^T with V = T R S (2x3), cheaper than forming 3x3 covariances.
    rot = quat_to_rotmat(quats)  # [B, N, 3, 3]
    v0 = (t0[..., :, None] * rot).sum(-2) * scales  # [B, N, 3]
    v1 = (t1[..., :, None] * rot).sum(-2) * scales
    a0 = (v0 * v0).sum(-1)
    b = (v0 * v1).sum(-1)
    c0 = (v1 * v1).sum(-1)
    a, c = a0 + eps2d, c0 + eps2d
    det = a * c - b * b
    valid = valid & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    if antialiased:
        # gsplat's "antialiased" mode: the low-pass spreads a small Gaussian without adding to its
        # mass, so a splat below a pixel covers what its size says, not a 0.3 px^2 blob.
        # (gsplat floors the ratio at 0; a floor just above it gives the same picture, since such a
        # Gaussian falls under the 1/255 cut, and keeps sqrt's gradient finite for degenerate ones.)
        compensation = torch.sqrt(((a0 * c0 - b * b) / det).clamp_min(1e-12))
        opacities = opacities * compensation
        valid = valid & (opacities >= ALPHA_THRESHOLD)
    return Projection(means2d, conics, mean_c[..., 2], torch.stack([a, c], dim=-1), valid, opacities)


@dataclass
class Pairs:
    """The (pixel, Gaussian) pairs that contribute, sorted by pixel then depth (front to back).

    Per pair [P]: gaussian (int64 flat index into B*N), pixel (int64 flat index into B*H*W),
    run (int64 index of its pixel's run). Per run [S] (one per covered pixel): run_pixel,
    run_first, run_last (positions of the run's first and last pair).
    """

    gaussian: Tensor
    pixel: Tensor
    run: Tensor
    run_pixel: Tensor
    run_first: Tensor
    run_last: Tensor

    @staticmethod
    def empty(device: torch.device) -> Pairs:
        z = torch.zeros(0, dtype=torch.long, device=device)
        return Pairs(z, z, z, z, z, z)


def _runs(sorted_keys: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For keys sorted into runs of equal values: each element's run index [P], and each run's
    first and last position [S]."""
    n = sorted_keys.numel()
    is_start = torch.ones(n, dtype=torch.bool, device=sorted_keys.device)
    if n > 1:
        is_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = torch.nonzero(is_start).squeeze(1)
    run = torch.cumsum(is_start, 0) - 1
    last = torch.cat([first[1:], first.new_full((1,), n)]) - 1
    return run, first, last


def _ranges(lo: Tensor, hi: Tensor, limit: int) -> tuple[Tensor, Tensor]:
    """Integer pixel range [first, first + count) whose centres (i + 0.5) lie in [lo, hi], within
    0..limit-1. A hair of slack keeps rounding from losing a pixel; the alpha test decides later."""
    first = torch.ceil(lo - 0.5 - 1e-3).clamp(0, limit)
    last = torch.floor(hi - 0.5 + 1e-3).clamp(-1, limit - 1)
    return first, (last - first + 1).clamp_min(0)


def _expand(counts: Tensor, total: int) -> tuple[Tensor, Tensor]:
    """For items with `counts` children: each child's parent index and its index within the parent."""
    device = counts.device
    parent = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts, output_size=total)
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(total, device=device) - first.index_select(0, parent)
    return parent, local


def _box_sums(table: Tensor, stride: int, base: Tensor, x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor) -> Tensor:
    """Sums over pixel boxes [x0, x1) x [y0, y1) from a flat summed-area table (row stride
    `stride`, each box's table starting at flat index `base`)."""
    return (
        table.index_select(0, base + y1 * stride + x1)
        - table.index_select(0, base + y0 * stride + x1)
        - table.index_select(0, base + y1 * stride + x0)
        + table.index_select(0, base + y0 * stride + x0)
    )


@torch.no_grad()
def build_pairs(
    proj: Projection,
    width: int,
    height: int,
    chunk_pairs: int | None = None,
    depth_slices: int | None = None,
) -> Pairs:
    """Find the contributing (pixel, Gaussian) pairs in compositing order (see the module doc).

    Candidates are generated per scanline: each Gaussian emits the rows its ellipse
    {alpha >= 1/255} covers, each row the exact span of pixels inside the ellipse, so almost every
    candidate is a real pair. Gaussians are processed front to back in `depth_slices` slices (depth
    quantiles of each image); before a slice, a summed-area table of the pixels that are still
    open (transmittance above T_STOP) culls every Gaussian whose box covers none, which removes
    most of the occluded back half of a closed surface before any of its pairs is made.
    """
    chunk_pairs = chunk_pairs or DEFAULT_CHUNK_PAIRS
    depth_slices = depth_slices or DEFAULT_DEPTH_SLICES
    bsz, n = proj.depths.shape
    device = proj.depths.device
    hw = height * width
    valid_ids = torch.nonzero(proj.valid.reshape(-1)).squeeze(1)
    # (image, depth) order; stable sorts break depth ties by index, as gsplat's stable radix sort.
    gid = valid_ids[torch.argsort(proj.depths.detach().reshape(-1)[valid_ids], stable=True)]
    gid = gid[torch.argsort(gid // n, stable=True)]

    # Per-Gaussian values, float64: cheap at this size, and makes the span arithmetic robust.
    mx, my = proj.means2d.detach().reshape(-1, 2).index_select(0, gid).double().unbind(-1)
    ca, cb, cc = proj.conics.detach().reshape(-1, 3).index_select(0, gid).double().unbind(-1)
    cov_xx, cov_yy = proj.cov_diag.detach().reshape(-1, 2).index_select(0, gid).double().unbind(-1)
    opac = proj.opacities.detach().reshape(-1).index_select(0, gid).double()
    # alpha >= 1/255  <=>  sigma <= L = ln(255 opacity); gsplat caps the radius at 3.33 sigma, which
    # only binds for opacity > 1 (sqrt(2 ln 255) = 3.329). A tiny margin covers float rounding.
    level = torch.log(opac / ALPHA_THRESHOLD).clamp(0.0, 0.5 * EXTEND_MAX**2) + 1e-4
    half_x, half_y = torch.sqrt(2 * level * cov_xx), torch.sqrt(2 * level * cov_yy)  # box half-size
    x_first, nx_box = _ranges(mx - half_x, mx + half_x, width)
    y_first, ny = _ranges(my - half_y, my + half_y, height)
    image = gid // n
    # Depth slice of each Gaussian: its rank among its image's Gaussians, in `depth_slices` parts.
    per_image = torch.bincount(image, minlength=bsz)
    rank = torch.arange(gid.numel(), device=device) - (torch.cumsum(per_image, 0) - per_image)[image]
    slice_id = rank * depth_slices // per_image[image].clamp_min(1)
    live = (nx_box > 0) & (ny > 0)

    dtype = proj.means2d.dtype
    log_t = torch.zeros(bsz * hw, dtype=dtype, device=device)  # sum of log(1 - alpha) so far
    open_px = torch.ones(bsz * hw, dtype=torch.bool, device=device)
    index_dtype = torch.int32 if bsz * hw < 2**31 else torch.long
    kept_g: list[Tensor] = []
    kept_p: list[Tensor] = []
    for k in range(depth_slices):
        sel = torch.nonzero(live & (slice_id == k)).squeeze(1)
        if k > 0 and sel.numel():
            # Summed-area table of the open pixels, [B, H+1, W+1] flattened; cull closed boxes.
            table = torch.zeros(bsz, height + 1, width + 1, dtype=torch.int32, device=device)
            table[:, 1:, 1:] = open_px.view(bsz, height, width).to(torch.int32).cumsum(1).cumsum(2)
            x0 = x_first.index_select(0, sel).long()
            y0 = y_first.index_select(0, sel).long()
            x1 = x0 + nx_box.index_select(0, sel).long()
            y1 = y0 + ny.index_select(0, sel).long()
            base = image.index_select(0, sel) * ((height + 1) * (width + 1))
            sel = sel[_box_sums(table.view(-1), width + 1, base, x0, x1, y0, y1) > 0]
            # Per pixel, the nearest open pixel at or after it / at or before it on its scanline
            # (width / -1 when there is none), for trimming the rows below.
            columns = torch.arange(width, device=device).expand(bsz * height, width)
            grid = open_px.view(bsz * height, width)
            after = torch.where(grid, columns, torch.full_like(columns, width))
            next_open = after.flip(1).cummin(1).values.flip(1).reshape(-1)
            prev_open = torch.where(grid, columns, torch.full_like(columns, -1)).cummax(1).values.reshape(-1)
        if sel.numel() == 0:
            continue

        # Rows: (Gaussian, scanline). sigma(dx) = 0.5 ca dx^2 + (cb dy) dx + 0.5 cc dy^2.
        s_ny = ny.index_select(0, sel).long()
        rows = int(s_ny.sum())
        r_s, r_local = _expand(s_ny, rows)
        r_g = sel.index_select(0, r_s)  # index into the sorted Gaussians
        r_y = y_first.index_select(0, r_g) + r_local
        dy = my.index_select(0, r_g) - (r_y + 0.5)
        qa = 0.5 * ca.index_select(0, r_g)
        qb = cb.index_select(0, r_g) * dy
        qc = 0.5 * cc.index_select(0, r_g) * dy * dy
        disc = qb * qb - 4.0 * qa * (qc - level.index_select(0, r_g))
        root = torch.sqrt(disc.clamp_min(0.0))
        r_mx = mx.index_select(0, r_g)
        # dx = mean_x - pixel_centre lies in [(-qb - root) / 2qa, (-qb + root) / 2qa]
        x0_row, nx = _ranges(r_mx - (-qb + root) / (2.0 * qa), r_mx - (-qb - root) / (2.0 * qa), width)
        nx = torch.where(disc >= 0, nx, torch.zeros_like(nx)).long()
        row_line = image.index_select(0, r_g) * height + r_y.long()  # scanline over all images
        if k > 0:
            # Trim each row's span to its first and last still-open pixel (most rows behind the
            # front layer become empty), so that closed pixels make no candidates.
            line_x = row_line * width
            x0 = x0_row.long().clamp_max(width - 1)
            x1 = (x0 + nx - 1).clamp_min(0)
            first_open = next_open.index_select(0, line_x + x0)
            last_open = prev_open.index_select(0, line_x + x1)
            nx = torch.where(nx > 0, (last_open - first_open + 1).clamp_min(0), nx)
            x0_row = first_open.clamp_max(width - 1).to(x0_row.dtype)
        # Per-row values for the candidates (separate 1-D tensors: 1-D index_select is much faster
        # than gathering rows of a 2-D tensor): dx at the first pixel, the quadratic, the opacity,
        # the flat pixel index of the first pixel.
        row_dx = (r_mx - (x0_row + 0.5)).to(dtype)
        qa, qb, qc = qa.to(dtype), qb.to(dtype), qc.to(dtype)
        row_opac = opac.index_select(0, r_g).to(dtype)
        row_pix = row_line * width + x0_row.long()
        row_g = r_g.to(index_dtype)

        # Sub-chunks of whole rows with at most ~chunk_pairs candidates (rows stay in depth order).
        cum = torch.cumsum(nx, 0)
        total = int(cum[-1])
        bounds = [0]
        if total > chunk_pairs:
            marks = torch.arange(chunk_pairs, total, chunk_pairs, device=device)
            bounds += sorted(set(torch.searchsorted(cum, marks).tolist()) - {0, rows})
        bounds.append(rows)
        for r0, r1 in itertools.pairwise(bounds):
            cnt = nx[r0:r1]
            m = int(cnt.sum())
            if m == 0:
                continue
            c_r, c_local = _expand(cnt, m)
            c_r += r0
            dx = row_dx.index_select(0, c_r) - c_local.to(dtype)
            sigma = (qa.index_select(0, c_r) * dx + qb.index_select(0, c_r)) * dx + qc.index_select(0, c_r)
            alpha = torch.clamp(row_opac.index_select(0, c_r) * torch.exp(-sigma), max=ALPHA_MAX)
            pix = row_pix.index_select(0, c_r) + c_local
            ok = torch.nonzero((alpha >= ALPHA_THRESHOLD) & open_px.index_select(0, pix)).squeeze(1)
            if ok.numel() == 0:
                continue
            # Candidates are in depth order, so a stable sort by pixel gives front-to-back runs.
            # int32 keys sort faster on the CPU (radix sort) than int64.
            pix, perm = torch.sort(pix.index_select(0, ok).to(index_dtype), stable=True)
            perm = ok.index_select(0, perm)
            g_pair = row_g.index_select(0, c_r.index_select(0, perm))
            log_keep = torch.log1p(-alpha.index_select(0, perm))
            # Early stop: keep a pair while the transmittance after it stays above T_STOP. The
            # log-transmittance only decreases along a pixel's run, so the kept pairs are a prefix.
            # The running sum spans all runs, hence float64; each run's part goes back to `dtype`.
            run_sum = torch.cumsum(log_keep.double(), 0)
            run, first, _ = _runs(pix)
            start = first.index_select(0, run)
            upto = (run_sum - run_sum.index_select(0, start)).to(dtype) + log_keep.index_select(0, start)
            keep = torch.nonzero(upto + log_t.index_select(0, pix) > math.log(T_STOP)).squeeze(1)
            kept_g.append(g_pair.index_select(0, keep))
            kept_p.append(pix.index_select(0, keep))
            log_t.index_add_(0, pix, log_keep)
            open_px &= log_t > math.log(T_STOP)

    if not kept_g:
        return Pairs.empty(device)
    return _merge(kept_p, kept_g, gid, bsz * hw)


def _merge(pixels: list[Tensor], gaussians: list[Tensor], gid: Tensor, npix: int) -> Pairs:
    """Merge lists of pairs, each sorted by pixel and all in depth order one after the other, into
    one list sorted by pixel that keeps that order (a stable counting merge: cheaper than a sort).

    pixels: per list [P_k] pixel indices (sorted); gaussians: per list [P_k] indices into `gid`.
    """
    device = gid.device
    counts = [torch.bincount(p, minlength=npix) for p in pixels]
    total = torch.stack(counts).sum(0)
    pixel_first = torch.cumsum(total, 0) - total  # where each pixel's run starts in the merged list
    size = int(total.sum())
    gaussian = torch.empty(size, dtype=torch.long, device=device)
    before = torch.zeros_like(total)  # pairs of each pixel in the lists already placed
    for pix, gi, count in zip(pixels, gaussians, counts, strict=False):
        # destination = run start + pairs from earlier lists + rank within this list's run
        shift = pixel_first + before - (torch.cumsum(count, 0) - count)
        dest = shift.index_select(0, pix) + torch.arange(pix.numel(), device=device)
        gaussian.index_copy_(0, dest, gid.index_select(0, gi))
        before += count
    run_pixel = torch.nonzero(total).squeeze(1)
    run_len = total.index_select(0, run_pixel)
    run_first = pixel_first.index_select(0, run_pixel)
    run = torch.repeat_interleave(torch.arange(run_pixel.numel(), device=device), run_len, output_size=size)
    pixel = run_pixel.index_select(0, run)
    return Pairs(gaussian, pixel, run, run_pixel, run_first, run_first + run_len - 1)


def _run_chunks(pairs: Pairs, max_pairs: int) -> list[tuple[int, int, int, int]]:
    """Split the pairs into chunks of whole runs, about `max_pairs` each: (p0, p1, s0, s1) pair and
    run ranges. Chunks keep every temporary small (cache-friendly, and below glibc's mmap threshold
    so that freed memory is reused instead of being unmapped and faulted in again)."""
    total, runs = pairs.gaussian.numel(), pairs.run_first.numel()
    cuts = [0]
    if total > max_pairs:
        targets = torch.arange(max_pairs, total, max_pairs, device=pairs.run_first.device)
        cuts += sorted(set(torch.searchsorted(pairs.run_first, targets).tolist()) - {0, runs})
    cuts.append(runs)
    firsts = pairs.run_first.index_select(0, torch.tensor(cuts[:-1], device=pairs.run_first.device)).tolist()
    return [(p0, p1, s0, s1) for p0, p1, s0, s1 in zip(firsts, [*firsts[1:], total], cuts[:-1], cuts[1:], strict=False)]


class _Composite(torch.autograd.Function):
    """Front-to-back compositing of sorted pairs with a hand-written backward.

    Autograd over the ~20 per-pair operations would record and replay each of them; the analytic
    backward (the one gsplat's kernel uses) needs fewer passes over the pairs. Per-pair values are
    kept as [channels, P] rows: broadcasting along a long contiguous axis is several times faster
    on the CPU than over a short trailing axis of [P, channels]. Pairs are processed in chunks of
    whole pixel runs.

    Inputs are flat over the M = B*N Gaussians: means2d [M, 2], conics [M, 3], opacities [M],
    features [M, D]. Outputs: accumulated features [D, npix] and alpha [npix].
    """

    @staticmethod
    def forward(
        ctx: Any,
        means2d: Tensor,
        conics: Tensor,
        opacities: Tensor,
        features: Tensor,
        pairs: Pairs,
        width: int,
        hw: int,
        npix: int,
        chunk: int,
    ) -> tuple[Tensor, Tensor]:
        dtype, device = means2d.dtype, means2d.device
        # All per-Gaussian columns as rows of one table, gathered per pair with one index_select.
        table = torch.cat([means2d, conics, opacities[:, None], features], 1).detach().t().contiguous()
        dim = features.shape[1]
        acc = torch.zeros(dim, npix, dtype=dtype, device=device)
        acc_alpha = torch.zeros(npix, dtype=dtype, device=device)
        saved = []
        for p0, p1, s0, s1 in _run_chunks(pairs, chunk):
            g, pix = pairs.gaussian[p0:p1], pairs.pixel[p0:p1]
            run = pairs.run[p0:p1] - s0
            run_first = pairs.run_first[s0:s1] - p0
            run_last = pairs.run_last[s0:s1] - p0
            cols = table.index_select(1, g)
            mx, my, ca, cb, cc, opac = cols[:6].unbind(0)
            feats = cols[6:]  # [D, p]
            within = pix if npix == hw else pix % hw
            py = torch.div(within, width, rounding_mode="floor")
            dx = mx - ((within - py * width).to(dtype) + 0.5)
            dy = my - (py.to(dtype) + 0.5)
            sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
            gauss = torch.exp(-sigma)
            raw = opac * gauss
            alpha = raw.clamp(max=ALPHA_MAX)
            # Transmittance before each pair: exp of the exclusive sum of log(1 - alpha) over the
            # earlier pairs of its run. The running sum spans all runs of the chunk, hence float64,
            # made relative to the run's start before going back to `dtype`.
            log_keep = torch.log1p(-alpha)
            run_sum = torch.cumsum(log_keep.double(), 0)
            at_first = run_sum.index_select(0, run_first)
            start = run_first.index_select(0, run)
            excl = (run_sum - at_first.index_select(0, run)).to(dtype) - log_keep + log_keep.index_select(0, start)
            trans = torch.exp(excl)
            weight = alpha * trans
            if device.type == "cpu" and DEFAULT_SEGMENT_SUMS:
                # Per-pixel sums over the (contiguous) runs: faster than a scatter-add per pair.
                lengths = (run_last - run_first + 1).expand(feats.shape[0], -1)
                run_sums = torch.segment_reduce(feats * weight, "sum", lengths=lengths, axis=1)
                acc.index_copy_(1, pairs.run_pixel[s0:s1], run_sums)
            else:  # atomics are cheap on a GPU
                acc.index_add_(1, pix, feats * weight)
            # Accumulated alpha = 1 - T_final, from each run's total log-transmittance.
            total = (run_sum.index_select(0, run_last) - at_first).to(dtype) + log_keep.index_select(0, run_first)
            acc_alpha.index_copy_(0, pairs.run_pixel[s0:s1], -torch.expm1(total))
            saved.append(
                (
                    g,
                    run,
                    run_last,
                    pairs.run_pixel[s0:s1],
                    dx,
                    dy,
                    ca,
                    cb,
                    cc,
                    gauss,
                    raw,
                    alpha,
                    trans,
                    weight,
                    feats,
                )
            )
        ctx.chunks = saved
        ctx.num_gaussians = means2d.shape[0]
        return acc, acc_alpha

    @staticmethod
    def backward(ctx: Any, grad_acc: Tensor, grad_alpha: Tensor) -> tuple[Tensor | None, ...]:
        dim = grad_acc.shape[0]
        grads = torch.zeros(6 + dim, ctx.num_gaussians, dtype=grad_acc.dtype, device=grad_acc.device)
        grad_px = torch.cat([grad_acc, grad_alpha[None]], 0)
        for (
            g,
            run,
            run_last,
            run_pixel,
            dx,
            dy,
            ca,
            cb,
            cc,
            gauss,
            raw,
            alpha,
            trans,
            weight,
            feats,
        ) in ctx.chunks:
            # Output gradients per run (one per pixel), then per pair.
            grad_pair = grad_px.index_select(1, run_pixel).index_select(1, run)  # [D + 1, p]
            grad_c = grad_pair[:dim]
            # d loss / d w_i: the pair's feature against its pixel's output gradient (alpha = sum w).
            fg = (feats * grad_c).sum(0) + grad_pair[dim]
            # d w_k / d alpha_i = T_i for k = i and -w_k / (1 - alpha_i) for the pairs behind
            # (k > i); those enter through a suffix sum within the run (float64 running sum).
            run_sum = torch.cumsum((weight * fg).double(), 0)
            behind = (run_sum.index_select(0, run_last).index_select(0, run) - run_sum).to(fg.dtype)
            grad_a = trans * fg - behind / (1.0 - alpha)
            # As gsplat's kernel: no gradient through the clamp where opacity * G > 0.999.
            grad_a = torch.where(raw <= ALPHA_MAX, grad_a, torch.zeros_like(grad_a))
            grad_sigma = -grad_a * raw  # alpha = o exp(-sigma)
            # All per-Gaussian gradients in one index_add over [6 + D, p] rows.
            rows = torch.empty(6 + dim, g.numel(), dtype=fg.dtype, device=fg.device)
            torch.mul(grad_sigma, ca * dx + cb * dy, out=rows[0])
            torch.mul(grad_sigma, cb * dx + cc * dy, out=rows[1])
            half = 0.5 * grad_sigma
            torch.mul(half * dx, dx, out=rows[2])
            torch.mul(grad_sigma * dx, dy, out=rows[3])
            torch.mul(half * dy, dy, out=rows[4])
            torch.mul(grad_a, gauss, out=rows[5])
            torch.mul(grad_c, weight, out=rows[6:])
            grads.index_add_(1, g, rows)
        grads = grads.t()
        return grads[:, 0:2], grads[:, 2:5], grads[:, 5], grads[:, 6:], None, None, None, None, None


def composite(
    proj: Projection,
    features: Tensor,
    pairs: Pairs,
    width: int,
    height: int,
    chunk: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Differentiable front-to-back compositing of `pairs` (in chunks of about `chunk` pairs).

    Args:
        features: [B, N, D] per-Gaussian values to composite (colour and depth).

    Returns:
        accumulated [D, B*H*W] = sum_i w_i f_i and alpha [B*H*W] = 1 - prod_i (1 - alpha_i)
        = sum_i w_i, where w_i = alpha_i T_i.
    """
    bsz, _, dim = features.shape
    npix = bsz * height * width
    if pairs.gaussian.numel() == 0:
        # Nothing visible: zero images that still depend on the inputs (zero gradients, no errors).
        zero = (features.sum() + proj.opacities.sum() + proj.means2d.sum() + proj.conics.sum()) * 0.0
        return zero.expand(dim, npix), zero.expand(npix)
    out = _Composite.apply(
        proj.means2d.reshape(-1, 2),
        proj.conics.reshape(-1, 3),
        proj.opacities.reshape(-1),
        features.reshape(-1, dim),
        pairs,
        width,
        height * width,
        npix,
        chunk or DEFAULT_COMPOSITE_CHUNK,
    )
    return out[0], out[1]


def rasterize_torch(
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
    eps2d: float = EPS2D,
    antialiased: bool = False,
) -> RenderOutput:
    """The PyTorch backend of `t2bs.render.rasterize` (same arguments; background is [B, 3] or None).

    Chunk sizes come from the module constants DEFAULT_CHUNK_PAIRS, DEFAULT_DEPTH_SLICES and
    DEFAULT_COMPOSITE_CHUNK (memory and speed only; the result does not depend on them).
    """
    bsz = means.shape[0]
    proj = project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height, near, far, eps2d, antialiased
    )
    pairs = build_pairs(proj, width, height)
    features = torch.cat([colors, proj.depths[..., None]], dim=-1)  # [B, N, 4]
    acc, alpha = composite(proj, features, pairs, width, height)
    acc = acc.t().reshape(bsz, height, width, -1)
    alpha = alpha.reshape(bsz, height, width, 1)
    rgb = acc[..., :3]
    if background is not None:
        rgb = rgb + (1.0 - alpha) * background[:, None, None, :]
    return RenderOutput(rgb=rgb, alpha=alpha, depth=acc[..., 3:4])
