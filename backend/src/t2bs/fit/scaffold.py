"""Static Gaussians, control points and skinning weights, built once from the static mesh.

All positions are in the asset's normalised frame (mesh_io: +Y up, face toward +Z, largest side 1).
The first V Gaussians are the mesh's own vertices, in order, so registration reads the deformed mesh
straight off the deformed Gaussians.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from ..mesh_io import HeadMesh

# Width of the skinning weights' Gaussian falloff along the surface, as a fraction of the control
# spacing. Narrower than the spacing, so that a vertex follows its nearest controls and the edge
# between moving and still skin (an eyelid under a still brow, a dimple beside a still cheek) stays
# sharp: on ICT the least-squares ceiling of 600 controls rises from 81% to 84% of the motion at 0.6,
# and the preview fit from 57.9% to 60.4% (docs/benchmarks.md). Narrower still adds nothing.
SKIN_WIDTH = 0.6


@dataclass
class Scaffold:
    """Everything the fit needs that does not change during optimisation.

    Attributes:
        means: [N, 3] float32 static Gaussian centres; the first `vertex_count` are the mesh vertices.
        faces: [F, 3] int64 the mesh's triangles, over the first `vertex_count` Gaussians.
        normal_corners, normal_weights: [N, 3] int64 / float32: each Gaussian's normal is the
            normalised blend of these vertices' normals (a vertex: itself; a surface sample: its
            triangle's corners at its barycentric coordinates), at rest and on a deformed mesh alike
            (`model.SurfaceNormals`).
        colors: [N, 3] float32 linear colours 0..1 from the texture or vertex colours.
        scales: [N] float32 isotropic standard deviations, from nearest-neighbour spacing.
        vertex_count: V, number of mesh vertices at the front of the arrays.
        controls: [C, 3] float32 control point positions (a subset of the vertices).
        skin_index: [N, K] int64 indices of each Gaussian's controls.
        skin_weight: [N, K] float32 skinning weights, rows sum to 1.
        control_neighbors: [C, J] int64 nearby controls, for the as-rigid-as-possible term.
        laplacian: [V, V] sparse uniform graph Laplacian of the mesh (x_i - mean of neighbours).
    """

    means: np.ndarray
    colors: np.ndarray
    scales: np.ndarray
    vertex_count: int
    controls: np.ndarray
    skin_index: np.ndarray
    skin_weight: np.ndarray
    control_neighbors: np.ndarray
    laplacian: sp.csr_matrix
    faces: np.ndarray
    normal_corners: np.ndarray
    normal_weights: np.ndarray

    @property
    def count(self) -> int:
        return len(self.means)


def mesh_colors(mesh: HeadMesh) -> np.ndarray:
    """[V, 3] float32 vertex colours 0..1 from vertex colours, else the texture at each UV, else grey."""
    if mesh.vertex_colors is not None:
        return mesh.vertex_colors.astype(np.float32) / 255.0
    if mesh.texture is not None and mesh.uv is not None:
        return sample_texture(mesh.texture, mesh.uv)
    return np.full((mesh.vertex_count, 3), 0.6, np.float32)


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookup: texture [H, W, 3] uint8 (row 0 on top), uv [..., 2] with v up -> [..., 3] 0..1."""
    height, width = texture.shape[:2]
    x = np.clip(uv[..., 0] % 1.0 * width - 0.5, 0, width - 1)
    y = np.clip((1.0 - uv[..., 1] % 1.0) * height - 0.5, 0, height - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    tex = texture.astype(np.float32) / 255.0
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def sample_surface(mesh: HeadMesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted random points on the triangles.

    Returns:
        face_index [count], barycentric [count, 3], nearest corner vertex [count].
    """
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(mesh.faces), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    nearest = mesh.faces[face, np.argmax(bary, axis=1)]
    return face, bary, nearest.astype(np.int64)


def farthest_points(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `count` points spread evenly by farthest-point sampling."""
    count = min(count, len(points))
    chosen = np.empty(count, np.int64)
    chosen[0] = rng.integers(len(points))
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    for i in range(1, count):
        chosen[i] = int(np.argmax(distance))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[i]], axis=1))
    return chosen


