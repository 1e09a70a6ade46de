"""Panels and the Rig Selected Mesh operator, headless.

Panels cannot be drawn without a window, so their `draw` runs against a recording layout that checks
every property and operator it is given exists: a typo in a panel fails here, not in front of a user.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.addon.bundle_fixture import write_bundle

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.timeout(90)


class FakeLayout:
    """Stands in for UILayout: records calls, checks props and operators, returns itself for sub-layouts."""

    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        object.__setattr__(self, "calls", calls)

    def __setattr__(self, name: str, value: Any) -> None:  # active, alert, use_property_split ...
        self.calls.append(("set", name))

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        if name.startswith('["'):
            assert name[2:-2] in data, name
        else:
            assert name in data.bl_rna.properties, name
        self.calls.append(("prop", name))

    def operator(self, idname: str, **kwargs: Any) -> Any:
        category, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, category), name), idname
        self.calls.append(("operator", idname))
        return self

    def template_list(self, list_type: str, list_id: str, data: Any, collection: str, active_data: Any,
                      active_prop: str, **kwargs: Any) -> None:  # fmt: skip
        assert hasattr(bpy.types, list_type) and collection in data.bl_rna.properties
        assert active_prop in active_data.bl_rna.properties
        self.calls.append(("list", collection))

    def label(self, **kwargs: Any) -> None:
        self.calls.append(("label", kwargs.get("text", "")))

    def progress(self, **kwargs: Any) -> None:
        self.calls.append(("progress", kwargs.get("text", "")))

    def __getattr__(self, name: str) -> Any:  # row(), column(), box(), separator() ...
        return lambda *args, **kwargs: self


class FakePanel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.layout = FakeLayout(self.calls)


def draw(panel_type: Any) -> list[tuple[str, Any]]:
    panel = FakePanel()
    panel_type.draw(panel, bpy.context)
    return panel.calls


def test_generate_panel_draws_every_state(clean_scene: Any, addon: Any) -> None:
    settings = bpy.context.scene.t2bs
    settings.expressions.clear()
    calls = draw(bpy.types.T2BS_PT_generate)
    assert ("operator", "t2bs.expressions_defaults") in calls and ("operator", "t2bs.generate") in calls
    assert ("operator", "t2bs.rig_selected") in calls and ("operator", "t2bs.import_bundle") in calls
    bpy.ops.t2bs.expressions_defaults()
    assert ("list", "expressions") in draw(bpy.types.T2BS_PT_generate)

    job = addon.runtime.RUNTIME.job
    job.begin("b9")
    job.apply({"event": "progress", "id": "b9", "stage": "fit", "message": "step 3", "overall": 0.3, "eta_s": 61})
    calls = draw(bpy.types.T2BS_PT_generate)
    assert ("progress", "fit: step 3 (1:01 left)") in calls and ("operator", "t2bs.cancel") in calls
    job.apply({"event": "error", "id": "b9", "code": "internal", "message": "The backend broke " * 6})
    labels = [text for kind, text in draw(bpy.types.T2BS_PT_generate) if kind == "label"]
    assert sum("broke" in text for text in labels) >= 2  # the error is wrapped over several lines
    addon.runtime.RUNTIME.job = addon.bridge.JobState()


def test_character_panel_groups_the_sliders(clean_scene: Any, addon: Any, tmp_path: Path) -> None:
    assert not bpy.types.T2BS_PT_character.poll(bpy.context)
    bpy.ops.t2bs.import_bundle(directory=str(write_bundle(tmp_path / "p", shapes=6, pca=2)))
    assert bpy.types.T2BS_PT_character.poll(bpy.context)
    calls = draw(bpy.types.T2BS_PT_character)
    labels = [text for kind, text in calls if kind == "label"]
    assert labels[0] == "a friendly test head"
    assert labels[1:] == ["Mouth", "Eyes", "Brows", "Eigen-Expressions"]
    sliders = [name for kind, name in calls if kind == "prop"]
    assert sliders[0] == '["jawOpen"]' and sliders[-1] == '["eigen001"]' and len(sliders) == 8
    # Selecting the controls object instead of the head shows the same panel.
    controls = bpy.context.view_layer.objects.active.children[0]
    bpy.context.view_layer.objects.active = controls
    assert bpy.types.T2BS_PT_character.poll(bpy.context)


def test_preferences_draw(addon: Any) -> None:
    preferences = bpy.context.preferences.addons[addon.__name__].preferences
    calls = draw_prefs(preferences)
    assert ("operator", "t2bs.setup_backend") in calls
    assert any("allow online access" in text for kind, text in calls if kind == "label")


def draw_prefs(preferences: Any) -> list[tuple[str, Any]]:
    panel = FakePanel()
    type(preferences).draw(_PrefsProxy(preferences, panel.layout), bpy.context)
    return panel.calls


class _PrefsProxy:
    def __init__(self, preferences: Any, layout: FakeLayout) -> None:
        self._preferences, self.layout = preferences, layout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._preferences, name)

    def __contains__(self, name: str) -> bool:
        return name in self._preferences

    @property
    def bl_rna(self) -> Any:
        return self._preferences.bl_rna


def test_rig_selected_mesh_exports_the_mesh_and_starts_a_run(
    clean_scene: Any, addon: Any, backend_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.blender.conftest import backend_python

    preferences = bpy.context.preferences.addons[addon.__name__].preferences
    preferences.backend_python = backend_python() or ""
    preferences.output_dir = str(tmp_path / "out")
    mesh = bpy.data.meshes.new("rock")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], [], [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])
    obj = bpy.data.objects.new("rock", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.update()
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    runtime = addon.runtime.RUNTIME
    try:
        assert bpy.ops.t2bs.rig_selected() == {"FINISHED"}
        exported = list((tmp_path / "out").glob("*-input/asset.glb"))
        assert len(exported) == 1 and exported[0].read_bytes()[:4] == b"glTF"
        deadline = time.monotonic() + 30
        while runtime.tick() is not None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Until the backend has a `generate` pipeline the run is refused with a clear input error;
        # either way the asset reached the backend as `mesh:<path>`.
        assert runtime.job.error_code in ("", "input"), runtime.job.error
        manifest = next((tmp_path / "out").glob("*/manifest.json"), None)
        if manifest is not None:
            assert "mesh:" in json.dumps(json.loads(manifest.read_text()))
    finally:
        runtime.shutdown()
        runtime.job = addon.bridge.JobState()
