#!/usr/bin/env bash
# The test command: set up .venv/ (see setup.sh), then run the whole test suite and the checks.
# Extra arguments go to pytest and run the backend suite only, e.g. `bash scripts/test.sh -k serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Khronos glTF validator (npm) checks every head.glb the tests export.
if [ ! -d tools/gltf-validator/node_modules/gltf-validator ]; then
  npm ci --prefix tools/gltf-validator --no-audit --no-fund --loglevel=error
fi
status=0
# tests/blender needs the bpy wheel: the nox sessions below run it in its own environments.
.venv/bin/python -m pytest --ignore=tests/blender "$@" || status=$?
if [ $# -eq 0 ]; then
  # noxfile.py: ruff (lint, format check); mypy on backend/ and on t2bs_blender/ against the Blender 4.2
  # and 5.0 API stubs; the Blender suite on bpy 5.0.1 and 4.2 LTS (the newest and the oldest we support),
  # each in its own environment (.venv-blender-5.0/, .venv-blender-4.2/). nox runs every session even
  # when one fails, and fails if any did.
  .venv/bin/nox --no-color -s lint typecheck blender-5.0 blender-4.2 || status=$?
fi
exit "$status"
