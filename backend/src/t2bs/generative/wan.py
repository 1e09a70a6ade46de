"""`--video wan[:MODEL]`: Wan image-to-video through diffusers' `WanImageToVideoPipeline`.

Default `Wan-AI/Wan2.1-I2V-14B-480P-Diffusers` (16 fps, frames 4k+1, sizes multiples of 16; its 480p
area as a 624 x 624 square). Wan 2.2 image-to-video ids in diffusers format (`Wan-AI/Wan2.2-I2V-A14B-Diffusers`)
load through the same class. Needs `ftfy` (in the `gen` extra). Settings: see `video_common`.
"""

from __future__ import annotations

from typing import Any

from ..stages.capture import VIDEO_PROVIDERS
from .video_common import DiffusersVideoProvider


@VIDEO_PROVIDERS.register("wan")
class WanProvider(DiffusersVideoProvider):
    """Wan 2.x image-to-video: one video per expression and view."""

    name = "wan"
    pipeline_class = "WanImageToVideoPipeline"
    fps = 16.0
    frames = 49
    size = (624, 624)
    steps = 40
    guidance = 5.0

    def temporal_factor(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_temporal)

    def spatial_multiple(self, pipe: Any) -> int:
        # The latent grid is patchified 2x2 by the transformer on top of the VAE's 8x.
        patch = pipe.transformer.config.patch_size if pipe.transformer is not None else (1, 2, 2)
        return int(pipe.vae_scale_factor_spatial * patch[1])
