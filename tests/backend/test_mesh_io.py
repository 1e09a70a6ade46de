"""Tests for t2bs.mesh_io: every loader, the normalised frame, axis options, static.glb round trips
and every kind of bad input. Meshes are built in tmp_path with trimesh at test time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from t2bs.errors import InputError
from t2bs.mesh_io import (
    HeadMesh,
    axes_rotation,
    invert_similarity,
    load_head_mesh,
    load_static_glb,
    save_static_glb,
    transform_points,
)
from tests.conftest import ICT_HEAD

# -- test meshes -------------------------------------------------------------------------------------


def head_like(subdivisions: int = 2) -> trimesh.Trimesh:
    """An asymmetric blob in made-up source units: sizes 1.6 x 2.4 x 2.0, centred at (10, 5, -3),
    with a 'nose' toward +Z so that orientation mistakes show."""
    sphere = trimesh.creation.icosphere(subdivisions)
    vertices = sphere.vertices * [0.8, 1.2, 1.0]
    nose = (vertices[:, 2] > 0.8) & (np.abs(vertices[:, 0]) < 0.3)
    vertices[nose, 2] += 0.3
    vertices += [10.0, 5.0, -3.0]
    return trimesh.Trimesh(vertices, sphere.faces, process=False)


def texture_image(height: int = 16, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def expected_normalised(source: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
    """The documented frame computed independently: box centre at 0, largest side 1."""
    source = np.asarray(source, dtype=np.float64)
    low, high = source.min(axis=0), source.max(axis=0)
    result = (source - (low + high) / 2) / (high - low).max()
    return result if rotation is None else result @ rotation.T


def assert_normalised(mesh: HeadMesh) -> None:
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    np.testing.assert_allclose((low + high) / 2, 0.0, atol=1e-6)
    assert abs(float((high - low).max()) - 1.0) < 1e-6


def assert_one_line_naming(error: pytest.ExceptionInfo[InputError], path: Path) -> str:
    message = str(error.value)
    assert str(path) in message, message
    assert "\n" not in message and message.endswith("."), message
    assert "Traceback" not in message
    return message


def write_seamed_obj(folder: Path, with_texture: bool = True) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """An OBJ cube whose 8 positions are shared but whose UVs differ per face (a seam on every edge),
    with vn indices as Blender writes them. Returns (path, corner positions [F,3,3], corner UVs
    [F,3,2], texture)."""
    box = trimesh.creation.box(extents=(2.0, 3.0, 1.0))
    rng = np.random.default_rng(1)
    corner_uv = rng.uniform(0.05, 0.95, (len(box.faces), 3, 2))
    texture = texture_image(8, 8, seed=2)
    lines = ["# seamed cube", "mtllib cube.mtl", "o Cube"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in box.vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in corner_uv.reshape(-1, 2)]
    lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in box.face_normals]
    lines += ["usemtl skin", "s 0"]
    for face_index, face in enumerate(box.faces):
        corners = [f"{v + 1}/{face_index * 3 + k + 1}/{face_index + 1}" for k, v in enumerate(face)]
        lines.append("f " + " ".join(corners))
    path = folder / "cube.obj"
    path.write_text("\n".join(lines) + "\n")
    material = "newmtl skin\nKd 1.0 1.0 1.0\n" + ("map_Kd skin.png\n" if with_texture else "")
    (folder / "cube.mtl").write_text(material)
    Image.fromarray(texture).save(folder / "skin.png")
    return path, box.vertices[box.faces], corner_uv, texture


def corner_table(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> set[tuple[float, ...]]:
    """Every triangle as a rounded tuple of its corners' positions and UVs (order-free comparison)."""
    rows = np.concatenate([vertices[faces], uv[faces]], axis=2).reshape(len(faces), -1)
    return {tuple(row) for row in np.round(rows, 4)}


# -- loaders ------------------------------------------------------------------------------------------


