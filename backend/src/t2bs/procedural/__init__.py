"""The offline defaults: a text-conditioned procedural character head and its expression performance.

`build_head` (head.py) makes the mesh and its facial regions from `HeadParams` (archetypes.py), which
`params_from_prompt` (text.py) derives from a prompt; `deform` (performance.py) makes it act an
expression. providers.py registers both as the `procedural` asset and video providers.
"""

from .archetypes import ARCHETYPE_NAMES, ARCHETYPES, HeadParams
from .head import ProceduralHead, build_head
from .performance import deform, ease
from .regions import REGIONS_FILE, FaceRegions, load_regions, save_regions
from .text import params_from_prompt, read_prompt

__all__ = [
    "ARCHETYPES",
    "ARCHETYPE_NAMES",
    "REGIONS_FILE",
    "FaceRegions",
    "HeadParams",
    "ProceduralHead",
    "build_head",
    "deform",
    "ease",
    "load_regions",
    "params_from_prompt",
    "read_prompt",
    "save_regions",
]
