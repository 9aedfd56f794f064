#!/usr/bin/env bash
# Quick-start command 1: install what is missing, build, run the main job.
# Idempotent; quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh build
echo
echo "== main job: XPipe vs GPipe vs PipeDream on VGG-16, 4 stages (simulated) =="
build/cli/xpipe sim --profile profiles/vgg16.json --cluster profiles/clusters/pcie-4gpu.json \
  --schedules xpipe,gpipe,pipedream,1f1b-flush --stages 4 --micro-batches 4
