#!/usr/bin/env bash
# What-if for a transformer across nodes, from a model config alone (no
# profile run): a 48-layer, hidden-6144 GPT (about 22 B parameters, sequence
# 2048, vocabulary 51200, bf16, micro-batch 1) on 4 DGX-H100-like nodes,
# pipeline 8 x data parallel 4, full recomputation; then the same model on
# cloud nodes with one shared NIC, pipeline-first against data-first placement.
#   experiments/transformer_whatif.sh [XPIPE]   (a few seconds)
# Writes experiments/results/transformer_whatif.txt; fails if one simulation
# of the 48-layer case takes 10 s or more.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
xpipe="${1:-$root/build/cli/xpipe}"
out="$here/results/transformer_whatif.txt"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$xpipe" profile transformer --layers 48 --hidden 6144 --heads 48 --vocab 51200 --seq-len 2048 \
  --micro-batch-size 1 --precision bf16 --device "$root/profiles/devices/h100.json" -o "$tmp/gpt48.json"
schedules=xpipe,gpipe,1f1b-flush,interleaved-1f1b,zb-h1,pipedream-2bw
slowest=0
timed() {  # runs xpipe sim, prints its output, keeps the slowest wall time
  local start end
  start=$(date +%s.%N)
  "$xpipe" sim "$@"
  end=$(date +%s.%N)
  slowest=$(python3 -c "print(max($slowest, $end - $start))")
}
{
  echo "# $(date -u +%F) on $(nproc) cores of $(uname -m): xpipe sim, no GPU involved"
  for T in 16 128; do
    echo
    echo "## 48-layer GPT, 4 nodes x 8 H100 (dgx-h100.json), PP = 8, DP = 4, T = $T per replica" \
      "(global batch $((4 * T)) sequences), full recomputation, interleaved with 2 chunks"
    timed --profile "$tmp/gpt48.json" --cluster "$root/profiles/clusters/dgx-h100.json" --stages 8 \
      --data-parallel 4 --micro-batches "$T" --batch-size "$T" --chunks 2 --recompute \
      --schedules "$schedules" --memory-limit-gib 1000000
  done
  echo
  echo "## T = 16 again, XPipe's backward recomputing with its own weights instead of swapping them in" \
    "(a swap keeps a private weight copy per micro-batch in flight, as the executor does)"
  timed --profile "$tmp/gpt48.json" --cluster "$root/profiles/clusters/dgx-h100.json" --stages 8 \
    --data-parallel 4 --micro-batches 16 --batch-size 16 --recompute --schedules xpipe \
    --backward-weights recompute --memory-limit-gib 1000000
  echo
  echo "## The same, T = 16, without recomputation (what does not fit is marked)"
  timed --profile "$tmp/gpt48.json" --cluster "$root/profiles/clusters/dgx-h100.json" --stages 8 \
    --data-parallel 4 --micro-batches 16 --batch-size 16 --chunks 2 --schedules "$schedules" \
    --memory-limit-gib 1000000
  echo
  echo "## Which split of 32 GPUs? Global batch 512 sequences, full recomputation, 1F1B-flush, ZB-H1 and XPipe"
  echo "pp  dp  T    schedule    ms/mini-batch  samples/s  peak GiB  fits 80 GiB"
  for pp in 4 8 16 32; do
    dp=$((32 / pp))
    T=$((512 / dp))
    start=$(date +%s.%N)
    "$xpipe" sim --profile "$tmp/gpt48.json" --cluster "$root/profiles/clusters/dgx-h100.json" --stages "$pp" \
      --data-parallel "$dp" --micro-batches "$T" --batch-size "$T" --recompute --schedules 1f1b-flush,zb-h1,xpipe \
      --memory-limit-gib 1000000 --mini-batches 8 --json >"$tmp/split.json"
    end=$(date +%s.%N)
    slowest=$(python3 -c "print(max($slowest, $end - $start))")
    python3 - "$tmp/split.json" "$pp" "$dp" "$T" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows:
    peak = max(r["peak_memory_bytes"]) / 2**30
    print(f"{sys.argv[2]:>2}  {sys.argv[3]:>2}  {sys.argv[4]:>3}  {r['schedule']:<10}  {r['mini_batch_ms']:>13.1f}"
          f"  {r['samples_per_sec']:>9.1f}  {peak:>8.1f}  {'yes' if r['fits_memory'] else 'no'}")
PY
  done
  for placement in pipeline-first data-first; do
    echo
    echo "## Cloud nodes (pcie-cloud-a100.json, one shared 12.5 GB/s NIC per node), PP = 8, DP = 4," \
      "T = 16, $placement placement, H100 compute times kept"
    timed --profile "$tmp/gpt48.json" --cluster "$root/profiles/clusters/pcie-cloud-a100.json" --stages 8 \
      --data-parallel 4 --micro-batches 16 --batch-size 16 --recompute --schedules xpipe,1f1b-flush,zb-h1 \
      --placement "$placement" --memory-limit-gib 1000000 --overlap-allreduce
  done
  echo
  echo "slowest simulation above: $(printf '%.2f' "$slowest") s of wall time"
} | tee "$out"
python3 -c "import sys; sys.exit(0 if $slowest < 10 else 1)" || { echo "a simulation took 10 s or more" >&2; exit 1; }
