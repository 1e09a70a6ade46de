"""Blendshape math (DESIGN.md stage 6): registered frames -> named shapes and eigen-expressions.

Pure numpy. Positions and offsets are [V, 3] arrays in one consistent frame and unit (the model stage
uses the asset file's coordinates); lengths such as the split falloff are given in that unit.

* `pca_model`: eigen-expressions of all frame offsets (mean, unit-norm components, standard deviations,
  variance explained), as the paper uses them for retargeting and evaluation.
* `peak_offset`: one shape per sequence, from the frames where the expression is strongest.
* `find_symmetry_plane` + `left_weights`: the face's mirror plane found from the mesh itself, and a
  smooth 0..1 weight that splits a symmetric shape into a Left and a Right half summing to the whole.
* `motion_mask`: a region mask from the displacement itself, which removes the drift a fit leaves in
  regions an expression does not move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.spatial import cKDTree

# Mirror-plane search: enough points for a stable estimate, few enough to take milliseconds.
_SYMMETRY_SAMPLES = 30000
_SYMMETRY_ITERATIONS = 40


# -- eigen-expressions -----------------------------------------------------------------------------


@dataclass
class PcaModel:
    """Eigen-expressions of a set of offsets.

    Attributes:
        mean: [V, 3] mean offset.
        basis: [M, V, 3] orthonormal components (each has unit Frobenius norm), strongest first.
        stdev: [M] standard deviation of the data along each component (same unit as the offsets).
        variance_ratio: [M] fraction of the total variance each component explains.
    """

    mean: np.ndarray
    basis: np.ndarray
    stdev: np.ndarray
    variance_ratio: np.ndarray


def pca_model(offsets: np.ndarray, max_components: int = 100, min_variance_ratio: float = 1e-9) -> PcaModel:
    """PCA of [N, V, 3] offsets (N samples), up to `max_components` components.

    The Gram matrix (N x N) is decomposed instead of the data matrix, because N (frames, hundreds) is
    far smaller than 3V (tens of thousands); it is accumulated in float64 so that weak components
    keep their precision. Components explaining less than `min_variance_ratio` are dropped.
    """
    offsets = np.asarray(offsets, dtype=np.float32)
    if offsets.ndim != 3 or offsets.shape[2] != 3 or len(offsets) < 2:
        raise ValueError(f"offsets must be [N >= 2, V, 3], got {offsets.shape}")
    count, vertex_count, _ = offsets.shape
    mean = offsets.mean(axis=0)
    centred = (offsets - mean).reshape(count, -1).astype(np.float64)
    gram = centred @ centred.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.clip(eigenvalues[order], 0.0, None)
    eigenvectors = eigenvectors[:, order]
    total = float(eigenvalues.sum())
    if total <= 0.0:
        empty = np.zeros((0, vertex_count, 3), dtype=np.float32)
        return PcaModel(mean, empty, np.zeros(0, np.float32), np.zeros(0, np.float32))
    ratio = eigenvalues / total
    keep = int(min(max_components, count - 1, int((ratio > min_variance_ratio).sum())))
    singular = np.sqrt(eigenvalues[:keep])
    basis = (eigenvectors[:, :keep].T @ centred) / singular[:, None]
    # Fix each component's sign (largest coordinate positive), so that rebuilding the model from the
    # same frames gives the same file.
    flips = np.sign(basis[np.arange(keep), np.abs(basis).argmax(axis=1)])
    basis *= flips[:, None]
    return PcaModel(
        mean=mean,
        basis=basis.reshape(keep, vertex_count, 3).astype(np.float32),
        stdev=(singular / np.sqrt(count - 1)).astype(np.float32),
        variance_ratio=ratio[:keep].astype(np.float32),
    )


# -- one shape per sequence ------------------------------------------------------------------------


def peak_offset(frames: np.ndarray, neutral: np.ndarray, peak_fraction: float = 0.9) -> np.ndarray:
    """The offset [V, 3] of a sequence at its peak.

    Averages the frames whose mean displacement is at least `peak_fraction` of the largest, which
    keeps the full strength of the act while averaging out the frame-to-frame jitter of a fit.

    Args:
        frames: [T, V, 3] registered positions; frame 0 is the neutral face.
        neutral: [V, 3] neutral positions.
    """
    offsets = np.asarray(frames, dtype=np.float64) - np.asarray(neutral, dtype=np.float64)
    strength = np.linalg.norm(offsets, axis=2).mean(axis=1)
    peak = float(strength.max())
    if peak <= 0.0:
        return np.zeros(offsets.shape[1:], dtype=np.float32)
    chosen = strength >= peak_fraction * peak
    return offsets[chosen].mean(axis=0).astype(np.float32)


# -- symmetry --------------------------------------------------------------------------------------


@dataclass
class SymmetryPlane:
    """The plane `normal . p = offset`; `normal` (unit) points to the character's left.

    `residual` is the mean distance between a vertex's mirror image and the nearest vertex, in the
    vertices' unit: near 0 for a symmetric mesh.
    """

    normal: np.ndarray
    offset: float
    residual: float

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """[..., 3] points -> [...] distances; positive on the character's left."""
        return np.asarray(points, dtype=np.float64) @ self.normal - self.offset

    def as_array(self) -> np.ndarray:
        """[4] float32: normal then offset (stored in model.npz)."""
        return np.append(self.normal, self.offset).astype(np.float32)


