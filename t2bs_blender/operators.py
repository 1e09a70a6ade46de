"""Operators: thin wrappers over runtime, importer and livelink, which hold the logic (and are tested)."""

from __future__ import annotations

from typing import Any, Literal

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from . import prefs
from .bridge import BackendError
from .bundle import BundleError
from .importer import (
    controls_of,
    head_of,
    import_bundle,
    keyframe_curves,
    reset_expression,
)
from .livelink import TakeError, read_take
from .props import chosen_expressions, fill_default_expressions
from .runtime import RUNTIME, new_bundle_dir
from .setup_backend import SetupJob

# What execute/invoke return (the type fake-bpy-module declares for Operator's methods).
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def generate_args(context: bpy.types.Context, preferences: Any, asset: str | None = None) -> dict[str, Any]:
    """The `generate` pipeline's args from the panel and the preferences."""
    settings = context.scene.t2bs
    models = {
        key: value
        for key, value in (
            ("asset", preferences.asset_model),
            ("image", preferences.image_model),
            ("video", preferences.video_model),
        )
        if value.strip()
    }
    args: dict[str, Any] = {
        "prompt": settings.prompt.strip(),
        "preset": settings.preset,
        "asset": asset or settings.asset_provider,
        "video": settings.video_provider,
        "expressions": chosen_expressions(settings),
        "seed": settings.seed,
        "device": preferences.device,
        # Weights are downloaded only when Blender allows online access (DESIGN.md, "Models and weights").
        "allow_download": bool(bpy.app.online_access),
    }
    if models:
        args["models"] = models
    if preferences.cache_dir.strip():
        args["cache_dir"] = bpy.path.abspath(preferences.cache_dir.strip())
    return args


def import_options(context: bpy.types.Context) -> dict[str, Any]:
    settings = context.scene.t2bs
    return {"eigen_count": settings.eigen_count if settings.import_eigen else 0}


def active_controls(context: bpy.types.Context) -> bpy.types.Object | None:
    return controls_of(head_of(context.active_object) or context.active_object)


class T2BS_OT_generate(bpy.types.Operator):
    """Generate a character head from the prompt with the backend (runs in the background)"""

    bl_idname = "t2bs.generate"
    bl_label = "Generate Character Head"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not RUNTIME.job.running

    def execute(self, context: bpy.types.Context) -> Result:
        settings = context.scene.t2bs
        if not settings.prompt.strip():
            self.report({"ERROR"}, "Describe the character in the prompt first.")
            return {"CANCELLED"}
        if not chosen_expressions(settings):
            self.report({"ERROR"}, "Tick at least one expression to capture.")
            return {"CANCELLED"}
        preferences = prefs.get()
        out = new_bundle_dir(prefs.output_root(preferences), settings.prompt)
        try:
            args = generate_args(context, preferences)
            RUNTIME.start_run(preferences, "generate", args, out, **import_options(context))
        except BackendError as exc:
            RUNTIME.job.fail(str(exc))
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Generating into {out}")
        return {"FINISHED"}


class T2BS_OT_rig_selected(bpy.types.Operator):
    """Use the selected mesh as the static head and generate its blendshapes"""

    bl_idname = "t2bs.rig_selected"
    bl_label = "Rig Selected Mesh"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        obj = context.active_object
        return not RUNTIME.job.running and obj is not None and obj.type == "MESH"

    def execute(self, context: bpy.types.Context) -> Result:
        settings = context.scene.t2bs
        preferences = prefs.get()
        obj = context.active_object
        out = new_bundle_dir(prefs.output_root(preferences), settings.prompt or obj.name)
        source = out.parent / f"{out.name}-input" / "asset.glb"
        source.parent.mkdir(parents=True, exist_ok=True)
        # glTF is +Y up, face toward +Z: exactly the backend's normalised frame for a head facing -Y here.
        selected = [o for o in context.selected_objects]
        for other in selected:
            other.select_set(other == obj)
        obj.select_set(True)
        try:
            bpy.ops.export_scene.gltf(
                filepath=str(source), export_format="GLB", use_selection=True, export_apply=True,
                export_animations=False, export_morph=False, export_yup=True,
            )  # fmt: skip
        finally:
            for other in selected:
                other.select_set(True)
        args = generate_args(context, preferences, asset=f"mesh:{source}")
        try:
            RUNTIME.start_run(preferences, "generate", args, out, **import_options(context))
        except BackendError as exc:
            RUNTIME.job.fail(str(exc))
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class T2BS_OT_cancel(bpy.types.Operator):
    """Cancel the running generation (the bundle can be resumed later)"""

    bl_idname = "t2bs.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return RUNTIME.job.running

    def execute(self, context: bpy.types.Context) -> Result:
        RUNTIME.cancel()
        return {"FINISHED"}


