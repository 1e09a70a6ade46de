"""`--asset hunyuan3d[:MODEL]`: text-to-image with diffusers, then Tencent's Hunyuan3D-2 image-to-3D.

Step 1 draws a front view of the head (`text_to_image.reference_image`, default the distilled HunyuanDiT
that hy3dgen's own text-to-3D demo uses). Step 2 removes its background (`hy3dgen.rembg`) and runs the
`hy3dgen` shape model (`Hunyuan3DDiTFlowMatchingPipeline`, subfolder `hunyuan3d-dit-v2-0` of
`tencent/Hunyuan3D-2`), cleans the mesh (floaters, degenerate faces, face budget) and, when
`hy3dgen.texgen` and its compiled rasterizer are installed and `asset_texture` is true, paints a texture
(`Hunyuan3DPaintPipeline`, subfolders `hunyuan3d-paint-v2-0` and `hunyuan3d-delight-v2-0`).

hy3dgen is not on PyPI: install it from https://github.com/Tencent-Hunyuan/Hunyuan3D-2 (`pip install
-e .` in a clone; texturing also builds `hy3dgen/texgen/custom_rasterizer`). The snapshot is resolved
through the download gate first and handed to hy3dgen as a local folder, so hy3dgen never downloads.

Settings (all optional): those of `text_to_image`, `asset_steps` (default 30), `asset_guidance` (5.0),
`octree_resolution` (256), `max_faces` (40000), `asset_texture` (true), `seed`, `up_axis` /
`front_axis` (hy3dgen writes glTF axes: +Y up, front +Z).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError, StageError
from ..mesh_io import HeadMesh
from ..stage import StageContext
from ..stages.asset import ASSET_PROVIDERS
from . import models
from .asset_common import float_setting, int_setting, normalised_mesh
from .text_to_image import ImageTo3DProvider, image_model

HY3DGEN_INSTALL = (
    "install the hy3dgen package from https://github.com/Tencent-Hunyuan/Hunyuan3D-2 "
    "(git clone it, then pip install -e . in the clone)"
)
SHAPE_SUBFOLDER = "hunyuan3d-dit-v2-0"
SHAPE_CHECKPOINT = "model.fp16.safetensors"  # hy3dgen's default variant "fp16", safetensors only
PAINT_SUBFOLDERS = ("hunyuan3d-paint-v2-0", "hunyuan3d-delight-v2-0")
HY3D_UP, HY3D_FRONT = "+y", "+z"


@ASSET_PROVIDERS.register("hunyuan3d")
class Hunyuan3DProvider(ImageTo3DProvider):
    """Text -> image (diffusers) -> textured mesh (hy3dgen); needs a CUDA GPU with about 16 GB."""

    name = "hunyuan3d"

    package_module = "hy3dgen"
    install_hint = HY3DGEN_INSTALL

    def make(self, ctx: StageContext) -> HeadMesh:
        settings = ctx.settings
        allowed = models.allow_download(settings)
        texture = bool(settings.get("asset_texture", True))
        image = self.reference(ctx)
        image_source = image_model(settings, self.name)  # recorded in the manifest
        shapegen = models.import_module("hy3dgen.shapegen", self.name, HY3DGEN_INSTALL)
        rembg = models.import_module("hy3dgen.rembg", self.name, HY3DGEN_INSTALL)
        patterns = [f"{SHAPE_SUBFOLDER}/*"] + ([f"{name}/*" for name in PAINT_SUBFOLDERS] if texture else [])
        folder = models.snapshot_folder(self.source, self.name, allowed, patterns, marker=None)
        _check_shape_model(folder, self.source)
        ctx.step(0.32, "removing the background")
        image = rembg.BackgroundRemover()(image)
        plan = models.plan_for(settings, self.source)
        ctx.step(0.35, f"loading {self.source} ({SHAPE_SUBFOLDER})")
        pipe = shapegen.Hunyuan3DDiTFlowMatchingPipeline.from_pretrained(
            str(folder),
            subfolder=SHAPE_SUBFOLDER,
            use_safetensors=True,
            device=plan.device,
            dtype=models.torch_dtype(plan),
        )
        steps = int_setting(settings, "asset_steps", 30, 1, 500)
        seed = int(settings.get("seed", 0))
        ctx.step(0.4, f"image to 3D, {steps} steps")

        def on_step(index: int, _timestep: Any, _outputs: Any) -> None:
            # hy3dgen calls this after every denoising step; ctx.step raises Cancelled when asked to stop.
            ctx.step(0.4 + 0.18 * (index + 1) / steps, f"image to 3D: step {index + 1}/{steps}")

        mesh = pipe(
            image=image,
            num_inference_steps=steps,
            guidance_scale=float_setting(settings, "asset_guidance", 5.0, 0.0, 50.0),
            octree_resolution=int_setting(settings, "octree_resolution", 256, 64, 1024),
            generator=models.generator(plan.device, seed),
            callback=on_step,
            callback_steps=1,
        )[0]
        if mesh is None:
            raise StageError("hunyuan3d found no surface in the generated shape; try another seed or prompt (--seed).")
        del pipe
        models.free_accelerator_memory()
        ctx.step(0.6, "cleaning the mesh")
        mesh = shapegen.FloaterRemover()(mesh)
        mesh = shapegen.DegenerateFaceRemover()(mesh)
        mesh = shapegen.FaceReducer()(mesh, max_facenum=int_setting(settings, "max_faces", 40000, 1000, 2_000_000))
        painted = False
        if texture:
            painted_mesh = _paint(ctx, folder, mesh, image)
            if painted_mesh is not None:
                mesh, painted = painted_mesh, True
        ctx.step(0.78, "normalising the mesh")
        head = normalised_mesh(ctx, mesh, self.name, HY3D_UP, HY3D_FRONT)
        ctx.record_seed(seed)
        ctx.record_provider(
            name=self.name,
            model=self.source,
            text_to_image_model=image_source,
            steps=steps,
            textured=painted,
            memory_plan=plan.name,
        )
        return head


def _check_shape_model(folder: Path, source: str) -> None:
    """hy3dgen reads `<folder>/hunyuan3d-dit-v2-0/config.yaml` and `model.fp16.safetensors`; without
    them it would try the hub with the folder's path as a model id and fail with a traceback."""
    shape = Path(folder) / SHAPE_SUBFOLDER
    missing = [name for name in ("config.yaml", SHAPE_CHECKPOINT) if not (shape / name).is_file()]
    if missing:
        raise InputError(
            f"{source} has no {SHAPE_SUBFOLDER}/{' or '.join(missing)}; the hunyuan3d provider needs a "
            "download of tencent/Hunyuan3D-2 (huggingface-cli download tencent/Hunyuan3D-2)."
        )


