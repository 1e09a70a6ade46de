"""The fit's fast building blocks give the same numbers as their plain definitions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from t2bs.fit import losses
from t2bs.fit.model import SurfaceNormals, _conditioned, _mlp
from t2bs.fit.presets import PRESETS
from t2bs.fit.sparse import SparseMatrix, csr_from_triplets, transposed_csr
from t2bs.meshrender import vertex_normals


def _random_sparse(rows: int, cols: int, per_row: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = np.repeat(np.arange(rows), per_row)
    c = rng.integers(0, cols, size=rows * per_row)  # duplicates in a row must add up
    return r, c, rng.normal(size=rows * per_row).astype(np.float32)


def test_sparse_product_matches_the_dense_product_and_its_gradient() -> None:
    r, c, v = _random_sparse(300, 40, 6, seed=0)
    dense_matrix = torch.zeros(300, 40)
    dense_matrix.index_put_((torch.from_numpy(r), torch.from_numpy(c)), torch.from_numpy(v), accumulate=True)
    sparse = SparseMatrix(csr_from_triplets(r, c, v, (300, 40)))
    assert torch.allclose(sparse.transposed.to_dense(), dense_matrix.t())
    assert torch.allclose(transposed_csr(sparse.transposed).to_dense(), dense_matrix)

    x = torch.randn(40, 7, requires_grad=True)
    weights = torch.randn(300, 7)
    (sparse @ x * weights).sum().backward()
    assert x.grad is not None
    got_grad = x.grad.clone()
    x.grad = None
    (dense_matrix @ x * weights).sum().backward()
    assert torch.allclose(sparse @ x, dense_matrix @ x, atol=1e-5)
    assert torch.allclose(got_grad, x.grad, atol=1e-5)


def test_split_first_layer_equals_the_mlp_on_concatenated_inputs() -> None:
    torch.manual_seed(0)
    mlp = _mlp(15 + 9, 16, 2, 6)
    for module in mlp:
        if isinstance(module, nn.Linear):  # _mlp zeroes its last layer; give it something to pass on
            nn.init.normal_(module.weight, std=0.3)
            nn.init.normal_(module.bias, std=0.3)
    points, condition = torch.randn(50, 15), torch.randn(3, 9)
    full = mlp(torch.cat([points.expand(3, -1, -1), condition[:, None].expand(-1, 50, -1)], -1))
    assert torch.allclose(_conditioned(mlp, points, condition), full, atol=1e-5)


def _ssim_2d_window(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM with the textbook 2D Gaussian window and five separate blurs (the reference)."""
    x, y = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)
    channels = x.shape[1]
    coords = torch.arange(window, dtype=x.dtype) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(channels, 1, window, window)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, padding=window // 2, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return (((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))).mean()


def test_separable_ssim_equals_the_2d_window_ssim() -> None:
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(2, 32, 24, 3, generator=generator)
    b = (a + 0.1 * torch.randn(2, 32, 24, 3, generator=generator)).clamp(0, 1)
    assert torch.allclose(losses.ssim(a, b), _ssim_2d_window(a, b), atol=1e-6)
    assert torch.allclose(losses.ssim(a, b, 0.75), _ssim_2d_window(a, b, 5, 0.75), atol=1e-6)
    assert torch.allclose(losses.ssim(a, a), torch.tensor(1.0), atol=1e-6)


def test_the_gradient_term_sees_a_shifted_edge_but_not_a_colour_offset() -> None:
    image = torch.zeros(1, 16, 16, 3)
    image[:, :, 8:] = 0.8  # a vertical edge
    shifted = torch.zeros(1, 16, 16, 3)
    shifted[:, :, 9:] = 0.8  # the same edge a pixel to the right
    offset = image + 0.1
    assert losses.gradient_l1(image, offset) < 1e-7
    # One edge column of 15 differences moves by one: 0.8 on two of them, in every row and channel.
    assert torch.allclose(losses.gradient_l1(image, shifted), torch.tensor(2 * 0.8 / 15))
    plain = losses.photometric(image, offset, ssim_weight=0.0)
    assert torch.allclose(losses.photometric(image, offset, 0.0, gradient_weight=3.0), plain)
    assert losses.photometric(image, shifted, 0.0, gradient_weight=3.0) > losses.photometric(image, shifted, 0.0)


def _turn(angle: float) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float32)


def test_the_edge_term_is_off_in_the_colour_warm_up_and_ramps_in_to_its_full_weight() -> None:
    preset = dataclasses.replace(
        PRESETS["preview"], steps=1000, color_warmup=0.1, gradient_weight=3.0, gradient_ramp=0.5
    )
    assert preset.gradient_weight_at(0) == 0.0
    assert preset.gradient_weight_at(100) == 0.0  # the warm-up fits colours on neutral frames
    assert preset.gradient_weight_at(300) == pytest.approx(1.5)  # halfway from step 100 to 500
    assert preset.gradient_weight_at(500) == pytest.approx(3.0)
    assert preset.gradient_weight_at(999) == pytest.approx(3.0)
    # A ramp that ends before the warm-up does is a step at its end, not a division by zero.
    abrupt = dataclasses.replace(preset, gradient_ramp=0.0)
    assert abrupt.gradient_weight_at(100) == 0.0 and abrupt.gradient_weight_at(101) == pytest.approx(3.0)
    # The change term ramps in the same way, to its own weight at its own fraction of the steps.
    change = dataclasses.replace(preset, change_weight=0.25, change_ramp=1.0)
    assert change.change_weight_at(100) == 0.0
    assert change.change_weight_at(550) == pytest.approx(0.125)  # halfway from step 100 to 1000
    assert change.change_weight_at(1000) == pytest.approx(0.25)


