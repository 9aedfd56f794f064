#!/usr/bin/env bash
# bench/run.sh's comparer catches a slower build: sim_bench_slowed (the
# simulator built with extra work per event, a test-only flag) must fail the
# committed baseline, naming the event engine's figures.
# Usage: bench_test.sh source_dir build_dir
set -uo pipefail
src=$1
build=$2
out=$(bash "$src/bench/run.sh" --quick --slowed --build "$build" 2>&1)
status=$?
echo "$out"
[ "$status" -eq 1 ] || { echo "FAIL: the slowed build passed (status $status)"; exit 1; }
grep -q "BM_Simulate/0/1024/4096/1048576/1/0 .*WORSE" <<<"$out" || { echo "FAIL: event engine not flagged"; exit 1; }
echo "ok: the slowed build was caught"
