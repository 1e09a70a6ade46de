"""`head.glb`: the head with one morph target per blendshape (glTF 2.0, binary).

Written by hand rather than through trimesh, which has no morph targets. The file holds one node with
one mesh of one triangle primitive:

* POSITION, NORMAL, TEXCOORD_0 (when the head has UVs; glTF's v points down, so v' = 1 - v) and
  COLOR_0 (linear RGB, when the head has vertex colours and no texture);
* one morph target per blendshape with its POSITION offsets. A cleaned shape moves only part of the
  head, so a target whose moving vertices are fewer than two thirds of all is stored as a sparse
  accessor (indices plus values), which keeps the file a fraction of the dense size;
* `mesh.weights` all 0 and the target names in `mesh.extras.targetNames`, the convention Blender,
  three.js and Babylon.js read shape key names from;
* the texture as an embedded PNG in a non-metallic PBR material.

Coordinates are the model's (the asset file's) rotated so that the head's up is +Y and its front +Z,
as glTF asks; units are kept (glTF says metres, but a head in centimetres stays in centimetres, so that
it lines up with the user's own file).
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..blendshape_model import BlendshapeModel
from ..fileio import atomic_open
from ..meshrender import vertex_normals

_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_FLOAT = 5126
_UNSIGNED_INT = 5125
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
# A target stored sparse must save space: indices (4 bytes) + values (12) per moving vertex.
_SPARSE_FRACTION = 2.0 / 3.0


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """[..., 3] sRGB in 0..1 -> linear (glTF's COLOR_0 is linear)."""
    c = np.asarray(colors, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


class _GlbBuilder:
    """Accumulates buffer views and accessors for one binary buffer."""

    def __init__(self) -> None:
        self.binary = bytearray()
        self.buffer_views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def view(self, data: bytes, target: int | None = None) -> int:
        # glTF requires every accessor offset to be a multiple of its component size; 4 covers all.
        self.binary.extend(b"\0" * (-len(self.binary) % 4))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.binary), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.binary.extend(data)
        self.buffer_views.append(view)
        return len(self.buffer_views) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = _ARRAY_BUFFER, bounds: bool = False) -> int:
        array = np.ascontiguousarray(array)
        component = _UNSIGNED_INT if array.dtype == np.uint32 else _FLOAT
        count = len(array) if kind != "SCALAR" else array.size
        entry: dict[str, Any] = {
            "bufferView": self.view(array.tobytes(), target),
            "componentType": component,
            "count": count,
            "type": kind,
        }
        if bounds:
            entry["min"] = [float(x) for x in array.reshape(count, -1).min(axis=0)]
            entry["max"] = [float(x) for x in array.reshape(count, -1).max(axis=0)]
        self.accessors.append(entry)
        return len(self.accessors) - 1

    def morph_positions(self, offsets: np.ndarray) -> int:
        """A POSITION morph target accessor: sparse when few vertices move, dense otherwise."""
        offsets = np.ascontiguousarray(offsets, dtype=np.float32)
        moving = np.flatnonzero(np.any(offsets != 0.0, axis=1)).astype(np.uint32)
        if len(moving) >= _SPARSE_FRACTION * len(offsets):
            return self.accessor(offsets, "VEC3", bounds=True)
        if len(moving) == 0:
            # A sparse accessor needs at least one entry; a zero offset at vertex 0 changes nothing.
            moving = np.zeros(1, dtype=np.uint32)
        # Bounds cover the whole target, whose unstored entries are zero.
        low = np.minimum(offsets.min(axis=0), 0.0)
        high = np.maximum(offsets.max(axis=0), 0.0)
        entry = {
            "componentType": _FLOAT,
            "count": len(offsets),
            "type": "VEC3",
            "min": [float(x) for x in low],
            "max": [float(x) for x in high],
            "sparse": {
                "count": len(moving),
                "indices": {"bufferView": self.view(moving.tobytes()), "componentType": _UNSIGNED_INT},
                "values": {"bufferView": self.view(offsets[moving].tobytes())},
            },
        }
        self.accessors.append(entry)
        return len(self.accessors) - 1


