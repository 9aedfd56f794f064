#!/usr/bin/env bash
# The XPipe paper's models (VGG-16, ResNet-101, Inception-V3) on 4 GPUs over
# PCIe and NVLink: simulated throughput, memory and staleness of XPipe, GPipe,
# PipeDream, PipeDream-2BW and 1F1B-flush. Writes JSON per case into OUT and
# plots them with plots/throughput.py.
# Usage: experiments/sim_models.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-experiments/results}
mkdir -p "$out"
for cluster in pcie-4gpu nvlink-4gpu; do
  for model in vgg16 resnet101 inception_v3; do
    build/cli/xpipe sim --profile "profiles/$model.json" --cluster "profiles/clusters/$cluster.json" \
      --schedules xpipe,gpipe,pipedream,pipedream-2bw,1f1b-flush --stages 4 --micro-batches 4 --json \
      >"$out/sim_${model}_${cluster}.json"
  done
done
/usr/bin/python3 plots/throughput.py "$out" "$out/throughput.png"
