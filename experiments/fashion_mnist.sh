#!/usr/bin/env bash
# XPipe's claim on real data: the LeNet-style CNN on Fashion-MNIST, 4 pipeline
# stages on CPU threads, the same seed for every schedule. Writes one JSONL log
# per schedule and a summary CSV into OUT (default experiments/results).
# PipeDream and SpecTrain run one micro-batch per mini-batch by definition.
# Usage: experiments/fashion_mnist.sh [EPOCHS] [OUT]   (about 2 minutes per schedule per 3 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
out=${2:-experiments/results}
mkdir -p "$out"
xpipe=build/cli/xpipe
summary="$out/fashion_mnist.csv"
echo "schedule,micro_batches,epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds,samples_per_sec,prediction_error" >"$summary"
for entry in gpipe:4 xpipe:4 pipedream:1 stale:4 spectrain:1; do
  s=${entry%%:*}
  t=${entry##*:}
  echo "== $s (T=$t)"
  "$xpipe" train --model cnn --data fashion-mnist --schedule "$s" --stages 4 --micro-batches "$t" \
    --batch-size 64 --epochs "$epochs" --optimizer adam --lr 1e-3 --seed 1 --log "$out/fashion_mnist_$s.jsonl"
  python3 - "$out/fashion_mnist_$s.jsonl" "$s" "$t" >>"$summary" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "epoch":
        print(f'{sys.argv[2]},{sys.argv[3]},{e["epoch"]},{e["train_loss"]:.4f},{e["train_accuracy"]:.4f},'
              f'{e["test_loss"]:.4f},{e["test_accuracy"]:.4f},{e["seconds"]:.1f},{e["samples_per_sec"]:.1f},'
              f'{e["prediction_error"]:.3f}')
PY
done
echo "summary: $summary"
