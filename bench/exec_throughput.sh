#!/usr/bin/env bash
# Executor throughput: XPipe on 2 CPU stages against sequential single-thread
# training of the same model (1 stage, 1 micro-batch), measured in one run on
# this machine; prints both and their ratio. With two cores, two stages is the
# honest maximum for CPU timing work.
# Usage: bench/exec_throughput.sh [MODEL] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-cnn}
steps=${2:-200}
xpipe=build/cli/xpipe
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # name, then train flags
  local name=$1
  shift
  "$xpipe" train --model "$model" --data fashion-mnist --batch-size 64 --epochs 1 --max-steps "$steps" \
    --seed 1 --no-eval --log "$tmp/$name.jsonl" "$@" >/dev/null
  python3 -c "import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if '\"epoch\"' in l][-1]['samples_per_sec'])" \
    "$tmp/$name.jsonl"
}
seq=$(run sequential --schedule gpipe --stages 1 --micro-batches 1)
xp=$(run xpipe --schedule xpipe --stages 2 --micro-batches 4)
python3 -c "
import sys
s, x = float(sys.argv[1]), float(sys.argv[2])
print(f'sequential (1 thread): {s:9.1f} samples/s')
print(f'xpipe, 2 CPU stages:   {x:9.1f} samples/s')
print(f'ratio xpipe / sequential: {x / s:.2f}')" "$seq" "$xp"
