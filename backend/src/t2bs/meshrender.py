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
) -> np.ndarray:
    """Render a vertex-coloured mesh.

    Args:
        vertices: [V, 3] world positions.
        faces: [F, 3] vertex indices.
        colors: [V, 3] linear colours in 0..1 (already shaded), interpolated across each triangle.
        K: [3, 3] pixel intrinsics for a `width` x `height` image.
        world_to_camera: [4, 4] rigid OpenCV transform.
        supersample: samples per pixel along each axis; the edge coverage becomes alpha.

    Returns:
        [height, width, 4] float32 RGBA in 0..1, colour premultiplied by coverage.
    """
    s = int(supersample)
    w_hi, h_hi = width * s, height * s
    k_hi = np.asarray(K, dtype=np.float64).copy()
    k_hi[:2] *= s
    verts = torch.as_tensor(np.asarray(vertices, dtype=np.float64))
    w2c = torch.as_tensor(np.asarray(world_to_camera, dtype=np.float64))
    cam = verts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    k_t = torch.as_tensor(k_hi)
    px = k_t[0, 0] * cam[:, 0] / z.clamp_min(_NEAR) + k_t[0, 2]
    py = k_t[1, 1] * cam[:, 1] / z.clamp_min(_NEAR) + k_t[1, 2]
    f = torch.as_tensor(np.asarray(faces, dtype=np.int64))
    col = torch.as_tensor(np.asarray(colors, dtype=np.float32))

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

    depth = torch.full((h_hi * w_hi,), float("inf"), dtype=torch.float64)
    cand_pix, cand_depth, cand_color = [], [], []
    # Triangles are grouped by bounding-box size so that each group enumerates a fixed pixel grid.
    size = 1
    while True:
        group = (span <= size) & (span > size // 2) if size > 1 else span <= 1
        if group.any():
            idx = torch.nonzero(group).squeeze(1)
            offs = torch.arange(size)
            gx = (x0[idx, None, None] + offs[None, None, :]).expand(-1, size, size)
            gy = (y0[idx, None, None] + offs[None, :, None]).expand(-1, size, size)
            cx = gx.double() + 0.5
            cy = gy.double() + 0.5
            ax, ay = fx[idx, 0, None, None], fy[idx, 0, None, None]
            bx, by = fx[idx, 1, None, None], fy[idx, 1, None, None]
            qx, qy = fx[idx, 2, None, None], fy[idx, 2, None, None]
            area = (bx - ax) * (qy - ay) - (qx - ax) * (by - ay)
            w0 = ((bx - cx) * (qy - cy) - (qx - cx) * (by - cy)) / area
            w1 = ((qx - cx) * (ay - cy) - (ax - cx) * (qy - cy)) / area
            w2 = 1.0 - w0 - w1
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (area.abs() > 1e-12)
            inside &= (gx < w_hi) & (gy < h_hi)
            # 1/z is linear in screen space, so interpolating it gives the exact depth.
            inv_z = w0 / fz[idx, 0, None, None] + w1 / fz[idx, 1, None, None] + w2 / fz[idx, 2, None, None]
            tri_cols = col[f[idx]]  # [G, 3, 3]
            rgb = (
                w0[..., None].float() * tri_cols[:, None, None, 0]
                + w1[..., None].float() * tri_cols[:, None, None, 1]
                + w2[..., None].float() * tri_cols[:, None, None, 2]
            )
            sel = inside.nonzero(as_tuple=True)
            cand_pix.append(gy[sel] * w_hi + gx[sel])
            cand_depth.append(1.0 / inv_z[sel])
            cand_color.append(rgb[sel])
        if size >= int(span.max().item() if span.numel() else 1):
            break
        size *= 2

    image = torch.zeros((h_hi * w_hi, 4), dtype=torch.float32)
    if cand_pix:
        pix = torch.cat(cand_pix)
        dep = torch.cat(cand_depth)
        rgb = torch.cat(cand_color)
        depth.scatter_reduce_(0, pix, dep, reduce="amin")
        winner = dep <= depth[pix]
        image[pix[winner], :3] = rgb[winner].clamp(0, 1)
        image[pix[winner], 3] = 1.0
    image = image.view(height, s, width, s, 4).mean(dim=(1, 3))
    return image.numpy()
