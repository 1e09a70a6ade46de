"""T2Bs backend: text to an animatable character head with named blendshapes."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("t2bs")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
