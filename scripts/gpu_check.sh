#!/usr/bin/env bash
# The CUDA paths of the executor on a machine with a GPU and the pinned torch
# (python3 -c 'import torch' must work there). Prints what it measured.
#   1. one process, every stage on the GPU (per-stage CUDA streams, in-process
#      transport), four schedules: samples/s, and final weights against the
#      CPU executor's;
#   2. two ranks under torchrun with --transport gloo (CUDA tensors staged
#      through host memory), weights against the one-process GPU run;
#   3. two ranks with --transport nccl (needs one GPU per rank).
# Usage: scripts/gpu_check.sh XPIPE_BINARY [EXTRA_LIB_DIR]
set -u
xpipe=$1
torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
libs="$torch_dir/lib"
for d in "$torch_dir"/../nvidia/*/lib "$torch_dir"/../nvidia/cu13/lib /usr/local/cuda/lib64; do [ -d "$d" ] && libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs:${2:-}:${LD_LIBRARY_PATH:-}"
torchrun="$(dirname "$(python3 -c 'import sys; print(sys.executable)')")/torchrun"
tmp=$(mktemp -d)
nvidia-smi -L
diff_weights() {
  python3 - "$1" "$2" <<'PY'
import json, sys, numpy as np
def load(p):
    with open(p, "rb") as f:
        h = json.loads(f.readline()); return h, np.frombuffer(f.read(), dtype=np.float32)
(ha, a), (hb, b) = load(sys.argv[1]), load(sys.argv[2])
print("bitwise equal" if a.tobytes() == b.tobytes() else f"max abs diff {np.abs(a - b).max():.3g}" if ha == hb else "different models")
PY
}
common=(--model mlp --data synthetic --synthetic-samples 8192 --stages 2 --batch-size 256 --max-steps 30 --no-eval --seed 4)
echo "== 1. one process, stages on cuda:0 (in-process transport)"
for s in gpipe 1f1b-flush pipedream xpipe xpipe-recompute; do
  T=4; [ $s = pipedream ] && T=1
  flags=(--schedule "${s%-recompute}" --micro-batches $T)
  [ $s = xpipe-recompute ] && flags+=(--backward-weights recompute)
  timeout 120 "$xpipe" train "${common[@]}" "${flags[@]}" --device cuda --save-weights "$tmp/$s.cuda" | tail -1 | awk -v s=$s '{print s ": " $7 " samples/s"}'
  timeout 120 "$xpipe" train "${common[@]}" "${flags[@]}" --device cpu --save-weights "$tmp/$s.cpu" >/dev/null
  echo "   $s cuda vs cpu weights: $(diff_weights "$tmp/$s.cuda" "$tmp/$s.cpu")"
done
echo "== 2. two ranks under torchrun, gloo transport, both on the one GPU"
for s in gpipe xpipe; do
  T=4
  timeout 180 "$torchrun" --no-python --nproc-per-node 2 --master-port 29$((RANDOM % 900 + 100)) "$xpipe" train "${common[@]}" \
    --schedule $s --micro-batches $T --device cuda --transport gloo --save-weights "$tmp/$s.gloo" > "$tmp/$s.gloo.out" 2>&1
  echo "   $s exit $? $(tail -1 "$tmp/$s.gloo.out" | awk '{print $7 " samples/s"}'); vs one process: $(diff_weights "$tmp/$s.gloo" "$tmp/$s.cuda")"
done
echo "== 3. two ranks, nccl transport (one GPU for two ranks)"
timeout 180 "$torchrun" --no-python --nproc-per-node 2 --master-port 29$((RANDOM % 900 + 100)) "$xpipe" train "${common[@]}" \
  --schedule gpipe --micro-batches 4 --device cuda --transport nccl --comm-timeout 60 --save-weights "$tmp/nccl" > "$tmp/nccl.out" 2>&1
echo "   exit $?"; grep -m3 -E "xpipe train|NCCL|Duplicate|error" "$tmp/nccl.out" | cut -c1-300
[ -f "$tmp/nccl" ] && echo "   nccl vs one process: $(diff_weights "$tmp/nccl" "$tmp/gpipe.cuda")"
