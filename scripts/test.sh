#!/usr/bin/env bash
# The test command: set up .venv/ (see setup.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
