#!/usr/bin/env bash
# Time per mini-batch of one model three ways, measured in one run: one
# process with the whole model as one stage; two stages as threads of one
# process (in-process transport); two processes under torchrun (Gloo over
# loopback). XPipe, CNN on Fashion-MNIST, 4 micro-batches of 16, CPU. Rounds
# alternate the three; prints medians. Two cores: two stages is the honest
# maximum here.
# Usage: bench/exec_transports.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-200}
rounds=${2:-3}
xpipe=$PWD/build/cli/xpipe
torchrun=${XPIPE_VENV:-/opt/xpipe-venv}/bin/torchrun
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(train --model cnn --data fashion-mnist --schedule xpipe --micro-batches 4 --batch-size 64 --epochs 1
        --max-steps "$steps" --seed 1 --no-eval)
for r in $(seq 1 "$rounds"); do
  "$xpipe" "${common[@]}" --stages 1 --log "$tmp/one.$r.jsonl" >/dev/null
  "$xpipe" "${common[@]}" --stages 2 --log "$tmp/threads.$r.jsonl" >/dev/null
  "$torchrun" --no-python --nproc-per-node 2 --master-port $((29000 + RANDOM % 1000)) -- "$xpipe" "${common[@]}" \
    --stages 2 --log "$tmp/gloo.$r.jsonl" >/dev/null 2>&1
done
python3 - "$tmp" "$rounds" "$steps" <<'PY'
import json, statistics, sys
tmp, rounds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ms = {}
for n, label in [("one", "1 process, 1 stage"), ("threads", "2 stages, threads of 1 process"),
                 ("gloo", "2 processes, Gloo on loopback")]:
    secs = [[json.loads(l) for l in open(f"{tmp}/{n}.{r}.jsonl") if '"epoch"' in l][-1]["seconds"]
            for r in range(1, rounds + 1)]
    ms[n] = 1000 * statistics.median(secs) / steps
    print(f"{label:32s} {ms[n]:7.2f} ms/mini-batch")
print(f"gloo / threads: {ms['gloo'] / ms['threads']:.2f}   threads / one: {ms['threads'] / ms['one']:.2f}")
PY
