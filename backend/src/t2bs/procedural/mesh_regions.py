"""Facial regions of an arbitrary head mesh from a few named landmarks (pure numpy, no MediaPipe).

`regions_from_landmarks(vertices, faces, points)` builds the `FaceRegions` that
`t2bs.procedural.performance.deform` acts with, for a mesh that only knows where its eyes, mouth, nose
and chin are (the points of `t2bs.procedural.face_landmarks`, in the normalised frame: +Y up, the face
toward +Z, +X the character's left). What the points do not give comes from human proportions,
measured in two lengths of the face: the eye width `W` (corner to corner) and the eye-to-mouth
distance `s` (`scalars["scale"]`).

* Parts. The largest connected piece of the mesh (and any piece at least a third its size) is skin.
  Smaller pieces that are near-spheres in front of an eye are that eyeball (its sphere gives the eye's
  centre and radius; without one both are estimated from the eyelids). The other pieces carry no lip,
  cheek, brow or nose weight, and the small ones (a tooth, a row of lashes) move rigidly: each takes
  the mean of its vertices' jaw and eyelid weights, so a tooth follows the jaw whole.
* Jaw: a rotation about an X axis through `jaw_hinge` (given, or `0.45 s` above the mouth line and
  `1.2 s` behind the mouth corners, where an adult's jaw joint sits). The weight is 1 below the mouth
  line, split sharply between the lips and softening behind the mouth corners and toward the ears, and
  fades under the chin so the neck stays.
* Lids: skin around each eye's opening, 1 at the lid margins and fading over ~0.9 rad above (0.6 rad
  below) the opening and beyond ~2 eye radii from the eye's centre. Without an eyelid shell the lids
  turn about the eye's centre like the procedural heads' lids; what lies inside the opening (the
  eyeball's surface of a one-piece mesh) stays.
* Lips: the lip heights above and below the mouth line, between the mouth corners; corners, brows,
  cheeks and nose: smooth bumps around their points. Every bump reaches exactly zero at a finite
  distance, so no act moves the far side of the face at all.
* Ears and tongue stay empty (a mesh gives no sign of them); their landmarks are set where they do no harm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from .regions import WEIGHT_NAMES, FaceRegions
from .sdf import smoothstep

FORWARD = np.array([0.0, 0.0, 1.0])
UP = np.array([0.0, 1.0, 0.0])
JAW_OPEN_ANGLE = 0.35  # radians at full jawOpen: a wide human yawn
# Skin pieces: at least this fraction of the largest piece's vertex count.
SKIN_PIECE_FRACTION = 1.0 / 3.0
# An eyeball piece: its vertices' distances to the fitted centre vary by at most this fraction ...
SPHERE_TOLERANCE = 0.12
# ... its radius lies in this range (in eye widths) and its centre within this many eye widths of the eye.
EYEBALL_RADIUS_RANGE = (0.25, 0.9)
EYEBALL_CENTRE_REACH = 0.8
# Human proportions (the module docstring's W and s) for the points a landmark set may leave out.
EYE_RADIUS_PER_WIDTH = 0.45
EYE_OPEN_DEFAULT = 0.45  # radians
HINGE_ABOVE_MOUTH = 0.45  # of s
HINGE_BEHIND_CORNERS = 1.2  # of s
UPPER_LID_REACH = 2.0 / 1.3  # the `eye_open` scalar over the opening's true half-angle (see the scalars)
LOWER_LID_SHARE = 0.5  # lower lids rise little in a blink: their weight's peak
# Non-skin pieces up to this fraction of the vertices move rigidly (a tooth, a lash row).
RIGID_PIECE_FRACTION = 0.02
# Weights only skin carries (not teeth, tongue, lashes, eyeballs).
SKIN_ONLY = (
    "lip_upper",
    "lip_lower",
    "mouth_corner_L",
    "mouth_corner_R",
    "brow_L",
    "brow_R",
    "cheek_L",
    "cheek_R",
    "nose",
)


@dataclass
class _Eye:
    outer: np.ndarray
    inner: np.ndarray
    width: float
    centre: np.ndarray
    radius: float
    open_angle: float  # vertical half-angle of the opening seen from the centre
    wide_angle: float  # horizontal half-angle of the opening
    brow: np.ndarray
    cheek: np.ndarray


@dataclass
class _Mouth:
    centre: np.ndarray  # between the lips
    corners: dict[str, np.ndarray]
    half_width: float
    lip_top: np.ndarray
    lip_bottom: np.ndarray
    upper_height: float  # of the upper lip above the centre
    lower_height: float


@dataclass
class _Surface:
    """The mesh's connectivity, welded across seams (OBJ and glTF split vertices along UV seams)."""

    labels: np.ndarray  # [V] connected piece of each vertex
    skin: np.ndarray  # [V] bool: on a skin piece
    pieces: list[np.ndarray]  # vertex indices of each non-skin piece
    graph: csr_matrix  # [V', V'] edge lengths between welded vertices
    welded: np.ndarray  # [V] welded vertex of each vertex


