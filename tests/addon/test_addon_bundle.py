"""Reading bundles without Blender: validation, axes, UVs, regions, eigen keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from t2bs_blender.bundle import BundleError, axis_matrix, load_bundle, to_blender

from .bundle_fixture import shape_offsets, sphere, write_bundle


def test_gltf_axes_are_the_default() -> None:
    matrix = axis_matrix("+y", "+z")
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])  # (x, y, z) -> (x, -z, y)
    np.testing.assert_array_equal(axis_matrix("+z", "-y"), np.eye(3))


@pytest.mark.parametrize("up", ["+x", "-x", "+y", "-y", "+z", "-z"])
@pytest.mark.parametrize("front", ["+x", "-x", "+y", "-y", "+z", "-z"])
def test_every_axis_pair_maps_up_to_z_and_front_to_minus_y(up: str, front: str) -> None:
    if up[1] == front[1]:
        with pytest.raises(BundleError, match="different axes"):
            axis_matrix(up, front)
        return
    matrix = axis_matrix(up, front)
    assert np.isclose(np.linalg.det(matrix), 1.0)  # a rotation, never a mirror
    axis = {"x": 0, "y": 1, "z": 2}
    up_vec, front_vec = np.zeros(3), np.zeros(3)
    up_vec[axis[up[1]]] = 1 if up[0] == "+" else -1
    front_vec[axis[front[1]]] = 1 if front[0] == "+" else -1
    np.testing.assert_allclose(matrix @ up_vec, [0, 0, 1])
    np.testing.assert_allclose(matrix @ front_vec, [0, -1, 0])
    points = np.random.default_rng(1).normal(size=(7, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(to_blender(points, matrix), points @ matrix.T, atol=1e-6)


@pytest.mark.parametrize("bad", ["y", "+w", "up", "++y"])
def test_bad_axis_names(bad: str) -> None:
    if bad == "y":  # a bare axis letter means +
        np.testing.assert_array_equal(axis_matrix(bad, "+z"), axis_matrix("+y", "+z"))
        return
    with pytest.raises(BundleError, match="not one of"):
        axis_matrix(bad, "+z")


def test_load_bundle_converts_and_keeps_everything(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", shapes=4, pca=3, prompt="an owl")
    data = load_bundle(root)
    vertices, faces, uv = sphere(16, 24)
    _, _, offsets = shape_offsets(vertices, 4)
    assert data.prompt == "an owl" and data.root == root.resolve()
    np.testing.assert_allclose(data.vertices, np.stack([vertices[:, 0], -vertices[:, 2], vertices[:, 1]], 1))
    np.testing.assert_array_equal(data.faces, faces)
    np.testing.assert_allclose(data.shape_offsets[2][:, 2], offsets[2][:, 1])  # file up -> Blender Z
    assert data.shape_names == ["jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft"]
    assert data.regions() == {"mouth": data.shape_names[:3], "eyes": ["eyeBlinkLeft"]}
    loop_uvs = data.loop_uvs()
    assert loop_uvs is not None and loop_uvs.shape == (3 * len(faces), 2)
    np.testing.assert_allclose(loop_uvs[:3], uv[faces[0]])
    assert data.colors is not None and data.colors.dtype == np.uint8 and data.texture is None
    model = np.load(root / "model.npz")
    assert data.eigen_names == ["eigen000", "eigen001", "eigen002"]
    assert data.eigen_offsets is not None
    expected = model["pca_basis"][1] * model["pca_stdev"][1]
    np.testing.assert_allclose(data.eigen_offsets[1][:, 2], expected[:, 1], rtol=1e-6)
    assert load_bundle(root, eigen_count=1).eigen_names == ["eigen000"]
    assert load_bundle(root, eigen_count=0).eigen_offsets is None


def test_optional_fields_and_defaults(tmp_path: Path) -> None:
    root = write_bundle(
        tmp_path / "min", up_axis=None, front_axis=None, prompt=None, colors=False, pca=0,
        overrides={"uv": None, "blendshape_regions": None},
    )  # fmt: skip
    data = load_bundle(root)
    assert data.prompt is None and data.uv is None and data.loop_uvs() is None and data.colors is None
    assert data.shape_regions == [] and "mouth" in data.regions()  # regions from the names
    vertices, _, _ = sphere(16, 24)
    np.testing.assert_allclose(data.vertices[:, 2], vertices[:, 1])  # +y up was assumed

    root = write_bundle(tmp_path / "none", shapes=0, pca=0, overrides={"blendshape_names": None, "blendshapes": None})
    assert load_bundle(root).shape_offsets.shape == (0, len(vertices), 3)


def test_textured_bundle(tmp_path: Path) -> None:
    data = load_bundle(write_bundle(tmp_path / "t", texture=True))
    assert data.texture is not None and data.texture.name == "texture.png" and data.colors is None


def _bad(tmp_path: Path, **kwargs: object) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(write_bundle(tmp_path / "bad", **kwargs))  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


def test_incomplete_bundles_are_refused(tmp_path: Path) -> None:
    assert "not complete (status 'running'). Resume the run" in _bad(tmp_path, status="running")
    assert "status 'failed'" in _bad(tmp_path, status="failed")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"neutral": None}, "no 'neutral'"),
        ({"neutral": np.zeros((5, 2), np.float32)}, "'neutral' has shape [5, 2], expected [*, 3]"),
        ({"faces": np.array([[0, 1, -1]], np.int32)}, "outside"),
        ({"faces": np.array([[0.0, 1.0, 2.0]])}, "must hold integers"),
        ({"uv": np.zeros((3, 2), np.float32)}, "'uv' has shape"),
        ({"blendshapes": np.zeros((2, 5, 3), np.float32)}, "'blendshapes' has shape"),
        ({"blendshape_names": np.array(["jawOpen"] * 5)}, "appears twice"),
        ({"blendshape_names": np.arange(5)}, "must hold strings"),
        ({"blendshape_regions": np.array(["mouth"])}, "1 entries for 5 names"),
        ({"neutral": np.full((384, 3), np.nan, np.float32)}, "NaN"),
        ({"pca_stdev": None}, "no 'pca_stdev'"),
        ({"blendshape_names": np.array(["a", "b", "c", "d", "eigen000"])}, "reserved"),
    ],
)
def test_malformed_models_are_refused(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    assert message in _bad(tmp_path, overrides=overrides)


def test_missing_or_broken_files(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not a T2Bs bundle"):
        load_bundle(tmp_path / "empty")
    root = write_bundle(tmp_path / "b")
    (root / "model.npz").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"cannot be read as an \.npz"):
        load_bundle(root)
    (root / "model.npz").unlink()
    with pytest.raises(BundleError, match=r"has no model\.npz"):
        load_bundle(root)
    (root / "manifest.json").write_text("{oops")
    with pytest.raises(BundleError, match="cannot be read as JSON"):
        load_bundle(root)
    (root / "manifest.json").write_text(json.dumps({"status": "complete", "settings": {"up_axis": "+q"}}))
    with pytest.raises(BundleError, match="not one of"):
        load_bundle(root)


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    names = np.array([{"x": 1}] * 5, dtype=object)
    root = write_bundle(tmp_path / "p")
    arrays = dict(np.load(root / "model.npz"))
    arrays["blendshape_names"] = names
    np.savez(root / "model.npz", **arrays)
    with pytest.raises(BundleError, match="without pickle"):
        load_bundle(root)


def test_lenient_shapes_of_empty_and_flattened_arrays(tmp_path: Path) -> None:
    vertices, _, _ = sphere(16, 24)
    empty = {"blendshape_names": np.array([], dtype=np.str_), "blendshapes": np.zeros((0,), np.float32),
             "blendshape_regions": np.array([], dtype=np.str_)}  # fmt: skip
    data = load_bundle(write_bundle(tmp_path / "empty", pca=0, overrides=empty))
    assert data.shape_names == [] and data.shape_offsets.shape == (0, len(vertices), 3)

    root = write_bundle(tmp_path / "flat", pca=2, compressed=True)
    arrays = dict(np.load(root / "model.npz"))
    basis = arrays["pca_basis"]
    arrays["pca_basis"] = basis.reshape(2, -1)
    np.savez_compressed(root / "model.npz", **arrays)
    data = load_bundle(root)
    assert data.eigen_offsets is not None and data.eigen_offsets.shape == (2, len(vertices), 3)
    assert load_bundle(write_bundle(tmp_path / "nopca", pca=0)).eigen_names == []