def test_obj_splits_at_uv_seams_only_and_keeps_the_texture(tmp_path: Path) -> None:
    path, corner_positions, corner_uv, texture = write_seamed_obj(tmp_path)
    mesh = load_head_mesh(path)
    # 12 triangles with their own UV corners: one vertex per distinct (v, vt) pair, 36 here;
    # vn indices (one per triangle) must not split anything further.
    assert mesh.vertex_count == 36 and mesh.face_count == 12
    assert mesh.texture is not None and np.array_equal(mesh.texture, texture)
    assert mesh.uv is not None and mesh.vertex_colors is None
    assert_normalised(mesh)
    source = mesh.source_vertices()
    expected = {
        tuple(row) for row in np.round(np.concatenate([corner_positions, corner_uv], axis=2).reshape(12, -1), 4)
    }
    assert corner_table(source, mesh.faces, mesh.uv) == expected
    # Seam copies follow the order of the `v` lines.
    box = trimesh.creation.box(extents=(2.0, 3.0, 1.0))
    order = [int(np.argmin(np.linalg.norm(box.vertices - p, axis=1))) for p in source]
    assert order == sorted(order)


def test_obj_without_uv_keeps_vertex_order(tmp_path: Path) -> None:
    shape = head_like()
    path = tmp_path / "plain.obj"
    lines = [f"v {x:.7f} {y:.7f} {z:.7f}" for x, y, z in shape.vertices]
    lines += ["vn 0 0 1"]
    lines += [f"f {a + 1}//1 {b + 1}//1 {c + 1}//1" for a, b, c in shape.faces]
    path.write_text("\n".join(lines) + "\n")
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(shape.vertices)
    np.testing.assert_array_equal(mesh.faces, shape.faces)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)
    np.testing.assert_allclose(mesh.vertices, expected_normalised(shape.vertices), atol=1e-6)
    assert mesh.uv is None and mesh.texture is None and mesh.vertex_colors is None
    assert mesh.source == str(path.resolve())


def test_obj_exported_by_trimesh_with_texture(tmp_path: Path) -> None:
    shape = head_like()
    uv = np.random.default_rng(3).uniform(0, 1, (len(shape.vertices), 2))
    texture = texture_image()
    shape.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texture))
    path = tmp_path / "head.obj"
    shape.export(path)
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(shape.vertices)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)
    np.testing.assert_allclose(mesh.uv, uv, atol=1e-6)
    assert mesh.texture is not None and np.array_equal(mesh.texture, texture)


def test_obj_with_missing_texture_file_still_loads(tmp_path: Path) -> None:
    path, _, _, _ = write_seamed_obj(tmp_path)
    (tmp_path / "skin.png").unlink()
    mesh = load_head_mesh(path)
    assert mesh.texture is None and mesh.face_count == 12


def test_glb_textured_keeps_order_uv_and_texture(tmp_path: Path) -> None:
    shape = head_like()
    uv = np.random.default_rng(4).uniform(0, 1, (len(shape.vertices), 2))
    texture = texture_image()
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture))
    shape.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    path = tmp_path / "head.glb"
    shape.export(path)
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(shape.vertices)
    np.testing.assert_array_equal(mesh.faces, shape.faces)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)
    np.testing.assert_allclose(mesh.vertices, expected_normalised(shape.vertices), atol=1e-6)
    np.testing.assert_allclose(mesh.uv, uv, atol=1e-6)
    assert np.array_equal(mesh.texture, texture)
    assert mesh.vertex_colors is None
    assert_normalised(mesh)


def test_glb_base_color_factor_is_baked_into_the_texture(tmp_path: Path) -> None:
    shape = head_like(1)
    uv = np.random.default_rng(5).uniform(0, 1, (len(shape.vertices), 2))
    texture = texture_image()
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(texture), baseColorFactor=[1.0, 0.5, 0.0, 1.0]
    )
    shape.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    path = tmp_path / "tinted.glb"
    shape.export(path)
    mesh = load_head_mesh(path)
    assert mesh.texture is not None
    np.testing.assert_array_equal(mesh.texture[..., 0], texture[..., 0])
    assert np.abs(mesh.texture[..., 1].astype(int) - texture[..., 1].astype(float) * 128 / 255).max() <= 1
    assert not mesh.texture[..., 2].any()


def test_glb_vertex_coloured(tmp_path: Path) -> None:
    shape = head_like()
    colors = np.random.default_rng(6).integers(0, 256, (len(shape.vertices), 3), dtype=np.uint8)
    shape.visual = trimesh.visual.ColorVisuals(vertex_colors=colors)
    path = tmp_path / "coloured.glb"
    shape.export(path)
    mesh = load_head_mesh(path)
    assert mesh.uv is None and mesh.texture is None
    assert mesh.vertex_colors is not None and np.array_equal(mesh.vertex_colors, colors)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)


