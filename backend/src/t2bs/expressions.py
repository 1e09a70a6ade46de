"""The expression library: what the character is asked to do, and which shape keys each act yields.

One `Expression` is one captured sequence (one video per view). An expression either yields one
blendshape named after it (`jawOpen`), or is acted with both sides of the face and split into a left and
a right half (`eyeBlink` -> `eyeBlinkLeft`, `eyeBlinkRight`). The halves need not share a stem: looking
to the character's left turns the left eye outward and the right eye inward (`eyeLookOutLeft`,
`eyeLookInRight`). Left and Right are the character's own, as in Apple's ARKit: the character's left is
+X in the normalised frame (face toward +Z, +Y up).

Names are ARKit's camelCase where an act maps to ARKit's 52 blendshapes, else the expression's own
camelCase name (`earsBack`, `snarl`). `NAME_STYLES` converts between the casings other tools use: Live
Link Face and Unreal write `EyeBlinkLeft`, ICT-FaceKit and many rigs write `eyeBlink_L`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InputError

# Apple ARKit's 52 blendshape locations, in Apple's order.
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

REGIONS: tuple[str, ...] = ("mouth", "eyes", "brows", "cheeks", "nose", "other")

PROMPT_TEMPLATE = "{identity}. The character {action}, then holds the expression."

_NAME_PATTERN = re.compile(r"^[a-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Expression:
    """One act of the performance.

    Attributes:
        name: the sequence name, camelCase (`jawOpen`, `eyeBlink`, `earsBack`).
        action: what the character does, as it reads after "The character" in a prompt.
        halves: (left shape, right shape) for an act split across the symmetry plane, or None.
        region: the face region it moves, one of `REGIONS` (groups the sliders in Blender).
    """

    name: str
    action: str
    halves: tuple[str, str] | None = None
    region: str = "other"

    @property
    def shape_names(self) -> tuple[str, ...]:
        """The blendshapes this act yields: its two halves, or one shape named after it."""
        return self.halves if self.halves is not None else (self.name,)

    @property
    def is_split(self) -> bool:
        return self.halves is not None

    @property
    def maps_to_arkit(self) -> bool:
        return all(shape in ARKIT_NAMES for shape in self.shape_names)

    def prompt(self, identity: str) -> str:
        """The augmented prompt for a character described by `identity`."""
        identity = identity.strip().rstrip(".") or "A character head"
        return PROMPT_TEMPLATE.format(identity=identity[0].upper() + identity[1:], action=self.action)


def _lr(stem: str) -> tuple[str, str]:
    return (f"{stem}Left", f"{stem}Right")


# The library covers ARKit's action set; each act is what a video model can be asked to show.
LIBRARY: tuple[Expression, ...] = (
    Expression("jawOpen", "slowly opens its mouth as wide as it can", region="mouth"),
    Expression("mouthSmile", "slowly breaks into a broad, closed-mouth smile", _lr("mouthSmile"), "mouth"),
    Expression("eyeBlink", "slowly closes both eyes completely", _lr("eyeBlink"), "eyes"),
    Expression("browInnerUp", "raises the inner ends of its eyebrows in worry", region="brows"),
    Expression("mouthPucker", "purses its lips into a tight kiss", region="mouth"),
    Expression("browDown", "frowns hard, pulling both eyebrows down", _lr("browDown"), "brows"),
    Expression("mouthFrown", "turns the corners of its mouth down in a sad frown", _lr("mouthFrown"), "mouth"),
    Expression("jawLeft", "shifts its lower jaw to its own left", region="mouth"),
    Expression("jawRight", "shifts its lower jaw to its own right", region="mouth"),
    Expression("jawForward", "pushes its lower jaw forward", region="mouth"),
    Expression("mouthFunnel", "shapes its lips into an open 'oo' funnel", region="mouth"),
    Expression("mouthClose", "keeps its jaw dropped while pressing its lips closed", region="mouth"),
    Expression("mouthPress", "presses its lips firmly together", _lr("mouthPress"), "mouth"),
    Expression("mouthRollLower", "rolls its lower lip in over its teeth", region="mouth"),
    Expression("mouthRollUpper", "rolls its upper lip in over its teeth", region="mouth"),
    Expression("mouthShrugLower", "pushes its lower lip up and out", region="mouth"),
    Expression("mouthShrugUpper", "pushes its upper lip up", region="mouth"),
    Expression("mouthStretch", "stretches its mouth wide sideways in fear", _lr("mouthStretch"), "mouth"),
    Expression("mouthDimple", "pulls the corners of its mouth back into dimples", _lr("mouthDimple"), "mouth"),
    Expression("mouthLeft", "moves its closed mouth to its own left", region="mouth"),
    Expression("mouthRight", "moves its closed mouth to its own right", region="mouth"),
    Expression("mouthUpperUp", "raises its upper lip to bare its upper teeth", _lr("mouthUpperUp"), "mouth"),
    Expression("mouthLowerDown", "pulls its lower lip down to bare its lower teeth", _lr("mouthLowerDown"), "mouth"),
    Expression("eyeSquint", "squints both eyes, narrowing them", _lr("eyeSquint"), "eyes"),
    Expression("eyeWide", "opens both eyes wide in surprise", _lr("eyeWide"), "eyes"),
    Expression("eyeLookUp", "looks up without moving its head", _lr("eyeLookUp"), "eyes"),
    Expression("eyeLookDown", "looks down without moving its head", _lr("eyeLookDown"), "eyes"),
    Expression("eyeLookLeft", "looks to its own left without moving its head",
               ("eyeLookOutLeft", "eyeLookInRight"), "eyes"),
    Expression("eyeLookRight", "looks to its own right without moving its head",
               ("eyeLookInLeft", "eyeLookOutRight"), "eyes"),
    Expression("browOuterUp", "raises the outer ends of both eyebrows", _lr("browOuterUp"), "brows"),
    Expression("cheekPuff", "puffs out both cheeks with air", region="cheeks"),
    Expression("cheekSquint", "raises both cheeks as in a squinting grin", _lr("cheekSquint"), "cheeks"),
    Expression("noseSneer", "wrinkles its nose in disgust", _lr("noseSneer"), "nose"),
    Expression("tongueOut", "sticks its tongue straight out", region="mouth"),
    # Character extras, beyond ARKit.
    Expression("earsBack", "flattens both ears back against its head", _lr("earsBack"), "other"),
    Expression("snarl", "snarls, wrinkling its snout and baring its teeth", region="nose"),
)  # fmt: skip

LIBRARY_BY_NAME: dict[str, Expression] = {expression.name: expression for expression in LIBRARY}

# The acts a preview run captures: the most used sliders, cheap enough for a CPU fit.
PREVIEW_EXPRESSIONS: tuple[str, ...] = ("jawOpen", "mouthSmile", "eyeBlink", "browInnerUp")
# A standard run: 24 acts covering every region (DESIGN.md's GPU target is 24 sequences).
STANDARD_EXPRESSIONS: tuple[str, ...] = (
    "jawOpen", "mouthSmile", "eyeBlink", "browInnerUp", "mouthPucker", "browDown", "mouthFrown",
    "mouthFunnel", "jawLeft", "jawRight", "mouthPress", "mouthStretch", "mouthUpperUp", "mouthLowerDown",
    "mouthRollLower", "eyeSquint", "eyeWide", "eyeLookUp", "eyeLookDown", "eyeLookLeft", "eyeLookRight",
    "browOuterUp", "cheekPuff", "noseSneer",
)  # fmt: skip
PRESET_EXPRESSIONS: dict[str, tuple[str, ...]] = {
    "preview": PREVIEW_EXPRESSIONS,
    "standard": STANDARD_EXPRESSIONS,
    "high": tuple(entry.name for entry in LIBRARY),
}


def expression(name: str) -> Expression:
    """The library entry called `name` (any casing `canonical_name` accepts)."""
    key = canonical_name(name)
    if key not in LIBRARY_BY_NAME:
        known = ", ".join(LIBRARY_BY_NAME)
        raise InputError(f"Unknown expression {name!r}; the library has: {known}.")
    return LIBRARY_BY_NAME[key]


def custom_expression(name: str, action: str, *, split: bool = False, region: str = "other") -> Expression:
    """A user's own act. A split act yields `<name>Left` and `<name>Right`."""
    if not _NAME_PATTERN.match(name):
        raise InputError(f"Expression name {name!r} must be camelCase letters and digits, like 'tongueCurl'.")
    if not action.strip():
        raise InputError(f"Expression {name!r} needs an action, e.g. 'curls its tongue up'.")
    if region not in REGIONS:
        raise InputError(f"Region {region!r} is not one of {', '.join(REGIONS)}.")
    return Expression(name, action.strip().rstrip("."), _lr(name) if split else None, region)