def find_symmetry_plane(vertices: np.ndarray, left_hint: np.ndarray | None = None, seed: int = 0) -> SymmetryPlane:
    """The mirror plane of a mesh, found from its vertices.

    Candidate planes through the centroid, normal to the principal axes and to the coordinate axes, are
    scored by how well the mirrored vertices land on the mesh; the best is refined by iterating
    closest-point matching (the reflective version of ICP): matched pairs p, q of mirror images
    differ along the normal, so the normal is the principal direction of p - q and the plane passes
    through their midpoints.

    Args:
        vertices: [V, 3] positions.
        left_hint: [3] a direction toward the character's left; the normal is oriented along it.
            Without it the normal's sign is arbitrary (positive largest coordinate).
    """
    points = np.asarray(vertices, dtype=np.float64)
    if len(points) > _SYMMETRY_SAMPLES:
        points = points[np.random.default_rng(seed).choice(len(points), _SYMMETRY_SAMPLES, replace=False)]
    tree = cKDTree(points)
    centroid = points.mean(axis=0)
    _, principal = np.linalg.eigh(np.cov((points - centroid).T))
    candidates = [*principal.T, *np.eye(3)]

    def mirror_error(normal: np.ndarray, offset: float) -> tuple[float, np.ndarray]:
        mirrored = points - 2.0 * (points @ normal - offset)[:, None] * normal
        distances, matches = tree.query(mirrored)
        return float(distances.mean()), matches

    scored = [(mirror_error(n, float(centroid @ n))[0], n) for n in candidates]
    _, normal = min(scored, key=lambda item: item[0])
    offset = float(centroid @ normal)
    for _ in range(_SYMMETRY_ITERATIONS):
        _error, matches = mirror_error(normal, offset)
        partners = points[matches]
        difference = points - partners
        # Pairs far from being mirror images (no counterpart on the other side) would bias the fit.
        distances = np.linalg.norm(points - 2.0 * (points @ normal - offset)[:, None] * normal - partners, axis=1)
        good = distances <= max(2.5 * float(np.median(distances)), 1e-12)
        scatter = difference[good].T @ difference[good]
        _, vectors = np.linalg.eigh(scatter)
        new_normal = vectors[:, -1]
        if new_normal @ normal < 0:
            new_normal = -new_normal
        midpoints = (points[good] + partners[good]) / 2.0
        new_offset = float(np.median(midpoints @ new_normal))
        converged = np.allclose(new_normal, normal, atol=1e-7) and abs(new_offset - offset) < 1e-9
        normal, offset = new_normal, new_offset
        if converged:
            break
    residual, _ = mirror_error(normal, offset)
    if left_hint is not None:
        sign = 1.0 if float(np.dot(normal, left_hint)) >= 0.0 else -1.0
    else:
        sign = 1.0 if normal[np.abs(normal).argmax()] >= 0.0 else -1.0
    return SymmetryPlane(normal=sign * normal, offset=sign * offset, residual=residual)


def left_weights(vertices: np.ndarray, plane: SymmetryPlane, falloff: float) -> np.ndarray:
    """[V] weights of the Left half: 0 on the right, 1 on the left, a smoothstep across the plane.

    The Right half's weight is `1 - left`, so the two halves always sum back to the whole shape.

    Args:
        vertices: [V, 3] neutral positions.
        falloff: half-width of the blend band across the plane (same unit as `vertices`).
    """
    if falloff <= 0.0:
        raise ValueError("falloff must be positive")
    t = np.clip((plane.signed_distance(vertices) + falloff) / (2.0 * falloff), 0.0, 1.0)
    weights: np.ndarray = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return weights


# -- cleaning --------------------------------------------------------------------------------------


def vertex_adjacency(faces: np.ndarray, vertex_count: int) -> scipy.sparse.csr_matrix:
    """[V, V] row-normalised adjacency of the mesh's edges (each row averages a vertex's neighbours).

    Vertices without faces average over themselves.
    """
    faces = np.asarray(faces, dtype=np.int64)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adjacency = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(vertex_count, vertex_count)).tocsr()
    adjacency.data[:] = 1.0  # shared edges were summed
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    lonely = degree == 0
    adjacency = adjacency + scipy.sparse.diags(lonely.astype(np.float64))
    degree[lonely] = 1.0
    normalised: scipy.sparse.csr_matrix = scipy.sparse.diags(1.0 / degree) @ adjacency
    return normalised.tocsr()


def motion_mask(
    offset: np.ndarray,
    adjacency: scipy.sparse.csr_matrix,
    *,
    low: float = 0.03,
    high: float = 0.12,
    noise: float = 0.0,
    grow: int = 3,
) -> np.ndarray:
    """[V] weight in 0..1 of where a shape really moves, from its displacement alone.

    Vertices moving more than `high` of the shape's peak keep their motion; below `low` of the peak
    (or below 3x the `noise` level a fit leaves everywhere) it is drift and goes to 0, with a linear
    ramp between. The mask is then grown `grow` rings over the mesh with a soft edge, so that the
    border of a region fades out instead of stepping.

    Args:
        offset: [V, 3] the shape's displacement.
        adjacency: from `vertex_adjacency`.
        noise: typical displacement of still vertices (same unit as `offset`), e.g. a fit's jitter.
    """
    magnitude = np.linalg.norm(np.asarray(offset, dtype=np.float64), axis=1)
    peak = float(magnitude.max(initial=0.0))
    if peak <= 0.0:
        return np.zeros(len(magnitude), dtype=np.float32)
    # The noise floor may raise the threshold, but never above half the peak: an act that moves no
    # more than the noise is still the act the user asked for.
    lower = min(max(low * peak, 3.0 * noise), 0.5 * peak)
    upper = max(high * peak, 2.0 * lower)
    mask = np.clip((magnitude - lower) / (upper - lower), 0.0, 1.0)
    for _ in range(grow):
        mask = np.maximum(mask, 0.5 * (adjacency @ mask))
    return mask.astype(np.float32)
