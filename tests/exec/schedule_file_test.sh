#!/usr/bin/env bash
# A schedule file drives training: a file holding one mini-batch of a
# synchronous schedule, run back to back, trains to the same bits as the
# generated schedule (whose rows are exactly that concatenation); a file with
# a weight policy trains and lowers its loss; a PyTorch-style CSV with
# REDUCE_GRAD and OVERLAP_F_B trains.
set -euo pipefail
xpipe=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(--model mlp --data synthetic --synthetic-samples 512 --batch-size 32 --epochs 1 --max-steps 6 --no-eval)
for kind in gpipe 1f1b-flush; do
  "$xpipe" schedule --schedule "$kind" --stages 2 --micro-batches 4 --mini-batches 1 --format json >"$tmp/$kind.json"
  "$xpipe" train "${common[@]}" --schedule "$kind" --stages 2 --micro-batches 4 --save-weights "$tmp/gen.bin" >/dev/null
  "$xpipe" train "${common[@]}" --schedule-file "$tmp/$kind.json" --save-weights "$tmp/file.bin" >"$tmp/out"
  cmp "$tmp/gen.bin" "$tmp/file.bin" || { echo "FAIL: $kind from a file trains other weights"; exit 1; }
  grep -q "file $kind.json ($kind weights)" "$tmp/out" || { cat "$tmp/out"; exit 1; }
done
# PyTorch's CSV of a V-shaped zero-bubble order (written as PyTorch writes
# DualPipeV: REDUCE_GRAD, an OVERLAP_F_B), trained with XPipe's weights over 2
# mini-batches per run.
cat >"$tmp/v.csv" <<'CSV'
0F0,0F1,3F0,3B0,0F2,(3F1;0B0)OVERLAP_F_B,3B1,0F3,3F2,0B1,3B2,3F3,0B2,3B3,3REDUCE_GRAD,0B3,0REDUCE_GRAD
1F0,2F0,1F1,2B0,2F1,1B0,2B1,1F2,2F2,1B1,2B2,1F3,2F3,1B2,2B3,2REDUCE_GRAD,1B3,1REDUCE_GRAD
CSV
"$xpipe" schedule --check "$tmp/v.csv" --micro-batches 2 2>"$tmp/notes" | grep -q "ok (2 devices, 4 stages, 2 mini-batches of 2 micro-batches"
grep -q "dropped 4 UNSHARD/RESHARD/REDUCE_GRAD" "$tmp/notes" || { cat "$tmp/notes"; exit 1; }
"$xpipe" train --model mlp --data synthetic --synthetic-samples 1024 --batch-size 32 --epochs 2 --no-eval \
  --schedule-file "$tmp/v.csv" --micro-batches 2 --policy xpipe --log "$tmp/log.jsonl" >/dev/null 2>&1
python3 - "$tmp/log.jsonl" <<'PY'
import json, sys
epochs = [json.loads(l) for l in open(sys.argv[1]) if '"epoch"' in l]
epochs = [e for e in epochs if e["event"] == "epoch"]
assert len(epochs) == 2 and epochs[1]["train_loss"] < epochs[0]["train_loss"], epochs
assert epochs[0]["prediction_error"] > 0, "xpipe weights made no prediction"
PY
# Flags the file decides are refused; --policy needs a file.
if "$xpipe" train "${common[@]}" --schedule-file "$tmp/v.csv" --stages 4 >/dev/null 2>"$tmp/e"; then exit 1; fi
grep -q "^xpipe train: --stages: comes from --schedule-file$" "$tmp/e" || { cat "$tmp/e"; exit 1; }
if "$xpipe" train "${common[@]}" --policy xpipe >/dev/null 2>"$tmp/e"; then exit 1; fi
grep -q "^xpipe train: --policy: needs --schedule-file$" "$tmp/e" || { cat "$tmp/e"; exit 1; }
echo ok
