#!/usr/bin/env bash
# Installs the Debian packages and the pinned LibTorch that xpipe needs, each
# only when missing.
#
# LibTorch comes from the `torch` wheel of the Python package index, pinned to
# 2.11.0: the version the GPU machines carry, and its default Linux wheel is
# built for CUDA 13, matching the toolkit in /usr/local/cuda, so the CUDA
# paths of exec/ compile and link. Debian's libtorch-dev is 1.13 and CPU-only.
# It goes into one virtual environment outside the checkout (XPIPE_VENV,
# default /opt/xpipe-venv) so that every clone and CI reuse the download.
set -euo pipefail
TORCH_VERSION=2.11.0
VENV=${XPIPE_VENV:-/opt/xpipe-venv}
packages=(build-essential cmake ninja-build ccache git python3 python3-venv python3-matplotlib
          nlohmann-json3-dev libboost-program-options-dev libgtest-dev libgmock-dev
          libbenchmark-dev libgloo-dev dataset-fashion-mnist clang-format clang-tidy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${XPIPE_NO_TORCH:-0}" != 1 ]; then
  have=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
  if [ "$have" != "$TORCH_VERSION" ]; then
    echo "installing torch==$TORCH_VERSION into $VENV (a few GB, once)"
    [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --no-cache-dir "torch==$TORCH_VERSION"
  fi
fi
