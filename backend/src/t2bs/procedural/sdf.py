"""Signed distance fields for the procedural head (pure numpy; negative inside).

Every function takes points `p` as [N, 3] float arrays and returns [N] distances in the same units.
Some shapes (ellipsoids, scaled cones, angular cones) return a bound rather than the exact distance;
marching cubes only needs a smooth field whose zero set is the surface and whose gradient is about 1
near it, which these give.
"""

from __future__ import annotations

import numpy as np


def sphere(p: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Distance to a sphere. centre [3], radius in units."""
    return np.linalg.norm(p - centre, axis=1) - radius


def ellipsoid(p: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Approximate distance to an axis-aligned ellipsoid (the k0 * (k0 - 1) / k1 bound, good near it)."""
    q = (p - centre) / radii
    k0 = np.linalg.norm(q, axis=1)
    k1 = np.linalg.norm(q / radii, axis=1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def local(p: np.ndarray, origin: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Points in a local frame whose axes are the rows of `rotation` [3, 3], centred at `origin`."""
    return (p - origin) @ rotation.T


def round_cone(p: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Distance to a capsule whose radius goes linearly from `ra` at `a` to `rb` at `b` (a bound for
    very different radii, exact for a capsule)."""
    ab = b - a
    length_sq = float(ab @ ab)
    t = np.clip(((p - a) @ ab) / max(length_sq, 1e-12), 0.0, 1.0)
    closest = a + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + (rb - ra) * t)


def round_box(p: np.ndarray, centre: np.ndarray, half: np.ndarray, radius: float) -> np.ndarray:
    """Distance to an axis-aligned box with half sizes `half` [3] and edges rounded by `radius`."""
    q = np.abs(p - centre) - (half - radius)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside - radius


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: the union of two shapes with a fillet of about `k` units."""
    if k <= 0.0:
        return np.minimum(a, b)
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smooth_subtract(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """`a` with `b` carved out, the cut edge rounded by about `k` units."""
    return -smooth_union(-a, b, k)


def smooth_intersect(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Intersection of `a` and `b` with a rounded edge of about `k` units."""
    return -smooth_union(-a, -b, k)


def smoothstep(edge0: float | np.ndarray, edge1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at `edge0` to 1 at `edge1` (either order), C1-smooth, clamped."""
    t = np.clip((x - edge0) / (np.asarray(edge1) - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
