#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan (with
# float-cast-overflow) into build-fuzz, and runs each for RUNS executions
# (default 1,000,000), seeded from the shipped profiles, clusters, PipeDream
# graphs and generated schedules. A crash, hang (10 s), leak, sanitizer report
# or more than 2 GB of memory (ASan included) stops that target with its
# reproducer in build-fuzz/crashes; the script then exits 1. Prints each
# target's executions. Needs clang and libclang-rt-14-dev (apt-get install).
# Usage: scripts/fuzz.sh [RUNS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_profile_json fuzz_cluster_json fuzz_device_json fuzz_schedule_csv
                                    fuzz_schedule_json fuzz_pipedream fuzz_cli)
command -v clang++ >/dev/null || { echo "fuzz.sh: needs clang (apt-get install clang libclang-rt-14-dev)"; exit 2; }
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXPIPE_WITH_TORCH=OFF \
  -DXPIPE_FUZZ=ON -DXPIPE_SANITIZE=address >/dev/null
cmake --build build-fuzz --target "${targets[@]}" xpipe >/dev/null
seeds=$PWD/build-fuzz/seeds
files=build-fuzz/files  # what fuzz_cli's arguments may name
rm -rf "$seeds" "$files"
mkdir -p "$seeds"/{fuzz_profile_json,fuzz_cluster_json,fuzz_device_json,fuzz_schedule_csv,fuzz_schedule_json,fuzz_pipedream,fuzz_cli} \
  "$files" build-fuzz/crashes
cp profiles/*.json "$seeds/fuzz_profile_json/"
cp profiles/clusters/*.json "$seeds/fuzz_cluster_json/"
cp profiles/devices/*.json "$seeds/fuzz_device_json/"
cp ../shared/profiles/pipedream/*.txt "$seeds/fuzz_pipedream/" 2>/dev/null || true
x=build-fuzz/cli/xpipe
i=0
for s in gpipe 1f1b-flush xpipe pipedream zb-h1 interleaved-1f1b; do
  for n in 2 3; do
    i=$((i + 1))
    extra=()
    [ "$s" = pipedream ] && t=1 || t=$((2 * n))
    [ "$s" = interleaved-1f1b ] && extra=(--chunks 2)
    "$x" schedule --schedule "$s" --stages "$n" --micro-batches "$t" --mini-batches 2 "${extra[@]}" --format json \
      >"$seeds/fuzz_schedule_json/$s-$n.json"
    { printf '\\x%02x' $((t - 1)) | xargs -0 printf; \
      "$x" schedule --schedule "$s" --stages "$n" --micro-batches "$t" --mini-batches 2 "${extra[@]}" --format csv; } \
      >"$seeds/fuzz_schedule_csv/$s-$n.csv"
  done
done
cp profiles/alexnet.json "$files/profile.json"
cp profiles/clusters/pcie-4gpu.json "$files/cluster.json"
"$x" schedule --schedule xpipe --stages 2 --micro-batches 2 --mini-batches 2 --format csv >"$files/sched.csv"
"$x" schedule --schedule xpipe --stages 2 --micro-batches 2 --mini-batches 2 --format json >"$files/sched.json"
cp ../shared/profiles/pipedream/alexnet.graph.txt "$files/graph.txt" 2>/dev/null || head -5 "$seeds"/fuzz_pipedream/* >"$files/graph.txt"
# Command lines: the first byte picks sim (0), schedule (1) or profile (2).
printf '\x00--profile\nprofile.json\n--schedules\nxpipe,gpipe\n--stages\n2' >"$seeds/fuzz_cli/sim"
printf '\x00--profile\nprofile.json\n--cluster\ncluster.json\n--sweep\nstages=2,4\n--json' >"$seeds/fuzz_cli/sweep"
printf '\x01--schedule\nzb-h1\n--stages\n3\n--micro-batches\n6\n--format\ngrid' >"$seeds/fuzz_cli/schedule"
printf '\x01--check\nsched.csv\n--micro-batches\n2' >"$seeds/fuzz_cli/check"
printf '\x02import\ngraph.txt\n-o\nout.json' >"$seeds/fuzz_cli/import"
export XPIPE_FUZZ_FILES=$PWD/$files
status=0
for t in "${targets[@]}"; do
  log=build-fuzz/$t.log
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "build-fuzz/fuzz/$t" -runs="$runs" \
      -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$PWD/build-fuzz/crashes/$t-" \
      "$seeds/$t" >"$log" 2>&1; then
    status=1
    echo "$t: FAILED (see $log and build-fuzz/crashes)"
    grep -m3 -E "ERROR|runtime error|deadly|timeout" "$log" || true
    continue
  fi
  echo "$t: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}') executions, no failure"
done
exit $status
