"""`--asset trellis[:MODEL]`: text-to-image with diffusers, then Microsoft TRELLIS image-to-3D.

For users who have TRELLIS installed (https://github.com/microsoft/TRELLIS: a CUDA-only research code
base with compiled extensions; not on PyPI). Step 1 draws a front view of the head
(`text_to_image.reference_image`); step 2 runs `TrellisImageTo3DPipeline` (default
`microsoft/TRELLIS-image-large`, resolved through the download gate and handed to TRELLIS as a local
folder; TRELLIS loads only safetensors) and bakes the Gaussians and mesh into a textured GLB with
`trellis.utils.postprocessing_utils.to_glb`.

TRELLIS itself fetches its DINOv2 image encoder through torch.hub on first use, outside the gate:
run it once with network access (see docs/generative.md).

Settings (all optional): those of `text_to_image`, `asset_steps` (sparse-structure and latent
sampler steps, default 12), `simplify` (0.95), `texture_size` (1024), `seed`, `up_axis` / `front_axis`
(`to_glb` writes glTF axes: +Y up, front +Z).
"""

from __future__ import annotations

from ..mesh_io import HeadMesh
from ..stage import StageContext
from ..stages.asset import ASSET_PROVIDERS
from . import models
from .asset_common import float_setting, int_setting, normalised_mesh
from .text_to_image import ImageTo3DProvider, image_model

TRELLIS_INSTALL = (
    "install TRELLIS from https://github.com/microsoft/TRELLIS (its setup.sh, on a CUDA machine) "
    "and put its folder on PYTHONPATH"
)
TRELLIS_UP, TRELLIS_FRONT = "+y", "+z"


@ASSET_PROVIDERS.register("trellis")
class TrellisProvider(ImageTo3DProvider):
    """Text -> image (diffusers) -> textured mesh (TRELLIS); needs a CUDA GPU with about 16 GB."""

    name = "trellis"

    package_module = "trellis"
    install_hint = TRELLIS_INSTALL

    def make(self, ctx: StageContext) -> HeadMesh:
        settings = ctx.settings
        allowed = models.allow_download(settings)
        image = self.reference(ctx)
        image_source = image_model(settings, self.name)  # recorded in the manifest
        pipelines = models.import_module("trellis.pipelines", self.name, TRELLIS_INSTALL)
        postprocessing = models.import_module("trellis.utils.postprocessing_utils", self.name, TRELLIS_INSTALL)
        folder = models.snapshot_folder(self.source, self.name, allowed, None, marker="pipeline.json")
        plan = models.plan_for(settings, self.source)
        ctx.step(0.35, f"loading {self.source}")
        pipe = pipelines.TrellisImageTo3DPipeline.from_pretrained(str(folder))
        pipe.to(plan.device)
        steps = int_setting(settings, "asset_steps", 12, 1, 500)
        seed = int(settings.get("seed", 0))
        ctx.step(0.4, f"image to 3D, {steps} steps")
        # TRELLIS's run() has no step callback: cancellation is honoured before and after it.
        outputs = pipe.run(
            image,
            seed=seed,
            formats=["gaussian", "mesh"],
            sparse_structure_sampler_params={"steps": steps},
            slat_sampler_params={"steps": steps},
        )
        ctx.step(0.65, "baking the texture")
        glb = postprocessing.to_glb(
            outputs["gaussian"][0],
            outputs["mesh"][0],
            simplify=float_setting(settings, "simplify", 0.95, 0.0, 0.99),
            texture_size=int_setting(settings, "texture_size", 1024, 64, 8192),
            verbose=False,
        )
        del pipe, outputs
        models.free_accelerator_memory()
        ctx.step(0.78, "normalising the mesh")
        head = normalised_mesh(ctx, glb, self.name, TRELLIS_UP, TRELLIS_FRONT)
        ctx.record_seed(seed)
        ctx.record_provider(
            name=self.name, model=self.source, text_to_image_model=image_source, steps=steps, memory_plan=plan.name
        )
        return head
