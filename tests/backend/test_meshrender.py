"""The ground-truth mesh rasterizer (t2bs.meshrender): coverage, interpolation, occlusion, devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2bs.meshrender import render_mesh

SIZE = 32
K = np.array([[100.0, 0.0, SIZE / 2], [0.0, 100.0, SIZE / 2], [0.0, 0.0, 1.0]])
IDENTITY = np.eye(4)


def square(x0: float, x1: float, y0: float, y1: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles facing the camera, corners in pixels at depth z (world = camera)."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    vertices = np.array([[(u - SIZE / 2) * z / 100.0, (v - SIZE / 2) * z / 100.0, z] for u, v in corners])
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def test_coverage_of_a_square_is_exact_inside_and_fractional_on_its_edges() -> None:
    # Left edge at 7.4 px: of the 3 samples across pixel 7 (7.17, 7.5, 7.83), two are inside.
    vertices, faces = square(7.4, 24.0, 8.0, 24.0, 2.0)
    rgba = render_mesh(vertices, faces, np.ones((4, 3), np.float32), K, IDENTITY, SIZE, SIZE)
    alpha = rgba[..., 3]
    assert np.allclose(alpha[8:24, 8:24], 1.0)
    assert np.allclose(alpha[8:24, 7], 2.0 / 3.0)
    assert alpha[:8].sum() == 0 and alpha[24:].sum() == 0 and alpha[:, 25:].sum() == 0
    assert np.allclose(rgba[..., :3], alpha[..., None])  # colour premultiplied by coverage


def test_colours_are_interpolated_across_each_triangle() -> None:
    vertices, faces = square(4.0, 28.0, 4.0, 28.0, 1.0)
    colors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], np.float32)
    rgba = render_mesh(vertices, faces, colors, K, IDENTITY, SIZE, SIZE, supersample=1)
    # Pixel centre (20.5, 8.5) lies in the triangle red (4, 4), green (28, 4), blue (28, 28); at a
    # share u across and v down the square its barycentrics are (1 - u, u - v, v).
    u, v = (20.5 - 4.0) / 24.0, (8.5 - 4.0) / 24.0
    expected = np.array([1.0 - u, u - v, v])
    assert np.allclose(rgba[8, 20, :3], expected, atol=1e-6)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_the_nearer_surface_wins_whatever_the_triangle_order(order: tuple[int, int]) -> None:
    near, near_faces = square(4.0, 20.0, 4.0, 20.0, 1.0)
    far, far_faces = square(10.0, 28.0, 10.0, 28.0, 3.0)
    parts = [(near, near_faces, [1.0, 0.0, 0.0]), (far, far_faces, [0.0, 0.0, 1.0])]
    vertices = np.concatenate([parts[i][0] for i in order])
    faces = np.concatenate([parts[i][1] + 4 * k for k, i in enumerate(order)])
    colors = np.concatenate([np.tile(parts[i][2], (4, 1)) for i in order]).astype(np.float32)
    rgba = render_mesh(vertices, faces, colors, K, IDENTITY, SIZE, SIZE)
    assert np.allclose(rgba[15, 15, :3], [1, 0, 0])  # both cover it: the near one shows
    assert np.allclose(rgba[25, 25, :3], [0, 0, 1])  # only the far one covers it


def test_a_large_triangle_covers_its_area() -> None:
    # 30 px legs, 90 supersamples: the largest size group of the enumeration. (Corners off the sample
    # grid, so that no sample lies on an edge.)
    corners = [(1.1, 1.1), (31.1, 1.1), (1.1, 31.1)]
    vertices = np.array([[(u - SIZE / 2) / 100.0, (v - SIZE / 2) / 100.0, 1.0] for u, v in corners])
    rgba = render_mesh(vertices, np.array([[0, 1, 2]]), np.ones((3, 3), np.float32), K, IDENTITY, SIZE, SIZE)
    # Samples sit at (i + 0.5) / 3 px: inside are those with i, j >= 3 and i + j <= 95, 90 * 91 / 2 of
    # them, 9 to a pixel (the lattice count of the 450 px^2 triangle).
    assert rgba[..., 3].sum() == pytest.approx(90 * 91 / 2 / 9, abs=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_renders_what_the_cpu_renders() -> None:
    rng = np.random.default_rng(0)
    vertices = rng.uniform([-0.15, -0.15, 1.0], [0.15, 0.15, 2.0], size=(300, 3))
    faces = rng.integers(0, 300, size=(400, 3))
    colors = rng.uniform(size=(300, 3)).astype(np.float32)
    cpu = render_mesh(vertices, faces, colors, K, IDENTITY, SIZE, SIZE)
    cuda = render_mesh(vertices, faces, colors, K, IDENTITY, SIZE, SIZE, device="cuda")
    assert np.abs(cpu - cuda).max() < 1e-5
