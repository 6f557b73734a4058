#!/usr/bin/env bash
# Runs the article's examples in the article's order (the main job until the training command
# exists).
set -euo pipefail
build=${1:-build}
for name in article_categories article_batch article_padding article_change_pad article_max_norm \
            article_from_pretrained; do
  echo "== $name"
  "$build/examples/$name"
  echo
done
