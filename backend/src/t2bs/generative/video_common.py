"""The shared loop of the image-to-video providers (`wan`, `ltx`, `cogvideox`).

For each expression (from the bundle's `prompts.json` when the prompt stage wrote it, else
`stages.prompt.chosen_expressions`) and each view, frontal view first:

1. render the static head, neutral, from that view (the mesh rasterizer of the procedural provider,
   with its cameras `procedural.providers.cameras_for`), composited on a plain background, at the
   model's resolution; a non-square model frame is padded left and right with the background;
2. run image-to-video with the augmented prompt (plus `video_prompt_suffix`, which asks for a still
   camera and head) and the run's seed (the same noise for every expression and view);
3. crop the padding away and resample to the preset's frame count (linear blend of neighbouring frames)
   and size (Lanczos), and replace frame 0 with the neutral render at the capture size, because the
   capture format requires frame 0 to be the neutral face;
4. write the sequence (PNG frames, RGB) into the capture directory.

Each finished (expression, view) video is also kept in the stage's checkpoint folder, so a cancelled
or crashed run resumed with `--resume` skips the videos it already made.

Settings (all optional): `preset`, `capture_views`, `capture_frames`, `capture_size` (as the procedural
provider), `video_frames` (frames generated, snapped to the model's 4k+1 or 8k+1 rule), `video_size`
(generated frame size: a number for a square or [height, width], snapped to the model's multiple),
`video_steps`, `video_guidance`, `video_negative_prompt`, `video_prompt_suffix`, `seed`, `device`,
`allow_download`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ..capture import Camera, Capture, CaptureWriter, resample_video
from ..errors import InputError
from ..mesh_io import HeadMesh, sample_texture
from ..meshrender import render_mesh, shade_lambert, vertex_normals

# Imported as a module, not by name: procedural.providers and stages.capture import each other's
# registries, and this module is imported from stages.capture while procedural.providers may be half done.
from ..procedural import providers as procedural
from ..stage import StageContext
from ..stages.asset import load_asset
from ..stages.capture import VideoProvider
from ..stages.prompt import PROMPTS, chosen_expressions
from . import models

BACKGROUND = (1.0, 1.0, 1.0)  # white: what image-to-video models see most behind a single object
DEFAULT_PROMPT_SUFFIX = " Static camera, plain white background; the head stays still and faces the camera."
DEFAULT_NEGATIVE_PROMPT = (
    "camera motion, head turning, zoom, cut, blurry, distorted face, extra limbs, text, watermark, low quality"
)


def expression_prompts(ctx: StageContext) -> list[tuple[str, str]]:
    """(sequence name, augmented prompt) per act: prompts.json when present, else the library."""
    path = ctx.bundle.path(PROMPTS)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            acts = [(str(item["name"]), str(item["prompt"])) for item in data["expressions"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path} cannot be read as the prompt stage's prompts ({exc}); run the prompt stage again."
            ) from None
        if not acts:
            raise InputError(f"{path} lists no expressions; run the prompt stage again with some.")
        return acts
    identity = ctx.settings.get("prompt") or ctx.manifest.prompt or "A character head"
    return [(act.name, act.prompt(str(identity).strip())) for act in chosen_expressions(ctx.settings)]


def snap_frames(frames: int, factor: int) -> int:
    """The nearest count of the form factor * k + 1 (k >= 1) to `frames`: what the video VAEs accept."""
    k = max(1, round((frames - 1) / factor))
    return factor * k + 1


def snap_size(value: int, multiple: int) -> int:
    """`value` rounded to the nearest positive multiple of `multiple`."""
    return max(multiple, round(value / multiple) * multiple)


def vertex_albedo(mesh: HeadMesh) -> np.ndarray:
    """[V, 3] float32 colours in 0..1: vertex colours, else the texture at each UV, else light grey."""
    if mesh.vertex_colors is not None:
        return mesh.vertex_colors.astype(np.float32) / 255.0
    if mesh.texture is not None and mesh.uv is not None:
        return sample_texture(mesh.texture, mesh.uv).astype(np.float32) / 255.0
    return np.full((mesh.vertex_count, 3), 0.7, np.float32)


def render_neutral(mesh: HeadMesh, camera: Camera, background: tuple[float, float, float] = BACKGROUND) -> np.ndarray:
    """The neutral head seen by `camera`, composited on `background`: [H, W, 3] uint8."""
    source = mesh.to_source_points(mesh.vertices)
    light = mesh.to_source[:3, :3] @ procedural.LIGHT_DIRECTION
    shaded = shade_lambert(vertex_albedo(mesh), vertex_normals(source, mesh.faces), light)
    rgba = render_mesh(source, mesh.faces, shaded, camera.K, camera.world_to_camera, camera.width, camera.height)
    # render_mesh returns premultiplied colour (edge coverage in alpha): "over" the background.
    rgb = rgba[..., :3] + (1.0 - rgba[..., 3:]) * np.asarray(background, np.float32)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def pad_to(
    image: np.ndarray, height: int, width: int, background: tuple[float, float, float] = BACKGROUND
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Centre a square [S, S, 3] uint8 image on a height x width background (S = min(height, width)).

    Returns the padded image and the (top, left, S, S) box where the square sits.
    """
    side = image.shape[0]
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = (np.asarray(background) * 255.0 + 0.5).astype(np.uint8)
    top, left = (height - side) // 2, (width - side) // 2
    canvas[top : top + side, left : left + side] = image
    return canvas, (top, left, side, side)