def select_expressions(names: Iterable[str]) -> list[Expression]:
    """Library entries by name, in the given order, refusing duplicates.

    An item written `name=action` is the user's own act (`tongueCurl=curls its tongue up`); a trailing
    `|split` on it asks for Left/Right halves (`earWiggle=wiggles its ears|split`).
    """
    chosen: list[Expression] = []
    for item in names:
        if "=" in item:
            name, _, action = item.partition("=")
            action, _, flag = action.partition("|")
            if flag.strip() not in ("", "split"):
                raise InputError(f"In {item!r}, only '|split' may follow the action.")
            entry = custom_expression(name.strip(), action, split=flag.strip() == "split")
        else:
            entry = expression(item)
        if any(entry.name == other.name for other in chosen):
            raise InputError(f"Expression {entry.name!r} is listed twice.")
        chosen.append(entry)
    if not chosen:
        raise InputError("No expressions were chosen; name at least one, e.g. jawOpen.")
    return chosen


def shape_region(shape_name: str) -> str:
    """The slider group of a blendshape name (library shapes by their act, others by their stem)."""
    for entry in LIBRARY:
        if shape_name in entry.shape_names:
            return entry.region
    stem = canonical_name(shape_name)
    for prefix, region in (("mouth", "mouth"), ("jaw", "mouth"), ("tongue", "mouth"), ("eye", "eyes"),
                           ("brow", "brows"), ("cheek", "cheeks"), ("nose", "nose")):  # fmt: skip
        if stem.startswith(prefix):
            return region
    return "other"


