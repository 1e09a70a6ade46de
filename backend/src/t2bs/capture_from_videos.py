"""`t2bs capture-from-videos`: a capture directory from expression videos made with any other tool.

The recipe (docs/capture-from-videos.md), for videos from a model we do not ship (a commercial one):

1. `--start-frames` renders the static head from each named camera into `<out>/start/<camera>.png`.
2. The user makes one video per expression and camera with their tool, each started from that
   camera's start frame, with the head kept where the start frame shows it (no camera motion).
3. Given the videos, the same command writes `<out>/capture.json` with exactly those cameras and
   the videos' frames, centre-cropped to a square and resized to the capture size.

Cameras are given as azimuth and elevation around the head, the same orbit the built-in video
providers use, so the start frames and the capture agree by construction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .capture import Camera, Capture, CaptureWriter, is_safe_name, read_capture, read_media, resample_video
from .errors import InputError
from .fit.scaffold import mesh_colors
from .mesh_io import HeadMesh
from .meshrender import render_mesh, shade_lambert, vertex_normals
from .procedural.providers import FPS, LIGHT_DIRECTION, camera_at

log = logging.getLogger(__name__)

START_DIR = "start"
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
# What image-to-video models see most behind a single object; the built-in video providers use it too.
START_BACKGROUND = 1.0
# A start frame and a video's frame 0 differ by this much (mean over the head, 0..1) before we warn
# that the video may not have been started from the start frame.
FIRST_FRAME_TOLERANCE = 0.12
_CAMERA_SPEC = re.compile(r"^([A-Za-z0-9_-]+)=(-?[0-9.]+)(?:,(-?[0-9.]+))?$")
_VIDEO_SPEC = re.compile(r"^([^/=]+)/([A-Za-z0-9_-]+)=(.+)$")


@dataclass(frozen=True)
class CameraSpec:
    """A camera on the orbit around the head: degrees; azimuth 0 faces the face, + toward its left (+X)."""

    name: str
    azimuth: float
    elevation: float = 0.0


def parse_camera(text: str) -> CameraSpec:
    """`front=0,5` or `left=-35` (elevation 0) -> CameraSpec."""
    match = _CAMERA_SPEC.match(text.strip())
    if match is None:
        raise InputError(
            f"--camera {text!r} is not NAME=AZIMUTH[,ELEVATION] in degrees (for example front=0,5 or left=-35)."
        )
    name, azimuth, elevation = match.group(1), float(match.group(2)), float(match.group(3) or 0.0)
    if not -180.0 <= azimuth <= 180.0 or not -80.0 <= elevation <= 80.0:
        raise InputError(f"--camera {text!r}: azimuth must be within -180..180 and elevation within -80..80 degrees.")
    return CameraSpec(name, azimuth, elevation)


def parse_video(text: str) -> tuple[str, str, Path]:
    """`jawOpen/front=clips/jaw_front.mp4` -> (sequence, camera, path)."""
    match = _VIDEO_SPEC.match(text.strip())
    if match is None:
        raise InputError(f"--video {text!r} is not SEQUENCE/CAMERA=PATH (for example jawOpen/front=jaw_front.mp4).")
    return match.group(1), match.group(2), Path(match.group(3))


def find_videos(folder: Path, camera_names: Sequence[str]) -> dict[str, dict[str, Path]]:
    """Videos laid out as `folder/<sequence>/<camera>.mp4` (or another video suffix, or a PNG folder
    `<camera>/0000.png ...`) -> {sequence: {camera: path}}."""
    if not folder.is_dir():
        raise InputError(f"--videos {folder} is not a folder.")
    found: dict[str, dict[str, Path]] = {}
    for sequence in sorted(p for p in folder.iterdir() if p.is_dir()):
        views: dict[str, Path] = {}
        for camera in camera_names:
            candidates = [sequence / f"{camera}{suffix}" for suffix in VIDEO_SUFFIXES] + [sequence / camera]
            present = [c for c in candidates if c.exists()]
            if len(present) > 1:
                names = ", ".join(c.name for c in present)
                raise InputError(f"{sequence} holds more than one video for camera {camera!r} ({names}).")
            if present:
                views[camera] = present[0]
        if views:
            found[sequence.name] = views
    if not found:
        raise InputError(
            f"{folder} holds no videos named <sequence>/<camera>.mp4 for the cameras {', '.join(camera_names)}."
        )
    return found


def head_camera(mesh: HeadMesh, spec: CameraSpec, size: int) -> Camera:
    """The square capture camera for `spec`, on the orbit the built-in video providers use."""
    return camera_at(mesh, spec.name, spec.azimuth, spec.elevation, size)


def render_start_frame(mesh: HeadMesh, camera: Camera) -> np.ndarray:
    """The neutral head as `camera` sees it, on black, with its mask: [H, W, 4] uint8."""
    source = mesh.to_source_points(mesh.vertices)
    light = mesh.to_source[:3, :3] @ LIGHT_DIRECTION
    shaded = shade_lambert(mesh_colors(mesh), vertex_normals(source, mesh.faces), light)
    rgba = render_mesh(source, mesh.faces, shaded, camera.K, camera.world_to_camera, camera.width, camera.height)
    return (np.clip(rgba, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_start_frames(mesh: HeadMesh, cameras: Sequence[Camera], out: Path) -> list[Path]:
    """Render every camera's start frame to `out/start/<camera>.png`: the head on white, RGB."""
    folder = out / START_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for camera in cameras:
        rgba = render_start_frame(mesh, camera).astype(np.float32) / 255.0
        # render_mesh's colour is premultiplied by coverage: composite "over" the background.
        rgb = rgba[..., :3] + (1.0 - rgba[..., 3:]) * START_BACKGROUND
        path = folder / f"{camera.name}.png"
        Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB").save(path)
        paths.append(path)
    return paths


