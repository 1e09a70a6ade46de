"""`--video ltx[:MODEL]`: LTX-Video image-to-video through diffusers' `LTXImageToVideoPipeline`.

Default `Lightricks/LTX-Video` (24-25 fps, frames 8k+1, sizes multiples of 32; fast: a few seconds per
video on an H100). Settings: see `video_common`; LTX also reads `video_decode_timestep` (default 0.03)
and `video_decode_noise_scale` (0.025), the values Lightricks recommends for its timestep-conditioned VAE.
"""

from __future__ import annotations

from typing import Any

from ..stages.capture import VIDEO_PROVIDERS
from .video_common import DiffusersVideoProvider


@VIDEO_PROVIDERS.register("ltx")
class LTXProvider(DiffusersVideoProvider):
    """LTX-Video image-to-video: one video per expression and view."""

    name = "ltx"
    pipeline_class = "LTXImageToVideoPipeline"
    fps = 24.0
    frames = 97
    size = (512, 512)
    steps = 40
    guidance = 3.0

    def temporal_factor(self, pipe: Any) -> int:
        return int(pipe.vae_temporal_compression_ratio)

    def spatial_multiple(self, pipe: Any) -> int:
        return 32  # the pipeline refuses other sizes

    def call_kwargs(self, pipe: Any, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "frame_rate": int(self.fps),
            "decode_timestep": float(settings.get("video_decode_timestep", 0.03)),
            "decode_noise_scale": float(settings.get("video_decode_noise_scale", 0.025)),
        }