def mesh_edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Symmetric sparse [V, V] graph of mesh edges weighted by their length."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1) + 1e-12
    n = len(vertices)
    graph = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def uniform_laplacian(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    graph = mesh_edge_graph(vertices, faces)
    adjacency = (graph > 0).astype(np.float32)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse = sp.diags(1.0 / np.maximum(degree, 1.0))
    return (sp.identity(len(vertices), dtype=np.float32, format="csr") - inverse @ adjacency).tocsr()


def _geodesic_from_controls(
    graph: sp.csr_matrix, control_vertices: np.ndarray, radius: float, chunk: int = 128
) -> Iterator[tuple[int, np.ndarray]]:
    """Surface distances from the controls, a chunk of controls at a time: (first control, [chunk, V]).

    Distances beyond `radius` are inf; the search stops there, which keeps it cheap on a dense mesh.
    """
    for start in range(0, len(control_vertices), chunk):
        yield start, dijkstra(graph, indices=control_vertices[start : start + chunk], limit=radius)


def _follow_host_part(
    vertices: np.ndarray, graph: sp.csr_matrix, reached: np.ndarray, best_d: np.ndarray, best_i: np.ndarray
) -> None:
    """Give every vertex that reached no control along the surface the skinning of the nearest vertex
    that did, on one host part: its own connected part where that part holds reached vertices, else
    the part that most of its vertices lie nearest to. Fills `best_d` and `best_i` [V, k] in place.

    A separate part without a control (a cornea, a tooth) thus moves as one with the part it sits in
    (the eyeball, the gums). Per-vertex Euclidean neighbours tore it apart: on ICT a cornea took a
    sixth of its weight from the lid in front of it, so a closing lid dragged the iris down with it.
    """
    _, part = connected_components(graph, directed=False)
    hosts = np.flatnonzero(reached)
    nearest_host = cKDTree(vertices[hosts])
    for separate in np.unique(part[~reached]):
        members = np.flatnonzero((part == separate) & ~reached)
        own = hosts[part[hosts] == separate]
        if len(own) == 0:
            _, nearest = nearest_host.query(vertices[members])
            own = hosts[part[hosts] == np.bincount(part[hosts[nearest]]).argmax()]
        _, j = cKDTree(vertices[own]).query(vertices[members])
        best_d[members], best_i[members] = best_d[own[j]], best_i[own[j]]


def geodesic_skinning(
    vertices: np.ndarray,
    faces: np.ndarray,
    control_vertices: np.ndarray,
    k: int,
    spacing: float,
    arap_neighbors: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k nearest controls of every vertex along the surface, with smooth weights; and each control's
    nearest controls along the surface, for the as-rigid-as-possible term.

    `spacing` is the mean distance between controls (normalised units): the weights fall off as a
    Gaussian of `SKIN_WIDTH * spacing`, and the search stops at 4 spacings.

    Distances run along mesh edges, so the upper lip is not skinned to lower-lip controls when the
    mouth is closed, as Euclidean nearest neighbours would do, and an eyelid is not held rigid to the
    eyeball beneath it. Vertices that reach no control within the search radius follow a vertex that
    does (`_follow_host_part`); controls with too few others within reach take Euclidean neighbours
    for the as-rigid-as-possible term.

    Returns:
        index [V, k] int64 into `control_vertices`' order, weight [V, k] float32 rows summing to 1,
        neighbors [C, arap_neighbors] int64 control indices (never the control itself).
    """
    v_count, c_count = len(vertices), len(control_vertices)
    graph = mesh_edge_graph(vertices, faces)
    radius = 4.0 * spacing
    best_d = np.full((v_count, k), np.inf)
    best_i = np.zeros((v_count, k), np.int64)
    between = np.full((c_count, c_count), np.inf, np.float32)  # surface distance control -> control
    for start, dist in _geodesic_from_controls(graph, control_vertices, radius):
        between[start : start + len(dist)] = dist[:, control_vertices]
        merged_d = np.concatenate([best_d, dist.T], axis=1)
        merged_i = np.concatenate(
            [best_i, np.broadcast_to(np.arange(start, start + len(dist)), (v_count, len(dist)))], axis=1
        )
        order = np.argsort(merged_d, axis=1)[:, :k]
        best_d = np.take_along_axis(merged_d, order, axis=1)
        best_i = np.take_along_axis(merged_i, order, axis=1)
    # Vertices that reached a few controls keep only those, with zero weight on the rest; those that
    # reached none take the skinning of a vertex that did (`_follow_host_part`).
    reached_any = np.isfinite(best_d).any(axis=1)
    if not reached_any.all():
        _follow_host_part(vertices, graph, reached_any, best_d, best_i)
    sigma = SKIN_WIDTH * spacing
    weight = np.where(np.isfinite(best_d), np.exp(-0.5 * (np.minimum(best_d, 1e30) / sigma) ** 2), 0.0)
    total = weight.sum(axis=1, keepdims=True)
    # A vertex far from all its controls would get all-zero weights; it follows its nearest one.
    degenerate = total[:, 0] < 1e-12
    weight = weight / np.maximum(total, 1e-300)
    weight[degenerate] = 0.0
    weight[degenerate, 0] = 1.0
    best_i[~np.isfinite(best_d)] = best_i[:, :1].repeat(k, axis=1)[~np.isfinite(best_d)]

    j = min(arap_neighbors, c_count - 1)
    np.fill_diagonal(between, np.inf)
    neighbors = np.argsort(between, axis=1, kind="stable")[:, :j]
    # A control with fewer than j others within reach along the surface (a part with few controls)
    # takes the rest from its Euclidean neighbours.
    short = ~np.isfinite(np.take_along_axis(between, neighbors, axis=1))
    if short.any():
        _, euclidean = cKDTree(vertices[control_vertices]).query(vertices[control_vertices], k=min(c_count, j + 1))
        for row in np.flatnonzero(short.any(axis=1)):
            reached = [int(c) for c, s in zip(neighbors[row], short[row], strict=True) if not s]
            extra = [int(c) for c in euclidean[row] if c != row and c not in reached]
            neighbors[row] = (reached + extra)[:j]
    return best_i, weight.astype(np.float32), neighbors.astype(np.int64)


def build_scaffold(
    mesh: HeadMesh,
    *,
    surface_samples: int,
    control_count: int,
    k: int = 10,
    arap_neighbors: int = 6,
    seed: int = 0,
) -> Scaffold:
    """Build the static Gaussians (vertices + `surface_samples` points), controls and skinning."""
    rng = np.random.default_rng(seed)
    vertices = mesh.vertices.astype(np.float64)
    v_colors = mesh_colors(mesh)

    face, bary, nearest = sample_surface(mesh, surface_samples, rng)
    corners = mesh.faces[face]
    s_means = np.einsum("nc,ncd->nd", bary, vertices[corners])
    if mesh.texture is not None and mesh.uv is not None:
        s_colors = sample_texture(mesh.texture, np.einsum("nc,ncd->nd", bary, mesh.uv[corners]))
    else:
        s_colors = np.einsum("nc,ncd->nd", bary, v_colors[corners])

    means = np.concatenate([vertices, s_means]).astype(np.float32)
    colors = np.concatenate([v_colors, s_colors]).astype(np.float32)
    tree = cKDTree(means)
    d, _ = tree.query(means, k=4)
    spacing_local = d[:, 1:].mean(axis=1)
    # Cover the surface without holes but keep detail: scales near the local point spacing.
    scales = np.clip(spacing_local * 0.7, 1e-4, None).astype(np.float32)

    control_vertices = farthest_points(vertices, control_count, rng)
    controls = vertices[control_vertices]
    # Spacing along the surface: nearest neighbours in space mislead where surfaces nearly touch (lips).
    tri = vertices[mesh.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    control_spacing = float(np.sqrt(area / len(controls)))
    v_index, v_weight, neighbors = geodesic_skinning(
        vertices, mesh.faces, control_vertices, k, control_spacing, arap_neighbors
    )
    skin_index = np.concatenate([v_index, v_index[nearest]])
    skin_weight = np.concatenate([v_weight, v_weight[nearest]])

    return Scaffold(
        means=means,
        colors=colors,
        scales=scales,
        vertex_count=len(vertices),
        controls=controls.astype(np.float32),
        skin_index=skin_index.astype(np.int64),
        skin_weight=skin_weight.astype(np.float32),
        control_neighbors=neighbors,
        laplacian=uniform_laplacian(mesh.vertices, mesh.faces),
        faces=mesh.faces.astype(np.int64),
        normal_corners=np.concatenate([np.repeat(np.arange(len(vertices))[:, None], 3, 1), corners]).astype(np.int64),
        normal_weights=np.concatenate([np.eye(1, 3).repeat(len(vertices), 0), bary]).astype(np.float32),
    )
