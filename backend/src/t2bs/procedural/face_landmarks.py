"""Named facial landmarks of a head mesh that comes without facial regions (`--asset mesh:PATH`).

Two sources, both giving the same named 3D points in the normalised frame (`t2bs.mesh_io`):

* a landmarks file the user writes (`--landmarks FILE.json`, format below), or
* MediaPipe's face mesh (the `landmarks` extra; it runs in `facemesh_worker`, a process of its own):
  the head is rendered from the front at `DETECTION_SIZE` px with `t2bs.meshrender` (its texture or
  vertex colours, Lambert shading), the face mesh finds its 478 landmarks in the image, and each one is
  lifted back onto the mesh by casting the camera ray through it (`cast_rays`: the first surface hit,
  as the z-buffer saw it).

`t2bs.procedural.mesh_regions.regions_from_landmarks` turns the points into `FaceRegions`.

Landmarks file
--------------
JSON, points in the mesh file's own coordinates (the units and axes of the OBJ/GLB/PLY, before any
`--up`/`--front` change), `_L` the character's own left (the side you see on your right when it faces
you):

```json
{"version": 1,
 "points": {"eye_outer_L": [3.2, 3.4, 8.6], "eye_inner_L": [1.8, 3.3, 9.2],
            "eye_outer_R": [-3.2, 3.4, 8.6], "eye_inner_R": [-1.8, 3.3, 9.2],
            "mouth_corner_L": [2.5, -3.5, 10.2], "mouth_corner_R": [-2.5, -3.5, 10.2],
            "nose_tip": [0.0, 0.4, 13.1], "chin": [0.0, -7.6, 10.4]}}
```
`REQUIRED_POINTS` must be there; `OPTIONAL_POINTS` sharpen the regions (eyelid margins set how far
the lids travel, lip edges the lips' height; the rest fall back to human proportions). Each point must
lie on or near the surface (within `MAX_POINT_DISTANCE` of the bounding-box diagonal).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ..capture import Camera, look_at_camera
from ..errors import InputError
from ..mesh_io import HeadMesh
from ..meshrender import render_mesh, shade_lambert, vertex_normals
from .facemesh_worker import EXIT_MEDIAPIPE_FAILED

LANDMARKS_FORMAT_VERSION = 1
REQUIRED_POINTS: tuple[str, ...] = (
    "eye_outer_L", "eye_inner_L", "eye_outer_R", "eye_inner_R", "mouth_corner_L", "mouth_corner_R",
    "nose_tip", "chin",
)  # fmt: skip
OPTIONAL_POINTS: tuple[str, ...] = (
    "eye_top_L", "eye_bottom_L", "eye_top_R", "eye_bottom_R",  # middle of each eyelid's margin
    "brow_L", "brow_R",  # the middle of each eyebrow
    "lip_top", "lip_bottom",  # the outer edges of the lips in the middle
    "mouth_center",  # between the lips
    "cheek_L", "cheek_R",  # the cheekbones' fullest point
    "jaw_hinge",  # any point on the jaw's hinge axis (the axis runs along X, in front of the ears)
)  # fmt: skip
POINT_NAMES = REQUIRED_POINTS + OPTIONAL_POINTS

# MediaPipe face-mesh landmark ids (its canonical 468-point topology) behind each named point; a point
# with several ids is their mean. MediaPipe's "left" is the subject's left, as ours.
MEDIAPIPE_IDS: dict[str, tuple[int, ...]] = {
    "eye_outer_L": (263,), "eye_inner_L": (362,), "eye_outer_R": (33,), "eye_inner_R": (133,),
    "eye_top_L": (386,), "eye_bottom_L": (374,), "eye_top_R": (159,), "eye_bottom_R": (145,),
    "mouth_corner_L": (291,), "mouth_corner_R": (61,), "nose_tip": (4,), "chin": (152,),
    "brow_L": (334, 282), "brow_R": (105, 52), "lip_top": (0,), "lip_bottom": (17,),
    "mouth_center": (13, 14), "cheek_L": (280,), "cheek_R": (50,),
}  # fmt: skip
FACE_MESH_POINT_COUNT = 468  # 478 with the iris points that refine_landmarks adds

DETECTION_SIZE = 512
# The whole normalised head (at most 1 unit across) fits this view with a margin.
DETECTION_DISTANCE = 2.6
DETECTION_FOV_DEG = 28.0
DETECTION_LIGHT = np.array([0.25, 0.45, 1.0])
# Albedo of an uncoloured mesh: a light skin tone finds faces more reliably than grey.
PLAIN_ALBEDO = np.array([0.80, 0.64, 0.55])
BACKGROUND = 1.0
WORKER = Path(__file__).with_name("facemesh_worker.py")
WORKER_TIMEOUT_S = 180.0
MAX_POINT_DISTANCE = 0.05  # of the bounding-box diagonal
_NEAR = 1e-6

# How to get MediaPipe (scripts/setup.sh does both steps; backend/pyproject.toml says why --no-deps).
INSTALL_HINT = 'pip install "t2bs[landmarks]", then pip install --no-deps mediapipe==0.10.21'


class LandmarksUnavailable(Exception):
    """No landmarks could be found for a mesh; `reason` says why in a short clause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the landmarks file --------------------------------------------------------------------------------


