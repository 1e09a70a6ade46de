"""Stage 7, `export`: `head.glb` with morph targets, the texture, and previews (DESIGN.md).

Writes, in the bundle: `head.glb` (the head with one morph target per blendshape, ARKit names),
`texture.png` (the base colour, when the head is textured: tools and the Blender add-on load it
without parsing glTF), `preview/expressions.png` (the neutral and every blendshape at full strength)
and `preview/turntable.mp4`. Other formats and name casings: `t2bs export BUNDLE --format ...`.
"""

from __future__ import annotations

from PIL import Image

from ..bundle import HEAD_GLB, PREVIEW_DIR
from ..export import TEXTURE_PNG, load_export_source
from ..export.gltf import write_head_glb
from ..fileio import atomic_open
from ..preview import expression_grid, turntable, write_png, write_turntable
from ..stage import Stage, StageContext

PREVIEW_GRID = f"{PREVIEW_DIR}/expressions.png"
PREVIEW_TURNTABLE = f"{PREVIEW_DIR}/turntable.mp4"


class ExportStage(Stage):
    name = "export"
    outputs = (HEAD_GLB, PREVIEW_DIR)
    optional_outputs = (TEXTURE_PNG,)

    def run(self, ctx: StageContext) -> None:
        source = load_export_source(ctx.bundle.root, require_complete=False)
        ctx.step(0.05, f"writing {HEAD_GLB}")
        write_head_glb(
            ctx.output(HEAD_GLB), source.model, source.rotation, texture=source.texture, extras=source.gltf_extras()
        )
        if source.texture is not None:
            with atomic_open(ctx.output(TEXTURE_PNG), "wb") as handle:
                Image.fromarray(source.texture).save(handle, format="PNG")
        ctx.step(0.2, "rendering the expression grid")
        write_png(ctx.output(PREVIEW_GRID), expression_grid(source.model, source.to_normalised, source.texture))
        ctx.step(0.6, "rendering the turntable")
        write_turntable(ctx.output(PREVIEW_TURNTABLE), turntable(source.model, source.to_normalised, source.texture))
        ctx.record_metrics(head_glb_bytes=ctx.output(HEAD_GLB).stat().st_size, morph_targets=len(source.model.names))
        ctx.step(1.0, "exported")
