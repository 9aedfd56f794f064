#!/usr/bin/env bash
# The front end's contract: --help everywhere; bad input exits 2 with one
# line on stderr naming the file, flag or field.
# Usage: cli_test.sh path/to/xpipe source_dir
set -uo pipefail
xpipe=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {  # name, expected status, expected stderr substring, command...
  local name=$1 want=$2 words=$3
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [ "$got" -ne "$want" ] || ! grep -qF -- "$words" "$tmp/err" "$tmp/out" ||
     { [ "$want" -eq 2 ] && [ "$lines" -ne 1 ]; }; then
    echo "FAIL $name: status $got (want $want), stderr:"
    cat "$tmp/err"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}
check "xpipe --help" 0 "commands:" "$xpipe" --help
for c in sim schedule profile train validate; do
  check "$c --help" 0 "usage: xpipe $c" "$xpipe" "$c" --help
done
check "unknown command" 2 "unknown command" "$xpipe" frobnicate
check "missing profile" 2 "missing.json: cannot open file" "$xpipe" sim --profile missing.json
printf '{"name":"m","batch_size":8,"layers":[{"name":"a","forward_ms":1,"activation_bytes":1,"parameter_bytes":1}]}' >"$tmp/nob.json"
check "missing field" 2 "nob.json.layers[0]: missing field 'backward_ms'" "$xpipe" sim --profile "$tmp/nob.json"
printf '{"name":"m","batch_size":8,"layers":[{"name":"a","forward_ms":-2,"backward_ms":1,"activation_bytes":1,"parameter_bytes":1}]}' >"$tmp/neg.json"
check "negative time" 2 "neg.json.layers[0].forward_ms: must not be negative" "$xpipe" sim --profile "$tmp/neg.json"
check "unknown schedule" 2 "--schedules: unknown schedule 'pipedrem'" "$xpipe" sim --profile "$src/profiles/alexnet.json" --schedules pipedrem
check "unknown prediction base" 2 "--predict-from: unknown prediction base 'newest'" \
  "$xpipe" schedule --schedule xpipe --predict-from newest
# --predict-from bellwether: XPipe's later micro-batches reuse its prediction (~).
check "bellwether reuse" 0 "~s" "$xpipe" schedule --schedule xpipe --micro-batches 4 --format versions \
  --predict-from bellwether
check "stages > layers" 2 "--stages: 64 stages but the profile 'alexnet' has only 23 layers" \
  "$xpipe" sim --profile "$src/profiles/alexnet.json" --stages 64
check "bad flag value" 2 "--stages" "$xpipe" sim --profile "$src/profiles/alexnet.json" --stages many
check "main job" 0 "xpipe" "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe,gpipe,pipedream --stages 4
printf '0F0,0B0\n1B0,1F0\n' >"$tmp/bad.csv"
check "schedule check" 2 "bad.csv: device 1 step 0 (1B0): backward before its forward" "$xpipe" schedule --check "$tmp/bad.csv" --micro-batches 1
"$xpipe" schedule --schedule 1f1b-flush --stages 3 --micro-batches 3 --mini-batches 1 --format csv --lowered >"$tmp/ok.csv"
check "schedule check ok" 0 "ok (3 devices" "$xpipe" schedule --check "$tmp/ok.csv" --micro-batches 3
check "profile import" 0 '"layers"' sh -c "'$xpipe' profile import '$src/../shared/profiles/pipedream/alexnet.graph.txt' -o '$tmp/a.json' && cat '$tmp/a.json'"
check "sweep" 0 "stages,micro-batches" "$xpipe" sim --profile "$src/profiles/alexnet.json" --sweep stages=2,4 --sweep micro-batches=1,2
check "bad engine" 2 "--engine: expected auto, dataflow or event, got 'fast'" "$xpipe" sim --profile "$src/profiles/alexnet.json" --engine fast
check "dataflow on a bus" 2 "--engine: dataflow runs chains only" "$xpipe" sim --profile "$src/profiles/alexnet.json" --engine dataflow --shared-bus
# Hostile input (issue 13): each is one line and exit 2 within 10 s, never
# an abort, a hang or a silent result.
t10() { timeout 10 "$@"; }
alex="$src/profiles/alexnet.json"
check "empty schedule list" 2 "--schedules: names no schedule" t10 "$xpipe" sim --profile "$alex" --schedules ,
python3 - "$alex" "$tmp" <<'PY'
import json, sys
src, tmp = sys.argv[1], sys.argv[2]
text = open(src).read()
p = json.loads(text)
open(f"{tmp}/overflow.json", "w").write(text.replace('"batch_size": 256', '"batch_size": 1e400', 1))
q = json.loads(text); q["layers"][1]["inptu"] = True; json.dump(q, open(f"{tmp}/typo.json", "w"))
q = json.loads(text); q["layers"][1]["forward_ms"] = 9.3e12; json.dump(q, open(f"{tmp}/huge.json", "w"))
q = json.loads(text); q["layers"][1]["a\nb"] = 1; json.dump(q, open(f"{tmp}/newline.json", "w"))
q = json.loads(text); q["partition"] = [2**40, 1]; json.dump(q, open(f"{tmp}/part.json", "w"))
c = {"devices": 4, "link": {"bandwidth_GBps": 12, "latency_us": 10}}
json.dump(dict(c, lnk=1), open(f"{tmp}/c_typo.json", "w"))
json.dump(dict(c, devices="four"), open(f"{tmp}/c_type.json", "w"))
json.dump(dict(c, speed=[1e-300, 1, 1, 1]), open(f"{tmp}/c_speed.json", "w"))
json.dump(dict(c, link={"bandwidth_GBps": 0, "latency_us": 10}), open(f"{tmp}/c_bw.json", "w"))
s = {"kind": "custom", "devices": 1, "stages": 1, "micro_batches": 1, "mini_batches": 2000000000,
     "stage_device": [0], "actions": [[{"action": "0F0", "mini_batch": 0, "micro_batch": 0, "weights": "current",
                                        "version": 0, "horizon": 0}]]}
