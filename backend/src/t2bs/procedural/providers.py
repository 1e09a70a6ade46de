"""The offline `procedural` asset and video providers (DESIGN.md, stages 2 and 3).

Settings read here (all optional):

* asset: `prompt` (else the run's prompt), `seed` (default 0), `embedding` (true/false: require or
  forbid the sentence-embedding model; default: use it when installed).
* capture: `preset` (preview | standard | high, picks `PRESETS`), `capture_views`, `capture_frames`,
  `capture_size` (override the preset), `expressions` (library names and `name=action` items, default the preset's list:
  `stages.prompt.chosen_expressions`),
  `color_drift` (per-view colour gain spread, default 0.03), `geometry_jitter` (per-view shape
  wobble as a fraction of each vertex's motion, default 0.03; 0 turns it off), `seed`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..capture import Camera, Capture, CaptureWriter, look_at_camera, read_capture
from ..errors import InputError
from ..expressions import Expression
from ..mesh_io import HeadMesh
from ..meshrender import render_mesh, shade_lambert, vertex_normals
from ..stage import StageContext
from ..stages.asset import ASSET_PROVIDERS, AssetProvider, load_asset
from ..stages.capture import VIDEO_PROVIDERS, VideoProvider
from ..stages.prompt import chosen_expressions
from .face_landmarks import INSTALL_HINT, mediapipe_installed
from .head import build_head
from .performance import deform, ease
from .regions import REGIONS_FILE, FaceRegions, load_regions, save_regions
from .text import params_from_prompt

PRESETS: dict[str, dict[str, int]] = {
    "preview": {"views": 4, "frames": 9, "size": 128},
    "standard": {"views": 6, "frames": 17, "size": 256},
    "high": {"views": 8, "frames": 25, "size": 512},
}
# (azimuth, elevation) in degrees; the first is frontal (view 0 is the canonical view of the fit).
VIEW_ANGLES = (
    (0.0, 5.0),
    (-35.0, 8.0),
    (35.0, 8.0),
    (0.0, 28.0),
    (-70.0, 2.0),
    (70.0, 2.0),
    (0.0, -15.0),
    (-20.0, 35.0),
)
CAMERA_DISTANCE = 2.6  # normalised units: the whole head fits a 28 degree view with a margin
CAMERA_FOV_DEG = 28.0
LIGHT_DIRECTION = np.array([0.35, 0.55, 1.0])
FPS = 24


def run_prompt(ctx: StageContext) -> str:
    """The identity prompt of the run: `settings["prompt"]`, else the prompt the runner was given."""
    prompt = ctx.settings.get("prompt") or ctx.manifest.prompt
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError('The procedural head needs a prompt, e.g. t2bs generate "a cute orange fox".')
    return prompt.strip()


def _seed(ctx: StageContext) -> int:
    seed = ctx.settings.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"The seed must be a whole number, not {seed!r}.")
    return seed


@ASSET_PROVIDERS.register("procedural")
class ProceduralHeadProvider(AssetProvider):
    """`procedural`: a stylised character head built from the prompt on the CPU in seconds."""

    name = "procedural"

    def make(self, ctx: StageContext) -> HeadMesh:
        prompt = run_prompt(ctx)
        seed = _seed(ctx)
        embedding = ctx.settings.get("embedding")
        ctx.step(0.05, "reading the prompt")
        params, reading = params_from_prompt(prompt, use_embedding=None if embedding is None else bool(embedding))
        ctx.step(0.15, f"building a {reading.archetype} head")
        head = build_head(params, seed)
        ctx.step(0.75, "writing the facial regions")
        save_regions(head.regions, ctx.output(REGIONS_FILE))
        ctx.record_seed(seed)
        ctx.record_provider(
            name=self.name,
            prompt=prompt,
            archetype=reading.archetype,
            matched_by=reading.method,
            features=reading.features,
            colours=reading.colours,
        )
        ctx.record_metrics(build_seconds=round(head.seconds, 3))
        return head.mesh


@VIDEO_PROVIDERS.register("procedural")
class ProceduralPerformanceProvider(VideoProvider):
    """`procedural`: the static head acts each expression by region-aware deformation, rendered
    from several views with optional video-model artifacts."""

    name = "procedural"

    def make(self, ctx: StageContext, dest: Path) -> Capture:
        mesh = load_asset(ctx.bundle.root)
        regions_path = ctx.bundle.path(REGIONS_FILE)
        if not regions_path.is_file():
            raise InputError(missing_regions_message(ctx.manifest.providers.get("asset", {})))
        regions = load_regions(regions_path, mesh.vertex_count)
        options = capture_options(ctx.settings)
        expressions = chosen_expressions(ctx.settings)
        identity = run_prompt(ctx) if (ctx.settings.get("prompt") or ctx.manifest.prompt) else "A character head"
        self.details = {**options, "expressions": [e.name for e in expressions]}
        started = time.perf_counter()
        write_performance(
            mesh,
            regions,
            expressions,
            dest,
            identity=identity,
            on_sequence=lambda i, n, name: ctx.step(i / n, f"acting {name}"),
            **options,
        )
        ctx.record_metrics(render_seconds=round(time.perf_counter() - started, 3))
        return read_capture(dest)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "argument": self.argument, **getattr(self, "details", {})}


def missing_regions_message(asset_record: dict[str, Any]) -> str:
    """One sentence for a head without facial regions: why (the asset stage's record) and the ways on."""
    reason = asset_record.get("regions_missing") or "its asset stage made none"
    ways = ["give the face's landmarks with --asset mesh:PATH --landmarks FILE.json (docs/procedural.md)"]
    if not mediapipe_installed():
        ways.append(f"install MediaPipe to find a human face ({INSTALL_HINT})")
    ways.append("use a video model or your own videos (--video wan, --video capture:DIR)")
    return (
        f"The procedural video provider needs facial regions and this head has none ({reason}); "
        f"{', '.join(ways[:-1])} or {ways[-1]}."
    )


def capture_options(settings: dict[str, Any]) -> dict[str, Any]:
    """Views, frames, size and artifact strengths from the settings (module docstring)."""
    preset_name = settings.get("preset") or "preview"
    if preset_name not in PRESETS:
        raise InputError(f"Unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}.")
    preset = PRESETS[preset_name]

    def number(key: str, default: float, low: float, high: float, whole: bool) -> Any:
        value = settings.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and int(value) != value):
            raise InputError(f"The setting {key} must be a {'whole ' if whole else ''}number, not {value!r}.")
        if not low <= value <= high:
            raise InputError(f"The setting {key} must lie between {low:g} and {high:g}, not {value!r}.")
        return int(value) if whole else float(value)

    return {
        "views": number("capture_views", preset["views"], 1, len(VIEW_ANGLES), True),
        "frames": number("capture_frames", preset["frames"], 2, 240, True),
        "size": number("capture_size", preset["size"], 16, 2048, True),
        "color_drift": number("color_drift", 0.03, 0.0, 0.3, False),
        "geometry_jitter": number("geometry_jitter", 0.03, 0.0, 0.5, False),
        "seed": number("seed", 0, -(2**63), 2**63 - 1, True),
    }


