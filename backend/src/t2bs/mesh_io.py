"""Loading, normalising and saving head meshes (OBJ, GLB/glTF, PLY) through trimesh.

The normalised frame
--------------------
Every stage after `asset` works in one frame, whatever the user's file used:

* +Y is up and the face looks toward +Z (so +X is the character's left, a right-handed frame, the
  glTF convention);
* the origin is the centre of the mesh's axis-aligned bounding box;
* the largest side of that bounding box is 1 unit long.

`HeadMesh.to_source` is the 4x4 similarity transform (rotation times uniform scale, plus translation)
that takes points from this frame back to the original file's coordinates, so results can be handed
back in the user's units (registered frames, DESIGN.md "Bundle directory"). The source axes are given
by the caller as a signed axis pair (`up`, `front`): `+y`/`+z` for glTF and for Blender's default OBJ
export (Blender's -Y front becomes +Z there), `+z`/`-y` for a file in Blender's own Z-up axes.

Vertex order
------------
Files are read with `process=False`, so trimesh neither merges nor reorders vertices: GLB/glTF and PLY
keep their vertex arrays as stored. OBJ indexes positions and texture coordinates separately; a vertex
whose `vt` differs between faces (a UV seam) becomes several vertices here, one per distinct UV, as in
glTF. The order of the OBJ's `v` lines is kept (seam copies sit next to each other), and `v` lines that
no face uses are dropped. Normal indices in OBJ faces are ignored, so hard edges do not split vertices.
A scene with several meshes (a glTF node tree, an OBJ with several materials) is flattened into one
mesh with the node transforms applied, in the order trimesh lists the scene's nodes.

Colours
-------
`uv` follows OBJ/Blender (v points up, origin at the bottom left of the image); `texture` is the base
colour image as [H, W, 3] uint8 RGB with row 0 at the top, as in the image file. A glTF
`baseColorFactor` is multiplied into the texture. Meshes without any texture image or vertex colour
come back with both set to None.
"""

from __future__ import annotations

import io
import json
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image
from trimesh.resolvers import FilePathResolver

from .errors import InputError
from .fileio import atomic_open

log = logging.getLogger("t2bs.mesh_io")

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".obj", ".glb", ".gltf", ".ply")

_FORMAT_NAMES = {".obj": "OBJ", ".glb": "GLB", ".gltf": "glTF", ".ply": "PLY"}
_AXES = {"x": 0, "y": 1, "z": 2}
_AXIS_PATTERN = re.compile(r"^\s*([+-]?)\s*([xyz])\s*$", re.IGNORECASE)
# trimesh's colour for meshes without one, used only when mixing coloured and uncoloured parts.
_DEFAULT_GREY = np.array([102, 102, 102], dtype=np.uint8)


