"""Building a character in Blender from a bundle: mesh, material, shape keys, controls with drivers.

All bulk data goes through `foreach_set` with flat numpy arrays (a 50k-vertex head with 60 keys imports
in well under a second that way; per-element Python loops would take minutes). The pure reading and
checking of the bundle lives in `bundle.py`.

The character is two objects:
- the head mesh (custom properties `t2bs_bundle`, `t2bs_prompt`, `t2bs_role` = "head"), its shape keys
  named as the bundle names them, each driven by
- the "T2Bs Controls" empty, a child of the head, with one custom property per shape (0..1, eigen keys
  -3..3). Animators key those properties; the drivers move the keys. Importing the same bundle again
  rebuilds the mesh in place and keeps the controls object, its values and its animation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import bpy
import numpy as np

from .bundle import BundleData, load_bundle
from .names import EIGEN_REGION

CONTROLS_NAME = "T2Bs Controls"
ROLE = "t2bs_role"
BUNDLE_PROP = "t2bs_bundle"
PROMPT_PROP = "t2bs_prompt"
GROUPS_PROP = "_t2bs_groups"  # leading underscore: Blender's Custom Properties panel hides it
EIGEN_RANGE = 3.0
COLOR_ATTRIBUTE = "Color"
UV_MAP = "UVMap"


def find_character(bundle_root: str | Path) -> bpy.types.Object | None:
    """The head object imported from `bundle_root` before, if the file still has one."""
    wanted = str(Path(bundle_root).expanduser().resolve())
    for obj in bpy.data.objects:
        if obj.get(ROLE) == "head" and obj.get(BUNDLE_PROP) == wanted and obj.type == "MESH":
            return obj
    return None


def controls_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The controls object of a character, given its head, its controls, or None."""
    if obj is None:
        return None
    if obj.get(ROLE) == "controls":
        return obj
    for child in obj.children:
        if child.get(ROLE) == "controls":
            return child
    return None


def head_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The head of a character, given its head or its controls."""
    if obj is None:
        return None
    if obj.get(ROLE) == "head":
        return obj
    if obj.get(ROLE) == "controls" and obj.parent is not None and obj.parent.get(ROLE) == "head":
        return obj.parent
    return None


def has_property(owner: bpy.types.ID, name: str) -> bool:
    """`name in owner` for a custom property (fake-bpy-module's stubs lack bpy_struct.__contains__)."""
    properties: Any = owner
    return name in properties


def control_groups(controls: bpy.types.Object) -> dict[str, list[str]]:
    """{region: [property names]} as the import stored them, for the panel's grouped sliders."""
    try:
        groups = json.loads(str(controls.get(GROUPS_PROP, "{}")))
    except json.JSONDecodeError:
        return {}
    return {str(k): [str(n) for n in v if has_property(controls, n)] for k, v in groups.items() if isinstance(v, list)}


def import_bundle(
    root: str | Path,
    *,
    eigen_count: int | None = 10,
    collection: bpy.types.Collection | None = None,
) -> bpy.types.Object:
    """Import (or re-import) a bundle; returns the head object. Raises bundle.BundleError on bad input."""
    data = load_bundle(root, eigen_count=eigen_count)
    name = _character_name(data)
    mesh = build_mesh(name, data)
    mesh.materials.append(build_material(name, data))

    head = find_character(data.root)
    if head is None:
        head = bpy.data.objects.new(name, mesh)
        target = collection or bpy.context.scene.collection
        target.objects.link(head)
    else:
        old = head.data
        head.data = mesh  # the object keeps its transform, modifiers, parent and name
        if isinstance(old, bpy.types.Mesh) and old.users == 0:  # a head is always a mesh object
            bpy.data.meshes.remove(old)
    head[ROLE] = "head"
    head[BUNDLE_PROP] = str(data.root)
    head[PROMPT_PROP] = data.prompt or ""

    add_shape_keys(head, data)
    controls = ensure_controls(head, data)
    add_drivers(head, controls)
    return head


def _character_name(data: BundleData) -> str:
    return f"T2Bs {data.root.name}"[:63]


def build_mesh(name: str, data: BundleData) -> bpy.types.Mesh:
    """A triangle mesh with UVs and vertex colours from the bundle, smooth shaded."""
    mesh = bpy.data.meshes.new(name)
    vertex_count, face_count = data.vertex_count, int(data.faces.shape[0])
    mesh.vertices.add(vertex_count)
    mesh.vertices.foreach_set("co", data.vertices.reshape(-1))
    mesh.loops.add(3 * face_count)
    mesh.loops.foreach_set("vertex_index", data.faces.reshape(-1))
    mesh.polygons.add(face_count)
    # Triangles only: loop_start alone defines the polygons (loop_total is derived since Blender 4.0).
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * face_count, 3, dtype=np.int32))
    loop_uvs = data.loop_uvs()
    if loop_uvs is not None:
        layer = mesh.uv_layers.new(name=UV_MAP)
        layer.data.foreach_set("uv", loop_uvs.reshape(-1))
    if data.colors is not None:
        attribute = cast(
            bpy.types.ByteColorAttribute, mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
        )
        rgba = np.ones((vertex_count, 4), dtype=np.float32)
        rgba[:, :3] = data.colors.astype(np.float32) / 255.0
        # The bundle's colours are sRGB bytes; color_srgb stores them without a second transfer curve.
        attribute.data.foreach_set("color_srgb", rgba.reshape(-1))
        mesh.color_attributes.active_color = attribute
        mesh.color_attributes.render_color_index = cast(int, mesh.color_attributes.active_color_index)
    mesh.update()
    mesh.validate(clean_customdata=False)
    mesh.shade_smooth()
    return mesh


