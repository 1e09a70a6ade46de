"""The deformable Gaussian model: a deformation field over control points and a colour refiner.

Conditioning, per rendered image: an expression/time code (one learned vector per frame of every
sequence) and a view code (azimuth and elevation as sines and cosines, and distance, of the camera
seen from the head). Registration evaluates the field at the canonical (frontal) view code, which
drops whatever the field explains by the view alone: the per-view inconsistency of generated videos.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .scaffold import Scaffold
from .sparse import csr_from_triplets, sparse_product, transposed_csr

VIEW_CODE_DIM = 5
# Thickness of a Gaussian along its surface normal, as a fraction of its size along the surface:
# a surface of splats, not a shell of balls sticking out by their radius. (It narrows the splats'
# silhouette excess over the mesh's only from 7% to 6%; the rest field in DeformableGaussians takes
# the remainder.)
FLATNESS = 0.1
# Strength of the light the shading starts with (DeformableGaussians.shading), against an ambient of 1.
INITIAL_LIGHT = 1e-3


def view_code(azimuth_deg: Tensor, elevation_deg: Tensor, distance: Tensor) -> Tensor:
    """[B] angles in degrees and distances in normalised units -> [B, 5] view codes."""
    a, e = torch.deg2rad(azimuth_deg), torch.deg2rad(elevation_deg)
    return torch.stack([torch.sin(a), torch.cos(a) - 1.0, torch.sin(e), torch.cos(e) - 1.0, distance - 2.0], -1)


def positional_encoding(x: Tensor, frequencies: int) -> Tensor:
    """[..., 3] -> [..., 3 + 6 * frequencies] (NeRF-style sines and cosines, octave spaced)."""
    bands = 2.0 ** torch.arange(frequencies, dtype=x.dtype, device=x.device) * math.pi
    angles = x[..., None] * bands  # [..., 3, F]
    return torch.cat([x, torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2)], dim=-1)


def axis_angle_to_matrix(v: Tensor) -> Tensor:
    """Rodrigues: [..., 3] axis-angle -> [..., 3, 3], smooth at zero."""
    theta2 = (v * v).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2 + 1e-12)
    # Taylor-safe coefficients sin(t)/t and (1 - cos(t))/t^2.
    a = torch.where(theta2 < 1e-8, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(theta2 < 1e-8, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta2 + 1e-12))
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def _mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    last = nn.Linear(width, outputs)
    # Start as the identity deformation and no colour change: the first frames are the static asset.
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    modules.append(last)
    return nn.Sequential(*modules)


def _conditioned(mlp: nn.Sequential, point_features: Tensor, condition: Tensor) -> Tensor:
    """`mlp` on every (item, point) pair: [P, F] point features, [B, D] conditions -> [B, P, outputs].

    Same result as the MLP on the [B, P, F + D] concatenation, but its first (linear) layer is split:
    the point part is computed once for all items and the condition part once per item. On the CPU
    that removes about 40% of the colour-refine MLP's cost, which runs on every Gaussian.
    """
    first = mlp[0]
    assert isinstance(first, nn.Linear)
    split = point_features.shape[-1]
    per_point = point_features @ first.weight[:, :split].t()  # [P, H]
    per_item = F.linear(condition, first.weight[:, split:], first.bias)  # [B, H]
    return mlp[1:](per_point[None] + per_item[:, None])


def _skin_matrix(index: np.ndarray, weight: np.ndarray, controls: int) -> Tensor:
    """Sparse [P, C] matrix with row p holding point p's skinning weights."""
    rows = np.repeat(np.arange(len(index)), index.shape[1])
    return csr_from_triplets(rows, index.reshape(-1), weight.reshape(-1), (len(index), controls))