def regions_from_landmarks(vertices: np.ndarray, faces: np.ndarray, points: dict[str, np.ndarray]) -> FaceRegions:
    """Facial regions of a head mesh from its named landmarks.

    Args:
        vertices: [V, 3] positions in the normalised frame.
        faces: [F, 3] vertex indices (for the mesh's connected pieces and distances along it).
        points: name -> [3] point in the same frame, at least `face_landmarks.REQUIRED_POINTS`; the
            optional ones (`face_landmarks.OPTIONAL_POINTS`) sharpen the result.

    Returns:
        `FaceRegions` with every name of `regions.WEIGHT_NAMES` and `regions.LANDMARK_NAMES`.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    p = {name: np.asarray(value, dtype=np.float64) for name, value in points.items()}
    surface = _surface(vertices, faces)
    mouth = _mouth(p)
    eye_level = np.mean([p[f"eye_{part}_{side}"] for part in ("outer", "inner") for side in "LR"], axis=0)
    scale = max(float(np.linalg.norm(eye_level - mouth.centre)), 1e-6)
    corners_mid = (mouth.corners["L"] + mouth.corners["R"]) / 2.0
    hinge = p.get("jaw_hinge")
    if hinge is None:
        hinge = np.array(
            [
                mouth.centre[0],
                corners_mid[1] + HINGE_ABOVE_MOUTH * scale,
                corners_mid[2] - HINGE_BEHIND_CORNERS * scale,
            ]
        )
    eyes = {side: _eye(side, p, vertices, surface) for side in "LR"}

    weights: dict[str, np.ndarray] = {name: np.zeros(len(vertices)) for name in WEIGHT_NAMES}
    # Which lip each vertex goes with: the lips' inner surfaces curl behind each other, so no plane
    # splits them; near the mouth a vertex goes with the lip it is nearer to along the surface.
    lower_lip_side = _nearer_to_second(vertices, surface, mouth.lip_top, mouth.lip_bottom)
    by_plane = np.isnan(lower_lip_side)  # pieces the lips do not reach (teeth)
    lower_lip_side[by_plane] = vertices[by_plane, 1] < _mouth_line(vertices[by_plane, 0], mouth)
    weights["jaw"] = _jaw(vertices, surface, mouth, lower_lip_side, hinge, p["chin"], scale)
    weights["lip_upper"], weights["lip_lower"] = _lips(vertices, mouth, lower_lip_side)
    for side, corner in mouth.corners.items():
        weights[f"mouth_corner_{side}"] = _bump(vertices, corner, np.full(3, 1.4 * mouth.half_width))
    for side, eye in eyes.items():
        upper_lid, lower_lid = _lids(vertices, eye)
        weights[f"lid_upper_{side}"] = upper_lid
        weights[f"lid_lower_{side}"] = lower_lid
        brow = _bump(vertices, eye.brow, eye.width * np.array([1.2, 0.6, 1.0]))
        weights[f"brow_{side}"] = brow * (1.0 - 0.5 * upper_lid)
        weights[f"cheek_{side}"] = _bump(vertices, eye.cheek, np.full(3, 1.2 * eye.width))
    weights["nose"] = _bump(vertices, p["nose_tip"], np.full(3, 0.5 * scale))

    # Pieces: eyeballs turn whole and nothing else; other pieces only open with the jaw and close
    # with the lids, the small ones rigidly.
    for name in SKIN_ONLY:
        weights[name] = np.where(surface.skin, weights[name], 0.0)
    for piece in surface.pieces:
        if len(piece) <= RIGID_PIECE_FRACTION * len(vertices):
            for name in ("jaw", "lid_upper_L", "lid_lower_L", "lid_upper_R", "lid_lower_R"):
                weights[name][piece] = weights[name][piece].mean()
    eyeballs = {side: _eyeball_mask(eyes[side], vertices, surface) for side in "LR"}
    for name in weights:
        weights[name][eyeballs["L"] | eyeballs["R"]] = 0.0
    for side in "LR":
        weights[f"eyeball_{side}"] = eyeballs[side].astype(np.float64)

    landmarks = {
        "jaw_hinge": hinge,
        "jaw_axis": np.array([1.0, 0.0, 0.0]),
        "mouth_center": mouth.centre,
        "mouth_corner_L": mouth.corners["L"],
        "mouth_corner_R": mouth.corners["R"],
        "nose_tip": p["nose_tip"],
        "tongue_tip": mouth.centre - FORWARD * 0.3 * scale,
    }
    for side, eye in eyes.items():
        sign = 1.0 if side == "L" else -1.0
        landmarks[f"eye_center_{side}"] = eye.centre
        landmarks[f"eye_forward_{side}"] = FORWARD.copy()
        landmarks[f"brow_center_{side}"] = eye.brow
        landmarks[f"cheek_center_{side}"] = eye.cheek
        # No ear weights, so these only need to be sensible: beside the head at the hinge.
        ear_base = np.array([eye.outer[0] + sign * eye.width, hinge[1] + 0.3 * scale, hinge[2]])
        landmarks[f"ear_base_{side}"] = ear_base
        landmarks[f"ear_tip_{side}"] = ear_base + UP * 0.4 * scale
    eye_radius = float(np.mean([eye.radius for eye in eyes.values()]))
    scalars = {
        "eye_radius": eye_radius,
        "lid_radius": 1.1 * eye_radius,
        # `deform` closes an eye by turning the upper lid 1.3 and the lower 0.7 half-openings; scaled
        # so, the upper lid alone reaches the lower lid's margin, as a human's does in a blink. That
        # also hides a cornea that bulges past the lower lid's skin (no eyelid shell to slide over it).
        "eye_open": UPPER_LID_REACH * float(np.mean([eye.open_angle for eye in eyes.values()])),
        "eye_wide": float(np.mean([eye.wide_angle for eye in eyes.values()])),
        "jaw_open_angle": JAW_OPEN_ANGLE,
        "slit_height": 0.0,  # the lips are split by the surface between them, not by a slit
        "scale": scale,
    }
    return FaceRegions(
        weights={name: np.clip(value, 0.0, 1.0).astype(np.float32) for name, value in weights.items()},
        landmarks={name: np.asarray(value, dtype=np.float64) for name, value in landmarks.items()},
        scalars=scalars,
    )


def _mouth(p: dict[str, np.ndarray]) -> _Mouth:
    corners = {"L": p["mouth_corner_L"], "R": p["mouth_corner_R"]}
    centre = p.get("mouth_center", (corners["L"] + corners["R"]) / 2.0)
    half_width = max(float(np.linalg.norm(corners["L"] - corners["R"])) / 2.0, 1e-6)
    # Without the lip edges: an adult's lips are each about a third of the mouth's half width high.
    lip_top = p.get("lip_top", centre + UP * 0.35 * half_width + FORWARD * 0.1 * half_width)
    lip_bottom = p.get("lip_bottom", centre - UP * 0.4 * half_width + FORWARD * 0.05 * half_width)
    upper_height = max(float(lip_top[1] - centre[1]), 0.1 * half_width)
    lower_height = max(float(centre[1] - lip_bottom[1]), 0.1 * half_width)
    return _Mouth(centre, corners, half_width, lip_top, lip_bottom, upper_height, lower_height)


def _jaw(
    vertices: np.ndarray,
    surface: _Surface,
    mouth: _Mouth,
    lower_lip_side: np.ndarray,
    hinge: np.ndarray,
    chin: np.ndarray,
    scale: float,
) -> np.ndarray:
    """[V] how much of the jaw's rotation each vertex takes (module docstring); `lower_lip_side` [V] is
    1 for vertices that go with the lower lip, 0 for the upper."""
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    corners_mid = (mouth.corners["L"] + mouth.corners["R"]) / 2.0
    across = np.abs(x - mouth.centre[0])
    line_y = _mouth_line(x, mouth)
    # The split is sharp between the lips and inside the mouth, and softens out on the cheeks (beside
    # and behind the corners) so that they stretch instead of tearing.
    behind = np.maximum(corners_mid[2] - z, 0.0)
    beside = np.maximum(across - mouth.half_width, 0.0)
    on_cheek = smoothstep(0.8 * mouth.half_width, 1.3 * mouth.half_width, across)
    band = np.where(surface.skin, 0.03 * scale + (0.45 * behind + 0.3 * beside) * on_cheek, 0.05 * scale)
    below = smoothstep(line_y, line_y - band, y)
    # Around the mouth, the lip each vertex goes with decides.
    near_mouth = smoothstep(1.3 * mouth.half_width, 1.0 * mouth.half_width, across) * (z > hinge[2])
    near_mouth *= smoothstep(2.0 * mouth.lower_height, 1.5 * mouth.lower_height, line_y - y)
    near_mouth *= smoothstep(2.0 * mouth.upper_height, 1.5 * mouth.upper_height, y - line_y)
    below += near_mouth * (lower_lip_side - below)
    # In front of the hinge, and above the neck (the skin under the chin stretches).
    in_front = smoothstep(hinge[2], corners_mid[2] - 0.2 * scale, z)
    above_neck = smoothstep(chin[1] - 0.5 * scale, chin[1] + 0.05 * scale, y)
    return below * np.where(surface.skin, in_front * above_neck, 1.0)


def _mouth_line(x: np.ndarray, mouth: _Mouth) -> np.ndarray:
    """[V] height of the line between the lips above each x: straight from the centre to each corner."""
    corner_y = (mouth.corners["L"][1] + mouth.corners["R"][1]) / 2.0
    across = np.clip(np.abs(x - mouth.centre[0]) / mouth.half_width, 0.0, 1.0)
    return mouth.centre[1] + (corner_y - mouth.centre[1]) * across


def _lips(vertices: np.ndarray, mouth: _Mouth, lower_lip_side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[V] upper and lower lip weights: the lip heights above and below the mouth's centre, between
    the corners and in front of them, each on its side (`lower_lip_side` [V], 1 for the lower lip)."""
    x, y, z = vertices[:, 0], vertices[:, 1], vertices[:, 2]
    corners_mid = (mouth.corners["L"] + mouth.corners["R"]) / 2.0
    centre_y = mouth.centre[1]
    lateral = smoothstep(1.25 * mouth.half_width, 0.7 * mouth.half_width, np.abs(x - mouth.centre[0]))
    front = smoothstep(corners_mid[2] - 0.4 * mouth.half_width, corners_mid[2] + 0.05 * mouth.half_width, z)
    upper = smoothstep(centre_y + 2.0 * mouth.upper_height, centre_y + 0.8 * mouth.upper_height, y) * (
        1.0 - lower_lip_side
    )
    lower = smoothstep(centre_y - 1.8 * mouth.lower_height, centre_y - 0.8 * mouth.lower_height, y) * lower_lip_side
    return upper * lateral * front, lower * lateral * front


