"""The add-on's pure logic (no bpy): runs in the main suite and in the Blender test environments."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `import t2bs_blender` from the source tree, as a plain package
    sys.path.insert(0, str(REPO))
