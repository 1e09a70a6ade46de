"""Tests for the `asset` stage through the real Runner: bundle files, manifest records, `load_asset`,
provider errors, and the ICT head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from t2bs.bundle import ASSET_INFO, STATIC_MESH, Bundle
from t2bs.errors import BundleError, InputError
from t2bs.mesh_io import HeadMesh, load_head_mesh
from t2bs.progress import ProgressEvent
from t2bs.runner import Runner
from t2bs.stages.asset import (
    ASSET_PROVIDERS,
    AssetProvider,
    AssetStage,
    MeshFileProvider,
    load_asset,
)
from tests.conftest import ICT_HEAD


def textured_head(folder: Path) -> Path:
    """A textured GLB head-like blob in made-up units (centre (1, 2, 3), about 4 units tall)."""
    sphere = trimesh.creation.icosphere(2)
    vertices = sphere.vertices * [1.5, 2.0, 1.8] + [1.0, 2.0, 3.0]
    uv = np.random.default_rng(0).uniform(0, 1, (len(vertices), 2))
    texture = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture))
    mesh = trimesh.Trimesh(vertices, sphere.faces, process=False)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    path = folder / "head.glb"
    mesh.export(path)
    return path


def coloured_ply(folder: Path, vertices: np.ndarray, faces: np.ndarray) -> Path:
    colors = np.random.default_rng(2).integers(0, 256, (len(vertices), 3), dtype=np.uint8)
    path = folder / "head.ply"
    trimesh.Trimesh(vertices, faces, vertex_colors=colors, process=False).export(path)
    return path


def run_asset(out: Path, settings: dict[str, object], events: list[ProgressEvent] | None = None) -> Bundle:
    callback = events.append if events is not None else None
    return Runner("test", [AssetStage()], out, settings, on_progress=callback).run()


def assert_same(a: HeadMesh, b: HeadMesh) -> None:
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    for name in ("uv", "texture", "vertex_colors"):
        first, second = getattr(a, name), getattr(b, name)
        assert (first is None) == (second is None), name
        if first is not None:
            np.testing.assert_allclose(first, second, atol=1e-6)
    np.testing.assert_allclose(a.to_source, b.to_source, rtol=0, atol=1e-12)
    assert a.source == b.source


def test_mesh_provider_through_the_runner(tmp_path: Path) -> None:
    path = textured_head(tmp_path)
    events: list[ProgressEvent] = []
    bundle = run_asset(tmp_path / "bundle", {"asset": f"mesh:{path}"}, events)

    assert (bundle.root / STATIC_MESH).is_file() and (bundle.root / ASSET_INFO).is_file()
    assert not (bundle.root / ".partial").exists()
    manifest = bundle.read_manifest()
    assert manifest.status == "complete"
    assert manifest.stages["asset"]["status"] == "done"
    assert manifest.providers["asset"]["name"] == "mesh"
    assert manifest.providers["asset"]["path"] == str(path.resolve())
    direct = load_head_mesh(path)
    assert manifest.metrics["asset"] == {"vertex_count": direct.vertex_count, "face_count": direct.face_count}

    info = json.loads((bundle.root / ASSET_INFO).read_text())
    assert info["version"] == 1
    assert info["source"] == str(path.resolve())
    assert info["vertex_count"] == direct.vertex_count and info["face_count"] == direct.face_count
    assert info["has_uv"] and info["has_texture"] and not info["has_vertex_colors"]
    np.testing.assert_allclose(np.array(info["to_source"]), direct.to_source, atol=1e-12)
    extent = np.ptp(direct.source_vertices(), axis=0)
    assert info["diagonal_source_units"] == pytest.approx(float(np.linalg.norm(extent)), rel=1e-5)

    loaded = load_asset(bundle.root)
    assert_same(loaded, direct)
    np.testing.assert_allclose(loaded.source_vertices(), direct.source_vertices(), atol=1e-5)

    fractions = [event.fraction for event in events if event.stage == "asset"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("head.glb" in event.message for event in events)


def test_axis_settings_reach_the_loader(tmp_path: Path) -> None:
    sphere = trimesh.creation.icosphere(1)
    # Z-up source: tallest along Z.
    vertices = sphere.vertices * [1.0, 1.5, 3.0]
    path = coloured_ply(tmp_path, vertices, sphere.faces)
    settings = {"asset": f"mesh:{path}", "up_axis": "+z", "front_axis": "-y"}
    bundle = run_asset(tmp_path / "bundle", settings)
    mesh = load_asset(bundle.root)
    extent = np.ptp(mesh.vertices, axis=0)
    assert extent[1] == pytest.approx(1.0) and extent[2] == pytest.approx(0.5, rel=1e-5)
    assert mesh.vertex_colors is not None and mesh.uv is None
    np.testing.assert_allclose(mesh.source_vertices(), vertices, atol=1e-5)
    provider = bundle.read_manifest().providers["asset"]
    assert provider["up_axis"] == "+z" and provider["front_axis"] == "-y"


def test_unknown_provider(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    with pytest.raises(InputError) as error:
        run_asset(out, {"asset": "nosuch:thing"})
    message = str(error.value)
    assert "Unknown asset provider 'nosuch'" in message and "mesh" in message
    manifest = Bundle(out).read_manifest()
    assert manifest.status == "failed" and not (out / "asset").exists()


@pytest.mark.parametrize("spec", ["mesh", "mesh:", "mesh:   "])
def test_mesh_provider_needs_a_path(tmp_path: Path, spec: str) -> None:
    with pytest.raises(InputError) as error:
        run_asset(tmp_path / "bundle", {"asset": spec})
    assert str(error.value) == "The mesh asset provider needs a path: --asset mesh:PATH."


def test_bad_file_leaves_no_asset_behind(tmp_path: Path) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(b"glTF garbage")
    out = tmp_path / "bundle"
    with pytest.raises(InputError) as error:
        run_asset(out, {"asset": f"mesh:{path}"})
    assert str(path) in str(error.value) and "\n" not in str(error.value)
    assert not (out / "asset").exists()
    manifest = Bundle(out).read_manifest()
    assert manifest.status == "failed" and manifest.stages["asset"]["status"] == "interrupted"
    with pytest.raises(BundleError):
        load_asset(out)


def test_resume_skips_a_finished_asset(tmp_path: Path) -> None:
    path = textured_head(tmp_path)
    out = tmp_path / "bundle"
    run_asset(out, {"asset": f"mesh:{path}"})
    written = (out / STATIC_MESH).stat().st_mtime_ns
    Runner("test", [AssetStage()], out, {"asset": f"mesh:{path}"}, resume=True).run()
    assert (out / STATIC_MESH).stat().st_mtime_ns == written


def test_load_asset_refuses_inconsistent_files(tmp_path: Path) -> None:
    path = textured_head(tmp_path)
    out = tmp_path / "bundle"
    run_asset(out, {"asset": f"mesh:{path}"})
    info_path = out / ASSET_INFO
    info = json.loads(info_path.read_text())

    info_path.write_text(json.dumps({**info, "vertex_count": info["vertex_count"] + 1}))
    with pytest.raises(BundleError, match="vertices"):
        load_asset(out)
    info_path.write_text(json.dumps({**info, "to_source": [[1, 2, 3, 4]] * 4}))
    with pytest.raises(BundleError, match="to_source"):
        load_asset(out)
    info_path.write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(BundleError, match="version"):
        load_asset(out)
    info_path.write_text("{not json")
    with pytest.raises(BundleError, match="JSON"):
        load_asset(out)


def test_provider_registry() -> None:
    assert ASSET_PROVIDERS.get("mesh") is MeshFileProvider
    assert issubclass(MeshFileProvider, AssetProvider) and MeshFileProvider.name == "mesh"
    assert AssetStage.name == "asset" and AssetStage.outputs == ("asset",)


def test_ict_head_through_the_stage(tmp_path: Path) -> None:
    if not ICT_HEAD.is_file():
        pytest.skip(f"the ICT head fixture {ICT_HEAD} is not on this machine")
    with np.load(ICT_HEAD) as data:
        neutral, faces = data["neutral"], data["faces"]
    path = tmp_path / "ict.obj"
    trimesh.Trimesh(neutral, faces, process=False).export(path)
    bundle = run_asset(tmp_path / "bundle", {"asset": f"mesh:{path}"})
    mesh = load_asset(bundle.root)
    assert mesh.vertex_count == len(neutral) and mesh.face_count == len(faces)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_allclose(mesh.source_vertices(), neutral, atol=1e-4)
    info = json.loads((bundle.root / ASSET_INFO).read_text())
    diagonal_cm = float(np.linalg.norm(np.ptp(neutral, axis=0)))
    assert info["diagonal_source_units"] == pytest.approx(diagonal_cm, rel=1e-5)
