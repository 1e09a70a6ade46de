"""Reading a T2Bs bundle into arrays ready for Blender: validation and axis conversion, no bpy.

Kept apart from bpy (as io_scene_gltf2 keeps its glTF decoding apart from its Blender code) so that
every rule here is unit-tested with plain Python and numpy, which Blender ships.

What is read (the add-on imports `model.npz`, not `head.glb`: exact values, and `foreach_set` wants
flat arrays anyway):

- `manifest.json`: `status` must be `complete`; `prompt`; `settings.up_axis` / `settings.front_axis`
  (signed axes of the files' coordinates, default `+y` and `+z`).
- `model.npz`: `neutral` [V,3], `faces` [F,3], optional `uv` [V,2] and `colors` [V,3] uint8,
  `blendshape_names` [K], `blendshapes` [K,V,3] offsets, optional `blendshape_regions` [K],
  optional `pca_basis` [M,V,3] with `pca_stdev` [M].
- `texture.png` when present.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .names import eigen_name, group_by_region

MANIFEST = "manifest.json"
MODEL = "model.npz"
TEXTURE = "texture.png"

# Blender's frame: +Z up, the face looks toward -Y, the character's left is +X (as glTF import gives).
BLENDER_UP = np.array([0.0, 0.0, 1.0])
BLENDER_FRONT = np.array([0.0, -1.0, 0.0])

_AXES = {"x": 0, "y": 1, "z": 2}


class BundleError(Exception):
    """A bundle that cannot be imported; the message is one line the user can act on."""


def parse_axis(text: str) -> np.ndarray:
    """`"+y"` -> (0, 1, 0), `"-z"` -> (0, 0, -1); anything else is a BundleError."""
    value = str(text).strip().lower()
    if len(value) == 1:
        value = "+" + value
    if len(value) != 2 or value[0] not in "+-" or value[1] not in _AXES:
        raise BundleError(f"Axis {text!r} is not one of +x, -x, +y, -y, +z, -z.")
    axis = np.zeros(3)
    axis[_AXES[value[1]]] = 1.0 if value[0] == "+" else -1.0
    return axis


def axis_matrix(up_axis: str = "+y", front_axis: str = "+z") -> np.ndarray:
    """The rotation taking file coordinates (with the given up and front axes) to Blender's frame.

    The file's right-handed basis (up x front, up, front) goes to Blender's (+X, +Z, -Y). For +y up and
    +z front this is glTF import's (x, y, z) -> (x, -z, y). Apply it as `points @ matrix.T`.
    """
    up, front = parse_axis(up_axis), parse_axis(front_axis)
    if abs(float(up @ front)) > 0.5:
        raise BundleError(f"Up axis {up_axis!r} and front axis {front_axis!r} must be different axes.")
    side = np.cross(up, front)
    source = np.stack([side, up, front], axis=1)  # columns: the file's basis
    target = np.stack([np.cross(BLENDER_UP, BLENDER_FRONT), BLENDER_UP, BLENDER_FRONT], axis=1)
    return target @ source.T


def to_blender(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points or offsets [..., 3] from file coordinates to Blender's, as contiguous float32."""
    if np.array_equal(matrix, np.eye(3)):
        return np.ascontiguousarray(points, dtype=np.float32)
    # A signed permutation: swapping columns is exact and much faster than a matrix product on 50k x 60.
    out = np.empty(points.shape, dtype=np.float32)
    for row in range(3):
        column = int(np.argmax(np.abs(matrix[row])))
        np.multiply(points[..., column], np.float32(matrix[row, column]), out=out[..., row])
    return out