@dataclass
class HeadMesh:
    """A head mesh in the normalised frame (module docstring), with the way back to its file.

    Attributes:
        vertices: [V, 3] float32 positions in the normalised frame.
        faces: [F, 3] int32 vertex indices of the triangles.
        uv: [V, 2] float32 texture coordinates (v up), or None.
        texture: [H, W, 3] uint8 RGB base colour image (row 0 at the top), or None.
        vertex_colors: [V, 3] uint8 RGB, or None.
        to_source: [4, 4] float64 similarity transform from the normalised frame to the file's
            coordinates (column vectors: p_source = to_source @ [p, 1]).
        source: where the mesh came from (a path or a description).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    to_source: np.ndarray = field(default_factory=lambda: np.eye(4))
    source: str = ""

    def __post_init__(self) -> None:
        # Shape errors here are programming errors (providers build HeadMesh), not user input.
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be [F, 3], got {self.faces.shape}")
        count = len(self.vertices)
        if self.uv is not None:
            self.uv = np.ascontiguousarray(self.uv, dtype=np.float32)
            if self.uv.shape != (count, 2):
                raise ValueError(f"uv must be [{count}, 2], got {self.uv.shape}")
        if self.texture is not None:
            self.texture = np.ascontiguousarray(self.texture, dtype=np.uint8)
            if self.texture.ndim != 3 or self.texture.shape[2] != 3:
                raise ValueError(f"texture must be [H, W, 3], got {self.texture.shape}")
        if self.vertex_colors is not None:
            self.vertex_colors = np.ascontiguousarray(self.vertex_colors, dtype=np.uint8)
            if self.vertex_colors.shape != (count, 3):
                raise ValueError(f"vertex_colors must be [{count}, 3], got {self.vertex_colors.shape}")
        self.to_source = np.asarray(self.to_source, dtype=np.float64).reshape(4, 4)

    @property
    def vertex_count(self) -> int:
        return len(self.vertices)

    @property
    def face_count(self) -> int:
        return len(self.faces)

    @property
    def diagonal(self) -> float:
        """Length of the bounding-box diagonal in the normalised frame (at most sqrt(3))."""
        if len(self.vertices) == 0:
            return 0.0
        extent = self.vertices.max(axis=0).astype(np.float64) - self.vertices.min(axis=0)
        return float(np.linalg.norm(extent))

    @property
    def source_scale(self) -> float:
        """Source units per normalised unit (the uniform scale inside `to_source`)."""
        return float(np.linalg.norm(self.to_source[:3, 0]))

    def source_vertices(self) -> np.ndarray:
        """[V, 3] float64 vertex positions in the original file's coordinates."""
        return self.to_source_points(self.vertices)

    def to_source_points(self, points: np.ndarray) -> np.ndarray:
        """Map [..., 3] points from the normalised frame to the file's coordinates (float64)."""
        return transform_points(self.to_source, points)

    def from_source_points(self, points: np.ndarray) -> np.ndarray:
        """Map [..., 3] points from the file's coordinates to the normalised frame (float64)."""
        return transform_points(invert_similarity(self.to_source), points)


