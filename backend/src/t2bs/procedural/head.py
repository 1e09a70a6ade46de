"""Procedural character heads: `HeadParams` -> a textured, watertight `HeadMesh` with facial regions.

How a head is made
------------------
1. The skin is one signed distance field (`t2bs.procedural.sdf`): braincase, lower face, muzzle, nose,
   ears, horns and neck blended with smooth unions; a thin slit between the lips and a mouth cavity
   behind them are carved out (so the jaw can open), and each eye gets a socket, a lid shell around it
   and an almond-shaped opening in the lid.
2. Marching cubes turns the field into a closed mesh (the grid spacing is chosen from a coarse pass so
   the head lands near `TARGET_VERTICES`), then a light Taubin smoothing evens the triangles.
3. Eyeballs and the tongue are separate closed spheres (so they can turn and slide without tearing
   the skin): the mesh has several closed components, each watertight and manifold.
4. UVs: the skin is cut at the bottom of the neck and flattened onto a disk (Tutte's embedding, which
   cannot fold); the neck's bottom cap goes to a ring around it; eyeballs and tongue get small disks in
   the corners. The colour texture is painted per texel from the 3D position under it.
5. Facial regions (weights and landmarks, `t2bs.procedural.regions`) come from the same parts.

All geometry is built in a design frame (cranium about 0.8 wide) and moved to the normalised frame
(`t2bs.mesh_io`) at the end; `to_source` is the identity, the procedural head has no other units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import trimesh
from scipy import ndimage

from ..mesh_io import HeadMesh
from ..meshrender import render_mesh
from . import sdf
from .archetypes import HeadParams
from .regions import FaceRegions

TARGET_VERTICES = 24000
TEXTURE_SIZE = 1024
_EYE_SUBDIVISIONS = 4
_UV_DISK_RADIUS = 0.40
_UV_CAP_RING = 0.06
_UV_CORNER_RADIUS = 0.068
_UV_CORNERS = {"eyeball_L": (0.08, 0.08), "eyeball_R": (0.92, 0.08), "tongue": (0.08, 0.92)}


@dataclass
class ProceduralHead:
    """A built head: the mesh in the normalised frame and its regions (same frame, same vertices)."""

    mesh: HeadMesh
    regions: FaceRegions
    params: HeadParams
    seconds: float = 0.0


@dataclass
class _Eye:
    centre: np.ndarray  # [3] design frame
    frame: np.ndarray  # [3, 3] rows: eye x (character's left on both eyes), up, forward
    radius: float
    lid_inner: float
    lid_outer: float


@dataclass
class _Layout:
    """Key points of a head in the design frame, derived from the parameters."""

    params: HeadParams
    eyes: dict[str, _Eye]
    mouth_y: float
    mouth_front_z: float
    mouth_corner_z: float
    mouth_half_width: float
    slit_height: float
    cavity_centre: np.ndarray
    cavity_radii: np.ndarray
    hinge: np.ndarray
    nose_tip: np.ndarray
    ear_bases: dict[str, np.ndarray]
    ear_tips: dict[str, np.ndarray]
    neck_bottom: float
    brow_centres: dict[str, np.ndarray]
    cheek_centres: dict[str, np.ndarray]


# -- the distance field ------------------------------------------------------------------------------


def _rotation_towards(axis: np.ndarray, front_hint: np.ndarray) -> np.ndarray:
    """[3, 3] rows (side, axis, front) of a frame whose second axis is `axis`."""
    up = axis / np.linalg.norm(axis)
    front = front_hint - up * float(front_hint @ up)
    front /= np.linalg.norm(front)
    side = np.cross(up, front)
    return np.stack([side, up, front])


def _snout_axis(params: HeadParams) -> tuple[np.ndarray, np.ndarray]:
    base = np.array([0.0, params.snout_y, params.cranium[2] * 0.25])
    tip = base + np.array([0.0, -params.snout_drop, params.snout_length + params.cranium[2] * 0.6])
    return base, tip


def _base_field(p: np.ndarray, params: HeadParams) -> np.ndarray:
    """The head without ears, horns, eyes, nose and mouth: braincase, lower face, muzzle, neck."""
    cranium_centre = np.array([0.0, params.cranium_y, 0.0])
    if params.boxy:
        half = np.array(params.cranium) * np.array([0.95, 0.95, 0.95])
        d = sdf.round_box(p, cranium_centre, half, 0.12)
    else:
        d = sdf.ellipsoid(p, cranium_centre, np.array(params.cranium))
    jowl_centre = np.array([0.0, params.jowl_y, params.jowl_z])
    if params.boxy:
        jowl = sdf.round_box(p, jowl_centre, np.array(params.jowl), 0.08)
    else:
        jowl = sdf.ellipsoid(p, jowl_centre, np.array(params.jowl))
    d = sdf.smooth_union(d, jowl, 0.12)
    if params.snout_length > 0.0:
        base, tip = _snout_axis(params)
        q = p.copy()
        # Squashing y makes the muzzle flatter than it is wide, as most muzzles are.
        q[:, 1] = params.snout_y + (p[:, 1] - params.snout_y) / params.snout_height
        snout = sdf.round_cone(q, base, tip, params.snout_width, params.snout_tip) * params.snout_height
        d = sdf.smooth_union(d, snout, 0.16)
    if params.chin > 0.0:
        chin_centre = np.array([0.0, params.mouth_y - 0.10, params.jowl_z + params.jowl[2] * 0.72])
        d = sdf.smooth_union(d, sdf.sphere(p, chin_centre, params.chin), 0.08)
    # Neck: a tapered rod cut flat at the bottom, so the UV cut sits on a flat, hidden cap.
    neck_top = np.array([0.0, params.jowl_y, -0.10])
    neck_end = np.array([0.0, params.jowl_y - 0.55, -0.12])
    neck = sdf.round_cone(p, neck_top, neck_end, params.neck_radius, params.neck_radius * 1.08)
    d = sdf.smooth_union(d, neck, 0.12)
    return sdf.smooth_intersect(d, _neck_bottom(params) - p[:, 1], 0.02)


def _neck_bottom(params: HeadParams) -> float:
    return params.jowl_y - 0.42


def _surface_z(params: HeadParams, x: float, y: float, field_fn=None) -> float:
    """The frontmost z where the base skin crosses the line (x, y, z)."""
    z = np.linspace(1.5, -0.5, 801)
    points = np.stack([np.full_like(z, x), np.full_like(z, y), z], axis=1)
    values = (field_fn or (lambda q: _base_field(q, params)))(points)
    inside = np.nonzero(values < 0.0)[0]
    if len(inside) == 0:
        return 0.0
    first = inside[0]
    if first == 0:
        return float(z[0])
    # Linear interpolation between the last outside and first inside sample.
    v0, v1 = values[first - 1], values[first]
    t = v0 / (v0 - v1)
    return float(z[first - 1] + t * (z[first] - z[first - 1]))


def _layout(params: HeadParams) -> _Layout:
    eyes: dict[str, _Eye] = {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        x = sign * params.eye_spacing
        surface = _surface_z(params, x, params.eye_y)
        radius = params.eye_radius
        centre_z = surface + 2.0 * radius * params.eye_protrusion - radius
        centre = np.array([x, params.eye_y, centre_z])
        forward = np.array([sign * math.sin(params.eye_yaw), 0.0, math.cos(params.eye_yaw)])
        up = np.array([0.0, 1.0, 0.0])
        eye_x = np.cross(up, forward)
        frame = np.stack([eye_x, up, forward])
        gap = 0.06 * radius + 0.002
        eyes[side] = _Eye(centre, frame, radius, radius + gap, radius + gap + 0.22 * radius + 0.01)
    _base, tip = _snout_axis(params)
    if params.snout_length > 0.05:
        # The mouth line runs under the muzzle's axis, a third of the way down at the tip.
        mouth_y = float(tip[1] - 0.4 * params.snout_tip * params.snout_height)
    else:
        mouth_y = params.mouth_y
    front = _surface_z(params, 0.0, mouth_y)
    if params.snout_length > 0.05:
        corner_z = params.cranium[2] * 0.6
        half_width = max(params.snout_width, 0.12) * 1.4
    else:
        corner_z = front - 0.10 - 0.08 * params.mouth_width
        half_width = 0.08 + 0.2 * params.mouth_width
    depth = max(front - corner_z, 0.08)
    cavity_height = (
        0.055 if params.snout_length <= 0.05 else min(0.055, 0.5 * params.snout_tip * params.snout_height + 0.01)
    )
    cavity_centre = np.array([0.0, mouth_y - 0.005, corner_z + 0.3 * depth - 0.02])
    cavity_radii = np.array([min(half_width, 0.16) * 0.7, cavity_height, 0.36 * depth + 0.04])
    hinge = np.array([0.0, mouth_y + 0.06, min(corner_z - 0.12, -0.02)])
    if params.snout_length > 0.0:
        nose_tip = tip + np.array([0.0, params.snout_tip * params.snout_height * 0.45, params.snout_tip * 0.55])
    else:
        nose_y = (params.eye_y + mouth_y) / 2.0 - 0.01
        nose_tip = np.array([0.0, nose_y, _surface_z(params, 0.0, nose_y) + params.nose_size * 0.9])
    ear_bases, ear_tips = _ear_placement(params)
    brows, cheeks = {}, {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        eye = eyes[side]
        brows[side] = eye.centre + np.array([0.0, eye.radius * 1.35, 0.0]) + eye.frame[2] * eye.radius * 0.6
        cheek_y = (params.eye_y + mouth_y) / 2.0 - 0.02
        cheek_x = sign * (params.eye_spacing + 0.06)
        cheeks[side] = np.array([cheek_x, cheek_y, _surface_z(params, cheek_x, cheek_y)])
    return _Layout(
        params=params,
        eyes=eyes,
        mouth_y=mouth_y,
        mouth_front_z=front,
        mouth_corner_z=corner_z,
        mouth_half_width=half_width,
        slit_height=0.019,
        cavity_centre=cavity_centre,
        cavity_radii=cavity_radii,
        hinge=hinge,
        nose_tip=nose_tip,
        ear_bases=ear_bases,
        ear_tips=ear_tips,
        neck_bottom=_neck_bottom(params),
        brow_centres=brows,
        cheek_centres=cheeks,
    )


def _ear_placement(params: HeadParams) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rx, ry, rz = params.cranium
    cy = params.cranium_y
    bases, tips = {}, {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        style = params.ear_style
        if style in ("pointed", "round", "tuft", "long"):
            elevation = {"pointed": 0.62, "round": 0.7, "tuft": 0.72, "long": 0.85}[style]
            angle = elevation + 0.0
            base = np.array([sign * rx * math.cos(angle), cy + ry * math.sin(angle) * 0.92, -0.03 * rz])
            spread = params.ear_spread
            direction = np.array([sign * math.sin(spread), math.cos(spread), -0.15])
        elif style == "floppy":
            base = np.array([sign * rx * 0.78, cy + ry * 0.55, -0.05])
            direction = np.array([sign * 0.55, -1.0, 0.05])
        elif style == "human":
            base = np.array([sign * rx * 0.93, params.eye_y - 0.03, -0.06])
            direction = np.array([sign * 0.25, 1.0, -0.15])
        elif style == "fin":
            base = np.array([sign * rx * 0.8, cy + ry * 0.35, -0.12])
            direction = np.array([sign * 0.8, 0.45, -0.6])
        elif style == "bolt":
            base = np.array([sign * rx * 0.85, cy - 0.02, 0.0])
            direction = np.array([sign * 1.0, 0.0, 0.0])
        else:
            continue
        direction = direction / np.linalg.norm(direction)
        bases[side] = base
        tips[side] = base + direction * params.ear_size
    return bases, tips


def _ear_field(p: np.ndarray, params: HeadParams, base: np.ndarray, tip: np.ndarray, sign: float) -> np.ndarray:
    style = params.ear_style
    axis = tip - base
    length = float(np.linalg.norm(axis))
    if style == "bolt":
        rod = sdf.round_cone(p, base, tip, 0.06, 0.06)
        cap = sdf.round_cone(p, tip - axis / length * 0.02, tip, 0.09, 0.09)
        return np.minimum(rod, cap)
    front_hint = np.array([0.0, 0.0, 1.0]) if style != "human" else np.array([sign * 1.0, 0.0, 0.3])
    frame = _rotation_towards(axis, front_hint)
    q = sdf.local(p, base, frame)  # x: across the ear, y: along it, z: out of its front face
    flat = {"pointed": 2.6, "round": 2.6, "floppy": 2.8, "long": 2.4, "human": 2.8, "tuft": 1.5, "fin": 3.0}[style]
    q_flat = q * np.array([1.0, 1.0, flat])
    origin = np.zeros(3)
    along = np.array([0.0, length, 0.0])
    if style in ("pointed", "tuft", "fin"):
        width = {"pointed": 0.42, "tuft": 0.3, "fin": 0.35}[style] * length
        outer = sdf.round_cone(q_flat, origin - along * 0.15, along, width, 0.012) / flat * 1.6
    else:
        radii = {"round": (0.5, 0.5), "floppy": (0.38, 0.55), "long": (0.2, 0.55), "human": (0.32, 0.55)}[style]
        centre = along * (0.5 if style != "round" else 0.35)
        outer = (
            sdf.ellipsoid(q_flat, centre, np.array([radii[0] * length, radii[1] * length, radii[0] * length * 0.9]))
            / flat
            * 1.6
        )
    if style in ("tuft", "fin"):
        return outer
    # A hollow in the front face makes the ear read as an ear, and gives the inner ear its colour.
    hollow_shift = np.array([0.0, 0.06 * length, 0.045 * flat])
    if style in ("pointed",):
        width = 0.42 * length
        inner = sdf.round_cone(q_flat - hollow_shift, origin, along * 0.85, width * 0.7, 0.004) / flat * 1.6
    else:
        centre = along * (0.5 if style != "round" else 0.38) + hollow_shift
        inner = (
            sdf.ellipsoid(
                q_flat, centre, np.array([radii[0] * length * 0.7, radii[1] * length * 0.75, radii[0] * length * 0.6])
            )
            / flat
            * 1.6
        )
    return sdf.smooth_subtract(outer, inner, 0.01)


def _nose_field(p: np.ndarray, layout: _Layout) -> np.ndarray | None:
    params = layout.params
    tip = layout.nose_tip
    size = params.nose_size
    if params.nose_style == "button":
        return sdf.ellipsoid(p, tip - np.array([0.0, 0.0, size * 0.5]), np.array([size * 1.3, size * 0.85, size]))
    if params.nose_style == "human":
        bridge = np.array([0.0, params.eye_y - 0.02, tip[2] - size * 1.6])
        ridge = sdf.round_cone(p, bridge, tip - np.array([0.0, size * 0.1, size * 0.5]), size * 0.35, size * 0.6)
        wings = np.minimum(
            sdf.sphere(p, tip + np.array([size * 0.75, -size * 0.35, -size * 0.9]), size * 0.5),
            sdf.sphere(p, tip + np.array([-size * 0.75, -size * 0.35, -size * 0.9]), size * 0.5),
        )
        return sdf.smooth_union(ridge, wings, size * 0.4)
    if params.nose_style == "beak":
        top = np.array([0.0, params.eye_y - 0.02, tip[2] - size * 1.5])
        hook = np.array([0.0, layout.mouth_y - size * 0.9, tip[2] + size * 0.1])
        upper = sdf.round_cone(p, top, tip, size * 0.7, size * 0.35)
        return sdf.smooth_union(upper, sdf.round_cone(p, tip, hook, size * 0.35, size * 0.08), size * 0.3)
    if params.nose_style == "robot":
        return sdf.round_box(
            p, tip - np.array([0.0, 0.0, size * 0.6]), np.array([size * 0.6, size * 0.9, size * 0.8]), size * 0.3
        )
    return None


def _horn_fields(p: np.ndarray, params: HeadParams) -> np.ndarray | None:
    if params.horns <= 0.0:
        return None
    rx, ry, _ = params.cranium
    length = params.horns
    result = None
    for sign in (1.0, -1.0):
        a = np.array([sign * rx * 0.45, params.cranium_y + ry * 0.82, -0.05])
        b = a + np.array([sign * 0.15, 0.55, -0.55]) * length * 0.55
        c = b + np.array([sign * 0.05, 0.15, -0.95]) * length * 0.55
        horn = np.minimum(sdf.round_cone(p, a, b, 0.055, 0.035), sdf.round_cone(p, b, c, 0.035, 0.006))
        result = horn if result is None else np.minimum(result, horn)
    return result


def _eye_angles(p: np.ndarray, eye: _Eye) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(horizontal angle, vertical angle, distance, local coords [N,3]) of points in the eye frame."""
    q = sdf.local(p, eye.centre, eye.frame)
    horizontal = np.arctan2(q[:, 0], q[:, 2])
    vertical = np.arctan2(q[:, 1], np.hypot(q[:, 2], q[:, 0]))
    return horizontal, vertical, np.linalg.norm(q, axis=1), q


