"""`t2bs blendshapes` and `t2bs export`: model.npz, head.glb (Khronos validator), USD, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from t2bs.bundle import MODEL_KEYS_REQUIRED, write_registered
from t2bs.export.gltf import read_accessor, read_glb_document
from t2bs.testing.ict_blendshapes import act_sequences, ict_acts, write_ict_registered
from t2bs.testing.ict_fixture import load_ict_head
from tests.conftest import validate_gltf

ACTS = ["jawOpen", "eyeBlink", "mouthSmile", "browInnerUp"]
# Without a capture, sequences come in the expression library's order.
NAMES = ["jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight", "browInnerUp"]


def t2bs(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "t2bs", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ict_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ict_model")
    asset, registered = write_ict_registered(root / "in", ACTS, frames=5)
    result = t2bs("blendshapes", "--asset", asset, "--registered", registered, "--out", root / "bundle", "--quiet")
    assert result.returncode == 0, result.stderr
    return root / "bundle"


def glb_targets(path: Path) -> tuple[dict, np.ndarray, list[str], np.ndarray]:  # type: ignore[type-arg]
    document, binary = read_glb_document(path.read_bytes())
    primitive = document["meshes"][0]["primitives"][0]
    positions = read_accessor(document, binary, primitive["attributes"]["POSITION"])
    names = document["meshes"][0]["extras"]["targetNames"]
    offsets = np.stack([read_accessor(document, binary, target["POSITION"]) for target in primitive["targets"]])
    return document, positions, names, offsets


def test_bundle_holds_the_model_design_md_lists(ict_bundle: Path) -> None:
    manifest = json.loads((ict_bundle / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert list(manifest["stages"]) == ["asset", "register", "model", "export"]
    with np.load(ict_bundle / "model.npz") as data:
        model = {key: data[key] for key in data.files}
    assert set(MODEL_KEYS_REQUIRED) <= set(model)
    head = load_ict_head()
    assert np.abs(model["neutral"] - head.neutral).max() < 1e-4  # the asset file's coordinates
    assert np.array_equal(model["faces"], head.faces)
    assert list(model["blendshape_names"]) == NAMES
    assert list(model["blendshape_regions"]) == ["mouth", "mouth", "mouth", "eyes", "eyes", "brows"]
    assert model["blendshapes"].shape == (6, len(head.neutral), 3)
    assert model["pca_basis"].shape[0] == len(model["pca_stdev"]) <= 100
    assert model["colors"].shape == (len(head.neutral), 3)  # the PLY's vertex colours
    assert manifest["metrics"]["model"]["blendshapes"] == NAMES
    for name in ("expressions.png", "turntable.mp4"):
        assert (ict_bundle / "preview" / name).stat().st_size > 1000
    grid = np.asarray(Image.open(ict_bundle / "preview" / "expressions.png"))
    assert grid.shape[0] >= 160 and grid.std() > 10  # heads drawn, not a blank canvas


def test_head_glb_passes_the_khronos_validator_and_carries_the_shapes(ict_bundle: Path) -> None:
    report = validate_gltf(ict_bundle / "head.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    document, positions, names, offsets = glb_targets(ict_bundle / "head.glb")
    with np.load(ict_bundle / "model.npz") as model:
        assert names == list(model["blendshape_names"])
        assert np.abs(positions - model["neutral"]).max() < 1e-5
        assert np.abs(offsets - model["blendshapes"]).max() < 1e-6
    assert document["meshes"][0]["weights"] == [0.0] * len(NAMES)
    assert "COLOR_0" in document["meshes"][0]["primitives"][0]["attributes"]
    # Cleaned shapes move part of the head: they are stored sparse.
    sparse = [
        document["accessors"][t["POSITION"]].get("sparse") for t in document["meshes"][0]["primitives"][0]["targets"]
    ]
    assert sum(entry is not None for entry in sparse) >= 4


def test_export_usd_opens_back_with_pxr(ict_bundle: Path, tmp_path: Path) -> None:
    from t2bs.export.usd import read_usd_blendshapes

    result = t2bs("export", ict_bundle, "--format", "usd", "--out", tmp_path / "head.usda", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(tmp_path / "head.usda")
    points, names, offsets = read_usd_blendshapes(tmp_path / "head.usda")
    with np.load(ict_bundle / "model.npz") as model:
        assert names == NAMES
        assert np.abs(points - model["neutral"]).max() < 1e-5
        assert np.abs(offsets - model["blendshapes"]).max() < 1e-6
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(tmp_path / "head.usda"))
    root = UsdSkel.Root(stage.GetDefaultPrim())
    cache = UsdSkel.Cache()
    cache.Populate(root, Usd.PrimDefaultPredicate)
    bindings = cache.ComputeSkelBindings(root, Usd.PrimDefaultPredicate)
    assert len(bindings) == 1 and len(bindings[0].GetSkinningTargets()) == 1


@pytest.mark.parametrize(("style", "expected"), [("pascal", "EyeBlinkLeft"), ("ict", "eyeBlink_L")])
def test_export_in_other_name_casings(ict_bundle: Path, tmp_path: Path, style: str, expected: str) -> None:
    result = t2bs("export", ict_bundle, "--format", "glb", "--names", style, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"head_{style}.glb"  # a folder gets the default name for the casing
    assert validate_gltf(path)["issues"]["numErrors"] == 0
    assert glb_targets(path)[2][3] == expected
    npz = t2bs("export", ict_bundle, "--format", "npz", "--names", style, "--out", tmp_path / "shapes.npz")
    assert npz.returncode == 0, npz.stderr
    with np.load(tmp_path / "shapes.npz") as data:
        assert str(data["blendshape_names"][3]) == expected


def test_export_refuses_missing_and_unfinished_bundles(ict_bundle: Path, tmp_path: Path) -> None:
    missing = t2bs("export", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    manifest = json.loads((ict_bundle / "manifest.json").read_text())
    (unfinished / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    result = t2bs("export", unfinished, "--format", "usd")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    bad_suffix = t2bs("export", ict_bundle, "--format", "usd", "--out", tmp_path / "head.txt")
    assert bad_suffix.returncode == 2 and ".usd" in bad_suffix.stderr


@pytest.mark.parametrize(
    ("problem", "message"),
    [("vertices", "vertices"), ("single", "single frame"), ("nan", "NaN"), ("duplicate", "both called")],
)
def test_bad_registered_frames_exit_2_with_one_sentence(tmp_path: Path, problem: str, message: str) -> None:
    asset, registered = write_ict_registered(tmp_path / "in", ["jawOpen", "eyeBlink"], frames=3)
    with np.load(registered / "jawOpen.npz") as data:
        frames = data["vertices"].copy()
    if problem == "vertices":
        write_registered(registered / "jawOpen.npz", frames[:, :-3])
    elif problem == "single":
        write_registered(registered / "jawOpen.npz", frames[:1])
    elif problem == "nan":
        frames[1, 10, 0] = np.nan
        write_registered(registered / "jawOpen.npz", frames)
    else:
        write_registered(registered / "JawOpen.npz", frames)
    result = t2bs("blendshapes", "--asset", asset, "--registered", registered, "--out", tmp_path / "b", "--quiet")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["status"] == "failed"
    assert not (tmp_path / "b" / "model.npz").exists()


def test_z_up_asset_exports_y_up_gltf_with_correct_sides(tmp_path: Path) -> None:
    head = load_ict_head()
    acts = ict_acts(head)
    # Blender's own axes: +Z up, the face toward -Y. (x, y, z)_ict -> (x, -z, y).
    to_blender = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    neutral = head.neutral @ to_blender.T
    (tmp_path / "registered").mkdir()
    trimesh.Trimesh(neutral, head.faces, process=False).export(tmp_path / "head.ply")
    for name, frames in act_sequences(head.neutral, {"eyeBlink": acts["eyeBlink"]}, 4).items():
        write_registered(tmp_path / "registered" / f"{name}.npz", frames @ to_blender.T)
    result = t2bs(
        "blendshapes",
        "--asset",
        tmp_path / "head.ply",
        "--registered",
        tmp_path / "registered",
        "--up",
        "+z",
        "--front",
        "-y",
        "--out",
        tmp_path / "b",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    _, positions, names, offsets = glb_targets(tmp_path / "b" / "head.glb")
    assert np.abs(positions - head.neutral).max() < 1e-4  # back in glTF's +Y up, +Z front
    left = names.index("eyeBlinkLeft")
    moving = np.linalg.norm(offsets[left], axis=1) > 0.5 * np.linalg.norm(offsets[left], axis=1).max()
    assert head.neutral[moving, 0].min() > 0  # the character's left eye (+X)
    with np.load(tmp_path / "b" / "model.npz") as model:
        assert np.abs(model["neutral"] - neutral).max() < 1e-4  # the model stays in the file's axes


def test_textured_head_exports_texture_and_uvs(tmp_path: Path) -> None:
    sphere = trimesh.creation.uv_sphere(radius=1.0, count=[24, 24])
    vertices = np.asarray(sphere.vertices, dtype=np.float32)
    uv = np.stack([np.arctan2(vertices[:, 0], vertices[:, 2]) / (2 * np.pi) + 0.5, vertices[:, 1] * 0.5 + 0.5], 1)
    texture = np.zeros((32, 32, 3), dtype=np.uint8)
    texture[:, :, 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None]
    texture[:, :, 2] = 200
    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(texture))
    mesh = trimesh.Trimesh(
        vertices, sphere.faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False
    )
    mesh.export(tmp_path / "ball.obj")
    from t2bs.mesh_io import load_head_mesh

    loaded = load_head_mesh(tmp_path / "ball.obj")
    source = loaded.source_vertices().astype(np.float32)
    bulge = np.where(source[:, 1:2] < -0.3, np.array([[0.0, -0.2, 0.1]], np.float32), 0.0)
    (tmp_path / "registered").mkdir()
    write_registered(tmp_path / "registered" / "jawOpen.npz", np.stack([source, source + 0.5 * bulge, source + bulge]))
    result = t2bs(
        "blendshapes",
        "--asset",
        tmp_path / "ball.obj",
        "--registered",
        tmp_path / "registered",
        "--out",
        tmp_path / "b",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b" / "texture.png"))[..., :3], loaded.texture)
    report = validate_gltf(tmp_path / "b" / "head.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"][:5]
    document, _, names, offsets = glb_targets(tmp_path / "b" / "head.glb")
    assert names == ["jawOpen"] and "TEXCOORD_0" in document["meshes"][0]["primitives"][0]["attributes"]
    assert document["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"] == {"index": 0}
    assert document["images"][0]["mimeType"] == "image/png"
    assert np.abs(offsets[0] - bulge).max() < 1e-5