def test_gltf_with_separate_buffer_and_texture(tmp_path: Path) -> None:
    shape = head_like()
    uv = np.random.default_rng(7).uniform(0, 1, (len(shape.vertices), 2))
    texture = texture_image(seed=8)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture))
    shape.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(shape))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = tmp_path / "model.gltf"
    assert path.exists() and len(files) > 1  # the .bin (and image) sit beside it
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(shape.vertices)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)
    assert np.array_equal(mesh.texture, texture)


def test_ply_with_vertex_colours(tmp_path: Path) -> None:
    shape = head_like()
    colors = np.random.default_rng(9).integers(0, 256, (len(shape.vertices), 3), dtype=np.uint8)
    shape.visual = trimesh.visual.ColorVisuals(vertex_colors=colors)
    path = tmp_path / "head.ply"
    shape.export(path)
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(shape.vertices)
    np.testing.assert_array_equal(mesh.faces, shape.faces)
    assert np.array_equal(mesh.vertex_colors, colors)
    np.testing.assert_allclose(mesh.source_vertices(), shape.vertices, atol=1e-5)
    assert_normalised(mesh)


def two_part_scene() -> tuple[trimesh.Scene, np.ndarray]:
    """Two meshes under nodes with rotation + translation; returns the scene and the expected world
    positions of all their vertices."""
    head = head_like(1)
    eye = trimesh.creation.icosphere(1, radius=0.2)
    turn = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    turn[:3, 3] = [10.5, 5.5, -2.2]
    lift = trimesh.transformations.translation_matrix([0.0, 3.0, 0.0])
    scene = trimesh.Scene()
    scene.add_geometry(head, node_name="head", geom_name="head", transform=lift)
    scene.add_geometry(eye, node_name="eye", geom_name="eye", transform=turn)
    world = np.concatenate([transform_points(lift, head.vertices), transform_points(turn, eye.vertices)])
    return scene, world


def assert_same_point_sets(found: np.ndarray, expected: np.ndarray, atol: float) -> None:
    """Both ways nearest-neighbour match: the scene's node order is trimesh's, not ours to fix."""
    assert len(found) == len(expected)
    assert cKDTree(expected).query(found)[0].max() < atol
    assert cKDTree(found).query(expected)[0].max() < atol


def test_glb_scene_is_flattened_with_node_transforms(tmp_path: Path) -> None:
    scene, world = two_part_scene()
    path = tmp_path / "scene.glb"
    scene.export(path)
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == len(world)
    assert_same_point_sets(mesh.source_vertices(), world, atol=1e-5)
    assert_normalised(mesh)
    assert mesh.face_count == sum(len(g.faces) for g in scene.geometry.values())


def test_glb_scene_mixing_texture_and_colours_becomes_vertex_coloured(tmp_path: Path) -> None:
    scene, _ = two_part_scene()
    head, eye = scene.geometry["head"], scene.geometry["eye"]
    head.visual = trimesh.visual.TextureVisuals(
        uv=np.full((len(head.vertices), 2), 0.5),
        material=trimesh.visual.material.PBRMaterial(
            baseColorTexture=Image.fromarray(np.full((4, 4, 3), (200, 10, 10), dtype=np.uint8))
        ),
    )
    eye.visual = trimesh.visual.ColorVisuals(
        vertex_colors=np.tile([[10, 20, 250, 255]], (len(eye.vertices), 1)).astype(np.uint8)
    )
    path = tmp_path / "mixed.glb"
    scene.export(path)
    mesh = load_head_mesh(path)
    assert mesh.texture is None and mesh.uv is None and mesh.vertex_colors is not None
    rows = {tuple(int(c) for c in row) for row in mesh.vertex_colors}
    assert rows == {(200, 10, 10), (10, 20, 250)}


def test_glb_scene_with_two_textures_gets_one_atlas(tmp_path: Path) -> None:
    scene, _ = two_part_scene()
    for index, geometry in enumerate(scene.geometry.values()):
        geometry.visual = trimesh.visual.TextureVisuals(
            uv=np.random.default_rng(index).uniform(0, 1, (len(geometry.vertices), 2)),
            material=trimesh.visual.material.PBRMaterial(
                baseColorTexture=Image.fromarray(texture_image(8, 8, seed=index))
            ),
        )
    path = tmp_path / "two_textures.glb"
    scene.export(path)
    mesh = load_head_mesh(path)
    assert mesh.texture is not None and mesh.uv is not None
    assert mesh.uv.shape == (mesh.vertex_count, 2)


# -- normalisation and axes -----------------------------------------------------------------------------