def _paint(ctx: StageContext, folder: Any, mesh: Any, image: Any) -> Any:
    """Texture `mesh` with hy3dgen.texgen, or None (with a log line) when texgen is not usable here."""
    try:
        from hy3dgen.texgen import Hunyuan3DPaintPipeline, Hunyuan3DTexGenConfig  # type: ignore[import-not-found]
    except ImportError as exc:
        ctx.log.warning("hunyuan3d: no texture, hy3dgen.texgen cannot be imported (%s)", exc)
        return None
    delight, paint = (Path(folder) / name for name in (PAINT_SUBFOLDERS[1], PAINT_SUBFOLDERS[0]))
    if not (delight.is_dir() and paint.is_dir()):
        ctx.log.warning("hunyuan3d: no texture, %s lacks %s", folder, " and ".join(PAINT_SUBFOLDERS))
        return None
    ctx.step(0.65, "painting the texture")
    # Built from its config, not `from_pretrained`: given a folder that exists, hy3dgen's
    # `Hunyuan3DPaintPipeline.from_pretrained` raises FileNotFoundError, and it defaults to the turbo
    # paint model, which is not the one downloaded here.
    painter = Hunyuan3DPaintPipeline(Hunyuan3DTexGenConfig(str(delight), str(paint), PAINT_SUBFOLDERS[0]))
    try:
        return painter(mesh, image=image)
    finally:
        del painter
        models.free_accelerator_memory()
