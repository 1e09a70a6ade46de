"""T2Bs backend: text to an animatable character head with named blendshapes."""

from __future__ import annotations

import importlib.metadata
import os

# Idle OpenMP threads spin by default; beside Blender or another process on a small machine that
# slows every PyTorch call several times over. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = importlib.metadata.version("t2bs")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
