"""The blendshape model of a character: neutral mesh, named shapes, eigen-expressions (`model.npz`).

`build_model` turns registered sequences into the model an animator dials on sliders:

1. every sequence gives one shape, the mean offset of its peak frames (`blendshapes.peak_offset`);
2. the shape is cleaned of drift outside the region it moves (`blendshapes.motion_mask`);
3. a sequence named after a split act of the expression library (`eyeBlink`) becomes a Left and a
   Right shape (`eyeBlinkLeft`, `eyeBlinkRight`) with a smooth blend across the face's mirror plane;
   other sequences give one shape named after them (ARKit names stay as they are);
4. the eigen-expressions are the PCA of all frames' offsets.

`model.npz` holds DESIGN.md's keys plus a few that tools need (see `BlendshapeModel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from . import blendshapes
from .errors import InputError
from .expressions import LIBRARY_BY_NAME, Expression, canonical_name, check_unique_names, shape_region

MAX_PCA_COMPONENTS = 100
# Half-width of the Left/Right blend band, as a fraction of the head's bounding-box diagonal: about
# 1 cm on a 40 cm head, narrow enough that a lip corner belongs wholly to its side.
SPLIT_FALLOFF_FRACTION = 0.025


@dataclass
class BlendshapeModel:
    """A character's blendshape model; every array is in one frame and unit (the asset file's).

    Attributes:
        neutral: [V, 3] float32 neutral vertex positions.
        faces: [F, 3] int32 triangles.
        names: K blendshape names (camelCase, ARKit's where they map).
        shapes: [K, V, 3] float32 offsets from the neutral at full strength (slider 1).
        regions: K slider groups (`expressions.REGIONS`).
        sources: K names of the sequence each shape came from.
        pca: the eigen-expressions of all registered frames.
        symmetry: [4] mirror plane (unit normal toward the character's left, then offset).
        uv: [V, 2] float32 texture coordinates (v up), or None.
        colors: [V, 3] uint8 vertex colours, or None.
    """

    neutral: np.ndarray
    faces: np.ndarray
    names: list[str]
    shapes: np.ndarray
    regions: list[str]
    sources: list[str]
    pca: blendshapes.PcaModel
    symmetry: np.ndarray
    uv: np.ndarray | None = None
    colors: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def vertex_count(self) -> int:
        return len(self.neutral)

    @property
    def diagonal(self) -> float:
        extent = self.neutral.max(axis=0).astype(np.float64) - self.neutral.min(axis=0)
        return float(np.linalg.norm(extent))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of `model.npz` (DESIGN.md's keys, plus regions, sources, variance and plane)."""
        arrays = {
            "neutral": self.neutral.astype(np.float32),
            "faces": self.faces.astype(np.int32),
            "blendshape_names": np.array(self.names, dtype=np.str_),
            "blendshapes": self.shapes.astype(np.float32),
            "blendshape_regions": np.array(self.regions, dtype=np.str_),
            "blendshape_sources": np.array(self.sources, dtype=np.str_),
            "pca_mean": self.pca.mean.astype(np.float32),
            "pca_basis": self.pca.basis.astype(np.float32),
            "pca_stdev": self.pca.stdev.astype(np.float32),
            "pca_variance_ratio": self.pca.variance_ratio.astype(np.float32),
            "symmetry_plane": self.symmetry.astype(np.float32),
        }
        if self.uv is not None:
            arrays["uv"] = self.uv.astype(np.float32)
        if self.colors is not None:
            arrays["colors"] = self.colors.astype(np.uint8)
        arrays.update(self.extras)
        # np.str_ arrays of zero names would be '<U1' [0]; keep the key with the right shape anyway.
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> BlendshapeModel:
        """Inverse of `to_arrays` (the caller has checked the required keys)."""
        names = [str(name) for name in arrays["blendshape_names"]]
        count = len(names)
        regions = (
            [str(r) for r in arrays["blendshape_regions"]]
            if "blendshape_regions" in arrays
            else [shape_region(n) for n in names]
        )
        sources = [str(s) for s in arrays["blendshape_sources"]] if "blendshape_sources" in arrays else list(names)
        stdev = np.asarray(arrays["pca_stdev"], dtype=np.float32)
        ratio = np.asarray(arrays.get("pca_variance_ratio", np.zeros_like(stdev)), dtype=np.float32)
        return cls(
            neutral=np.asarray(arrays["neutral"], dtype=np.float32),
            faces=np.asarray(arrays["faces"], dtype=np.int32),
            names=names,
            shapes=np.asarray(arrays["blendshapes"], dtype=np.float32).reshape(count, -1, 3),
            regions=regions,
            sources=sources,
            pca=blendshapes.PcaModel(
                mean=np.asarray(arrays["pca_mean"], dtype=np.float32),
                basis=np.asarray(arrays["pca_basis"], dtype=np.float32),
                stdev=stdev,
                variance_ratio=ratio,
            ),
            symmetry=np.asarray(arrays.get("symmetry_plane", np.zeros(4)), dtype=np.float32),
            uv=np.asarray(arrays["uv"], dtype=np.float32) if "uv" in arrays else None,
            colors=np.asarray(arrays["colors"], dtype=np.uint8) if "colors" in arrays else None,
        )

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        """[V, 3] positions for [K] slider weights."""
        weights = np.asarray(weights, dtype=np.float64)
        return (self.neutral + np.tensordot(weights, self.shapes.astype(np.float64), axes=1)).astype(np.float32)


def shapes_for_sequence(name: str) -> tuple[tuple[str, ...], bool, str]:
    """(shape names, split into halves?, region) for a sequence called `name`.

    Library acts give their shapes (`eyeBlink` -> eyeBlinkLeft/eyeBlinkRight, split); any other name,
    in any casing, gives one shape named by its camelCase form (`EyeBlinkLeft`, `eyeBlink_L` ->
    eyeBlinkLeft).
    """
    key = canonical_name(name)
    entry = LIBRARY_BY_NAME.get(key)
    if entry is not None:
        return entry.shape_names, entry.is_split, entry.region
    return (key,), False, shape_region(key)


def build_model(
    neutral: np.ndarray,
    faces: np.ndarray,
    sequences: Mapping[str, np.ndarray],
    *,
    left_hint: np.ndarray | None = None,
    noise: float | None = None,
    clean: bool = True,
    split: bool = True,
    uv: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    max_components: int = MAX_PCA_COMPONENTS,
    acts: Mapping[str, Expression] | None = None,
) -> BlendshapeModel:
    """The blendshape model of registered sequences (module docstring).

    Args:
        neutral: [V, 3] the static head.
        faces: [F, 3] its triangles.
        sequences: sequence name -> [T, V, 3] registered frames (T >= 2; frame 0 neutral).
        left_hint: [3] a direction toward the character's left (orients the mirror plane); without it
            the plane's normal points along its largest positive coordinate.
        noise: typical displacement a fit leaves on still vertices (same unit), raising the cleaning
            threshold for weak shapes. By default the smallest median displacement of any sequence's
            peak: every act leaves most of the head still, so its median is the fit's drift.
        clean: apply region masks (off only for diagnostics).
        split: split symmetric acts into Left and Right; when False every sequence gives one shape
            named after it.
        acts: the act of each sequence, where the run defined it (the user's own acts in
            prompts.json); other sequences are looked up by name (`shapes_for_sequence`).

    Raises:
        InputError: for sequences with the wrong vertex count, one frame, NaNs, or names that give
            the same shape twice.
    """
    neutral = np.asarray(neutral, dtype=np.float32)
    vertex_count = len(neutral)
    if not sequences:
        raise InputError("There are no registered sequences to build blendshapes from.")
    acts = acts or {}
    plans = {
        name: (acts[name].shape_names, acts[name].is_split, acts[name].region)
        if name in acts
        else shapes_for_sequence(name)
        for name in sequences
    }
    if not split:
        plans = {name: ((canonical_name(name),), False, region) for name, (_, _, region) in plans.items()}
    check_unique_names([shape for shapes, _, _ in plans.values() for shape in shapes], "blendshape")
    for name, frames in sequences.items():
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[1:] != (vertex_count, 3):
            raise InputError(
                f"Registered sequence {name!r} has frames of shape {list(frames.shape[1:])}, "
                f"but the head has {vertex_count} vertices."
            )
        if len(frames) < 2:
            raise InputError(
                f"Registered sequence {name!r} has a single frame; a shape needs the neutral and at least one more."
            )
        if not np.isfinite(frames).all():
            raise InputError(f"Registered sequence {name!r} contains NaN or infinite coordinates.")

    diagonal = float(np.linalg.norm(neutral.max(axis=0).astype(np.float64) - neutral.min(axis=0)))
    plane = blendshapes.find_symmetry_plane(neutral, left_hint)
    left = blendshapes.left_weights(neutral, plane, SPLIT_FALLOFF_FRACTION * diagonal)[:, None]
    adjacency = blendshapes.vertex_adjacency(faces, vertex_count) if clean else None

    peaks = {name: blendshapes.peak_offset(frames, neutral) for name, frames in sequences.items()}
    if noise is None:
        noise = min(float(np.median(np.linalg.norm(offset, axis=1))) for offset in peaks.values())
    names: list[str] = []
    shapes: list[np.ndarray] = []
    regions: list[str] = []
    sources: list[str] = []
    for name, offset in peaks.items():
        shape_names, split, region = plans[name]
        if adjacency is not None:
            offset = offset * blendshapes.motion_mask(offset, adjacency, noise=noise)[:, None]
        halves = (offset * left, offset * (1.0 - left)) if split else (offset,)
        for shape_name, half in zip(shape_names, halves, strict=True):
            names.append(shape_name)
            shapes.append(half.astype(np.float32))
            regions.append(region)
            sources.append(name)

    all_offsets = np.concatenate(
        [np.asarray(frames, dtype=np.float32)[1:] - neutral for frames in sequences.values()]
        + [np.zeros((1, vertex_count, 3), dtype=np.float32)]
    )
    pca = blendshapes.pca_model(all_offsets, max_components=max_components)
    return BlendshapeModel(
        neutral=neutral,
        faces=np.asarray(faces, dtype=np.int32),
        names=names,
        shapes=np.stack(shapes),
        regions=regions,
        sources=sources,
        pca=pca,
        symmetry=plane.as_array(),
        uv=uv,
        colors=colors,
    )


def solve_weights(model: BlendshapeModel, positions: np.ndarray, vertices: np.ndarray | None = None) -> np.ndarray:
    """Least-squares slider weights [K] that best rebuild [V, 3] `positions` from the blendshapes.

    Args:
        vertices: optional vertex indices to fit on (e.g. the face region); all vertices by default.
    """
    target = np.asarray(positions, dtype=np.float64) - model.neutral
    shapes = model.shapes.astype(np.float64)
    if vertices is not None:
        target, shapes = target[vertices], shapes[:, vertices]
    design = shapes.reshape(len(shapes), -1).T
    weights, *_ = np.linalg.lstsq(design, target.ravel(), rcond=None)
    return weights.astype(np.float32)
