#!/usr/bin/env bash
# Set up (or update) the development environment in .venv/ at the repository root:
# the backend with its test extras, on the CPU build of torch.
# Needs Python 3.11 and pip only. Safe to run again; it reinstalls nothing that is current.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "setup: Python 3.11 is needed (set PYTHON=/path/to/python3.11)." >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# torch==2.13.0 is the CPU wheel; the constraint keeps any other requirement from pulling a CUDA build.
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c backend/constraints-cpu.txt torch==2.13.0 -e "backend[test,gen,landmarks]"
# MediaPipe's face mesh (facial regions for `--asset mesh:` heads) without its declared dependencies:
# the `landmarks` extra above holds the ones it really imports (backend/pyproject.toml says why).
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps mediapipe==0.10.21