def read_landmarks_file(path: str | Path) -> dict[str, np.ndarray]:
    """The points of a landmarks file (module docstring), in the file's coordinates: name -> [3] float64.

    Raises InputError (one sentence) if the file is missing, is not such JSON, lacks a required point,
    names an unknown one or holds anything but three finite numbers per point.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"The landmarks file {path} does not exist.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"The landmarks file {path} is not valid JSON ({exc}).") from None
    example = '{"version": 1, "points": {"nose_tip": [x, y, z], ...}}'
    if not isinstance(data, dict) or not isinstance(data.get("points"), dict):
        raise InputError(f"The landmarks file {path} must hold an object like {example}.")
    version = data.get("version", LANDMARKS_FORMAT_VERSION)
    if version != LANDMARKS_FORMAT_VERSION:
        raise InputError(
            f"The landmarks file {path} has version {version!r}; this t2bs reads version {LANDMARKS_FORMAT_VERSION}."
        )
    raw: dict[str, Any] = data["points"]
    unknown = sorted(set(raw) - set(POINT_NAMES))
    if unknown:
        raise InputError(
            f"The landmarks file {path} names unknown points ({', '.join(unknown)}); "
            f"the known ones are {', '.join(POINT_NAMES)}."
        )
    missing = [name for name in REQUIRED_POINTS if name not in raw]
    if missing:
        raise InputError(f"The landmarks file {path} lacks the points {', '.join(missing)}.")
    points = {}
    for name, value in raw.items():
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        ):
            raise InputError(f"The landmarks file {path} gives {name} as {value!r}; write three numbers [x, y, z].")
        points[name] = np.asarray(value, dtype=np.float64)
    return points


def landmarks_from_file(path: str | Path, mesh: HeadMesh) -> dict[str, np.ndarray]:
    """The points of a landmarks file moved into `mesh`'s normalised frame, checked against the mesh.

    Raises InputError if the file is bad (`read_landmarks_file`), a point lies off the surface (the
    file was written in other units or axes) or the points do not make a face (left and right swapped).
    """
    source_points = read_landmarks_file(path)
    points = {name: mesh.from_source_points(value) for name, value in source_points.items()}
    tree = cKDTree(mesh.vertices.astype(np.float64))
    limit = MAX_POINT_DISTANCE * mesh.diagonal
    for name, point in points.items():
        distance = float(tree.query(point)[0])
        if distance > limit:
            raise InputError(
                f"The landmark {name} in {path} lies {distance * mesh.source_scale:.3g} units from the mesh "
                f"{Path(mesh.source).name}; give points on its surface, in the mesh file's own coordinates."
            )
    problem = face_layout_problem(points)
    if problem is not None:
        raise InputError(f"The landmarks in {path} do not make a face: {problem}.")
    return points


def face_layout_problem(points: dict[str, np.ndarray]) -> str | None:
    """Why `points` (normalised frame: +X the character's left, +Y up) cannot be a face, or None.

    Catches left and right swapped, upside-down faces and landmarks that a detector put on a face-like
    pattern that is no face (eyes below the mouth, a mouth wider than the head).
    """
    x = {name: float(point[0]) for name, point in points.items()}
    y = {name: float(point[1]) for name, point in points.items()}
    if not x["eye_outer_L"] > x["eye_inner_L"] > x["eye_inner_R"] > x["eye_outer_R"]:
        return "the eye corners are not in the order outer left, inner left, inner right, outer right along +X"
    if not x["mouth_corner_L"] > x["mouth_corner_R"]:
        return "mouth_corner_L is not on the character's left (+X) of mouth_corner_R"
    eye_y = np.mean([y[n] for n in ("eye_outer_L", "eye_inner_L", "eye_outer_R", "eye_inner_R")])
    mouth_y = (y["mouth_corner_L"] + y["mouth_corner_R"]) / 2.0
    if not eye_y > mouth_y > y["chin"]:
        return "the eyes, the mouth and the chin are not in that order from top to bottom"
    if not eye_y > y["nose_tip"]:
        return "the nose tip is not below the eyes"
    return None


# -- MediaPipe on a frontal render -------------------------------------------------------------------


def mediapipe_installed() -> bool:
    """Whether the `mediapipe` package can be found (without importing it)."""
    return importlib.util.find_spec("mediapipe") is not None


def detection_camera(size: int = DETECTION_SIZE) -> Camera:
    """The frontal camera of the detection render, in the normalised frame (face toward +Z)."""
    eye = np.array([0.0, 0.0, DETECTION_DISTANCE])
    return look_at_camera("detect", eye, np.zeros(3), (0.0, 1.0, 0.0), size, size, DETECTION_FOV_DEG)


def mesh_albedo(mesh: HeadMesh) -> np.ndarray:
    """[V, 3] float32 colours in 0..1: the vertex colours, else the texture at each vertex, else skin."""
    if mesh.vertex_colors is not None:
        return mesh.vertex_colors.astype(np.float32) / 255.0
    if mesh.texture is not None and mesh.uv is not None:
        from .head import sample_texture

        return sample_texture(mesh.texture, mesh.uv).astype(np.float32) / 255.0
    return np.tile(PLAIN_ALBEDO.astype(np.float32), (mesh.vertex_count, 1))


def detection_image(mesh: HeadMesh, camera: Camera) -> np.ndarray:
    """[S, S, 3] uint8 RGB: the head from `camera`, Lambert-shaded, on a plain background."""
    shaded = shade_lambert(mesh_albedo(mesh), vertex_normals(mesh.vertices, mesh.faces), DETECTION_LIGHT)
    # No supersampling: the face mesh looks at a 192 px crop of the face, and 2x2 supersampling moved
    # its landmarks on the ICT head by 0.5 px on average (1.5 px at most) for 4x the time.
    camera_args = (camera.K, camera.world_to_camera, camera.width, camera.height)
    rgba = render_mesh(mesh.vertices, mesh.faces, shaded, *camera_args, supersample=1)
    rgb = rgba[..., :3] + (1.0 - rgba[..., 3:]) * BACKGROUND
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def run_face_mesh(image: np.ndarray, timeout: float = WORKER_TIMEOUT_S) -> np.ndarray | None:
    """MediaPipe's face mesh on `image` ([H, W, 3] uint8 RGB), in `facemesh_worker`'s own process.

    Returns [478, 2] float64 pixel coordinates (x right, y down, 0 at the top-left corner) of the one
    face found, or None if there is none. Raises LandmarksUnavailable if mediapipe is not installed or
    cannot run.
    """
    if not mediapipe_installed():
        raise LandmarksUnavailable("MediaPipe is not installed")
    with tempfile.TemporaryDirectory(prefix="t2bs-facemesh-") as folder:
        image_path, result_path = Path(folder) / "image.npy", Path(folder) / "faces.json"
        np.save(image_path, np.ascontiguousarray(image, dtype=np.uint8))
        # Run as a script: importing it as t2bs.procedural.facemesh_worker would first import the package
        # (and torch with it), tripling the time. -P keeps this folder off sys.path (its modules' names).
        command = [sys.executable, "-P", str(WORKER), str(image_path), str(result_path)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise LandmarksUnavailable(f"MediaPipe's face mesh did not finish within {timeout:.0f} s") from None
        if done.returncode != 0 or not result_path.is_file():
            # The worker's own reason is its last line; anything else (a crash) has only a status.
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            known = done.returncode == EXIT_MEDIAPIPE_FAILED and lines
            detail = lines[-1] if known else f"exit status {done.returncode}"
            raise LandmarksUnavailable(f"MediaPipe's face mesh failed ({detail})")
        faces = json.loads(result_path.read_text(encoding="utf-8"))["faces"]
    if not faces:
        return None
    pixels = np.asarray(faces[0], dtype=np.float64)
    if pixels.ndim != 2 or pixels.shape[0] < FACE_MESH_POINT_COUNT or pixels.shape[1] != 2:
        raise LandmarksUnavailable(f"MediaPipe's face mesh returned {pixels.shape} landmarks")
    return pixels


def cast_rays(
    pixels: np.ndarray, vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, world_to_camera: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the camera ray through each pixel position first meets the mesh (what a z-buffer shows).

    Args:
        pixels: [N, 2] positions in pixels (x right, y down; pixel (i, j) covers [i, i+1) x [j, j+1)).
        vertices: [V, 3] world positions; faces: [F, 3] vertex indices.
        K: [3, 3] intrinsics; world_to_camera: [4, 4] rigid OpenCV transform.

    Returns:
        points: [N, 3] float64 world positions of the hits (NaN where the ray misses);
        hit: [N] bool.
    """
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    world = np.asarray(vertices, dtype=np.float64)
    rotation, translation = world_to_camera[:3, :3], world_to_camera[:3, 3]
    camera_points = world @ rotation.T + translation
    depth = camera_points[:, 2]
    safe = np.maximum(depth, _NEAR)
    screen = np.stack(
        [K[0, 0] * camera_points[:, 0] / safe + K[0, 2], K[1, 1] * camera_points[:, 1] / safe + K[1, 2]], axis=1
    )
    faces = np.asarray(faces, dtype=np.int64)
    faces = faces[(depth[faces] > _NEAR).all(axis=1)]
    corners = screen[faces]  # [F, 3, 2]
    low, high = corners.min(axis=1), corners.max(axis=1)
    points = np.full((len(pixels), 3), np.nan)
    hit = np.zeros(len(pixels), dtype=bool)
    for index, (x, y) in enumerate(pixels):
        candidates = np.nonzero((low[:, 0] <= x) & (x <= high[:, 0]) & (low[:, 1] <= y) & (y <= high[:, 1]))[0]
        if len(candidates) == 0:
            continue
        a, b, c = (corners[candidates, k] for k in range(3))
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
        w0 = ((b[:, 0] - x) * (c[:, 1] - y) - (c[:, 0] - x) * (b[:, 1] - y)) / np.where(area == 0, 1.0, area)
        w1 = ((c[:, 0] - x) * (a[:, 1] - y) - (a[:, 0] - x) * (c[:, 1] - y)) / np.where(area == 0, 1.0, area)
        w2 = 1.0 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (np.abs(area) > 1e-12)
        if not inside.any():
            continue
        chosen = candidates[inside]
        screen_weights = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
        # 1/z is linear in screen space: perspective-correct weights are the screen ones over depth.
        over_depth = screen_weights / depth[faces[chosen]]
        nearest = int(np.argmax(over_depth.sum(axis=1)))
        weights = over_depth[nearest] / over_depth[nearest].sum()
        points[index] = weights @ world[faces[chosen[nearest]]]
        hit[index] = True
    return points, hit


def named_points(landmark_points: np.ndarray, landmark_hit: np.ndarray) -> dict[str, np.ndarray]:
    """Named points (`MEDIAPIPE_IDS`) from the lifted face-mesh landmarks [478, 3] and their hits [478].

    Raises LandmarksUnavailable if a required point's rays all missed the mesh.
    """
    points = {}
    for name, ids in MEDIAPIPE_IDS.items():
        found = [i for i in ids if landmark_hit[i]]
        if not found:
            if name in REQUIRED_POINTS:
                raise LandmarksUnavailable(f"the face mesh put {name} off the head")
            continue
        points[name] = landmark_points[found].mean(axis=0)
    return points


def detect_landmarks(mesh: HeadMesh, size: int = DETECTION_SIZE) -> dict[str, np.ndarray]:
    """Named points (module docstring) of `mesh`'s face in its normalised frame, found by MediaPipe.

    Raises LandmarksUnavailable if mediapipe is missing or finds no face (an animal, a sphere).
    """
    points, _ = detect_face_mesh(mesh, size)
    return points


def detect_face_mesh(mesh: HeadMesh, size: int = DETECTION_SIZE) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """`detect_landmarks` with what it saw: {"image": [S, S, 3] uint8, "camera": Camera, "pixels":
    [478, 2], "points": [478, 3] lifted (NaN where missed), "hit": [478] bool} for checks and pictures."""
    camera = detection_camera(size)
    image = detection_image(mesh, camera)
    pixels = run_face_mesh(image)
    if pixels is None:
        raise LandmarksUnavailable("MediaPipe found no human face in a frontal render")
    lifted, hit = cast_rays(pixels, mesh.vertices, mesh.faces, camera.K, camera.world_to_camera)
    points = named_points(lifted, hit)
    problem = face_layout_problem(points)
    if problem is not None:
        raise LandmarksUnavailable(f"MediaPipe's landmarks make no upright face ({problem})")
    return points, {"image": image, "camera": camera, "pixels": pixels, "points": lifted, "hit": hit}


def face_landmarks(mesh: HeadMesh, landmarks_file: str | Path | None) -> tuple[dict[str, np.ndarray], str]:
    """Named points of `mesh`'s face (normalised frame) and where they came from ("file ..." or
    "mediapipe"): the landmarks file if given (InputError if it is bad), else MediaPipe.

    Raises LandmarksUnavailable when there is no file and MediaPipe cannot help.
    """
    if landmarks_file is not None:
        return landmarks_from_file(landmarks_file, mesh), f"file {Path(landmarks_file).expanduser()}"
    return detect_landmarks(mesh), "mediapipe"


def landmarks_document(points: dict[str, np.ndarray], mesh: HeadMesh) -> dict[str, Any]:
    """`points` (normalised frame) as a landmarks file (module docstring) in `mesh`'s file coordinates,
    so that a user can correct what MediaPipe found and give it back with --landmarks."""
    ordered = [name for name in POINT_NAMES if name in points]
    return {
        "version": LANDMARKS_FORMAT_VERSION,
        "points": {name: [round(float(v), 6) for v in mesh.to_source_points(points[name])] for name in ordered},
    }
