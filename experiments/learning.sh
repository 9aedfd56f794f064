#!/usr/bin/env bash
# The learning study (see learning.py): every weight policy x optimizers x
# learning rates x 3 seeds, CNN on Fashion-MNIST, 4 stages, 200 mini-batches
# of 64. About 12 minutes on this project's 2-core machine.
#   experiments/learning.sh [--quick] [XPIPE]
# Full mode writes experiments/results/learning.{json,txt,png} and
# time_to_accuracy.{txt,png}.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
quick=""
if [[ "${1:-}" == "--quick" ]]; then quick="--quick"; shift; fi
xpipe="${1:-$here/../build/cli/xpipe}"
if [[ -n "$quick" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  /usr/bin/python3 "$here/learning.py" "$xpipe" "$tmp/learning.json" --quick
  exit
fi
/usr/bin/python3 "$here/learning.py" "$xpipe" "$here/results/learning.json" | tee "$here/results/learning.txt"
/usr/bin/python3 "$here/../plots/learning.py" "$here/results/learning.json" "$here/results/learning.png"
# Joined with simulated time per mini-batch: results/time_to_accuracy.{txt,png}.
/usr/bin/python3 "$here/time_to_accuracy.py" "$xpipe" "$here/results/learning.json" "$here/results/time_to_accuracy" \
  >/dev/null
