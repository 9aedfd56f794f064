#!/usr/bin/env bash
# Regenerates profiles/*.json from PipeDream's measured graphs in
# ../shared/profiles/pipedream (MIT licence, see SOURCE.md there).
# Usage: profiles/import_pipedream.sh [path/to/xpipe]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
xpipe=${1:-$here/../build/cli/xpipe}
src=${PIPEDREAM_PROFILES:-$here/../../shared/profiles/pipedream}
origin="PipeDream profiler (msr-fiddle/pipedream, MIT licence), profiles/<model>/graph.txt"
hw="GPU not recorded in the file; PipeDream (SOSP'19) profiled on NVIDIA V100 servers"
# name  file  batch  note on the batch size
while read -r name file batch note; do
  "$xpipe" profile import "$src/$file" -o "$here/$name.json" --name "$name" --batch-size "$batch" \
    --source "$origin; imported by xpipe profile import; batch size ${note//-/ }" --hardware "$hw"
done <<'LIST'
vgg16        vgg16.graph.txt        128 from-the-classifier-output-(512000-bytes-=-128-x-1000-floats)
resnet101    resnet101.graph.txt    64  from-the-classifier-output-(256000-bytes-=-64-x-1000-floats)
resnet50     resnet50.graph.txt     128 from-the-classifier-output-(512000-bytes-=-128-x-1000-floats)
inception_v3 inception_v3.graph.txt 128 from-the-classifier-output-(512000-bytes-=-128-x-1000-floats)
resnet18     resnet18.graph.txt     256 from-the-classifier-output-(1024000-bytes-=-256-x-1000-floats)
alexnet      alexnet.graph.txt      256 from-the-classifier-output-(1024000-bytes-=-256-x-1000-floats)
gnmt         gnmt.graph.txt         64  ASSUMED:-the-file-gives-1536-tokens-per-step-(6291456-bytes-/-4096),-taken-as-64-sentences-of-24-tokens
LIST