def _opening_field(p: np.ndarray, eye: _Eye, params: HeadParams) -> np.ndarray:
    """Negative inside the almond-shaped cone of directions through which the eyeball shows."""
    horizontal, vertical, distance, q = _eye_angles(p, eye)
    angular = np.sqrt((horizontal / params.eye_wide) ** 2 + (vertical / params.eye_open) ** 2) - 1.0
    # Behind the eye centre the angles lose meaning; nothing there belongs to the opening.
    angular = np.where(q[:, 2] > 0.0, angular, 1.0)
    return angular * np.maximum(distance, eye.radius) * min(params.eye_open, params.eye_wide)


@dataclass
class _Fields:
    total: np.ndarray
    parts: dict[str, np.ndarray]


def _head_fields(p: np.ndarray, layout: _Layout, keep_parts: bool) -> _Fields:
    """The full skin field at [N, 3] points; with `keep_parts`, the part fields too (for regions)."""
    params = layout.params
    parts: dict[str, np.ndarray] = {}
    d = _base_field(p, params)
    if keep_parts:
        parts["base"] = d.copy()
    for side, _sign in (("L", 1.0), ("R", -1.0)):
        eye = layout.eyes[side]
        if params.brow_ridge > 0.0:
            ridge_centre = eye.centre + np.array([0.0, eye.radius * 1.1, eye.radius * 0.2])
            ridge = sdf.ellipsoid(p, ridge_centre, np.array([eye.radius * 1.5, params.brow_ridge, eye.radius * 1.1]))
            d = sdf.smooth_union(d, ridge, 0.05)
    nose = _nose_field(p, layout)
    if nose is not None:
        d = sdf.smooth_union(d, nose, 0.03 if params.nose_style != "human" else 0.02)
        if keep_parts:
            parts["nose"] = nose
    ears = None
    for side, sign in (("L", 1.0), ("R", -1.0)):
        if side in layout.ear_bases:
            ear = _ear_field(p, params, layout.ear_bases[side], layout.ear_tips[side], sign)
            d = sdf.smooth_union(d, ear, 0.035)
            ears = ear if ears is None else np.minimum(ears, ear)
            if keep_parts:
                parts[f"ear_{side}"] = ear
    horns = _horn_fields(p, params)
    if horns is not None:
        d = sdf.smooth_union(d, horns, 0.03)
        if keep_parts:
            parts["horns"] = horns
    if params.antenna:
        top = np.array([0.0, params.cranium_y + params.cranium[1] * 0.9, 0.0])
        rod = sdf.round_cone(p, top, top + np.array([0.0, 0.22, 0.0]), 0.018, 0.018)
        ball = sdf.sphere(p, top + np.array([0.0, 0.24, 0.0]), 0.045)
        d = sdf.smooth_union(d, np.minimum(rod, ball), 0.02)
        if keep_parts:
            parts["antenna"] = np.minimum(rod, ball)
    if params.lip_thickness > 0.0:
        for offset, _name in ((1.0, "lip_upper"), (-1.0, "lip_lower")):
            centre = np.array(
                [
                    0.0,
                    layout.mouth_y + offset * (layout.slit_height / 2 + params.lip_thickness * 0.7),
                    layout.mouth_front_z - params.lip_thickness * 0.9,
                ]
            )
            radii = np.array([layout.mouth_half_width * 0.95, params.lip_thickness * 1.1, params.lip_thickness * 1.6])
            d = sdf.smooth_union(d, sdf.ellipsoid(p, centre, radii), 0.02)
    # Eyes: a lid shell around each eyeball, an opening in it, and a hollow socket for the eyeball.
    for side in ("L", "R"):
        eye = layout.eyes[side]
        distance = np.linalg.norm(p - eye.centre, axis=1)
        forwardness = (p - eye.centre) @ eye.frame[2]
        shell = np.maximum(distance - eye.lid_outer, -(forwardness + 0.2 * eye.lid_outer))
        d = sdf.smooth_union(d, shell, 0.03)
        opening = _opening_field(p, eye, params)
        d = sdf.smooth_subtract(d, np.maximum(opening, eye.lid_inner * 0.5 - distance), 0.012)
        socket = distance - eye.lid_inner
        d = np.maximum(d, -socket)
        if keep_parts:
            parts[f"socket_{side}"] = socket
            parts[f"opening_{side}"] = opening
    # Mouth: a thin slit between the lips and a cavity behind them.
    slit = _slit_field(p, layout)
    cavity = sdf.ellipsoid(p, layout.cavity_centre, layout.cavity_radii)
    d = sdf.smooth_subtract(d, slit, 0.006)
    d = sdf.smooth_subtract(d, cavity, 0.02)
    if keep_parts:
        parts["slit"] = slit
        parts["cavity"] = cavity
    return _Fields(d, parts)