def build_material(name: str, data: BundleData) -> bpy.types.Material:
    """Principled BSDF fed by the texture, the vertex colours, or a plain skin tone."""
    material = bpy.data.materials.get(name) or bpy.data.materials.new(name)
    if material.node_tree is None:  # Blender 4.x; 5.0 always has a tree and deprecates use_nodes
        material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    output.location = (400, 0)
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (100, 0)
    bsdf.inputs["Roughness"].default_value = 0.6
    tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    if data.texture is not None and data.uv is not None:
        image = bpy.data.images.load(str(data.texture), check_existing=True)
        image.reload()  # a regenerated bundle rewrites texture.png under the same name
        texture = tree.nodes.new("ShaderNodeTexImage")
        texture.image = image
        texture.location = (-300, 0)
        tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    elif data.colors is not None:
        colors = tree.nodes.new("ShaderNodeVertexColor")
        colors.layer_name = COLOR_ATTRIBUTE
        colors.location = (-300, 0)
        tree.links.new(colors.outputs["Color"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (0.8, 0.6, 0.5, 1.0)
    return material


def add_shape_keys(head: bpy.types.Object, data: BundleData) -> None:
    """Basis plus one key per blendshape and eigen-expression, all at value 0."""
    head.shape_key_add(name="Basis", from_mix=False)
    keys: list[tuple[str, np.ndarray, float]] = [
        (name, data.shape_offsets[i], 0.0) for i, name in enumerate(data.shape_names)
    ]
    if data.eigen_offsets is not None:
        keys += [(name, data.eigen_offsets[i], -EIGEN_RANGE) for i, name in enumerate(data.eigen_names)]
    coords = np.empty_like(data.vertices)
    for name, offsets, low in keys:
        block = head.shape_key_add(name=name, from_mix=False)
        np.add(data.vertices, offsets, out=coords)
        block.data.foreach_set("co", coords.reshape(-1))
        block.slider_min = low
        block.slider_max = EIGEN_RANGE if low < 0 else 1.0
        block.value = 0.0  # Blender 5.0 creates new keys at 1.0


def ensure_controls(head: bpy.types.Object, data: BundleData) -> bpy.types.Object:
    """The character's controls empty with one property per key; existing values and animation stay."""
    controls = controls_of(head)
    if controls is None:
        controls = bpy.data.objects.new(CONTROLS_NAME, None)
        controls.empty_display_type = "PLAIN_AXES"
        for collection in head.users_collection:
            collection.objects.link(controls)
        controls.parent = head
        controls[ROLE] = "controls"
        # Beside the head's top, sized to it; placed once, so a re-import keeps where the user put it.
        low, high = data.vertices.min(axis=0), data.vertices.max(axis=0)
        size = float(max(high - low)) or 1.0
        controls.empty_display_size = 0.1 * size
        controls.location = (float(high[0]) + 0.2 * size, 0.0, float(high[2]))

    groups = {region: names for region, names in data.regions().items()}
    if data.eigen_names:
        groups[EIGEN_REGION] = list(data.eigen_names)
    wanted = {name: (0.0, 1.0) for name in data.shape_names}
    wanted.update({name: (-EIGEN_RANGE, EIGEN_RANGE) for name in data.eigen_names})
    # Properties of shapes the new bundle no longer has would drive nothing: drop them.
    for stale in [key for key in control_groups(controls).get("__all__", []) if key not in wanted]:
        if has_property(controls, stale):
            del controls[stale]
    for name, (low, high) in wanted.items():
        if not has_property(controls, name):
            controls[name] = 0.0
        ui: Any = controls.id_properties_ui(name)  # an IDPropertyUIManager (the stubs say None)
        ui.update(min=low, max=high, soft_min=low, soft_max=high, default=0.0, description=f"Drives shape key {name}")
    groups["__all__"] = list(wanted)
    controls[GROUPS_PROP] = json.dumps(groups)
    return controls


def add_drivers(head: bpy.types.Object, controls: bpy.types.Object) -> None:
    """Each shape key's value follows the controls property of the same name.

    AVERAGE of one SINGLE_PROP variable: no Python expression, so drivers work with auto-run scripts
    disabled and evaluate on Blender's fast path.
    """
    key = head.data.shape_keys
    if key is None:
        return
    key.animation_data_create()
    for block in key.key_blocks[1:]:
        if not has_property(controls, block.name):
            continue
        curve = block.driver_add("value")
        for modifier in list(curve.modifiers):  # a driver with no keyframes needs no generator
            curve.modifiers.remove(modifier)
        driver = curve.driver
        driver.type = "AVERAGE"
        variable = driver.variables.new()
        variable.name = "control"
        variable.type = "SINGLE_PROP"
        target = variable.targets[0]
        target.id_type = "OBJECT"
        target.id = controls
        target.data_path = f'["{block.name}"]'


def reset_expression(controls: bpy.types.Object) -> int:
    """Every control back to 0 (the neutral face); returns how many were reset."""
    names = control_groups(controls).get("__all__", [])
    for name in names:
        controls[name] = 0.0
    controls.update_tag()  # assigning ID properties from Python does not tag the depsgraph
    return len(names)


def _fcurves(owner: bpy.types.Object) -> Any:
    """The F-curves of `owner`'s action, whichever animation API this Blender has."""
    anim = owner.animation_data
    action = anim.action
    # Blender 4.4 brought layered actions (slots, channelbags) and 5.0 removed action.fcurves; 4.2 and 4.3 have
    # only action.fcurves. The 4.2 API stubs lack anim_utils.action_get_channelbag_for_slot, hence the ignore
    # (unused, and allowed to be, when checking against the 5.0 stubs).
    slot = getattr(anim, "action_slot", None) if bpy.app.version >= (4, 4, 0) else None
    if slot is not None:
        from bpy_extras import anim_utils

        channelbag = anim_utils.action_get_channelbag_for_slot(action, slot)  # type: ignore[attr-defined,unused-ignore]
        if channelbag is not None:
            return channelbag.fcurves
    return action.fcurves


def keyframe_curves(controls: bpy.types.Object, frames: np.ndarray, curves: dict[str, np.ndarray]) -> list[str]:
    """Key every control in `curves` at `frames` (linear), replacing its keys; returns the names keyed."""
    keyed: list[str] = []
    for name, values in curves.items():
        if not has_property(controls, name):
            continue
        path = f'["{name}"]'
        controls.keyframe_insert(path, frame=float(frames[0]))  # creates the action, slot and curve
        curve = _fcurves(controls).find(path)
        curve.keyframe_points.clear()
        curve.keyframe_points.add(len(frames))
        co = np.empty((len(frames), 2), dtype=np.float32)
        co[:, 0], co[:, 1] = frames, values
        curve.keyframe_points.foreach_set("co", co.reshape(-1))
        interpolation = cast(bpy.types.EnumProperty, bpy.types.Keyframe.bl_rna.properties["interpolation"])
        linear = interpolation.enum_items["LINEAR"].value
        curve.keyframe_points.foreach_set("interpolation", np.full(len(frames), linear, dtype=np.int32))
        curve.update()
        keyed.append(name)
    return keyed