@dataclass
class BundleData:
    """A bundle's content in Blender's frame, ready for `foreach_set`."""

    root: Path
    prompt: str | None
    settings: dict[str, Any]
    vertices: np.ndarray  # [V, 3] float32
    faces: np.ndarray  # [F, 3] int32
    uv: np.ndarray | None  # [V, 2] float32, per vertex
    colors: np.ndarray | None  # [V, 3] uint8, sRGB
    texture: Path | None
    shape_names: list[str]
    shape_regions: list[str]
    shape_offsets: np.ndarray  # [K, V, 3] float32 offsets from `vertices`
    eigen_names: list[str] = field(default_factory=list)
    eigen_offsets: np.ndarray | None = None  # [M, V, 3]: basis * stdev (one standard deviation)

    @property
    def vertex_count(self) -> int:
        return int(self.vertices.shape[0])

    def regions(self) -> dict[str, list[str]]:
        """Shape names grouped by panel region (semantic keys only; eigen keys are their own group)."""
        return group_by_region(self.shape_names, self.shape_regions)

    def loop_uvs(self) -> np.ndarray | None:
        """Per-corner UVs [3F, 2] in face order, as Blender's UV layer stores them."""
        if self.uv is None:
            return None
        return np.ascontiguousarray(self.uv[self.faces.reshape(-1)], dtype=np.float32)


def read_manifest(root: Path) -> dict[str, Any]:
    """The bundle's manifest, checked: it exists, is a JSON object, and the run finished."""
    path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"Bundle folder {root} does not exist.")
    if not path.is_file():
        raise BundleError(f"{root} is not a T2Bs bundle: it has no {MANIFEST}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} cannot be read as JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path} is not a JSON object.")
    status = data.get("status")
    if status != "complete":
        hint = " Resume the run to finish it." if status in ("running", "cancelled", "failed") else ""
        raise BundleError(f"Bundle {root} is not complete (status {status!r}).{hint}")
    return data


def _array(model: Any, key: str, path: Path, *, required: bool = True) -> np.ndarray | None:
    if key not in model.files:
        if required:
            raise BundleError(f"{path} has no '{key}' array.")
        return None
    try:
        return np.asarray(model[key])
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise BundleError(f"{path}: '{key}' cannot be read without pickle ({exc}).") from exc


def _shape(array: np.ndarray, expected: tuple[int | None, ...], key: str, path: Path) -> None:
    ok = array.ndim == len(expected) and all(e is None or e == s for e, s in zip(expected, array.shape, strict=True))
    if not ok:
        want = "[" + ", ".join("*" if e is None else str(e) for e in expected) + "]"
        raise BundleError(f"{path}: '{key}' has shape {list(array.shape)}, expected {want}.")


def _finite(array: np.ndarray, key: str, path: Path) -> None:
    if not np.isfinite(array).all():
        raise BundleError(f"{path}: '{key}' holds NaN or infinite values.")


def _names(array: np.ndarray, key: str, path: Path) -> list[str]:
    if array.dtype.kind not in "US":
        raise BundleError(f"{path}: '{key}' must hold strings, not {array.dtype}.")
    return [str(x.decode() if isinstance(x, bytes) else x) for x in array.reshape(-1)]


