"""The capture directory: expression videos and their cameras (DESIGN.md, "Capture directory").

Layout::

    capture.json
    <sequence>/<view>.mp4            a video (RGB; mp4 has no alpha channel)
    <sequence>/<view>/0000.png ...   or PNG frames, RGB or RGBA (alpha is the mask)

`capture.json`::

    {"version": 1,
     "cameras": {"front": {"width": 512, "height": 512,
                           "K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                           "world_to_camera": [[...4x4...]]}},
     "sequences": [{"name": "jawOpen", "prompt": "...", "fps": 24,
                    "views": {"front": "jawOpen/front.mp4"}}]}

Conventions used throughout this module:

- Cameras are OpenCV cameras: camera x right, y down, z forward; `world_to_camera` maps world
  points (the asset file's units) to camera coordinates; it must be rigid.
- Pixel coordinates have the image's top-left corner at (0, 0) and pixel centres at +0.5, so the
  image centre of a W x H image is (W/2, H/2) (the convention of gsplat, which the fit uses).
- Frames are uint8 arrays [T, H, W, C]; `read_frames` always returns C = 4, with alpha 255 where
  the source has no alpha.
- Every view of a sequence has the same frame count; frame 0 shows the neutral face.

`read_capture` validates everything a later stage relies on and reports the first problem as one
`InputError` sentence that names the file, camera or sequence. `CaptureWriter` writes a capture and
writes `capture.json` last, so a half-written capture never validates.

Videos go through the ffmpeg binary that `imageio-ffmpeg` bundles. Written videos are H.264
(libx264, yuv420p, CRF 12): chroma is subsampled 2x, so sizes must be even and colours round-trip
only approximately (about 1.5 grey levels on average at 32x32, less on larger frames); use PNG
frames where exact colours or a mask matter.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError
from .fileio import atomic_open

CAPTURE_JSON = "capture.json"
CAPTURE_VERSION = 1

# Suffixes read as video; everything else must be a folder of PNG frames. Only mp4 is written.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
FRAME_NAME = re.compile(r"^(\d{4,})\.png$")

# x264's quality scale: 0 is lossless (and unplayable in most players), ~18 is "visually lossless";
# 12 keeps fit targets close to the rendered frames at a modest size.
VIDEO_CRF = 12
# PNG level 1 is several times faster than the default 6 for ~20% larger files; capture frames are
# written once per run and read a few times, so speed wins.
PNG_COMPRESS_LEVEL = 1

# A world_to_camera whose rotation block is this far from orthonormal is refused as non-rigid.
RIGID_TOLERANCE = 1e-4
_FFMPEG_TIMEOUT_S = 600.0
# ffmpeg's default RGB <-> YUV conversion rounds carelessly: decoding a yuv420p video with it comes
# out ~1 grey level too dark on average, a bias the photometric loss would read as shading. Accurate
# rounding and full-resolution chroma interpolation halve the round-trip error and remove the bias.
_SWS_FLAGS = ["-sws_flags", "bicubic+accurate_rnd+full_chroma_int+full_chroma_inp"]

# A point or direction: a [3] array or any sequence of three numbers.
Vector3 = Sequence[float] | np.ndarray

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)}


def is_safe_name(name: str) -> bool:
    """Whether `name` can be a file or folder name on every platform (sequence and camera names)."""
    return (
        isinstance(name, str)
        and bool(_SAFE_NAME.match(name))
        and not name.endswith(".")
        and name.split(".")[0].lower() not in _WINDOWS_RESERVED
    )


# -- cameras -----------------------------------------------------------------------------------


@dataclass(eq=False)
class Camera:
    """A pinhole camera (OpenCV convention, no distortion, no skew).

    Attributes:
        name: the camera's name, a safe file name (views are stored as `<sequence>/<name>...`).
        width, height: image size in pixels.
        K: [3, 3] float64 intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], in pixels.
        world_to_camera: [4, 4] float64 rigid transform from world to camera coordinates.
    """

    name: str
    width: int
    height: int
    K: np.ndarray
    world_to_camera: np.ndarray

    def __post_init__(self) -> None:
        self.width = int(self.width)
        self.height = int(self.height)
        self.K = np.array(self.K, dtype=np.float64)
        self.world_to_camera = np.array(self.world_to_camera, dtype=np.float64)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def fov_y_deg(self) -> float:
        """Vertical field of view in degrees (for a centred principal point)."""
        return math.degrees(2.0 * math.atan(self.height / (2.0 * self.fy)))

    @property
    def rotation(self) -> np.ndarray:
        """[3, 3] world-to-camera rotation; its rows are the camera's x, y, z axes in world."""
        return self.world_to_camera[:3, :3].copy()

    @property
    def translation(self) -> np.ndarray:
        """[3] world-to-camera translation."""
        return self.world_to_camera[:3, 3].copy()

    @property
    def camera_to_world(self) -> np.ndarray:
        """[4, 4] inverse of `world_to_camera` (the camera's pose in the world)."""
        return np.linalg.inv(self.world_to_camera)

    @property
    def center(self) -> np.ndarray:
        """[3] the camera's position in world coordinates."""
        return self.camera_to_world[:3, 3].copy()

    @property
    def forward(self) -> np.ndarray:
        """[3] unit viewing direction (camera +z) in world coordinates."""
        axis = np.asarray(self.camera_to_world[:3, 2], dtype=np.float64)
        return np.asarray(axis / np.linalg.norm(axis), dtype=np.float64)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points into the image.

        Args:
            points: [N, 3] world coordinates.

        Returns:
            uv: [N, 2] float64 pixel coordinates (x right, y down; pixel centres at +0.5).
                Meaningless for points with depth <= 0 (behind the camera).
            depth: [N] float64 camera-space z, positive in front of the camera.
        """
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        cam = points @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        depth = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            pix = cam @ self.K.T
            uv = pix[:, :2] / pix[:, 2:3]
        return uv, depth

    def view_angles(self, target: Vector3 = (0.0, 0.0, 0.0)) -> tuple[float, float, float]:
        """(azimuth_deg, elevation_deg, distance) of the camera seen from `target`.

        Azimuth is 0 on +Z (in front of a head that faces +Z) and grows toward +X; elevation is
        positive above the XZ plane; distance is in world units.
        """
        offset = self.center - np.asarray(target, dtype=np.float64)
        distance = float(np.linalg.norm(offset))
        if distance == 0.0:
            return 0.0, 0.0, 0.0
        azimuth = math.degrees(math.atan2(offset[0], offset[2]))
        elevation = math.degrees(math.asin(max(-1.0, min(1.0, offset[1] / distance))))
        return azimuth, elevation, distance

    def to_dict(self) -> dict[str, Any]:
        """The camera's `capture.json` entry (without the name, which is its key)."""
        return {
            "width": self.width,
            "height": self.height,
            "K": self.K.tolist(),
            "world_to_camera": self.world_to_camera.tolist(),
        }


