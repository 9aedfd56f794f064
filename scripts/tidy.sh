#!/usr/bin/env bash
# clang-tidy (.clang-tidy) on the C++ files changed since REV (default: the
# previous commit), using the compile database of BUILD (default: build).
# Usage: scripts/tidy.sh [REV] [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
build=${2:-build}
mapfile -t files < <(git diff --name-only --diff-filter=AM "$rev" -- '*.cc' | grep -v '^tests/' || true)
[ ${#files[@]} -gt 0 ] || { echo "tidy: no changed sources"; exit 0; }
clang-tidy -p "$build" --quiet "${files[@]}"