def test_z_up_file_is_turned_to_y_up(tmp_path: Path) -> None:
    shape = head_like()
    reference_path = tmp_path / "y_up.ply"
    shape.export(reference_path)
    # Blender's own axes: what is +Y (up) in glTF is +Z there, and the face (+Z) looks along -Y.
    to_blender = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    blender = trimesh.Trimesh(shape.vertices @ to_blender.T, shape.faces, process=False)
    blender_path = tmp_path / "z_up.ply"
    blender.export(blender_path)

    reference = load_head_mesh(reference_path)
    turned = load_head_mesh(blender_path, up="+z", front="-y")
    np.testing.assert_allclose(turned.vertices, reference.vertices, atol=1e-6)
    np.testing.assert_allclose(turned.source_vertices(), blender.vertices, atol=1e-5)
    # The nose (largest +Z in the normalised frame) is where it was.
    assert int(np.argmax(turned.vertices[:, 2])) == int(np.argmax(shape.vertices[:, 2]))
    # Read with the wrong axes it is not the same head.
    assert not np.allclose(load_head_mesh(blender_path).vertices, reference.vertices, atol=1e-3)


@pytest.mark.parametrize(
    ("up", "front"),
    [("+x", "+y"), ("-y", "+x"), ("+z", "-y"), ("Y", "Z"), ("-x", "-z")],
)
def test_every_orthogonal_axis_pair_is_a_rotation(up: str, front: str) -> None:
    rotation = axes_rotation(up, front)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)


@pytest.mark.parametrize(("up", "front"), [("+y", "-y"), ("+z", "+z"), ("+q", "+z"), ("up", "+z"), ("", "+z")])
def test_bad_axis_pairs_are_input_errors(tmp_path: Path, up: str, front: str) -> None:
    path = tmp_path / "head.ply"
    head_like(1).export(path)
    with pytest.raises(InputError) as error:
        load_head_mesh(path, up=up, front=front)
    assert "\n" not in str(error.value) and "axis" in str(error.value)


def test_point_helpers_are_inverse_and_keep_shape(tmp_path: Path) -> None:
    path = tmp_path / "head.ply"
    head_like(1).export(path)
    mesh = load_head_mesh(path, up="-x", front="+y")
    points = np.random.default_rng(10).normal(size=(4, 5, 3))
    there = mesh.to_source_points(points)
    assert there.shape == points.shape
    np.testing.assert_allclose(mesh.from_source_points(there), points, atol=1e-12)
    np.testing.assert_allclose(invert_similarity(invert_similarity(mesh.to_source)), mesh.to_source)
    assert mesh.diagonal == pytest.approx(
        float(np.linalg.norm(mesh.vertices.max(0).astype(float) - mesh.vertices.min(0)))
    )
    assert 1.0 <= mesh.diagonal <= np.sqrt(3) + 1e-6
    assert mesh.source_scale == pytest.approx(2.4 * 1.0, rel=0.05)


# -- static.glb round trips ---------------------------------------------------------------------------------


def assert_same_mesh(a: HeadMesh, b: HeadMesh) -> None:
    assert a.vertex_count == b.vertex_count and a.face_count == b.face_count
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    np.testing.assert_array_equal(a.faces, b.faces)
    for name in ("uv",):
        first, second = getattr(a, name), getattr(b, name)
        assert (first is None) == (second is None)
        if first is not None:
            np.testing.assert_allclose(first, second, atol=1e-6)
    for name in ("texture", "vertex_colors"):
        first, second = getattr(a, name), getattr(b, name)
        assert (first is None) == (second is None), name
        if first is not None:
            np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(a.to_source, b.to_source)


def static_round_trip(mesh: HeadMesh, folder: Path) -> HeadMesh:
    target = folder / "asset" / "static.glb"
    target.parent.mkdir(parents=True, exist_ok=True)
    save_static_glb(mesh, target)
    assert [p.name for p in target.parent.iterdir()] == ["static.glb"]  # no temp file left behind
    return load_static_glb(target, mesh.to_source, source=mesh.source)


def test_static_glb_round_trip_textured_seamed_obj(tmp_path: Path) -> None:
    path, _, _, _ = write_seamed_obj(tmp_path)
    mesh = load_head_mesh(path)
    back = static_round_trip(mesh, tmp_path / "out")
    assert_same_mesh(mesh, back)
    assert back.source == mesh.source


