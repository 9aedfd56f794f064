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
# The dataflow engine against the event-queue reference, end to end: the same
# table and the same trace, byte for byte.
for e in dataflow event; do
  "$xpipe" sim --profile "$src/profiles/resnet50.json" --schedules xpipe,gpipe,zb-h1 --stages 4 --micro-batches 8 \
    --speeds 1,0.8,1,1.2 --jitter 0.1 --bandwidth-gbps 3 --engine $e --trace "$tmp/$e.trace.json" >"$tmp/$e.txt"
done
check "engines agree" 0 "same" sh -c "cmp '$tmp/dataflow.txt' '$tmp/event.txt' && echo same"
check "engines' traces agree" 0 "same" sh -c "cmp '$tmp/dataflow.trace.json' '$tmp/event.trace.json' && echo same"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
