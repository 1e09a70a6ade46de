"""Region-aware expression deformation of a static head (pure numpy: arrays in, arrays out).

`deform(vertices, regions, expression, weight)` returns the head acting `expression` at `weight`
(0 neutral .. 1 peak). Every act is a sum of displacements computed from the static vertices, each
scaled per vertex by a region weight, so neighbouring regions blend smoothly:

* rotations keep lengths where they matter: the jaw turns about its hinge; eyelids turn about the eye
  centre, so they slide over the eyeball on their own sphere and cannot cut into it; eyeballs turn in
  place; ears fold back about their base;
* lip corners, lips, brows, cheeks and nose move by translations with soft falloff.

Lengths scale with the face (`regions.scalars["scale"]`), so a tiny frog and a long-eared rabbit act
alike. Split acts (eyeBlink, mouthSmile, ...) move both sides, as the library's prompts ask. Names
outside the library act by their region (see `_CUSTOM_BY_REGION`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..expressions import Expression
from .regions import FaceRegions

SIDES = (("L", 1.0), ("R", -1.0))


class _Face:
    """The static head with helpers that turn region weights into displacements [V, 3]."""

    def __init__(self, vertices: np.ndarray, regions: FaceRegions) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.regions = regions
        self.scale = float(regions.scalars.get("scale", 0.2))
        self.count = len(self.vertices)

    def w(self, name: str) -> np.ndarray:
        return self.regions.weight(name)

    def point(self, name: str) -> np.ndarray:
        return np.asarray(self.regions.landmarks[name], dtype=np.float64)

    def zero(self) -> np.ndarray:
        return np.zeros((self.count, 3))

    def rotate(
        self, pivot: np.ndarray, axis: np.ndarray, angles: np.ndarray, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Displacement of rotating each vertex by its own angle [V] (radians) about `axis` through
        `pivot`, for vertices where `mask` holds (all if None)."""
        axis = np.asarray(axis, dtype=np.float64)
        axis = axis / np.linalg.norm(axis)
        relative = self.vertices - pivot
        cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
        along = (relative @ axis)[:, None] * axis
        # Rodrigues' formula, written as a displacement so a zero angle gives exactly zero.
        moved = relative * (cos - 1.0) + np.cross(axis, relative) * sin + along * (1.0 - cos)
        if mask is not None:
            moved[~mask] = 0.0
        return moved

    def translate(self, weights: np.ndarray, vector: np.ndarray) -> np.ndarray:
        return weights[:, None] * np.asarray(vector, dtype=np.float64)[None, :] * self.scale

    # -- building blocks, each at amount `a` (0..1, negative reverses where that makes sense) ----

    def jaw_open(self, a: float) -> np.ndarray:
        angle = a * self.regions.scalars.get("jaw_open_angle", 0.3)
        return self.rotate(self.point("jaw_hinge"), self.point("jaw_axis"), angle * self.w("jaw"))

    def jaw_shift(self, vector: tuple[float, float, float], a: float) -> np.ndarray:
        return self.translate(self.w("jaw"), np.array(vector) * a)

    def eye_frame(self, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        centre = self.point(f"eye_center_{side}")
        forward = self.point(f"eye_forward_{side}")
        up = np.array([0.0, 1.0, 0.0]) - forward * forward[1]
        up /= np.linalg.norm(up)
        return centre, np.cross(up, forward), up, forward

    def lids(self, side: str, upper: float, lower: float) -> np.ndarray:
        """Upper lid down by `upper` and lower lid up by `lower` (1: they meet and close the eye;
        negative: they open wider)."""
        centre, x_axis, _, forward = self.eye_frame(side)
        relative = self.vertices - centre
        horizontal = np.arctan2(relative @ x_axis, relative @ forward)
        eye_open = self.regions.scalars.get("eye_open", 0.5)
        eye_wide = self.regions.scalars.get("eye_wide", 0.9)
        # The opening's upper rim at each horizontal angle; the lids meet a third of the way down.
        rim = eye_open * np.sqrt(np.clip(1.0 - (horizontal / eye_wide) ** 2, 0.0, 1.0))
        meet = -0.3 * rim
        angles = upper * (rim - meet) * self.w(f"lid_upper_{side}") - lower * (rim + meet) * self.w(f"lid_lower_{side}")
        # Rotation about the eye's +x turns forward points downward.
        return self.rotate(centre, x_axis, angles)

    def look(self, side: str, yaw: float, pitch: float) -> np.ndarray:
        """Turn an eyeball: `yaw` toward the character's left (+X), `pitch` upward, radians."""
        centre, x_axis, up, _ = self.eye_frame(side)
        ball = self.w(f"eyeball_{side}")
        mask = ball > 0.5
        turn = self.rotate(centre, up, np.full(self.count, yaw), mask)
        tilt = self.rotate(centre, x_axis, np.full(self.count, -pitch), mask)
        # Upper lids follow the gaze up and down a little, as real ones do.
        follow = self.lids(side, -pitch * 0.8, pitch * 0.5) if pitch != 0.0 else self.zero()
        return turn + tilt + follow

    def corners(self, side: str, vector: tuple[float, float, float], a: float) -> np.ndarray:
        sign = 1.0 if side == "L" else -1.0
        x, y, z = vector
        return self.translate(
            self.w(f"mouth_corner_{side}") * (1.0 - 0.7 * self.w("mouth_inner")), np.array([sign * x, y, z]) * a
        )

    def lips(self, which: str, vector: tuple[float, float, float], a: float) -> np.ndarray:
        return self.translate(self.w(f"lip_{which}"), np.array(vector) * a)

    def pucker(self, a: float, open_amount: float = 0.0) -> np.ndarray:
        lips = self.w("lip_upper") + self.w("lip_lower")
        centre = self.point("mouth_center")
        inward = np.zeros((self.count, 3))
        inward[:, 0] = -(self.vertices[:, 0] - centre[0]) * 0.45 * a * lips
        forward = self.translate(lips, np.array([0.0, 0.0, 0.25 * a]))
        flare = self.lips("upper", (0.0, 0.12, 0.0), open_amount) + self.lips("lower", (0.0, -0.12, 0.0), open_amount)
        return inward + forward + flare

    def brows(self, side: str, vector: tuple[float, float, float], a: float, inner: float = 0.5) -> np.ndarray:
        """Move a brow; `inner` 1 moves only its inner end, 0 only its outer end, 0.5 all of it."""
        weights = self.w(f"brow_{side}")
        centre = self.point(f"brow_center_{side}")
        eye_radius = self.regions.scalars.get("eye_radius", 0.05)
        # +1 at the inner end (toward the nose), -1 at the outer end.
        towards_middle = np.clip(
            -(self.vertices[:, 0] - centre[0]) * np.sign(centre[0]) / (1.5 * eye_radius), -1.0, 1.0
        )
        profile = np.clip(1.0 - abs(inner - 0.5) * 2.0 + (inner - 0.5) * 2.0 * towards_middle, 0.0, 1.0)
        sign = 1.0 if side == "L" else -1.0
        x, y, z = vector
        return self.translate(weights * profile, np.array([sign * x, y, z]) * a)

    def cheeks(self, side: str, vector: tuple[float, float, float], a: float) -> np.ndarray:
        sign = 1.0 if side == "L" else -1.0
        x, y, z = vector
        return self.translate(self.w(f"cheek_{side}"), np.array([sign * x, y, z]) * a)

    def nose(self, vector: tuple[float, float, float], a: float, side: str | None = None) -> np.ndarray:
        weights = self.w("nose")
        if side is not None:
            sign = 1.0 if side == "L" else -1.0
            offset = (self.vertices[:, 0] - self.point("nose_tip")[0]) * sign
            weights = weights * np.clip(0.5 + offset / (0.5 * self.scale), 0.0, 1.0)
        return self.translate(weights, np.array(vector) * a)

    def ears_back(self, side: str, a: float) -> np.ndarray:
        base, tip = self.point(f"ear_base_{side}"), self.point(f"ear_tip_{side}")
        weights = self.w(f"ear_{side}")
        if not (weights > 0).any():
            return self.zero()
        direction = (tip - base) / max(np.linalg.norm(tip - base), 1e-9)
        axis = np.cross(direction, np.array([0.0, 0.0, -1.0]))
        if np.linalg.norm(axis) < 1e-6:
            axis = np.array([1.0, 0.0, 0.0])
        return self.rotate(base, axis, 0.8 * a * weights)

    def tongue_out(self, a: float) -> np.ndarray:
        tongue = self.w("tongue")
        length = np.linalg.norm(self.point("tongue_tip") - self.point("mouth_center")) + 0.3 * self.scale
        return self.jaw_open(0.55 * a) + tongue[:, None] * np.array([0.0, -0.1 * self.scale, length]) * a


def _both(action: Callable[[str], np.ndarray]) -> np.ndarray:
    return action("L") + action("R")


# Each act: (face, amount) -> displacement [V, 3]. Vectors are in units of the face scale.
_ACTS: dict[str, Callable[[_Face, float], np.ndarray]] = {
    "jawOpen": lambda f, a: f.jaw_open(a),
    "mouthSmile": lambda f, a: _both(
        lambda s: f.corners(s, (0.18, 0.22, -0.10), a) + f.cheeks(s, (0.0, 0.10, 0.04), a)
    ),
    "eyeBlink": lambda f, a: _both(lambda s: f.lids(s, a, a)),
    "browInnerUp": lambda f, a: _both(lambda s: f.brows(s, (0.0, 0.22, 0.0), a, inner=1.0)),
    "mouthPucker": lambda f, a: f.pucker(a),
    "browDown": lambda f, a: _both(lambda s: f.brows(s, (-0.05, -0.16, 0.03), a, inner=0.7)),
    "mouthFrown": lambda f, a: _both(lambda s: f.corners(s, (0.0, -0.20, -0.02), a)),
    "jawLeft": lambda f, a: f.jaw_shift((0.22, 0.0, 0.0), a),
    "jawRight": lambda f, a: f.jaw_shift((-0.22, 0.0, 0.0), a),
    "jawForward": lambda f, a: f.jaw_shift((0.0, 0.0, 0.2), a),
    "mouthFunnel": lambda f, a: f.pucker(0.7 * a, open_amount=a) + f.jaw_open(0.25 * a),
    "mouthClose": lambda f, a: (
        f.jaw_open(0.4 * a)
        - f.jaw_open(0.4 * a) * f.w("lip_lower")[:, None] * 0.9
        + f.lips("upper", (0.0, -0.06, 0.0), a)
    ),
    "mouthPress": lambda f, a: (
        _both(lambda s: f.corners(s, (0.03, 0.0, -0.02), a))
        + f.lips("upper", (0.0, -0.03, -0.03), a)
        + f.lips("lower", (0.0, 0.03, -0.03), a)
    ),
    "mouthRollLower": lambda f, a: f.lips("lower", (0.0, 0.04, -0.12), a),
    "mouthRollUpper": lambda f, a: f.lips("upper", (0.0, -0.04, -0.12), a),
    "mouthShrugLower": lambda f, a: f.lips("lower", (0.0, 0.08, 0.08), a),
    "mouthShrugUpper": lambda f, a: f.lips("upper", (0.0, 0.08, 0.04), a),
    "mouthStretch": lambda f, a: _both(lambda s: f.corners(s, (0.2, -0.1, -0.04), a)) + f.jaw_open(0.2 * a),
    "mouthDimple": lambda f, a: _both(lambda s: f.corners(s, (0.1, 0.02, -0.12), a)),
    "mouthLeft": lambda f, a: f.translate(f.w("lip_upper") + f.w("lip_lower"), np.array([0.18 * a, 0.0, 0.0])),
    "mouthRight": lambda f, a: f.translate(f.w("lip_upper") + f.w("lip_lower"), np.array([-0.18 * a, 0.0, 0.0])),
    "mouthUpperUp": lambda f, a: f.lips("upper", (0.0, 0.14, 0.0), a),
    "mouthLowerDown": lambda f, a: f.lips("lower", (0.0, -0.14, 0.0), a),
    "eyeSquint": lambda f, a: _both(lambda s: f.lids(s, 0.15 * a, 0.55 * a) + f.cheeks(s, (0.0, 0.06, 0.0), a)),
    "eyeWide": lambda f, a: _both(lambda s: f.lids(s, -0.5 * a, -0.2 * a)),
    "eyeLookUp": lambda f, a: _both(lambda s: f.look(s, 0.0, 0.35 * a)),
    "eyeLookDown": lambda f, a: _both(lambda s: f.look(s, 0.0, -0.35 * a)),
    "eyeLookLeft": lambda f, a: _both(lambda s: f.look(s, 0.45 * a, 0.0)),
    "eyeLookRight": lambda f, a: _both(lambda s: f.look(s, -0.45 * a, 0.0)),
    "browOuterUp": lambda f, a: _both(lambda s: f.brows(s, (0.0, 0.2, 0.0), a, inner=0.0)),
    "cheekPuff": lambda f, a: _both(lambda s: f.cheeks(s, (0.16, -0.02, 0.08), a)),
    "cheekSquint": lambda f, a: _both(lambda s: f.cheeks(s, (0.0, 0.14, 0.02), a) + f.lids(s, 0.0, 0.3 * a)),
    "noseSneer": lambda f, a: _both(
        lambda s: f.nose((0.0, 0.12, 0.0), a, side=s) + f.brows(s, (0.0, -0.06, 0.0), a, inner=0.8)
    ),
    "tongueOut": lambda f, a: f.tongue_out(a),
    "earsBack": lambda f, a: _both(lambda s: f.ears_back(s, a)),
    "snarl": lambda f, a: (
        f.lips("upper", (0.0, 0.14, 0.02), a)
        + f.nose((0.0, 0.1, -0.02), a)
        + f.jaw_open(0.3 * a)
        + _both(lambda s: f.brows(s, (0.0, -0.1, 0.0), a, inner=0.8))
    ),
}

# A custom act moves its region in a recognisable way, so a fit still has motion to learn.
_CUSTOM_BY_REGION = {
    "mouth": lambda f, a: f.jaw_open(0.5 * a) + _ACTS["mouthSmile"](f, 0.4 * a),
    "eyes": _ACTS["eyeSquint"],
    "brows": lambda f, a: _ACTS["browInnerUp"](f, a) + _ACTS["browOuterUp"](f, a),
    "cheeks": _ACTS["cheekPuff"],
    "nose": _ACTS["noseSneer"],
    "other": lambda f, a: _ACTS["earsBack"](f, a) + _ACTS["browOuterUp"](f, 0.5 * a),
}


def supported(expression: Expression) -> bool:
    """Whether `expression` has its own act here (others act by their region)."""
    return expression.name in _ACTS


def deform(vertices: np.ndarray, regions: FaceRegions, expression: Expression, weight: float) -> np.ndarray:
    """The head acting `expression` at `weight`.

    Args:
        vertices: [V, 3] static vertices (normalised frame), the ones `regions` was made for.
        regions: the head's `FaceRegions`.
        expression: a library entry or a custom `Expression`.
        weight: 0 (neutral: the input, exactly) .. 1 (peak); values outside are clamped.

    Returns:
        [V, 3] float32 deformed vertices.
    """
    vertices = np.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3], got {vertices.shape}")
    if regions.vertex_count != len(vertices):
        raise ValueError(f"regions are for {regions.vertex_count} vertices, the mesh has {len(vertices)}")
    amount = float(np.clip(weight, 0.0, 1.0))
    if amount == 0.0:
        return vertices.astype(np.float32, copy=True)
    face = _Face(vertices, regions)
    act = _ACTS.get(expression.name) or _CUSTOM_BY_REGION.get(expression.region, _CUSTOM_BY_REGION["other"])
    displacement = act(face, amount)
    return (face.vertices + displacement).astype(np.float32)


def ease(count: int) -> np.ndarray:
    """[count] weights rising from exactly 0 to 1 with a smoothstep (ease in and out)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    t = np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1)
    return t * t * (3.0 - 2.0 * t)