def square_frames(video: np.ndarray, size: int, frames: int | None) -> np.ndarray:
    """Centre-crop [T, H, W, C] uint8 to a square, resize to `size` and, with `frames`, resample time
    uniformly (first and last frames kept) -> [frames or T, size, size, 3] uint8."""
    count, height, width = video.shape[:3]
    side = min(height, width)
    crop = ((height - side) // 2, (width - side) // 2, side, side)
    return resample_video(video[..., :3], count if frames is None else frames, size, crop)


def first_frame_difference(start: np.ndarray, first: np.ndarray) -> float:
    """Mean absolute colour difference (0..1) over the head between a start frame [H, W, 4]
    (premultiplied, from `render_start_frame`) and a video's frame 0 [H, W, 3], both at the capture size."""
    mask = start[..., 3] > 250
    if not mask.any():
        return 0.0
    diff = np.abs(start[..., :3].astype(np.float32) - first.astype(np.float32)) / 255.0
    return float(diff[mask].mean())


def build_capture(
    mesh: HeadMesh,
    cameras: Sequence[Camera],
    videos: Mapping[str, Mapping[str, Path]],
    out: Path,
    *,
    frames: int | None = None,
    fps: float = FPS,
    prompts: Mapping[str, str] | None = None,
) -> Capture:
    """Write `out/capture.json` and the frames: one sequence per entry of `videos` ({sequence: {camera: path}}).

    Every view of a sequence is brought to the same frame count: `frames`, or else the shortest of its
    videos (the others are resampled uniformly in time, as each spans neutral to peak).
    """
    by_name = {camera.name: camera for camera in cameras}
    for sequence, views in videos.items():
        if not is_safe_name(sequence):
            raise InputError(f"Sequence name {sequence!r} is not a safe file name (letters, digits, _ and -).")
        unknown = sorted(set(views) - set(by_name))
        if unknown:
            raise InputError(
                f"Sequence {sequence!r} names camera {unknown[0]!r}, which no --camera defines "
                f"(defined: {', '.join(by_name)})."
            )
    if frames is not None and frames < 2:
        raise InputError("--frames must be at least 2: frame 0 (neutral) and at least one more.")
    starts = {camera.name: render_start_frame(mesh, camera) for camera in cameras}
    writer = CaptureWriter(out, overwrite=True)
    for camera in cameras:
        writer.add_camera(camera)
    for sequence, views in videos.items():
        decoded = {view: read_media(path) for view, path in views.items()}
        shortest = min(len(v) for v in decoded.values())
        count = frames if frames is not None else shortest
        if count < 2:
            raise InputError(f"Sequence {sequence!r} has a video with a single frame; it needs neutral and more.")
        per_view = {}
        for view, video in decoded.items():
            squared = square_frames(video, by_name[view].width, count)
            difference = first_frame_difference(starts[view], squared[0])
            if difference > FIRST_FRAME_TOLERANCE:
                log.warning(
                    "%s/%s: frame 0 differs from start/%s.png by %.0f%% over the head; was the video "
                    "started from that frame, with the head kept in place?",
                    sequence,
                    view,
                    view,
                    100 * difference,
                )
            per_view[view] = squared
        prompt = (prompts or {}).get(sequence, sequence)
        writer.write_sequence(sequence, prompt, fps, per_view, fmt="png")
    writer.close()
    return read_capture(out)
