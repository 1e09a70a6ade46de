"""The first step of the image-to-3D providers (`hunyuan3d`, `trellis`): a reference image of the head.

Any diffusers text-to-image model loads here through `AutoPipelineForText2Image` (default
`DEFAULT_MODELS["text-to-image"]`, a step-distilled HunyuanDiT; `stabilityai/sdxl-turbo` with
`image_steps` 1-4 and `image_guidance` 0 is a faster alternative). Settings read (all optional):
`text_to_image_model` (id or folder), `image_steps`, `image_guidance`, `image_size` (pixels, square,
multiple of 16), `image_prompt` (replaces the whole prompt), `seed`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from PIL import Image

from ..errors import InputError
from ..stage import StageContext
from ..stages.asset import AssetProvider
from . import models
from .asset_common import identity_prompt

# Image-to-3D models want one object, whole, centred, from the front, on a plain background.
IMAGE_PROMPT_SUFFIX = (
    ", the head and shoulders of the character as a 3D model, front view, facing the camera, centred, "
    "neutral expression, mouth closed, eyes open, plain white background, soft studio light"
)

# (steps, guidance) that suit known models; an unknown model gets the generic default.
IMAGE_SAMPLING: dict[str, tuple[int, float]] = {
    "Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers-Distilled": (25, 5.0),
    "stabilityai/sdxl-turbo": (2, 0.0),
    "black-forest-labs/FLUX.1-schnell": (4, 0.0),
}
DEFAULT_SAMPLING = (25, 5.0)
DEFAULT_IMAGE_SIZE = 1024


def image_model(settings: dict[str, Any], provider: str) -> str:
    """The text-to-image model id or folder for `provider` (setting `text_to_image_model`)."""
    value = settings.get("text_to_image_model")
    if value is not None and not isinstance(value, str):
        raise InputError(f"The setting text_to_image_model must be a model id or folder, not {value!r}.")
    return models.model_source(value, "text-to-image") if value else models.DEFAULT_MODELS["text-to-image"]


def _int_setting(settings: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"The setting {key} must be a whole number from {low} to {high}, not {value!r}.")
    return value


def reference_image(
    ctx: StageContext, identity: str, source: str, provider: str, *, start: float, end: float
) -> Image.Image:
    """Draw the reference image of `identity` with the text-to-image model `source`.

    Reports per-step progress in [start, end] of the stage and stops with `Cancelled` within one step.
    Returns an RGB PIL image, `image_size` pixels square.
    """
    settings = ctx.settings
    allowed = models.allow_download(settings)
    steps_default, guidance_default = IMAGE_SAMPLING.get(source, DEFAULT_SAMPLING)
    steps = _int_setting(settings, "image_steps", steps_default, 1, 200)
    size = _int_setting(settings, "image_size", DEFAULT_IMAGE_SIZE, 16, 4096)
    if size % 16:
        raise InputError(f"The setting image_size must be a multiple of 16, not {size}.")
    guidance = settings.get("image_guidance", guidance_default)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0.0 <= guidance <= 30.0:
        raise InputError(f"The setting image_guidance must be a number from 0 to 30, not {guidance!r}.")
    prompt = settings.get("image_prompt") or f"{identity.rstrip('. ')}{IMAGE_PROMPT_SUFFIX}"
    seed = int(settings.get("seed", 0))

    plan = models.plan_for(settings, source)
    ctx.step(start, f"loading the text-to-image model {source} ({plan.name})")
    pipe = models.load_diffusers("AutoPipelineForText2Image", source, provider, allowed, models.torch_dtype(plan))
    models.apply_memory_plan(pipe, plan)
    progress = models.StepProgress(ctx, start, end, steps, "drawing the reference image")
    try:
        result = pipe(
            prompt=prompt,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=float(guidance),
            generator=models.generator(plan.device, seed),
            callback_on_step_end=progress,
        )
    finally:
        del pipe
        models.free_accelerator_memory()
    image = result.images[0]
    ctx.record_metrics(reference_image={"model": source, "steps": steps, "size": size, "prompt": prompt})
    return image.convert("RGB")


class ImageTo3DProvider(AssetProvider):
    """The shared first half of `hunyuan3d` and `trellis`: package checks, the download gate, and the
    reference image. Subclasses name their 3D package (`package_module`, `install_hint`) and turn the
    image into a mesh in `make`.
    """

    package_module: ClassVar[str]
    install_hint: ClassVar[str]

    def __init__(self, argument: str | None) -> None:
        super().__init__(argument)
        models.require_modules(self.name, ["diffusers", "transformers"])
        models.require_modules(self.name, [self.package_module], self.install_hint)
        self.source = models.model_source(argument, self.name)

    def reference(self, ctx: StageContext) -> Any:
        """The reference image of the run's character (progress 0..0.3).

        Both models (text-to-image and image-to-3D) are checked before the first is loaded, so a
        missing one is named at once.
        """
        image_source = image_model(ctx.settings, self.name)
        models.check_available([image_source, self.source], self.name, models.allow_download(ctx.settings))
        return reference_image(ctx, identity_prompt(ctx, self.name), image_source, self.name, start=0.0, end=0.3)
