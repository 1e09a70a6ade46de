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
exec .venv/bin/python -m pytest "$@"
