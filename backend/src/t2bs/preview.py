"""Preview images of a blendshape model: an expression grid (PNG) and a turntable (MP4).

Rendered with the z-buffer mesh renderer in the head's normalised frame (+Y up, face toward +Z,
largest side 1), so every head is framed the same whatever its file's units. Colours come from the
texture (sampled at the vertices' UVs: enough for a thumbnail), the vertex colours, or a clay grey.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .blendshape_model import BlendshapeModel
from .capture import look_at_camera, write_video
from .fileio import atomic_open
from .mesh_io import sample_texture, transform_points
from .meshrender import render_mesh, shade_lambert, vertex_normals

GRID_CELL = 160
TURNTABLE_SIZE = 192
TURNTABLE_FRAMES = 24
_CAMERA_DISTANCE = 2.4
_FOV_DEG = 30.0
_LIGHT = np.array([0.4, 0.6, 1.0])
_BACKGROUND = np.array([0.16, 0.17, 0.19])
_CLAY = np.array([0.72, 0.70, 0.68])


def vertex_albedo(model: BlendshapeModel, texture: np.ndarray | None) -> np.ndarray:
    """[V, 3] colours in 0..1 for previews."""
    if texture is not None and model.uv is not None:
        return sample_texture(texture, model.uv).astype(np.float32) / 255.0
    if model.colors is not None:
        return model.colors.astype(np.float32) / 255.0
    return np.tile(_CLAY, (model.vertex_count, 1)).astype(np.float32)


def render_head(
    vertices: np.ndarray, faces: np.ndarray, albedo: np.ndarray, size: int, azimuth_deg: float = 0.0
) -> np.ndarray:
    """[size, size, 3] uint8 image of a head in the normalised frame, seen from `azimuth_deg`."""
    a = math.radians(azimuth_deg)
    eye = (_CAMERA_DISTANCE * math.sin(a), 0.1, _CAMERA_DISTANCE * math.cos(a))
    camera = look_at_camera("preview", eye, (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), size, size, _FOV_DEG)
    shaded = shade_lambert(albedo, vertex_normals(vertices, faces), _LIGHT)
    rgba = render_mesh(vertices, faces, shaded, camera.K, camera.world_to_camera, size, size, supersample=2)
    # render_mesh premultiplies colour by coverage: composite over the background.
    rgb = rgba[..., :3] + (1.0 - rgba[..., 3:]) * _BACKGROUND
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def expression_grid(
    model: BlendshapeModel, from_model: np.ndarray, texture: np.ndarray | None, cell: int = GRID_CELL
) -> np.ndarray:
    """[H, W, 3] uint8 grid: the neutral, then every blendshape at 1, each labelled with its name.

    Args:
        from_model: [4, 4] transform from the model's coordinates to the normalised frame.
    """
    albedo = vertex_albedo(model, texture)
    names = ["neutral", *model.names]
    columns = min(8, len(names))
    rows = math.ceil(len(names) / columns)
    grid = Image.new("RGB", (columns * cell, rows * cell), tuple(int(c * 255) for c in _BACKGROUND))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for index, name in enumerate(names):
        positions = model.neutral if index == 0 else model.neutral + model.shapes[index - 1]
        vertices = transform_points(from_model, positions).astype(np.float32)
        image = Image.fromarray(render_head(vertices, model.faces, albedo, cell))
        x, y = (index % columns) * cell, (index // columns) * cell
        grid.paste(image, (x, y))
        draw.text((x + 6, y + 4), name, fill=(235, 235, 235), font=font)
    return np.asarray(grid)


def turntable(
    model: BlendshapeModel,
    from_model: np.ndarray,
    texture: np.ndarray | None,
    frames: int = TURNTABLE_FRAMES,
    size: int = TURNTABLE_SIZE,
) -> np.ndarray:
    """[frames, size, size, 3] uint8: the neutral head turning once around +Y."""
    albedo = vertex_albedo(model, texture)
    vertices = transform_points(from_model, model.neutral).astype(np.float32)
    return np.stack([render_head(vertices, model.faces, albedo, size, 360.0 * i / frames) for i in range(frames)])


def write_png(path: str | Path, image: np.ndarray) -> None:
    with atomic_open(Path(path), "wb") as handle:
        Image.fromarray(image).save(handle, format="PNG")


def write_turntable(path: str | Path, frames: np.ndarray, fps: float = 12.0) -> None:
    write_video(path, frames, fps)