def test_static_glb_round_trip_vertex_colours(tmp_path: Path) -> None:
    shape = head_like()
    shape.visual = trimesh.visual.ColorVisuals(
        vertex_colors=np.random.default_rng(11).integers(0, 256, (len(shape.vertices), 3), dtype=np.uint8)
    )
    path = tmp_path / "head.ply"
    shape.export(path)
    mesh = load_head_mesh(path, up="+z", front="-y")
    assert_same_mesh(mesh, static_round_trip(mesh, tmp_path / "out"))


def test_static_glb_round_trip_texture_and_colours_and_plain(tmp_path: Path) -> None:
    shape = head_like()
    count = len(shape.vertices)
    rng = np.random.default_rng(12)
    both = HeadMesh(
        vertices=expected_normalised(shape.vertices),
        faces=shape.faces,
        uv=rng.uniform(0, 1, (count, 2)),
        texture=texture_image(),
        vertex_colors=rng.integers(0, 256, (count, 3), dtype=np.uint8),
        to_source=np.diag([2.0, 2.0, 2.0, 1.0]),
        source="made up",
    )
    assert_same_mesh(both, static_round_trip(both, tmp_path / "both"))
    uv_only = HeadMesh(both.vertices, both.faces, uv=both.uv, source="uv only")
    assert_same_mesh(uv_only, static_round_trip(uv_only, tmp_path / "uv"))
    plain = HeadMesh(both.vertices, both.faces, source="plain")
    assert_same_mesh(plain, static_round_trip(plain, tmp_path / "plain"))


def test_static_glb_keeps_unused_and_duplicate_vertices(tmp_path: Path) -> None:
    # trimesh would merge these with process=True; the bundle's topology must not change.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [0.5, 0.5, 0.5]], dtype=np.float32)
    faces = np.array([[0, 1, 2], [3, 2, 1]])
    mesh = HeadMesh(vertices, faces, source="dupes")
    back = static_round_trip(mesh, tmp_path)
    assert_same_mesh(mesh, back)


# -- the ICT head -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ict() -> dict[str, np.ndarray]:
    if not ICT_HEAD.is_file():
        pytest.skip(f"the ICT head fixture {ICT_HEAD} is not on this machine")
    with np.load(ICT_HEAD) as data:
        return {"neutral": data["neutral"], "faces": data["faces"]}


@pytest.mark.parametrize("extension", [".ply", ".obj"])
def test_ict_head_loads_in_centimetres(tmp_path: Path, ict: dict[str, np.ndarray], extension: str) -> None:
    neutral, faces = ict["neutral"], ict["faces"]
    path = tmp_path / f"ict{extension}"
    trimesh.Trimesh(neutral, faces, process=False).export(path)
    mesh = load_head_mesh(path)
    assert mesh.vertex_count == 24591 and mesh.face_count == 48836
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_allclose(mesh.source_vertices(), neutral, atol=1e-4)
    assert_normalised(mesh)
    # The head is taller than wide or deep, so Y spans the unit; the face is toward +Z.
    extent = mesh.vertices.max(0) - mesh.vertices.min(0)
    assert extent[1] == pytest.approx(1.0, abs=1e-6) and extent[0] < 1 and extent[2] < 1
    assert mesh.source_scale == pytest.approx(float((neutral.max(0) - neutral.min(0)).max()), rel=1e-6)
    back = static_round_trip(mesh, tmp_path / "out")
    assert_same_mesh(mesh, back)


# -- bad input ------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.obj"
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "does not exist" in assert_one_line_naming(error, path)


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "folder.glb"
    path.mkdir()
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "folder" in assert_one_line_naming(error, path)


