"""Facial regions of a head: per-vertex weights, landmark points and scalars, and their file.

The asset stage writes them beside the static head as `asset/regions.npz` (only providers that know
the face do; the `mesh:` provider writes none), in the normalised frame of `asset/static.glb` and for
its vertex order. File layout (numpy .npz, no pickles):

    version             int, REGIONS_VERSION
    weight_names        [R] str        names of the per-vertex weights (`WEIGHT_NAMES` and extras)
    weights             [R, V] float32 each in 0..1
    landmark_names      [L] str
    landmarks           [L, 3] float32 points or unit directions in the normalised frame
    scalar_names        [S] str
    scalars             [S] float64    lengths in normalised units, angles in radians

Weights: `jaw` (how much of the jaw's rotation a vertex takes), `lip_upper`, `lip_lower`,
`mouth_corner_L/R`, `lid_upper_L/R`, `lid_lower_L/R`, `eyeball_L/R`, `brow_L/R`, `cheek_L/R`, `nose`,
`ear_L/R`, `tongue`, `mouth_inner`. `_L` is the character's left (+X).

Landmarks: `jaw_hinge` (a point on the hinge axis), `jaw_axis` (unit, +X), `mouth_center`,
`mouth_corner_L/R`, `eye_center_L/R`, `eye_forward_L/R` (unit), `brow_center_L/R`, `cheek_center_L/R`,
`nose_tip`, `ear_base_L/R`, `ear_tip_L/R`, `tongue_tip`.

Scalars: `eye_radius` (eyeball), `lid_radius` (inner radius of the lid shell), `eye_open` and
`eye_wide` (vertical and horizontal half-angles of the eye opening), `jaw_open_angle` (how far the
jaw drops at full `jawOpen`), `slit_height` (gap between the closed lips), `scale` (a typical facial
length: the eye-to-mouth distance).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BundleError
from ..fileio import atomic_open

REGIONS_FILE = "asset/regions.npz"
REGIONS_VERSION = 1

SIDES = ("L", "R")
WEIGHT_NAMES: tuple[str, ...] = (
    "jaw", "lip_upper", "lip_lower", "mouth_corner_L", "mouth_corner_R", "lid_upper_L", "lid_upper_R",
    "lid_lower_L", "lid_lower_R", "eyeball_L", "eyeball_R", "brow_L", "brow_R", "cheek_L", "cheek_R",
    "nose", "ear_L", "ear_R", "tongue", "mouth_inner",
)  # fmt: skip
LANDMARK_NAMES: tuple[str, ...] = (
    "jaw_hinge", "jaw_axis", "mouth_center", "mouth_corner_L", "mouth_corner_R", "eye_center_L",
    "eye_center_R", "eye_forward_L", "eye_forward_R", "brow_center_L", "brow_center_R",
    "cheek_center_L", "cheek_center_R", "nose_tip", "ear_base_L", "ear_base_R", "ear_tip_L",
    "ear_tip_R", "tongue_tip",
)  # fmt: skip
SCALAR_NAMES: tuple[str, ...] = (
    "eye_radius", "lid_radius", "eye_open", "eye_wide", "jaw_open_angle", "slit_height", "scale",
)  # fmt: skip
# Landmarks that are directions, not points: a similarity transform only rotates them.
DIRECTION_LANDMARKS = frozenset({"jaw_axis", "eye_forward_L", "eye_forward_R"})


@dataclass
class FaceRegions:
    """Where the face's parts are on one mesh (module docstring lists the names).

    Attributes:
        weights: name -> [V] float32 in 0..1.
        landmarks: name -> [3] float64 point or unit direction.
        scalars: name -> float (normalised units or radians).
    """

    weights: dict[str, np.ndarray]
    landmarks: dict[str, np.ndarray]
    scalars: dict[str, float] = field(default_factory=dict)

    @property
    def vertex_count(self) -> int:
        return len(next(iter(self.weights.values()))) if self.weights else 0

    def weight(self, name: str) -> np.ndarray:
        """[V] float64 weight `name`, zeros if this head lacks it (an earless frog has no ears)."""
        if name in self.weights:
            return np.asarray(self.weights[name], dtype=np.float64)
        return np.zeros(self.vertex_count)

    def has(self, name: str, threshold: float = 0.5) -> bool:
        """Whether any vertex carries `name` with at least `threshold`."""
        return name in self.weights and bool((self.weights[name] >= threshold).any())

    def transformed(self, scale: float, offset: np.ndarray) -> FaceRegions:
        """The regions after p -> scale * p + offset (lengths scale, directions and angles stay)."""
        landmarks = {
            name: value.copy() if name in DIRECTION_LANDMARKS else value * scale + offset
            for name, value in self.landmarks.items()
        }
        angles = {"eye_open", "eye_wide", "jaw_open_angle"}
        scalars = {name: value if name in angles else value * scale for name, value in self.scalars.items()}
        return FaceRegions(dict(self.weights), landmarks, scalars)


def save_regions(regions: FaceRegions, path: str | Path) -> None:
    """Write `regions` as .npz atomically (layout in the module docstring)."""
    weight_names = list(regions.weights)
    landmark_names = list(regions.landmarks)
    scalar_names = list(regions.scalars)
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        version=np.int64(REGIONS_VERSION),
        weight_names=np.array(weight_names, dtype=str),
        weights=np.stack([regions.weights[n] for n in weight_names]).astype(np.float32),
        landmark_names=np.array(landmark_names, dtype=str),
        landmarks=np.stack([regions.landmarks[n] for n in landmark_names]).astype(np.float32),
        scalar_names=np.array(scalar_names, dtype=str),
        scalars=np.array([regions.scalars[n] for n in scalar_names], dtype=np.float64),
    )
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_regions(path: str | Path, vertex_count: int | None = None) -> FaceRegions:
    """Read a regions file; raises BundleError (one sentence) if it is missing, unreadable or does not
    fit a mesh of `vertex_count` vertices."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path} does not exist; only heads made by the procedural provider carry regions.")
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["version"])
            if version != REGIONS_VERSION:
                raise BundleError(f"{path} has version {version}; this t2bs reads version {REGIONS_VERSION}.")
            weights = np.asarray(data["weights"], dtype=np.float32)
            weight_names = [str(n) for n in data["weight_names"]]
            landmarks = np.asarray(data["landmarks"], dtype=np.float64)
            landmark_names = [str(n) for n in data["landmark_names"]]
            scalars = np.asarray(data["scalars"], dtype=np.float64)
            scalar_names = [str(n) for n in data["scalar_names"]]
    except BundleError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{path} cannot be read as a regions file ({exc}).") from None
    if weights.ndim != 2 or len(weights) != len(weight_names) or landmarks.shape != (len(landmark_names), 3):
        raise BundleError(f"{path} has arrays whose shapes disagree with their names.")
    if vertex_count is not None and weights.shape[1] != vertex_count:
        raise BundleError(
            f"{path} has weights for {weights.shape[1]} vertices but the head has {vertex_count}; "
            "run the asset stage again."
        )
    return FaceRegions(
        weights={name: weights[i] for i, name in enumerate(weight_names)},
        landmarks={name: landmarks[i] for i, name in enumerate(landmark_names)},
        scalars={name: float(scalars[i]) for i, name in enumerate(scalar_names)},
    )
