#!/usr/bin/env bash
# xpipe train writes a JSONL log of every metric and a trace in the
# simulator's format; xpipe validate reports simulated against measured time.
set -euo pipefail
xpipe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$xpipe" train --model mlp --data synthetic --synthetic-samples 1024 --schedule xpipe --stages 2 \
  --micro-batches 4 --batch-size 32 --epochs 2 --log "$tmp/log.jsonl" --trace "$tmp/trace.json" >"$tmp/out"
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
events = [json.loads(l) for l in open(f"{d}/log.jsonl")]
epochs = [e for e in events if e["event"] == "epoch"]
assert len(epochs) == 2, epochs
for e in epochs:
    for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "samples_per_sec",
              "prediction_error"):
        assert k in e, k
assert epochs[1]["train_loss"] < epochs[0]["train_loss"], "loss did not fall"
trace = json.load(open(f"{d}/trace.json"))
spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
passes = [s for s in spans if s["name"][1] in "FB"]
updates = [s for s in spans if s["name"][1] == "U"]
# 32 mini-batches x 4 micro-batches x (F, B) x 2 stages, and an update per
# mini-batch and stage, with real start and end times.
assert len(passes) == 32 * 4 * 2 * 2, len(passes)
assert len(updates) == 32 * 2 and len(spans) == len(passes) + len(updates), len(spans)
assert all(s["dur"] >= 0 for s in spans)
PY
grep -q "epoch" "$tmp/out"
# An output path that cannot be written fails before training, in one line.
if "$xpipe" train --data synthetic --stages 2 --max-steps 2 --checkpoint /nonexistent/dir/ck >"$tmp/o" 2>"$tmp/e"; then
  echo "FAIL: an unwritable --checkpoint trained"; exit 1
fi
grep -q "^xpipe train: --checkpoint: cannot write '/nonexistent/dir/ck'$" "$tmp/e" || { cat "$tmp/e"; exit 1; }
[ "$(wc -l <"$tmp/e")" -eq 1 ] || { cat "$tmp/e"; exit 1; }
# Bad numbers: one line each, exit 2, before any data is loaded.
bad() {  # expected words, args...
  local words=$1
  shift
  if "$xpipe" train --data synthetic "$@" >"$tmp/o" 2>"$tmp/e"; then echo "FAIL: train $* ran"; exit 1; fi
  grep -qF -- "$words" "$tmp/e" && [ "$(wc -l <"$tmp/e")" -eq 1 ] || { echo "FAIL: train $*"; cat "$tmp/e"; exit 1; }
}
bad "--lr: must be between 0 and 100" --lr nan
bad "--micro-batches: must be between 1 and 65536" --micro-batches 0
bad "--batch-size" --batch-size 99999999999
bad "--stages: must be between 1 and 1024" --stages 100000
bad "--partition: expected whole numbers" --partition 1e300,1
bad "arguments: may not contain '%value%'" --model '%value%'
echo "8 passed, 0 failed"
