#!/usr/bin/env bash
# A run killed with SIGKILL mid-epoch and resumed ends with bitwise-identical
# weights to an uninterrupted run (CPU, fixed seed).
set -euo pipefail
xpipe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(train --model cnn --data synthetic --synthetic-samples 8192 --schedule xpipe --stages 2 --micro-batches 4
      --epochs 2 --checkpoint-every 8 --seed 7 --no-eval)
"$xpipe" "${args[@]}" --checkpoint "$tmp/a.ckpt" --save-weights "$tmp/full.bin" >/dev/null
"$xpipe" "${args[@]}" --checkpoint "$tmp/b.ckpt" --save-weights "$tmp/resumed.bin" >/dev/null &
pid=$!
# Kill after a few checkpoints, well before the end of the first epoch.
for _ in $(seq 1 600); do
  [ -f "$tmp/b.ckpt" ] && [ "$(stat -c %Y "$tmp/b.ckpt")" -ge 0 ] && sleep 0.3 && break
  sleep 0.05
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ -f "$tmp/b.ckpt" ] || { echo "no checkpoint was written before the kill"; exit 1; }
[ ! -f "$tmp/resumed.bin" ] || { echo "the run finished before it was killed; nothing tested"; exit 1; }
"$xpipe" "${args[@]}" --checkpoint "$tmp/b.ckpt" --save-weights "$tmp/resumed.bin" --resume >/dev/null
if cmp -s "$tmp/full.bin" "$tmp/resumed.bin"; then
  echo "1 passed, 0 failed"
else
  echo "resumed weights differ from the uninterrupted run"
  exit 1
fi
