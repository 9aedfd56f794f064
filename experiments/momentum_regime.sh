#!/usr/bin/env bash
# The regime where staleness hurts (momentum 0.9, lr 0.1; CNN on
# Fashion-MNIST, 4 stages, T = 4, 200 mini-batches, seeds 1-3): which XPipe
# variant survives (what its later micro-batches predict from, its target,
# fixed or adaptive), against stale 1F1B and PipeDream-2BW. Final test accuracy
# per seed, or where it stopped on a NaN loss.
#   experiments/momentum_regime.sh [XPIPE]   (about 4 minutes on 2 cores)
# Writes experiments/results/momentum_regime.txt.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
xpipe="${1:-$here/../build/cli/xpipe}"
out="$here/results/momentum_regime.txt"
run() {  # label, flags...
  local label=$1
  shift
  local results=()
  for seed in 1 2 3; do
    local line
    line=$("$xpipe" train --model cnn --data fashion-mnist --stages 4 --micro-batches 4 --batch-size 64 \
      --max-steps 200 --optimizer momentum --lr 0.1 --seed "$seed" "$@" 2>&1 | tail -1)
    if [[ "$line" == *"loss is NaN"* ]]; then
      results+=("NaN@$(sed -E 's/.*at mini-batch ([0-9]+).*/\1/' <<<"$line")")
    else
      read -r _ _ _ _ acc _ <<<"$line"
      results+=("$acc")
    fi
  done
  printf '%-40s %s\n' "$label" "${results[*]}"
}
{
  echo "# $(date -u +%F), $(nproc) cores; test accuracy after 200 mini-batches, seeds 1 2 3 (NaN@m: stopped at mini-batch m)"
  run "gpipe" --schedule gpipe
  run "stale" --schedule stale
  run "pipedream-2bw" --schedule pipedream-2bw
  run "xpipe adaptive (the default: live base)" --schedule xpipe
  run "xpipe fixed, live base" --schedule xpipe --prediction fixed
  run "xpipe adaptive, bellwether (the paper)" --schedule xpipe --predict-from bellwether
  run "  the same, --backward-weights recompute" --schedule xpipe --predict-from bellwether --backward-weights recompute
  run "  the same, --target synchronous" --schedule xpipe --predict-from bellwether --target synchronous
  run "  the same, --target closed-form" --schedule xpipe --predict-from bellwether --target closed-form
  run "xpipe fixed, bellwether, --target synchronous" --schedule xpipe --predict-from bellwether --target synchronous --prediction fixed
} | tee "$out"
