"""The add-on reads what the backend writes: a model.npz and manifest made by `t2bs`'s own writers.

Skips where `t2bs` is not importable (the Blender test environments); runs in the main suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from t2bs_blender.bundle import load_bundle

from .bundle_fixture import shape_offsets, sphere

bundle_module = pytest.importorskip("t2bs.bundle")
model_module = pytest.importorskip("t2bs.blendshape_model")
blendshapes_module = pytest.importorskip("t2bs.blendshapes")


def test_backend_written_bundle_imports(tmp_path: Path) -> None:
    vertices, faces, uv = sphere(8, 12)
    names, regions, offsets = shape_offsets(vertices, 4)
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, *vertices.shape)).astype(np.float32)
    basis /= np.linalg.norm(basis.reshape(2, -1), axis=1)[:, None, None]
    pca = blendshapes_module.PcaModel(
        mean=np.zeros_like(vertices), basis=basis, stdev=np.array([0.02, 0.01], np.float32),
        variance_ratio=np.array([0.7, 0.3], np.float32),
    )  # fmt: skip
    model = model_module.BlendshapeModel(
        neutral=vertices, faces=faces, names=names, shapes=offsets, regions=regions, sources=names, pca=pca,
        symmetry=np.array([1, 0, 0, 0], np.float32), uv=uv, colors=np.full((len(vertices), 3), 90, np.uint8),
    )  # fmt: skip
    root = tmp_path / "bundle"
    bundle = bundle_module.Bundle(root)
    root.mkdir(parents=True, exist_ok=True)
    bundle_module.write_model(root / bundle_module.MODEL, model.to_arrays())
    manifest = bundle_module.Manifest(pipeline="generate", prompt="a contract test", status="complete",
                                      settings={"up_axis": "+y", "front_axis": "+z"})  # fmt: skip
    bundle.write_manifest(manifest)

    data = load_bundle(root)
    assert data.prompt == "a contract test" and data.shape_names == names and data.shape_regions == regions
    np.testing.assert_allclose(data.vertices[:, 2], vertices[:, 1])
    np.testing.assert_allclose(data.shape_offsets[0][:, 2], offsets[0][:, 1])
    assert data.eigen_names == ["eigen000", "eigen001"] and data.colors is not None and data.uv is not None
