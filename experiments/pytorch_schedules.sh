#!/usr/bin/env bash
# PyTorch pipelining's schedule files through xpipe and back, and xpipe's in
# PyTorch (see pytorch_schedules.py). Uses the pinned torch's Python.
#   experiments/pytorch_schedules.sh [--quick] [XPIPE]
# The full run's report goes to experiments/results/pytorch_schedules.txt
# (the files themselves to a temporary folder, or XPIPE_KEEP=DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=""
if [[ "${1:-}" == "--quick" ]]; then quick="--quick"; shift; fi
xpipe="${1:-$here/../build/cli/xpipe}"
python="${XPIPE_PYTHON:-/opt/xpipe-venv/bin/python}"
out="${XPIPE_KEEP:-$(mktemp -d)}"
[[ -n "${XPIPE_KEEP:-}" ]] || trap 'rm -rf "$out"' EXIT
if [[ -n "$quick" ]]; then
  "$python" "$here/pytorch_schedules.py" "$xpipe" "$here/../profiles/vgg16.json" "$out" --quick
  exit
fi
"$python" "$here/pytorch_schedules.py" "$xpipe" "$here/../profiles/vgg16.json" "$out" 2> >(grep -v "note:" >&2) |
  tee "$here/results/pytorch_schedules.txt"