def _slit_field(p: np.ndarray, layout: _Layout) -> np.ndarray:
    """Negative in the gap between the lips: a slab around the mouth line, half-elliptic from above."""
    slab = np.abs(p[:, 1] - layout.mouth_y) - layout.slit_height / 2.0
    reach = max(layout.mouth_front_z - layout.mouth_corner_z, 0.05)
    ex = (p[:, 0] / layout.mouth_half_width) ** 2
    ez = ((p[:, 2] - layout.mouth_front_z - 0.3) / (reach + 0.3)) ** 2
    plan = (np.sqrt(ex + ez) - 1.0) * min(layout.mouth_half_width, reach + 0.3)
    return np.maximum(slab, plan)


# -- meshing ---------------------------------------------------------------------------------------


def _march(layout: _Layout, spacing: float, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes

    counts = np.ceil((high - low) / spacing).astype(int) + 1
    axes = [low[i] + spacing * np.arange(counts[i]) for i in range(3)]

    def evaluate(indices: tuple[np.ndarray, ...]) -> np.ndarray:
        points = np.stack([axes[0][indices[0]], axes[1][indices[1]], axes[2][indices[2]]], axis=1)
        out = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), 400_000):
            out[start : start + 400_000] = _head_fields(points[start : start + 400_000], layout, False).total
        return out

    # Narrow band: the field is sampled every `stride` points first; only fine points near where it
    # is small (with a wide margin, as some parts are bounds, not exact distances) are evaluated.
    stride = 3
    coarse_index = [np.arange(0, n, stride) for n in counts]
    mesh_index = np.meshgrid(*coarse_index, indexing="ij")
    coarse = evaluate(tuple(m.ravel() for m in mesh_index)).reshape(mesh_index[0].shape)
    near = ndimage.binary_dilation(np.abs(coarse) < 2.5 * stride * spacing, iterations=1)
    nearest = [
        np.minimum(np.rint(np.arange(n) / stride).astype(int), len(c) - 1)
        for n, c in zip(counts, coarse_index, strict=True)
    ]
    fine_near = near[np.ix_(*nearest)]
    values = coarse[np.ix_(*nearest)].astype(np.float32)
    band = np.nonzero(fine_near)
    values[band] = evaluate(band)
    # A sample exactly on the surface makes marching cubes emit coincident vertices (zero-area faces).
    values[np.abs(values) < 1e-7] = 1e-7
    # Padding with "outside" closes the surface even where the neck meets the grid's edge.
    padded = np.pad(values, 1, constant_values=1.0)
    vertices, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(spacing,) * 3, allow_degenerate=False)
    vertices = vertices - spacing + low
    # skimage orients faces with normals toward increasing values (outward here) only for some
    # layouts; fix_normals below makes them consistent and outward.
    return vertices.astype(np.float64), faces.astype(np.int64)


