"""Sizes and schedules of the fit per preset. Preview is tuned for 2 CPU cores; standard and high for a GPU."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FitPreset:
    surface_samples: int  # Gaussians added on the triangles besides the vertices
    control_count: int
    steps: int
    batch: int  # (frame, view) images per step
    hidden: int  # deformation MLP width
    layers: int
    code_dim: int
    lr_network: float
    lr_codes: float
    lr_colors: float
    lr_offsets: float = 1e-3  # control offset fields, normalised units
    # Gaussians' static offsets along their normals (`DeformableGaussians.base_depths`), normalised
    # units: 1e-4 / 3e-4 / 1e-3 gave 76.3 / 76.4 / 76.2% on ICT preview (75.5% without them).
    lr_depths: float = 3e-4
    lr_rotations: float = 4e-3  # control rotation fields, radians (3x that: 74.04% against 73.99% on ICT)
    # The sequences' ramps (their time courses, which scale the offset and rotation fields) learn
    # slower than the other codes. At the codes' rate they shrank to about 0.28 at the last frame in
    # every fit, so that Adam's step on the motion itself was a quarter of `lr_offsets`, and a capture
    # with a wide-open jaw and profile views settled with the mouth closed: 62.8% of the motion,
    # against 82.5% at this rate (seed 0's capture 73.99% -> 74.34%; docs/benchmarks.md).
    lr_ramps: float = 2e-3
    # Free per-frame control offsets besides the per-sequence field. Each frame's offsets see few
    # images and mostly learn noise: on ICT (preview's budget) the mean face error rises by 70% on
    # 4 views at 128 px and triples on 8 views at 256 px, where motion recovered falls from 77.8% to
    # 69.5% (docs/benchmarks.md). Standard's budget gives each frame about as many images as
    # preview's does, so no preset uses them.
    frame_offsets: bool = False
    # SSIM weighs 0.6, not 0.2: the fit leans more on local structure than on flat colour. On ICT
    # preview it adds 0.3 points alone; with refine_weight and albedo_hold below, 1.9 points on each
    # of two captures (docs/benchmarks.md).
    ssim_weight: float = 0.6
    # L1 on the images' differences of neighbouring pixels (losses.gradient_l1), in both photometric
    # terms: motion along the skin shows only where texture and edges move. ICT preview 69.5 / 70.8 /
    # 71.3 / 71.3% at 0 / 1 / 3 / 10 (seed 1: 67.8% -> 69.5% at 3; docs/benchmarks.md).
    gradient_weight: float = 3.0
    # The edge term comes in linearly from the end of the colour warm-up, reaching its full weight
    # at this fraction of the steps (FitPreset.gradient_weight_at). An edge pulls only within a pixel
    # or two of where it lies; at full weight from the start it held back the motions that must
    # first travel several pixels: the troll's jaw 58% -> 52% with the term, 53.5 / 57.4% with it
    # ramped in by half / all of the steps, ICT unchanged (71.3 / 71.3 / 71.4%; docs/benchmarks.md).
    gradient_ramp: float = 1.0
    # SSIM's Gaussian window (standard deviation in pixels) over equal parts of the steps after the
    # colour warm-up (FitPreset.ssim_sigma_at): wide while the large motions travel, narrow once the
    # fit is sharpening. At preview's 128 px: ICT 71.4 -> 71.75% (seed 1 69.2 -> 69.3%) against the
    # classic 1.5 px throughout, and the troll's jaw kept (57.2% against 57.4%), where 0.75 px
    # throughout cost it 5 points (docs/benchmarks.md). Standard and high keep the classic window:
    # at 512 px it is already a quarter as wide against the face, and they are not yet measured.
    ssim_sigmas: tuple[float, ...] = (1.5, 1.0, 0.75)
    mask_weight: float = 0.1
    laplacian_weight: float = 0.05
    arap_weight: float = 0.2
    frame0_weight: float = 0.001  # registration subtracts frame 0's deformation (trainer.register_sequence)
    temporal_weight: float = 0.05
    view_weight: float = 0.1
    # The colour-refine MLP is for what changes per view and frame (a generated video's drift). At
    # 0.01 it had learned a constant darkening of every Gaussian (RMS 0.1 of the colour range) that
    # the shading and base colours should carry; at 1 a few percent of drift still pays for itself.
    refine_weight: float = 1.0
    scale_weight: float = 0.1
    pose_weight: float = 0.1  # head motion is allowed, but must pay for itself in the images
    checkpoint_every: int = 100
    # Every learning rate decays along a cosine to `lr_cosine_end` of itself, and over the last
    # `lr_final_part` of the steps falls on to `lr_final` (FitPreset.learning_rate_factor). Adam moves
    # each parameter by about its learning rate per step whatever the gradient's size, so the last rate
    # is the jitter left in the fields: on ICT preview, skin that never moves was registered 0.08-0.22
    # thousandths of the diagonal off at a tenth, 0.08-0.20 now, and the motion recovered went 78.6 ->
    # 79.3%, 76.3 -> 76.7% and 83.9 -> 84.1% (two 4-view captures, the 12-view jaw capture). The
    # cosine keeps its tenth so that wide motions travel as far as before: the whole cosine ending at
    # a hundredth cut the troll's acts by 1-3 points (docs/benchmarks.md).
    lr_cosine_end: float = 0.1
    lr_final: float = 0.01
    lr_final_part: float = 0.1
    # Photometric term on the change since frame 0 (trainer.step); see docs/design-notes.md. With
    # normals that follow the moved surface, the plain term already sees shading change as motion,
    # and the change term's weight holds motion back: ICT preview 64.3 / 65.3 / 65.7 / 65.6% at
    # 1 / 0.5 / 0.25 / 0 (seed 1: 63.6 / 64.5 / 64.7%); 8 views at 256 px 77.0% at 1 against 77.8%.
    # A little of it stays for real videos, whose per-view errors it cancels.
    change_weight: float = 0.25
    # Like the edge term, the change term comes in linearly from the end of the colour warm-up,
    # reaching `change_weight` at this fraction of the steps (FitPreset.change_weight_at): it holds
    # motion back (above), so it weighs in once the large motions have travelled. ICT preview
    # 71.75 -> 72.05% (seed 1 69.3 -> 69.6%), troll within half a point per act (docs/benchmarks.md).
    change_ramp: float = 1.0
    color_warmup: float = 0.15  # fraction of the steps that fit colours on neutral frames only
    # Fraction of the steps during which the base colours stay the asset's own (the first part of
    # the colour warm-up): the shading must then explain the video's light from the asset's colours,
    # so it learns a light that changes the image as the surface turns, instead of the base colours
    # baking the neutral frame's shading in (Trainer.step).
    albedo_hold: float = 0.1
    # For this fraction of the steps each sequence's offset and rotation fields take their gradient
    # smoothed over the controls' surface neighbours, `field_smoothing_passes` times
    # (trainer.smooth_over_controls): a wide motion (an opening jaw) then travels as one piece while
    # the fit is young, instead of each control crawling on its own gradient. Adam's step is then the
    # same, its direction coherent. With 600 controls and 3 passes the 12-view jaw capture, a lottery
    # by the fit's seed before (68.6 / 84.0%), gave 84.4 / 85.7% (docs/benchmarks.md). A pass reaches
    # one control spacing, so the smoothed patch of skin has an area of about passes / control_count
    # of the head's: the presets keep passes near 0.006 x control_count (3 passes did not hold the
    # jaw with 1,000 controls, 69.2%; 6 did, 83.9%).
    field_smoothing_until: float = 0.4
    field_smoothing_passes: int = 6

    def learning_rate_factor(self, step: int) -> float:
        """Every learning rate at `step`, as a fraction of the preset's: a cosine from 1 to
        `lr_cosine_end`, multiplied over the last `lr_final_part` of the steps by a line falling to
        `lr_final / lr_cosine_end` at the last step."""
        progress = step / max(self.steps - 1, 1)
        end = self.lr_cosine_end
        factor = end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))
        tail_start = 1.0 - self.lr_final_part
        if progress > tail_start:
            through_tail = (progress - tail_start) / self.lr_final_part
            factor *= 1.0 - (1.0 - self.lr_final / end) * through_tail
        return factor

    def gradient_weight_at(self, step: int) -> float:
        """The edge term's weight at `step`: 0 through the colour warm-up, then rising linearly to
        `gradient_weight` at `gradient_ramp` of the steps."""
        return self.gradient_weight * self._ramp(step, self.gradient_ramp)

    def change_weight_at(self, step: int) -> float:
        """The change term's weight at `step`: 0 through the colour warm-up, then rising linearly to
        `change_weight` at `change_ramp` of the steps."""
        return self.change_weight * self._ramp(step, self.change_ramp)

    def _ramp(self, step: int, end_fraction: float) -> float:
        """0 until the colour warm-up ends, 1 from `end_fraction` of the steps on, linear between."""
        start = self._warmup_end
        end = max(end_fraction * self.steps, start + 1.0)
        return min(1.0, max(0.0, (step - start) / (end - start)))

    def ssim_sigma_at(self, step: int) -> float:
        """SSIM's window standard deviation (px) at `step`: `ssim_sigmas[0]` through the colour warm-up,
        then each of `ssim_sigmas` for an equal part of the remaining steps."""
        start = self._warmup_end
        part = max(self.steps - start, 1.0) / len(self.ssim_sigmas)
        index = int(max(0.0, step - start) // part)
        return self.ssim_sigmas[min(index, len(self.ssim_sigmas) - 1)]

    @property
    def _warmup_end(self) -> float:
        """Where the schedules start: the end of the colour warm-up, in (fractional) steps."""
        return self.color_warmup * self.steps

    def to_dict(self) -> dict[str, float | tuple[float, ...]]:
        return asdict(self)


PRESETS: dict[str, FitPreset] = {
    "preview": FitPreset(
        surface_samples=6000,
        # 1,000 controls, not 600: finer motion (a squint and dimple in depth, ICT seq02, 65.5 ->
        # 69.7%), which the smoothed field gradients let the fit afford without losing wide motions.
        # With 600, ICT 77.5 / 74.5% (seed 0 / seed 1 captures) and the 12-view jaw capture 84.4 /
        # 85.7% (the fit's seeds 0 / 1); with 1,000, 78.6 / 76.3% and 83.9 / 82.9% (docs/benchmarks.md).
        control_count=1000,
        steps=500,
        batch=4,
        hidden=96,
        layers=3,
        code_dim=24,
        lr_network=5e-3,
        lr_codes=2e-2,
        lr_colors=1e-2,
        # Preview's motion is carried by the per-sequence offset fields, and Adam moves a parameter
        # about one learning rate per step: at 1e-3 a 500-step fit cannot reach an opening jaw's
        # travel (troll jaw 17% of the motion; 49% at 4e-3, 42% at 8e-3; ICT 60.4 / 61.5 / 60.7%).
        lr_offsets=4e-3,
    ),
    "standard": FitPreset(
        surface_samples=30000,
        control_count=2000,
        field_smoothing_passes=12,
        steps=4000,
        batch=16,
        hidden=128,
        layers=3,
        code_dim=32,
        lr_network=2e-3,
        lr_codes=1e-2,
        lr_colors=5e-3,
        ssim_sigmas=(1.5,),
    ),
    "high": FitPreset(
        surface_samples=60000,
        control_count=3000,
        field_smoothing_passes=18,
        steps=10000,
        batch=16,
        hidden=192,
        layers=4,
        code_dim=48,
        lr_network=2e-3,
        lr_codes=1e-2,
        lr_colors=5e-3,
        ssim_sigmas=(1.5,),
    ),
}
