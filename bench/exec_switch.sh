#!/usr/bin/env bash
# The weight switch on the executor: XPipe with --backward-weights swap and
# recompute against PipeDream-2BW (no switch: every pass of a mini-batch reads
# one version) and stale 1F1B, CNN on Fashion-MNIST, 4 stages on CPU threads.
# Rounds alternate the runs so machine noise hits all alike; prints the median
# samples/s of each, forwards and weight copies per epoch, and the ratios.
# Usage: bench/exec_switch.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-100}
rounds=${2:-3}
xpipe=build/cli/xpipe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A flags=(
  [pipedream-2bw]="--schedule pipedream-2bw"
  [stale]="--schedule stale"
  [xpipe-swap]="--schedule xpipe --backward-weights swap"
  [xpipe-recompute]="--schedule xpipe --backward-weights recompute"
)
names=(pipedream-2bw xpipe-swap xpipe-recompute stale)
for r in $(seq 1 "$rounds"); do
  for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    "$xpipe" train --model cnn --data fashion-mnist --stages 4 --micro-batches 4 --batch-size 64 --epochs 1 \
      --max-steps "$steps" --seed 1 --no-eval --log "$tmp/$n.$r.jsonl" ${flags[$n]} >/dev/null
  done
done
python3 - "$tmp" "$rounds" "${names[@]}" <<'PY'
import json, statistics, sys
tmp, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
med, last = {}, {}
for n in names:
    runs = [[json.loads(l) for l in open(f"{tmp}/{n}.{r}.jsonl") if '"epoch"' in l][-1] for r in range(1, rounds + 1)]
    med[n] = statistics.median(e["samples_per_sec"] for e in runs)
    last[n] = runs[-1]
    print(f"{n:16s} {med[n]:8.1f} samples/s   forwards {last[n]['forwards_run']:5d}   "
          f"recomputed {last[n]['recomputed_passes']:5d}   weight copies {last[n]['weight_copies']:5d}")
print(f"xpipe-swap / pipedream-2bw:      {med['xpipe-swap'] / med['pipedream-2bw']:.2f}")
print(f"xpipe-recompute / xpipe-swap:    {med['xpipe-recompute'] / med['xpipe-swap']:.2f}")
PY