def camera_problem(camera: Camera) -> str | None:
    """What is wrong with `camera`, as the end of a sentence, or None if it is usable."""
    if not is_safe_name(camera.name):
        return "its name is not a safe file name (use letters, digits, '_', '-' and '.')"
    if camera.width <= 0 or camera.height <= 0:
        return f"its size {camera.width}x{camera.height} is not positive"
    K = camera.K
    if K.shape != (3, 3) or not np.isfinite(K).all():
        return "K is not a 3x3 matrix of finite numbers"
    if not np.allclose(K[2], (0.0, 0.0, 1.0), atol=1e-9):
        return f"K's bottom row is {_fmt_row(K[2])}, not [0, 0, 1]"
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        return f"K's focal lengths fx={K[0, 0]:g}, fy={K[1, 1]:g} must be positive"
    # Rasterizers downstream ignore skew, so a skewed camera would be fitted wrongly without a word.
    if abs(K[0, 1]) > 1e-9 or abs(K[1, 0]) > 1e-9:
        return "K has skew or a non-zero K[1][0]; only [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] is supported"
    if not (0.0 <= K[0, 2] <= camera.width and 0.0 <= K[1, 2] <= camera.height):
        return (
            f"K does not match the image size: its principal point ({K[0, 2]:g}, {K[1, 2]:g}) lies "
            f"outside the {camera.width}x{camera.height} image"
        )
    M = camera.world_to_camera
    if M.shape != (4, 4):
        return f"world_to_camera is {'x'.join(map(str, M.shape))}, not 4x4"
    if not np.isfinite(M).all():
        return "world_to_camera contains NaN or infinite numbers"
    if not np.allclose(M[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
        return f"world_to_camera's bottom row is {_fmt_row(M[3])}, not [0, 0, 0, 1]"
    R = M[:3, :3]
    det = float(np.linalg.det(R))
    if abs(det) < 1e-9:
        return "world_to_camera is singular"
    if np.abs(R.T @ R - np.eye(3)).max() > RIGID_TOLERANCE or abs(det - 1.0) > RIGID_TOLERANCE:
        if det < 0 and np.abs(R.T @ R - np.eye(3)).max() <= RIGID_TOLERANCE:
            return "world_to_camera is not rigid (it mirrors the scene)"
        return "world_to_camera is not rigid (it scales or shears)"
    return None


def _fmt_row(row: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in row) + "]"


def look_at_camera(
    name: str,
    eye: Vector3,
    target: Vector3,
    up: Vector3,
    width: int,
    height: int,
    fov_deg: float,
) -> Camera:
    """An OpenCV camera at `eye` looking at `target`, with `up` (world) pointing up in the image.

    Args:
        eye, target, up: [3] world coordinates / direction.
        width, height: image size in pixels.
        fov_deg: vertical field of view in degrees; pixels are square, the principal point is the
            image centre (width/2, height/2).
    """
    eye_v = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye_v
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError("look_at_camera: eye and target coincide")
    z = forward / np.linalg.norm(forward)
    # OpenCV's y points down, so x = y cross z = (-up) cross z = z cross up.
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at_camera: up is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"look_at_camera: fov_deg must lie in (0, 180), got {fov_deg}")
    focal = (height / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    R = np.stack([x, y, z])
    # Snap rounding noise (cos(pi) leaves 1e-16) and negative zeros, so capture.json stays readable.
    R[np.abs(R) < 1e-12] = 0.0
    M = np.eye(4)
    M[:3, :3] = R + 0.0
    M[:3, 3] = -R @ eye_v + 0.0
    return Camera(name, int(width), int(height), K, M)


def orbit_cameras(
    count: int,
    radius: float,
    elevation_deg: float,
    width: int,
    height: int,
    fov_deg: float,
    target: Vector3 = (0.0, 0.0, 0.0),
) -> list[Camera]:
    """`count` cameras evenly spaced in azimuth on a circle around `target`, all looking at it.

    Camera 0 is frontal: on the +Z side (heads face +Z, +Y up) looking toward -Z; the azimuth
    then grows toward +X (the head's left). Names are "view00", "view01", ...

    Args:
        radius: distance from `target`, world units.
        elevation_deg: height of the circle as an angle above the XZ plane through `target`.
        fov_deg: vertical field of view.
    """
    if count < 1:
        raise ValueError("orbit_cameras: count must be at least 1")
    centre = np.asarray(target, dtype=np.float64)
    elevation = math.radians(elevation_deg)
    cameras = []
    for index in range(count):
        azimuth = 2.0 * math.pi * index / count
        offset = radius * np.array(
            [
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
                math.cos(elevation) * math.cos(azimuth),
            ]
        )
        cameras.append(
            look_at_camera(f"view{index:02d}", centre + offset, centre, (0.0, 1.0, 0.0), width, height, fov_deg)
        )
    return cameras


# -- media: videos and PNG folders ---------------------------------------------------------------


class _MediaError(Exception):
    """A media file that cannot be used; the message is the end of a sentence about it."""


@dataclass(frozen=True)
class _MediaInfo:
    frames: int
    width: int
    height: int
    alpha: bool


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


_LOG_LEVEL = re.compile(r"\[(error|fatal|panic)\]\s*(.*)$")
_STREAM_SIZE = re.compile(r"Video:.*?, (\d+)x(\d+)\b")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")


def _probe_video(path: Path) -> _MediaInfo:
    """Frame count and displayed size of a video without decoding it.

    ffmpeg copies the packets of the first video stream to nowhere (`-c copy -f null`); any error it
    logs while doing so (no moov atom, partial file, corrupt packet) makes the file unusable.
    """
    command = [
        _ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "level+info",
        "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise _MediaError(f"could not be read within {_FFMPEG_TIMEOUT_S:.0f} s") from None
    log = result.stderr.decode("utf-8", errors="replace")
    errors = [m.group(2).strip() for m in map(_LOG_LEVEL.search, log.splitlines()) if m]
    if errors or result.returncode != 0:
        reason = errors[0] if errors else f"ffmpeg exited with code {result.returncode}"
        if "matches no streams" in reason:
            reason = "it has no video stream"
        raise _MediaError(f"is not a readable video ({reason.rstrip('.')})")
    input_part = log.split("Output #0", 1)[0]
    size = _STREAM_SIZE.search(input_part)
    counts = _FRAME_COUNT.findall(log)
    if size is None or not counts:
        raise _MediaError("is not a readable video (ffmpeg reports no video stream)")
    width, height = int(size.group(1)), int(size.group(2))
    rotation = _ROTATION.search(input_part)
    # ffmpeg turns frames upright while decoding (phone videos), so the displayed size is what counts.
    if rotation is not None and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    frames = int(counts[-1])
    if frames == 0:
        raise _MediaError("is not a readable video (it has no frames)")
    return _MediaInfo(frames=frames, width=width, height=height, alpha=False)


def _decode_video(path: Path, expected_frames: int | None = None) -> np.ndarray:
    """Decode all frames of a video as [T, H, W, 4] uint8 with alpha 255."""
    import imageio_ffmpeg

    frames: list[np.ndarray] = []
    try:
        reader = imageio_ffmpeg.read_frames(
            str(path),
            pix_fmt="rgb24",
            # Passthrough keeps one output image per coded frame: the default may duplicate or drop
            # frames of variable-rate videos to reach a constant rate.
            output_params=["-map", "0:v:0", "-fps_mode", "passthrough", *_SWS_FLAGS],
        )
        try:
            meta = next(reader)
            width, height = (int(v) for v in meta["size"])
            for chunk in reader:
                frames.append(np.frombuffer(chunk, dtype=np.uint8).reshape(height, width, 3))
        finally:
            reader.close()
    except (OSError, RuntimeError, ValueError, StopIteration) as exc:
        raise _MediaError(f"cannot be decoded ({_first_line(str(exc))})") from None
    if not frames:
        raise _MediaError("cannot be decoded (it yields no frames)")
    if expected_frames is not None and len(frames) != expected_frames:
        raise _MediaError(f"decodes to {len(frames)} frames although its container lists {expected_frames}")
    rgb = np.stack(frames)
    alpha = np.full((*rgb.shape[:3], 1), 255, dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=3)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line.rstrip(".:")
    return "no details"


def _list_png_frames(folder: Path) -> list[Path]:
    """The frames of a PNG folder in order: 0000.png, 0001.png, ... without gaps."""
    indexed: dict[int, Path] = {}
    for entry in sorted(os.listdir(folder)):
        match = FRAME_NAME.match(entry)
        if match is None:
            continue
        index = int(match.group(1))
        if index in indexed:
            raise _MediaError(f"holds two files for frame {index} ({indexed[index].name}, {entry})")
        indexed[index] = folder / entry
    if not indexed:
        raise _MediaError("holds no PNG frames (named 0000.png, 0001.png and so on)")
    for expected in range(len(indexed)):
        if expected not in indexed:
            raise _MediaError(f"lacks frame {expected:04d}.png (frames are numbered from 0000.png without gaps)")
    return [indexed[i] for i in range(len(indexed))]


def _png_has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _probe_png_folder(folder: Path) -> _MediaInfo:
    """Frame count, size and alpha of a PNG folder, reading only each file's header."""
    paths = _list_png_frames(folder)
    size: tuple[int, int] | None = None
    alpha = False
    for path in paths:
        try:
            with Image.open(path) as image:
                if image.format != "PNG":
                    raise _MediaError(f"holds {path.name}, which is a {image.format} file, not a PNG")
                frame_size = image.size
                alpha = alpha or _png_has_alpha(image)
        except UnidentifiedImageError:
            raise _MediaError(f"holds {path.name}, which is not a readable PNG") from None
        except OSError as exc:
            raise _MediaError(f"holds {path.name}, which is not a readable PNG ({_first_line(str(exc))})") from None
        if size is None:
            size = frame_size
        elif frame_size != size:
            raise _MediaError(
                f"holds frames of different sizes ({size[0]}x{size[1]} in {paths[0].name}, "
                f"{frame_size[0]}x{frame_size[1]} in {path.name})"
            )
    assert size is not None
    return _MediaInfo(frames=len(paths), width=size[0], height=size[1], alpha=alpha)


def _png_to_rgba(image: Image.Image) -> np.ndarray:
    """[H, W, 4] uint8 from any PNG mode (16-bit greyscale is scaled down to 8 bits)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    return np.asarray(image.convert("RGBA"), dtype=np.uint8)


def _decode_png_folder(folder: Path) -> np.ndarray:
    """All frames of a PNG folder as [T, H, W, 4] uint8 (alpha 255 for RGB frames)."""
    paths = _list_png_frames(folder)
    frames: list[np.ndarray] = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
                frame = _png_to_rgba(image)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise _MediaError(f"holds {path.name}, which cannot be decoded ({_first_line(str(exc))})") from None
        if frames and frame.shape != frames[0].shape:
            raise _MediaError(f"holds frames of different sizes ({paths[0].name}, {path.name})")
        frames.append(frame)
    return np.stack(frames)


def read_media(path: str | Path) -> np.ndarray:
    """All frames of a video file or a PNG folder (0000.png, ...) as [T, H, W, 4] uint8.

    Raises InputError with one sentence when the media cannot be read.
    """
    media = Path(path)
    try:
        if media.is_dir():
            return _decode_png_folder(media)
        if not media.is_file():
            raise _MediaError("does not exist")
        return _decode_video(media)
    except _MediaError as exc:
        raise InputError(f"{media} {exc}.") from None


def resample_video(
    video: np.ndarray, frames: int, size: int, crop: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Resample a generated video to the capture's frame count and square size.

    Args:
        video: [T, H, W, 3] float in 0..1 or uint8.
        frames: output frame count (>= 2); time is stretched uniformly, first and last frames kept.
        size: output side in pixels.
        crop: (top, left, height, width) region of each frame to keep before resizing, or None.
    Returns:
        [frames, size, size, 3] uint8.
    """
    array = np.asarray(video)
    if array.dtype != np.uint8:
        array = np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0
    array = array.astype(np.float32)
    if crop is not None:
        top, left, height, width = crop
        array = array[:, top : top + height, left : left + width]
    count = array.shape[0]
    positions = np.linspace(0.0, count - 1, frames)
    out = np.empty((frames, size, size, 3), np.uint8)
    for index, position in enumerate(positions):
        low = math.floor(position)
        high = min(low + 1, count - 1)
        weight = position - low
        frame = array[low] * (1.0 - weight) + array[high] * weight
        image = Image.fromarray(np.clip(frame + 0.5, 0, 255).astype(np.uint8), "RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        out[index] = np.asarray(image)
    return out


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, crf: int = VIDEO_CRF) -> None:
    """Write an H.264 mp4 (libx264, yuv420p) atomically.

    Args:
        path: destination, ending in .mp4.
        frames: [T, H, W, 3] uint8 RGB, or [T, H, W, 4] whose alpha is all 255 (mp4 has no alpha;
            a real mask would be lost, so that is refused).
        fps: frames per second, > 0.
        crf: x264 constant rate factor; lower is better (0 is lossless), 12 is near-transparent.

    Raises:
        ValueError: for odd sizes (yuv420p halves the chroma resolution), a mask, or a bad shape.
    """
    import imageio_ffmpeg

    frames = _check_frames(frames, "write_video")
    if frames.shape[3] == 4:
        if not (frames[..., 3] == 255).all():
            raise ValueError("write_video: mp4 has no alpha channel; write frames with a mask as PNG")
        frames = frames[..., :3]
    height, width = frames.shape[1:3]
    if width % 2 or height % 2:
        raise ValueError(f"write_video: mp4 (yuv420p) needs an even width and height, got {width}x{height}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"write_video: fps must be positive, got {fps}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # ffmpeg picks the container from the suffix, so the temporary file keeps it.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix or ".mp4", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (int(width), int(height)),  # imageio-ffmpeg asserts plain ints, numpy ints fail
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            fps=Fraction(fps).limit_denominator(1001),
            codec="libx264",
            quality=None,
            # The default block size of 16 would silently rescale frames to a multiple of 16.
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf)), "-preset", "medium", "-movflags", "+faststart", *_SWS_FLAGS],
        )
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_png_frames(folder: str | Path, frames: np.ndarray) -> list[Path]:
    """Write [T, H, W, 3 or 4] uint8 frames as `folder/0000.png`, ... (RGB or RGBA PNGs)."""
    frames = _check_frames(frames, "write_png_frames")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(frames) - 1)))
    paths = []
    for index, frame in enumerate(frames):
        path = target / f"{index:0{digits}d}.png"
        Image.fromarray(np.ascontiguousarray(frame)).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        paths.append(path)
    return paths


