#!/usr/bin/env bash
# The test suite under a sanitizer, in its own build tree.
#   scripts/sanitize.sh address   ASan + UBSan: the whole suite, with LibTorch
#                                 (build-asan-torch) and without (build-asan,
#                                 clang, so UBSan checks float-cast-overflow)
#   scripts/sanitize.sh thread    TSan: the executor's tests (build-tsan)
# LibTorch comes from the wheel and is not instrumented: ASan and UBSan see
# xpipe's code; TSan is told (tests/tsan.supp) that what happens inside
# LibTorch's own libraries is theirs. Slow: tens of minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-address}
venv=${XPIPE_VENV:-/opt/xpipe-venv}
torch_prefix=$("$venv/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
case "$kind" in
  address)
    CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXPIPE_WITH_TORCH=OFF \
      -DXPIPE_SANITIZE=address >/dev/null
    cmake --build build-asan
    (cd build-asan && ctest -LE lint --output-on-failure)
    cmake -S . -B build-asan-torch -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXPIPE_SANITIZE=address \
      -DCMAKE_PREFIX_PATH="$torch_prefix" >/dev/null
    cmake --build build-asan-torch
    # LibTorch's own allocations are not ours: no leak report for them.
    (cd build-asan-torch && ASAN_OPTIONS=detect_leaks=0 ctest -LE "lint|distributed" --output-on-failure)
    ;;
  thread)
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXPIPE_SANITIZE=thread \
      -DCMAKE_PREFIX_PATH="$torch_prefix" >/dev/null
    cmake --build build-tsan --target exec_tests
    TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1" \
      build-tsan/tests/exec_tests --gtest_filter='ExecTest.*:Twins*:SequentialReference*:Optimizers*'
    ;;
  *)
    echo "usage: scripts/sanitize.sh address|thread" >&2
    exit 2
    ;;
esac