class DiffusersVideoProvider(VideoProvider):
    """Base of the diffusers image-to-video providers; subclasses set the class attributes.

    Attributes:
        pipeline_class: the diffusers class name (`WanImageToVideoPipeline`).
        fps: frames per second the model generates at (sets the capture's fps after resampling).
        frames: default generated frame count.
        size: default generated (height, width) in pixels.
        steps, guidance: default sampler steps and classifier-free guidance.
        negative_prompt: whether the pipeline takes a negative prompt.
    """

    pipeline_class: ClassVar[str]
    fps: ClassVar[float]
    frames: ClassVar[int]
    size: ClassVar[tuple[int, int]]
    steps: ClassVar[int]
    guidance: ClassVar[float]

    def __init__(self, argument: str | None) -> None:
        super().__init__(argument)
        models.require_modules(self.name, ["diffusers", "transformers"])
        self.source = models.model_source(argument, self.name)
        self.details: dict[str, Any] = {}

    # -- per-model hooks ---------------------------------------------------------------------------

    def temporal_factor(self, pipe: Any) -> int:
        """Frames per latent frame of the loaded VAE (generated counts are factor * k + 1)."""
        return int(getattr(pipe, "vae_scale_factor_temporal", 4))

    def spatial_multiple(self, pipe: Any) -> int:
        """What the generated height and width must be multiples of."""
        return 16

    def call_kwargs(self, pipe: Any, settings: dict[str, Any]) -> dict[str, Any]:
        """Model-specific keyword arguments of the pipeline call."""
        return {}

    # -- the loop -----------------------------------------------------------------------------------

    def generation_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        def whole(key: str, default: int, low: int, high: int) -> int:
            value = settings.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InputError(f"The setting {key} must be a whole number from {low} to {high}, not {value!r}.")
            return value

        size = settings.get("video_size", list(self.size))
        if isinstance(size, int) and not isinstance(size, bool):
            size = [size, size]
        if (
            not isinstance(size, (list, tuple))
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 4096 for v in size)
        ):
            raise InputError(
                f"The setting video_size must be a number of pixels or [height, width] from 16 to 4096, not {size!r}."
            )
        guidance = settings.get("video_guidance", self.guidance)
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0.0 <= guidance <= 30.0:
            raise InputError(f"The setting video_guidance must be a number from 0 to 30, not {guidance!r}.")
        return {
            "frames": whole("video_frames", self.frames, 2, 1024),
            "height": int(size[0]),
            "width": int(size[1]),
            "steps": whole("video_steps", self.steps, 1, 1000),
            "guidance": float(guidance),
            "negative_prompt": str(settings.get("video_negative_prompt", DEFAULT_NEGATIVE_PROMPT)),
            "suffix": str(settings.get("video_prompt_suffix", DEFAULT_PROMPT_SUFFIX)),
        }

    def make(self, ctx: StageContext, dest: Path) -> Capture:
        settings = ctx.settings
        mesh = load_asset(ctx.bundle.root)
        options = procedural.capture_options(settings)
        acts = expression_prompts(ctx)
        gen = self.generation_settings(settings)
        allowed = models.allow_download(settings)
        models.check_available([self.source], self.name, allowed)
        plan = models.plan_for(settings, self.source)
        ctx.step(0.01, f"loading {self.source} ({plan.name})")
        pipe = models.load_diffusers(self.pipeline_class, self.source, self.name, allowed, models.torch_dtype(plan))
        models.apply_memory_plan(pipe, plan)
        factor = self.temporal_factor(pipe)
        multiple = self.spatial_multiple(pipe)
        frames_gen = snap_frames(gen["frames"], factor)
        height, width = snap_size(gen["height"], multiple), snap_size(gen["width"], multiple)
        side = min(height, width)
        views, frames, size, seed = options["views"], options["frames"], options["size"], options["seed"]
        cameras = procedural.cameras_for(mesh, views, size)
        # The same cameras at the model's resolution: only K scales, so the crop maps back exactly.
        model_cameras = procedural.cameras_for(mesh, views, side)
        fps = self.fps * (frames - 1) / (frames_gen - 1)
        self.details = {
            "model": self.source,
            "memory_plan": plan.name,
            "generated_frames": frames_gen,
            "generated_size": [height, width],
            "steps": gen["steps"],
            "guidance": gen["guidance"],
            "views": views,
            "frames": frames,
            "size": size,
            "seed": seed,
            "expressions": [name for name, _ in acts],
        }
        ctx.record_seed(seed)
        writer = CaptureWriter(dest, overwrite=True)
        for camera in cameras:
            writer.add_camera(camera)
        neutral = {camera.name: render_neutral(mesh, camera) for camera in cameras}
        conditioning = {}
        for camera in model_cameras:
            conditioning[camera.name] = pad_to(render_neutral(mesh, camera), height, width)
        total = len(acts) * len(cameras)
        started = time.perf_counter()
        for a, (name, prompt) in enumerate(acts):
            per_view: dict[str, np.ndarray] = {}
            for v, camera in enumerate(cameras):
                unit = a * len(cameras) + v
                start, end = 0.05 + 0.9 * unit / total, 0.05 + 0.9 * (unit + 1) / total
                image, crop = conditioning[camera.name]
                full_prompt = prompt + gen["suffix"]
                key = _checkpoint_key(self.source, full_prompt, gen, seed, camera.name, frames_gen, height, width)
                video = self._cached(ctx, name, camera.name, key)
                if video is None:
                    ctx.step(start, f"{name}, view {camera.name}")
                    progress = models.StepProgress(ctx, start, end, gen["steps"], f"{name}, view {camera.name}")
                    call = {
                        "image": Image.fromarray(image, "RGB"),
                        "prompt": full_prompt,
                        "height": height,
                        "width": width,
                        "num_frames": frames_gen,
                        "num_inference_steps": gen["steps"],
                        "guidance_scale": gen["guidance"],
                        "generator": models.generator(plan.device, seed),
                        "output_type": "np",
                        "callback_on_step_end": progress,
                        **self.call_kwargs(pipe, settings),
                    }
                    if gen["negative_prompt"]:
                        call["negative_prompt"] = gen["negative_prompt"]
                    output = pipe(**call).frames
                    video = np.asarray(output[0])
                    self._store(ctx, name, camera.name, key, video)
                clip = resample_video(video, frames, size, crop)
                clip[0] = neutral[camera.name]
                per_view[camera.name] = clip
            writer.write_sequence(name, prompt, fps, per_view, fmt="png")
        capture = writer.close()
        ctx.record_metrics(generate_seconds=round(time.perf_counter() - started, 3))
        ctx.step(1.0, f"{len(acts)} expressions x {len(cameras)} views generated")
        return capture

    # -- resumability -------------------------------------------------------------------------------

    def _checkpoint_path(self, ctx: StageContext, sequence: str, view: str) -> Path:
        return ctx.checkpoint_dir / f"{sequence}__{view}.npz"

    def _cached(self, ctx: StageContext, sequence: str, view: str, key: str) -> np.ndarray | None:
        path = self._checkpoint_path(ctx, sequence, view)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                if str(data["key"]) != key:
                    return None
                return np.asarray(data["video"])
        except (OSError, ValueError, KeyError):
            return None

    def _store(self, ctx: StageContext, sequence: str, view: str, key: str, video: np.ndarray) -> None:
        path = self._checkpoint_path(ctx, sequence, view)
        quantised = (np.clip(video, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8) if video.dtype != np.uint8 else video
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, key=np.array(key), video=quantised)
        temporary.replace(path)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "argument": self.argument, **self.details}


def _checkpoint_key(
    source: str, prompt: str, gen: dict[str, Any], seed: int, view: str, frames: int, height: int, width: int
) -> str:
    text = json.dumps([source, prompt, gen, seed, view, frames, height, width], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
