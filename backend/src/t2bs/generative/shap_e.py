"""`--asset shap-e[:MODEL]`: OpenAI's Shap-E text-to-3D through diffusers' `ShapEPipeline`.

The prior turns the prompt into a latent; the renderer decodes it to a signed distance field on a
grid and runs marching cubes (`ShapERenderer.decode_to_mesh`), giving a vertex-coloured mesh. The
pipeline is called with `output_type="latent"` and the decode is called here, the same two calls the
pipeline makes for `output_type="mesh"`, so that the grid resolution is a setting.

Settings (all optional): `asset_steps` (default 64), `asset_guidance` (15.0), `mesh_grid_size`
(marching-cubes grid, default 128; 256 is finer and 8x slower), `asset_prompt` (replaces the prompt),
`seed`, `up_axis` / `front_axis` (Shap-E meshes are Z-up with the front toward -Y: the rotation the
diffusers documentation applies before exporting GLB).

Colours: the texture head predicts sRGB; `decode_to_mesh` converts it to linear (Shap-E's renderer
shades in linear light) and returns that as `vertex_channels`. The bundle's 8-bit vertex colours are
sRGB, so the conversion is undone here; written as they come, colours would be much too dark.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import StageError
from ..mesh_io import HeadMesh
from ..stage import StageContext
from ..stages.asset import ASSET_PROVIDERS, AssetProvider
from . import models
from .asset_common import float_setting, identity_prompt, int_setting, normalised_mesh, vertex_colour_mesh

SHAP_E_UP, SHAP_E_FRONT = "+z", "-y"
PROMPT_TEMPLATE = "a 3D model of the head of {identity}"


@ASSET_PROVIDERS.register("shap-e")
class ShapEProvider(AssetProvider):
    """Text-to-3D with Shap-E (about 4 GB of GPU memory; minutes on a CPU)."""

    name = "shap-e"

    def __init__(self, argument: str | None) -> None:
        super().__init__(argument)
        models.require_modules(self.name, ["diffusers", "transformers"])
        self.source = models.model_source(argument, self.name)

    def make(self, ctx: StageContext) -> HeadMesh:
        settings = ctx.settings
        identity = identity_prompt(ctx, self.name)
        prompt = settings.get("asset_prompt") or PROMPT_TEMPLATE.format(identity=identity.rstrip(". "))
        steps = int_setting(settings, "asset_steps", 64, 1, 1000)
        guidance = float_setting(settings, "asset_guidance", 15.0, 0.0, 100.0)
        grid = int_setting(settings, "mesh_grid_size", 128, 8, 512)
        seed = int(settings.get("seed", 0))
        allowed = models.allow_download(settings)
        models.check_available([self.source], self.name, allowed)
        plan = models.plan_for(settings, self.source)
        # Shap-E is small; float32 everywhere avoids marching cubes on half-precision fields.
        plan = models.MemoryPlan(plan.name, plan.device, "float32", "none", False)
        ctx.step(0.02, f"loading {self.source}")
        pipe = models.load_diffusers("ShapEPipeline", self.source, self.name, allowed, models.torch_dtype(plan))
        models.apply_memory_plan(pipe, plan)
        progress = models.StepProgress(ctx, 0.05, 0.6, steps, "Shap-E prior")
        progress.wrap_progress_bar(pipe)
        latents = pipe(
            prompt,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=models.generator(plan.device, seed),
            output_type="latent",
        ).images
        ctx.step(0.62, f"marching cubes on a {grid}^3 grid")
        try:
            decoded = pipe.shap_e_renderer.decode_to_mesh(latents[0][None, :], plan.device, grid_size=grid)
        except ValueError as exc:
            # diffusers fails on a field with no zero crossing (no surface) while texturing it.
            if "non-empty" not in str(exc):
                raise
            raise StageError("The Shap-E model produced an empty surface; try another --seed or prompt.") from None
        mesh = _to_trimesh(decoded)
        del pipe
        models.free_accelerator_memory()
        ctx.step(0.75, "normalising the mesh")
        head = normalised_mesh(ctx, mesh, self.name, SHAP_E_UP, SHAP_E_FRONT)
        ctx.record_seed(seed)
        ctx.record_provider(
            name=self.name,
            model=self.source,
            prompt=prompt,
            steps=steps,
            guidance=guidance,
            grid_size=grid,
            memory_plan=plan.name,
        )
        return head


def _to_trimesh(decoded: Any) -> Any:
    """diffusers' `MeshDecoderOutput` (verts [V,3], faces [F,3], vertex_channels R/G/B [V], linear) -> trimesh
    with sRGB vertex colours."""
    vertices = decoded.verts.detach().float().cpu().numpy()
    faces = decoded.faces.detach().cpu().numpy().astype(np.int64)
    channels = decoded.vertex_channels
    colours = None
    if channels and all(key in channels for key in "RGB"):
        linear = np.stack([channels[key].detach().float().cpu().numpy() for key in "RGB"], axis=1)
        colours = linear_to_srgb(linear)
    return vertex_colour_mesh(vertices, faces, colours)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """[..., 3] linear colours in 0..1 -> sRGB in 0..1: the inverse of the sRGB-to-linear step in
    diffusers' `decode_to_mesh` (same breakpoint, 0.0031308 = 0.04045 / 12.92)."""
    linear = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1.0 / 2.4) - 0.055)
