#!/usr/bin/env bash
# Run the Blender tests (tests/blender, plus the add-on's pure tests in tests/addon) through the bpy wheel.
#
#   bash scripts/test_blender.sh [VERSION] [pytest args...]     # VERSION: 5.0.1 (default), 4.2, 4.5 ...
#
# Creates or reuses .venv-blender-<major.minor>/ (scripts/blender_env.sh). The bridge tests start a real
# `t2bs serve` in the backend's environment: $T2BS_BACKEND_PYTHON, default .venv/bin/python (made by
# `bash scripts/setup.sh`); without it they skip.
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.0.1
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
  version=$1
  shift
fi
env_dir=$(bash scripts/blender_env.sh "$version" | tail -n 1)
export T2BS_BACKEND_PYTHON=${T2BS_BACKEND_PYTHON:-.venv/bin/python}
# -p no:cacheprovider: the suite runs per Blender version; a shared .pytest_cache would mix them.
# Without paths among the arguments, run both folders.
paths=(tests/blender tests/addon)
for arg in "$@"; do
  case "$arg" in -*) ;; *) if [ -e "${arg%%::*}" ]; then paths=(); break; fi ;; esac
done
exec "$env_dir/bin/python" -m pytest -p no:cacheprovider "${paths[@]}" "$@"
