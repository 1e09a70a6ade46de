"""What the fit writes into `fit/` and how the register stage reads it back.

fit/fit.json               preset, sequences (code table spans), canonical view code, sizes
fit/scaffold.safetensors   static Gaussians, controls and skinning (so registration needs no rebuild)
fit/deformation.safetensors  the networks' weights and the per-frame codes
fit/gaussians.ply          the neutral Gaussians in the standard 3DGS layout, asset file coordinates
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy, save_file as save_numpy
from safetensors.torch import load_file as load_torch, save_file as save_torch

from ..errors import BundleError
from ..fileio import atomic_open, write_json_atomic
from ..mesh_io import HeadMesh
from .model import DeformableGaussians
from .scaffold import Scaffold

FIT_JSON = "fit/fit.json"
SCAFFOLD = "fit/scaffold.safetensors"
WEIGHTS = "fit/deformation.safetensors"
GAUSSIANS_PLY = "fit/gaussians.ply"
# 2: the scaffold carries the mesh's faces, for normals that follow the surface.
# 3: the four `shading` numbers are an ambient level and a light clamped where the skin faces away
#    (Lambert), no longer a linear light: the same tensor read with the old meaning would mis-shade.
# 4: each Gaussian's learned offset along its normal (`base_depths`); weights without it would load
#    with the splats back on the mesh, a neutral head the fit never matched.
FIT_FORMAT_VERSION = 4

_SCAFFOLD_ARRAYS = (
    "means",
    "colors",
    "scales",
    "controls",
    "skin_index",
    "skin_weight",
    "control_neighbors",
    "faces",
    "normal_corners",
    "normal_weights",
)
LEARNED_TENSORS = (
    "sequence_directions",
    "frame_ramps",
    "frame_residuals",
    "frame_offsets",
    "sequence_offsets",
    "sequence_rotations",
    "rest_offsets",
    "shading",
    "base_colors",
    "base_log_scales",
    "base_opacity_logits",
    "base_depths",
)
SH_C0 = 0.28209479177387814  # degree-0 spherical harmonic: colour = 0.5 + SH_C0 * f_dc


def save_scaffold(path: Path, scaffold: Scaffold) -> None:
    arrays = {name: np.ascontiguousarray(getattr(scaffold, name)) for name in _SCAFFOLD_ARRAYS}
    arrays["vertex_count"] = np.array([scaffold.vertex_count], np.int64)
    save_numpy(arrays, str(path))


def load_scaffold(path: Path) -> Scaffold:
    try:
        arrays = load_numpy(str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise BundleError(f"{path} cannot be read ({exc}); run the fit again.") from None
    missing = [name for name in (*_SCAFFOLD_ARRAYS, "vertex_count") if name not in arrays]
    if missing:
        raise BundleError(f"{path} lacks {', '.join(missing)}; run the fit again.")
    fields: dict[str, Any] = {name: arrays[name] for name in _SCAFFOLD_ARRAYS}
    return Scaffold(vertex_count=int(arrays["vertex_count"][0]), laplacian=sp.csr_matrix((0, 0)), **fields)


def save_weights(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write the learned tensors of a model state (not the buffers rebuilt from the scaffold)."""
    # Buffers are rebuilt from the scaffold; only what was learned is stored.
    learned = {k: v.detach().cpu().contiguous() for k, v in state.items() if _is_learned(k)}
    tmp = path.with_name(path.name + ".tmp")
    save_torch(learned, str(tmp), metadata=metadata)
    tmp.replace(path)


def _is_learned(name: str) -> bool:
    return name in LEARNED_TENSORS or name.startswith(("deform.", "head_pose.", "refine."))


def load_weights(model: DeformableGaussians, path: Path) -> None:
    try:
        state = load_torch(str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise BundleError(f"{path} cannot be read ({exc}); run the fit again.") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError:  # a tensor of another shape: weights of another scaffold or preset
        raise BundleError(f"{path} does not match the fitted model; run the fit again.") from None
    learned_missing = [k for k in missing if _is_learned(k)]
    if learned_missing or unexpected:
        raise BundleError(f"{path} does not match the fitted model; run the fit again.")


def write_fit_json(path: Path, info: dict[str, Any]) -> None:
    write_json_atomic(path, {"version": FIT_FORMAT_VERSION, **info})


def read_fit_json(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} cannot be read ({exc}); run the fit again.") from None
    if info.get("version") != FIT_FORMAT_VERSION:
        raise BundleError(f"{path} has format version {info.get('version')!r}; run the fit again.")
    return info


def write_gaussians_ply(
    path: Path,
    means: np.ndarray,
    quats: np.ndarray,
    scales: np.ndarray,
    colors: np.ndarray,
    opacities: np.ndarray,
    mesh: HeadMesh,
) -> None:
    """The neutral Gaussians in the 3DGS PLY layout (what common splat viewers open).

    means [N, 3], quats [N, 4] (w, x, y, z) and scales [N, 3] in the normalised frame, colors [N, 3]
    and opacities [N] in 0..1; written in the asset file's coordinates.
    """
    points = mesh.to_source_points(means).astype(np.float32)
    log_scale = np.log(np.maximum(scales * mesh.source_scale, 1e-12)).astype(np.float32)
    frame = _matrix_to_quaternion(mesh.to_source[:3, :3] / mesh.source_scale)
    quat = _quaternion_product(frame, quats / np.linalg.norm(quats, axis=1, keepdims=True))
    fields = [
        "x",
        "y",
        "z",
        "nx",
        "ny",
        "nz",
        "f_dc_0",
        "f_dc_1",
        "f_dc_2",
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        "rot_0",
        "rot_1",
        "rot_2",
        "rot_3",
    ]
    count = len(points)
    data = np.zeros((count, len(fields)), np.float32)
    data[:, 0:3] = points
    data[:, 6:9] = (np.clip(colors, 0, 1) - 0.5) / SH_C0
    clipped = np.clip(opacities, 1e-6, 1 - 1e-6)
    data[:, 9] = np.log(clipped / (1 - clipped))
    data[:, 10:13] = log_scale
    data[:, 13:17] = quat
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {count}\n"
    header += "".join(f"property float {name}\n" for name in fields) + "end_header\n"
    with atomic_open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(data.astype("<f4").tobytes())


def _quaternion_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (w, x, y, z) quaternions a [4] and b [N, 4]: the rotation b, then a."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b.T
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=1,
    ).astype(np.float32)


def _matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    w = np.sqrt(max(1.0 + r[0, 0] + r[1, 1] + r[2, 2], 1e-12)) / 2
    return np.array(
        [w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w)], np.float32
    )