def _bounds(layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    low, high = np.array([-1.2, -1.1, -1.0]), np.array([1.2, 1.4, 1.5])
    spacing = 0.04
    axes = [np.arange(low[i], high[i] + spacing, spacing) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = grid[_head_fields(grid, layout, False).total < spacing]
    return inside.min(axis=0) - 2 * spacing, inside.max(axis=0) + 2 * spacing


def _skin_mesh(layout: _Layout, target_vertices: int) -> trimesh.Trimesh:
    low, high = _bounds(layout)
    coarse_spacing = 0.03
    vertices, _ = _march(layout, coarse_spacing, low, high)
    # Marching cubes' vertex count grows as 1 / spacing^2 for a fixed surface.
    spacing = coarse_spacing * math.sqrt(len(vertices) / target_vertices)
    vertices, faces = _march(layout, spacing, low, high)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces(height=1e-9))
    mesh.remove_unreferenced_vertices()
    # Keep only closed pieces: a sliver of lid can detach at coarse settings and would be noise.
    pieces = mesh.split(only_watertight=True)
    mesh = max(pieces, key=lambda m: len(m.vertices)) if len(pieces) else mesh
    mesh.fix_normals()
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=-0.53, iterations=6)
    return mesh


def _sphere_part(centre: np.ndarray, radii: np.ndarray, frame: np.ndarray, subdivisions: int) -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    vertices = (sphere.vertices * radii) @ frame + centre
    return trimesh.Trimesh(vertices, sphere.faces, process=False)


# -- UVs and texture ---------------------------------------------------------------------------------


def _neck_cut(vertices: np.ndarray, params: HeadParams, neck_bottom: float) -> float:
    """Height where the skin is cut for UVs: as high up the neck as the cut stays one clean loop
    around the neck alone (below the chin, jowls and anything hanging), because a harmonic map
    shrinks whatever lies beyond a long tube exponentially."""
    radial = np.hypot(vertices[:, 0], vertices[:, 2] + 0.11)
    others = vertices[radial > params.neck_radius * 1.45]
    lowest = float(others[:, 1].min()) if len(others) else neck_bottom + 0.2
    return float(np.clip(lowest - 0.03, neck_bottom + 0.03, neck_bottom + 0.35))


