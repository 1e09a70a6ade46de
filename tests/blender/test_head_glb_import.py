"""head.glb (written by the backend) through Blender's own glTF importer: names and offsets survive.

The bundle is made by the backend's Python (`t2bs blendshapes` on ICT-FaceKit expressions), the file is
read here by the bpy wheel's glTF importer, and every shape key is compared with model.npz.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.timeout(300)

# glTF (+Y up) to Blender (+Z up), as Blender's importer converts it.
GLTF_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def key_coords(key: Any) -> np.ndarray:
    out = np.empty(len(key.data) * 3, dtype=np.float32)
    key.data.foreach_get("co", out)
    return out.reshape(-1, 3)


def test_head_glb_imports_with_the_same_shape_keys_and_offsets(ict_backend_bundle: Path) -> None:
    ict_bundle = ict_backend_bundle
    before = set(bpy.data.objects)
    assert bpy.ops.import_scene.gltf(filepath=str(ict_bundle / "head.glb")) == {"FINISHED"}
    meshes = [obj for obj in set(bpy.data.objects) - before if obj.type == "MESH"]
    try:
        assert len(meshes) == 1
        obj = meshes[0]
        with np.load(ict_bundle / "model.npz") as model:
            names = [str(name) for name in model["blendshape_names"]]
            neutral = model["neutral"] @ GLTF_TO_BLENDER.T
            offsets = model["blendshapes"] @ GLTF_TO_BLENDER.T
        diagonal = float(np.linalg.norm(neutral.max(0) - neutral.min(0)))
        keys = obj.data.shape_keys.key_blocks
        assert [key.name for key in keys][1:] == names
        # The basis key's value means nothing (Blender 5.0 gives it 1.0); every shape starts at 0.
        assert all(key.value == 0.0 for key in list(keys)[1:])
        basis = key_coords(keys[0])
        assert basis.shape == neutral.shape  # the importer kept every vertex, in order
        assert np.abs(basis - neutral).max() < 1e-5 * diagonal
        for index, name in enumerate(names):
            error = np.abs(key_coords(keys[name]) - basis - offsets[index]).max()
            assert error < 1e-5 * diagonal, f"{name}: {error / diagonal:.2e} of the diagonal"
    finally:
        for obj in set(bpy.data.objects) - before:
            bpy.data.objects.remove(obj)