def _unit(vectors: Tensor) -> Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class SurfaceNormals(nn.Module):
    """Unit normals of every Gaussian, from the positions of the mesh's vertices.

    Area-weighted vertex normals, blended per Gaussian as in `Scaffold.normal_corners`: at the static
    mesh this gives the scaffold's own normals. Each step is a constant sparse matrix (edges from
    vertices, face normals summed into vertices, vertices blended into Gaussians), so the whole
    thing costs three sparse products and a cross product per batch.
    """

    edges: Tensor
    edges_transposed: Tensor
    to_vertices: Tensor
    to_vertices_transposed: Tensor
    to_gaussians: Tensor
    to_gaussians_transposed: Tensor

    def __init__(self, faces: np.ndarray, vertex_count: int, corners: np.ndarray, weights: np.ndarray) -> None:
        super().__init__()
        face_count = len(faces)
        rows = np.arange(2 * face_count).repeat(2)
        cols = np.concatenate([faces[:, [1, 0]], faces[:, [2, 0]]]).reshape(-1)
        signs = np.tile([1.0, -1.0], 2 * face_count)
        matrices = {
            # rows f and F + f: the two edges of face f leaving its first corner
            "edges": csr_from_triplets(rows, cols, signs, (2 * face_count, vertex_count)),
            "to_vertices": csr_from_triplets(
                faces.reshape(-1), np.arange(face_count).repeat(3), np.ones(3 * face_count), (vertex_count, face_count)
            ),
            "to_gaussians": csr_from_triplets(
                np.arange(len(corners)).repeat(corners.shape[1]),
                corners.reshape(-1),
                weights.reshape(-1),
                (len(corners), vertex_count),
            ),
        }
        for name, matrix in matrices.items():
            self.register_buffer(name, matrix, persistent=False)
            self.register_buffer(f"{name}_transposed", transposed_csr(matrix), persistent=False)

    def forward(self, vertices: Tensor) -> Tensor:
        """vertices [B, V, 3] -> unit normals [B, N, 3]."""
        batch, count = vertices.shape[:2]
        stacked = vertices.permute(1, 0, 2).reshape(count, batch * 3)
        edges = sparse_product(self.edges, self.edges_transposed, stacked).reshape(2, -1, batch, 3)
        face_normals = torch.linalg.cross(edges[0], edges[1], dim=-1)
        summed = sparse_product(self.to_vertices, self.to_vertices_transposed, face_normals.reshape(-1, batch * 3))
        vertex_normals = _unit(summed.reshape(count, batch, 3)).reshape(count, batch * 3)
        blended = sparse_product(self.to_gaussians, self.to_gaussians_transposed, vertex_normals)
        return _unit(blended.reshape(-1, batch, 3)).permute(1, 0, 2)


def normal_quaternions(normals: Tensor) -> Tensor:
    """[..., 3] unit normals -> [..., 4] (w, x, y, z) shortest-arc rotations taking +Z onto them."""
    x, y, z = normals.unbind(-1)
    # The arc from +Z to n: axis z x n = (-y, x, 0), and w = 1 + z . n before normalising; straight
    # down (-Z) has no unique axis, so any half turn about X serves.
    w = 1.0 + z
    flipped = w < 1e-6
    quats = torch.stack([w, -y, x, torch.zeros_like(x)], -1)
    half_turn = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=normals.dtype, device=normals.device)
    quats = torch.where(flipped[..., None], half_turn, quats)
    return quats / quats.norm(dim=-1, keepdim=True)


@dataclass
class GaussianBatch:
    """Rasterizer-ready Gaussians of a batch of B images (normalised frame)."""

    means: Tensor  # [B, N, 3]
    quats: Tensor  # [B, N, 4] (w, x, y, z), each one's local +Z along its surface normal
    scales: Tensor  # [B, N, 3] standard deviations along the local axes (flat along local Z)
    colors: Tensor  # [B, N, 3] in 0..1
    shaded: Tensor  # [B, N, 3] the colours before the refine MLP's drift correction


class ControlDeformation:
    """Per-control rigid transforms and scales for a batch: what the field outputs."""

    def __init__(
        self,
        rotation: Tensor,
        translation: Tensor,
        log_scale: Tensor,
        global_rotation: Tensor,
        global_translation: Tensor,
    ) -> None:
        self.rotation = rotation  # [B, C, 3, 3]
        self.translation = translation  # [B, C, 3]
        self.log_scale = log_scale  # [B, C]
        self.global_rotation = global_rotation  # [B, 3, 3]
        self.global_translation = global_translation  # [B, 3]


