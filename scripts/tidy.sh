#!/usr/bin/env bash
# clang-tidy (.clang-tidy) on the C++ files changed since REV (default: the
# previous commit), using the compile database of BUILD (default: build).
# Usage: scripts/tidy.sh [REV] [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-HEAD~1}
build=${2:-build}
# Only files this build compiles (a build without LibTorch has no exec/).
mapfile -t files < <(git diff --name-only --diff-filter=AM "$rev" -- '*.cc' | grep -v '^tests/' |
  while read -r f; do grep -q "\"file\": \"[^\"]*/$f\"" "$build/compile_commands.json" && echo "$f"; done || true)
[ ${#files[@]} -gt 0 ] || { echo "tidy: no changed sources"; exit 0; }
clang-tidy -p "$build" --quiet "${files[@]}"