@pytest.mark.parametrize("name", ["empty.obj", "empty.glb", "empty.ply", "empty.gltf"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.touch()
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "empty (0 bytes)" in assert_one_line_naming(error, path)


@pytest.mark.parametrize("name", ["head.stl", "head.fbx", "head"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("solid x\nendsolid x\n")
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    message = assert_one_line_naming(error, path)
    assert ".obj, .glb, .gltf, .ply" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("random.glb", bytes(range(256)) * 8),
        ("truncated.glb", b"glTF\x02\x00\x00\x00\xff\xff\x00\x00JSON"),
        (
            "garbage.ply",
            b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nend_header\n\x00\x01",
        ),
        ("noheader.ply", b"this is not a ply file at all\n"),
        ("broken.gltf", b'{"asset": {"version": "2.0"}, "meshes": [ {"primitives": [{"attributes": '),
        (
            "badbuffer.gltf",
            b'{"asset": {"version": "2.0"}, "buffers": [{"uri": "missing.bin", "byteLength": 36}],'
            b' "bufferViews": [{"buffer": 0, "byteLength": 36}], "accessors": [{"bufferView": 0,'
            b' "componentType": 5126, "count": 3, "type": "VEC3"}], "meshes": [{"primitives":'
            b' [{"attributes": {"POSITION": 0}}]}], "nodes": [{"mesh": 0}],'
            b' "scenes": [{"nodes": [0]}]}',
        ),
        ("binary.obj", bytes(range(256)) * 8),
        ("badindex.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
    ],
)
def test_corrupt_files(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert_one_line_naming(error, path)


def test_ply_point_cloud_holds_no_triangles(tmp_path: Path) -> None:
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.random.default_rng(13).normal(size=(50, 3))).export(path)
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "holds no triangles" in assert_one_line_naming(error, path)


def test_obj_with_only_vertices_holds_no_triangles(tmp_path: Path) -> None:
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "holds no triangles" in assert_one_line_naming(error, path)


def test_glb_with_only_points_holds_no_triangles(tmp_path: Path) -> None:
    path = tmp_path / "points.glb"
    trimesh.Scene(trimesh.PointCloud(np.random.default_rng(14).normal(size=(20, 3)))).export(path)
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "holds no triangles" in assert_one_line_naming(error, path)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_coordinates(tmp_path: Path, bad: str) -> None:
    path = tmp_path / f"{bad}.obj"
    path.write_text(f"v 0 0 0\nv 1 0 0\nv 0 1 {bad}\nv {bad} {bad} 0\nf 1 2 3\nf 1 3 4\n")
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "has 2 vertices with non-finite coordinates" in assert_one_line_naming(error, path)


def test_non_finite_coordinates_in_ply(tmp_path: Path) -> None:
    shape = head_like(1)
    vertices = shape.vertices.copy()
    vertices[[3, 7, 9]] = np.nan
    path = tmp_path / "nan.ply"
    trimesh.Trimesh(vertices, shape.faces, process=False).export(path)
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "has 3 vertices with non-finite" in assert_one_line_naming(error, path)


def test_all_vertices_at_one_point(tmp_path: Path) -> None:
    path = tmp_path / "point.obj"
    path.write_text("v 2 3 4\nv 2 3 4\nv 2 3 4\nf 1 2 3\n")
    with pytest.raises(InputError) as error:
        load_head_mesh(path)
    assert "one point" in assert_one_line_naming(error, path)


def test_bad_static_glb_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "static.glb"
    path.write_bytes(b"not a glb")
    with pytest.raises(InputError) as error:
        load_static_glb(path, np.eye(4))
    assert_one_line_naming(error, path)


def test_mirroring_node_keeps_triangles_facing_out(tmp_path: Path) -> None:
    ball = trimesh.creation.icosphere(2)
    scene = trimesh.Scene()
    scene.add_geometry(ball, node_name="mirrored", transform=np.diag([-1.0, 1.0, 1.0, 1.0]))
    path = tmp_path / "mirrored.glb"
    scene.export(path)
    mesh = load_head_mesh(path)
    loaded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    outward = np.einsum("ij,ij->i", loaded.triangles_center, loaded.face_normals)
    assert (outward > 0).all()


def test_obj_quads_and_ngons_from_blender_are_triangulated(tmp_path: Path) -> None:
    # A Blender-style export: quads and a pentagon, v/vt/vn corners, smoothing and object lines.
    text = """# Blender 4.2
o Plane
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 2 0 0
v 2 1 0
v 1.5 1.5 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vt 0.5 0.5
vn 0 0 1
s 1
f 1/1/1 2/2/1 3/3/1 4/4/1
f 2/1/1 5/2/1 6/3/1 7/5/1 3/4/1
"""
    path = tmp_path / "quads.obj"
    path.write_text(text)
    mesh = load_head_mesh(path)
    assert mesh.face_count == 2 + 3
    # (v, vt) pairs: 1/1 2/2 3/3 4/4 2/1 5/2 6/3 7/5 3/4 -> 9 vertices, positions 2 and 3 split.
    assert mesh.vertex_count == 9
    area = trimesh.Trimesh(mesh.source_vertices(), mesh.faces, process=False).area
    assert area == pytest.approx(1.0 + 1.25, abs=1e-5)  # the square and the pentagon
