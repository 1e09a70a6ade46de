"""Add-on preferences: how to reach the backend and where files go."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from .setup_backend import default_package_spec, venv_python

# The add-on's package name (`bl_ext.<repo>.t2bs_blender` when installed as an extension).
PACKAGE = __package__ or "t2bs_blender"
DEFAULT_PACKAGE_SPEC = default_package_spec(Path(__file__).parent)


def user_dir(name: str) -> Path:
    """A folder of ours outside the extension's own folder (extensions must not write into themselves)."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, path=name, create=True))
    except ValueError:  # loaded as a legacy add-on (e.g. from a source checkout): fall back to Blender's user dir
        path = Path(bpy.utils.user_resource("DATAFILES", path=f"t2bs/{name}", create=True))
        return path


class T2BS_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    backend_mode: EnumProperty(  # type: ignore[valid-type]
        name="Backend",
        items=[
            ("SUBPROCESS", "Subprocess", "Run `t2bs serve` in a separate Python that has torch (recommended)"),
            ("IN_PROCESS", "In Blender", "Import t2bs and torch inside Blender's Python, run on a worker thread"),
        ],
        default="SUBPROCESS",
    )
    backend_python: StringProperty(  # type: ignore[valid-type]
        name="Backend Python",
        description="Python executable with the t2bs backend installed (empty: the one Set Up Backend made)",
        subtype="FILE_PATH",
        default=os.environ.get("T2BS_BACKEND_PYTHON", ""),
    )
    backend_package: StringProperty(  # type: ignore[valid-type]
        name="Backend Package",
        description="What Set Up Backend pip-installs: a name, a path to backend/, or a URL",
        default=DEFAULT_PACKAGE_SPEC,
    )
    pip_args: StringProperty(  # type: ignore[valid-type]
        name="Extra pip Arguments",
        description="E.g. --extra-index-url https://download.pytorch.org/whl/cu124 for a CUDA build of torch",
        default="",
    )
    device: EnumProperty(  # type: ignore[valid-type]
        name="Device",
        items=[("auto", "Auto", "CUDA when available"), ("cuda", "CUDA", ""), ("cpu", "CPU", "")],
        default="auto",
    )
    output_dir: StringProperty(  # type: ignore[valid-type]
        name="Output Folder", description="Where bundles are written (empty: the add-on's user folder)",
        subtype="DIR_PATH", default="",
    )  # fmt: skip
    cache_dir: StringProperty(  # type: ignore[valid-type]
        name="Model Cache", description="Hugging Face cache for downloaded weights (empty: the default)",
        subtype="DIR_PATH", default="",
    )  # fmt: skip
    asset_model: StringProperty(name="Asset Model", description="Hugging Face id or local folder", default="")  # type: ignore[valid-type]
    image_model: StringProperty(name="Image Model", description="Hugging Face id or local folder", default="")  # type: ignore[valid-type]
    video_model: StringProperty(name="Video Model", description="Hugging Face id or local folder", default="")  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "backend_mode")
        col = layout.column()
        col.active = self.backend_mode == "SUBPROCESS"
        col.prop(self, "backend_python")
        col.prop(self, "backend_package")
        col.prop(self, "pip_args")
        row = col.row()
        row.operator("t2bs.setup_backend", icon="CONSOLE")
        if not bpy.app.online_access:
            col.label(text="Set Up Backend downloads packages: allow online access (System > Network).", icon="INFO")
        layout.prop(self, "device")
        layout.prop(self, "output_dir")
        layout.prop(self, "cache_dir")
        box = layout.box()
        box.label(text="Models (empty: the backend's defaults)")
        box.prop(self, "asset_model")
        box.prop(self, "image_model")
        box.prop(self, "video_model")


def get() -> T2BS_AP_preferences:
    """This add-on's preferences."""
    return bpy.context.preferences.addons[PACKAGE].preferences  # type: ignore[return-value]


def backend_venv() -> Path:
    """Where Set Up Backend puts its virtual environment."""
    return user_dir("backend-venv")


def resolved_python(preferences: T2BS_AP_preferences) -> str:
    """The backend Python to start: the preference, else the venv Set Up Backend made, else ""."""
    if preferences.backend_python.strip():
        return bpy.path.abspath(preferences.backend_python.strip())
    made = venv_python(backend_venv())
    return str(made) if made.exists() else ""


def output_root(preferences: T2BS_AP_preferences) -> Path:
    if preferences.output_dir.strip():
        return Path(bpy.path.abspath(preferences.output_dir.strip()))
    return user_dir("bundles")


def register() -> None:
    bpy.utils.register_class(T2BS_AP_preferences)


def unregister() -> None:
    bpy.utils.unregister_class(T2BS_AP_preferences)
