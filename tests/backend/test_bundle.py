"""Bundle layout and its array files: shapes checked on write and on read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from t2bs.bundle import (
    SCHEMA_VERSION,
    Bundle,
    Manifest,
    read_model,
    read_registered,
    write_model,
    write_registered,
)
from t2bs.errors import BundleError, InputError


def test_registered_round_trip_and_checks(tmp_path: Path) -> None:
    vertices = np.random.default_rng(0).normal(size=(4, 10, 3)).astype(np.float32)
    path = tmp_path / "registered" / "jawOpen.npz"
    write_registered(path, vertices)
    np.testing.assert_array_equal(read_registered(path, vertex_count=10), vertices)
    assert Bundle(tmp_path).registered_sequences() == ["jawOpen"]
    with pytest.raises(InputError, match="has 10 vertices per frame but the asset has 11"):
        read_registered(path, vertex_count=11)
    vertices[1, 2, 0] = np.nan
    write_registered(path, vertices)
    with pytest.raises(InputError, match="NaN"):
        read_registered(path)
    with pytest.raises(ValueError):
        write_registered(path, np.zeros((10, 3)))
    with pytest.raises(InputError, match="do not exist"):
        read_registered(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot be read"):
        read_registered(tmp_path / "junk.npz")


def test_model_requires_its_keys(tmp_path: Path) -> None:
    arrays = {
        "neutral": np.zeros((5, 3), np.float32),
        "faces": np.zeros((2, 3), np.int32),
        "blendshape_names": np.array(["jawOpen"]),
        "blendshapes": np.zeros((1, 5, 3), np.float32),
        "pca_mean": np.zeros((5, 3), np.float32),
        "pca_basis": np.zeros((1, 5, 3), np.float32),
        "pca_stdev": np.ones(1, np.float32),
    }
    write_model(tmp_path / "model.npz", arrays)
    assert read_model(tmp_path / "model.npz")["blendshape_names"].tolist() == ["jawOpen"]
    with pytest.raises(ValueError, match="pca_stdev"):
        write_model(tmp_path / "bad.npz", {k: v for k, v in arrays.items() if k != "pca_stdev"})
    np.savez(tmp_path / "partial.npz", neutral=arrays["neutral"])
    with pytest.raises(InputError, match="lacks faces"):
        read_model(tmp_path / "partial.npz")


def test_open_complete_refuses_unfinished_and_foreign_bundles(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.open_complete(tmp_path / "nothing")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(BundleError, match=r"no manifest.json"):
        Bundle.open_complete(tmp_path / "empty")
    bundle = Bundle(tmp_path / "b")
    bundle.root.mkdir()
    bundle.write_manifest(Manifest(pipeline="generate", status="cancelled"))
    with pytest.raises(BundleError, match=r"not finished.*--resume"):
        Bundle.open_complete(bundle.root)
    data = json.loads(bundle.manifest_path.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    bundle.manifest_path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="schema version"):
        bundle.read_manifest()
    bundle.manifest_path.write_text("{ torn")
    with pytest.raises(BundleError, match="cannot be read as JSON"):
        bundle.read_manifest()
