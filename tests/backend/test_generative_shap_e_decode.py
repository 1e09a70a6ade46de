"""Shap-E's real mesh decode (`ShapERenderer.decode_to_mesh`) end to end on the CPU, with no weights.

diffusers' `MeshDecoder` runs marching cubes from two lookup buffers, `cases` [256, 5, 3] and `masks`
[256, 5], that only the real checkpoint fills: a fresh renderer holds zeros and finds no triangles. This
file derives a marching-cubes table in diffusers' layout, checks it on analytic and random fields, then
puts it into the tiny Shap-E pipeline of `test_generative_providers` whose renderer is set by hand to a
known signed distance field (an ellipsoid) and colour field, and runs the provider's real path.

diffusers' layout (`MeshDecoder.forward` and `_create_flat_edge_indices` in pipelines/shap_e/renderer.py):
- corner (dx, dy, dz) of a cube, each 0 or 1, is bit dx + 2 dy + 4 dz of the cube's case number; the bit
  is set where the field is > 0, the inside (the renderer's SDF is positive inside);
- edge e of a cube runs along axis e // 4, at the other two coordinates (lower axis first) given by the
  bits of e % 4: 0-3 along x at (y, z) = (0, 0), (1, 0), (0, 1), (1, 1); 4-7 along y at (x, z); 8-11
  along z at (x, y); a triangle's vertices are the field's zero crossings on three edges;
- `cases[c, j]` is triangle j of case c as three edge numbers, used where `masks[c, j]`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import torch
import trimesh
from test_generative_providers import save_tiny_shap_e

from t2bs.mesh_io import transform_points
from t2bs.progress import ProgressEvent
from t2bs.runner import Runner
from t2bs.stages.asset import AssetStage, load_asset

# -- the marching-cubes table, derived ----------------------------------------------------------------
#
# Each cube face gets the segments of the zero contour that cross it, from its four corner signs only,
# so two cubes sharing a face agree on it and the surface is closed. A face with two diagonal inside
# corners (the ambiguous face) cuts each inside corner off on its own. Every crossed edge is the end of
# exactly two segments (it lies on two faces), so the segments join into closed loops, each a polygon
# that is cut into a fan of triangles.
#
# Orientation: on a face with outward normal n, a segment whose surface normal points along t within the
# face (from the inside corners it cuts off towards the outside) runs along t x n. Every loop then turns
# counter-clockwise seen from the outside, and so do its fan triangles: normals point out of the shape
# (the right-hand rule, trimesh's convention; the tests check volume > 0).

CORNERS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=np.float64)


def edge_number(a: int, b: int) -> int:
    """diffusers' number of the cube edge between corners `a` and `b` (which differ in one coordinate)."""
    axis = int(np.flatnonzero(CORNERS[a] != CORNERS[b])[0])
    u, v = (i for i in range(3) if i != axis)
    return 4 * axis + int(CORNERS[a][u]) + 2 * int(CORNERS[a][v])


EDGE_CORNERS = {
    edge_number(a, b): (a, b) for a in range(8) for b in range(a + 1, 8) if np.abs(CORNERS[a] - CORNERS[b]).sum() == 1
}
EDGE_MIDPOINTS = np.array([CORNERS[list(EDGE_CORNERS[e])].mean(axis=0) for e in range(12)])


def cube_faces() -> list[tuple[list[int], np.ndarray]]:
    """The six faces: four corners in cyclic order and the outward normal."""
    faces = []
    for axis in range(3):
        u, v = (i for i in range(3) if i != axis)
        for side in (0, 1):
            ring = []
            for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                point = [0, 0, 0]
                point[axis], point[u], point[v] = side, du, dv
                ring.append(point[0] + 2 * point[1] + 4 * point[2])
            normal = np.zeros(3)
            normal[axis] = 2 * side - 1
            faces.append((ring, normal))
    return faces


FACES = cube_faces()


