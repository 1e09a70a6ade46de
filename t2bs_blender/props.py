"""The panel's settings, stored per scene (`scene.t2bs`), and the add-on preferences."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from .names import EXPRESSION_ACTS, PREVIEW_EXPRESSIONS

PRESETS = [
    ("preview", "Preview", "CPU-friendly: a few expressions, small fit (minutes)"),
    ("standard", "Standard", "The full expression set at working resolution (GPU)"),
    ("high", "High", "More views, frames and fit steps (GPU, slow)"),
]
ASSET_PROVIDERS = [
    ("procedural", "Procedural", "Offline, CPU, seconds: a text-conditioned procedural head"),
    ("shap-e", "Shap-E", "diffusers ShapEPipeline (downloads weights when allowed)"),
    ("hunyuan3d", "Hunyuan3D", "Text to image, then Hunyuan3D image to 3D (needs hy3dgen)"),
    ("trellis", "TRELLIS", "TRELLIS, if installed in the backend"),
]
VIDEO_PROVIDERS = [
    ("procedural", "Procedural", "Offline: region-aware deformation rendered from several views"),
    ("wan", "Wan", "Wan image-to-video (diffusers)"),
    ("ltx", "LTX-Video", "LTX image-to-video (diffusers)"),
    ("cogvideox", "CogVideoX", "CogVideoX image-to-video (diffusers)"),
]


class T2BS_PG_expression(bpy.types.PropertyGroup):
    """One act of the expression list (the backend captures one video per view for it)."""

    name: StringProperty(name="Expression", description="camelCase act name, e.g. jawOpen")  # type: ignore[valid-type]
    enabled: BoolProperty(name="Capture", default=True)  # type: ignore[valid-type]


class T2BS_PG_settings(bpy.types.PropertyGroup):
    """What the Generate panel edits."""

    prompt: StringProperty(  # type: ignore[valid-type]
        name="Prompt", description="Describe the character's head", default="a friendly cartoon fox"
    )
    preset: EnumProperty(name="Preset", items=PRESETS, default="preview")  # type: ignore[valid-type]
    asset_provider: EnumProperty(name="Asset", items=ASSET_PROVIDERS, default="procedural")  # type: ignore[valid-type]
    video_provider: EnumProperty(name="Video", items=VIDEO_PROVIDERS, default="procedural")  # type: ignore[valid-type]
    seed: IntProperty(name="Seed", default=0, min=0)  # type: ignore[valid-type]
    expressions: CollectionProperty(type=T2BS_PG_expression)  # type: ignore[valid-type]
    expression_index: IntProperty(default=0)  # type: ignore[valid-type]
    import_eigen: BoolProperty(  # type: ignore[valid-type]
        name="Eigen-Expressions", default=True, description="Also import the PCA eigen-expressions as shape keys"
    )
    eigen_count: IntProperty(name="Count", default=10, min=1, max=100)  # type: ignore[valid-type]


def fill_default_expressions(settings: T2BS_PG_settings) -> None:
    """The whole library, with the preview set ticked."""
    settings.expressions.clear()
    for name in EXPRESSION_ACTS:
        item = settings.expressions.add()
        item.name = name
        item.enabled = name in PREVIEW_EXPRESSIONS
    settings.expression_index = 0


def chosen_expressions(settings: T2BS_PG_settings) -> list[str]:
    """Ticked acts in list order; the preview set when the list was never filled."""
    if len(settings.expressions) == 0:
        return list(PREVIEW_EXPRESSIONS)
    return [item.name.strip() for item in settings.expressions if item.enabled and item.name.strip()]


classes = (T2BS_PG_expression, T2BS_PG_settings)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    # Registered at runtime, so the API stubs do not know Scene.t2bs: set it through an untyped alias.
    scene: Any = bpy.types.Scene
    scene.t2bs = PointerProperty(type=T2BS_PG_settings)


def unregister() -> None:
    scene: Any = bpy.types.Scene
    del scene.t2bs
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
