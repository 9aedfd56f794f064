#!/usr/bin/env bash
# Fixed against adaptive weight prediction, and what momentum at lr 0.1 does
# to each weight policy: CNN on Fashion-MNIST, 4 stages, T = 4, seed 1, 120
# mini-batches, train accuracy and mean prediction error after them.
#   experiments/prediction.sh [XPIPE]   (about 2 minutes on 2 cores)
# Writes experiments/results/prediction.txt.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
xpipe="${1:-$here/../build/cli/xpipe}"
out="$here/results/prediction.txt"
run() {  # label, flags...
  local label=$1
  shift
  local line
  line=$("$xpipe" train --model cnn --data fashion-mnist --stages 4 --micro-batches 4 --max-steps 120 --seed 1 \
    --no-eval "$@" 2>&1 | tail -1)
  if [[ "$line" == *"training stopped"* ]]; then
    printf '%-44s %s\n' "$label" "diverged: ${line##*: }"
  else
    read -r _ loss acc _ _ _ _ err rest <<<"$line"
    printf '%-44s loss %s  train acc %s  pred err %s  %s\n' "$label" "$loss" "$acc" "$err" "$rest"
  fi
}
{
  echo "# $(date -u +%F), $(nproc) cores; CNN, Fashion-MNIST, 4 stages, T = 4, seed 1, 120 mini-batches"
  run "sgd 0.05, xpipe fixed" --schedule xpipe --optimizer sgd --lr 0.05 --prediction fixed
  run "sgd 0.05, xpipe adaptive" --schedule xpipe --optimizer sgd --lr 0.05 --prediction adaptive
  run "sgd 0.05, stale" --schedule stale --optimizer sgd --lr 0.05
  run "sgd 0.05, gpipe" --schedule gpipe --optimizer sgd --lr 0.05
  run "adam 3e-3, xpipe fixed" --schedule xpipe --optimizer adam --lr 0.003 --prediction fixed
  run "adam 3e-3, xpipe adaptive" --schedule xpipe --optimizer adam --lr 0.003 --prediction adaptive
  run "adam 3e-3, gpipe" --schedule gpipe --optimizer adam --lr 0.003
  run "momentum 0.1, xpipe fixed" --schedule xpipe --optimizer momentum --lr 0.1 --prediction fixed
  run "momentum 0.1, xpipe adaptive" --schedule xpipe --optimizer momentum --lr 0.1 --prediction adaptive
  run "momentum 0.1, xpipe fixed, bellwether" --schedule xpipe --optimizer momentum --lr 0.1 --prediction fixed \
    --predict-from bellwether
  run "momentum 0.1, xpipe adaptive, bellwether" --schedule xpipe --optimizer momentum --lr 0.1 --predict-from bellwether
  run "momentum 0.1, xpipe synchronous target, bw" --schedule xpipe --optimizer momentum --lr 0.1 --target synchronous \
    --predict-from bellwether
  run "momentum 0.1, pipedream-2bw" --schedule pipedream-2bw --optimizer momentum --lr 0.1
  run "momentum 0.1, stale" --schedule stale --optimizer momentum --lr 0.1
  run "momentum 0.1, gpipe" --schedule gpipe --optimizer momentum --lr 0.1
} | tee "$out"