def face_segments(inside: list[bool], ring: list[int], normal: np.ndarray) -> list[tuple[int, int]]:
    """The oriented contour segments (edge, edge) on one face."""
    flags = [inside[c] for c in ring]

    def side(i: int) -> int:  # the edge from ring[i] to ring[i + 1]
        return edge_number(ring[i], ring[(i + 1) % 4])

    crossed = [i for i in range(4) if flags[i] != flags[(i + 1) % 4]]
    pieces: list[tuple[int, int, list[int], bool]] = []  # (edge, edge, corners cut off, are they inside)
    if len(crossed) == 2:
        cut_inside = sum(flags) <= 2  # one or two adjacent inside corners, else one outside corner
        cut = [c for c, flag in zip(ring, flags, strict=True) if flag == cut_inside]
        pieces.append((side(crossed[0]), side(crossed[1]), cut, cut_inside))
    elif len(crossed) == 4:
        pieces += [(side(i - 1), side(i), [ring[i]], True) for i in range(4) if flags[i]]
    segments = []
    for a, b, cut, cut_inside in pieces:
        towards_outside = (EDGE_MIDPOINTS[a] + EDGE_MIDPOINTS[b]) / 2 - CORNERS[cut].mean(axis=0)
        if not cut_inside:
            towards_outside = -towards_outside
        along = float(np.dot(EDGE_MIDPOINTS[b] - EDGE_MIDPOINTS[a], np.cross(towards_outside, normal)))
        segments.append((a, b) if along > 0 else (b, a))
    return segments


def on_one_face(a: int, b: int) -> bool:
    corners = set(EDGE_CORNERS[a]) | set(EDGE_CORNERS[b])
    return any(corners <= set(ring) for ring, _ in FACES)


def fan(loop: list[int]) -> list[tuple[int, int, int]]:
    """Triangles of a loop: a fan from the loop vertex none of whose diagonals lies in a cube face (the
    neighbouring cube could make the same diagonal: an edge of four triangles), the smallest in area."""
    best: tuple[tuple[int, float], list[tuple[int, int, int]]] | None = None
    for start in range(len(loop)):
        order = loop[start:] + loop[:start]
        in_faces = sum(on_one_face(order[0], order[i]) for i in range(2, len(order) - 1))
        triangles = [(order[0], order[i], order[i + 1]) for i in range(1, len(order) - 1)]
        points = EDGE_MIDPOINTS[np.array(triangles)]  # [triangles, 3 vertices, xyz]
        area = float(np.linalg.norm(np.cross(points[:, 1] - points[:, 0], points[:, 2] - points[:, 0]), axis=1).sum())
        key = (in_faces, round(area, 9))
        if best is None or key < best[0]:
            best = (key, triangles)
    assert best is not None
    return best[1]


def case_triangles(case: int) -> list[tuple[int, int, int]]:
    inside = [bool(case >> c & 1) for c in range(8)]
    following: dict[int, int] = {}
    for ring, normal in FACES:
        for a, b in face_segments(inside, ring, normal):
            assert a not in following
            following[a] = b
    assert sorted(following) == sorted(following.values())  # every crossed edge: one segment in, one out
    triangles = []
    while following:
        start = min(following)
        loop = [start]
        edge = following.pop(start)
        while edge != start:
            loop.append(edge)
            edge = following.pop(edge)
        triangles += fan(loop)
    return triangles


@functools.cache
def marching_cubes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """diffusers' `MeshDecoder` buffers: `cases` [256, 5, 3] long, `masks` [256, 5] bool."""
    cases = torch.zeros(256, 5, 3, dtype=torch.long)
    masks = torch.zeros(256, 5, dtype=torch.bool)
    for case in range(256):
        triangles = case_triangles(case)
        assert len(triangles) <= 5
        cases[case, : len(triangles)] = torch.tensor(triangles, dtype=torch.long).reshape(-1, 3)
        masks[case, : len(triangles)] = True
    return cases, masks


def decode(field: torch.Tensor, low: float = -1.0, high: float = 1.0) -> Any:
    """diffusers' marching cubes with the derived table on `field` sampled on [low, high]^3 -> trimesh."""
    from diffusers.pipelines.shap_e.renderer import MeshDecoder

    decoder = MeshDecoder()
    cases, masks = marching_cubes_table()
    decoder.cases.copy_(cases)
    decoder.masks.copy_(masks)
    out = decoder(field, torch.full((3,), low), torch.full((3,), high - low))
    return trimesh.Trimesh(out.verts.numpy(), out.faces.numpy(), process=False)


