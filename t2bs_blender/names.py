"""Shape key names: ARKit's camelCase, the casings other tools write, and the panel's regions.

Pure Python (no bpy, no backend): the add-on must not import `t2bs`, so this is a small copy of the
name logic in the backend's `t2bs.expressions`. Keep the two in step; tests/addon checks the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Apple ARKit's 52 blendshape locations, in Apple's order (Live Link Face writes them in this order too).
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft",
    "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip

# The panel's slider groups, in the order it draws them.
REGIONS: tuple[str, ...] = ("mouth", "eyes", "brows", "cheeks", "nose", "other")

# Group of the eigen-expressions (PCA) keys; drawn after the semantic regions, folded by default.
EIGEN_REGION = "eigen"

# First match wins; a stem names the part of the face that moves.
_PREFIX_REGIONS: tuple[tuple[str, str], ...] = (
    ("mouth", "mouth"), ("jaw", "mouth"), ("tongue", "mouth"), ("lip", "mouth"),
    ("eye", "eyes"), ("brow", "brows"), ("cheek", "cheeks"), ("nose", "nose"), ("snarl", "nose"),
)  # fmt: skip

# Left/Right in these names is a direction of motion, not a side of the face: no `_L`/`_R` suffix.
_SIDE_IS_DIRECTION = frozenset({"jawLeft", "jawRight", "mouthLeft", "mouthRight", "eyeLookLeft", "eyeLookRight"})


def to_pascal(name: str) -> str:
    """`eyeBlinkLeft` -> `EyeBlinkLeft` (Live Link Face CSV columns, Unreal curve names)."""
    return name[:1].upper() + name[1:]


def to_ict(name: str) -> str:
    """`eyeBlinkLeft` -> `eyeBlink_L`; `jawLeft` keeps its name (a direction, not a side)."""
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if name.endswith(side) and len(name) > len(side) and name not in _SIDE_IS_DIRECTION:
            return name[: -len(side)] + suffix
    return name


def canonical_name(name: str) -> str:
    """Our camelCase name for a shape written in any common casing.

    `EyeBlinkLeft`, `eyeBlink_L`, `eyeBlinkLeft`, `eye_blink_left` and `eyeBlink.L` all give
    `eyeBlinkLeft`.
    """
    text = name.strip()
    for suffix, side in (("_L", "Left"), ("_R", "Right"), (".L", "Left"), (".R", "Right")):
        if text.endswith(suffix):
            text = text[: -len(suffix)] + side
            break
    if "_" in text:
        parts = [part for part in text.split("_") if part]
        text = parts[0].lower() + "".join(p[:1].upper() + p[1:].lower() for p in parts[1:]) if parts else ""
    return text[:1].lower() + text[1:]


def region_of(name: str) -> str:
    """The panel group of a shape name when the bundle does not say (by the stem's face part)."""
    stem = canonical_name(name)
    for prefix, region in _PREFIX_REGIONS:
        if stem.startswith(prefix):
            return region
    return "other"


def group_by_region(names: Sequence[str], regions: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Shape names grouped for the panel: every region of `REGIONS` present, in that order.

    `regions` (parallel to `names`) is what the bundle says; a missing or unknown entry falls back to
    `region_of`, so a bundle from an older backend still gets sensible groups.
    """
    groups: dict[str, list[str]] = {region: [] for region in REGIONS}
    for index, name in enumerate(names):
        region = regions[index] if regions is not None and index < len(regions) else ""
        if region not in groups:
            region = region_of(name)
        groups[region].append(name)
    return {region: members for region, members in groups.items() if members}


def match_columns(columns: Iterable[str], shape_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Map foreign column names (e.g. Live Link Face's `EyeBlinkLeft`) onto our shape names.

    Returns ({column: shape name}, [columns with no shape]). Matching is by canonical name, so any
    casing `canonical_name` understands works, and a rig with `_L`/`_R` names matches too.
    """
    by_canonical = {canonical_name(shape): shape for shape in shape_names}
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    for column in columns:
        shape = by_canonical.get(canonical_name(column))
        if shape is None:
            unmatched.append(column)
        else:
            mapping[column] = shape
    return mapping, unmatched


def eigen_name(index: int) -> str:
    """The key name of the eigen-expression `index` (0-based), sortable up to 1000 components."""
    return f"eigen{index:03d}"


# The backend's expression library (acts, one captured sequence each; `t2bs.expressions.LIBRARY`).
EXPRESSION_ACTS: tuple[str, ...] = (
    "jawOpen", "mouthSmile", "eyeBlink", "browInnerUp", "mouthPucker", "browDown", "mouthFrown", "jawLeft",
    "jawRight", "jawForward", "mouthFunnel", "mouthClose", "mouthPress", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthStretch", "mouthDimple", "mouthLeft", "mouthRight",
    "mouthUpperUp", "mouthLowerDown", "eyeSquint", "eyeWide", "eyeLookUp", "eyeLookDown", "eyeLookLeft",
    "eyeLookRight", "browOuterUp", "cheekPuff", "cheekSquint", "noseSneer", "tongueOut", "earsBack", "snarl",
)  # fmt: skip

# What a preview run captures (the backend's PREVIEW_EXPRESSIONS): ticked by default in the panel.
PREVIEW_EXPRESSIONS: tuple[str, ...] = ("jawOpen", "mouthSmile", "eyeBlink", "browInnerUp")
