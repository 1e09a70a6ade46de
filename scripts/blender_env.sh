#!/usr/bin/env bash
# Create (or reuse) the Python environment that runs the Blender tests through the `bpy` wheel.
#
#   bash scripts/blender_env.sh [VERSION]      # VERSION: 5.0.1 (default), 4.2 (= 4.2.*), 4.5, 4.2.23 ...
#
# The environment is .venv-blender-<major.minor>/ at the repository root; its path is printed on the last
# line of stdout. It is separate from .venv/ because bpy pins its own numpy and Python (3.11) and is
# large (~350 MB): installing it once per version and reusing it is what keeps the test command fast.
# pip's wheel cache is kept (no --no-cache-dir), so recreating the environment downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-5.0.1}
# "4.2" means the newest 4.2.x, "5.0.1" exactly that release.
case "$version" in
  *.*.*) spec="bpy==$version" ;;
  *.*) spec="bpy==$version.*" ;;
  *) echo "blender_env: give a version like 5.0.1 or 4.2, not '$version'." >&2; exit 2 ;;
esac
series=$(echo "$version" | cut -d. -f1,2)
env_dir=".venv-blender-$series"

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
  echo "blender_env: the bpy wheels need Python 3.11 (set PYTHON=/path/to/python3.11)." >&2
  exit 2
fi

if [ ! -x "$env_dir/bin/python" ]; then
  "$python" -m venv "$env_dir"
fi

# Skip pip entirely when the wanted bpy is already there: pip's resolver alone takes seconds.
if "$env_dir/bin/python" - "$version" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
want = sys.argv[1]
try:
    have = version("bpy")
    for name in ("pytest", "pytest-timeout", "numpy"):
        version(name)
except PackageNotFoundError:
    sys.exit(1)
# "4.2" matches any 4.2.x; "5.0.1" must match exactly.
sys.exit(0 if have == want or (want.count(".") == 1 and have.startswith(want + ".")) else 1)
PY
then
  :
else
  # numpy comes with bpy at the version bpy declares; pytest for the suite.
  "$env_dir/bin/python" -m pip install --disable-pip-version-check --quiet "$spec" pytest pytest-timeout
fi
echo "$env_dir"