def grid_points(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    axis = torch.linspace(-1.0, 1.0, n)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    return x, y, z


def case_numbers(field: torch.Tensor) -> torch.Tensor:
    """Each cube's case number, computed the way `MeshDecoder.forward` does."""
    bits = (field > 0).to(torch.uint8)
    bits = bits[:-1] | (bits[1:] << 1)
    bits = bits[:, :-1] | (bits[:, 1:] << 2)
    return bits[:, :, :-1] | (bits[:, :, 1:] << 4)


def assert_closed_outward(mesh: Any) -> None:
    assert len(mesh.faces) > 0
    assert mesh.is_watertight  # every edge in exactly two triangles
    assert mesh.is_winding_consistent
    for part in mesh.split(only_watertight=False):
        assert part.volume > 0  # normals out of each part's inside


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Hugging Face cache in offline mode: nothing may reach the network."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)


def test_table_layout() -> None:
    """Each case's triangles use exactly the edges whose two corners differ in sign; a row's triangles come
    first; no edge between two crossings is on more than two triangles; the empty and full cubes have none."""
    cases, masks = marching_cubes_table()
    assert cases.shape == (256, 5, 3) and masks.shape == (256, 5)
    assert not masks[0].any() and not masks[255].any()
    for case in range(256):
        count = int(masks[case].sum())
        assert masks[case, :count].all()
        used = cases[case, :count].reshape(-1).tolist()
        crossed = {e for e, (a, b) in EDGE_CORNERS.items() if (case >> a & 1) != (case >> b & 1)}
        assert set(used) == crossed
        pairs = [tuple(sorted((t[i], t[(i + 1) % 3]))) for t in cases[case, :count].tolist() for i in range(3)]
        assert all(pairs.count(p) <= 2 for p in pairs)
    assert int(masks.sum(dim=1).max()) == 5


def test_table_closes_every_case() -> None:
    """All 256 cases, each in a 2x2x2 block of corners ringed by outside ones (random magnitudes), in one
    field: diffusers' decode must give a closed, consistently wound mesh, every part's normals outward."""
    generator = torch.Generator().manual_seed(0)
    field = -(0.1 + torch.rand(25, 25, 13, generator=generator))
    for case in range(256):
        block = np.array([case % 8, case // 8 % 8, case // 64]) * 3 + 1
        for corner in range(8):
            if case >> corner & 1:
                x, y, z = block + CORNERS[corner].astype(int)
                field[x, y, z] = 0.1 + torch.rand(1, generator=generator).item()
    numbers = case_numbers(field)
    assert set(torch.unique(numbers).tolist()) == set(range(256))
    mesh = decode(field)
    assert_closed_outward(mesh)


def test_table_on_random_fields() -> None:
    """Uniform noise (about 250 of the 256 cases, side by side in many combinations), outside on the border."""
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        field = torch.rand(14, 14, 14, generator=generator) - 0.5
        for axis in range(3):
            field.select(axis, 0).fill_(-1.0)
            field.select(axis, -1).fill_(-1.0)
        mesh = decode(field)
        assert mesh.is_watertight and mesh.is_winding_consistent
        # The inside's volume is positive (outside pockets count negative) and about half the inner box.
        assert 0.2 < mesh.volume / (2.0 * 12 / 13) ** 3 < 0.8


@pytest.mark.parametrize("n", [16, 33])
def test_table_on_a_sphere(n: int) -> None:
    x, y, z = grid_points(n)
    radius = 0.6
    mesh = decode(radius - torch.sqrt(x * x + y * y + z * z))
    assert_closed_outward(mesh)
    assert mesh.euler_number == 2  # one sphere, no handles
    distance = np.linalg.norm(mesh.vertices, axis=1)
    spacing = 2.0 / (n - 1)
    # Linear interpolation of the distance: the crossings lie on the sphere up to O(spacing^2).
    assert np.abs(distance - radius).max() < 0.25 * spacing**2 / radius
    outward = np.einsum("ij,ij->i", mesh.face_normals, mesh.triangles_center)
    assert (outward > 0).all()
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.04)


def test_table_on_a_torus() -> None:
    x, y, z = grid_points(40)
    ring, tube = 0.55, 0.2
    mesh = decode(tube - torch.sqrt((torch.sqrt(x * x + y * y) - ring) ** 2 + z * z))
    assert_closed_outward(mesh)
    assert mesh.euler_number == 0  # one handle
    v = mesh.vertices
    tube_distance = np.sqrt((np.linalg.norm(v[:, :2], axis=1) - ring) ** 2 + v[:, 2] ** 2)
    assert np.abs(tube_distance - tube).max() < 0.005
    assert mesh.volume == pytest.approx(2 * np.pi**2 * ring * tube**2, rel=0.05)


# -- the real pipeline --------------------------------------------------------------------------------
#
# The tiny renderer (d_hidden 8, seven layers, SiLU after each but the last) is set so that its SDF head
# gives tanh(0.5 (1 - sum (u / A_u)^2)) at the point (x, y, z): an ellipsoid with semi-axes A = SEMI_AXES,
# longest along Shap-E's up (+Z), shortest along its front axis (Y); its colour head gives
# sigmoid(2 z), sigmoid(-2 y), sigmoid(0) = 0.5 in sRGB: red towards the top, green towards the front.
#
# The first four layers' weights come from the latent (`params_proj`: LayerNorm(latent . W) + bias per
# weight row); with W = 0 the LayerNorm of zeros is its own bias, 0, so those weights are exactly the
# projection's bias, whatever the prior produced. Two tricks make the rest exact in float32:
# silu(v) = v exactly for v >= 17 (exp(-v) vanishes next to 1), so a value plus 40 (at least 26 here)
# passes through a hidden layer unchanged; and
# silu(e u) + silu(-e u) = e u tanh(e u / 2) = e^2 u^2 / 2 (1 - e^2 u^2 / 12 + ...) gives u^2 (e = 0.1:
# relative error < 1e-3 in the box [-1, 1]^3).

SEMI_AXES = (0.5, 0.35, 0.7)
PASS = 40.0
SQUARE = 0.1
COLOUR_GAIN = 2.0


def make_renderer_an_ellipsoid(renderer: Any) -> None:
    d_in = renderer.mlp.mlp[0].in_features
    weights = [torch.zeros(8, d_in)] + [torch.zeros(8, 8) for _ in range(3)]
    # Layer 0 (its input starts with the raw x, y, z): units 0-5 = +-e x, +-e y, +-e z; 6 = z; 7 = y.
    for axis in range(3):
        weights[0][2 * axis, axis] = SQUARE
        weights[0][2 * axis + 1, axis] = -SQUARE
    weights[0][6, 2] = weights[0][7, 1] = 1.0
    # Layer 1: unit 0 = 1 - sum u^2 / A^2; units 6 and 7 carried on. Layers 2 and 3 carry 0, 6, 7 on.
    for axis in range(3):
        weights[1][0, 2 * axis] = weights[1][0, 2 * axis + 1] = -2.0 / (SQUARE**2 * SEMI_AXES[axis] ** 2)
    for k in (1, 2, 3):
        for unit in (0, 6, 7):
            if k > 1 or unit != 0:
                weights[k][unit, unit] = 1.0
    mlp = renderer.mlp.mlp
    names = renderer.params_proj.config.param_names
    assert len(mlp) == 7 and list(names) == [f"nerstf.mlp.{k}.weight" for k in range(4)]
    with torch.no_grad():
        cases, masks = marching_cubes_table()
        renderer.mesh_decoder.cases.copy_(cases)
        renderer.mesh_decoder.masks.copy_(masks)
        for k, name in enumerate(names):
            projection = renderer.params_proj.projections[name.replace(".", "__")]
            assert projection.proj.bias.shape == (weights[k].numel(),)
            projection.proj.weight.zero_()
            projection.proj.bias.copy_(weights[k].reshape(-1))
            projection.norm.bias.zero_()
        for layer in mlp:
            layer.weight.zero_()
            layer.bias.zero_()
        mlp[0].bias[6] = mlp[0].bias[7] = PASS
        mlp[1].bias[0] = 1.0 + PASS
        for k in (4, 5):  # layer 4 also takes the (zero) direction encoding after its 8 inputs
            for unit in (0, 6, 7):
                mlp[k].weight[unit, unit] = 1.0
        # Outputs: 0 the SDF (tanh), 3-5 the STF colour (sigmoid), the rest (NeRF density/colour) 0.
        mlp[6].weight[0, 0], mlp[6].bias[0] = 0.5, -0.5 * PASS
        mlp[6].weight[3, 6], mlp[6].bias[3] = COLOUR_GAIN, -COLOUR_GAIN * PASS
        mlp[6].weight[4, 7], mlp[6].bias[4] = -COLOUR_GAIN, COLOUR_GAIN * PASS


def save_tiny_shap_e_ellipsoid(folder: Path) -> Path:
    from diffusers.pipelines.shap_e import ShapERenderer

    save_tiny_shap_e(folder)
    renderer = ShapERenderer.from_pretrained(folder / "shap_e_renderer")
    make_renderer_an_ellipsoid(renderer)
    renderer.save_pretrained(folder / "shap_e_renderer")
    return folder


def test_renderer_field_is_the_ellipsoid(tmp_path: Path) -> None:
    """The hand-set renderer as saved and loaded: its SDF and colour heads at a few points."""
    from diffusers.pipelines.shap_e import ShapERenderer

    folder = save_tiny_shap_e_ellipsoid(tmp_path / "tiny-shap-e")
    renderer = ShapERenderer.from_pretrained(folder / "shap_e_renderer")
    assert renderer.mesh_decoder.masks.any()  # the table is a saved buffer
    latents = torch.randn(1, 32, 16)
    for k, (name, weight) in enumerate(renderer.params_proj(latents).items()):
        assert name == f"nerstf.mlp.{k}.weight" and torch.isfinite(weight).all()
        renderer.mlp.mlp[k].weight.data.copy_(weight[0])
    points = torch.rand(1, 200, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = renderer.mlp(position=points, direction=None, ts=None, nerf_level="fine", rendering_mode="stf")
    x, y, z = points[0].unbind(-1)
    implicit = 1 - (x / SEMI_AXES[0]) ** 2 - (y / SEMI_AXES[1]) ** 2 - (z / SEMI_AXES[2]) ** 2
    assert torch.allclose(out.signed_distance[0, :, 0], torch.tanh(0.5 * implicit), atol=2e-3)
    expected = torch.stack([torch.sigmoid(2 * z), torch.sigmoid(-2 * y), torch.full_like(z, 0.5)], dim=-1)
    assert torch.allclose(out.channels[0], expected, atol=1e-4)


def test_shap_e_real_decode_gives_the_ellipsoid(tmp_path: Path) -> None:
    """The provider's whole real path: the pipeline loaded from its folder, the prior, diffusers'
    `decode_to_mesh` with the derived table, the conversion and the `mesh:` normalisation."""
    folder = save_tiny_shap_e_ellipsoid(tmp_path / "tiny-shap-e")
    grid = 24
    events: list[ProgressEvent] = []
    settings = {"asset": f"shap-e:{folder}", "device": "cpu", "asset_steps": 2, "mesh_grid_size": grid, "seed": 1}
    bundle = Runner(
        "test", [AssetStage()], tmp_path / "bundle", settings, prompt="a test fox", on_progress=events.append
    ).run()
    assert any(f"marching cubes on a {grid}^3 grid" in e.message for e in events)
    head = load_asset(bundle.root)
    vertices = head.vertices.astype(np.float64)
    assert np.isfinite(vertices).all() and head.face_count > 500
    mesh = trimesh.Trimesh(vertices, head.faces, process=False)
    assert_closed_outward(mesh)  # the axis change is a rotation: the winding stays outward
    assert mesh.euler_number == 2

    # Normalised: +Y up (Shap-E's +Z, the longest axis), face toward +Z (Shap-E's -Y), largest side 1.
    extent = vertices.max(axis=0) - vertices.min(axis=0)
    a_x, a_y, a_z = SEMI_AXES
    assert extent == pytest.approx([a_x / a_z, 1.0, a_y / a_z], abs=0.02)
    assert extent[1] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose((vertices.max(axis=0) + vertices.min(axis=0)) / 2, 0.0, atol=1e-5)
    rotation = head.to_source[:3, :3] / head.source_scale
    assert np.allclose(rotation @ [0, 1, 0], [0, 0, 1], atol=1e-6)
    assert np.allclose(rotation @ [0, 0, 1], [0, -1, 0], atol=1e-6)

    # Back in Shap-E's frame (`asset/generated.ply`) the vertices lie on the ellipsoid. decode_to_mesh
    # pads the grid with one outside layer on each side but maps the padded grid onto the same box
    # [-1, 1]^3, so its mesh comes out scaled by (grid - 1) / (grid + 1) and shifted: undone here.
    source = transform_points(head.to_source, vertices)
    raw = trimesh.load(bundle.root / "asset" / "generated.ply", process=False)
    assert len(raw.vertices) == len(vertices) and len(raw.faces) == head.face_count
    assert np.allclose(np.sort(source, axis=0), np.sort(np.asarray(raw.vertices), axis=0), atol=1e-5)
    field_point = -1 + ((source + 1) * (grid + 1) / 2 - 1) * 2 / (grid - 1)
    radius = np.sqrt(((field_point / np.array(SEMI_AXES)) ** 2).sum(axis=1))
    assert np.abs(radius - 1).max() < 0.02

    # Colours are the colour head's sRGB values at the decoded vertices: red up, green to the front, blue
    # 0.5 -> 128 (diffusers hands back linear values: 0.5 would be 55 without the provider's conversion).
    assert head.vertex_colors is not None
    colours = head.vertex_colors.astype(np.float64)
    red, green = (1 / (1 + np.exp(-COLOUR_GAIN * u)) for u in (source[:, 2], -source[:, 1]))
    expected = np.stack([red, green, np.full(len(source), 0.5)], axis=1)
    assert np.abs(colours - expected * 255).max() <= 1.0
    assert np.corrcoef(colours[:, 0], vertices[:, 1])[0, 1] > 0.95  # red rises with normalised +Y (up)
    assert np.corrcoef(colours[:, 1], vertices[:, 2])[0, 1] > 0.95  # green rises toward +Z (the front)
    assert bundle.read_manifest().providers["asset"]["grid_size"] == grid
