"""A bundle the real backend wrote (`t2bs blendshapes` on ICT-FaceKit data) through the add-on's import.

The same contract the synthetic fixture follows, checked on the backend's own output: model.npz and
manifest.json as `t2bs` writes them, a 24k-vertex head, drivers moving it by the model's offsets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.timeout(300)


def test_backend_bundle_imports_and_drives(clean_scene: Any, ict_backend_bundle: Path) -> None:
    backend_bundle = ict_backend_bundle
    assert bpy.ops.t2bs.import_bundle(directory=str(backend_bundle)) == {"FINISHED"}
    head = bpy.context.view_layer.objects.active
    with np.load(backend_bundle / "model.npz") as model:
        names = [str(n) for n in model["blendshape_names"]]
        neutral, shapes = model["neutral"], model["blendshapes"]
        eigen_count = len(model["pca_stdev"])
    keys = head.data.shape_keys.key_blocks
    assert [k.name for k in keys] == ["Basis", *names, *[f"eigen{i:03d}" for i in range(eigen_count)]]
    assert all(k.value == 0.0 for k in keys[1:])
    assert len(head.data.vertices) == len(neutral)

    controls = head.children[0]
    depsgraph = bpy.context.evaluated_depsgraph_get()
    index = names.index("jawOpen")
    controls["jawOpen"] = 1.0
    controls.update_tag()
    depsgraph.update()
    evaluated = head.evaluated_get(depsgraph).to_mesh()
    moved = np.empty(len(evaluated.vertices) * 3, np.float32)
    evaluated.vertices.foreach_get("co", moved)
    head.evaluated_get(depsgraph).to_mesh_clear()
    expected = (neutral + shapes[index]) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32).T
    np.testing.assert_allclose(moved.reshape(-1, 3), expected, atol=1e-5)
    assert np.abs(shapes[index]).max() > 1e-3  # the jaw really opens
