"""T2Bs backend: text to an animatable character head with named blendshapes."""

from __future__ import annotations

import importlib.metadata
import os

# How long an idle OpenMP thread spins before it sleeps; read when torch loads, so set before it is
# imported. Spinning for long (the default) makes two busy processes on a small machine (a fit beside
# Blender, or a second fit) several times slower each; never spinning makes every parallel region of
# a lone fit wait on a wake-up. GNU libgomp (Linux wheels) spins GOMP_SPINCOUNT times, which wins over
# the passive policy; other OpenMP runtimes take the passive policy. On 2 cores, fit step: never 0.56 s,
# 3,000 spins 0.39 s, default 0.35 s; two fits at once: 44 s, 52 s, 350 s (docs/benchmarks.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "3000")

try:
    __version__ = importlib.metadata.version("t2bs")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
