#!/usr/bin/env bash
# The main job on its default data: WordNet 3.0's synsets -> emb data wordnet -> emb train ->
# emb test, then a few predictions.   demo.sh [BUILD_DIR]   (BUILD_DIR holds the emb binary)
set -euo pipefail
build=${1:-build}
emb="$build/emb"
data="$build/wordnet"
model="$build/wordnet.emb"

"$emb" --version
echo
echo "== emb data wordnet $data"
"$emb" data wordnet "$data"
echo
echo "== emb train --input $data/train.txt --output $model --plot $build/wordnet-loss.svg"
start=$(date +%s%N)
"$emb" train --input "$data/train.txt" --output "$model" --plot "$build/wordnet-loss.svg"
end=$(date +%s%N)
ms=$(((end - start) / 1000000))
printf 'train wall time: %d.%02d s (loss curve: %s)\n' $((ms / 1000)) $((ms % 1000 / 10)) \
  "$build/wordnet-loss.svg"
echo
echo "== emb test $model $data/test.txt"
"$emb" test "$model" "$data/test.txt"
echo
echo "== emb predict $model - 3 --prob   (the first test synsets; the true label first)"
head -n 5 "$data/test.txt" | cut -d' ' -f2- | "$emb" predict "$model" - 3 --prob >"$build/demo-predictions.txt"
head -n 5 "$data/test.txt" | while IFS= read -r line && IFS= read -r pred <&3; do
  label=${line%% *}
  text=${line#* }
  printf '%s\n  true: %s\n  emb:  %s\n' "$(echo "$text" | cut -c1-90)" "$label" "$pred"
done 3<"$build/demo-predictions.txt"
