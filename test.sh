#!/usr/bin/env bash
# Quick-start command 2: the whole default test suite (CTest), on the LibTorch
# build and on a build without LibTorch. Slow tests are opt-in:
#   ctest --test-dir build -L slow
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh build
ctest --test-dir build --output-on-failure -LE slow -j 2
echo
echo "== the same without LibTorch (common/, sim/ and the front end only) =="
scripts/build.sh build-notorch -DXPIPE_WITH_TORCH=OFF
ctest --test-dir build-notorch --output-on-failure -LE slow -j 2