def _disk_uv(vertices: np.ndarray, faces: np.ndarray, cut_y: float, neck_bottom: float) -> np.ndarray:
    """[V, 2] UVs of the skin: the part above `cut_y` by Tutte's embedding onto a disk, the neck
    below it on a ring around the disk (polar: azimuth around the neck, distance down the neck)."""
    count = len(vertices)
    below = vertices[:, 1] < cut_y
    kept_faces = faces[~below[faces].all(axis=1)]
    edges = np.sort(np.concatenate([kept_faces[:, [0, 1]], kept_faces[:, [1, 2]], kept_faces[:, [2, 0]]]), axis=1)
    unique, edge_count = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(unique[edge_count == 1])
    centre_xz = vertices[below][:, [0, 2]].mean(axis=0) if below.any() else np.zeros(2)
    offsets = vertices[:, [0, 2]] - centre_xz
    azimuth = np.arctan2(offsets[:, 1], offsets[:, 0])
    uv = np.zeros((count, 2))
    uv[boundary] = _UV_DISK_RADIUS * np.stack([np.cos(azimuth[boundary]), np.sin(azimuth[boundary])], axis=1)
    # Uniform-weight Laplacian: with a convex boundary the solution cannot fold (Tutte).
    pairs = np.stack([kept_faces.ravel(), kept_faces[:, [1, 2, 0]].ravel()], axis=1)
    pairs = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)
    adjacency = sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    laplacian = (sp.diags(degree) - adjacency).tocsr()
    used = np.zeros(count, dtype=bool)
    used[kept_faces.ravel()] = True
    is_fixed = np.zeros(count, dtype=bool)
    is_fixed[boundary] = True
    free = np.nonzero(used & ~is_fixed)[0]
    fixed = np.nonzero(is_fixed)[0]
    system = laplacian[free][:, free].tocsc()
    rhs = -(laplacian[free][:, fixed] @ uv[fixed])
    solve = spla.factorized(system)
    uv[free, 0] = solve(np.ascontiguousarray(rhs[:, 0]))
    uv[free, 1] = solve(np.ascontiguousarray(rhs[:, 1]))
    # Tutte's map crowds the far side of the head into the disk's centre (the top of the head got 1/40
    # of its share of texels). A monotonic radial remap that gives each radius its share of surface
    # area keeps the map one-to-one and evens the texel density.
    corner_area = np.zeros(count)
    triangles = vertices[kept_faces]
    face_area = 0.5 * np.linalg.norm(
        np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
    )
    for corner in range(3):
        np.add.at(corner_area, kept_faces[:, corner], face_area / 3.0)
    inside = np.nonzero(used)[0]
    radius = np.linalg.norm(uv[inside], axis=1)
    order = np.argsort(radius)
    cumulative = np.cumsum(corner_area[inside][order])
    knots = np.linspace(0.0, 1.0, 257)[1:-1]
    knot_radius = np.interp(knots, cumulative / cumulative[-1], radius[order])
    source = np.concatenate([[0.0], knot_radius, [_UV_DISK_RADIUS]])
    target = _UV_DISK_RADIUS * np.sqrt(np.concatenate([[0.0], knots, [1.0]]))
    source = np.maximum.accumulate(source + np.arange(len(source)) * 1e-12)
    new_radius = np.interp(radius, source, target)
    uv[inside] *= (new_radius / np.maximum(radius, 1e-12))[:, None]
    # The neck below the cut: down the tube, then in across the bottom cap, mapped outward.
    neck = ~used
    if neck.any():
        rim_radius = float(np.linalg.norm(offsets[boundary], axis=1).mean()) if len(boundary) else 0.2
        rho = np.linalg.norm(offsets[neck], axis=1)
        depth = (cut_y - vertices[neck, 1]) + np.maximum(rim_radius - rho, 0.0)
        total = (cut_y - neck_bottom) + rim_radius
        radius = _UV_DISK_RADIUS + np.clip(depth / total, 0.0, 1.0) * _UV_CAP_RING
        uv[neck] = radius[:, None] * np.stack([np.cos(azimuth[neck]), np.sin(azimuth[neck])], axis=1)
    return uv + 0.5


def _sphere_uv(vertices: np.ndarray, centre: np.ndarray, frame: np.ndarray, corner: tuple[float, float]) -> np.ndarray:
    """Azimuthal map about the part's forward axis into a corner disk; the singular point is at the
    back, where it is never seen."""
    q = (vertices - centre) @ frame.T
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    polar = np.arccos(np.clip(q[:, 2], -1.0, 1.0)) / math.pi
    azimuth = np.arctan2(q[:, 1], q[:, 0])
    radius = polar * _UV_CORNER_RADIUS
    return np.stack([corner[0] + radius * np.cos(azimuth), corner[1] + radius * np.sin(azimuth)], axis=1)