class T2BS_OT_import_bundle(bpy.types.Operator):
    """Import a T2Bs bundle folder (re-importing updates the existing character)"""

    bl_idname = "t2bs.import_bundle"
    bl_label = "Import Bundle"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH")  # type: ignore[valid-type]
    eigen_count: IntProperty(name="Eigen-Expressions", default=-1, min=-1, max=100,  # type: ignore[valid-type]
                             description="-1: as the panel says; 0: none")  # fmt: skip

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        options = import_options(context)
        if self.eigen_count >= 0:
            options["eigen_count"] = self.eigen_count
        try:
            head = import_bundle(bpy.path.abspath(self.directory), **options)
        except BundleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        view_layer = context.view_layer
        if view_layer is not None:
            view_layer.update()  # a newly linked object joins the view layer's list only after a sync
            for obj in view_layer.objects:
                obj.select_set(False)
            if head.name in view_layer.objects:
                head.select_set(True)
                view_layer.objects.active = head
        self.report({"INFO"}, f"Imported {head.name}")
        return {"FINISHED"}


class T2BS_OT_reset_expression(bpy.types.Operator):
    """Set every expression control of the active character back to 0"""

    bl_idname = "t2bs.reset_expression"
    bl_label = "Reset Expression"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_controls(context) is not None

    def execute(self, context: bpy.types.Context) -> Result:
        controls = active_controls(context)
        assert controls is not None
        reset_expression(controls)
        return {"FINISHED"}


class T2BS_OT_import_arkit_csv(bpy.types.Operator):
    """Keyframe the character's controls from a Live Link Face (ARKit) CSV recording"""

    bl_idname = "t2bs.import_arkit_csv"
    bl_label = "Import ARKit CSV"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})  # type: ignore[valid-type]
    timecode_rate: FloatProperty(  # type: ignore[valid-type]
        name="Timecode Rate", default=0.0, min=0.0, max=240.0,
        description="Frames per second of the CSV's timecode (0: guess from the file)",
    )  # fmt: skip
    start_frame: IntProperty(name="Start Frame", default=-1, description="-1: the current frame")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_controls(context) is not None

    def invoke(self, context: bpy.types.Context, event: Any) -> Result:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        controls = active_controls(context)
        assert controls is not None
        from .importer import control_groups

        names = control_groups(controls).get("__all__", [])
        try:
            take = read_take(bpy.path.abspath(self.filepath), names, rate=self.timecode_rate or None)
        except TakeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        scene = context.scene
        fps = scene.render.fps / scene.render.fps_base
        start = scene.frame_current if self.start_frame < 0 else self.start_frame
        frames = take.frames(fps, start)
        keyed = keyframe_curves(controls, frames, take.curves)
        scene.frame_end = max(scene.frame_end, int(frames[-1] + 0.999))
        skipped = f"; {len(take.skipped)} columns without a shape key skipped" if take.skipped else ""
        self.report({"INFO"}, f"Keyed {len(keyed)} controls over {len(frames)} frames{skipped}")
        return {"FINISHED"}


class T2BS_OT_setup_backend(bpy.types.Operator):
    """Create a Python environment and pip-install the backend into it (downloads packages)"""

    bl_idname = "t2bs.setup_backend"
    bl_label = "Set Up Backend"

    def execute(self, context: bpy.types.Context) -> Result:
        if not bpy.app.online_access:
            self.report(
                {"ERROR"},
                "Set Up Backend downloads packages, but Blender is offline: enable "
                "Preferences > System > Network > Allow Online Access, or set the backend Python by hand.",
            )
            return {"CANCELLED"}
        preferences = prefs.get()
        job = SetupJob(prefs.backend_venv(), preferences.backend_package, preferences.pip_args)
        try:
            RUNTIME.start_setup(job)
        except BackendError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Setting up the backend in {job.venv}")
        return {"FINISHED"}


class T2BS_OT_expressions_defaults(bpy.types.Operator):
    """Fill the expression list with the backend's library (preview set ticked)"""

    bl_idname = "t2bs.expressions_defaults"
    bl_label = "Default Expressions"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> Result:
        fill_default_expressions(context.scene.t2bs)
        return {"FINISHED"}


class T2BS_OT_expression_add(bpy.types.Operator):
    """Add an expression (a library act name, camelCase)"""

    bl_idname = "t2bs.expression_add"
    bl_label = "Add Expression"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> Result:
        settings = context.scene.t2bs
        item = settings.expressions.add()
        item.name = "newExpression"
        settings.expression_index = len(settings.expressions) - 1
        return {"FINISHED"}


class T2BS_OT_expression_remove(bpy.types.Operator):
    """Remove the selected expression"""

    bl_idname = "t2bs.expression_remove"
    bl_label = "Remove Expression"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> Result:
        settings = context.scene.t2bs
        if 0 <= settings.expression_index < len(settings.expressions):
            settings.expressions.remove(settings.expression_index)
            settings.expression_index = max(0, settings.expression_index - 1)
        return {"FINISHED"}


def menu_import(self: Any, context: bpy.types.Context) -> None:
    self.layout.operator(T2BS_OT_import_bundle.bl_idname, text="T2Bs Bundle (folder)")


classes = (
    T2BS_OT_generate,
    T2BS_OT_rig_selected,
    T2BS_OT_cancel,
    T2BS_OT_import_bundle,
    T2BS_OT_reset_expression,
    T2BS_OT_import_arkit_csv,
    T2BS_OT_setup_backend,
    T2BS_OT_expressions_defaults,
    T2BS_OT_expression_add,
    T2BS_OT_expression_remove,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister() -> None:
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