# -- name casings ------------------------------------------------------------------------------------


def to_pascal(name: str) -> str:
    """`eyeBlinkLeft` -> `EyeBlinkLeft` (Live Link Face CSV columns, Unreal curve names)."""
    return name[:1].upper() + name[1:]


def to_ict(name: str) -> str:
    """`eyeBlinkLeft` -> `eyeBlink_L`; `jawOpen` stays (ICT-FaceKit and many `_L`/`_R` rigs)."""
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if name.endswith(side) and len(name) > len(side) and name not in _SIDE_IS_DIRECTION:
            return name[: -len(side)] + suffix
    return name


# Names whose Left/Right is a direction of motion, not a side of the face: never given a suffix.
_SIDE_IS_DIRECTION = frozenset({"jawLeft", "jawRight", "mouthLeft", "mouthRight", "eyeLookLeft", "eyeLookRight"})

NAME_STYLES = {"arkit": lambda name: name, "pascal": to_pascal, "ict": to_ict}


def canonical_name(name: str) -> str:
    """Our camelCase name for a shape written in any of `NAME_STYLES`' casings.

    `EyeBlinkLeft`, `eyeBlink_L`, `eyeBlinkLeft` and `eye_blink_left` all give `eyeBlinkLeft`.
    """
    text = name.strip()
    for suffix, side in (("_L", "Left"), ("_R", "Right"), (".L", "Left"), (".R", "Right")):
        if text.endswith(suffix):
            text = text[: -len(suffix)] + side
            break
    if "_" in text:
        parts = [part for part in text.split("_") if part]
        text = parts[0].lower() + "".join(part[:1].upper() + part[1:].lower() for part in parts[1:]) if parts else ""
    return text[:1].lower() + text[1:]


def check_unique_names(names: Sequence[str], what: str = "blendshape") -> None:
    """Raise InputError naming the first duplicate (after casing is normalised)."""
    seen: dict[str, str] = {}
    for name in names:
        key = canonical_name(name)
        if key in seen:
            raise InputError(f"Two {what}s are both called {name!r} (also written {seen[key]!r}).")
        seen[key] = name