json.dump(s, open(f"{tmp}/s_bomb.json", "w"))
s["mini_batches"] = 1; s["actions"][0][0]["horizn"] = 0; json.dump(s, open(f"{tmp}/s_typo.json", "w"))
PY
check "number overflow" 2 "overflow.json: not valid JSON" t10 "$xpipe" sim --profile "$tmp/overflow.json"
check "unknown key, nearest named" 2 "typo.json.layers[1]: unknown field 'inptu' (did you mean 'input'?)" \
  t10 "$xpipe" sim --profile "$tmp/typo.json"
check "time that overflows ns" 2 "huge.json.layers[1].forward_ms: must be between 0 and 1e+07" \
  t10 "$xpipe" sim --profile "$tmp/huge.json"
check "newline in a key" 2 "unknown field 'a\x0ab'" t10 "$xpipe" sim --profile "$tmp/newline.json"
check "partition out of range" 2 "part.json.partition: each stage needs between 1 and 23 layers" \
  t10 "$xpipe" sim --profile "$tmp/part.json"
check "cluster typo" 2 "c_typo.json: unknown field 'lnk' (did you mean 'link'?)" \
  t10 "$xpipe" sim --profile "$alex" --cluster "$tmp/c_typo.json"
check "cluster type" 2 "c_type.json.devices: expected a number" t10 "$xpipe" sim --profile "$alex" --cluster "$tmp/c_type.json"
check "absurd speed" 2 "c_speed.json.speed[0]: must be between 0.001 and 1000" \
  t10 "$xpipe" sim --profile "$alex" --cluster "$tmp/c_speed.json"
check "zero bandwidth" 2 "c_bw.json.link.bandwidth_GBps: must be between" \
  t10 "$xpipe" sim --profile "$alex" --cluster "$tmp/c_bw.json"
printf '0F2000000000\n' >"$tmp/bomb.csv"
check "13-byte CSV bomb" 2 "bomb.csv: micro-batch 2000000000 named, but the file holds only 1 actions" t10 "$xpipe" schedule --check "$tmp/bomb.csv" --micro-batches 2
printf '0F4000000000\n' >"$tmp/bomb2.csv"
check "CSV micro-batch past int32" 2 "number out of range" t10 "$xpipe" schedule --check "$tmp/bomb2.csv"
printf '4000000000F0\n' >"$tmp/stage_bomb.csv"
check "CSV stage bomb" 2 "number out of range" t10 "$xpipe" schedule --check "$tmp/stage_bomb.csv" --micro-batches 1
printf '2000000F0\n' >"$tmp/stage_big.csv"
check "CSV stage beyond the file" 2 "stage_big.csv: stage 2000000 named" \
  t10 "$xpipe" schedule --check "$tmp/stage_big.csv" --micro-batches 1
check "JSON schedule bomb" 2 "s_bomb.json: its numbers ask for" t10 "$xpipe" schedule --check "$tmp/s_bomb.json"
check "JSON schedule typo" 2 "unknown field 'horizn' (did you mean 'horizon'?)" t10 "$xpipe" schedule --check "$tmp/s_typo.json"
check "stages far beyond layers" 2 "--stages: 100000 stages but the profile 'alexnet' has only 23 layers" \
  t10 "$xpipe" sim --profile "$alex" --stages 100000
check "too many passes" 2 "more than the 5 million passes" t10 "$xpipe" sim --profile "$alex" --micro-batches 100000000 --batch-size 100000000
printf 'node1 -- Conv -- forward_compute_time=inf, backward_compute_time=1.0, activation_size=4.0, parameter_size=0.0\n' \
  >"$tmp/inf.txt"