def _check_frames(frames: np.ndarray, who: str) -> np.ndarray:
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise ValueError(f"{who}: frames must be uint8, got {array.dtype}")
    if array.ndim != 4 or array.shape[3] not in (3, 4) or array.shape[0] < 1:
        raise ValueError(f"{who}: frames must be [T, H, W, 3 or 4] with T >= 1, got {list(array.shape)}")
    return array


# -- the capture -------------------------------------------------------------------------------


@dataclass
class CaptureSequence:
    """One expression: its prompt, frame rate and one media path per camera.

    Attributes:
        name: safe file name, unique within the capture (e.g. an ARKit name, "jawOpen").
        prompt: the text the video was generated from ("" if unknown).
        fps: frames per second, > 0.
        views: camera name -> media path relative to the capture root, POSIX separators.
    """

    name: str
    prompt: str
    fps: float
    views: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        fps: float | int = int(self.fps) if float(self.fps).is_integer() else float(self.fps)
        return {"name": self.name, "prompt": self.prompt, "fps": fps, "views": dict(self.views)}


@dataclass(eq=False)
class Capture:
    """A capture directory read by `read_capture`.

    Media facts (frame counts, sizes, alpha) are probed once and cached; `check_media` probes and
    validates them, which `read_capture(check_media=True)` has already done.
    """

    root: Path
    cameras: dict[str, Camera]
    sequences: list[CaptureSequence]
    _media: dict[tuple[str, str], _MediaInfo] = field(default_factory=dict, repr=False)

    @property
    def json_path(self) -> Path:
        return self.root / CAPTURE_JSON

    @property
    def sequence_names(self) -> list[str]:
        return [sequence.name for sequence in self.sequences]

    def sequence(self, name: str) -> CaptureSequence:
        for sequence in self.sequences:
            if sequence.name == name:
                return sequence
        known = ", ".join(self.sequence_names)
        raise InputError(f"Capture {self.root} has no sequence {name!r}; it has: {known}.")

    def _view(self, sequence: str, view: str) -> tuple[CaptureSequence, str]:
        seq = self.sequence(sequence)
        if view not in seq.views:
            raise InputError(
                f"Sequence {sequence!r} of capture {self.root} has no view {view!r}; it has: {', '.join(seq.views)}."
            )
        return seq, seq.views[view]

    def media_path(self, sequence: str, view: str) -> Path:
        """Absolute path of a view's video file or PNG folder."""
        return self.root / self._view(sequence, view)[1]

    def is_video(self, sequence: str, view: str) -> bool:
        return _is_video_path(self._view(sequence, view)[1])

    def _where(self, sequence: str, view: str) -> str:
        return f"{self.media_path(sequence, view)} (sequence {sequence!r}, view {view!r})"

    def _info(self, sequence: str, view: str) -> _MediaInfo:
        key = (sequence, view)
        if key not in self._media:
            path = self.media_path(sequence, view)
            where = self._where(sequence, view)
            if not path.exists():
                raise InputError(f"{where} does not exist.")
            try:
                if path.is_dir():
                    info = _probe_png_folder(path)
                elif _is_video_path(path.name):
                    info = _probe_video(path)
                else:
                    raise _MediaError(f"is neither a folder of PNG frames nor a video ({', '.join(VIDEO_SUFFIXES)})")
            except _MediaError as exc:
                raise InputError(f"{where} {exc}.") from None
            camera = self.cameras[view]
            if (info.width, info.height) != (camera.width, camera.height):
                raise InputError(
                    f"{where} has {info.width}x{info.height} frames but camera {view!r} is "
                    f"{camera.width}x{camera.height}."
                )
            self._media[key] = info
        return self._media[key]

    def view_frame_count(self, sequence: str, view: str) -> int:
        return self._info(sequence, view).frames

    def frame_count(self, sequence: str) -> int:
        """Frames in `sequence` (the same in all its views once `check_media` has passed)."""
        seq = self.sequence(sequence)
        return self._info(sequence, next(iter(seq.views))).frames

    def has_alpha(self, sequence: str, view: str) -> bool:
        """Whether the view's frames carry a mask (RGBA PNGs); videos never do."""
        return self._info(sequence, view).alpha

    def check_media(self, sequences: Iterable[str] | None = None) -> None:
        """Probe every view of `sequences` (default all): it exists, is readable, has the camera's
        size and as many frames as the sequence's other views. Raises InputError."""
        names = self.sequence_names if sequences is None else list(sequences)
        for name in names:
            seq = self.sequence(name)
            counts = {view: self._info(name, view).frames for view in seq.views}
            if len(set(counts.values())) > 1:
                (view_a, count_a), *rest = counts.items()
                view_b, count_b = next((v, c) for v, c in rest if c != count_a)
                raise InputError(
                    f"Sequence {name!r} in {self.json_path} has {count_a} frames in view {view_a!r} "
                    f"but {count_b} in view {view_b!r}; all views of a sequence need the same count."
                )

    def read_frames(self, sequence: str, view: str) -> np.ndarray:
        """All frames of one view as [T, H, W, 4] uint8 RGBA; alpha is 255 where the source has none."""
        info = self._info(sequence, view)
        path = self.media_path(sequence, view)
        try:
            if path.is_dir():
                frames = _decode_png_folder(path)
                if len(frames) != info.frames:
                    raise _MediaError(f"now holds {len(frames)} frames instead of {info.frames}")
            else:
                frames = _decode_video(path, expected_frames=info.frames)
        except _MediaError as exc:
            raise InputError(f"{self._where(sequence, view)} {exc}.") from None
        camera = self.cameras[view]
        if frames.shape[1:3] != (camera.height, camera.width):
            raise InputError(
                f"{self._where(sequence, view)} decodes to {frames.shape[2]}x{frames.shape[1]} frames "
                f"but camera {view!r} is {camera.width}x{camera.height}."
            )
        return frames

    def to_dict(self) -> dict[str, Any]:
        """The `capture.json` content."""
        return {
            "version": CAPTURE_VERSION,
            "cameras": {name: camera.to_dict() for name, camera in self.cameras.items()},
            "sequences": [sequence.to_dict() for sequence in self.sequences],
        }


