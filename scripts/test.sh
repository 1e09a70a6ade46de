#!/usr/bin/env bash
# The test command: set up .venv/ (see setup.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Khronos glTF validator (npm) checks every head.glb the tests export.
if [ ! -d tools/gltf-validator/node_modules/gltf-validator ]; then
  npm ci --prefix tools/gltf-validator --no-audit --no-fund --loglevel=error
fi
# tests/blender needs the bpy wheel: scripts/test_blender.sh runs it in its own environment.
.venv/bin/python -m pytest --ignore=tests/blender "$@"
# Blender 4.2 LTS (the oldest we support) and 5.0 (the newest), each in its own bpy environment.
if [ $# -eq 0 ]; then
  bash scripts/test_blender.sh 5.0.1
  bash scripts/test_blender.sh 4.2
fi