class DeformableGaussians(nn.Module):
    """Deformation MLP over control points plus colour-refine MLP over Gaussians.

    Args:
        scaffold: the static Gaussians, controls and skinning (normalised frame).
        sequence_lengths: frames per sequence; frames are numbered through all sequences in order.
        code_dim: size of the expression/time code.
        hidden, layers: deformation MLP width and depth.
        refine_hidden: colour MLP width.
    """

    # Buffers (registered in __init__), declared for type checkers.
    static_means: Tensor
    static_scales: Tensor
    normals: Tensor
    controls: Tensor
    control_neighbors: Tensor
    skin: Tensor
    skin_transposed: Tensor
    vertex_skin: Tensor
    frame_sequence: Tensor
    frame_moves: Tensor
    control_features: Tensor
    gaussian_features: Tensor

    def __init__(
        self,
        scaffold: Scaffold,
        sequence_lengths: Sequence[int],
        *,
        code_dim: int = 32,
        hidden: int = 128,
        layers: int = 3,
        pe_frequencies: int = 6,
        refine_hidden: int = 32,
        refine_frequencies: int = 2,
        flatness: float = FLATNESS,
    ) -> None:
        super().__init__()
        self.flatness = flatness
        self.pe_frequencies = pe_frequencies
        self.refine_frequencies = refine_frequencies
        self.register_buffer("static_means", torch.from_numpy(scaffold.means))
        self.register_buffer("static_scales", torch.from_numpy(scaffold.scales))
        self.surface_normals = SurfaceNormals(
            scaffold.faces, scaffold.vertex_count, scaffold.normal_corners, scaffold.normal_weights
        )
        # The rest normals (back-face culling, undeformed renders): the same blend at the static mesh.
        with torch.no_grad():
            rest_normals = self.surface_normals(self.static_means[None, : scaffold.vertex_count])[0]
        self.register_buffer("normals", rest_normals)
        self.register_buffer("controls", torch.from_numpy(scaffold.controls))
        self.register_buffer("control_neighbors", torch.from_numpy(scaffold.control_neighbors))
        self.vertex_count = scaffold.vertex_count
        skin = _skin_matrix(scaffold.skin_index, scaffold.skin_weight, len(scaffold.controls))
        self.register_buffer("skin", skin, persistent=False)
        self.register_buffer("skin_transposed", transposed_csr(skin), persistent=False)
        self.register_buffer(
            "vertex_skin",
            _skin_matrix(
                scaffold.skin_index[: scaffold.vertex_count],
                scaffold.skin_weight[: scaffold.vertex_count],
                len(scaffold.controls),
            ),
            persistent=False,
        )
        # Expression/time code of frame t of sequence s: ramp[t] * direction[s] + residual[t]. Every
        # expression rises from neutral, so sharing one direction per sequence lets all its frames train
        # it together, and the ramp (learned, starting linear) orders them in time.
        lengths = [int(n) for n in sequence_lengths]
        generator = torch.Generator().manual_seed(len(lengths) * 7919 + sum(lengths))
        self.sequence_directions = nn.Parameter(torch.randn(len(lengths), code_dim, generator=generator))
        self.frame_ramps = nn.Parameter(torch.cat([torch.linspace(0.0, 1.0, n) for n in lengths]))
        self.frame_residuals = nn.Parameter(torch.zeros(sum(lengths), code_dim))
        self.frame_offsets = nn.Parameter(torch.zeros(sum(lengths), len(scaffold.controls), 3))
        # The same ramp scales one free offset field per sequence: all of a sequence's frames train it,
        # so a large act (an opening jaw) is reached in a short fit, where per-frame offsets, each
        # seen in a few steps only, fall short.
        self.sequence_offsets = nn.Parameter(torch.zeros(len(lengths), len(scaffold.controls), 3))
        # And one field of rotations (axis-angle, radians) per sequence, ramped alike: the skinning blends
        # each control's rigid map, so with rotations skin between two controls can turn, as a lid over
        # the eye or the chin about the jaw's hinge does, where blended translations alone only shear
        # it. The ARAP term ties them to each neighbourhood's best-fit rotation (losses.arap_loss).
        self.sequence_rotations = nn.Parameter(torch.zeros(len(lengths), len(scaffold.controls), 3))
        # One offset field shared by every frame, frame 0 included: what the splats need to match the
        # video's neutral head (a silhouette a little narrower than the splats' own) is then learned
        # once, here, and registration (which subtracts frame 0) never sees it. Without it, that
        # shrink is carried by the ramped and per-frame fields and bends their time course.
        self.rest_offsets = nn.Parameter(torch.zeros(len(scaffold.controls), 3))
        first = torch.zeros(sum(lengths))
        first[torch.cumsum(torch.tensor([0, *lengths[:-1]]), 0)] = 1.0
        self.register_buffer("frame_moves", 1.0 - first)
        self.register_buffer(
            "frame_sequence", torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
        )
        self.base_colors = nn.Parameter(torch.logit(torch.from_numpy(scaffold.colors).clamp(0.02, 0.98)))
        # Static per-Gaussian size and opacity corrections, shared by all frames: they let the neutral
        # head match the video's silhouette, which otherwise pushes non-neutral frames to move.
        self.base_log_scales = nn.Parameter(torch.zeros(len(scaffold.means)))
        self.base_opacity_logits = nn.Parameter(torch.full((len(scaffold.means),), 3.0))
        # And a static offset of each Gaussian along its normal (normalised units), before skinning. A
        # blob of splats is not a mesh render: at a silhouette or a fold each splat reaches past the
        # surface by its size, and the smooth rest field cannot pull single splats in. Offsets shared by
        # every frame change only how the neutral head is drawn; registration skins the mesh's own
        # vertices (`vertices`), so they never enter its output. ICT preview 75.5 -> 76.4%, seed 1
        # 73.6 -> 74.1%, the 12-view jaw capture 82.9 -> 83.4%; free 3D offsets instead: 76.8 / 73.0 /
        # 82.9% (docs/benchmarks.md).
        self.base_depths = nn.Parameter(torch.zeros(len(scaffold.means)))
        # Diffuse shading of the (moved) surface normal: an ambient term plus one grey directional
        # light fixed to the head, clamped where the skin faces away from it (Lambert), packed as
        # [ambient, light direction x strength]. A jaw or a cheek that turns changes its brightness;
        # without a term that knows the normal turned, that change pulls on the geometry. The clamp
        # matters: a linear light (first-order spherical harmonics) darkens skin that faces away from
        # the light ever more, where the video keeps it at the ambient level, and the fit moved the
        # geometry to explain the difference (ICT preview 74.3 -> 75.5%, the jaw capture 79.0 ->
        # 82.9%; docs/benchmarks.md). Starts as ambient light alone, plus a faint light from +Z so
        # that the clamp passes a gradient to the light (at exactly zero it would never turn on).
        self.shading = nn.Parameter(torch.tensor([1.0, 0.0, 0.0, INITIAL_LIGHT]))
        control_features = 3 + 6 * pe_frequencies
        self.deform = _mlp(control_features + code_dim + VIEW_CODE_DIM, hidden, layers, 7)
        self.head_pose = _mlp(code_dim + VIEW_CODE_DIM, 64, 2, 6)
        gaussian_features = 3 + 6 * refine_frequencies
        self.refine = _mlp(gaussian_features + code_dim + VIEW_CODE_DIM, refine_hidden, 2, 6)
        self.register_buffer("control_features", positional_encoding(self.controls, pe_frequencies))
        self.register_buffer("gaussian_features", positional_encoding(self.static_means, refine_frequencies))

    @property
    def frame_count(self) -> int:
        return int(self.frame_residuals.shape[0])

    def ramps(self, frames: Tensor) -> Tensor:
        """[B] frame indices -> [B] expression ramps; 0 at every sequence's frame 0, which is neutral."""
        return self.frame_ramps[frames] * self.frame_moves[frames]

    def frame_codes(self, frames: Tensor) -> Tensor:
        """[B] frame indices -> [B, D] expression/time codes."""
        direction = self.sequence_directions[self.frame_sequence[frames]]
        return self.ramps(frames)[:, None] * direction + self.frame_residuals[frames]

    # -- deformation -------------------------------------------------------------------------------

    def control_deformation(self, codes: Tensor, views: Tensor, frames: Tensor | None = None) -> ControlDeformation:
        """codes [B, D], views [B, 5] -> per-control transforms for each batch item.

        With `frames` [B], each frame's free per-control offsets are added to the translations: the MLP
        gives the smooth, shared part of the motion and learns slowly; the offsets let every frame take
        what its images show within a short fit, kept in check by the geometry and temporal terms.
        """
        condition = torch.cat([codes, views], -1)
        out = _conditioned(self.deform, self.control_features, condition)
        # Output scaling keeps the early steps gentle; translations in normalised units.
        axis_angle = out[..., :3] * 0.5
        translation = out[..., 3:6] * 0.05 + self.rest_offsets
        if frames is not None:
            ramp = self.ramps(frames)[:, None, None]
            sequence = self.frame_sequence[frames]
            translation = translation + ramp * self.sequence_offsets[sequence] + self.frame_offsets[frames]
            axis_angle = axis_angle + ramp * self.sequence_rotations[sequence]
        rotation = axis_angle_to_matrix(axis_angle)
        log_scale = out[..., 6] * 0.1
        pose = self.head_pose(condition)
        global_rotation = axis_angle_to_matrix(pose[:, :3] * 0.2)
        global_translation = pose[:, 3:] * 0.05
        return ControlDeformation(rotation, translation, log_scale, global_rotation, global_translation)

    def deform_points(
        self,
        deformation: ControlDeformation,
        skin: Tensor,
        points: Tensor,
        skin_transposed: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Linear blend skinning of `points` [P, 3] with the sparse (CSR) skinning matrix `skin` [P, C].

        With `skin_transposed` (its transpose, [C, P]) the backward pass uses it instead of building it.

        Returns:
            positions [B, P, 3] and scale factors [B, P].
        """
        rot, trans = deformation.rotation, deformation.translation
        batch, controls = rot.shape[:2]
        # Each control's affine map x -> R (x - c) + c + t as a 3x4 matrix; blending the matrices with
        # one sparse product is far cheaper than gathering K transforms per point.
        offset = self.controls + trans - (rot @ self.controls[None, ..., None]).squeeze(-1)
        affine = torch.cat([rot.reshape(batch, controls, 9), offset, torch.exp(deformation.log_scale)[..., None]], -1)
        stacked = affine.permute(1, 0, 2).reshape(controls, batch * 13)
        blended = skin @ stacked if skin_transposed is None else sparse_product(skin, skin_transposed, stacked)
        blended = blended.reshape(-1, batch, 13).permute(1, 0, 2)  # [B, P, 13]
        a = blended[..., :9].reshape(batch, -1, 3, 3)
        # One batched product, far cheaper than [B, P] 3x3 matmuls.
        carried = torch.einsum("bpij,pj->bpi", a, points)
        moved = (carried + blended[..., 9:12]) @ deformation.global_rotation.transpose(1, 2)
        return moved + deformation.global_translation[:, None], blended[..., 12]

    def gaussians(
        self, codes: Tensor, views: Tensor, *, frames: Tensor | None = None, deform: bool = True
    ) -> tuple[GaussianBatch, ControlDeformation | None]:
        """Gaussians for a batch; with `deform=False` the static ones (only colours are conditioned).

        Returns:
            the batch's Gaussians, and the control deformation (None with `deform=False`).
        """
        batch = codes.shape[0]
        deformation: ControlDeformation | None = None
        if deform:
            deformation = self.control_deformation(codes, views, frames)
            means, scale_factor = self.deform_points(deformation, self.skin, self.rest_means(), self.skin_transposed)
            # Normals from the moved surface, not carried by the skinning transforms: the offset
            # fields move controls without turning them, so carried normals stay put while the
            # videos show skin turning darker or lighter as it bends (on ICT, a quarter to most of
            # what changes in the images). Shading and the flat splats' orientation follow the motion.
            normals = self.surface_normals(means[:, : self.vertex_count])
            sizes = self.static_scales[None] * torch.exp(self.base_log_scales)[None] * scale_factor
        else:
            means = self.rest_means()[None].expand(batch, -1, -1)
            normals = self.normals[None].expand(batch, -1, -1)
            sizes = (self.static_scales * torch.exp(self.base_log_scales))[None].expand(batch, -1)
        thickness = torch.tensor([1.0, 1.0, self.flatness], dtype=sizes.dtype, device=sizes.device)
        scales = sizes[..., None] * thickness
        refine = _conditioned(self.refine, self.gaussian_features, torch.cat([codes, views], -1))
        # Colour drift is modelled as a per-Gaussian gain and offset around the learned base colour.
        shade = self.shading[0] + (normals @ self.shading[1:]).clamp_min(0.0)
        base = torch.sigmoid(self.base_colors)[None] * shade[..., None]
        colors = base * (1.0 + 0.3 * torch.tanh(refine[..., :3])) + 0.2 * torch.tanh(refine[..., 3:])
        return GaussianBatch(means, normal_quaternions(normals), scales, colors, base), deformation

    def rest_means(self) -> Tensor:
        """[N, 3] the Gaussians' undeformed centres: the scaffold's, moved along the normal by `base_depths`."""
        return self.static_means + self.normals * self.base_depths[:, None]

    def opacities(self) -> Tensor:
        """[N] static opacities in 0..1."""
        return torch.sigmoid(self.base_opacity_logits)

    def vertices(self, codes: Tensor, views: Tensor, frames: Tensor | None = None) -> Tensor:
        """Deformed mesh vertices [B, V, 3] (normalised frame): registration's output."""
        deformation = self.control_deformation(codes, views, frames)
        moved, _ = self.deform_points(deformation, self.vertex_skin, self.static_means[: self.vertex_count])
        return moved
