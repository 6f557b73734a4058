#!/usr/bin/env bash
# Long fuzzing: scripts/fuzz.sh <fuzz build dir> <seconds per target>
# Runs every fuzz target for the given time, starting from its checked-in corpus; new inputs go
# to <build dir>/corpus/<target>, a crashing input to <build dir>/crashes/<target>-*. Exits
# non-zero when a target finds a failure.
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for target in state_load_fuzz api_fuzz safetensors_fuzz npy_fuzz text_vectors_fuzz word2vec_binary_fuzz; do
  mkdir -p "$build/corpus/$target" "$build/crashes"
  echo "fuzz: $target for ${seconds}s"
  if ! "$build/tests/fuzz/$target" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" \
      "$build/corpus/$target" "$root/tests/fuzz/corpus/$target"; then
    echo "fuzz: $target FAILED; reproduce with $build/tests/fuzz/$target <input>" >&2
    status=1
  fi
done
exit $status
