"""Static Gaussians, control points and skinning; and the ICT fixture generator the fit is scored with."""

from __future__ import annotations

import numpy as np
import pytest

from t2bs.capture import read_capture
from t2bs.fit.losses import ssim
from t2bs.fit.scaffold import build_scaffold
from t2bs.mesh_io import HeadMesh, load_head_mesh
from t2bs.testing.ict_fixture import make_ict_capture, registration_scores, view_drift
from tests.conftest import ICT_HEAD


def grid(n: int, size: float) -> tuple[np.ndarray, np.ndarray]:
    """A flat square of n x n vertices and side `size` in the y = 0 plane: (vertices, faces)."""
    xs = np.linspace(-size / 2, size / 2, n)
    points = np.stack(np.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, (i + 1) * n + j, (i + 1) * n + j + 1, i * n + j + 1
            faces += [[a, b, c], [a, c, d]]
    return np.column_stack([points[:, 0], np.zeros(len(points)), points[:, 1]]), np.asarray(faces)


def two_sheets(gap: float = 0.01, n: int = 30) -> HeadMesh:
    """Two parallel square sheets `gap` apart, like closed lips: close in space, far along the surface."""
    sheet, faces = grid(n, 1.0)
    vertices = np.concatenate([sheet, sheet + np.array([0, gap, 0])])
    faces_all = np.concatenate([faces, faces + len(sheet)])
    return HeadMesh(vertices=vertices, faces=faces_all, vertex_colors=np.full((len(vertices), 3), 128, np.uint8))


def test_scaffold_puts_vertices_first_and_skins_along_the_surface() -> None:
    mesh = two_sheets()
    scaffold = build_scaffold(mesh, surface_samples=300, control_count=40, seed=1)
    half = mesh.vertex_count // 2
    assert scaffold.count == mesh.vertex_count + 300
    np.testing.assert_array_equal(scaffold.means[: mesh.vertex_count], mesh.vertices)
    np.testing.assert_allclose(scaffold.skin_weight.sum(1), 1.0, atol=1e-5)
    assert scaffold.skin_index.shape == (scaffold.count, 10)
    # Controls are mesh vertices; a vertex of one sheet is never moved by the other sheet's controls.
    control_sheet = (scaffold.controls[:, 1] > 0.005).astype(int)
    vertex_sheet = np.repeat([0, 1], half)
    used = scaffold.skin_weight[: mesh.vertex_count] > 1e-6
    crossing = (control_sheet[scaffold.skin_index[: mesh.vertex_count]] != vertex_sheet[:, None]) & used
    assert not crossing.any()
    assert set(control_sheet) == {0, 1}
    # The as-rigid-as-possible term ties each control only to controls of its own sheet (an eyelid is
    # not held rigid to the eyeball beneath it), and never to itself.
    neighbors = scaffold.control_neighbors
    assert neighbors.shape == (40, 6)
    assert (control_sheet[neighbors] == control_sheet[:, None]).all()
    assert (neighbors != np.arange(40)[:, None]).all()


def test_skinning_keeps_the_edge_between_moving_and_still_skin_sharp() -> None:
    # Half of a sheet's controls move by 1, the rest stay: an eyelid under a still brow. Vertices more
    # than one control spacing from the edge must follow their own side, not a blur of both.
    mesh = two_sheets()
    scaffold = build_scaffold(mesh, surface_samples=300, control_count=40, seed=1)
    moving = (scaffold.controls[:, 0] > 0).astype(np.float64)
    v = mesh.vertex_count
    followed = (scaffold.skin_weight[:v] * moving[scaffold.skin_index[:v]]).sum(axis=1)
    x = mesh.vertices[:, 0]
    spacing = np.sqrt(2.0 / 40)  # two unit sheets, 40 controls
    away = np.abs(x) > spacing
    assert np.abs(followed - (x > 0))[away].mean() < 0.02


def test_a_separate_part_without_controls_moves_with_the_part_it_sits_on() -> None:
    # A small patch (a cornea) just under the upper sheet (an eyeball) and over the lower one (a lid):
    # both sheets' controls are about as near in space, so per-vertex nearest controls would tie it
    # to the lid. It holds no control, so it must take its skinning from the eyeball alone.
    sheets = two_sheets(gap=0.01)
    patch, patch_faces = grid(6, 0.1)
    patch += np.array([0.02, 0.007, 0.03])
    vertices = np.concatenate([sheets.vertices, patch])
    faces = np.concatenate([sheets.faces, patch_faces + sheets.vertex_count])
    mesh = HeadMesh(vertices=vertices, faces=faces, vertex_colors=np.full((len(vertices), 3), 128, np.uint8))
    scaffold = build_scaffold(mesh, surface_samples=300, control_count=40, seed=0)
    assert not np.isclose(scaffold.controls[:, 1], 0.007).any()  # no control on the patch
    on_patch = slice(sheets.vertex_count, mesh.vertex_count)
    used = scaffold.skin_weight[on_patch] > 1e-6
    upper_sheet = scaffold.controls[:, 1] > 0.005
    assert upper_sheet[scaffold.skin_index[on_patch]][used].all()
    np.testing.assert_allclose(scaffold.skin_weight[on_patch].sum(1), 1.0, atol=1e-5)


def test_ssim_of_identical_images_is_one() -> None:
    import torch

    image = torch.rand(2, 32, 32, 3)
    assert float(ssim(image, image)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(image, torch.rand(2, 32, 32, 3))) < 0.2


@pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")
def test_ict_fixture_writes_a_valid_capture_and_its_truth(tmp_path) -> None:
    fixture = make_ict_capture(tmp_path / "ict", sequences=2, views=3, frames=4, size=40, seed=5, drift=0.03)
    capture = read_capture(fixture.capture)
    assert capture.sequence_names == ["seq00", "seq01"] and next(iter(capture.cameras)) == "front"
    asset = load_head_mesh(fixture.asset)
    truth = np.load(fixture.truth)
    for name in capture.sequence_names:
        frames = capture.read_frames(name, "front")
        assert frames.shape == (4, 40, 40, 4) and capture.has_alpha(name, "front")
        assert 0.1 < (frames[..., 3] > 128).mean() < 0.9  # the head fills part of the image
        assert truth[name].shape == (4, asset.vertex_count, 3)
        np.testing.assert_allclose(truth[name][0], asset.source_vertices(), atol=1e-3)
        assert np.linalg.norm(truth[name][-1] - truth[name][0], axis=-1).max() > 0.1  # centimetres: it moves
    perfect = {name: truth[name] for name in capture.sequence_names}
    still = {name: np.repeat(truth[name][:1], 4, axis=0) for name in capture.sequence_names}
    assert registration_scores(perfect, fixture.truth)["motion_recovered"] == pytest.approx(1.0)
    assert registration_scores(still, fixture.truth)["motion_recovered"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")
def test_ict_fixture_with_more_views_adds_views_to_the_same_capture(tmp_path) -> None:
    # Comparing view counts on one seed must compare views, not two different expression mixes.
    few = make_ict_capture(tmp_path / "few", sequences=2, views=4, frames=2, size=24, seed=2)
    many = make_ict_capture(tmp_path / "many", sequences=2, views=6, frames=2, size=24, seed=2)
    few_capture, many_capture = read_capture(few.capture), read_capture(many.capture)
    assert [s.prompt for s in few_capture.sequences] == [s.prompt for s in many_capture.sequences]
    for name in few_capture.sequence_names:
        np.testing.assert_array_equal(np.load(few.truth)[name], np.load(many.truth)[name])
        for view in few_capture.cameras:
            np.testing.assert_array_equal(few_capture.read_frames(name, view), many_capture.read_frames(name, view))
    assert all(0.1 < (many_capture.read_frames("seq00", v)[0][..., 3] > 128).mean() < 0.9 for v in ("view04", "view05"))
    # The extra views drift in colour like the others, each its own way.
    gains, biases = view_drift(np.random.default_rng(2), 2, 6, 0.03)
    assert gains.shape == biases.shape == (6, 3) and np.abs(gains - 1).max() <= 0.03 and np.abs(biases).max() <= 0.01
    assert len({tuple(row) for row in gains.round(6)}) == 6


@pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")
def test_ict_fixture_still_writes_the_jaw_capture_with_profile_views(tmp_path) -> None:
    # docs/benchmarks.md tracks fits on this capture (bench_fit_ict.py --views 12 --shared-drift-views
    # 12): a wide-open jaw seen from the profile views, which a fit that moves too slowly early on
    # registers with the mouth closed. Its expressions must stay the ones those figures were taken on.
    fixture = make_ict_capture(
        tmp_path / "jaw", sequences=3, views=12, frames=2, size=16, seed=0, shared_drift_views=12
    )
    capture = read_capture(fixture.capture)
    assert [s.prompt for s in capture.sequences] == [
        "cheekPuff_L 0.72 + mouthLowerDown_L 0.83 + jawOpen 0.66",
        "jawOpen 0.90 + mouthFrown_R 0.85",
        "eyeBlink_L 0.89 + eyeLookOut_R 0.79",
    ]
    assert len(capture.cameras) == 12