def mesh_pieces(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected pieces of a mesh, welded across seams: [V] int piece label of each vertex, and [V] bool
    "on a skin piece" (the largest piece and any at least `SKIN_PIECE_FRACTION` of its size)."""
    surface = _surface(np.asarray(vertices, dtype=np.float64), faces)
    return surface.labels, surface.skin


def _surface(vertices: np.ndarray, faces: np.ndarray) -> _Surface:
    """Connected pieces and surface distances of a mesh, welded across seams (see `_Surface`)."""
    faces = np.asarray(faces, dtype=np.int64)
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 1.0
    keys = np.round(vertices / max(extent * 1e-7, 1e-12)).astype(np.int64)
    _, welded = np.unique(keys, axis=0, return_inverse=True)
    welded = welded.reshape(-1)
    count = int(welded.max()) + 1 if len(welded) else 0
    starts = welded[np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])]
    ends = welded[np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])]
    positions = np.zeros((count, 3))
    positions[welded] = vertices
    lengths = np.linalg.norm(positions[starts] - positions[ends], axis=1) + 1e-12
    graph = coo_matrix((lengths, (starts, ends)), shape=(count, count)).tocsr()
    _, welded_labels = connected_components(graph, directed=False)
    labels = welded_labels[welded]
    sizes = np.bincount(labels)
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    skin = (sizes >= SKIN_PIECE_FRACTION * sizes.max())[labels] | ~used
    order = np.argsort(labels, kind="stable")
    groups = np.split(order, np.cumsum(sizes)[:-1])
    pieces = [group for group in groups if len(group) and not skin[group[0]]]
    return _Surface(labels, skin, pieces, graph, welded)


def _nearer_to_second(vertices: np.ndarray, surface: _Surface, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """[V] 1 where a vertex is nearer along the surface to the skin vertex nearest `second` than to the
    one nearest `first`, 0 where nearer `first` (a soft step over a fifth of the sum of the two
    distances), NaN where neither can be reached (another piece)."""
    skin = np.nonzero(surface.skin)[0]
    seeds = [
        int(surface.welded[skin[np.argmin(np.linalg.norm(vertices[skin] - point, axis=1))]])
        for point in (first, second)
    ]
    to_first, to_second = dijkstra(surface.graph, directed=False, indices=seeds)[:, surface.welded]
    reached = np.isfinite(to_first) & np.isfinite(to_second)
    result = np.full(len(vertices), np.nan)
    total = np.maximum(to_first[reached] + to_second[reached], 1e-12)
    result[reached] = smoothstep(-0.1, 0.1, (to_first[reached] - to_second[reached]) / total)
    return result


def _bump(vertices: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """[V] smooth bump: 1 near `centre`, exactly 0 outside the ellipsoid with semi-axes `radii` [3]."""
    distance = np.linalg.norm((vertices - centre) / radii, axis=1)
    return smoothstep(1.0, 0.2, distance)


def _angles(vertices: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seen from an eye's `centre` (looking along +Z): horizontal angle toward +X, vertical angle
    upward (radians) and distance, each [V]."""
    relative = np.atleast_2d(vertices) - centre
    horizontal = np.arctan2(relative[:, 0], relative[:, 2])
    vertical = np.arctan2(relative[:, 1], relative[:, 2])
    return horizontal, vertical, np.linalg.norm(relative, axis=1)


def _eye(side: str, p: dict[str, np.ndarray], vertices: np.ndarray, surface: _Surface) -> _Eye:
    """One eye's frame from its corners (and lid margins, brow, cheek when given)."""
    outer, inner = p[f"eye_outer_{side}"], p[f"eye_inner_{side}"]
    width = max(float(np.linalg.norm(outer - inner)), 1e-6)
    corners_mid = (outer + inner) / 2.0
    top, bottom = p.get(f"eye_top_{side}"), p.get(f"eye_bottom_{side}")
    lid_middle = (top + bottom) / 2.0 if top is not None and bottom is not None else corners_mid
    sphere = _eyeball_sphere(lid_middle, width, vertices, surface)
    if sphere is not None:
        centre, radius = sphere
    else:
        # The lid margins rest on the eyeball: its centre lies about a radius behind them.
        radius = EYE_RADIUS_PER_WIDTH * width
        centre = lid_middle - FORWARD * radius
    if top is not None and bottom is not None:
        _, vertical, _ = _angles(np.stack([top, bottom]), centre)
        open_angle = float(np.clip((vertical[0] - vertical[1]) / 2.0, 0.1, 0.8))
    else:
        open_angle = EYE_OPEN_DEFAULT
    horizontal, _, _ = _angles(np.stack([outer, inner]), centre)
    wide_angle = float(np.clip(np.abs(horizontal).mean(), 0.5, 1.4))
    outward = np.sign(outer[0] - inner[0]) * np.array([1.0, 0.0, 0.0])
    brow = p.get(f"brow_{side}", corners_mid + UP * 0.8 * width + FORWARD * 0.1 * width)
    cheek = p.get(f"cheek_{side}", corners_mid - UP * 1.0 * width + outward * 0.2 * width)
    return _Eye(outer, inner, width, centre, radius, open_angle, wide_angle, brow, cheek)


def _eyeball_sphere(
    near: np.ndarray, width: float, vertices: np.ndarray, surface: _Surface
) -> tuple[np.ndarray, float] | None:
    """Centre [3] and radius of the sphere through the non-skin pieces that look like the eyeball
    behind the point `near`, or None if there are none."""
    found = []
    for piece in surface.pieces:
        if len(piece) < 20:
            continue
        centre, radius, spread = _fit_sphere(vertices[piece])
        if (
            spread <= SPHERE_TOLERANCE * radius
            and EYEBALL_RADIUS_RANGE[0] * width <= radius <= EYEBALL_RADIUS_RANGE[1] * width
            and np.linalg.norm(centre - near) <= EYEBALL_CENTRE_REACH * width
        ):
            found.append(vertices[piece])
    if not found:
        return None
    centre, radius, _ = _fit_sphere(np.concatenate(found))
    return centre, radius


def _fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere through [N, 3] points: centre [3], radius, and the spread (standard
    deviation) of the points' distances to the centre."""
    system = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(system, (points**2).sum(axis=1), rcond=None)
    centre = solution[:3]
    distances = np.linalg.norm(points - centre, axis=1)
    return centre, float(distances.mean()), float(distances.std())


def _eyeball_mask(eye: _Eye, vertices: np.ndarray, surface: _Surface) -> np.ndarray:
    """[V] bool: the non-skin pieces that lie wholly within the eye's sphere (its eyeball and cornea)."""
    inside = np.linalg.norm(vertices - eye.centre, axis=1) <= eye.radius * (1.0 + 2.0 * SPHERE_TOLERANCE)
    mask = np.zeros(len(vertices), dtype=bool)
    for piece in surface.pieces:
        if inside[piece].all():
            mask[piece] = True
    return mask


def _lids(vertices: np.ndarray, eye: _Eye) -> tuple[np.ndarray, np.ndarray]:
    """[V] upper and lower eyelid weights of one eye (module docstring)."""
    horizontal, vertical, distance = _angles(vertices, eye.centre)
    opening = np.sqrt((horizontal / eye.wide_angle) ** 2 + (vertical / eye.open_angle) ** 2)
    outside_opening = smoothstep(0.75, 0.95, opening)
    near = smoothstep(2.3 * eye.radius, 1.4 * eye.radius, distance)
    near *= smoothstep(eye.wide_angle + 0.5, eye.wide_angle, np.abs(horizontal))
    near *= (vertices[:, 2] - eye.centre[2]) > -0.3 * eye.radius
    upper = smoothstep(eye.open_angle + 0.9, eye.open_angle + 0.1, vertical) * (vertical > 0.0)
    lower = smoothstep(-eye.open_angle - 0.6, -eye.open_angle - 0.05, vertical) * (vertical <= 0.0)
    return upper * near * outside_opening, LOWER_LID_SHARE * lower * near * outside_opening