def test_ssim_window_narrows_over_equal_parts_of_the_steps_after_the_colour_warm_up() -> None:
    preset = dataclasses.replace(PRESETS["preview"], steps=1000, color_warmup=0.1, ssim_sigmas=(1.5, 1.0, 0.75))
    steps = (0, 99, 399, 400, 699, 700, 999, 5000)
    assert [preset.ssim_sigma_at(step) for step in steps] == [1.5] * 3 + [1.0] * 2 + [0.75] * 3
    assert dataclasses.replace(preset, ssim_sigmas=(1.5,)).ssim_sigma_at(999) == 1.5
    # The window is as wide as the Gaussian needs: the classic 11 px at 1.5 px, narrower below.
    assert [losses.ssim_window_size(sigma) for sigma in (1.5, 1.0, 0.75)] == [11, 7, 5]
    a, b = torch.rand(2, 16, 16, 3), torch.rand(2, 16, 16, 3)
    assert not torch.allclose(losses.ssim(a, b, 0.75), losses.ssim(a, b, 1.5))


def test_arap_lets_a_neighbourhood_turn_but_not_stretch() -> None:
    generator = torch.Generator().manual_seed(2)
    controls = torch.randn(40, 3, generator=generator)
    neighbors = torch.cdist(controls, controls).topk(6, largest=False).indices[:, 1:]
    turn = _turn(0.3)
    turned = (controls @ turn.t() - controls)[None].requires_grad_(True)  # a rigid turn as translations
    identity = torch.eye(3).expand(1, 40, 3, 3)

    edge = controls[neighbors] - controls[:, None]
    moved = edge[None] + turned[:, neighbors] - turned[:, :, None]
    assert torch.allclose(losses.best_fit_rotations(edge, moved.detach()), turn.expand(1, 40, 3, 3), atol=1e-4)

    # The field's rotations lag behind (identity): the turn itself must not be pulled back.
    loss = losses.arap_loss(controls, neighbors, identity, turned, spacing=1.0)
    loss.backward()
    assert turned.grad is not None and turned.grad.abs().max() < 1e-4
    # ...while the lagging rotation is drawn towards the turn.
    assert loss > 0.1
    assert losses.arap_loss(controls, neighbors, turn.expand(1, 40, 3, 3), turned.detach(), spacing=1.0) < 1e-8

    stretched = (0.1 * controls)[None]
    assert losses.arap_loss(controls, neighbors, identity, stretched, spacing=1.0) > 1e-3


def test_arap_of_a_diverged_field_is_not_finite_and_does_not_raise() -> None:
    controls = torch.randn(20, 3, generator=torch.Generator().manual_seed(3))
    neighbors = torch.cdist(controls, controls).topk(5, largest=False).indices[:, 1:]
    translation = torch.zeros(1, 20, 3)
    translation[0, 4] = float("nan")
    loss = losses.arap_loss(controls, neighbors, torch.eye(3).expand(1, 20, 3, 3), translation, spacing=1.0)
    assert not torch.isfinite(loss)


def test_surface_normals_follow_the_moved_mesh() -> None:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2)
    vertices = np.asarray(sphere.vertices, np.float32) * np.array([1.0, 0.7, 1.3], np.float32)
    faces = np.asarray(sphere.faces, np.int64)
    rng = np.random.default_rng(0)
    # Gaussians: every vertex, then points inside random triangles.
    picked = rng.integers(0, len(faces), 50)
    bary = rng.dirichlet(np.ones(3), 50).astype(np.float32)
    corners = np.concatenate([np.repeat(np.arange(len(vertices))[:, None], 3, 1), faces[picked]])
    weights = np.concatenate([np.eye(1, 3, dtype=np.float32).repeat(len(vertices), 0), bary])
    normals = SurfaceNormals(faces, len(vertices), corners, weights)

    def expected(points: np.ndarray) -> np.ndarray:
        unit = vertex_normals(points, faces)
        blended = np.einsum("nk,nkd->nd", weights, unit[corners])
        return blended / np.linalg.norm(blended, axis=1, keepdims=True)

    # A bent copy (one side pushed out) and a turned copy of the mesh, in one batch.
    bent = vertices + 0.3 * np.maximum(vertices[:, :1], 0.0) * np.array([0.0, 1.0, 0.0], np.float32)
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    batch = torch.from_numpy(np.stack([vertices, bent, vertices @ turn.T])).requires_grad_()
    got = normals(batch)
    assert got.shape == (3, len(corners), 3)
    assert np.allclose(got[0].detach().numpy(), expected(vertices), atol=1e-5)
    assert np.allclose(got[1].detach().numpy(), expected(bent), atol=1e-5)
    assert np.allclose(got[2].detach().numpy(), expected(vertices) @ turn.T, atol=1e-5)
    # The bend turns the normals it touches, and the loss reaches the vertices through them.
    assert (got[1] - got[0]).norm(dim=-1).max() > 0.1
    (got[1] * torch.tensor([0.0, 1.0, 0.0])).sum().backward()
    assert batch.grad is not None and torch.isfinite(batch.grad).all() and batch.grad[1].abs().sum() > 0