def camera_at(
    mesh: HeadMesh, name: str, azimuth: float, elevation: float, size: int, distance: float = CAMERA_DISTANCE
) -> Camera:
    """A square camera on the orbit around the head, in the asset file's coordinates (OpenCV axes).

    Angles in degrees: azimuth 0 faces the face (+Z in the normalised frame) and grows toward the
    head's left (+X); elevation is above the horizontal. `distance` is in normalised units.
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    eye = distance * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    up = mesh.to_source[:3, :3] @ np.array([0.0, 1.0, 0.0]) / mesh.source_scale
    return look_at_camera(
        name, mesh.to_source_points(eye), mesh.to_source_points(np.zeros(3)), up, size, size, CAMERA_FOV_DEG
    )


def cameras_for(mesh: HeadMesh, views: int, size: int) -> list[Camera]:
    """`views` cameras around the head in the asset file's coordinates; the first is frontal."""
    return [
        camera_at(mesh, "front" if index == 0 else f"view{index:02d}", azimuth, elevation, size)
        for index, (azimuth, elevation) in enumerate(VIEW_ANGLES[:views])
    ]


def write_performance(
    mesh: HeadMesh,
    regions: FaceRegions,
    expressions: list[Expression],
    dest: Path,
    *,
    views: int,
    frames: int,
    size: int,
    color_drift: float = 0.03,
    geometry_jitter: float = 0.03,
    seed: int = 0,
    identity: str = "A character head",
    on_sequence: Any = None,
) -> Capture:
    """Render every expression rising from neutral into a capture directory at `dest` (PNG + alpha).

    Artifacts like generated videos have: each view but the frontal one gets a fixed colour gain and
    bias (`color_drift`) and a smooth shape wobble proportional to how far each vertex moves
    (`geometry_jitter`), so frame 0 stays exactly the neutral head in every view.
    """
    rng = np.random.default_rng(seed)
    cameras = cameras_for(mesh, views, size)
    gains = 1.0 + rng.uniform(-color_drift, color_drift, size=(views, 3))
    biases = rng.uniform(-color_drift / 3.0, color_drift / 3.0, size=(views, 3))
    gains[0], biases[0] = 1.0, 0.0
    wobble_dirs = rng.normal(size=(views, 3, 3))
    wobble_phase = rng.uniform(0.0, 2.0 * math.pi, size=(views, 3))
    albedo = (
        (mesh.vertex_colors.astype(np.float32) / 255.0)
        if mesh.vertex_colors is not None
        else np.full((mesh.vertex_count, 3), 0.7, np.float32)
    )
    light = mesh.to_source[:3, :3] @ LIGHT_DIRECTION
    weights = ease(frames)
    neutral_frames: dict[str, np.ndarray] = {}
    writer = CaptureWriter(dest, overwrite=True)
    for camera in cameras:
        writer.add_camera(camera)
    for index, act in enumerate(expressions):
        if on_sequence is not None:
            on_sequence(index, len(expressions), act.name)
        per_view: dict[str, list[np.ndarray]] = {camera.name: [] for camera in cameras}
        for t, weight in enumerate(weights):
            moved = deform(mesh.vertices, regions, act, float(weight))
            motion = moved.astype(np.float64) - mesh.vertices
            for v, camera in enumerate(cameras):
                if t == 0 and camera.name in neutral_frames:
                    per_view[camera.name].append(neutral_frames[camera.name])
                    continue
                vertices = moved.astype(np.float64)
                if v > 0 and geometry_jitter > 0.0 and t > 0:
                    # A smooth per-view wobble of the motion itself: views disagree a little about
                    # how far each part moved, as separately generated videos do.
                    wave = np.sin(mesh.vertices @ wobble_dirs[v].T * 6.0 + wobble_phase[v])
                    vertices = vertices + motion * (geometry_jitter * wave)
                source = mesh.to_source_points(vertices)
                shaded = shade_lambert(albedo, vertex_normals(source, mesh.faces), light)
                rgba = render_mesh(source, mesh.faces, shaded, camera.K, camera.world_to_camera, size, size)
                alpha = rgba[..., 3:]
                straight = np.where(alpha > 0, rgba[..., :3] / np.maximum(alpha, 1e-6), 0.0)
                rgb = straight * gains[v] + biases[v] * (alpha > 0)
                image = (np.concatenate([np.clip(rgb, 0.0, 1.0), alpha], axis=-1) * 255.0 + 0.5).astype(np.uint8)
                if t == 0:
                    neutral_frames[camera.name] = image
                per_view[camera.name].append(image)
        writer.write_sequence(
            act.name, act.prompt(identity), FPS, {k: np.stack(v) for k, v in per_view.items()}, fmt="png"
        )
    return writer.close()
