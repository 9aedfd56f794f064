#!/usr/bin/env bash
# Configures (once) and builds xpipe into the given folder.
# Usage: scripts/build.sh DIR [extra cmake options]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
VENV=${XPIPE_VENV:-/opt/xpipe-venv}
args=(-G Ninja -DCMAKE_BUILD_TYPE=Release "$@")
if [[ " $* " != *"XPIPE_WITH_TORCH=OFF"* ]]; then
  args+=("-DCMAKE_PREFIX_PATH=$("$VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)")
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCUDAToolkit_ROOT=/usr/local/cuda)
  fi
fi
if [ ! -f "$dir/build.ninja" ]; then
  mkdir -p "$dir"
  cmake -S . -B "$dir" "${args[@]}" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
fi
cmake --build "$dir" -j "$(nproc)"
