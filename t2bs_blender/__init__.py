"""T2Bs for Blender: a text prompt becomes an animatable character head with ARKit-named shape keys.

The pure modules (`names`, `bundle`, `livelink`, `bridge`, `setup_backend`) import without bpy, so the
package itself must not import bpy at load time: Blender calls `register()`, which loads the rest.
"""

from __future__ import annotations

# Modules with bpy classes, in registration order (preferences first: operators read them).
_BPY_MODULES = ("prefs", "props", "operators", "panel")


def register() -> None:
    """Blender's entry point: register preferences, properties, operators and panels."""
    import importlib

    for name in _BPY_MODULES:
        importlib.import_module(f".{name}", __package__).register()


def unregister() -> None:
    """Stop the backend (disabling the add-on or quitting Blender) and unregister everything."""
    import importlib

    from .runtime import RUNTIME

    RUNTIME.shutdown()
    for name in reversed(_BPY_MODULES):
        importlib.import_module(f".{name}", __package__).unregister()
