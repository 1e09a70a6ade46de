#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv/ (see setup.sh) and generate a character head from a
# prompt with the offline defaults (procedural head and performance, preview preset, CPU).
#
#   bash scripts/generate.sh "a grumpy old troll with a big nose" [t2bs generate options...]
#
# The bundle goes to out/<prompt as a folder name>/ unless --out is given; head.glb and preview/ are in it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ -z "${1// /}" ]; then
  echo 'usage: bash scripts/generate.sh "a grumpy old troll with a big nose" [options]' >&2
  exit 2
fi
prompt=$1
shift
bash scripts/setup.sh
out=()
case " $* " in
  *" --out "*|*" --out="*) ;;
  *) out=(--out "out/$(printf '%s' "$prompt" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//' | cut -c1-60)") ;;
esac
exec .venv/bin/t2bs generate "$prompt" --preset preview "${out[@]}" "$@"