def _is_video_path(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in VIDEO_SUFFIXES


# -- reading and validating capture.json ---------------------------------------------------------


def read_capture(root: str | Path, *, check_media: bool = True) -> Capture:
    """Read and validate the capture directory at `root`.

    Args:
        check_media: also probe every view's media (existence, readability, sizes against the
            cameras, equal frame counts per sequence; videos are demuxed, not decoded). Without it
            only `capture.json` is read, and media problems surface when frames are read.

    Raises:
        InputError: one sentence naming the folder, file, camera or sequence at fault.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(f"Capture folder {root} does not exist.")
    if not root.is_dir():
        raise InputError(f"Capture folder {root} is a file, not a folder.")
    json_path = root / CAPTURE_JSON
    if not json_path.is_file():
        raise InputError(f"Capture folder {root} has no {CAPTURE_JSON}.")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{json_path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{json_path} cannot be read ({_first_line(str(exc))}).") from None
    capture = _parse_capture(root, json_path, data)
    if check_media:
        capture.check_media()
    return capture


def _parse_capture(root: Path, json_path: Path, data: Any) -> Capture:
    def fail(message: str) -> InputError:
        return InputError(f"{json_path}: {message}.")

    if not isinstance(data, dict):
        raise fail("the file must hold a JSON object")
    if "version" not in data:
        raise fail(f'"version" is missing; add "version": {CAPTURE_VERSION}')
    if data["version"] != CAPTURE_VERSION or isinstance(data["version"], bool):
        raise fail(f"version {data['version']!r} is not supported; this t2bs reads version {CAPTURE_VERSION}")

    raw_cameras = data.get("cameras")
    if not isinstance(raw_cameras, dict) or not raw_cameras:
        raise fail('"cameras" must be an object with at least one camera')
    cameras = {name: _parse_camera(name, entry, fail) for name, entry in raw_cameras.items()}

    raw_sequences = data.get("sequences")
    if not isinstance(raw_sequences, list) or not raw_sequences:
        raise fail('"sequences" must be a list with at least one sequence')
    sequences: list[CaptureSequence] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw_sequences):
        sequence = _parse_sequence(index, entry, cameras, fail)
        # Case-insensitive file systems (macOS, Windows) would merge "jawOpen" and "JawOpen".
        folded = sequence.name.casefold()
        if folded in seen:
            if seen[folded] == sequence.name:
                raise fail(f"sequence name {sequence.name!r} appears twice")
            raise fail(f"sequence names {seen[folded]!r} and {sequence.name!r} differ only in case")
        seen[folded] = sequence.name
        sequences.append(sequence)
    return Capture(root=root, cameras=cameras, sequences=sequences)


def _matrix(value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """`value` as a float64 array of `shape` if it is a nested list of real numbers, else None."""
    if not isinstance(value, list) or len(value) != shape[0]:
        return None
    for row in value:
        if not isinstance(row, list) or len(row) != shape[1]:
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
            return None
    return np.array(value, dtype=np.float64)


def _parse_camera(name: Any, entry: Any, fail: Callable[[str], InputError]) -> Camera:
    label = f"camera {name!r}"
    if not is_safe_name(name):
        raise fail(f"{label}: the name is not a safe file name (use letters, digits, '_', '-' and '.')")
    if not isinstance(entry, dict):
        raise fail(f"{label} must be an object with width, height, K and world_to_camera")
    for key in ("width", "height"):
        value = entry.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise fail(f"{label}: {key} must be a positive whole number of pixels, not {value!r}")
    K = _matrix(entry.get("K"), (3, 3))
    if K is None:
        raise fail(f"{label}: K must be a 3x3 list of numbers [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
    M = _matrix(entry.get("world_to_camera"), (4, 4))
    if M is None:
        raise fail(f"{label}: world_to_camera must be a 4x4 list of numbers")
    camera = Camera(name, entry["width"], entry["height"], K, M)
    problem = camera_problem(camera)
    if problem is not None:
        raise fail(f"{label}: {problem}")
    return camera


def _parse_sequence(
    index: int, entry: Any, cameras: Mapping[str, Camera], fail: Callable[[str], InputError]
) -> CaptureSequence:
    if not isinstance(entry, dict):
        raise fail(f"sequence #{index} must be an object with name, prompt, fps and views")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"sequence #{index} has no name")
    label = f"sequence {name!r}"
    if not is_safe_name(name):
        raise fail(f"{label}: the name is not a safe file name (use letters, digits, '_', '-' and '.')")
    prompt = entry.get("prompt", "")
    if not isinstance(prompt, str):
        raise fail(f"{label}: prompt must be text")
    if "fps" not in entry:
        raise fail(f"{label}: fps is missing (frames per second, e.g. 24)")
    fps = entry["fps"]
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps) or fps <= 0:
        raise fail(f"{label}: fps must be a positive number, not {fps!r}")
    views = entry.get("views")
    if not isinstance(views, dict) or not views:
        raise fail(f"{label}: views must map at least one camera name to a video or PNG folder")
    for camera_name, media in views.items():
        if camera_name not in cameras:
            raise fail(
                f"{label} has a view of camera {camera_name!r}, which is not among the cameras ({', '.join(cameras)})"
            )
        if not isinstance(media, str) or not media:
            raise fail(f"{label}, view {camera_name!r}: the media path must be text")
        parts = PurePosixPath(media).parts
        if "\\" in media or media.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
            raise fail(
                f"{label}, view {camera_name!r}: {media!r} must be a relative path inside the capture "
                "folder, with '/' separators"
            )
    return CaptureSequence(name=name, prompt=prompt, fps=float(fps), views=dict(views))


# -- writing and copying -------------------------------------------------------------------------


def capture_json_text(capture: Capture) -> str:
    """`capture.json` text for `capture`: indented, with each matrix row on one line so that people
    can read and edit the cameras."""
    data = capture.to_dict()
    matrices: dict[str, list[list[float]]] = {}
    for camera in data["cameras"].values():
        for key in ("K", "world_to_camera"):
            token = f"@@t2bs-matrix-{len(matrices)}@@"
            matrices[token] = camera[key]
            camera[key] = token
    text = json.dumps(data, indent=2, ensure_ascii=False)
    for token, rows in matrices.items():
        # The quoted token cannot occur inside another string: json.dumps escapes quotes there.
        block = ",\n".join(f"        {json.dumps(row)}" for row in rows)
        text = text.replace(json.dumps(token), "[\n" + block + "\n      ]")
    return text + "\n"


def write_capture_json(root: str | Path, capture: Capture) -> None:
    """Write `root/capture.json` for `capture` atomically."""
    with atomic_open(Path(root) / CAPTURE_JSON, "w") as handle:
        handle.write(capture_json_text(capture))


class CaptureWriter:
    """Writes a capture directory; `close` writes `capture.json` last and returns the result.

    Usage::

        writer = CaptureWriter(out)
        for camera in orbit_cameras(4, 2.5, 10.0, 512, 512, 30.0):
            writer.add_camera(camera)
        writer.write_sequence("jawOpen", prompt, 24, {"view00": frames_0, ...}, fmt="png")
        capture = writer.close()

    As a context manager it closes on a clean exit and leaves no `capture.json` after an error.
    Programming errors (unknown camera, wrong shapes, odd sizes for mp4) raise ValueError.
    """

    def __init__(self, root: str | Path, *, overwrite: bool = False) -> None:
        self.root = Path(root)
        if self.root.exists():
            if not self.root.is_dir():
                raise ValueError(f"CaptureWriter: {self.root} is a file")
            if any(self.root.iterdir()):
                if not overwrite:
                    raise ValueError(f"CaptureWriter: {self.root} is not empty")
                shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cameras: dict[str, Camera] = {}
        self.sequences: list[CaptureSequence] = []
        self.capture: Capture | None = None

    def add_camera(self, camera: Camera) -> None:
        if camera.name in self.cameras:
            raise ValueError(f"CaptureWriter: camera {camera.name!r} added twice")
        problem = camera_problem(camera)
        if problem is not None:
            raise ValueError(f"CaptureWriter: camera {camera.name!r}: {problem}")
        self.cameras[camera.name] = camera

    def write_sequence(
        self,
        name: str,
        prompt: str,
        fps: float,
        frames: Mapping[str, np.ndarray],
        fmt: str = "png",
    ) -> CaptureSequence:
        """Write one sequence's views.

        Args:
            name: safe file name, unique in the capture.
            prompt: the text the frames show.
            fps: frames per second, > 0.
            frames: camera name -> [T, H, W, 3 or 4] uint8 (RGB or RGBA), the camera's size, the same T
                for every view.
            fmt: "png" (`<name>/<camera>/0000.png`, keeps alpha) or "mp4" (`<name>/<camera>.mp4`; even
                sizes, no mask).
        """
        if self.capture is not None:
            raise ValueError("CaptureWriter: already closed")
        if not is_safe_name(name):
            raise ValueError(f"CaptureWriter: sequence name {name!r} is not a safe file name")
        if any(s.name.casefold() == name.casefold() for s in self.sequences):
            raise ValueError(f"CaptureWriter: sequence {name!r} written twice")
        if fmt not in ("png", "mp4"):
            raise ValueError(f"CaptureWriter: fmt must be 'png' or 'mp4', not {fmt!r}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"CaptureWriter: fps must be positive, got {fps}")
        if not frames:
            raise ValueError(f"CaptureWriter: sequence {name!r} has no views")
        counts = set()
        for view, array in frames.items():
            if view not in self.cameras:
                raise ValueError(f"CaptureWriter: sequence {name!r} names unknown camera {view!r}")
            array = _check_frames(array, f"CaptureWriter: sequence {name!r}, view {view!r}")
            camera = self.cameras[view]
            if array.shape[1:3] != (camera.height, camera.width):
                raise ValueError(
                    f"CaptureWriter: sequence {name!r}, view {view!r}: frames are "
                    f"{array.shape[2]}x{array.shape[1]}, camera is {camera.width}x{camera.height}"
                )
            counts.add(array.shape[0])
        if len(counts) != 1:
            raise ValueError(f"CaptureWriter: sequence {name!r} has views with different frame counts {sorted(counts)}")
        views: dict[str, str] = {}
        for view, array in frames.items():
            if fmt == "mp4":
                relative = f"{name}/{view}.mp4"
                write_video(self.root / relative, np.asarray(array), fps)
            else:
                relative = f"{name}/{view}"
                write_png_frames(self.root / relative, np.asarray(array))
            views[view] = relative
        sequence = CaptureSequence(name=name, prompt=prompt, fps=float(fps), views=views)
        self.sequences.append(sequence)
        return sequence

    def close(self) -> Capture:
        """Write `capture.json` and return the capture as `read_capture` validates it."""
        if self.capture is None:
            if not self.sequences:
                raise ValueError("CaptureWriter: no sequence was written")
            draft = Capture(root=self.root, cameras=dict(self.cameras), sequences=list(self.sequences))
            write_capture_json(self.root, draft)
            self.capture = read_capture(self.root, check_media=True)
        return self.capture

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()


def copy_capture(
    capture: Capture,
    dest: str | Path,
    *,
    on_sequence: Callable[[int, int, str], None] | None = None,
) -> Capture:
    """Copy a capture's referenced media and its `capture.json` (written last) into `dest`.

    Files in the source folder that no view references are left behind; media paths keep their
    relative layout. `dest` must not exist or be empty.

    Args:
        on_sequence: called as (index, count, name) before each sequence is copied (progress,
            cancellation).
    """
    target = Path(dest)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"copy_capture: {target} exists and is not an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    for index, sequence in enumerate(capture.sequences):
        if on_sequence is not None:
            on_sequence(index, len(capture.sequences), sequence.name)
        for view, relative in sequence.views.items():
            source = capture.root / relative
            destination = target / relative
            if source.is_dir():
                try:
                    frames = _list_png_frames(source)
                except _MediaError as exc:
                    raise InputError(f"{capture._where(sequence.name, view)} {exc}.") from None
                destination.mkdir(parents=True, exist_ok=True)
                for frame in frames:
                    shutil.copy2(frame, destination / frame.name)
            elif source.is_file():
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination)
            else:
                raise InputError(f"{capture._where(sequence.name, view)} does not exist.")
    write_capture_json(target, capture)
    return Capture(
        root=target,
        cameras=dict(capture.cameras),
        sequences=list(capture.sequences),
        _media=dict(capture._media),
    )