def head_glb_bytes(
    model: BlendshapeModel,
    rotation: np.ndarray,
    *,
    names: list[str] | None = None,
    texture: np.ndarray | None = None,
    generator: str = "t2bs",
    extras: dict[str, Any] | None = None,
) -> bytes:
    """The GLB file of `model` as bytes.

    Args:
        rotation: [3, 3] rotation from the model's coordinates to glTF's (+Y up, +Z front).
        names: target names (default the model's names; an export may use another casing).
        texture: [H, W, 3] uint8 base colour image for the model's UVs.
        extras: JSON-able data for the scene's `extras` (prompt, source bundle).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    names = list(model.names if names is None else names)
    if len(names) != len(model.names):
        raise ValueError("one name per blendshape")
    positions = (model.neutral.astype(np.float64) @ rotation.T).astype(np.float32)
    builder = _GlbBuilder()
    attributes = {
        "POSITION": builder.accessor(positions, "VEC3", bounds=True),
        "NORMAL": builder.accessor(_unit_normals(positions, model.faces), "VEC3"),
    }
    if model.uv is not None:
        uv = model.uv.astype(np.float32).copy()
        uv[:, 1] = 1.0 - uv[:, 1]
        attributes["TEXCOORD_0"] = builder.accessor(uv, "VEC2")
    if model.colors is not None and texture is None:
        attributes["COLOR_0"] = builder.accessor(srgb_to_linear(model.colors / 255.0).astype(np.float32), "VEC3")
    indices = builder.accessor(model.faces.astype(np.uint32).ravel(), "SCALAR", _ELEMENT_ARRAY_BUFFER)
    targets = [
        {"POSITION": builder.morph_positions((shape.astype(np.float64) @ rotation.T).astype(np.float32))}
        for shape in model.shapes
    ]

    material: dict[str, Any] = {
        "name": "head",
        "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.8},
    }
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [{"name": "t2bs", "nodes": [0], **({"extras": extras} if extras else {})}],
        "nodes": [{"name": "head", "mesh": 0}],
        "materials": [material],
    }
    if texture is not None and model.uv is not None:
        png = io.BytesIO()
        Image.fromarray(np.asarray(texture, dtype=np.uint8)).save(png, format="PNG")
        document["images"] = [
            {"name": "head_basecolor", "mimeType": "image/png", "bufferView": builder.view(png.getvalue())}
        ]
        document["samplers"] = [{"magFilter": 9729, "minFilter": 9987, "wrapS": 10497, "wrapT": 10497}]
        document["textures"] = [{"sampler": 0, "source": 0}]
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": 0}
    primitive: dict[str, Any] = {"attributes": attributes, "indices": indices, "material": 0, "mode": 4}
    mesh: dict[str, Any] = {"name": "head", "primitives": [primitive]}
    if targets:
        primitive["targets"] = targets
        mesh["weights"] = [0.0] * len(targets)
        mesh["extras"] = {"targetNames": names}
    document["meshes"] = [mesh]
    document["accessors"] = builder.accessors
    document["bufferViews"] = builder.buffer_views
    builder.binary.extend(b"\0" * (-len(builder.binary) % 4))
    document["buffers"] = [{"byteLength": len(builder.binary)}]

    json_chunk = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_chunk += b" " * (-len(json_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(builder.binary)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(json_chunk), _CHUNK_JSON),
            json_chunk,
            struct.pack("<II", len(builder.binary), _CHUNK_BIN),
            bytes(builder.binary),
        ]
    )


def write_head_glb(path: str | Path, model: BlendshapeModel, rotation: np.ndarray, **options: Any) -> None:
    """Write `head_glb_bytes(model, rotation, **options)` to `path` atomically."""
    data = head_glb_bytes(model, rotation, **options)
    with atomic_open(Path(path), "wb") as handle:
        handle.write(data)


def read_glb_document(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split GLB bytes into (JSON document, binary chunk); ValueError if they are not a GLB."""
    if len(data) < 20:
        raise ValueError("too short for a GLB file")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != 2 or length != len(data):
        raise ValueError("not a glTF 2.0 binary file")
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != _CHUNK_JSON:
        raise ValueError("the first GLB chunk is not JSON")
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    binary = b""
    if offset + 8 <= len(data):
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type == _CHUNK_BIN:
            binary = data[offset + 8 : offset + 8 + bin_length]
    return document, binary


def read_accessor(document: dict[str, Any], binary: bytes, index: int) -> np.ndarray:
    """Decode accessor `index` (float32 or uint32, dense or sparse) as [count, components]."""
    accessor = document["accessors"][index]
    components = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[accessor["type"]]
    dtype = np.uint32 if accessor["componentType"] == _UNSIGNED_INT else np.float32
    count = int(accessor["count"])

    def view_array(view_index: int, view_dtype: Any, size: int) -> np.ndarray:
        view = document["bufferViews"][view_index]
        start = int(view.get("byteOffset", 0))
        return np.frombuffer(binary, dtype=view_dtype, count=size, offset=start)

    if "bufferView" in accessor:
        values = view_array(accessor["bufferView"], dtype, count * components).reshape(count, components).copy()
    else:
        values = np.zeros((count, components), dtype=dtype)
    sparse = accessor.get("sparse")
    if sparse:
        indices = view_array(sparse["indices"]["bufferView"], np.uint32, int(sparse["count"]))
        values[indices] = view_array(sparse["values"]["bufferView"], dtype, int(sparse["count"]) * components).reshape(
            -1, components
        )
    return values


def _unit_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    normals = vertex_normals(positions, faces).astype(np.float64)
    # glTF requires unit normals; vertices without faces get a harmless +Z.
    length = np.linalg.norm(normals, axis=1)
    normals[~(np.abs(length - 1.0) < 1e-3)] = (0.0, 0.0, 1.0)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return normals.astype(np.float32)