# -- transforms -------------------------------------------------------------------------------------


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [4, 4] affine `matrix` to [..., 3] `points`; returns float64 of the same shape."""
    matrix = np.asarray(matrix, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points must be [..., 3], got {points.shape}")
    moved: np.ndarray = points @ matrix[:3, :3].T + matrix[:3, 3]
    return moved


def invert_similarity(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a [4, 4] similarity transform (rotation * uniform scale + translation)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    linear = matrix[:3, :3]
    scale_sq = float(np.dot(linear[:, 0], linear[:, 0]))
    if not scale_sq > 0.0:
        raise ValueError("a similarity transform with zero scale has no inverse")
    # For s*R the inverse is R^T / s = (s*R)^T / s^2: exact, no general matrix inversion needed.
    inverse = np.eye(4)
    inverse[:3, :3] = linear.T / scale_sq
    inverse[:3, 3] = -inverse[:3, :3] @ matrix[:3, 3]
    return inverse


def parse_axis(text: str, option: str = "axis") -> np.ndarray:
    """Turn a signed axis name ("+y", "-Z", "x") into a [3] unit vector; InputError otherwise."""
    match = _AXIS_PATTERN.match(str(text))
    if match is None:
        raise InputError(f"The {option} {text!r} is not a signed axis; use one of +x, -x, +y, -y, +z, -z.")
    vector = np.zeros(3)
    vector[_AXES[match.group(2).lower()]] = -1.0 if match.group(1) == "-" else 1.0
    return vector


def axes_rotation(up: str = "+y", front: str = "+z") -> np.ndarray:
    """[3, 3] rotation taking source vectors to the normalised frame: `up` to +Y, `front` to +Z.

    Raises InputError unless `up` and `front` are orthogonal signed axes.
    """
    up_vector = parse_axis(up, "up axis")
    front_vector = parse_axis(front, "front axis")
    if abs(float(np.dot(up_vector, front_vector))) > 0.5:
        raise InputError(
            f"The up axis {up!r} and the front axis {front!r} must be two different axes "
            "(for example up +y with front +z, or up +z with front -y)."
        )
    # Rows are the source directions of the new X, Y, Z; X = Y x Z keeps the frame right-handed,
    # so the rotation never mirrors the mesh.
    return np.stack([np.cross(up_vector, front_vector), up_vector, front_vector])


def normalising_transform(vertices: np.ndarray, up: str = "+y", front: str = "+z") -> np.ndarray:
    """The [4, 4] `to_source` transform for [V, 3] source `vertices` (module docstring's frame).

    The vertices must be finite and not all at one point (callers check; see `load_head_mesh`).
    """
    rotation = axes_rotation(up, front)
    vertices = np.asarray(vertices, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre = (low + high) / 2.0
    # A signed axis permutation maps the source's axis-aligned box onto the normalised one, so
    # its centre and largest side can be taken in source coordinates.
    size = float((high - low).max())
    to_source = np.eye(4)
    to_source[:3, :3] = rotation.T * size
    to_source[:3, 3] = centre
    return to_source


# -- loading --------------------------------------------------------------------------------------


def load_head_mesh(path: str | Path, up: str = "+y", front: str = "+z") -> HeadMesh:
    """Load an OBJ, GLB/glTF or PLY file as a `HeadMesh` in the normalised frame.

    Args:
        path: the mesh file; an OBJ's MTL and texture files are found relative to it.
        up: the file's axis that points up, as a signed axis ("+y", "+z", "-x", ...).
        front: the file's axis the face looks along; orthogonal to `up`.

    Raises:
        InputError: one sentence naming the file, for a missing, empty, unreadable or unusable file
            or an invalid axis pair.
    """
    path = Path(path).expanduser()
    axes_rotation(up, front)  # bad options fail before any file work
    vertices, faces, uv, texture, colors = _read_mesh_file(path)
    bad = int((~np.isfinite(vertices)).any(axis=1).sum())
    if bad:
        noun = "vertex" if bad == 1 else "vertices"
        raise InputError(f"Mesh file {path} has {bad} {noun} with non-finite coordinates.")
    extent = float((vertices.max(axis=0) - vertices.min(axis=0)).max())
    magnitude = float(np.abs(vertices).max())
    # Below float32 resolution at the mesh's distance from the origin the shape cannot be kept.
    if not extent > 1e-6 * max(magnitude, 1e-30):
        raise InputError(f"Mesh file {path} has all its vertices at one point, so it has no size to normalise.")
    to_source = normalising_transform(vertices, up, front)
    normalised = transform_points(invert_similarity(to_source), vertices)
    return HeadMesh(
        vertices=normalised.astype(np.float32),
        faces=faces,
        uv=uv,
        texture=texture,
        vertex_colors=colors,
        to_source=to_source,
        source=str(path.resolve()),
    )


_Arrays = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None", "np.ndarray | None"]


def _read_mesh_file(path: Path) -> _Arrays:
    """Check and parse `path`; returns (vertices [V,3] float64 in file coordinates, faces [F,3]
    int32, uv [V,2] or None, texture [H,W,3] uint8 or None, vertex colours [V,3] uint8 or None)."""
    if not path.exists():
        raise InputError(f"Mesh file {path} does not exist.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a mesh file; give an .obj, .glb, .gltf or .ply file.")
    extension = path.suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        suffix = repr(path.suffix) if path.suffix else "(none)"
        raise InputError(
            f"Mesh file {path} has the unsupported extension {suffix}; use one of {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise InputError(f"Mesh file {path} cannot be read ({_one_line(exc)}).") from None
    if empty:
        raise InputError(f"Mesh file {path} is empty (0 bytes).")
    kind = _FORMAT_NAMES[extension]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = _trimesh_load(path, extension)
            parts = _flatten(loaded)
            arrays = _merge(parts) if parts else None
    except InputError:
        raise
    except Exception as exc:  # trimesh raises anything from KeyError to struct.error on bad files
        raise InputError(f"Mesh file {path} cannot be read as {kind} ({_one_line(exc)}).") from None
    if arrays is None:
        raise InputError(f"Mesh file {path} holds no triangles (only points, lines or nothing).")
    vertices, faces = arrays[0], arrays[1]
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(f"Mesh file {path} has faces that refer to vertices it does not have.")
    return arrays


def _trimesh_load(path: Path, extension: str) -> Any:
    data = path.read_bytes() if extension in (".obj", ".gltf") else None
    if extension == ".obj":
        assert data is not None
        # OBJ text is rewritten without normal indices so trimesh splits vertices at UV seams only
        # (with them, every hard edge would split too). maintain_order=True is not used: it keeps one
        # UV per position, which puts wrong texture coordinates on every seam.
        text = _drop_obj_normal_indices(_decode_obj(path, data))
        return trimesh.load(
            io.BytesIO(text.encode("utf-8")),
            file_type="obj",
            resolver=FilePathResolver(str(path)),
            process=False,
            maintain_order=False,
        )
    # trimesh's own errors for these are cryptic ("list index out of range"), so check the magic.
    if extension == ".ply":
        with path.open("rb") as handle:
            if handle.read(3) != b"ply":
                raise InputError(f"Mesh file {path} is not a PLY file (it does not start with 'ply').")
    elif extension == ".glb":
        with path.open("rb") as handle:
            if handle.read(4) != b"glTF":
                raise InputError(f"Mesh file {path} is not a GLB file (it does not start with 'glTF').")
    elif extension == ".gltf":
        assert data is not None
        try:
            header = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"Mesh file {path} is not valid glTF JSON ({_one_line(exc)}).") from None
        if not isinstance(header, dict):
            raise InputError(f"Mesh file {path} is not valid glTF JSON (it holds no JSON object).")
    return trimesh.load(str(path), file_type=extension[1:], process=False)


def _decode_obj(path: Path, data: bytes) -> str:
    if b"\x00" in data:
        raise InputError(f"Mesh file {path} cannot be read as OBJ (it is a binary file, not OBJ text).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some exporters write material or object names in a legacy 8-bit encoding.
        return data.decode("latin-1")


_FACE_LINE = re.compile(r"^[ \t]*f[ \t]", re.MULTILINE)


def _drop_obj_normal_indices(text: str) -> str:
    """Rewrite OBJ `f` corners "v/vt/vn" to "v/vt" and "v//vn" to "v"; other lines stay as they are."""
    if "/" not in text or _FACE_LINE.search(text) is None:
        return text
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped.startswith(("f ", "f\t")):
            continue
        corners = []
        for token in stripped.split()[1:]:
            parts = token.split("/")
            corners.append(parts[0] + ("/" + parts[1] if len(parts) > 1 and parts[1] else ""))
        lines[index] = "f " + " ".join(corners)
    return "\n".join(lines) + "\n"


@dataclass
class _Part:
    """One mesh instance of a loaded file, moved to its place in the scene."""

    mesh: trimesh.Trimesh  # as stored in the file (untransformed), for its visual
    vertices: np.ndarray  # [V, 3] float64, node transform applied
    faces: np.ndarray  # [F, 3] int64
    uv: np.ndarray | None
    texture: np.ndarray | None
    colors: np.ndarray | None


def _flatten(loaded: Any) -> list[_Part]:
    """The triangle meshes in a load result, with scene node transforms applied."""
    if isinstance(loaded, trimesh.Scene):
        # Not Scene.dump(): its copies lose a textured mesh's COLOR_0. A geometry instanced by
        # several nodes appears once per node, in trimesh's node order.
        instances = [loaded.graph[node] for node in loaded.graph.nodes_geometry]
        pairs = [(np.asarray(matrix, dtype=np.float64), loaded.geometry[name]) for matrix, name in instances]
    else:
        pairs = [(np.eye(4), loaded)]
    parts = []
    for matrix, mesh in pairs:
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if np.linalg.det(matrix[:3, :3]) < 0:
            # A mirroring node turns the triangles inside out; glTF renders them flipped back, so
            # baking the mirror into the positions needs the winding reversed.
            faces = faces[:, ::-1]
        parts.append(_Part(mesh, transform_points(matrix, mesh.vertices), faces, *_visual_parts(mesh)))
    return parts


def _merge(parts: list[_Part]) -> _Arrays:
    """One set of arrays for one or several parts (see the module docstring for the colour rules)."""
    if len(parts) == 1:
        part = parts[0]
        return part.vertices, part.faces.astype(np.int32), part.uv, part.texture, part.colors
    if all(part.uv is not None and part.texture is not None for part in parts):
        # trimesh packs the textures into one atlas and rescales each part's UVs into it.
        # Copies, because a Trimesh takes ownership of the visual it is given.
        visuals = [part.mesh.visual.copy() for part in parts if part.mesh.visual is not None]
        placed = [
            trimesh.Trimesh(part.vertices, part.faces, visual=visual, process=False)
            for part, visual in zip(parts, visuals, strict=True)
        ]
        merged = trimesh.util.concatenate(placed)
        if isinstance(merged.visual, trimesh.visual.TextureVisuals):
            uv, texture, _ = _visual_parts(merged)
            if uv is not None and texture is not None:
                faces = np.asarray(merged.faces, dtype=np.int64).astype(np.int32)
                return np.asarray(merged.vertices, dtype=np.float64), faces, uv, texture, None
    vertices = np.concatenate([part.vertices for part in parts])
    offsets = np.cumsum([0] + [len(part.vertices) for part in parts[:-1]])
    shifted = [part.faces + offset for part, offset in zip(parts, offsets, strict=True)]
    faces = np.concatenate(shifted).astype(np.int32)
    if not any(part.texture is not None or part.colors is not None for part in parts):
        return vertices, faces, None, None, None
    # Textured and untextured parts cannot share one image without rebuilding UVs, so everything is
    # baked to vertex colours: textures sampled at the UVs, plain parts in their material colour.
    colors = np.concatenate([_as_vertex_colors(part) for part in parts])
    return vertices, faces, None, None, colors


def _visual_parts(
    mesh: trimesh.Trimesh,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(uv [V,2] float32, texture [H,W,3] uint8, vertex colours [V,3] uint8), each or None."""
    visual = mesh.visual
    count = len(mesh.vertices)
    if isinstance(visual, trimesh.visual.TextureVisuals):
        uv = visual.uv
        uv = np.asarray(uv, dtype=np.float32) if uv is not None and len(uv) == count else None
        texture = _material_texture(visual.material)
        # glTF COLOR_0 beside a texture lands in the visual's vertex attributes.
        attributes = getattr(visual, "vertex_attributes", None)
        color_attribute = attributes["color"] if attributes is not None and "color" in attributes else None
        colors = _rgb_colors(color_attribute, count)
        return uv, texture, colors
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind in ("vertex", "face"):
        # Face colours become vertex colours (trimesh averages the faces around each vertex).
        return None, None, _rgb_colors(visual.vertex_colors, count)
    return None, None, None


def _as_vertex_colors(part: _Part) -> np.ndarray:
    """[V, 3] uint8 colours for a part of a scene that is baked to vertex colours."""
    count = len(part.vertices)
    if part.colors is not None:
        return part.colors
    if part.uv is not None and part.texture is not None:
        return sample_texture(part.texture, part.uv)
    if isinstance(part.mesh.visual, trimesh.visual.TextureVisuals):
        main = np.asarray(part.mesh.visual.material.main_color, dtype=np.uint8)[:3]
        return np.tile(main, (count, 1))
    return np.tile(_DEFAULT_GREY, (count, 1))


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest texel of [H, W, 3] `texture` at [V, 2] `uv` (v up, wrapping like glTF's repeat)."""
    height, width = texture.shape[:2]
    u = np.mod(uv[:, 0], 1.0)
    v = np.mod(uv[:, 1], 1.0)
    column = np.clip((u * width).astype(np.int64), 0, width - 1)
    row = np.clip(((1.0 - v) * height).astype(np.int64), 0, height - 1)
    sampled: np.ndarray = texture[row, column]
    return sampled


def _material_texture(material: Any) -> np.ndarray | None:
    """The base colour image of a trimesh material as [H, W, 3] uint8, with glTF's factor applied."""
    image = getattr(material, "baseColorTexture", None)
    if image is None:
        image = getattr(material, "image", None)
    if image is None:
        return None
    if isinstance(image, Image.Image):
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    else:  # some loaders hand over arrays
        array = np.asarray(image)
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        rgb = np.ascontiguousarray(array[:, :, :3], dtype=np.uint8)
    factor = getattr(material, "baseColorFactor", None)
    if factor is not None:
        scale = np.asarray(factor, dtype=np.float64)[:3] / 255.0
        if not np.allclose(scale, 1.0):
            rgb = np.clip(np.rint(rgb * scale), 0, 255).astype(np.uint8)
    return rgb


def _rgb_colors(colors: Any, count: int) -> np.ndarray | None:
    if colors is None:
        return None
    array = np.asarray(colors)
    if array.ndim != 2 or array.shape[0] != count or array.shape[1] < 3:
        return None
    if array.dtype.kind == "f":  # float colours in 0..1 (e.g. a float COLOR_0 in glTF)
        array = np.clip(np.rint(array * 255.0), 0, 255)
    return np.ascontiguousarray(array[:, :3], dtype=np.uint8)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# -- static.glb -----------------------------------------------------------------------------------


def save_static_glb(mesh: HeadMesh, path: str | Path) -> None:
    """Write `mesh` (normalised frame, as is) to a GLB file atomically.

    The vertex array is written as stored, so `load_static_glb` gives back the same vertex order and
    count. The texture goes in as a PNG base colour (non-metallic, so it looks as painted); vertex
    colours go in as COLOR_0. Smooth vertex normals are included so viewers do not shade it flat.
    """
    visual: trimesh.visual.TextureVisuals | trimesh.visual.ColorVisuals | None = None
    colors_rgba = None
    if mesh.vertex_colors is not None:
        colors_rgba = np.concatenate([mesh.vertex_colors, np.full((mesh.vertex_count, 1), 255, dtype=np.uint8)], axis=1)
    if mesh.uv is not None:
        material = trimesh.visual.material.PBRMaterial(
            name="head",
            baseColorTexture=Image.fromarray(mesh.texture) if mesh.texture is not None else None,
            metallicFactor=0.0,
            roughnessFactor=0.8,
        )
        visual = trimesh.visual.TextureVisuals(uv=mesh.uv, material=material)
        if colors_rgba is not None:
            visual.vertex_attributes["color"] = colors_rgba
    elif colors_rgba is not None:
        visual = trimesh.visual.ColorVisuals(vertex_colors=colors_rgba)
    shape = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, visual=visual, process=False)
    normals = np.array(shape.vertex_normals, dtype=np.float64)  # a copy: trimesh caches read-only
    # glTF requires unit normals; isolated or degenerate vertices get a harmless +Z.
    length = np.linalg.norm(normals, axis=1)
    normals[~(np.abs(length - 1.0) < 1e-3)] = (0.0, 0.0, 1.0)
    shape.vertex_normals = normals  # type: ignore[method-assign]  # trimesh's property setter
    data = trimesh.exchange.gltf.export_glb(trimesh.Scene(shape), include_normals=True)
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def load_static_glb(path: str | Path, to_source: np.ndarray, source: str | None = None) -> HeadMesh:
    """Read a GLB written by `save_static_glb` back, with its vertex order and count.

    Args:
        path: the GLB file (a bundle's asset/static.glb).
        to_source: [4, 4] transform to the original file's coordinates (from asset.json).
        source: the original source description; defaults to `path`.
    """
    path = Path(path)
    vertices, faces, uv, texture, colors = _read_mesh_file(path)
    return HeadMesh(
        vertices=vertices.astype(np.float32),
        faces=faces,
        uv=uv,
        texture=texture,
        vertex_colors=colors,
        to_source=np.asarray(to_source, dtype=np.float64),
        source=str(path) if source is None else source,
    )