check "PipeDream inf" 2 "inf.txt:1: forward_compute_time must be a number from 0 to" \
  t10 "$xpipe" profile import "$tmp/inf.txt"
printf 'node1 -- Conv\xff\xfe -- forward_compute_time=1.0, backward_compute_time=1.0, activation_size=\xff, parameter_size=0.0\n' \
  >"$tmp/bytes.txt"
check "PipeDream bytes that are not UTF-8" 2 "bytes.txt:1: text that is not UTF-8" \
  t10 "$xpipe" profile import "$tmp/bytes.txt"
# A 1.3 MB profile of 9000 layers: an automatic partition that would take
# minutes and times that overflow are refused at once.
python3 -c "
import json
json.dump({'name': 'wide', 'batch_size': 64, 'layers': [{'name': f'l{i}', 'forward_ms': 1e7, 'backward_ms': 1e7,
           'activation_bytes': 2**50, 'parameter_bytes': 2**50} for i in range(9000)]}, open('$tmp/wide.json', 'w'))"
check "totals that overflow int64" 2 "wide.json: the layers' times add up to more than 1e11 ms" t10 "$xpipe" sim --profile "$tmp/wide.json"
check "a simulation longer than int64 ns" 2 "add up to more than int64 nanoseconds can hold" \
  t10 "$xpipe" sim --profile "$src/profiles/alexnet.json" --latency-us 1e9 --mini-batches 100000 --micro-batches 8 --batch-size 256
sed -i 's/10000000.0/1.0/g; s/1125899906842624/4096/g' "$tmp/wide.json"
check "partition search too large" 2 "is too large to search; give --partition" t10 "$xpipe" sim --profile "$tmp/wide.json"
# The dataflow engine against the event-queue reference, end to end: the same
# table and the same trace, byte for byte.
for e in dataflow event; do
  "$xpipe" sim --profile "$src/profiles/resnet50.json" --schedules xpipe,gpipe,zb-h1 --stages 4 --micro-batches 8 \
    --speeds 1,0.8,1,1.2 --jitter 0.1 --bandwidth-gbps 3 --engine $e --trace "$tmp/$e.trace.json" >"$tmp/$e.txt"
done
check "engines agree" 0 "same" sh -c "cmp '$tmp/dataflow.txt' '$tmp/event.txt' && echo same"
check "engines' traces agree" 0 "same" sh -c "cmp '$tmp/dataflow.trace.json' '$tmp/event.trace.json' && echo same"
# Schedule files (issue 14): PyTorch's CSV in, xpipe's CSV and JSON out, sim.
printf '0UNSHARD,0F0,0F1,0B0,0B1,0REDUCE_GRAD\n1F0,1B0,1F1,1B1,1REDUCE_GRAD\n' >"$tmp/pt.csv"
check "check PyTorch csv" 0 "ok (2 devices, 2 stages, 1 mini-batches of 2 micro-batches" \
  "$xpipe" schedule --check "$tmp/pt.csv"
check "check notes the dropped actions" 0 "dropped 3 UNSHARD/RESHARD/REDUCE_GRAD" \
  "$xpipe" schedule --check "$tmp/pt.csv"
check "schedule file to xpipe csv" 0 "0F0,0F1,,0B0,,0B1,0U0" \
  "$xpipe" schedule --schedule-file "$tmp/pt.csv" --format xpipe-csv
check "schedule file to json" 0 '"kind": "xpipe"' \
  "$xpipe" schedule --schedule-file "$tmp/pt.csv" --format json --policy xpipe
check "gpipe in PyTorch's backward order" 0 "0F0,0F1,,,0B0,0B1" \
  "$xpipe" schedule --schedule gpipe --stages 2 --mini-batches 1 --format csv --gpipe-backward-order forward
check "sim schedule file, two policies" 0 "pt.csv (xpipe)" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedule-file "$tmp/pt.csv" --micro-batches 1 \
  --policy gpipe,xpipe
check "sim --policy without a file" 2 "--policy: needs --schedule-file" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --policy xpipe
check "sim --schedules and a file" 2 "--schedules: give --schedules or --schedule-file" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedule-file "$tmp/pt.csv" --schedules gpipe
check "sim unknown policy" 2 "--policy: unknown schedule 'fast'" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedule-file "$tmp/pt.csv" --policy fast
check "check T against the file" 2 "holds 2 micro-batches, which do not split into mini-batches of 3" \
  "$xpipe" schedule --check "$tmp/pt.csv" --micro-batches 3
check "bad overlap" 2 "expected (A;B)OVERLAP_F_B" \
  "$xpipe" schedule --check <(printf '(0F0;0B0)OVERLAP\n')
