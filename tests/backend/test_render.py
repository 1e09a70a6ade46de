"""The Gaussian rasterizer (t2bs.render): closed-form cases, a brute-force reference, gradients, and
(on a GPU with gsplat) agreement between the PyTorch and the gsplat backend."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from t2bs.capture import look_at_camera
from t2bs.render import RenderOutput, available_backends, rasterize, torch_rasterizer as tr

ALPHA_MIN = 1.0 / 255.0


# ----------------------------------------------------------------------------------------------
# helpers


def look_at(eye: list[float], target: list[float], dtype: torch.dtype = torch.float32) -> Tensor:
    """OpenCV world-to-camera (x right, y down, z forward) for a camera at `eye`, world +Y up."""
    camera = look_at_camera("test", eye, target, (0.0, 1.0, 0.0), 1, 1, 60.0)
    return torch.tensor(camera.world_to_camera, dtype=dtype)


def intrinsics(fx: float, fy: float, cx: float, cy: float, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


def gaussians(
    points: list[list[float]],
    scale: float | list[float],
    opacity: float | list[float],
    colors: list[list[float]],
    dtype: torch.dtype = torch.float32,
) -> dict[str, Tensor]:
    """One batch item of isotropic, unrotated Gaussians."""
    n = len(points)
    scales = torch.tensor([scale] * n if not isinstance(scale, list) else scale, dtype=dtype)
    return {
        "means": torch.tensor(points, dtype=dtype)[None],
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]] * n, dtype=dtype)[None],
        "scales": scales[:, None].expand(n, 3)[None].contiguous(),
        "opacities": torch.tensor([opacity] * n if not isinstance(opacity, list) else opacity, dtype=dtype)[None],
        "colors": torch.tensor(colors, dtype=dtype)[None],
    }


def render(
    scene: dict[str, Tensor], viewmats: Tensor, ks: Tensor, width: int, height: int, **kw: object
) -> RenderOutput:
    return rasterize(
        scene["means"], scene["quats"], scene["scales"], scene["opacities"], scene["colors"],
        viewmats, ks, width, height, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def random_scene(
    batch: int, count: int, width: int, height: int, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Random anisotropic Gaussians in a unit box at the origin, cameras ~2 units away; includes some
    Gaussians behind the cameras or off-screen, faint ones, and near-opaque ones."""
    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(batch, count, 3, generator=gen) - 0.5) * torch.tensor([1.4, 1.1, 1.0])
    means[:, : count // 20, 2] += 3.0  # behind the cameras (which sit at z ~ 2 looking at -z)
    means[:, count // 20 : count // 10, 0] += 2.5  # off to the side, mostly off-screen
    means[:, count // 10 : count // 2] *= 0.3  # a dense clump: deep stacks, transmittance stops
    scene = {
        "means": means,
        "quats": torch.randn(batch, count, 4, generator=gen),
        "scales": 0.01 + 0.09 * torch.rand(batch, count, 3, generator=gen),
        "opacities": torch.rand(batch, count, generator=gen) ** 0.3,
        "colors": torch.rand(batch, count, 3, generator=gen),
    }
    scene["opacities"][:, :: count // 10] = 1.0  # exercise the 0.999 clamp
    scene = {k: v.to(dtype) for k, v in scene.items()}
    viewmats = torch.stack([look_at([0.4 * b - 0.3, 0.25, 2.0], [0.0, 0.0, 0.0], dtype) for b in range(batch)])
    ks = torch.stack([intrinsics(52.0 + b, 50.0, width / 2 + 1.3, height / 2 - 0.7, dtype) for b in range(batch)])
    return scene, viewmats, ks


def reference_render(
    scene: dict[str, Tensor],
    viewmats: Tensor,
    ks: Tensor,
    width: int,
    height: int,
    background: Tensor | None = None,
    near: float = 0.01,
    far: float = 100.0,
    stats: dict[str, int] | None = None,
    eps2d: float = 0.3,
    antialiased: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """gsplat 1.5.3's 3DGS written out plainly: every Gaussian against every pixel, with its 16 px
    tile binning, one Gaussian at a time front to back. Returns rgb, alpha, depth; counts pixels
    that hit the transmittance stop into stats["stopped"]."""
    batch, count = scene["means"].shape[:2]
    dtype = scene["means"].dtype
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5, indexing="ij"
    )
    tile_y, tile_x = (ys // 16).long(), (xs // 16).long()
    rgbs, alphas, depths = [], [], []
    for b in range(batch):
        rot_c, t_c = viewmats[b, :3, :3], viewmats[b, :3, 3]
        fx, fy, cx, cy = ks[b, 0, 0], ks[b, 1, 1], ks[b, 0, 2], ks[b, 1, 2]
        layers = []
        for i in range(count):
            p = rot_c @ scene["means"][b, i] + t_c
            x, y, z = p
            opac = scene["opacities"][b, i]
            if z < near or z > far:
                continue
            w, qx, qy, qz = scene["quats"][b, i] / scene["quats"][b, i].norm()
            rot_g = torch.stack([
                torch.stack([1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - w * qz), 2 * (qx * qz + w * qy)]),
                torch.stack([2 * (qx * qy + w * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - w * qx)]),
                torch.stack([2 * (qx * qz - w * qy), 2 * (qy * qz + w * qx), 1 - 2 * (qx * qx + qy * qy)]),
            ])  # fmt: skip
            m = rot_g @ torch.diag(scene["scales"][b, i])
            cov_cam = rot_c @ (m @ m.T) @ rot_c.T
            # EWA: Jacobian of the projection at the centre, x/z and y/z clamped to 1.3x the FOV.
            lim_x = ((width - cx) / fx + 0.15 * width / fx, cx / fx + 0.15 * width / fx)
            lim_y = ((height - cy) / fy + 0.15 * height / fy, cy / fy + 0.15 * height / fy)
            tx = z * torch.clamp(x / z, -lim_x[1], lim_x[0])
            ty = z * torch.clamp(y / z, -lim_y[1], lim_y[0])
            zero = torch.zeros((), dtype=dtype)
            jac = torch.stack([
                torch.stack([fx / z, zero, -fx * tx / z**2]), torch.stack([zero, fy / z, -fy * ty / z**2])
            ])  # fmt: skip
            unblurred = jac @ cov_cam @ jac.T
            cov2d = unblurred + eps2d * torch.eye(2, dtype=dtype)
            if torch.det(cov2d) <= 0:
                continue
            if antialiased:
                opac = opac * torch.sqrt(torch.clamp(torch.det(unblurred) / torch.det(cov2d), min=0.0))
            if opac < ALPHA_MIN:
                continue
            conic = torch.linalg.inv(cov2d)
            mx, my = fx * x / z + cx, fy * y / z + cy
            # gsplat's opacity-aware radius and the tiles it touches
            extend = min(3.33, math.sqrt(2.0 * math.log(opac.item() / ALPHA_MIN)))
            rx = math.ceil(extend * math.sqrt(cov2d[0, 0].item()))
            ry = math.ceil(extend * math.sqrt(cov2d[1, 1].item()))
            if mx + rx <= 0 or mx - rx >= width or my + ry <= 0 or my - ry >= height:
                continue
            tx0, tx1 = math.floor((mx.item() - rx) / 16), math.ceil((mx.item() + rx) / 16)
            ty0, ty1 = math.floor((my.item() - ry) / 16), math.ceil((my.item() + ry) / 16)
            in_tiles = (tile_x >= tx0) & (tile_x < tx1) & (tile_y >= ty0) & (tile_y < ty1)
            dx, dy = mx - xs, my - ys
            sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
            alpha = torch.clamp(opac * torch.exp(-sigma), max=0.999)
            hit = in_tiles & (sigma >= 0) & (alpha >= ALPHA_MIN)
            layers.append((z.item(), i, torch.where(hit, alpha, torch.zeros_like(alpha)), hit, z, i))
        layers.sort(key=lambda item: (item[0], item[1]))
        trans = torch.ones(height, width, dtype=dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        rgb = torch.zeros(height, width, 3, dtype=dtype)
        depth = torch.zeros(height, width, dtype=dtype)
        for _, _, alpha, hit, z, i in layers:
            next_t = trans * (1 - alpha)
            use = hit & ~done & (next_t > 1e-4)
            done = done | (hit & ~done & (next_t <= 1e-4))  # gsplat stops before this Gaussian
            weight = torch.where(use, alpha * trans, torch.zeros_like(alpha))
            rgb = rgb + weight[..., None] * scene["colors"][b, i]
            depth = depth + weight * z
            trans = torch.where(use, next_t, trans)
        if stats is not None:
            stats["stopped"] = stats.get("stopped", 0) + int(done.sum())
        if background is not None:
            rgb = rgb + trans[..., None] * background[b]
        rgbs.append(rgb)
        alphas.append((1 - trans)[..., None])
        depths.append(depth[..., None])
    return torch.stack(rgbs), torch.stack(alphas), torch.stack(depths)


PARAMS = ("means", "quats", "scales", "opacities", "colors")


# ----------------------------------------------------------------------------------------------
# closed-form cases


def test_single_gaussian_peak_and_profile() -> None:
    width, height, f, cx, cy = 64, 48, 100.0, 32.0, 24.0
    x, y, z, s, o = 0.11, -0.05, 2.0, 0.05, 0.8  # projects to (37.5, 21.5): the centre of pixel (37, 21)
    scene = gaussians([[x, y, z]], s, o, [[1.0, 0.5, 0.25]])
    out = render(scene, torch.eye(4)[None], intrinsics(f, f, cx, cy)[None], width, height, backend="torch")

    assert out.rgb.shape == (1, height, width, 3)
    assert out.alpha.shape == out.depth.shape == (1, height, width, 1)
    peak = int(torch.argmax(out.alpha[0, ..., 0]))
    assert (peak % width, peak // width) == (37, 21)

    # expected: alpha = min(0.999, o exp(-d^T cov^-1 d / 2)), cov = s^2 J J^T + 0.3 I, cut at 1/255
    jac = torch.tensor([[f / z, 0.0, -f * x / z**2], [0.0, f / z, -f * y / z**2]], dtype=torch.float64)
    conic = torch.linalg.inv(s**2 * jac @ jac.T + 0.3 * torch.eye(2, dtype=torch.float64))
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    d = torch.stack([xs - 37.5, ys - 21.5], -1).double()
    alpha = torch.clamp(o * torch.exp(-0.5 * torch.einsum("hwi,ij,hwj->hw", d, conic, d)), max=0.999)
    alpha = torch.where(alpha >= ALPHA_MIN, alpha, torch.zeros_like(alpha)).float()
    torch.testing.assert_close(out.alpha[0, ..., 0], alpha, atol=2e-6, rtol=0)
    torch.testing.assert_close(out.rgb[0], alpha[..., None] * torch.tensor([1.0, 0.5, 0.25]), atol=2e-6, rtol=0)
    torch.testing.assert_close(out.depth[0, ..., 0], alpha * z, atol=5e-6, rtol=0)
    assert float(out.alpha.max()) == pytest.approx(o, abs=1e-6)


def test_antialiased_mode_keeps_a_small_gaussians_mass() -> None:
    # A faint Gaussian 0.4 px across (so alpha stays far from the clamp and the sum is its mass):
    # classic 3DGS blurs it to sqrt(0.16 + 0.3) px and multiplies its mass by (0.16 + 0.3) / 0.16;
    # antialiased mode blurs it by as much but keeps the mass 2 pi sigma^2 opacity.
    f, z, o = 100.0, 2.0, 0.5
    sigma_px = 0.4
    scene = gaussians([[0.0, 0.0, z]], sigma_px * z / f, o, [[1.0, 1.0, 1.0]])
    cam, k = torch.eye(4)[None], intrinsics(f, f, 16.0, 16.0)[None]
    mass = 2 * math.pi * sigma_px**2 * o
    classic = render(scene, cam, k, 32, 32, backend="torch").alpha.sum()
    antialiased = render(scene, cam, k, 32, 32, backend="torch", antialiased=True).alpha.sum()
    assert float(classic) == pytest.approx(mass * (sigma_px**2 + 0.3) / sigma_px**2, rel=0.02)
    assert float(antialiased) == pytest.approx(mass, rel=0.02)
    # a large Gaussian is barely touched by the 0.3 px^2 low-pass in either mode
    big = gaussians([[0.0, 0.0, z]], 4.0 * z / f, 0.05, [[1.0, 1.0, 1.0]])
    sums = [float(render(big, cam, k, 32, 32, backend="torch", antialiased=aa).alpha.sum()) for aa in (False, True)]
    assert sums[1] == pytest.approx(sums[0], rel=0.02)


def test_antialiased_mode_gradients_stay_finite_beside_a_degenerate_gaussian() -> None:
    # A Gaussian with no area on screen has compensation 0 (it draws nothing); its neighbour's
    # gradients, and its own, must not turn into NaN through the square root.
    scene = gaussians([[0.0, 0.0, 2.0], [0.01, 0.0, 2.0]], 0.05, 0.8, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    scene["scales"] = torch.tensor([[[0.0, 0.0, 0.05], [0.05, 0.05, 0.05]]])
    params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}
    cam, k = torch.eye(4)[None], intrinsics(100.0, 100.0, 16.0, 16.0)[None]
    out = render(params, cam, k, 32, 32, backend="torch", antialiased=True, eps2d=0.1)
    out.rgb.sum().backward()
    for name, p in params.items():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
    assert float(out.rgb.detach()[..., 0].max()) == 0.0  # the degenerate (red) one is not drawn
    assert float(out.rgb.detach()[..., 1].max()) > 0.5


@pytest.mark.parametrize(
    "point",
    [[0.0, 0.0, -2.0], [0.0, 0.0, 0.005], [0.0, 0.0, 150.0], [5.0, 0.0, 2.0], [0.0, -3.0, 2.0]],
    ids=["behind", "before-near", "beyond-far", "right-of-image", "above-image"],
)
def test_invisible_gaussian_renders_nothing(point: list[float]) -> None:
    scene = gaussians([point], 0.05, 0.9, [[1.0, 1.0, 1.0]])
    for p in scene.values():
        p.requires_grad_(True)
    bg = torch.tensor([0.2, 0.3, 0.4])
    out = render(scene, torch.eye(4)[None], intrinsics(50.0, 50.0, 16.0, 12.0)[None], 32, 24, background=bg)
    assert float(out.alpha.detach().abs().max()) == 0.0 and float(out.depth.detach().abs().max()) == 0.0
    torch.testing.assert_close(out.rgb.detach(), bg.expand(1, 24, 32, 3))
    (out.rgb.sum() + out.alpha.sum()).backward()
    assert all(float(p.grad.abs().max()) == 0.0 for p in scene.values())  # type: ignore[union-attr]


@pytest.mark.parametrize("swap", [False, True])
def test_nearer_gaussian_composites_first(swap: bool) -> None:
    red, blue = [0.0, 0.0, 2.0], [0.0, 0.0, 3.0]
    points, scales, colors = [red, blue], [0.05, 0.075], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    if swap:
        points, scales, colors = points[::-1], scales[::-1], colors[::-1]
    scene = gaussians(points, scales, 0.9, colors)  # the same screen size at z = 2 and z = 3
    out = render(scene, torch.eye(4)[None], intrinsics(80.0, 80.0, 16.0, 16.0)[None], 32, 32)
    centre = out.rgb[0, 16, 16]
    a = 0.9 * math.exp(-0.5 * (0.5**2 + 0.5**2) / (0.05**2 * 40**2 + 0.3))  # pixel centre is 0.5 px off
    assert float(centre[0]) == pytest.approx(a, rel=1e-4)
    assert float(centre[2]) == pytest.approx((1 - a) * a, rel=1e-4)
    assert float(centre[0]) > 5 * float(centre[2])
    assert float(out.depth[0, 16, 16, 0]) == pytest.approx(2.0 * a + 3.0 * (1 - a) * a, rel=1e-4)


def test_background_compositing() -> None:
    scene, viewmats, ks = random_scene(2, 60, 24, 20, seed=3, dtype=torch.float32)
    plain = render(scene, viewmats, ks, 24, 20)
    bg = torch.tensor([[0.1, 0.2, 0.3], [1.0, 0.5, 0.0]])
    for background in (bg, bg[1]):
        out = render(scene, viewmats, ks, 24, 20, background=background)
        expected = plain.rgb + (1 - plain.alpha) * background.expand(2, 3)[:, None, None, :]
        torch.testing.assert_close(out.rgb, expected)
        torch.testing.assert_close(out.alpha, plain.alpha)
    assert float(plain.alpha.max()) > 0.5 and float(plain.alpha.min()) == 0.0


def test_depth_of_opaque_gaussian_is_z_times_alpha() -> None:
    viewmat = look_at([1.0, 0.5, 2.5], [0.1, -0.2, 0.0])
    centre = torch.tensor([0.1, -0.2, 0.0])
    z = float((viewmat[:3, :3] @ centre + viewmat[:3, 3])[2])
    scene = gaussians([centre.tolist()], 0.3, 1.0, [[0.3, 0.6, 0.9]])
    out = render(scene, viewmat[None], intrinsics(60.0, 60.0, 20.0, 20.0)[None], 40, 40)
    assert float(out.alpha[0, 20, 20, 0]) > 0.99  # opaque at the centre
    torch.testing.assert_close(out.depth, out.alpha * z, atol=1e-5, rtol=1e-5)


def test_batch_items_are_independent() -> None:
    scene, viewmats, ks = random_scene(3, 80, 30, 22, seed=5, dtype=torch.float32)
    both = render(scene, viewmats, ks, 30, 22)
    for b in range(3):
        alone = render({k: v[b : b + 1] for k, v in scene.items()}, viewmats[b : b + 1], ks[b : b + 1], 30, 22)
        for got, want in zip((both.rgb, both.alpha, both.depth), (alone.rgb, alone.alpha, alone.depth), strict=True):
            torch.testing.assert_close(got[b : b + 1], want, atol=1e-6, rtol=1e-6)


def test_interface_checks() -> None:
    scene = gaussians([[0.0, 0.0, 2.0]], 0.1, 0.5, [[1.0, 1.0, 1.0]])
    cam, k = torch.eye(4)[None], intrinsics(10.0, 10.0, 4.0, 4.0)[None]
    assert "torch" in available_backends()
    with pytest.raises(ValueError, match="quats"):
        rasterize(scene["means"], scene["quats"][:, :, :3], scene["scales"], scene["opacities"],
                  scene["colors"], cam, k, 8, 8)  # fmt: skip
    with pytest.raises(ValueError, match="backend"):
        render(scene, cam, k, 8, 8, backend="optix")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            render(scene, cam, k, 8, 8, backend="gsplat")
    assert render(scene, cam, k, 8, 8, backend="auto").rgb.shape == (1, 8, 8, 3)


# ----------------------------------------------------------------------------------------------
# against the brute-force reference, and gradients


@pytest.mark.parametrize(
    ("chunks", "mode"),
    [
        ({}, {}),
        ({"chunk_pairs": 700, "depth_slices": 1}, {}),
        ({"chunk_pairs": 5000, "depth_slices": 3, "composite_chunk": 211, "segment_sums": False}, {}),
        ({}, {"antialiased": True, "eps2d": 0.1}),
        ({"chunk_pairs": 700, "depth_slices": 1}, {"antialiased": True}),
    ],
    ids=["default", "tiny-candidate-chunks", "small-chunks", "antialiased", "antialiased-tiny-chunks"],
)
def test_matches_bruteforce_reference(
    chunks: dict[str, int], mode: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in chunks.items():
        monkeypatch.setattr(tr, f"DEFAULT_{name.upper()}", value)
    width, height = 48, 40
    scene, viewmats, ks = random_scene(2, 200, width, height, seed=1)
    params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}
    bg = torch.tensor([[0.1, 0.2, 0.3], [0.6, 0.5, 0.4]], dtype=torch.float64)
    out = render(params, viewmats, ks, width, height, background=bg, backend="torch", **mode)
    ref_params = {k: v.clone().requires_grad_(True) for k, v in scene.items()}
    stats: dict[str, int] = {}
    ref = reference_render(ref_params, viewmats, ks, width, height, background=bg, stats=stats, **mode)
    for got, want in zip((out.rgb, out.alpha, out.depth), ref, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert 0.2 < float((ref[1] > 0.5).double().mean()) < 0.95  # a scene with coverage and holes
    assert stats["stopped"] > 50  # and pixels that reach the transmittance stop

    weights = [
        torch.rand(t.shape, generator=torch.Generator().manual_seed(i), dtype=t.dtype) for i, t in enumerate(ref)
    ]
    sum(
        ((w * t).sum() for w, t in zip(weights, (out.rgb, out.alpha, out.depth), strict=True)), torch.zeros(())
    ).backward()
    sum(((w * t).sum() for w, t in zip(weights, ref, strict=True)), torch.zeros(())).backward()
    for name in PARAMS:
        grad, ref_grad = params[name].grad, ref_params[name].grad
        assert grad is not None and ref_grad is not None
        torch.testing.assert_close(grad, ref_grad, atol=1e-7 * float(ref_grad.abs().max()), rtol=1e-5, msg=name)

    # the same in float32, forward only, to 1e-5
    out32 = render({k: v.float() for k, v in scene.items()}, viewmats.float(), ks.float(), width, height,
                   background=bg.float(), **mode)  # fmt: skip
    for got32, want in zip((out32.rgb, out32.alpha, out32.depth), ref, strict=True):
        assert float((got32.double() - want.detach()).abs().max()) < 1e-5


def test_gradcheck() -> None:
    # Three overlapping Gaussians covering a tiny image, away from every discontinuity (the 1/255
    # cut, the 0.999 clamp, the transmittance stop), so finite differences are meaningful.
    scene = gaussians(
        [[0.02, -0.01, 2.0], [-0.03, 0.02, 2.3], [0.01, 0.03, 2.6]], [0.5, 0.6, 0.7], [0.6, 0.5, 0.7],
        [[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9]], dtype=torch.float64,
    )  # fmt: skip
    scene["quats"] = torch.tensor([[[0.9, 0.1, -0.2, 0.3], [1.0, -0.3, 0.2, 0.1], [0.8, 0.0, 0.4, -0.2]]],
                                  dtype=torch.float64)  # fmt: skip
    scene["scales"] = scene["scales"] * torch.tensor([1.0, 0.7, 1.3], dtype=torch.float64)
    viewmats = look_at([0.1, 0.05, -0.2], [0.0, 0.0, 2.3], torch.float64)[None]
    ks = intrinsics(20.0, 21.0, 4.2, 3.1, torch.float64)[None]
    bg = torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64)

    # gradcheck needs one backward pass per output: check a few random projections of the 8x6x5
    # outputs (rgb, alpha, depth) instead of all 240, plus the whole alpha image.
    mix = torch.randn(6, 6 * 8 * 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def fn(*tensors: Tensor) -> tuple[Tensor, Tensor]:
        out = render(dict(zip(PARAMS, tensors, strict=True)), viewmats, ks, 8, 6, background=bg, backend="torch")
        return mix @ torch.cat([out.rgb, out.alpha, out.depth], -1).flatten(), out.alpha[0, ::2, ::2, 0]

    inputs = tuple(scene[k].clone().requires_grad_(True) for k in PARAMS)
    assert float(fn(*inputs)[1].detach().min()) > 0.5
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# GPU: the PyTorch rasterizer against gsplat


def _cosine(a: Tensor, b: Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", [{}, {"antialiased": True, "eps2d": 0.1}], ids=["classic", "antialiased"])
def test_torch_backend_matches_gsplat_on_cuda(mode: dict[str, Any]) -> None:
    pytest.importorskip("gsplat")
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(7)
    count, views, size = 5000, 4, 128
    # a noisy Gaussian shell (head-like: front visible, back occluded) plus loose interior points
    direction = torch.nn.functional.normalize(torch.randn(views, count, 3, generator=gen), dim=-1)
    radius = 0.5 + 0.03 * torch.randn(views, count, 1, generator=gen)
    scene = {
        "means": direction * radius,
        "quats": torch.randn(views, count, 4, generator=gen),
        "scales": 0.005 + 0.03 * torch.rand(views, count, 3, generator=gen),
        "opacities": 0.05 + 0.95 * torch.rand(views, count, generator=gen),
        "colors": torch.rand(views, count, 3, generator=gen),
    }
    viewmats = torch.stack([
        look_at([2.0 * math.sin(a), 0.3, 2.0 * math.cos(a)], [0.0, 0.0, 0.0])
        for a in torch.linspace(0, 2 * math.pi, views + 1)[:-1].tolist()
    ])  # fmt: skip
    ks = intrinsics(170.0, 170.0, 64.0, 64.0).expand(views, 3, 3)
    bg = torch.tensor([0.2, 0.4, 0.6], device=device)
    weights = torch.rand(views, size, size, 5, generator=gen).to(device)

    outs, grads = {}, {}
    for backend in ("gsplat", "torch"):
        params = {k: v.to(device).requires_grad_(True) for k, v in scene.items()}
        out = render(params, viewmats.to(device), ks.to(device), size, size, background=bg, backend=backend, **mode)
        stacked = torch.cat([out.rgb, out.alpha, out.depth], -1)
        (weights * stacked).sum().backward()
        outs[backend] = stacked.detach()
        grads[backend] = {k: p.grad for k, p in params.items()}

    diff = (outs["torch"] - outs["gsplat"]).abs()
    assert float(diff[..., :3].mean()) < 1 / 255
    assert float(diff[..., 3].mean()) < 1 / 255
    assert float(outs["gsplat"][..., 3].mean()) > 0.2  # the shell is in view
    for name in ("means", "colors", "opacities", "scales"):
        a, b = grads["torch"][name], grads["gsplat"][name]
        assert a is not None and b is not None
        assert _cosine(a, b) > 0.99, name
        assert abs(float(a.norm()) / float(b.norm()) - 1) < 0.05, name
