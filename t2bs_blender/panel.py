"""The "T2Bs" tab of the 3D View sidebar: generate, progress, and the active character's sliders."""

from __future__ import annotations

from typing import Any

import bpy

from .importer import control_groups, head_of
from .names import EIGEN_REGION
from .operators import active_controls
from .runtime import RUNTIME

REGION_LABELS = {
    "mouth": "Mouth",
    "eyes": "Eyes",
    "brows": "Brows",
    "cheeks": "Cheeks",
    "nose": "Nose",
    "other": "Other",
    EIGEN_REGION: "Eigen-Expressions",
}


class T2BS_UL_expressions(bpy.types.UIList):
    def draw_item(self, context: Any, layout: Any, data: Any, item: Any, icon: Any, active_data: Any,
                  active_property: Any, index: Any = 0, flt_flag: Any = 0) -> None:  # fmt: skip
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.prop(item, "name", text="", emboss=False)


class T2BS_PT_generate(bpy.types.Panel):
    bl_label = "Generate Character Head"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "T2Bs"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.t2bs
        layout.prop(settings, "prompt", text="")
        col = layout.column(align=True)
        col.prop(settings, "preset")
        col.prop(settings, "asset_provider")
        col.prop(settings, "video_provider")
        col.prop(settings, "seed")

        layout.label(text="Expressions")
        if len(settings.expressions) == 0:
            layout.operator("t2bs.expressions_defaults", text="Load Expression Library", icon="PRESET")
        else:
            row = layout.row()
            row.template_list("T2BS_UL_expressions", "", settings, "expressions", settings, "expression_index", rows=4)
            side = row.column(align=True)
            side.operator("t2bs.expression_add", text="", icon="ADD")
            side.operator("t2bs.expression_remove", text="", icon="REMOVE")
            side.operator("t2bs.expressions_defaults", text="", icon="FILE_REFRESH")

        row = layout.row(align=True)
        row.prop(settings, "import_eigen")
        sub = row.row(align=True)
        sub.active = settings.import_eigen
        sub.prop(settings, "eigen_count")

        job = RUNTIME.job
        layout.separator()
        if job.running:
            layout.progress(factor=job.overall, type="BAR", text=job.status_text() or "working")
            layout.operator("t2bs.cancel", icon="CANCEL", text="Cancelling..." if job.cancelling else "Cancel")
        else:
            layout.operator("t2bs.generate", icon="OUTLINER_OB_ARMATURE")
            layout.operator("t2bs.rig_selected", icon="MESH_DATA")
        layout.operator("t2bs.import_bundle", icon="IMPORT")
        if job.error:
            box = layout.box()
            box.alert = job.error_code not in ("cancelled",)
            for number, line in enumerate(wrap(job.error, 48)):
                box.label(text=line, icon="ERROR" if number == 0 else "BLANK1")
        elif not job.running and job.message and job.stage == "done":
            layout.label(text=job.message, icon="CHECKMARK")


class T2BS_PT_character(bpy.types.Panel):
    bl_label = "Character"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "T2Bs"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_controls(context) is not None

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        controls = active_controls(context)
        assert controls is not None
        head = head_of(controls)
        if head is not None and head.get("t2bs_prompt"):
            layout.label(text=str(head["t2bs_prompt"]), icon="TEXT")
        row = layout.row(align=True)
        row.operator("t2bs.reset_expression", icon="LOOP_BACK")
        row.operator("t2bs.import_arkit_csv", icon="ANIM")
        for region, names in control_groups(controls).items():
            if region == "__all__" or not names:
                continue
            box = layout.box()
            box.label(text=REGION_LABELS.get(region, region.title()))
            col = box.column(align=True)
            for name in names:
                col.prop(controls, f'["{name}"]', text=name, slider=True)


def wrap(text: str, width: int) -> list[str]:
    """Split a message into lines that fit the sidebar (labels do not wrap)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines or [""]


classes = (T2BS_UL_expressions, T2BS_PT_generate, T2BS_PT_character)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
