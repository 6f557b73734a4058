#!/usr/bin/env bash
# The main job side by side: fastText 0.9.2, emb train and PyTorch 1.13 on the WordNet split,
# same hyper-parameters, three seeds each, runs interleaved. Prints one tab-separated line per
# run (tool, config, seed, wall s, cpu s, P@1) to stdout; docs/PERFORMANCE.md reports medians.
#   compare.sh EMB_BINARY DATA_DIR [TORCH_RUNS] [CONFIGS]
# DATA_DIR holds train.txt and test.txt from `emb data wordnet`. TORCH_RUNS (default 3) limits
# the PyTorch runs per config (0: none). CONFIGS: "small", "large" or "small large" (default).
# SEEDS (environment, default "1 2 3") picks the runs.
set -euo pipefail
emb=$1
data=$2
torch_runs=${3:-3}
configs=${4:-small large}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# timed TOOL CONFIG SEED TRAIN P1: times the shell command TRAIN, then runs P1, which prints the
# P@1 on the test file; prints the result line.
timed() {
  local tool=$1 config=$2 seed=$3 train=$4 p1=$5
  /usr/bin/time -f "%e %U %S" -o "$work/time" sh -c "$train" >"$work/out" 2>"$work/err" ||
    { cat "$work/err" >&2; exit 1; }
  read -r wall user sys <"$work/time"
  printf '%s\t%s\t%s\t%s\t%.2f\t%s\n' "$tool" "$config" "$seed" "$wall" \
    "$(echo "$user + $sys" | bc)" "$(sh -c "$p1")"
}

for config in $configs; do
  case $config in
    small) dim=50 epoch=10 lr=0.5 ngrams=1 ;;
    large) dim=100 epoch=25 lr=0.5 ngrams=2 ;;
  esac
  for seed in ${SEEDS:-1 2 3}; do
    # The timed command is the whole training command: reading, vocabulary, training, saving.
    timed fasttext "$config" "$seed" \
      "fasttext supervised -input $data/train.txt -output $work/ft -dim $dim -epoch $epoch \
       -lr $lr -wordNgrams $ngrams -bucket 2000000 -minCount 1 -thread 2 -loss softmax \
       -seed $seed -verbose 0" \
      "fasttext test $work/ft.bin $data/test.txt | awk -F'\t' '\$1 == \"P@1\" { print \$2 }'"
    timed emb "$config" "$seed" \
      "$emb train --input $data/train.txt --output $work/m.emb --dim $dim --epoch $epoch \
       --lr $lr --wordNgrams $ngrams --bucket 2000000 --minCount 1 --thread 2 --seed $seed \
       --quiet" \
      "$emb test $work/m.emb $data/test.txt | awk -F'\t' '\$1 == \"P@1\" { print \$2 }'"
    if [ "$seed" -le "$torch_runs" ]; then
      # Training and the test in one script (the test is a few batched forwards).
      timed pytorch "$config" "$seed" \
        "/usr/bin/python3 $here/torch_classifier.py $data/train.txt $data/test.txt --dim $dim \
         --epoch $epoch --lr $lr --wordNgrams $ngrams --bucket 2000000 --minCount 1 --thread 1 \
         --batch 16 --seed $seed" \
        "awk -F'\t' '\$1 == \"P@1\" { print \$2 }' $work/out"
    fi
  done
done
