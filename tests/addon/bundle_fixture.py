"""A synthetic bundle writer (pure numpy) for the add-on's tests and benchmark.

Writes what the backend's export stage writes, per the bundle contract in docs/blender.md: a
`manifest.json` and a `model.npz` with a UV-sphere "head" in file coordinates (+y up, face toward +z
unless told otherwise), blendshapes that move known vertex sets by known offsets, and a PCA basis.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

# (name, region, offset direction in file coordinates, vertex selector)
_SHAPES: tuple[tuple[str, str], ...] = (
    ("jawOpen", "mouth"),
    ("mouthSmileLeft", "mouth"),
    ("mouthSmileRight", "mouth"),
    ("eyeBlinkLeft", "eyes"),
    ("eyeBlinkRight", "eyes"),
    ("browInnerUp", "brows"),
    ("cheekPuff", "cheeks"),
    ("noseSneerLeft", "nose"),
    ("earsBackLeft", "other"),
)


def sphere(rings: int, segments: int, radius: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed-ish UV sphere: (vertices [rings*segments, 3], triangles, per-vertex uv), +y is up."""
    theta = np.linspace(0.05, np.pi - 0.05, rings)  # from the top; poles left open (a head has a neck hole)
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1) * radius
    uv = np.stack([p / (2.0 * np.pi), 1.0 - t / np.pi], axis=-1)
    r, s = np.meshgrid(np.arange(rings - 1), np.arange(segments), indexing="ij")
    a = r * segments + s
    b = r * segments + (s + 1) % segments
    c = (r + 1) * segments + s
    d = (r + 1) * segments + (s + 1) % segments
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    return vertices.reshape(-1, 3).astype(np.float32), faces.astype(np.int32), uv.reshape(-1, 2).astype(np.float32)


def shape_offsets(vertices: np.ndarray, count: int) -> tuple[list[str], list[str], np.ndarray]:
    """`count` blendshapes: the named ones first, then `extraNN`; each moves a patch along one axis.

    Shape k moves the vertices whose file-space +z (front) side falls in a band by 0.01 * (k + 1) along
    file +y (up), so tests can predict the motion of any vertex.
    """
    names: list[str] = []
    regions: list[str] = []
    for k in range(count):
        if k < len(_SHAPES):
            names.append(_SHAPES[k][0])
            regions.append(_SHAPES[k][1])
        else:
            names.append(f"extra{k:02d}")
            regions.append("other")
    offsets = np.zeros((count, *vertices.shape), dtype=np.float32)
    front = vertices[:, 2] > 0
    for k in range(count):
        offsets[k, front, 1] = 0.01 * (k + 1)
    return names, regions, offsets


def write_bundle(
    root: Path,
    *,
    rings: int = 16,
    segments: int = 24,
    shapes: int = 5,
    pca: int = 2,
    texture: bool = False,
    colors: bool = True,
    status: str = "complete",
    prompt: str | None = "a friendly test head",
    up_axis: str | None = "+y",
    front_axis: str | None = "+z",
    overrides: dict[str, Any] | None = None,
    compressed: bool = False,
) -> Path:
    """Write a bundle folder; `overrides` replaces or (with None) removes model.npz arrays."""
    root.mkdir(parents=True, exist_ok=True)
    vertices, faces, uv = sphere(rings, segments)
    names, regions, offsets = shape_offsets(vertices, shapes)
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(pca, *vertices.shape)).astype(np.float32)
    if pca:
        basis /= np.linalg.norm(basis.reshape(pca, -1), axis=1)[:, None, None]
    arrays: dict[str, Any] = {
        "neutral": vertices,
        "faces": faces,
        "uv": uv,
        "blendshape_names": np.array(names, dtype=np.str_),
        "blendshapes": offsets,
        "blendshape_regions": np.array(regions, dtype=np.str_),
    }
    if pca:
        arrays["pca_mean"] = np.zeros_like(vertices)
        arrays["pca_basis"] = basis
        arrays["pca_stdev"] = np.linspace(0.05, 0.01, pca).astype(np.float32)
    if colors and not texture:
        # Skin-ish colours, brighter toward the top, so a render shows something other than grey.
        shade = (0.6 + 0.4 * (vertices[:, 1:2] / 0.1 + 1.0) / 2.0) * np.array([[230, 170, 140]])
        arrays["colors"] = np.clip(shade, 0, 255).astype(np.uint8)
    for key, value in (overrides or {}).items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    # The backend writes savez_compressed (mostly-zero shapes shrink ~4x); both must read the same.
    (np.savez_compressed if compressed else np.savez)(root / "model.npz", **arrays)
    if texture:
        write_png(root / "texture.png", checker(64))
    settings: dict[str, Any] = {"preset": "preview"}
    if up_axis is not None:
        settings["up_axis"] = up_axis
    if front_axis is not None:
        settings["front_axis"] = front_axis
    manifest = {"schema": 1, "status": status, "prompt": prompt, "settings": settings}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def checker(size: int) -> np.ndarray:
    """An RGB uint8 checkerboard in warm colours."""
    cells = (np.arange(size)[:, None] // 8 + np.arange(size)[None, :] // 8) % 2
    image = np.where(cells[..., None] == 1, np.array([220, 160, 120]), np.array([150, 90, 70]))
    return image.astype(np.uint8)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """A minimal PNG writer (no Pillow in Blender's test env)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
