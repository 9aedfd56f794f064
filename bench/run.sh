#!/usr/bin/env bash
# Regression benchmarks for xpipe itself, robust to noisy shared machines:
# every figure is a ratio to a reference measured in the same run (a plain
# critical-path loop over the same actions, a memcpy of the same bytes, a
# thread hand-off), compared with the committed bench/baseline.json. Fails
# (exit 1) when a ratio is worse than its baseline by more than --threshold
# (100 % for the two figures made of thread wake-ups, which swing the most).
#
#   bench/run.sh [--build DIR] [--threshold 0.35] [--update] [--quick] [--slowed]
#
#   --update   write the ratios of this run as the new baseline
#   --quick    the small cases and the event engine's 1024 x 4096 case only
#   --slowed   run sim_bench_slowed (a test-only build with extra work per
#              event) in place of sim_bench: it must be caught
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/../build"
threshold=0.35
update=0
quick=0
sim=sim_bench
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --threshold) threshold="$2"; shift 2 ;;
    --update) update=1; shift ;;
    --quick) quick=1; shift ;;
    --slowed) sim=sim_bench_slowed; shift ;;
    *) echo "bench/run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # binary, filter
  local bin="$build/bench/$1"
  [[ -x "$bin" ]] || { echo "bench/run.sh: $bin not built (Google Benchmark found?)" >&2; exit 2; }
  # The median of 3 repetitions: one noisy pass does not decide.
  "$bin" --benchmark_filter="$2" --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json --benchmark_out="$tmp/$1.json" --benchmark_out_format=json >/dev/null
}
if [[ $quick -eq 1 ]]; then
  run "$sim" 'BM_Simulate/0/8/64/|BM_Simulate/0/1024/4096/1048576/1/0|BM_ReferenceLoop'
else
  run "$sim" '.'
  run schedule_bench '.'
  [[ -x "$build/bench/exec_bench" ]] && run exec_bench '.'
fi
/usr/bin/python3 - "$tmp" "$here/baseline.json" "$threshold" "$update" <<'PY'
import glob, json, os, sys

tmp, baseline_path, threshold, update = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
NS = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
per_unit = {}  # benchmark name -> ns per unit (action, hand-off, MiB)
labels = {}
for path in glob.glob(os.path.join(tmp, "*.json")):
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") != "median" or "units" not in b:
            continue
        name = b["run_name"].split("/iterations")[0].split("/min_time")[0].split("/real_time")[0]
        per_unit[name] = b["real_time"] * NS[b["time_unit"]] / b["units"]
        labels[name] = b.get("label", "")

# What each figure is divided by: a reference of the same shape, same run.
REFERENCE = {
    "BM_Simulate/0/8/64/0/0/0": "BM_ReferenceLoop/8/64",
    "BM_Simulate/0/8/64/1048576/1/0": "BM_ReferenceLoop/8/64",
    "BM_ExecutorPerAction": "BM_ThreadPingPong",
    "BM_HandOff": "BM_ThreadPingPong",
    "BM_WeightSwap/16": "BM_Memcpy/16",
    "BM_Prediction/16": "BM_Memcpy/16",
}
# Thread wake-ups on a shared 2-core machine swing +-60 % between runs, more
# than their reference follows, and a prediction from 13 to 43 memcpys of its
# weights (one run in five of the final runs of 2026-11-30 crossed 35 %):
# those figures get a looser threshold.
LOOSE = {"BM_ExecutorPerAction": 1.0, "BM_HandOff": 1.0, "BM_Prediction/16": 1.0}

def reference(name):
    if name in REFERENCE:
        return REFERENCE[name]
    if name.startswith("BM_Simulate/") and "/257/16384/" in name:
        return "BM_ReferenceLoop/257/16384"
    if name.startswith(("BM_Simulate/", "BM_GenerateAndValidate/", "BM_Annotate/")):
        return "BM_ReferenceLoop/1024/4096"
    return None

ratios = {}
for name, t in sorted(per_unit.items()):
    ref = reference(name)
    if ref and ref in per_unit:
        ratios[name] = (t, per_unit[ref], t / per_unit[ref], ref)

if update:
    json.dump({"note": "ratios of per-unit time to the same run's reference (bench/run.sh); lower is faster",
               "ratios": {n: round(r[2], 4) for n, r in ratios.items()}},
              open(baseline_path, "w"), indent=1, sort_keys=True)
    print(f"wrote {len(ratios)} ratios to {baseline_path}")
base = json.load(open(baseline_path))["ratios"] if os.path.exists(baseline_path) else {}

worse = 0
print(f"{'benchmark':44} {'per unit':>12} {'reference':>12} {'ratio':>9} {'baseline':>9} {'change':>8}")
for name, (t, rt, ratio, ref) in ratios.items():
    b = base.get(name)
    change = f"{ratio / b - 1:+.0%}" if b else "new"
    bad = b is not None and ratio > b * (1 + max(threshold, LOOSE.get(name, 0)))
    worse += bad
    unit = "ns"
    print(f"{name:44} {t:10.1f}{unit} {rt:10.1f}{unit} {ratio:9.3f} {b if b else float('nan'):9.3f} {change:>8}"
          + ("  WORSE" if bad else ""))
# The event engine against the dataflow engine on the same schedule, same run
# (issue 17's target: within 3x); not a regression check.
for label, event, dataflow in (
        ("GPipe 1024 x 4096, 1 MiB transfers, chain", "BM_Simulate/0/1024/4096/1048576/1/0",
         "BM_Simulate/0/1024/4096/1048576/0/0"),
        ("GPipe 257 x 16384, 1 MiB transfers, event engine on a 256-sender bus, dataflow on the chain",
         "BM_Simulate/0/257/16384/1048576/1/1", "BM_Simulate/0/257/16384/1048576/0/0")):
    if event in per_unit and dataflow in per_unit:
        print(f"event / dataflow engine, {label}: {per_unit[event] / per_unit[dataflow]:.2f}x "
              f"({1e3 / per_unit[event]:.1f} vs {1e3 / per_unit[dataflow]:.1f} M actions/s)")
print(f"{worse} of {len(ratios)} ratios worse than the baseline by more than {threshold:.0%}"
      if worse else f"ok: no ratio worse than the baseline by more than {threshold:.0%}")
sys.exit(1 if worse else 0)
PY
