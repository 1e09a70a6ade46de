"""The fit and registration stages on a small ICT ground-truth capture: files, shapes, resume, bad input.

Quality (how much of the true motion the preview preset recovers) is guarded by the one slow test,
a full preview fit on a 3 x 4 views x 9 frames capture, and reported by bench/bench_fit_ict.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from t2bs.bundle import Bundle, read_registered
from t2bs.capture import CaptureWriter, look_at_camera, read_capture
from t2bs.errors import Cancelled, InputError
from t2bs.fit import losses as fit_losses, trainer as fit_trainer
from t2bs.fit.model import DeformableGaussians, axis_angle_to_matrix, normal_quaternions
from t2bs.fit.presets import PRESETS
from t2bs.fit.scaffold import build_scaffold
from t2bs.fit.trainer import NonFiniteLoss, Trainer, load_fit_data, register_sequence, smooth_over_controls
from t2bs.mesh_io import load_head_mesh
from t2bs.meshrender import vertex_normals
from t2bs.pipelines import start_run
from t2bs.progress import CancelToken
from t2bs.render.gaussians import resolve_backend
from t2bs.render.torch_rasterizer import quat_to_rotmat
from t2bs.stages.fit import build_trainer, sparse_laplacian
from t2bs.testing.ict_fixture import IctFixture, make_ict_capture
from tests.conftest import ICT_HEAD

pytestmark = pytest.mark.skipif(not ICT_HEAD.exists(), reason=f"ICT head model not found at {ICT_HEAD}")

FIT_STEPS = 6


@pytest.fixture(scope="module")
def ict(tmp_path_factory: pytest.TempPathFactory) -> IctFixture:
    return make_ict_capture(tmp_path_factory.mktemp("ict"), sequences=2, views=2, frames=3, size=48, seed=3)


@pytest.fixture(scope="module")
def fitted(ict: IctFixture, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fit") / "bundle"
    args = {"asset": str(ict.asset), "capture": str(ict.capture), "fit_steps": FIT_STEPS, "device": "cpu"}
    start_run("fit", args, out=out).run()
    return out


def test_fit_writes_a_complete_bundle(fitted: Path, ict: IctFixture) -> None:
    manifest = json.loads((fitted / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert list(manifest["stages"]) == ["asset", "capture", "fit", "register", "model", "export"]
    # The fit's registered frames become the blendshape model and head.glb.
    with np.load(fitted / "model.npz") as model:
        assert list(model["blendshape_names"]) == ["seq00", "seq01"]
    assert (fitted / "head.glb").is_file() and (fitted / "preview" / "expressions.png").is_file()
    fit = manifest["metrics"]["fit"]
    assert set(fit["psnr"]) == {"seq00", "seq01"} and all(10 < v < 80 for v in fit["psnr"].values())
    assert fit["steps"] == FIT_STEPS and np.isfinite(fit["final_losses"]["total"])
    assert manifest["providers"]["fit"]["rasterizer"] == "torch"  # the CPU path; "auto" resolved
    for name in ("fit.json", "scaffold.safetensors", "deformation.safetensors", "gaussians.ply"):
        assert (fitted / "fit" / name).is_file()
    assert not (fitted / ".checkpoints").exists() and not (fitted / ".partial").exists()


def test_registered_frames_have_the_asset_topology_in_its_coordinates(fitted: Path, ict: IctFixture) -> None:
    asset = load_head_mesh(ict.asset)
    source = asset.source_vertices()
    truth = np.load(ict.truth)
    assert Bundle(fitted).registered_sequences() == ["seq00", "seq01"]
    for name in ("seq00", "seq01"):
        vertices = read_registered(fitted / "registered" / f"{name}.npz", vertex_count=asset.vertex_count)
        assert vertices.shape == truth[name].shape == (3, asset.vertex_count, 3)
        # Frame 0 is the neutral: the static mesh itself, in the file's own units (centimetres).
        np.testing.assert_allclose(vertices[0], source, atol=1e-4 * float(truth["diagonal"]))
        # A few steps cannot have gone far from the truth.
        error = np.linalg.norm(vertices - truth[name], axis=-1).mean() / float(truth["diagonal"])
        assert error < 0.01


def test_gaussians_ply_is_in_the_3dgs_layout(fitted: Path, ict: IctFixture) -> None:
    data = (fitted / "fit" / "gaussians.ply").read_bytes()
    header, _, body = data.partition(b"end_header\n")
    lines = header.decode().splitlines()
    properties = [line.split()[-1] for line in lines if line.startswith("property")]
    assert properties == [
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
    count = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    table = np.frombuffer(body, dtype="<f4").reshape(count, len(properties))
    asset = load_head_mesh(ict.asset)
    normals = vertex_normals(asset.source_vertices(), asset.faces)
    # The first Gaussians are the mesh vertices, written in the asset file's coordinates, each moved
    # by the fit along its normal only (DeformableGaussians.base_depths), and by a hair.
    shift = table[: asset.vertex_count, :3] - asset.source_vertices()
    along = (shift * normals).sum(1, keepdims=True)
    np.testing.assert_allclose(shift, along * normals, atol=1e-4)
    assert 0 < np.abs(along).max() < 1e-3 * np.linalg.norm(np.ptp(asset.source_vertices(), axis=0))
    assert np.isfinite(table).all()
    # Flat Gaussians lying in the surface: the thin axis is the third, along the vertex normal.
    assert (table[:, 12] < table[:, 10] - 1.0).all() and np.allclose(table[:, 10], table[:, 11])
    q = table[: asset.vertex_count, 13:17] / np.linalg.norm(table[: asset.vertex_count, 13:17], axis=1, keepdims=True)
    w, x, y, z = q.T
    thin_axis = np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], axis=1)
    assert np.median(np.abs((thin_axis * normals).sum(1))) > 0.999


def test_cli_fit_rejects_a_capture_with_one_frame(ict: IctFixture, tmp_path: Path) -> None:
    capture = read_capture(ict.capture)
    writer = CaptureWriter(tmp_path / "one")
    for camera in capture.cameras.values():
        writer.add_camera(camera)
    frames = {view: capture.read_frames("seq00", view)[:1] for view in capture.cameras}
    writer.write_sequence("still", "", 24, frames)
    writer.close()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2bs",
            "fit",
            "--asset",
            str(ict.asset),
            "--capture",
            str(tmp_path / "one"),
            "--out",
            str(tmp_path / "b"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "t2bs: Sequence 'still' has a single frame; the fit needs frame 0 (neutral) and at least one more."
    )
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["status"] == "failed"


def _capture_with(
    camera_eye: tuple[float, float, float], target: tuple[float, float, float], ict: IctFixture, out: Path
) -> Path:
    source = read_capture(ict.capture)
    writer = CaptureWriter(out)
    camera = look_at_camera("front", camera_eye, target, (0, 1, 0), 48, 48, 28.0)
    writer.add_camera(camera)
    writer.write_sequence("seq", "", 24, {"front": source.read_frames("seq00", "front")})
    writer.close()
    return out


def test_cameras_that_do_not_see_the_asset_are_refused(ict: IctFixture, tmp_path: Path) -> None:
    mesh = load_head_mesh(ict.asset)
    away = read_capture(_capture_with((0, 0, 75), (0, 0, 150), ict, tmp_path / "away"))
    with pytest.raises(InputError, match="do not see the asset"):
        load_fit_data(away, mesh, torch.device("cpu"))
    # The same camera in metres while the asset is in centimetres: the head is a speck.
    far = read_capture(_capture_with((0, 0, 7500), (0, -2, 2), ict, tmp_path / "units"))
    with pytest.raises(InputError, match="same units"):
        load_fit_data(far, mesh, torch.device("cpu"))


def _small_trainer(ict: IctFixture, steps: int) -> Trainer:
    mesh = load_head_mesh(ict.asset)
    data = load_fit_data(read_capture(ict.capture), mesh, torch.device("cpu"))
    preset = PRESETS["preview"]
    preset = type(preset)(**{**preset.to_dict(), "steps": steps, "checkpoint_every": 2})
    scaffold = build_scaffold(mesh, surface_samples=500, control_count=100)
    model = DeformableGaussians(scaffold, [s.frame_count for s in data.sequences], code_dim=8, hidden=16, layers=2)
    return Trainer(model, data, preset, laplacian=sparse_laplacian(scaffold.laplacian, torch.device("cpu")))


def test_divergence_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(ict: IctFixture) -> None:
    trainer = _small_trainer(ict, steps=8)
    original = trainer.step
    saved: list[int] = []

    def step(index: int) -> dict[str, float]:
        if index == 5:
            with torch.no_grad():
                trainer.model.frame_residuals.fill_(float("nan"))
        return original(index)

    trainer.step = step  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLoss, match=r"diverged at step 5.*last good checkpoint \(step 4\)"):
        trainer.run(checkpoint=lambda state, done: saved.append(done))
    assert saved == [2, 4, 4]
    assert torch.isfinite(trainer.model.frame_residuals).all()  # restored to the good state


def test_cancelled_fit_resumes_from_its_checkpoint(ict: IctFixture, tmp_path: Path) -> None:
    token = CancelToken()
    args = {"asset": str(ict.asset), "capture": str(ict.capture), "fit_steps": 10, "device": "cpu"}

    def cancel_late(event: object) -> None:
        if getattr(event, "stage", "") == "fit" and "step 8/10" in getattr(event, "message", ""):
            token.cancel()

    with pytest.raises(Cancelled):
        start_run("fit", args, out=tmp_path / "b", on_progress=cancel_late, cancel=token).run()
    assert (tmp_path / "b" / ".checkpoints" / "fit" / "weights.safetensors").is_file()
    start_run("fit", args, out=tmp_path / "b", resume=True).run()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["metrics"]["fit"]["resumed_from_step"] >= 6


def test_a_checkpoint_of_another_format_or_shape_is_set_aside_not_continued(ict: IctFixture, tmp_path: Path) -> None:
    # A run resumed after the code was upgraded must not go on from tensors it would read with another
    # meaning (format 2 stored a linear light in the same four shading numbers), nor stop on them.
    import logging
    from types import SimpleNamespace

    from t2bs.errors import BundleError
    from t2bs.fit.storage import FIT_FORMAT_VERSION, load_weights, save_weights
    from t2bs.stages.fit import resume_from_checkpoint

    model = _small_trainer(ict, steps=1).model
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    learned = _small_trainer(ict, steps=1).model
    with torch.no_grad():
        for parameter in learned.parameters():
            parameter.normal_()
    metrics: dict[str, object] = {}
    ctx = SimpleNamespace(log=logging.getLogger("test"), record_metrics=metrics.update)
    path = tmp_path / "weights.safetensors"

    wrong_shape = dict(learned.state_dict())
    wrong_shape["base_colors"] = wrong_shape["base_colors"][:-1]
    for state, meta in (
        (learned.state_dict(), {"step": "40", "format": str(FIT_FORMAT_VERSION - 1)}),
        (learned.state_dict(), {"step": "40"}),
        (wrong_shape, {"step": "40", "format": str(FIT_FORMAT_VERSION)}),
        (learned.state_dict(), {"step": "forty", "format": str(FIT_FORMAT_VERSION)}),
    ):
        save_weights(path, state, meta)
        assert resume_from_checkpoint(ctx, model, path) == 0  # type: ignore[arg-type]
        assert not path.exists() and not metrics
        for name, tensor in model.state_dict().items():  # a load that failed part-way is undone
            torch.testing.assert_close(tensor, initial[name], msg=f"{name} kept a set-aside checkpoint's value")
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(BundleError, match="cannot be read"):  # the register stage's one sentence
        load_weights(model, path)
    assert resume_from_checkpoint(ctx, model, path) == 0  # type: ignore[arg-type]

    save_weights(path, learned.state_dict(), {"step": "40", "format": str(FIT_FORMAT_VERSION)})
    assert resume_from_checkpoint(ctx, model, path) == 40  # type: ignore[arg-type]
    assert metrics == {"resumed_from_step": 40}
    torch.testing.assert_close(model.shading, learned.shading)


def test_rotation_helper_and_identity_start(ict: IctFixture) -> None:
    rotation = axis_angle_to_matrix(torch.randn(50, 3))
    eye = torch.eye(3).expand(50, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(50), atol=1e-5, rtol=0)
    trainer = _small_trainer(ict, steps=1)
    model = trainer.model
    frames = torch.arange(model.frame_count)
    views = trainer.data.view_codes[torch.zeros_like(frames)]
    gaussians, _ = model.gaussians(model.frame_codes(frames), views)
    # Before any step the deformation is the identity: every frame is the static head.
    torch.testing.assert_close(gaussians.means, model.static_means.expand_as(gaussians.means), atol=1e-6, rtol=0)


def test_normal_quaternions_turn_local_z_onto_the_normals() -> None:
    normals = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    normals[0] = torch.tensor([0.0, 0.0, -1.0])  # straight down has no shortest arc of its own
    normals[1] = torch.tensor([0.0, 0.0, 1.0])
    turned = quat_to_rotmat(normal_quaternions(normals))[..., 2]
    torch.testing.assert_close(turned, normals, atol=1e-5, rtol=0)


def test_neutral_frames_and_the_rest_field_never_reach_the_registration(ict: IctFixture) -> None:
    model = _small_trainer(ict, steps=1).model
    lengths = [3, 3]
    with torch.no_grad():
        # A shared rest field (what matches the splats to the video's neutral head) and ramps that a
        # fit might push away from 0 at frame 0 must not move any registered frame.
        model.rest_offsets.normal_(0.0, 0.05)
        model.frame_ramps.fill_(3.0)
        model.sequence_offsets.normal_(0.0, 0.05)
    firsts = torch.tensor([0, lengths[0]])
    assert (model.ramps(firsts) == 0).all() and (model.ramps(firsts + 1) == 3.0).all()
    frames = torch.arange(lengths[0])
    registered = register_sequence(model, frames, torch.zeros(5))
    static = model.static_means[: model.vertex_count]
    torch.testing.assert_close(registered[0], static)
    # Frame 0 (ramp 0) carries the rest field alone; later frames differ from it by the ramped field.
    with torch.no_grad():
        model.rest_offsets.zero_()
    torch.testing.assert_close(register_sequence(model, frames, torch.zeros(5)), registered, atol=1e-5, rtol=0)
    assert (registered[1:] - static).abs().max() > 1e-3


def test_depth_offsets_move_the_drawn_splats_along_their_normals_not_the_registration(ict: IctFixture) -> None:
    trainer = _small_trainer(ict, steps=1)
    model, data = trainer.model, trainer.data
    frames = torch.arange(3)
    codes, views = model.frame_codes(frames), data.view_codes[torch.zeros(3, dtype=torch.long)]
    with torch.no_grad():
        model.sequence_offsets.normal_(0.0, 0.05)
        registered = register_sequence(model, frames, data.canonical_view)
        drawn, _ = model.gaussians(codes, views, frames=frames)
        still, _ = model.gaussians(codes, views, deform=False)
        model.base_depths.normal_(0.0, 0.01)
        registered_after = register_sequence(model, frames, data.canonical_view)
        drawn_after, _ = model.gaussians(codes, views, frames=frames)
        still_after, _ = model.gaussians(codes, views, deform=False)
    torch.testing.assert_close(registered_after, registered)
    expected = model.static_means + model.normals * model.base_depths[:, None]
    torch.testing.assert_close(still_after.means[0], expected)
    assert (still.means[0] == model.static_means).all()
    # Moved before the skinning, so every frame draws them where the deformation takes the offset splat.
    assert (drawn_after.means - drawn.means).norm(dim=-1).mean() > 0.005
    # And the fit learns them, at their own rate, from the colour warm-up on.
    rate = {id(p): group["lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert rate[id(model.base_depths)] == trainer.preset.lr_depths
    with torch.no_grad():
        model.base_depths.zero_()
    trainer.step(0)
    assert model.base_depths.abs().max() > 0


def test_a_sequence_turns_its_skin_with_the_rotation_field_and_the_fit_learns_it(ict: IctFixture) -> None:
    # A patch of skin turning about a hinge (a jaw, a lid) is a rigid map. Blended translations of the
    # controls only approximate it between controls; with each control turning as well the skinning
    # gives it exactly, since the weights sum to one.
    trainer = _small_trainer(ict, steps=10)
    model = trainer.model
    hinge = torch.tensor([0.0, -0.3, 0.1])
    axis_angle = torch.tensor([0.3, 0.0, 0.0])
    turn = axis_angle_to_matrix(axis_angle)
    static = model.static_means[: model.vertex_count]
    expected = (static - hinge) @ turn.T + hinge
    frames = torch.arange(3)  # the first sequence; its ramps start at 0, 0.5, 1
    with torch.no_grad():
        model.sequence_offsets[0] = (model.controls - hinge) @ turn.T + hinge - model.controls
        translated_only = register_sequence(model, frames, trainer.data.canonical_view)
        model.sequence_rotations[0] = axis_angle
        turned = register_sequence(model, frames, trainer.data.canonical_view)
    torch.testing.assert_close(turned[0], static)
    torch.testing.assert_close(turned[2], expected, atol=1e-5, rtol=0)
    assert (translated_only[2] - expected).norm(dim=-1).max() > 1e-3
    # The fit optimises the field once the colour warm-up is over.
    with torch.no_grad():
        model.sequence_rotations.zero_()
    trainer.step(int(trainer.preset.color_warmup * trainer.preset.steps) + 1)
    assert model.sequence_rotations.abs().max() > 0


def test_the_ramps_learn_slower_than_the_other_codes(ict: IctFixture) -> None:
    # At the codes' rate the ramps shrank in every fit and the motion's own step with them
    # (FitPreset.lr_ramps); they have a group of their own.
    trainer = _small_trainer(ict, steps=1)
    rate = {id(p): group["lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    preset = trainer.preset
    assert rate[id(trainer.model.frame_ramps)] == preset.lr_ramps < preset.lr_codes
    assert rate[id(trainer.model.sequence_directions)] == preset.lr_codes


def test_learning_rates_follow_the_cosine_then_fall_to_the_final_fraction(ict: IctFixture) -> None:
    # Adam's step is about the learning rate, so the last rate is the jitter left in still skin; the
    # cosine keeps its tenth until the last part so that wide motions still travel (FitPreset.lr_final).
    trainer = _small_trainer(ict, steps=100)
    preset = trainer.preset
    assert preset.lr_final <= 0.01 < preset.lr_cosine_end and 0.0 < preset.lr_final_part < 0.5
    rates = {}
    for step in (50, 89, 95, 99):
        trainer._set_learning_rate(step)
        rates[step] = [group["lr"] for group in trainer.optimizer.param_groups]
    before_tail = preset.lr_cosine_end + (1 - preset.lr_cosine_end) * 0.5 * (1 + math.cos(math.pi * 89 / 99))
    for index, base in enumerate(trainer.base_lrs):
        assert rates[50][index] == pytest.approx(base * (0.5 + 0.5 * preset.lr_cosine_end), rel=0.02)
        assert rates[89][index] == pytest.approx(base * before_tail)
        assert base * preset.lr_final < rates[95][index] < base * preset.lr_cosine_end
        assert rates[99][index] == pytest.approx(base * preset.lr_final)


def test_batches_deal_every_image_once_a_round_with_the_sequences_taking_turns(ict: IctFixture) -> None:
    trainer = _small_trainer(ict, steps=1)
    images = len(trainer.data.images)  # 2 sequences x 3 frames x 2 views
    sequences = len(trainer.data.sequences)
    batch = trainer.preset.batch
    dealt = torch.cat([trainer.draw_batch(warmup=False) for _ in range(3 * images // batch)])
    for start in range(0, len(dealt), images):
        assert sorted(dealt[start : start + images].tolist()) == list(range(images))
    # Within a round the sequences alternate, so each step sees all of them.
    owners = trainer.image_sequence[dealt].reshape(-1, sequences)
    assert (owners == torch.arange(sequences)).all()
    # Rounds are shuffled afresh, and the warm-up draws frame-0 images only.
    assert not torch.equal(dealt[:images], dealt[images : 2 * images])
    warm = trainer.draw_batch(warmup=True)
    assert set(warm.tolist()) <= set(trainer.neutral_images.tolist())


def test_smoothing_over_controls_spreads_a_spike_to_its_surface_neighbours_only() -> None:
    neighbors = torch.tensor([[1, 2], [0, 2], [0, 1], [2, 2]])  # control 3 is nobody's neighbour
    spike = torch.zeros(1, 4, 3)
    spike[0, 0] = 1.0
    once = smooth_over_controls(spike, neighbors, passes=1)[0, :, 0]
    assert torch.allclose(once, torch.tensor([0.5, 0.25, 0.25, 0.0]))
    flat = torch.ones(2, 4, 3)
    assert torch.allclose(smooth_over_controls(flat, neighbors, passes=3), flat)


def test_field_gradients_are_smoothed_while_the_fit_is_young_and_left_alone_after(
    ict: IctFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = _small_trainer(ict, steps=10)  # warm-up step 0, smoothing until step 4
    smoothed_at: list[int] = []
    current = {"step": -1}
    original = fit_trainer.smooth_over_controls

    def recording(values: torch.Tensor, neighbors: torch.Tensor, passes: int) -> torch.Tensor:
        smoothed_at.append(current["step"])
        assert passes == trainer.preset.field_smoothing_passes > 0
        return original(values, neighbors, passes)

    monkeypatch.setattr(fit_trainer, "smooth_over_controls", recording)
    for step in range(6):
        current["step"] = step
        trainer.step(step)
    # Both fields (offsets and rotations) at each young step after the colour warm-up.
    assert smoothed_at == [1, 1, 2, 2, 3, 3]


def test_saved_weights_give_back_every_learned_parameter(ict: IctFixture, tmp_path: Path) -> None:
    # The register stage rebuilds the model from the scaffold and these weights: a parameter they left
    # out would register with its initial value (a field the fit learned would be silently dropped).
    from t2bs.fit.storage import load_weights, save_weights

    model = _small_trainer(ict, steps=1).model
    fresh = _small_trainer(ict, steps=1).model
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    save_weights(tmp_path / "weights.safetensors", model.state_dict())
    load_weights(fresh, tmp_path / "weights.safetensors")
    for (name, saved), loaded in zip(model.named_parameters(), fresh.parameters(), strict=True):
        torch.testing.assert_close(loaded, saved, msg=f"{name} did not come back")


class _HeadPose(torch.nn.Module):
    """A head pose moving the head along x by `shift` / 20 (normalised units), plus `by_view` / 20 x the
    view code's first number (the camera's azimuth): the same pose in every view when `by_view` is 0."""

    def __init__(self, shift: float, by_view: float) -> None:
        super().__init__()
        self.shift, self.by_view = shift, by_view

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        pose = torch.zeros(len(condition), 6)
        pose[:, 3] = self.shift + self.by_view * condition[:, -5]  # DeformableGaussians scales it by 0.05
        return pose


def test_the_view_penalty_covers_the_head_pose_as_well(ict: IctFixture) -> None:
    # The global head transform is a view-conditioned output of the deformation like the controls'
    # transforms: whatever of it differs from the canonical view's is the view-dependent part.
    trainer = _small_trainer(ict, steps=1)
    model, data = trainer.model, trainer.data
    frames, side = torch.tensor([1, 1]), torch.tensor([1, 1])
    assert not torch.equal(data.view_codes[1], data.canonical_view)
    codes = model.frame_codes(frames)

    def view_penalty(head_pose: torch.nn.Module) -> float:
        model.head_pose = head_pose
        with torch.no_grad():
            gaussians, deformation = model.gaussians(codes, data.view_codes[side], frames=frames)
            assert deformation is not None
            return float(trainer.geometry_terms(gaussians.means, deformation, codes, frames)["view"])

    still, shared, by_view = (view_penalty(_HeadPose(*pose)) for pose in ((0.0, 0.0), (2.0, 0.0), (2.0, 1.0)))
    assert shared == pytest.approx(still)  # a head pose every view sees alike costs nothing here
    assert by_view > still + 1e-3


def test_shading_starts_as_ambient_light_and_is_lambert_of_the_turned_normal(ict: IctFixture) -> None:
    from t2bs.fit.model import INITIAL_LIGHT

    model = _small_trainer(ict, steps=1).model
    frames = torch.zeros(1, dtype=torch.long)
    gaussians, _ = model.gaussians(model.frame_codes(frames), torch.zeros(1, 5), frames=frames)
    base = torch.sigmoid(model.base_colors)
    # Ambient light alone, but for a faint light that lets the clamp pass a gradient.
    torch.testing.assert_close(gaussians.shaded[0], base, atol=INITIAL_LIGHT, rtol=0)
    with torch.no_grad():
        model.shading.copy_(torch.tensor([0.5, 0.0, 0.0, 0.5]))  # ambient 0.5, lit from +Z
    lit, _ = model.gaussians(model.frame_codes(frames), torch.zeros(1, 5), frames=frames, deform=False)
    facing_z = model.normals[:, 2:3]
    torch.testing.assert_close(lit.shaded[0], base * (0.5 + 0.5 * facing_z.clamp_min(0)))
    # Skin that faces away from the light keeps the ambient level, as a Lambert-lit video shows it,
    # instead of darkening further as a linear light would.
    away = facing_z[:, 0] < -0.5
    assert away.sum() > 100
    torch.testing.assert_close(lit.shaded[0, away], 0.5 * base[away])
    # And the faint starting light is enough for the light to learn.
    model.gaussians(model.frame_codes(frames), torch.zeros(1, 5), frames=frames)[0].shaded.sum().backward()
    assert model.shading.grad is not None and model.shading.grad[1:].abs().sum() > 0


def test_shading_follows_the_moved_surface_not_the_static_one(ict: IctFixture) -> None:
    # The offset fields translate controls without turning them; the skin must still turn (and
    # darken) where the surface bends, or shading changes in the videos pull on the geometry.
    trainer = _small_trainer(ict, steps=1)
    model = trainer.model
    frames = torch.ones(1, dtype=torch.long)  # a moving frame of the first sequence
    with torch.no_grad():
        model.shading.copy_(torch.tensor([0.5, 0.0, 0.0, 0.5]))  # lit from +Z
        model.frame_ramps.fill_(1.0)
        model.sequence_offsets[0, :, 2] = 0.5 * model.controls[:, 1]  # a shear: z += 0.5 y
        moved, _ = model.gaussians(model.frame_codes(frames), torch.zeros(1, 5), frames=frames)
    v = model.vertex_count
    faces = load_head_mesh(ict.asset).faces
    bent = torch.from_numpy(vertex_normals(moved.means[0, :v].numpy(), faces))
    base = torch.sigmoid(model.base_colors[:v])
    torch.testing.assert_close(moved.shaded[0, :v], base * (0.5 + 0.5 * bent[:, 2:3].clamp_min(0)), atol=1e-4, rtol=0)
    turned = torch.acos((bent * model.normals[:v]).sum(-1).clamp(-1, 1))
    assert turned.median() > 0.1  # radians: the shear did turn the surface


def test_change_term_compares_with_frame_0_of_the_same_video(ict: IctFixture) -> None:
    from t2bs.fit.trainer import NEUTRAL_REFRESH

    trainer = _small_trainer(ict, steps=4)
    trainer.preset = dataclasses.replace(trainer.preset, change_weight=1.0)  # a clear share of the step
    data = trainer.data
    # Every image maps to the image of its sequence's frame 0 seen by the same camera.
    neutral = trainer.neutral_of
    firsts = {s.first_frame for s in data.sequences}
    assert all(int(f) in firsts for f in data.image_frame[neutral])
    assert torch.equal(data.image_view[neutral], data.image_view)
    for span in data.sequences:
        inside = (data.image_frame >= span.first_frame) & (data.image_frame < span.first_frame + span.frame_count)
        assert (data.image_frame[neutral[inside]] == span.first_frame).all()

    # The error is the frame-0 render minus the frame-0 image, kept until NEUTRAL_REFRESH steps pass.
    picked = torch.tensor([1, 2])
    rgb_error, alpha_error = trainer.neutral_error(neutral[picked], step=0)
    model = trainer.model
    frames, views = data.image_frame[neutral[picked]], data.image_view[neutral[picked]]
    with torch.no_grad():
        gaussians, _ = model.gaussians(model.frame_codes(frames), data.view_codes[views], frames=frames)
        rgb, alpha = trainer.render(gaussians, views)
    target_rgb, target_alpha = trainer.targets(data.images[neutral[picked]], views)
    torch.testing.assert_close(rgb_error, rgb - target_rgb)
    torch.testing.assert_close(alpha_error, alpha - target_alpha)
    with torch.no_grad():
        model.base_colors.add_(1.0)  # the render changes; the kept error does not until it is stale
    torch.testing.assert_close(trainer.neutral_error(neutral[picked], step=NEUTRAL_REFRESH - 1)[0], rgb_error)
    assert not torch.allclose(trainer.neutral_error(neutral[picked], step=NEUTRAL_REFRESH)[0], rgb_error)
    # And the term takes part in a step once the colours have warmed up.
    assert "change" in trainer.step(3) and trainer.preset.change_weight > 0


def test_base_colours_stay_the_assets_own_while_the_shading_learns_the_light(ict: IctFixture) -> None:
    trainer = _small_trainer(ict, steps=10)
    trainer.preset = dataclasses.replace(trainer.preset, albedo_hold=0.3)
    model = trainer.model
    asset_colors, shading = model.base_colors.detach().clone(), model.shading.detach().clone()
    for step in range(3):
        trainer.step(step)
    assert torch.equal(model.base_colors, asset_colors)
    assert not torch.equal(model.shading, shading)
    # After the hold the base colours learn like any other appearance parameter.
    trainer.step(3)
    assert not torch.equal(model.base_colors, asset_colors)


def test_each_step_weighs_its_terms_and_sizes_ssim_as_the_preset_schedules_them(
    ict: IctFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = _small_trainer(ict, steps=10)  # the colour warm-up is step 0
    # No mask term, so that the change term is its weight times its photometric part alone.
    trainer.preset = dataclasses.replace(
        trainer.preset, gradient_ramp=0.6, change_ramp=0.6, ssim_sigmas=(1.5, 1.0, 0.75), mask_weight=0.0
    )
    preset = trainer.preset
    original = fit_losses.photometric
    passed: list[tuple[float, float]] = []
    returned: list[float] = []

    def spy(
        rendered: torch.Tensor,
        target: torch.Tensor,
        ssim_weight: float,
        gradient_weight: float = 0.0,
        ssim_sigma: float = 1.5,
    ) -> torch.Tensor:
        passed.append((gradient_weight, ssim_sigma))
        value = original(rendered, target, ssim_weight, gradient_weight, ssim_sigma)
        returned.append(float(value.detach()))
        return value

    monkeypatch.setattr(fit_losses, "photometric", spy)
    seen = {}
    for step in (0, 3, 5, 9):
        passed.clear()
        returned.clear()
        values = trainer.step(step)
        assert len(passed) == (1 if step == 0 else 2)  # the change term joins after the warm-up
        expected = (pytest.approx(preset.gradient_weight_at(step)), preset.ssim_sigma_at(step))
        assert passed == [expected] * len(passed)
        if step > 0:
            assert values["change"] == pytest.approx(preset.change_weight_at(step) * returned[1], rel=1e-5)
        seen[step] = passed[0]
    # The edge term: off in the warm-up, part of the way at step 3 (plain and change terms alike),
    # full at the end; the change term ramps the same way. SSIM's window: the classic 1.5 px until a
    # third of the way, then narrower.
    assert seen[0][0] == 0.0 and 0.0 < seen[3][0] < preset.gradient_weight == pytest.approx(seen[9][0])
    assert 0.0 < preset.change_weight_at(3) < preset.change_weight == preset.change_weight_at(9)
    assert [seen[step][1] for step in (0, 3, 5, 9)] == [1.5, 1.5, 1.0, 0.75]


@pytest.mark.slow
def test_preview_fit_recovers_expression_motion_on_ict(tmp_path: Path) -> None:
    """The CPU quality measurement of issue 3 (preview preset, 3 x 4 views x 9 frames, 128 px).

    The issue's target is 80% of the motion; the fit reaches 79.3% today (docs/benchmarks.md; another
    capture seed gives 76.7%). This test guards what has been reached, so that a change that makes
    registration worse fails here.
    """
    from t2bs.testing.ict_fixture import registration_scores

    fixture = make_ict_capture(tmp_path / "ict", sequences=3, views=4, frames=9, size=128, seed=0)
    out = tmp_path / "bundle"
    start_run("fit", {"asset": str(fixture.asset), "capture": str(fixture.capture), "device": "cpu"}, out=out).run()
    registered = {
        name: read_registered(out / "registered" / f"{name}.npz") for name in Bundle(out).registered_sequences()
    }
    scores = registration_scores(registered, fixture.truth)
    assert scores["mean_error_over_diagonal"] < 0.001
    assert scores["mean_error_over_diagonal"] < 0.85 * scores["static_error_over_diagonal"]
    assert scores["motion_recovered"] >= 0.78, scores


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_fit_step_sees_what_the_cpu_step_sees_and_a_cuda_fit_completes(ict: IctFixture, tmp_path: Path) -> None:
    """The whole step (model, gsplat, losses, backward) on CUDA against the same step on the CPU.

    Same seed, same batch (the trainer draws it on the CPU), a step past the colour warm-up so the
    deformation, the change term and the geometry terms all run. The rasterizers differ by under 1/255
    (tests/backend/test_render.py), so the image terms agree to about that; the geometry terms do not
    touch the rasterizer and agree to float precision; the offset fields' gradients point the same way.
    """
    pytest.importorskip("gsplat")
    mesh = load_head_mesh(ict.asset)
    preset = dataclasses.replace(PRESETS["preview"], steps=40)
    step = int(preset.color_warmup * preset.steps) + 1
    losses, gradients, backends = {}, {}, {}
    for name in ("cpu", "cuda"):
        device = torch.device(name)
        torch.manual_seed(0)
        data = load_fit_data(read_capture(ict.capture), mesh, device)
        _, trainer = build_trainer(mesh, data, preset, device, seed=0)
        losses[name] = trainer.step(step)
        gradients[name] = trainer.model.sequence_offsets.grad.detach().cpu().flatten().double()
        backends[name] = resolve_backend(trainer.backend, device)
    assert backends == {"cpu": "torch", "cuda": "gsplat"}
    assert set(losses["cpu"]) == set(losses["cuda"])
    for term in ("photo", "change", "mask"):
        assert losses["cuda"][term] == pytest.approx(losses["cpu"][term], abs=2e-3), term
    for term in ("laplacian", "arap", "temporal", "view"):
        assert losses["cuda"][term] == pytest.approx(losses["cpu"][term], rel=1e-3, abs=1e-7), term
    cosine = torch.nn.functional.cosine_similarity(gradients["cpu"], gradients["cuda"], dim=0)
    assert cosine > 0.9, f"offset-field gradients disagree between the backends (cosine {cosine:.3f})"

    out = tmp_path / "bundle"
    args = {"asset": str(ict.asset), "capture": str(ict.capture), "fit_steps": 20, "device": "cuda"}
    start_run("fit", args, out=out).run()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["providers"]["fit"]["rasterizer"] == "gsplat"
    assert manifest["providers"]["fit"]["device"].startswith("cuda")
    vertices = read_registered(out / "registered" / "seq00.npz")
    with np.load(ict.truth) as truth:
        assert vertices.shape == truth["seq00"].shape and np.isfinite(vertices).all()
