"""The extension in a real Blender (the bpy wheel, headless): install from the built zip, import bundles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.addon.bundle_fixture import shape_offsets, sphere, write_bundle

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.timeout(120)


def coords(mesh: Any) -> np.ndarray:
    out = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", out)
    return out.reshape(-1, 3)


def evaluated_coords(obj: Any) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depsgraph.update()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        return coords(mesh)
    finally:
        evaluated.to_mesh_clear()


def import_op(root: Path, **kwargs: Any) -> Any:
    assert bpy.ops.t2bs.import_bundle(directory=str(root), **kwargs) == {"FINISHED"}
    return bpy.context.view_layer.objects.active


def test_installed_from_zip_into_isolated_user_folder(addon: Any, extension_zip: Path) -> None:
    import os

    assert addon.__name__ == "bl_ext.user_default.t2bs_blender"
    assert Path(addon.__file__).resolve().is_relative_to(Path(os.environ["BLENDER_USER_RESOURCES"]).resolve())
    assert "bl_ext.user_default.t2bs_blender" in bpy.context.preferences.addons
    for op in ("generate", "rig_selected", "cancel", "import_bundle", "reset_expression", "import_arkit_csv",
               "setup_backend"):  # fmt: skip
        assert hasattr(bpy.ops.t2bs, op), op
    assert hasattr(bpy.types.Scene, "t2bs")
    assert hasattr(bpy.types, "T2BS_PT_generate") and hasattr(bpy.types, "T2BS_PT_character")
    # The zip carries the backend's wheel, and Set Up Backend installs it by default.
    import zipfile

    wheels = [n for n in zipfile.ZipFile(extension_zip).namelist() if n.startswith("backend_dist/t2bs-")]
    assert len(wheels) == 1 and wheels[0].endswith("-py3-none-any.whl")
    preferences = bpy.context.preferences.addons["bl_ext.user_default.t2bs_blender"].preferences
    installed = Path(addon.__file__).parent / wheels[0]
    assert installed.is_file() and preferences.backend_package == f"{installed}[gen,landmarks]"


def test_import_builds_mesh_keys_controls_and_material(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "fox", shapes=5, pca=2, prompt="a friendly fox")
    head = import_op(root)
    assert head.type == "MESH" and head.name == "T2Bs fox"
    assert head["t2bs_bundle"] == str(root.resolve()) and head["t2bs_prompt"] == "a friendly fox"
    vertices, faces, _ = sphere(16, 24)
    mesh = head.data
    assert len(mesh.vertices) == len(vertices) and len(mesh.polygons) == len(faces)
    # File +y up / +z front -> Blender (x, -z, y), like glTF import.
    np.testing.assert_allclose(coords(mesh), np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], 1), atol=1e-6)
    assert mesh.uv_layers.active is not None and len(mesh.uv_layers.active.data) == 3 * len(faces)
    assert all(p.use_smooth for p in mesh.polygons)
    assert mesh.color_attributes.get("Color") is not None

    keys = mesh.shape_keys.key_blocks
    names, _, _ = shape_offsets(vertices, 5)
    assert [k.name for k in keys] == ["Basis", *names, "eigen000", "eigen001"]
    assert all(k.value == 0.0 for k in keys[1:])  # Blender 5.0 creates keys at 1.0: we set 0
    assert (keys["jawOpen"].slider_min, keys["jawOpen"].slider_max) == (0.0, 1.0)
    assert (keys["eigen000"].slider_min, keys["eigen000"].slider_max) == (-3.0, 3.0)

    controls = head.children[0]
    assert controls.name == "T2Bs Controls" and controls.type == "EMPTY"
    ui = controls.id_properties_ui("jawOpen").as_dict()
    assert (ui["min"], ui["max"], ui["default"]) == (0.0, 1.0, 0.0)
    assert controls.id_properties_ui("eigen001").as_dict()["min"] == -3.0
    drivers = {fc.data_path: fc for fc in mesh.shape_keys.animation_data.drivers}
    assert set(drivers) == {f'key_blocks["{k.name}"].value' for k in keys[1:]}
    variable = drivers['key_blocks["jawOpen"].value'].driver.variables[0]
    assert variable.targets[0].id == controls and variable.targets[0].data_path == '["jawOpen"]'

    groups = json.loads(controls["_t2bs_groups"])
    assert groups["mouth"] == ["jawOpen", "mouthSmileLeft", "mouthSmileRight"]
    assert groups["eyes"] == ["eyeBlinkLeft", "eyeBlinkRight"] and groups["eigen"] == ["eigen000", "eigen001"]

    material = mesh.materials[0]
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    link = bsdf.inputs["Base Color"].links[0]
    assert link.from_node.type == "VERTEX_COLOR" and link.from_node.layer_name == "Color"


def test_control_property_drives_the_mesh(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", shapes=3, pca=1)
    head = import_op(root)
    controls = head.children[0]
    rest = evaluated_coords(head)
    np.testing.assert_allclose(rest, coords(head.data), atol=1e-6)  # all keys at 0: the neutral

    vertices, _, _ = sphere(16, 24)
    _, _, offsets = shape_offsets(vertices, 3)
    controls["mouthSmileLeft"] = 0.5
    controls.update_tag()  # assigning an ID property from Python does not tag the depsgraph
    moved = evaluated_coords(head) - rest
    expected = 0.5 * np.stack([offsets[1][:, 0], -offsets[1][:, 2], offsets[1][:, 1]], 1)
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    assert head.data.shape_keys.key_blocks["mouthSmileLeft"].value == pytest.approx(0.5)

    controls["mouthSmileLeft"] = 0.0
    controls["eigen000"] = -2.0
    controls.update_tag()
    model = np.load(root / "model.npz")
    eigen = -2.0 * model["pca_basis"][0] * model["pca_stdev"][0]
    np.testing.assert_allclose(evaluated_coords(head) - rest, np.stack([eigen[:, 0], -eigen[:, 2], eigen[:, 1]], 1),
                               atol=1e-5)  # fmt: skip

    assert bpy.ops.t2bs.reset_expression() == {"FINISHED"}
    assert controls["eigen000"] == 0.0
    np.testing.assert_allclose(evaluated_coords(head), rest, atol=1e-6)


def test_axes_from_the_manifest(clean_scene: Any, tmp_path: Path) -> None:
    # Data already in Blender's frame (+z up, front -y) must come in unchanged.
    root = write_bundle(tmp_path / "zup", up_axis="+z", front_axis="-y", shapes=1, pca=0)
    head = import_op(root)
    vertices, _, _ = sphere(16, 24)
    np.testing.assert_allclose(coords(head.data), vertices, atol=1e-6)


def test_reimport_updates_the_character_and_keeps_the_controls(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "re", shapes=3, pca=0)
    head = import_op(root)
    head.location = (1.0, 2.0, 3.0)
    controls = head.children[0]
    controls["jawOpen"] = 0.25
    controls.location = (0.5, 0.0, 0.0)
    controls.keyframe_insert('["jawOpen"]', frame=1)
    old_mesh = head.data.name

    write_bundle(tmp_path / "re", shapes=5, pca=0)  # the bundle was regenerated with more shapes
    again = import_op(root)
    assert again == head and tuple(head.location) == (1.0, 2.0, 3.0)
    assert len(bpy.data.objects) == 2 and len(bpy.data.meshes) == 1  # no duplicate, old mesh freed
    assert head.data.name != old_mesh or len(bpy.data.meshes) == 1
    assert len(head.data.shape_keys.key_blocks) == 6
    assert head.children[0] == controls and controls["jawOpen"] == 0.25
    assert tuple(controls.location) == (0.5, 0.0, 0.0)
    assert controls.animation_data is not None and controls.animation_data.action is not None
    assert "eyeBlinkLeft" in controls

    write_bundle(tmp_path / "re", shapes=2, pca=0)
    import_op(root)
    assert "eyeBlinkLeft" not in controls and "mouthSmileLeft" in controls  # stale controls removed


def test_textured_bundle_uses_the_texture(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "tex", texture=True, shapes=1, pca=0)
    head = import_op(root)
    bsdf = next(n for n in head.data.materials[0].node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    node = bsdf.inputs["Base Color"].links[0].from_node
    assert node.type == "TEX_IMAGE" and Path(node.image.filepath).name == "texture.png"
    assert tuple(node.image.size) == (64, 64)
    assert head.data.color_attributes.get("Color") is None


@pytest.mark.parametrize(
    ("status", "overrides", "message"),
    [
        ("running", None, "not complete"),
        ("complete", {"faces": np.array([[0, 1, 99999]], dtype=np.int32)}, "outside"),
        ("complete", {"neutral": None}, "no 'neutral'"),
    ],
)
def test_bad_bundles_are_refused_with_one_clear_line(
    clean_scene: Any, tmp_path: Path, status: str, overrides: Any, message: str
) -> None:
    root = write_bundle(tmp_path / "bad", status=status, overrides=overrides)
    with pytest.raises(RuntimeError, match=message) as info:
        bpy.ops.t2bs.import_bundle(directory=str(root))
    assert "Traceback" not in str(info.value)
    assert not [o for o in bpy.data.objects if o.get("t2bs_role")]


def test_arkit_csv_keys_the_controls(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "csv", shapes=5, pca=0)
    head = import_op(root)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    rows = ["Timecode,BlendShapeCount,EyeBlinkLeft,JawOpen,MouthSmileLeft,HeadYaw"]
    for frame in range(60):  # one second at 60 fps timecode
        t = frame / 59
        rows.append(f"10:00:00:{frame:02d}.000,61,{t:.4f},{1 - t:.4f},0.5,0.1")
    csv_path = tmp_path / "take.csv"
    csv_path.write_text("\n".join(rows) + "\n")

    scene.frame_set(1)
    assert bpy.ops.t2bs.import_arkit_csv(filepath=str(csv_path), start_frame=1) == {"FINISHED"}
    controls = head.children[0]
    scene.frame_set(1)
    assert controls["jawOpen"] == pytest.approx(1.0, abs=1e-3)
    assert head.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(1.0, abs=1e-3)
    scene.frame_set(30)  # 29 scene frames at 30 fps = 0.967 s = timecode frame 58
    assert controls["eyeBlinkLeft"] == pytest.approx(58 / 59, abs=0.02)
    assert controls["mouthSmileLeft"] == pytest.approx(0.5)
    assert scene.frame_end >= 30


def test_render_shows_the_head(clean_scene: Any, tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "render", shapes=1, pca=0)
    head = import_op(root)
    scene = bpy.context.scene
    camera = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(camera)
    camera.location = (0.0, -0.6, 0.0)
    camera.rotation_euler = (np.pi / 2, 0.0, 0.0)  # looks along +Y, at the face (which looks toward -Y)
    scene.camera = camera
    light = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    light.data.energy = 3.0
    light.rotation_euler = (np.pi / 2, 0.0, 0.0)
    scene.collection.objects.link(light)
    world = scene.world or bpy.data.worlds.new("w")
    scene.world = world
    if world.node_tree is None:  # 4.x; 5.0 always has one and deprecates use_nodes
        world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    if background is not None:
        background.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.render.resolution_x = scene.render.resolution_y = 64
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    out = tmp_path / "render.png"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(out))
    pixels = np.array(image.pixels[:], dtype=np.float32).reshape(64, 64, 4)
    centre = pixels[24:40, 24:40, :3].mean()
    corner = pixels[:6, :6, :3].mean()
    assert centre > 0.1 and corner < 0.02, (centre, corner)
    # Warm vertex colours reached the render: red above blue in the middle.
    assert pixels[24:40, 24:40, 0].mean() > pixels[24:40, 24:40, 2].mean()
    assert head.name in scene.objects
