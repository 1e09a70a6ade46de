"""The optimisation loop of the fit, and the data it consumes.

Everything runs in the asset's normalised frame: capture cameras are moved into it once, so that
learning rates and regularisers mean the same for a head modelled in centimetres or in metres.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..capture import Capture
from ..errors import InputError, StageError
from ..mesh_io import HeadMesh
from ..render import rasterize
from . import losses
from .model import ControlDeformation, DeformableGaussians, GaussianBatch, view_code
from .presets import FitPreset
from .sparse import SparseMatrix

# Steps between fresh renders of a frame-0 image for the change term (Trainer.neutral_error).
NEUTRAL_REFRESH = 50
# A Gaussian whose normal points this much away from the camera is hidden behind the head.
BACKFACE_COSINE = 0.35
# How the splats become pixels. A video pixel is the average of the surface over its area; 3DGS's
# classic 0.3 px^2 low-pass instead inflates every splat smaller than a pixel (most of the preview's,
# 0.4 px across at 128 px) into a larger and heavier blob: the head rendered 7.5% more silhouette
# than the mesh, and skin edges came out soft. A mass-preserving ("antialiased") low-pass of about a
# pixel's own variance (1/12 px^2) keeps both; see docs/benchmarks.md for the figures.
RENDER_ANTIALIASED = True
RENDER_EPS2D = 0.1


@dataclass
class SequenceSpan:
    name: str
    first_frame: int  # index of its frame 0 among all frames (the model's code table)
    frame_count: int


@dataclass
class FitData:
    """The capture as tensors, cameras in the normalised frame.

    Attributes:
        images: [I, H, W, 4] uint8 RGBA (alpha 255 where the capture has none).
        image_frame: [I] global frame index of each image; image_view: [I] camera index.
        viewmats: [C, 4, 4] rigid world-to-camera in the normalised frame; Ks: [C, 3, 3].
        view_codes: [C, 5]; canonical_view: [5] (the frontal camera's code).
        backgrounds: [C, 3] colour behind the head per camera (black when there is a mask).
    """

    images: Tensor
    image_frame: Tensor
    image_view: Tensor
    viewmats: Tensor
    Ks: Tensor
    camera_centers: Tensor
    view_codes: Tensor
    canonical_view: Tensor
    backgrounds: Tensor
    has_mask: bool
    width: int
    height: int
    camera_names: list[str]
    sequences: list[SequenceSpan] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return sum(s.frame_count for s in self.sequences)


def canonical_camera_index(capture: Capture, mesh: HeadMesh) -> int:
    """The camera closest to straight in front of the face (+Z in the normalised frame)."""
    best, best_score = 0, -2.0
    for index, camera in enumerate(capture.cameras.values()):
        center = mesh.from_source_points(camera.center[None])[0]
        score = float(center[2] / max(np.linalg.norm(center), 1e-12))
        if score > best_score + 1e-6:
            best, best_score = index, score
    return best


def load_fit_data(
    capture: Capture, mesh: HeadMesh, device: torch.device, progress: Callable[[float, str], None] | None = None
) -> FitData:
    """Read every frame of the capture and check that it can be fitted to `mesh`."""
    cameras = list(capture.cameras.values())
    sizes = {(c.width, c.height) for c in cameras}
    if len(sizes) != 1:
        raise InputError("The capture's cameras have different image sizes; the fit needs one size for all views.")
    width, height = sizes.pop()
    for sequence in capture.sequences:
        if capture.frame_count(sequence.name) < 2:
            raise InputError(
                f"Sequence {sequence.name!r} has a single frame; the fit needs frame 0 (neutral) and at least one more."
            )

    # capture cameras see the asset file's coordinates; the model lives in the normalised frame.
    to_source = mesh.to_source
    scale = mesh.source_scale
    viewmats, ks, centers, codes, names = [], [], [], [], []
    for camera in cameras:
        w2c = camera.world_to_camera @ to_source  # camera <- normalised, with uniform scale `scale`
        rigid = np.eye(4)
        rigid[:3, :3] = w2c[:3, :3] / scale
        rigid[:3, 3] = w2c[:3, 3] / scale  # projection ignores a common scale of camera coordinates
        viewmats.append(rigid)
        ks.append(camera.K)
        center = -rigid[:3, :3].T @ rigid[:3, 3]
        centers.append(center)
        distance = float(np.linalg.norm(center))
        azimuth = math.degrees(math.atan2(center[0], center[2]))
        elevation = math.degrees(math.asin(max(-1.0, min(1.0, center[1] / max(distance, 1e-12)))))
        codes.append((azimuth, elevation, distance))
        names.append(camera.name)
    _check_cameras_see_asset(mesh, np.array(viewmats), np.array(ks), width, height)

    images, image_frame, image_view, spans = [], [], [], []
    has_mask = True
    first = 0
    total = len(capture.sequences) * len(cameras)
    done = 0
    for sequence in capture.sequences:
        count = capture.frame_count(sequence.name)
        spans.append(SequenceSpan(sequence.name, first, count))
        for view_index, camera in enumerate(cameras):
            if camera.name not in sequence.views:
                continue
            frames = capture.read_frames(sequence.name, camera.name)  # [T, H, W, 4]
            has_mask &= capture.has_alpha(sequence.name, camera.name)
            images.append(torch.from_numpy(np.ascontiguousarray(frames)))
            image_frame.append(torch.arange(first, first + count))
            image_view.append(torch.full((count,), view_index))
            done += 1
            if progress is not None:
                progress(done / total, f"reading {sequence.name}/{camera.name}")
        first += count

    all_images = torch.cat(images).to(device)
    backgrounds = torch.zeros(len(cameras), 3)
    if not has_mask:
        # Without a mask the background is whatever the video shows: take it from the image borders.
        view_of = torch.cat(image_view)
        for v in range(len(cameras)):
            picked = all_images[view_of.to(device) == v][:, :, :, :3].float() / 255.0
            border = torch.cat([picked[:, 0], picked[:, -1], picked[:, :, 0], picked[:, :, -1]], dim=1)
            backgrounds[v] = border.reshape(-1, 3).median(dim=0).values.cpu()
    angles = torch.tensor(codes, dtype=torch.float32)
    view_codes = view_code(angles[:, 0], angles[:, 1], angles[:, 2])
    canonical = canonical_camera_index(capture, mesh)
    return FitData(
        images=all_images,
        image_frame=torch.cat(image_frame).to(device),
        image_view=torch.cat(image_view).to(device),
        viewmats=torch.tensor(np.array(viewmats), dtype=torch.float32, device=device),
        Ks=torch.tensor(np.array(ks), dtype=torch.float32, device=device),
        camera_centers=torch.tensor(np.array(centers), dtype=torch.float32, device=device),
        view_codes=view_codes.to(device),
        canonical_view=view_codes[canonical].to(device),
        backgrounds=backgrounds.to(device),
        has_mask=has_mask,
        width=width,
        height=height,
        camera_names=names,
        sequences=spans,
    )


def _check_cameras_see_asset(mesh: HeadMesh, viewmats: np.ndarray, ks: np.ndarray, width: int, height: int) -> None:
    """Refuse captures whose cameras cannot see the head, or see it at an absurd size (wrong units)."""
    points = mesh.vertices.astype(np.float64)
    extent = float(np.ptp(points, axis=0).max())
    seen, sizes = 0, []
    for w2c, k in zip(viewmats, ks, strict=True):
        cam = points @ w2c[:3, :3].T + w2c[:3, 3]
        front = cam[:, 2] > 1e-6
        if front.mean() < 0.5:
            continue
        uv = cam[front, :2] / cam[front, 2:3] * np.array([k[0, 0], k[1, 1]]) + k[:2, 2]
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < width) & (uv[:, 1] >= 0) & (uv[:, 1] < height)
        if inside.mean() > 0.5:
            seen += 1
            sizes.append(extent * k[1, 1] / float(np.median(cam[front, 2])) / height)
    if seen == 0:
        raise InputError(
            "The capture's cameras do not see the asset (it projects outside every image); are the capture "
            "and the asset in the same coordinates and units?"
        )
    if max(sizes) < 0.05:
        raise InputError(
            "The asset covers less than 5% of every image; are the capture and the asset in the same units?"
        )


@dataclass
class FitResult:
    metrics: dict[str, float]
    per_sequence_psnr: dict[str, float]
    steps_done: int
    seconds: float


class NonFiniteLoss(StageError):
    pass


class Trainer:
    """Optimises a `DeformableGaussians` model against `FitData`.

    `step_callback(fraction, message)` is called every few steps; it may raise `Cancelled`.
    `checkpoint(state, step)` is called every `preset.checkpoint_every` steps with a known-good state.
    """

    def __init__(
        self,
        model: DeformableGaussians,
        data: FitData,
        preset: FitPreset,
        *,
        laplacian: SparseMatrix,
        seed: int = 0,
        backend: str = "auto",
    ) -> None:
        self.model = model
        self.data = data
        self.preset = preset
        self.laplacian = laplacian
        self.backend = backend
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        codes = [model.sequence_directions, model.frame_residuals]
        ramps = [model.frame_ramps]
        offsets = [model.sequence_offsets, model.rest_offsets]
        # Unused per-frame offsets stay at zero and get no gradient computed at all.
        model.frame_offsets.requires_grad_(preset.frame_offsets)
        if preset.frame_offsets:
            offsets.append(model.frame_offsets)
        appearance = [model.base_colors, model.base_log_scales, model.base_opacity_logits, model.shading]
        rotations = [model.sequence_rotations]
        named_groups = [
            (codes, preset.lr_codes),
            (ramps, preset.lr_ramps),
            (appearance, preset.lr_colors),
            ([model.base_depths], preset.lr_depths),
            (offsets, preset.lr_offsets),
            (rotations, preset.lr_rotations),
        ]
        # The network is everything else: its MLPs' weights, however many layers they have.
        grouped = {id(p) for params, _ in named_groups for p in params} | {id(model.frame_offsets)}
        network = [p for p in model.parameters() if id(p) not in grouped]
        self.optimizer = torch.optim.Adam(
            [{"params": network, "lr": preset.lr_network}]
            + [{"params": params, "lr": lr} for params, lr in named_groups]
        )
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        v = model.vertex_count
        static = model.static_means[:v]
        self.static_delta = laplacian @ static
        spacing = torch.cdist(model.controls[:64], model.controls).topk(2, largest=False).values[:, 1].median()
        self.control_spacing = float(spacing)
        self.last_losses: dict[str, float] = {}
        # For every image, the image of its sequence's frame 0 seen by the same camera.
        first_of_frame = torch.empty(data.frame_count, dtype=torch.long)
        for span in data.sequences:
            first_of_frame[span.first_frame : span.first_frame + span.frame_count] = span.first_frame
        key = data.image_frame.cpu() * len(data.camera_names) + data.image_view.cpu()
        lookup = torch.full((int(key.max()) + 1,), -1, dtype=torch.long)
        lookup[key] = torch.arange(len(key))
        neutral_key = first_of_frame[data.image_frame.cpu()] * len(data.camera_names) + data.image_view.cpu()
        neutral_of = lookup[neutral_key]
        # On the CPU, where batches are drawn: the images it names are looked up from Python, and a read
        # from the GPU would stall the host in the middle of every step.
        self.neutral_of: Tensor = neutral_of
        # The frame-0 images themselves: what the colour warm-up draws from.
        self.neutral_images: Tensor = torch.nonzero(neutral_of == torch.arange(len(key))).squeeze(1)
        self._neutral_errors: dict[int, tuple[Tensor, Tensor]] = {}
        # Which Gaussians each camera sees: back-facing ones (by the static normals) are dropped before
        # rasterizing. Per camera, the kept ones first in their own order, and how many there are.
        to_camera = model.static_means[None] - data.camera_centers[:, None]
        facing = (model.normals[None] * to_camera).sum(-1) / to_camera.norm(dim=-1).clamp_min(1e-9)
        keep = facing < BACKFACE_COSINE  # [C, N]
        self.visible_order: Tensor = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
        self.visible_count_on_device: Tensor = keep.sum(1)
        self.visible_count: Tensor = self.visible_count_on_device.cpu()
        self.image_view_cpu: Tensor = data.image_view.cpu()
        self.image_sequence: Tensor = model.frame_sequence.cpu()[data.image_frame.cpu()]
        self._dealt: Tensor = torch.empty(0, dtype=torch.long)
        self._neutral_step: dict[int, int] = {}

    # -- one step ---------------------------------------------------------------------------------

    def render(self, gaussians: GaussianBatch, views: Tensor) -> tuple[Tensor, Tensor]:
        """Render a batch at cameras `views` [B]; Gaussians facing away are dropped first.

        `views` is best a CPU tensor: it picks each camera's visible Gaussians from a table made once,
        and a GPU tensor would have to be read back first, stalling the host mid-step.
        """
        data = self.data
        means = gaussians.means
        batch = means.shape[0]
        views_cpu = views.cpu()
        views = views_cpu.to(means.device, non_blocking=True)
        # Items keep different subsets; pad to the largest with fully transparent Gaussians.
        width_n = int(self.visible_count[views_cpu].max())
        order = self.visible_order[views, :width_n]
        valid = torch.arange(width_n, device=means.device)[None] < self.visible_count_on_device[views][:, None]

        def take(t: Tensor) -> Tensor:
            index = order.reshape(batch, width_n, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
            return torch.gather(t, 1, index)

        o = take(self.model.opacities()[None].expand(batch, -1))
        opacity = torch.where(valid, o, torch.zeros((), dtype=means.dtype))
        out = rasterize(
            take(means),
            take(gaussians.quats),
            take(gaussians.scales),
            opacity,
            take(gaussians.colors),
            data.viewmats[views],
            data.Ks[views],
            data.width,
            data.height,
            background=data.backgrounds[views],
            eps2d=RENDER_EPS2D,
            antialiased=RENDER_ANTIALIASED,
            backend=self.backend,
        )
        return out.rgb, out.alpha

    def targets(self, images: Tensor, views: Tensor) -> tuple[Tensor, Tensor]:
        rgba = images.float() / 255.0
        alpha = rgba[..., 3:]
        rgb = rgba[..., :3] * alpha + self.data.backgrounds[views][:, None, None] * (1 - alpha)
        return rgb, alpha

    def step(self, step: int) -> dict[str, float]:
        p, data, model = self.preset, self.data, self.model
        warmup = step < int(p.color_warmup * p.steps)
        picked_on_cpu = self.draw_batch(warmup)
        picked = picked_on_cpu.to(data.images.device)
        frames, views = data.image_frame[picked], data.image_view[picked]
        codes = model.frame_codes(frames)
        view_codes = data.view_codes[views]
        # Colours first: rendered appearance (lighting, drift) must not be explained by moving geometry.
        gaussians, deformation = model.gaussians(codes, view_codes, frames=frames, deform=not warmup)
        rgb, alpha = self.render(gaussians, self.image_view_cpu[picked_on_cpu])
        means = gaussians.means
        target_rgb, target_alpha = self.targets(data.images[picked], views)

        terms: dict[str, Tensor] = {}
        edge_weight, ssim_sigma = p.gradient_weight_at(step), p.ssim_sigma_at(step)
        terms["photo"] = losses.photometric(rgb, target_rgb, p.ssim_weight, edge_weight, ssim_sigma)
        if data.has_mask:
            terms["mask"] = p.mask_weight * (alpha - target_alpha).abs().mean()
        change_weight = p.change_weight_at(step)
        if deformation is not None and change_weight > 0:
            # The change since frame 0 of the same video: whatever the splats get wrong in every frame
            # alike (a blurred silhouette, baked shading, colour drift) cancels, and what is left is the
            # expression, which the geometry must then explain.
            rgb_error, alpha_error = self.neutral_error(self.neutral_of[picked_on_cpu], step)
            terms["change"] = change_weight * losses.photometric(
                rgb, target_rgb + rgb_error, p.ssim_weight, edge_weight, ssim_sigma
            )
            if data.has_mask:
                change_mask = (alpha - target_alpha - alpha_error).abs().mean()
                terms["change"] = terms["change"] + change_weight * p.mask_weight * change_mask
        terms["refine"] = p.refine_weight * ((gaussians.colors - gaussians.shaded) ** 2).mean()
        if deformation is not None:
            terms.update(self.geometry_terms(means, deformation, codes, frames))

        total = sum(terms.values())
        assert isinstance(total, Tensor)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if step < p.field_smoothing_until * p.steps:
            for field in (model.sequence_offsets, model.sequence_rotations):
                if field.grad is not None:
                    field.grad = smooth_over_controls(field.grad, model.control_neighbors, p.field_smoothing_passes)
        if step < int(p.albedo_hold * p.steps):
            # The base colours stay the asset's own (FitPreset.albedo_hold); without a gradient Adam
            # leaves them and their moments untouched.
            model.base_colors.grad = None
        self.optimizer.step()
        # One device-to-host copy for all the numbers, after the whole step is queued: on a GPU each
        # read stalls the host until the device catches up. A non-finite loss is caught here, after the
        # update, which is safe because `run` then puts the last good state back.
        names = [*terms, "total", "psnr"]
        values = torch.stack([*terms.values(), total, losses.psnr(rgb.detach(), target_rgb)]).detach().tolist()
        if not math.isfinite(values[-2]):
            raise NonFiniteLoss(f"The fit diverged at step {step} (the loss is not a number).")
        return dict(zip(names, values, strict=True))

    def draw_batch(self, warmup: bool) -> Tensor:
        """The images of one step: [batch] indices into `data.images`, on the CPU.

        During the colour warm-up, frame-0 images drawn at random. After it, the images are dealt in
        rounds (`_deal_round`): each sequence's images in a fresh random order, the sequences taking
        turns, so that every step sees as many sequences as it can and every image is seen equally
        often. Each sequence's offset and rotation fields then get a gradient from its own images at
        nearly every step; drawn independently, batches of 4 left each of 3 sequences out of a fifth
        of the steps. ICT preview 76.4 -> 77.9%, seed 1 74.1 -> 74.4% (docs/benchmarks.md).
        """
        batch = self.preset.batch
        if warmup:
            pool = self.neutral_images
            return pool[torch.randint(len(pool), (batch,), generator=self.generator)]
        while len(self._dealt) < batch:
            self._dealt = torch.cat([self._dealt, self._deal_round()])
        picked, self._dealt = self._dealt[:batch], self._dealt[batch:]
        return picked

    def _deal_round(self) -> Tensor:
        """Every image once: [I] indices, each sequence's in a random order, interleaved round-robin."""
        shuffled = []
        for index in range(len(self.data.sequences)):
            mine = torch.nonzero(self.image_sequence == index).squeeze(1)
            shuffled.append(mine[torch.randperm(len(mine), generator=self.generator)])
        # Row r of the padded table holds each sequence's r-th image; reading it row by row interleaves.
        table = torch.nn.utils.rnn.pad_sequence(shuffled, batch_first=True, padding_value=-1)
        dealt = table.t().reshape(-1)
        return dealt[dealt >= 0]

    @torch.no_grad()
    def neutral_error(self, neutral: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """Render minus video at frame 0 for the images `neutral` [B]: [B, H, W, 3] and [B, H, W, 1].

        The error changes slowly (appearance and frame 0's deformation settle early), so each is kept
        and rendered again only every `NEUTRAL_REFRESH` steps instead of at every step.
        """
        data, model = self.data, self.model
        wanted = [int(i) for i in neutral.tolist()]
        stale = sorted({i for i in wanted if step - self._neutral_step.get(i, -NEUTRAL_REFRESH) >= NEUTRAL_REFRESH})
        if stale:
            index = torch.tensor(stale, device=data.images.device)
            frames, views = data.image_frame[index], data.image_view[index]
            gaussians, _ = model.gaussians(model.frame_codes(frames), data.view_codes[views], frames=frames)
            rgb, alpha = self.render(gaussians, self.image_view_cpu[stale])
            target_rgb, target_alpha = self.targets(data.images[index], views)
            for row, image in enumerate(stale):
                self._neutral_errors[image] = (rgb[row] - target_rgb[row], alpha[row] - target_alpha[row])
                self._neutral_step[image] = step
        return (
            torch.stack([self._neutral_errors[i][0] for i in wanted]),
            torch.stack([self._neutral_errors[i][1] for i in wanted]),
        )

    def geometry_terms(
        self, means: Tensor, deformation: ControlDeformation, codes: Tensor, frames: Tensor
    ) -> dict[str, Tensor]:
        p, data, model = self.preset, self.data, self.model
        spacing = self.control_spacing
        spacing2 = spacing**2
        v = model.vertex_count
        terms: dict[str, Tensor] = {}
        terms["laplacian"] = (
            p.laplacian_weight
            * losses.laplacian_loss(self.laplacian, means[:, :v], self.static_delta)
            / (spacing2 * 1e-2)
        )
        terms["arap"] = p.arap_weight * losses.arap_loss(
            model.controls, model.control_neighbors, deformation.rotation, deformation.translation, spacing
        )
        # The view-dependent part: the same frame seen from the canonical view should deform alike, the
        # controls and the global head transform both (registration keeps only the canonical view's).
        canonical = model.control_deformation(codes, data.canonical_view.expand(len(codes), -1), frames)
        terms["view"] = p.view_weight * (
            losses.transform_gap(
                canonical.rotation, canonical.translation, deformation.rotation, deformation.translation, spacing
            )
            + losses.transform_gap(
                canonical.global_rotation,
                canonical.global_translation,
                deformation.global_rotation,
                deformation.global_translation,
                spacing,
            )
        )
        first_frames = torch.tensor([s.first_frame for s in data.sequences], device=codes.device)
        neutral = model.control_deformation(
            model.frame_codes(first_frames), data.canonical_view.expand(len(first_frames), -1), first_frames
        )
        terms["frame0"] = p.frame0_weight * (
            losses.identity_loss(
                neutral.rotation, neutral.translation, neutral.global_rotation, neutral.global_translation
            )
            / spacing2
            + (neutral.log_scale**2).mean()
        )
        # Expressions move skin; they barely change its size.
        terms["scale"] = p.scale_weight * (deformation.log_scale**2).mean()
        terms["temporal"] = p.temporal_weight * self.code_smoothness()
        eye = torch.eye(3, dtype=means.dtype, device=means.device)
        terms["pose"] = p.pose_weight * losses.transform_gap(
            deformation.global_rotation, deformation.global_translation, eye, eye.new_zeros(3), spacing
        )
        return terms

    def code_smoothness(self) -> Tensor:
        """Temporal smoothness: squared differences of consecutive frames' codes and control offsets."""
        model = self.model
        codes = model.frame_codes(torch.arange(model.frame_count, device=model.frame_ramps.device))
        total = codes.new_zeros(())
        for span in self.data.sequences:
            window = slice(span.first_frame, span.first_frame + span.frame_count)
            block = codes[window]
            offsets = model.frame_offsets[window]
            total = total + ((block[1:] - block[:-1]) ** 2).sum(-1).mean()
            total = total + ((offsets[1:] - offsets[:-1]) ** 2).sum(-1).mean() / self.control_spacing**2
        return total / max(len(self.data.sequences), 1)

    # -- the loop ---------------------------------------------------------------------------------

    def run(
        self,
        start_step: int = 0,
        step_callback: Callable[[float, str], None] | None = None,
        checkpoint: Callable[[dict[str, Tensor], int], None] | None = None,
    ) -> FitResult:
        p = self.preset
        started = time.monotonic()
        good_state = copy.deepcopy(self.model.state_dict())
        good_step = start_step
        smoothed: dict[str, float] = {}
        for step in range(start_step, p.steps):
            self._set_learning_rate(step)
            try:
                values = self.step(step)
            except NonFiniteLoss as exc:
                self.model.load_state_dict(good_state)
                if checkpoint is not None:
                    checkpoint(good_state, good_step)
                raise NonFiniteLoss(f"{exc} The last good checkpoint (step {good_step}) was kept.") from None
            smoothed = {k: 0.9 * smoothed.get(k, v) + 0.1 * v for k, v in values.items()}
            done = step + 1
            if done % p.checkpoint_every == 0 or done == p.steps:
                good_state = copy.deepcopy(self.model.state_dict())
                good_step = done
                if checkpoint is not None:
                    checkpoint(good_state, done)
            if step_callback is not None:
                step_callback(done / p.steps, f"step {done}/{p.steps}, PSNR {smoothed['psnr']:.1f} dB")
        self.last_losses = smoothed
        return FitResult(
            metrics=dict(smoothed),
            per_sequence_psnr=self.evaluate_psnr(),
            steps_done=p.steps,
            seconds=time.monotonic() - started,
        )

    def _set_learning_rate(self, step: int) -> None:
        factor = self.preset.learning_rate_factor(step)
        # A short warm-up keeps the first large gradients tame.
        warmup = min(1.0, (step + 1) / 20)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor * warmup

    @torch.no_grad()
    def evaluate_psnr(self, batch: int = 8) -> dict[str, float]:
        """PSNR of every image, as rendered at its own view, averaged per sequence (dB)."""
        data, model = self.data, self.model
        squared: dict[str, list[float]] = {s.name: [] for s in data.sequences}
        sequence_of_frame = torch.empty(data.frame_count, dtype=torch.long)
        for index, span in enumerate(data.sequences):
            sequence_of_frame[span.first_frame : span.first_frame + span.frame_count] = index
        for start in range(0, len(data.images), batch):
            picked = torch.arange(start, min(start + batch, len(data.images)), device=data.images.device)
            frames, views = data.image_frame[picked], data.image_view[picked]
            gaussians, _ = model.gaussians(model.frame_codes(frames), data.view_codes[views], frames=frames)
            rgb, _ = self.render(gaussians, self.image_view_cpu[start : start + len(picked)])
            target, _ = self.targets(data.images[picked], views)
            mse = ((rgb - target) ** 2).mean(dim=(1, 2, 3))
            for frame, value in zip(frames.tolist(), mse.tolist(), strict=True):
                squared[data.sequences[int(sequence_of_frame[frame])].name].append(value)
        return {name: float(-10 * np.log10(max(float(np.mean(v)), 1e-10))) for name, v in squared.items() if v}

    @torch.no_grad()
    def registered_vertices(self) -> dict[str, Tensor]:
        """Per sequence [T, V, 3] registered vertices (normalised frame); see `register_sequence`."""
        return {
            span.name: register_sequence(
                self.model,
                torch.arange(span.first_frame, span.first_frame + span.frame_count),
                self.data.canonical_view,
            )
            for span in self.data.sequences
        }


def smooth_over_controls(values: Tensor, neighbors: Tensor, passes: int) -> Tensor:
    """Per-control values [..., C, D] averaged with their surface neighbours `neighbors` [C, J],
    `passes` times, each pass half the value and half its neighbours' mean: a low-pass over the
    control graph (FitPreset.field_smoothing_until)."""
    for _ in range(passes):
        values = 0.5 * values + 0.5 * values[..., neighbors, :].mean(-2)
    return values


@torch.no_grad()
def register_sequence(model: DeformableGaussians, frames: Tensor, canonical_view: Tensor) -> Tensor:
    """The static mesh moved to each frame of one sequence: [T] frame indices -> [T, V, 3].

    The deformation is evaluated at the canonical view code, and frame 0's own deformation is
    subtracted: frame 0 shows the neutral face, which *is* the static mesh, so whatever deformation
    the model needs there is model error (splat blur at the silhouette, lighting) that every frame
    shares, not expression.
    """
    deformed = model.vertices(model.frame_codes(frames), canonical_view.expand(len(frames), -1), frames)
    return model.static_means[: model.vertex_count][None] + (deformed - deformed[:1])
