"""`--video cogvideox[:MODEL]`: CogVideoX image-to-video through diffusers' `CogVideoXImageToVideoPipeline`.

Default `THUDM/CogVideoX-5b-I2V`: 8 fps, 49 frames, 480 x 720 (height x width) only, so the square
render of the head is padded left and right and the padding is cropped off the result
(`video_common.pad_to`). `THUDM/CogVideoX1.5-5B-I2V` takes other sizes and 81 frames (set
`video_frames` and `video_size`). Settings: see `video_common`.
"""

from __future__ import annotations

from typing import Any

from ..stages.capture import VIDEO_PROVIDERS
from .video_common import DiffusersVideoProvider


@VIDEO_PROVIDERS.register("cogvideox")
class CogVideoXProvider(DiffusersVideoProvider):
    """CogVideoX image-to-video: one video per expression and view."""

    name = "cogvideox"
    pipeline_class = "CogVideoXImageToVideoPipeline"
    fps = 8.0
    frames = 49
    size = (480, 720)
    steps = 50
    guidance = 6.0

    def temporal_factor(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_temporal)

    def spatial_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size)

    def call_kwargs(self, pipe: Any, settings: dict[str, Any]) -> dict[str, Any]:
        # Dynamic guidance is what THUDM's own I2V sampling uses (cosine-scheduled CFG).
        return {"use_dynamic_cfg": True}
