"""The parameters of a procedural head, and one preset per archetype.

Lengths are in the head's design frame (+Y up, face toward +Z, +X the character's left): the cranium
is about 0.8 units wide. `build_head` rescales the finished mesh to the normalised frame (largest
bounding-box side 1), so only proportions matter here. Angles are radians; colours are RGB in 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

RGB = tuple[float, float, float]

EAR_STYLES = ("pointed", "round", "floppy", "long", "human", "tuft", "fin", "bolt", "none")
NOSE_STYLES = ("button", "human", "beak", "robot", "none")
PUPIL_STYLES = ("round", "slit", "screen")
PATTERNS = ("fur", "skin", "scales", "metal", "feathers")


@dataclass(frozen=True)
class HeadParams:
    """Everything `build_head` needs to know about a character (see the module docstring for units).

    Attributes:
        archetype: the preset this started from (one of `ARCHETYPES`).
        cranium: radii (x, y, z) of the braincase ellipsoid, centred at (0, cranium_y, 0).
        jowl: radii of the lower-face ellipsoid (cheeks and jaw), centred at (0, jowl_y, jowl_z).
        snout_length: how far the muzzle reaches forward from the face (0 for a flat face).
        snout_width, snout_tip: muzzle radius at its base and at its tip.
        snout_height: vertical squash of the muzzle (1 round, < 1 flatter).
        snout_y: height of the muzzle's axis where it leaves the face; snout_drop lowers its tip.
        nose_style, nose_size: kind and radius of the nose (`NOSE_STYLES`).
        ear_style, ear_size, ear_spread: kind (`EAR_STYLES`), length, outward tilt of the ears.
        eye_radius, eye_spacing, eye_y: eyeball radius, half the distance between the eye centres,
            height of the eye centres.
        eye_yaw: how far each eye turns outward from +Z.
        eye_open, eye_wide: vertical and horizontal half-angles of the eye opening.
        eye_protrusion: how much of the eyeball stands out of the face, as a fraction of its radius.
        pupil: `PUPIL_STYLES`; iris: iris colour.
        brow_ridge: size of the bony ridge above the eyes (0 none).
        mouth_y: height of the mouth line; mouth_width: half width of the mouth as a fraction of the
            lower face; lip_thickness: how far lips bulge (0 for animals).
        chin: size of the chin bump; horns: horn length (0 none); neck_radius: radius of the neck.
        boxy: a rounded-box braincase (robots); antenna: a rod on top.
        fur, fur_light, skin: main colour, muzzle/chest colour, nose/lips/inner-ear colour.
        pattern: surface detail painted into the texture (`PATTERNS`).
        mood: -1 grumpy .. +1 cheerful, bends the neutral brows.
    """

    archetype: str
    cranium: tuple[float, float, float] = (0.42, 0.40, 0.40)
    cranium_y: float = 0.10
    jowl: tuple[float, float, float] = (0.34, 0.25, 0.30)
    jowl_y: float = -0.12
    jowl_z: float = 0.08
    snout_length: float = 0.25
    snout_width: float = 0.17
    snout_tip: float = 0.09
    snout_height: float = 0.8
    snout_y: float = -0.10
    snout_drop: float = 0.04
    nose_style: str = "button"
    nose_size: float = 0.05
    ear_style: str = "pointed"
    ear_size: float = 0.30
    ear_spread: float = 0.45
    eye_radius: float = 0.075
    eye_spacing: float = 0.17
    eye_y: float = 0.08
    eye_yaw: float = 0.25
    eye_open: float = 0.55
    eye_wide: float = 0.95
    eye_protrusion: float = 0.3
    pupil: str = "round"
    iris: RGB = (0.45, 0.30, 0.10)
    brow_ridge: float = 0.0
    mouth_y: float = -0.17
    mouth_width: float = 0.75
    lip_thickness: float = 0.0
    chin: float = 0.0
    horns: float = 0.0
    neck_radius: float = 0.22
    boxy: bool = False
    antenna: bool = False
    fur: RGB = (0.55, 0.40, 0.28)
    fur_light: RGB = (0.90, 0.85, 0.78)
    skin: RGB = (0.18, 0.12, 0.12)
    pattern: str = "fur"
    mood: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_changes(self, **changes: Any) -> HeadParams:
        return replace(self, **changes)


_BASE = HeadParams(archetype="dog")

ARCHETYPES: dict[str, HeadParams] = {
    "human": _BASE.with_changes(
        archetype="human", cranium=(0.36, 0.44, 0.42), cranium_y=0.14, jowl=(0.30, 0.30, 0.30),
        jowl_y=-0.14, jowl_z=0.05, snout_length=0.0, nose_style="human", nose_size=0.06,
        ear_style="human", ear_size=0.16, ear_spread=0.1, eye_radius=0.058, eye_spacing=0.135,
        eye_y=0.07, eye_yaw=0.05, eye_open=0.42, eye_wide=0.85, eye_protrusion=0.35,
        iris=(0.25, 0.40, 0.55), brow_ridge=0.05, mouth_y=-0.25, mouth_width=0.35, lip_thickness=0.022,
        chin=0.045, neck_radius=0.17, fur=(0.85, 0.64, 0.52), fur_light=(0.88, 0.68, 0.57),
        skin=(0.72, 0.38, 0.36), pattern="skin",
    ),
    "cat": _BASE.with_changes(
        archetype="cat", cranium=(0.42, 0.38, 0.38), jowl=(0.33, 0.22, 0.28), jowl_y=-0.12,
        snout_length=0.10, snout_width=0.15, snout_tip=0.11, snout_y=-0.10, snout_drop=0.02,
        nose_size=0.035, ear_style="pointed", ear_size=0.28, ear_spread=0.35, eye_radius=0.085,
        eye_spacing=0.16, eye_y=0.04, eye_yaw=0.2, eye_open=0.6, pupil="slit", iris=(0.55, 0.70, 0.15),
        mouth_y=-0.16, mouth_width=0.6, fur=(0.55, 0.55, 0.55), fur_light=(0.92, 0.92, 0.90),
        skin=(0.85, 0.50, 0.55),
    ),
    "dog": _BASE.with_changes(
        archetype="dog", snout_length=0.20, snout_width=0.22, snout_tip=0.13, snout_height=0.85, ear_style="floppy",
        ear_size=0.32, ear_spread=0.2, eye_radius=0.07, nose_size=0.06, fur=(0.70, 0.52, 0.30),
        fur_light=(0.95, 0.90, 0.80), iris=(0.35, 0.22, 0.10),
    ),
    "fox": _BASE.with_changes(
        archetype="fox", cranium=(0.40, 0.36, 0.38), jowl=(0.36, 0.22, 0.28), snout_length=0.22,
        snout_width=0.21, snout_tip=0.085, snout_y=-0.09, snout_drop=0.05, nose_size=0.04,
        ear_style="pointed", ear_size=0.38, ear_spread=0.35, eye_radius=0.07, eye_open=0.5,
        pupil="slit", iris=(0.80, 0.55, 0.10), fur=(0.90, 0.45, 0.12), fur_light=(0.97, 0.95, 0.92),
    ),
    "wolf": _BASE.with_changes(
        archetype="wolf", cranium=(0.42, 0.38, 0.40), snout_length=0.28, snout_width=0.22,
        snout_tip=0.10, snout_drop=0.05, nose_size=0.055, ear_style="pointed", ear_size=0.32,
        ear_spread=0.3, eye_radius=0.065, eye_open=0.45, iris=(0.85, 0.70, 0.20), brow_ridge=0.02,
        fur=(0.50, 0.50, 0.52), fur_light=(0.88, 0.88, 0.86),
    ),
    "bear": _BASE.with_changes(
        archetype="bear", cranium=(0.46, 0.40, 0.42), jowl=(0.40, 0.28, 0.32), snout_length=0.14,
        snout_width=0.22, snout_tip=0.15, snout_drop=0.02, nose_size=0.06, ear_style="round",
        ear_size=0.16, ear_spread=0.5, eye_radius=0.055, eye_spacing=0.17, eye_y=0.10,
        eye_open=0.55, iris=(0.20, 0.12, 0.06), neck_radius=0.28, fur=(0.45, 0.28, 0.15),
        fur_light=(0.75, 0.58, 0.40),
    ),
    "rabbit": _BASE.with_changes(
        archetype="rabbit", cranium=(0.38, 0.36, 0.38), jowl=(0.32, 0.24, 0.30), snout_length=0.08,
        snout_width=0.15, snout_tip=0.12, snout_drop=0.02, nose_size=0.03, ear_style="long",
        ear_size=0.55, ear_spread=0.12, eye_radius=0.085, eye_spacing=0.18, eye_yaw=0.45,
        eye_open=0.6, iris=(0.25, 0.15, 0.10), fur=(0.85, 0.83, 0.80), fur_light=(0.98, 0.97, 0.96),
        skin=(0.90, 0.55, 0.60),
    ),
    "frog": _BASE.with_changes(
        archetype="frog", cranium=(0.48, 0.28, 0.40), cranium_y=0.0, jowl=(0.46, 0.20, 0.36),
        jowl_y=-0.12, jowl_z=0.04, snout_length=0.05, snout_width=0.30, snout_tip=0.26, snout_height=0.5,
        snout_y=-0.05, snout_drop=0.0, nose_style="none", ear_style="none", eye_radius=0.10,
        eye_spacing=0.25, eye_y=0.20, eye_yaw=0.35, eye_open=0.6, eye_protrusion=0.75,
        pupil="slit", iris=(0.85, 0.70, 0.10), mouth_y=-0.10, mouth_width=0.95, neck_radius=0.26,
        fur=(0.30, 0.62, 0.22), fur_light=(0.85, 0.90, 0.55), skin=(0.20, 0.35, 0.12), pattern="skin",
    ),
    "monkey": _BASE.with_changes(
        archetype="monkey", cranium=(0.40, 0.40, 0.40), cranium_y=0.12, snout_length=0.10,
        snout_width=0.20, snout_tip=0.16, snout_height=0.75, snout_y=-0.14, snout_drop=0.0,
        nose_style="human", nose_size=0.035, ear_style="human", ear_size=0.2, ear_spread=0.2,
        eye_radius=0.06, eye_spacing=0.13, eye_y=0.06, eye_yaw=0.05, eye_open=0.5,
        iris=(0.30, 0.18, 0.08), brow_ridge=0.05, mouth_y=-0.22, mouth_width=0.6, lip_thickness=0.02,
        fur=(0.45, 0.30, 0.18), fur_light=(0.88, 0.72, 0.58), skin=(0.60, 0.40, 0.35),
    ),
    "owl": _BASE.with_changes(
        archetype="owl", cranium=(0.44, 0.42, 0.40), cranium_y=0.05, jowl=(0.40, 0.30, 0.32),
        jowl_y=-0.10, snout_length=0.0, nose_style="beak", nose_size=0.08, ear_style="tuft",
        ear_size=0.2, ear_spread=0.5, eye_radius=0.10, eye_spacing=0.17, eye_y=0.06, eye_yaw=0.1,
        eye_open=0.7, eye_wide=1.0, eye_protrusion=0.35, iris=(0.95, 0.65, 0.05), mouth_y=-0.13,
        mouth_width=0.2, neck_radius=0.28, fur=(0.50, 0.38, 0.25), fur_light=(0.90, 0.82, 0.68),
        skin=(0.35, 0.30, 0.25), pattern="feathers",
    ),
    "dragon": _BASE.with_changes(
        archetype="dragon", cranium=(0.38, 0.34, 0.40), jowl=(0.34, 0.24, 0.32), snout_length=0.32,
        snout_width=0.22, snout_tip=0.12, snout_height=0.7, snout_y=-0.07, snout_drop=0.02,
        nose_style="button", nose_size=0.04, ear_style="fin", ear_size=0.26, ear_spread=0.6,
        eye_radius=0.065, eye_spacing=0.17, eye_y=0.07, eye_yaw=0.35, eye_open=0.4, pupil="slit",
        iris=(0.95, 0.75, 0.10), brow_ridge=0.05, horns=0.38, mouth_width=0.85, fur=(0.25, 0.55, 0.25),
        fur_light=(0.80, 0.78, 0.50), skin=(0.15, 0.25, 0.12), pattern="scales",
    ),
    "robot": _BASE.with_changes(
        archetype="robot", cranium=(0.40, 0.40, 0.38), cranium_y=0.08, jowl=(0.34, 0.22, 0.30),
        snout_length=0.0, nose_style="robot", nose_size=0.04, ear_style="bolt", ear_size=0.12,
        ear_spread=0.0, eye_radius=0.08, eye_spacing=0.16, eye_y=0.06, eye_yaw=0.0, eye_open=0.55,
        eye_protrusion=0.35, pupil="screen", iris=(0.20, 0.85, 1.00), mouth_y=-0.20, mouth_width=0.5,
        neck_radius=0.18, boxy=True, antenna=True, fur=(0.70, 0.72, 0.76), fur_light=(0.85, 0.86, 0.88),
        skin=(0.25, 0.27, 0.30), pattern="metal",
    ),
}  # fmt: skip

ARCHETYPE_NAMES: tuple[str, ...] = tuple(ARCHETYPES)
