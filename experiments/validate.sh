#!/usr/bin/env bash
# How far the simulator's prediction is from the executor (xpipe validate):
# models cnn (micro-batches of 32) and mlp (of 512, so a pass is about a
# millisecond, not a thread wake-up), 2 stages as threads of one process and
# as 2 Gloo ranks under torchrun, GPipe, 1F1B-flush, PipeDream and XPipe.
# Each case profiles, predicts from the profile alone and runs the executor,
# in rounds; a case's error is the median of its rounds' (each round's
# prediction against its own run). Writes one JSON per case and a CSV of the
# error table into OUT, prints the table and the mean absolute error.
# Usage: experiments/validate.sh [OUT]   (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-experiments/results}
mkdir -p "$out"
xpipe=${XPIPE:-build/cli/xpipe}
torchrun=${TORCHRUN:-/opt/xpipe-venv/bin/torchrun}
schedules=gpipe,1f1b-flush,pipedream,xpipe
for model in cnn:32 mlp:512; do
  m=${model%%:*}
  b=${model##*:}
  args=(validate --model "$m" --micro-batch-size "$b" --stages 2 --micro-batches 4 --schedules "$schedules" --json)
  echo "== $m, threads" >&2
  "$xpipe" "${args[@]}" >"$out/validate_${m}_threads.json"
  echo "== $m, 2 Gloo ranks" >&2
  OMP_NUM_THREADS=1 "$torchrun" --no-python --nproc-per-node 2 -- "$xpipe" "${args[@]}" \
    2>/dev/null | sed -n '/^{/,$p' >"$out/validate_${m}_gloo.json"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = []
for m in ("cnn", "mlp"):
    for mode in ("threads", "gloo"):
        v = json.load(open(f"{out}/validate_{m}_{mode}.json"))
        for s in v["schedules"]:
            busy = " ".join(f'{t["predicted_busy_ms"]:.2f}/{t["measured_busy_ms"]:.2f}' for t in s["stages"])
            rows.append((m, v["mode"], s["schedule"], s["predicted_ms"], s["measured_ms"], s["error_pct"], busy))
with open(f"{out}/validate.csv", "w") as f:
    f.write("model,mode,schedule,predicted_ms,measured_ms,error_pct\n")
    for r in rows:
        f.write(f"{r[0]},{r[1]},{r[2]},{r[3]:.3f},{r[4]:.3f},{r[5]:.2f}\n")
print(f"| model | stages as | schedule | predicted ms | measured ms | error | busy per stage, predicted/measured ms |")
print(f"|---|---|---|---:|---:|---:|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:+.1f} % | {r[6]} |")
mae = sum(abs(r[5]) for r in rows) / len(rows)
print(f"\nmean absolute error over {len(rows)} cases: {mae:.1f} %; largest: {max(abs(r[5]) for r in rows):.1f} %")
# The same rounds compared unpaired, as validate did before: the median
# prediction against the median run, each taken over the rounds on its own.
unpaired = []
for m in ("cnn", "mlp"):
    for mode in ("threads", "gloo"):
        for s in json.load(open(f"{out}/validate_{m}_{mode}.json"))["schedules"]:
            p = sorted(r["predicted_ms"] for r in s["rounds"])[len(s["rounds"]) // 2]
            q = sorted(r["measured_ms"] for r in s["rounds"])[len(s["rounds"]) // 2]
            unpaired.append(abs(100 * (p - q) / q))
print(f"unpaired (median prediction against median run): {sum(unpaired) / len(unpaired):.1f} %")
PY