def _rasterise_uv(uv: np.ndarray, faces: np.ndarray, values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate [V, 3] per-vertex `values` (0..1) over the triangles in UV space.

    Returns ([size, size, 3] float32 image with row 0 at v = 1, [size, size] bool coverage).
    """
    # The perspective rasteriser at depth 1 with identity intrinsics is an orthographic one.
    points = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size, np.ones(len(uv))], axis=1)
    image = render_mesh(points, faces, values.astype(np.float32), np.eye(3), np.eye(4), size, size, supersample=1)
    return image[..., :3], image[..., 3] > 0.5


def _fill_gaps(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Copy the nearest painted texel into unpainted ones, so filtering at chart edges stays clean."""
    if covered.all() or not covered.any():
        return image
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return image[rows, cols]


def _noise(points: np.ndarray, rng: np.random.Generator, scales: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Sum of random plane waves: smooth, isotropic-ish detail in -1..1 scaled by amplitudes."""
    total = np.zeros(len(points))
    for wavelength, amplitude in scales:
        directions = rng.normal(size=(4, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        phases = rng.uniform(0.0, 2.0 * math.pi, size=4)
        total += amplitude * np.sin(points @ directions.T * (2.0 * math.pi / wavelength) + phases).mean(axis=1)
    return total


# -- the whole head -----------------------------------------------------------------------------------


def build_head(
    params: HeadParams, seed: int = 0, *, target_vertices: int = TARGET_VERTICES, texture_size: int = TEXTURE_SIZE
) -> ProceduralHead:
    """Build the head for `params`; the same (params, seed) gives the same head, bit for bit.

    Returns a `ProceduralHead` whose mesh is in the normalised frame, with UVs, a [texture_size,
    texture_size, 3] texture, vertex colours sampled from it, and regions for every vertex.
    """
    import time

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    params = _jitter(params, rng)
    layout = _layout(params)
    skin = _skin_mesh(layout, target_vertices)
    skin_vertices = np.asarray(skin.vertices, dtype=np.float64)
    skin_faces = np.asarray(skin.faces, dtype=np.int64)

    parts: list[tuple[str, trimesh.Trimesh, np.ndarray, np.ndarray]] = []
    for side in ("L", "R"):
        eye = layout.eyes[side]
        ball = _sphere_part(eye.centre, np.full(3, eye.radius), eye.frame, _EYE_SUBDIVISIONS)
        parts.append((f"eyeball_{side}", ball, eye.centre, eye.frame))
    tongue_centre = layout.cavity_centre + np.array([0.0, -layout.cavity_radii[1] * 0.5, -layout.cavity_radii[2] * 0.1])
    tongue_radii = np.array([layout.cavity_radii[0] * 0.6, layout.cavity_radii[1] * 0.3, layout.cavity_radii[2] * 0.65])
    tongue_frame = np.eye(3)
    parts.append(("tongue", _sphere_part(tongue_centre, tongue_radii, tongue_frame, 3), tongue_centre, tongue_frame))

    vertices = [skin_vertices]
    faces = [skin_faces]
    offset = len(skin_vertices)
    part_ranges: dict[str, tuple[int, int]] = {}
    uvs = [
        _disk_uv(skin_vertices, skin_faces, _neck_cut(skin_vertices, params, layout.neck_bottom), layout.neck_bottom)
    ]
    for name, mesh, centre, frame in parts:
        part_ranges[name] = (offset, offset + len(mesh.vertices))
        vertices.append(np.asarray(mesh.vertices))
        faces.append(np.asarray(mesh.faces) + offset)
        uvs.append(_sphere_uv(np.asarray(mesh.vertices), centre, frame, _UV_CORNERS[name]))
        offset += len(mesh.vertices)
    all_vertices = np.concatenate(vertices)
    all_faces = np.concatenate(faces)
    uv = np.concatenate(uvs)

    regions = _regions(all_vertices, len(skin_vertices), part_ranges, layout, tongue_centre, tongue_radii)
    texture, vertex_colors = _paint(
        all_vertices, all_faces, uv, len(skin_vertices), part_ranges, layout, regions, rng, texture_size
    )

    # To the normalised frame: bounding-box centre at the origin, largest side 1.
    low, high = all_vertices.min(axis=0), all_vertices.max(axis=0)
    scale = 1.0 / float((high - low).max())
    shift = -(low + high) / 2.0 * scale
    normalised = all_vertices * scale + shift
    head_mesh = HeadMesh(
        vertices=normalised.astype(np.float32),
        faces=all_faces.astype(np.int32),
        uv=uv.astype(np.float32),
        texture=texture,
        vertex_colors=vertex_colors,
        to_source=np.eye(4),
        source=f"procedural:{params.archetype}",
    )
    return ProceduralHead(head_mesh, regions.transformed(scale, shift), params, time.perf_counter() - started)


def _jitter(params: HeadParams, rng: np.random.Generator) -> HeadParams:
    """Small seed-driven variation, so two characters from one prompt are siblings, not clones."""

    def vary(value: float, amount: float = 0.04) -> float:
        return float(value * (1.0 + rng.uniform(-amount, amount)))

    return params.with_changes(
        cranium=tuple(vary(r, 0.03) for r in params.cranium),
        snout_length=vary(params.snout_length, 0.06),
        ear_size=vary(params.ear_size, 0.06),
        eye_radius=vary(params.eye_radius, 0.04),
        eye_spacing=vary(params.eye_spacing, 0.03),
        nose_size=vary(params.nose_size, 0.06),
    )


def _regions(
    vertices: np.ndarray,
    skin_count: int,
    part_ranges: dict[str, tuple[int, int]],
    layout: _Layout,
    tongue_centre: np.ndarray,
    tongue_radii: np.ndarray,
) -> FaceRegions:
    """Per-vertex weights and landmarks in the design frame."""
    params = layout.params
    count = len(vertices)
    skin = np.zeros(count, dtype=bool)
    skin[:skin_count] = True
    fields = _head_fields(vertices, layout, True).parts
    weights: dict[str, np.ndarray] = {}
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    mouth_y = layout.mouth_y
    half_slit = layout.slit_height / 2.0
    # Jaw: below the mouth line, sharp at the lips, softening behind the mouth corners and toward the
    # neck so the cheeks stretch instead of tearing.
    behind = np.maximum(layout.mouth_corner_z - z, 0.0)
    band = half_slit + 0.5 * behind + 0.25 * np.maximum(np.abs(x) - layout.mouth_half_width, 0.0)
    jaw = sdf.smoothstep(mouth_y + half_slit, mouth_y - band, y)
    jaw *= sdf.smoothstep(layout.hinge[2] - 0.22, layout.hinge[2] + 0.05, z)
    jaw *= sdf.smoothstep(layout.neck_bottom + 0.05, mouth_y - 0.12, y) * 0.6 + 0.4 * (y > mouth_y - 0.2)
    weights["jaw"] = np.where(skin, jaw, 0.0)
    cavity = fields["cavity"]
    slit = fields["slit"]
    mouth_inner = skin & (
        (np.abs(cavity) < 0.012) | (slit > -0.004) & (slit < 0.006) & (np.abs(y - mouth_y) < half_slit + 0.01)
    )
    weights["mouth_inner"] = mouth_inner.astype(np.float64)
    # Lips: around the mouth line near the front, fading over a lip's height.
    lip_reach = 0.05 + params.lip_thickness
    near_line = np.exp(-(((y - mouth_y) / lip_reach) ** 2))
    in_front = sdf.smoothstep(layout.mouth_corner_z - 0.04, layout.mouth_corner_z + 0.04, z)
    lateral = sdf.smoothstep(layout.mouth_half_width * 1.2, layout.mouth_half_width * 0.6, np.abs(x))
    lips = np.where(skin, near_line * in_front * lateral, 0.0)
    weights["lip_upper"] = lips * (y >= mouth_y)
    weights["lip_lower"] = lips * (y < mouth_y)
    corner_x = _corner_x(layout)
    corners = {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        corner = np.array([sign * corner_x, mouth_y, _surface_z(params, sign * corner_x * 0.92, mouth_y + 0.03)])
        corners[side] = corner
        distance = np.linalg.norm(vertices - corner, axis=1)
        reach = 0.06 + 0.1 * params.mouth_width
        weights[f"mouth_corner_{side}"] = np.where(skin, np.exp(-((distance / reach) ** 2)), 0.0)
    for side in ("L", "R"):
        eye = layout.eyes[side]
        _, vertical, distance, q = _eye_angles(vertices, eye)
        # Lids: the skin over the eye, up to ~0.9 rad past the opening, fading with distance.
        lid_fade = sdf.smoothstep(eye.lid_outer * 2.2, eye.lid_outer * 1.05, distance)
        front = q[:, 2] > -0.3 * eye.lid_outer
        upper = sdf.smoothstep(params.eye_open + 1.0, params.eye_open + 0.05, vertical) * (vertical > 0.0)
        lower = sdf.smoothstep(-params.eye_open - 0.8, -params.eye_open - 0.05, vertical) * (vertical <= 0.0)
        # The socket wall behind the eyeball stays put.
        lid_mask = skin & front & ~((np.abs(fields[f"socket_{side}"]) < 0.004) & (q[:, 2] < eye.radius * 0.2))
        weights[f"lid_upper_{side}"] = np.where(lid_mask, upper * lid_fade, 0.0)
        weights[f"lid_lower_{side}"] = np.where(lid_mask, lower * lid_fade, 0.0)
        start, end = part_ranges[f"eyeball_{side}"]
        ball = np.zeros(count)
        ball[start:end] = 1.0
        weights[f"eyeball_{side}"] = ball
        brow = layout.brow_centres[side]
        weights[f"brow_{side}"] = np.where(
            skin,
            np.exp(
                -np.sum(
                    ((vertices - brow) / np.array([eye.radius * 2.2, eye.radius * 1.2, eye.radius * 2.5])) ** 2, axis=1
                )
            ),
            0.0,
        ) * (1.0 - weights[f"lid_upper_{side}"] * 0.5)
        cheek = layout.cheek_centres[side]
        weights[f"cheek_{side}"] = np.where(skin, np.exp(-np.sum(((vertices - cheek) / 0.09) ** 2, axis=1)), 0.0)
    nose_distance = np.linalg.norm(vertices - layout.nose_tip, axis=1)
    nose_reach = max(params.nose_size * 2.5, 0.06)
    weights["nose"] = np.where(skin, np.exp(-((nose_distance / nose_reach) ** 2)), 0.0)
    for side in ("L", "R"):
        if f"ear_{side}" in fields:
            ear = fields[f"ear_{side}"]
            base = layout.ear_bases[side]
            along = (vertices - base) @ ((layout.ear_tips[side] - base) / np.linalg.norm(layout.ear_tips[side] - base))
            weights[f"ear_{side}"] = np.where(skin & (ear < 0.02), sdf.smoothstep(-0.02, 0.06, along), 0.0)
        else:
            weights[f"ear_{side}"] = np.zeros(count)
    tongue = np.zeros(count)
    start, end = part_ranges["tongue"]
    tongue[start:end] = 1.0
    weights["tongue"] = tongue
    weights["jaw"] = np.maximum(weights["jaw"], tongue)

    landmarks = {
        "jaw_hinge": layout.hinge,
        "jaw_axis": np.array([1.0, 0.0, 0.0]),
        "mouth_center": np.array([0.0, mouth_y, layout.mouth_front_z]),
        "mouth_corner_L": corners["L"],
        "mouth_corner_R": corners["R"],
        "nose_tip": layout.nose_tip,
        "tongue_tip": tongue_centre + np.array([0.0, 0.0, tongue_radii[2]]),
    }
    for side in ("L", "R"):
        eye = layout.eyes[side]
        landmarks[f"eye_center_{side}"] = eye.centre
        landmarks[f"eye_forward_{side}"] = eye.frame[2]
        landmarks[f"brow_center_{side}"] = layout.brow_centres[side]
        landmarks[f"cheek_center_{side}"] = layout.cheek_centres[side]
        default_base = eye.centre + np.array([0.0, 0.25, -0.2])
        landmarks[f"ear_base_{side}"] = layout.ear_bases.get(side, default_base)
        landmarks[f"ear_tip_{side}"] = layout.ear_tips.get(side, default_base + np.array([0.0, 0.1, 0.0]))
    eye = layout.eyes["L"]
    scalars = {
        "eye_radius": eye.radius,
        "lid_radius": eye.lid_inner,
        "eye_open": params.eye_open,
        "eye_wide": params.eye_wide,
        "jaw_open_angle": 0.38 if params.snout_length > 0.15 else 0.30,
        "slit_height": layout.slit_height,
        "scale": float(abs(params.eye_y - mouth_y) + 0.1),
    }
    return FaceRegions(
        weights={name: np.clip(value, 0.0, 1.0).astype(np.float32) for name, value in weights.items()},
        landmarks={name: np.asarray(value, dtype=np.float64) for name, value in landmarks.items()},
        scalars=scalars,
    )


def _corner_x(layout: _Layout) -> float:
    """Half the mouth's width where the slit leaves the skin (the mouth corners)."""
    params = layout.params
    if params.snout_length > 0.05:
        return float(max(params.snout_width * 0.85, 0.1))
    return float(layout.mouth_half_width * 0.8)


def _paint(
    vertices: np.ndarray,
    faces: np.ndarray,
    uv: np.ndarray,
    skin_count: int,
    part_ranges: dict[str, tuple[int, int]],
    layout: _Layout,
    regions: FaceRegions,
    rng: np.random.Generator,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The colour texture [size, size, 3] uint8 and [V, 3] uint8 vertex colours sampled from it."""
    params = layout.params
    base = _base_colours(vertices, skin_count, part_ranges, layout, regions)
    # Triangles whose UVs spread wide are the few around each chart's singular point; leaving them out
    # keeps them from painting over the charts (they sit where nobody looks).
    spread = np.ptp(uv[faces], axis=1).max(axis=1)
    paintable = faces[spread < 0.05]
    colour, covered = _rasterise_uv(uv, paintable, np.clip(base, 0.0, 1.0), size)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    position_values = (vertices - low) / (high - low).max()
    position, _ = _rasterise_uv(uv, paintable, position_values, size)
    points = position.reshape(-1, 3) * (high - low).max() + low
    detail = _detail(points, params, rng).reshape(size, size, 1)
    image = np.clip(colour * detail, 0.0, 1.0)
    image = _paint_eyes(image, params)
    image = _fill_gaps(image, covered)
    texture = (image * 255.0 + 0.5).astype(np.uint8)
    vertex_colors = sample_texture(texture, uv)
    return texture, vertex_colors


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples [V, 3] uint8 of a [H, W, 3] texture at [V, 2] UVs (v up)."""
    height, width = texture.shape[:2]
    x = np.clip(uv[:, 0] * width - 0.5, 0, width - 1)
    y = np.clip((1.0 - uv[:, 1]) * height - 0.5, 0, height - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    t = texture.astype(np.float64)
    top = t[y0, x0] * (1 - fx) + t[y0, x1] * fx
    bottom = t[y1, x0] * (1 - fx) + t[y1, x1] * fx
    return np.clip(top * (1 - fy) + bottom * fy + 0.5, 0, 255).astype(np.uint8)


def _base_colours(
    vertices: np.ndarray,
    skin_count: int,
    part_ranges: dict[str, tuple[int, int]],
    layout: _Layout,
    regions: FaceRegions,
) -> np.ndarray:
    """[V, 3] albedo in 0..1 before texture detail."""
    params = layout.params
    count = len(vertices)
    fur = np.array(params.fur)
    light = np.array(params.fur_light)
    skin_colour = np.array(params.skin)
    colours = np.tile(fur, (count, 1))
    y, z = vertices[:, 1], vertices[:, 2]
    fields = _head_fields(vertices, layout, True).parts
    # Lighter muzzle, chin and throat, as most furred animals have.
    if params.pattern in ("fur", "feathers", "scales"):
        muzzle = sdf.smoothstep(layout.mouth_y + 0.06, layout.mouth_y - 0.04, y) * sdf.smoothstep(-0.15, 0.05, z)
        if params.snout_length > 0.05:
            muzzle = np.maximum(
                muzzle,
                sdf.smoothstep(params.cranium[2] * 0.55, params.cranium[2] * 0.95, z)
                * sdf.smoothstep(params.snout_y + 0.05, params.snout_y - 0.06, y),
            )
        if params.archetype in ("owl", "monkey"):
            face = np.zeros(count)
            for side in ("L", "R"):
                eye = layout.eyes[side]
                face = np.maximum(
                    face,
                    sdf.smoothstep(
                        eye.radius * 2.6, eye.radius * 1.8, np.linalg.norm((vertices - eye.centre)[:, :2], axis=1)
                    )
                    * (z > 0.1),
                )
            muzzle = np.maximum(muzzle, face)
        colours = colours * (1 - muzzle[:, None]) + light * muzzle[:, None]
    if params.pattern == "skin" and params.archetype == "human":
        cheeks = regions.weight("cheek_L") + regions.weight("cheek_R")
        colours = colours * (1 - 0.25 * cheeks[:, None]) + np.array([0.85, 0.45, 0.42]) * 0.25 * cheeks[:, None]
    if params.archetype == "frog":
        belly = sdf.smoothstep(layout.mouth_y + 0.02, layout.mouth_y - 0.06, y)
        colours = colours * (1 - belly[:, None]) + light * belly[:, None]
    if params.archetype == "human":
        # Hair on the crown and back of the head.
        hair = sdf.smoothstep(params.eye_y + 0.2, params.eye_y + 0.26, y + 0.35 * np.maximum(-z, 0.0)) * (
            fields["base"] < 0.01
        )
        hair_colour = np.array(params.extras.get("hair", (0.25, 0.16, 0.10)))
        colours = colours * (1 - hair[:, None]) + hair_colour * hair[:, None]
    # Lips, nose, inner ears.
    if params.lip_thickness > 0.0:
        lips = (regions.weight("lip_upper") + regions.weight("lip_lower")) * np.exp(
            -(((y - layout.mouth_y) / (params.lip_thickness * 1.8)) ** 2)
        )
        lips = np.clip(lips * 1.3, 0.0, 1.0)
        colours = colours * (1 - lips[:, None]) + skin_colour * lips[:, None]
    if "nose" in fields and params.nose_style in ("button", "beak", "robot"):
        nose = sdf.smoothstep(0.012, -0.004, fields["nose"])
        colours = colours * (1 - nose[:, None]) + skin_colour * nose[:, None]
    for side in ("L", "R"):
        key = f"ear_{side}"
        if key in fields and params.ear_style in ("pointed", "round", "long", "human", "floppy"):
            ear_weight = regions.weight(key)
            base = layout.ear_bases[side]
            tip = layout.ear_tips[side]
            frame = _rotation_towards(
                tip - base,
                np.array([0.0, 0.0, 1.0]) if params.ear_style != "human" else np.array([np.sign(base[0]), 0.0, 0.3]),
            )
            front = (vertices - base) @ frame[2]
            inner = ear_weight * sdf.smoothstep(0.0, 0.02, front) * (params.ear_style != "floppy")
            inner_colour = skin_colour if params.archetype not in ("dog", "wolf", "bear") else fur * 0.6
            colours = colours * (1 - inner[:, None]) + inner_colour * inner[:, None]
            if params.archetype == "fox":
                tip_dark = ear_weight * sdf.smoothstep(
                    0.55, 0.8, ((vertices - base) @ ((tip - base) / np.linalg.norm(tip - base))) / params.ear_size
                )
                colours = colours * (1 - tip_dark[:, None]) + np.array([0.12, 0.08, 0.06]) * tip_dark[:, None]
    if "horns" in fields:
        horn = sdf.smoothstep(0.01, -0.005, fields["horns"])
        colours = colours * (1 - horn[:, None]) + np.array([0.88, 0.82, 0.66]) * horn[:, None]
    if "antenna" in fields:
        antenna = sdf.smoothstep(0.008, -0.004, fields["antenna"]) * (y > params.cranium_y + params.cranium[1] * 1.0)
        colours = colours * (1 - antenna[:, None]) + np.array([0.95, 0.25, 0.15]) * antenna[:, None]
    # Inside the mouth and the eye sockets: dark, so an opening jaw reads as a mouth.
    inner = regions.weight("mouth_inner")
    colours = colours * (1 - inner[:, None]) + np.array([0.42, 0.10, 0.12]) * inner[:, None]
    for side in ("L", "R"):
        eye = layout.eyes[side]
        distance = np.linalg.norm(vertices - eye.centre, axis=1)
        socket = (distance < eye.lid_inner + 0.006) & (np.arange(count) < skin_count)
        colours[socket] = np.array([0.25, 0.12, 0.12])
        # A dark lid margin: it reads as lashes and outlines the eye.
        margin = (
            np.exp(-((fields[f"opening_{side}"] / 0.008) ** 2))
            * (distance < eye.lid_outer + 0.02)
            * (distance > eye.lid_inner)
        )
        colours = colours * (1 - 0.8 * margin[:, None]) + np.array([0.08, 0.06, 0.05]) * 0.8 * margin[:, None]
    colours[skin_count:] = 0.0  # eyeballs and tongue are painted per texel / below
    start, end = part_ranges["tongue"]
    colours[start:end] = np.array([0.85, 0.40, 0.45])
    for side in ("L", "R"):
        start, end = part_ranges[f"eyeball_{side}"]
        colours[start:end] = np.array([0.95, 0.95, 0.93])
    return colours


def _detail(points: np.ndarray, params: HeadParams, rng: np.random.Generator) -> np.ndarray:
    """Per-texel brightness factors [N] around 1: fur, scales, skin pores, metal panels, feathers."""
    pattern = params.pattern
    if pattern == "fur":
        factor = 1.0 + _noise(points, rng, ((0.25, 0.10), (0.06, 0.08), (0.015, 0.10)))
    elif pattern == "feathers":
        factor = 1.0 + _noise(points, rng, ((0.2, 0.08), (0.05, 0.06)))
        scallop = np.sin(points[:, 1] * 90.0 + 6.0 * np.sin(points[:, 0] * 40.0))
        factor *= 1.0 - 0.12 * (scallop > 0.6)
    elif pattern == "scales":
        from scipy.spatial import cKDTree

        seeds = rng.uniform(points.min(axis=0), points.max(axis=0), size=(6000, 3))
        distances, _ = cKDTree(seeds).query(points, k=2)
        edge = distances[:, 1] - distances[:, 0]
        factor = 1.0 + _noise(points, rng, ((0.3, 0.08),)) - 0.28 * np.exp(-((edge / 0.006) ** 2))
    elif pattern == "metal":
        factor = 1.0 + _noise(points, rng, ((0.5, 0.04),))
        seams = (np.abs(np.sin(points[:, 1] * 18.0)) < 0.05) | (np.abs(np.sin(points[:, 0] * 14.0 + 0.7)) < 0.04)
        factor = factor - 0.3 * seams
    else:  # skin
        factor = 1.0 + _noise(points, rng, ((0.3, 0.05), (0.05, 0.03), (0.012, 0.03)))
    return np.clip(factor, 0.4, 1.5)


def _paint_eyes(image: np.ndarray, params: HeadParams) -> np.ndarray:
    """Iris, pupil and highlight in the eyeball charts (concentric around each chart's centre)."""
    size = image.shape[0]
    rows, cols = np.mgrid[0:size, 0:size]
    u = (cols + 0.5) / size
    v = 1.0 - (rows + 0.5) / size
    iris_colour = np.array(params.iris)
    for name in ("eyeball_L", "eyeball_R"):
        cu, cv = _UV_CORNERS[name]
        du, dv = (u - cu) / _UV_CORNER_RADIUS, (v - cv) / _UV_CORNER_RADIUS
        polar = np.hypot(du, dv) * math.pi  # angle from the eye's forward axis
        chart = polar < math.pi * 0.999
        iris_angle = min(params.eye_open, params.eye_wide) * 0.95 + 0.12
        pupil_angle = iris_angle * 0.45
        iris = chart & (polar < iris_angle)
        ring = np.clip(1.0 - polar / iris_angle, 0.0, 1.0)
        image[iris] = iris_colour * (0.55 + 0.6 * ring[iris, None])
        limbal = chart & (polar >= iris_angle * 0.9) & (polar < iris_angle)
        image[limbal] = iris_colour * 0.35
        if params.pupil == "slit":
            pupil = chart & (np.hypot(du * math.pi / 0.32, dv * math.pi) < pupil_angle * 1.6)
        elif params.pupil == "screen":
            pupil = chart & (np.abs(du) * math.pi < pupil_angle * 0.5) & (np.abs(dv) * math.pi < pupil_angle * 1.3)
        else:
            pupil = chart & (polar < pupil_angle)
        image[pupil] = 0.03 if params.pupil != "screen" else np.array([0.9, 1.0, 1.0])
        highlight = chart & (np.hypot(du * math.pi + 0.12, dv * math.pi - 0.14) < 0.06)
        image[highlight] = 1.0
    return image
