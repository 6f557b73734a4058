#!/usr/bin/env bash
# Runs the article's examples (the main job until the training command exists).
set -euo pipefail
build=${1:-build}
for ex in "$build"/examples/article_*; do
  [ -x "$ex" ] || continue
  echo "== $(basename "$ex")"
  "$ex"
  echo
done
