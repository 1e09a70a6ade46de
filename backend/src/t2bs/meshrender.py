"""A small z-buffer triangle rasterizer for ground-truth and preview images (no gradients).

It renders a vertex-coloured mesh with Gouraud-shaded Lambert lighting and supersampled edges, so that
its images differ in kind from what the Gaussian fit renders: a fit checked against its own renderer
would prove little. Cameras follow the OpenCV convention (x right, y down, z forward), as capture.json.
"""

from __future__ import annotations

import numpy as np
import torch

_NEAR = 1e-4


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. vertices [V,3], faces [F,3] -> [V,3]."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def shade_lambert(
    albedo: np.ndarray,
    normals: np.ndarray,
    light_dir: np.ndarray,
    ambient: float = 0.35,
    diffuse: float = 0.75,
) -> np.ndarray:
    """Per-vertex Lambert shading. albedo [V,3] in 0..1, normals [V,3], light_dir [3] toward the light."""
    light = np.asarray(light_dir, dtype=np.float64)
    light = light / np.linalg.norm(light)
    lit = ambient + diffuse * np.clip(normals @ light, 0.0, None)
    return np.clip(albedo * lit[:, None], 0.0, 1.0).astype(np.float32)


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    colors: np.ndarray,
    K: np.ndarray,
    world_to_camera: np.ndarray,
    width: int,
    height: int,
    supersample: int = 3,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Render a vertex-coloured mesh.

    Args:
        vertices: [V, 3] world positions.
        faces: [F, 3] vertex indices.
        colors: [V, 3] linear colours in 0..1 (already shaded), interpolated across each triangle.
        K: [3, 3] pixel intrinsics for a `width` x `height` image.
        world_to_camera: [4, 4] rigid OpenCV transform.
        supersample: samples per pixel along each axis; the edge coverage becomes alpha.
        device: where to rasterize (a CUDA device renders large captures many times faster).

    Returns:
        [height, width, 4] float32 RGBA in 0..1, colour premultiplied by coverage.
    """
    s = int(supersample)
    w_hi, h_hi = width * s, height * s
    k_hi = np.asarray(K, dtype=np.float64).copy()
    k_hi[:2] *= s
    verts = torch.as_tensor(np.asarray(vertices, dtype=np.float64), device=device)
    w2c = torch.as_tensor(np.asarray(world_to_camera, dtype=np.float64), device=device)
    cam = verts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    k_t = torch.as_tensor(k_hi, device=device)
    px = k_t[0, 0] * cam[:, 0] / z.clamp_min(_NEAR) + k_t[0, 2]
    py = k_t[1, 1] * cam[:, 1] / z.clamp_min(_NEAR) + k_t[1, 2]
    f = torch.as_tensor(np.asarray(faces, dtype=np.int64), device=device)
    col = torch.as_tensor(np.asarray(colors, dtype=np.float32), device=device)

    # Drop triangles behind the camera or entirely outside the image.
    fz = z[f]
    fx, fy = px[f], py[f]
    keep = (fz > _NEAR).all(1)
    keep &= (fx.max(1).values >= 0) & (fx.min(1).values < w_hi)
    keep &= (fy.max(1).values >= 0) & (fy.min(1).values < h_hi)
    f, fx, fy, fz = f[keep], fx[keep], fy[keep], fz[keep]

    x0 = torch.floor(fx.min(1).values - 0.5).clamp(0, w_hi - 1).long()
    x1 = torch.ceil(fx.max(1).values - 0.5).clamp(0, w_hi - 1).long()
    y0 = torch.floor(fy.min(1).values - 0.5).clamp(0, h_hi - 1).long()
    y1 = torch.ceil(fy.max(1).values - 0.5).clamp(0, h_hi - 1).long()
    span = torch.maximum(x1 - x0, y1 - y0) + 1

    depth = torch.full((h_hi * w_hi,), float("inf"), dtype=torch.float64, device=device)
    cand_pix, cand_depth, cand_color = [], [], []
    # Triangles are grouped by bounding-box size so that each group enumerates a fixed pixel grid.
    size = 1
    while True:
        group = (span <= size) & (span > size // 2) if size > 1 else span <= 1
        if group.any():
            idx = torch.nonzero(group).squeeze(1)
            offs = torch.arange(size, device=device)
            gx = x0[idx, None] + offs  # [G, size] sample columns, rows likewise
            gy = y0[idx, None] + offs
            ax, ay = fx[idx, 0, None], fy[idx, 0, None]
            bx, by = fx[idx, 1, None], fy[idx, 1, None]
            qx, qy = fx[idx, 2, None], fy[idx, 2, None]
            area = (bx - ax) * (qy - ay) - (qx - ax) * (by - ay)
            # Barycentrics are affine in the sample position: each is a per-column part plus a per-row
            # part, so the [G, size, size] grids cost one broadcast add each.
            cx, cy = gx.double() + 0.5, gy.double() + 0.5
            w0 = (((by - qy) * cx) / area)[:, None, :] + (((qx - bx) * cy + bx * qy - qx * by) / area)[:, :, None]
            w1 = (((qy - ay) * cx) / area)[:, None, :] + (((ax - qx) * cy + qx * ay - ax * qy) / area)[:, :, None]
            w2 = 1.0 - w0 - w1
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (area.abs() > 1e-12)[:, :, None]
            inside &= ((gx < w_hi)[:, None, :]) & ((gy < h_hi)[:, :, None])
            # Depth and colour only where a sample is covered: at large sizes most of each grid is not.
            sel = inside.nonzero(as_tuple=True)
            tri = idx[sel[0]]
            b0, b1, b2 = w0[sel], w1[sel], w2[sel]
            # 1/z is linear in screen space, so interpolating it gives the exact depth.
            inv_z = b0 / fz[tri, 0] + b1 / fz[tri, 1] + b2 / fz[tri, 2]
            tri_cols = col[f[tri]]  # [S, 3, 3]
            rgb = (
                b0[:, None].float() * tri_cols[:, 0]
                + b1[:, None].float() * tri_cols[:, 1]
                + b2[:, None].float() * tri_cols[:, 2]
            )
            cand_pix.append(gy[sel[0], sel[1]] * w_hi + gx[sel[0], sel[2]])
            cand_depth.append(1.0 / inv_z)
            cand_color.append(rgb)
        if size >= int(span.max().item() if span.numel() else 1):
            break
        size *= 2

    image = torch.zeros((h_hi * w_hi, 4), dtype=torch.float32, device=device)
    if cand_pix:
        pix = torch.cat(cand_pix)
        dep = torch.cat(cand_depth)
        rgb = torch.cat(cand_color)
        depth.scatter_reduce_(0, pix, dep, reduce="amin")
        winner = dep <= depth[pix]
        image[pix[winner], :3] = rgb[winner].clamp(0, 1)
        image[pix[winner], 3] = 1.0
    image = image.view(height, s, width, s, 4).mean(dim=(1, 3))
    return image.cpu().numpy()