check "bad gpipe order" 2 "--gpipe-backward-order: expected reverse or forward" \
  "$xpipe" schedule --gpipe-backward-order up

# Regression check against a saved run (issue 17): the same run passes, a
# slower link is caught (exit 1), a tolerance that covers it passes.
"$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe,gpipe --json >"$tmp/base.json"
check "baseline: same run" 0 "ok: nothing worse" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe,gpipe --baseline "$tmp/base.json"
check "baseline: slower link" 1 "xpipe                        samples/s" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe,gpipe --baseline "$tmp/base.json" \
  --bandwidth-gbps 3 --tolerance 2%
check "baseline: within tolerance" 0 "ok: nothing worse" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe,gpipe --baseline "$tmp/base.json" \
  --bandwidth-gbps 11 --tolerance 30%
check "baseline: schedule gone" 1 "gpipe: in the baseline, not in this run" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --schedules xpipe --baseline "$tmp/base.json"
check "baseline: bad tolerance" 2 "--tolerance: expected a fraction (0.02) or a percentage (2%), got 'two'" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --baseline "$tmp/base.json" --tolerance two
printf '[{"schedule": "xpipe"}]' >"$tmp/bad_base.json"
check "baseline: not a sim json" 2 "bad_base.json: [0]: missing field 'samples_per_sec'" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --baseline "$tmp/bad_base.json"

# Transformer profiles, nodes and data parallelism (issue 16).
gpt=(--layers 8 --hidden 1024 --heads 16 --vocab 32000 --seq-len 1024 --device "$src/profiles/devices/h100.json")
check "profile transformer" 0 '"forward_flops":' "$xpipe" profile transformer "${gpt[@]}"
"$xpipe" profile transformer "${gpt[@]}" -o "$tmp/gpt.json"
"$xpipe" sim --profile "$tmp/gpt.json" --cluster "$src/profiles/clusters/dgx-h100.json" --stages 8 \
  --data-parallel 4 --micro-batches 8 --batch-size 8 --schedules gpipe,xpipe --json >"$tmp/dp.json"
python3 - "$tmp/dp.json" <<'PY' && pass=$((pass + 1)) || { echo "FAIL: data-parallel json"; fail=$((fail + 1)); }
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["gpus"] for r in rows] == [32, 32], rows
assert all(len(r["allreduce_ms"]) == 8 and min(r["allreduce_ms"]) > 0 for r in rows)
assert all(abs(r["samples_per_sec_per_gpu"] * 32 - r["samples_per_sec"]) < 1e-6 * r["samples_per_sec"] for r in rows)
PY
check "too few GPUs for the replicas" 2 "--stages: 40 devices needed (5 replicas), cluster" \
  "$xpipe" sim --profile "$tmp/gpt.json" --cluster "$src/profiles/clusters/dgx-h100.json" --stages 8 \
  --data-parallel 5 --micro-batches 8 --batch-size 8
check "nodes on a cluster without" 2 "--nodes: the cluster has no nodes" \
  "$xpipe" sim --profile "$tmp/gpt.json" --nodes 2
check "bad placement" 2 "--placement: expected pipeline-first or data-first" \
  "$xpipe" sim --profile "$tmp/gpt.json" --placement diagonal
check "transformer: heads" 2 "--heads: 3 heads do not divide the hidden size 1024" \
  "$xpipe" profile transformer --layers 2 --hidden 1024 --heads 3 --vocab 10 --seq-len 8 \
  --device "$src/profiles/devices/h100.json"
check "transformer: precision" 2 "--precision: unknown precision 'fp4'" \
  "$xpipe" profile transformer "${gpt[@]}" --precision fp4
check "transformer: device missing" 2 "the option '--device' is required" \
  "$xpipe" profile transformer --layers 2 --hidden 64 --heads 4 --vocab 10 --seq-len 8
printf '{"name": "slow network", "link": {"bandwidth_GBps": 450, "latency_us": 1}, "nodes": {"count": 2,
  "gpus_per_node": 2, "network": {"bandwidth_GBps": 1e-9, "latency_us": 1}}}' >"$tmp/slow_net.json"
check "a network too slow for int64" 2 "add up to more than int64 nanoseconds can hold" \
  "$xpipe" sim --profile "$src/profiles/vgg16.json" --cluster "$tmp/slow_net.json" --stages 2 --data-parallel 2
check "sweep data-parallel" 0 "data-parallel,mini_batch_ms" \
  "$xpipe" sim --profile "$tmp/gpt.json" --cluster "$src/profiles/clusters/pcie-cloud-a100.json" --stages 8 \
  --micro-batches 8 --batch-size 8 --schedules 1f1b-flush --sweep data-parallel=1,2,4 --recompute

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