def load_bundle(root: str | Path, *, eigen_count: int | None = None) -> BundleData:
    """Read and check a bundle; everything in Blender's frame.

    `eigen_count` caps the eigen-expression keys (None: all the bundle has, 0: none).
    """
    root = Path(root).expanduser().resolve()
    manifest = read_manifest(root)
    settings = manifest.get("settings") or {}
    if not isinstance(settings, dict):
        raise BundleError(f"{root / MANIFEST}: 'settings' must be an object.")
    prompt = manifest.get("prompt")
    matrix = axis_matrix(str(settings.get("up_axis") or "+y"), str(settings.get("front_axis") or "+z"))

    path = root / MODEL
    if not path.is_file():
        raise BundleError(f"Bundle {root} has no {MODEL}.")
    try:
        model = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path} cannot be read as an .npz archive ({exc}).") from exc
    with model:
        neutral = _array(model, "neutral", path)
        faces = _array(model, "faces", path)
        assert neutral is not None and faces is not None
        _shape(neutral, (None, 3), "neutral", path)
        _finite(neutral, "neutral", path)
        count = neutral.shape[0]
        if count == 0:
            raise BundleError(f"{path}: the mesh has no vertices.")
        _shape(faces, (None, 3), "faces", path)
        if faces.dtype.kind not in "iu":
            raise BundleError(f"{path}: 'faces' must hold integers, not {faces.dtype}.")
        if faces.size and (faces.min() < 0 or faces.max() >= count):
            raise BundleError(f"{path}: 'faces' refers to vertices outside 0..{count - 1}.")

        uv = _array(model, "uv", path, required=False)
        if uv is not None:
            _shape(uv, (count, 2), "uv", path)
            _finite(uv, "uv", path)
        colors = _array(model, "colors", path, required=False)
        if colors is not None:
            _shape(colors, (count, 3), "colors", path)
            if colors.dtype != np.uint8:  # a float 0..1 array is accepted too, as a courtesy
                colors = np.clip(np.round(np.asarray(colors, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)

        names_array = _array(model, "blendshape_names", path, required=False)
        names = [] if names_array is None else _names(names_array, "blendshape_names", path)
        shapes = _array(model, "blendshapes", path, required=bool(names))
        if shapes is None or (not names and shapes.size == 0):  # no shapes, whatever the empty array's shape
            shapes = np.zeros((0, count, 3), dtype=np.float32)
        _shape(shapes, (len(names), count, 3), "blendshapes", path)
        _finite(shapes, "blendshapes", path)
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise BundleError(f"{path}: blendshape name {duplicate!r} appears twice.")
        if any(not n or len(n) > 63 for n in names):  # Blender truncates names at 63 bytes
            raise BundleError(f"{path}: blendshape names must be 1 to 63 characters long.")
        regions_array = _array(model, "blendshape_regions", path, required=False)
        regions = [] if regions_array is None else _names(regions_array, "blendshape_regions", path)
        if regions and len(regions) != len(names):
            raise BundleError(f"{path}: 'blendshape_regions' has {len(regions)} entries for {len(names)} names.")

        eigen_names: list[str] = []
        eigen_offsets = None
        basis = _array(model, "pca_basis", path, required=False)
        if basis is not None and basis.size and eigen_count != 0:
            stdev = _array(model, "pca_stdev", path)
            assert stdev is not None
            if basis.ndim == 2 and basis.shape[1] == 3 * count:  # flattened components: same data
                basis = basis.reshape(basis.shape[0], count, 3)
            _shape(basis, (None, count, 3), "pca_basis", path)
            _shape(stdev, (basis.shape[0],), "pca_stdev", path)
            keep = basis.shape[0] if eigen_count is None else min(eigen_count, basis.shape[0])
            if keep:
                # One standard deviation per key, so the -3..3 slider spans the data's range.
                scaled = basis[:keep].astype(np.float32) * stdev[:keep].astype(np.float32)[:, None, None]
                _finite(scaled, "pca_basis", path)
                eigen_offsets = to_blender(scaled, matrix)
                eigen_names = [eigen_name(i) for i in range(keep)]
        clash = set(eigen_names) & set(names)
        if clash:
            raise BundleError(f"{path}: blendshape name {sorted(clash)[0]!r} is reserved for eigen-expressions.")

    texture = root / TEXTURE
    return BundleData(
        root=root,
        prompt=prompt if isinstance(prompt, str) else None,
        settings=settings,
        vertices=to_blender(neutral.astype(np.float32, copy=False), matrix),
        faces=np.ascontiguousarray(faces, dtype=np.int32),
        uv=None if uv is None else np.ascontiguousarray(uv, dtype=np.float32),
        colors=None if colors is None else np.ascontiguousarray(colors),
        texture=texture if texture.is_file() else None,
        shape_names=names,
        shape_regions=regions,
        shape_offsets=to_blender(shapes.astype(np.float32, copy=False), matrix),
        eigen_names=eigen_names,
        eigen_offsets=eigen_offsets,
    )
