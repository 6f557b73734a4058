#!/usr/bin/env bash
# End-to-end checks of the emb command-line tool.
#   cli_test.sh EMB SCRATCH_DIR CASE
# Each case exits non-zero at the first failed check, printing what it expected.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" "$@"

# A small, generated dataset: three topics with their own words, shared filler words, a few
# lines with two labels. Deterministic (awk's srand with a fixed seed).
make_small() {
  awk 'BEGIN {
    srand(12345);
    split("cat dog horse cow sheep goat mouse bird fish frog", animal, " ");
    split("car bus train plane boat truck bike tram ship taxi", vehicle, " ");
    split("red blue green yellow black white pink brown grey orange", colour, " ");
    split("the a of and with very some big small old", filler, " ");
    for (split_i = 0; split_i < 2; split_i++) {
      n = split_i == 0 ? 600 : 150;
      out = split_i == 0 ? "train.txt" : "test.txt";
      for (i = 0; i < n; i++) {
        t = int(rand() * 3);
        line = t == 0 ? "__label__animal" : (t == 1 ? "__label__vehicle" : "__label__colour");
        if (rand() < 0.05) line = line " __label__mixed";
        len = 3 + int(rand() * 6);
        for (j = 0; j < len; j++) {
          w = int(rand() * 10) + 1;
          if (rand() < 0.4) line = line " " filler[w];
          else line = line " " (t == 0 ? animal[w] : (t == 1 ? vehicle[w] : colour[w]));
        }
        print line > out;
      }
    }
  }'
}

case "$case_name" in
help)
  expect_exit 0 "$emb" --version
  contains out.txt '^emb [0-9]+\.[0-9]+\.[0-9]+$'
  contains out.txt '^SIMD target: [a-z0-9_]+$'
  expect_exit 0 "$emb" --help
  for sub in train test predict data; do contains out.txt "^ *$sub "; done
  expect_exit 0 "$emb" train --help
  for opt in --input --output --dim --epoch --lr --minCount --wordNgrams --bucket --thread \
             --seed --optimizer --quiet --plot; do
    contains out.txt -- "$opt"
  done
  expect_exit 0 "$emb" test --help
  contains out.txt 'MODEL'
  expect_exit 0 "$emb" predict --help
  contains out.txt -- '--prob'
  expect_exit 0 "$emb" data wordnet --help
  contains out.txt 'OUTDIR'
  # Usage errors: non-zero exit, the message on stderr.
  "$emb" >out.txt 2>err.txt && fail "emb without a subcommand succeeded"
  contains err.txt 'subcommand'
  "$emb" train --input x >out.txt 2>err.txt && fail "train without --output succeeded"
  contains err.txt -- '--output'
  "$emb" frobnicate >out.txt 2>err.txt && fail "an unknown subcommand succeeded"
  [ -s err.txt ] || fail "no message for an unknown subcommand"
  ;;

small)
  make_small
  expect_exit 0 "$emb" train --input train.txt --output model.emb --dim 16 --epoch 20 --lr 0.5 \
    --thread 1 --seed 3
  [ -s model.emb ] || fail "no model written"
  contains err.txt '^epoch 20/20 '   # plain progress lines when stderr is not a terminal
  contains err.txt 'trained on 600 examples'
  # emb test: fastText's three lines, tab-separated, %.3g numbers.
  expect_exit 0 "$emb" test model.emb test.txt
  [ "$(wc -l <out.txt)" -eq 3 ] || fail "emb test printed $(wc -l <out.txt) lines"
  contains out.txt $'^N\t150$'
  contains out.txt $'^P@1\t(0\\.[0-9]{1,3}|1)$'
  contains out.txt $'^R@1\t(0\\.[0-9]{1,3}|1)$'
  p1=$(awk -F'\t' '$1 == "P@1" { print $2 }' out.txt)
  awk -v p="$p1" 'BEGIN { exit !(p >= 0.9) }' || fail "P@1 = $p1 on separable topics (>= 0.9 expected)"
  # P@k and R@k with k = 2: precision = hits / (2 per example), recall = hits / gold labels.
  expect_exit 0 "$emb" test model.emb test.txt 2
  contains out.txt $'^P@2\t0\\.[0-9]+$'
  contains out.txt $'^R@2\t(0\\.[0-9]+|1)$'
  # Recompute P@1 from emb predict's labels and the test file's first label.
  expect_exit 0 "$emb" predict model.emb test.txt
  [ "$(wc -l <out.txt)" -eq 150 ] || fail "predict printed $(wc -l <out.txt) lines for 150"
  contains out.txt '^__label__(animal|vehicle|colour|mixed)$'
  hits=$(paste -d' ' out.txt test.txt | awk '{ for (i = 2; i <= NF; i++) if ($i == $1) { n++; break } } END { print n + 0 }')
  awk -v h="$hits" -v p="$p1" 'BEGIN { r = sprintf("%.3g", h / 150); exit !(r + 0 == p + 0) }' ||
    fail "P@1 from predict ($hits / 150) disagrees with emb test ($p1)"
  # --prob, k = 3, standard input; probabilities in (0, 1], decreasing along the line.
  cut -d' ' -f2- test.txt | head -5 | "$emb" predict model.emb - 3 --prob >out.txt 2>err.txt ||
    fail "predict from stdin failed"
  [ "$(wc -l <out.txt)" -eq 5 ] || fail "predict - printed $(wc -l <out.txt) lines for 5"
  awk 'NF != 6 { exit 1 } { for (i = 2; i <= 6; i += 2) { if ($i <= 0 || $i > 1) exit 1; if (i > 2 && $i > $(i - 2)) exit 1 } }' out.txt ||
    { cat out.txt >&2; fail "predict --prob lines are not 3 (label probability) pairs in decreasing order"; }
  # Unknown words are ignored: a line of unknown words still gets a prediction.
  echo "zzz qqq" | "$emb" predict model.emb - >out.txt 2>err.txt || fail "predict on unknown words failed"
  contains out.txt '^__label__'
  # The other optimizers train too.
  for opt in adagrad rowwise_adagrad lazy_adam; do
    expect_exit 0 "$emb" train --input train.txt --output m_$opt.emb --dim 8 --epoch 5 --lr 0.1 \
      --optimizer $opt --quiet
    [ ! -s err.txt ] || fail "--quiet printed: $(cat err.txt)"
    expect_exit 0 "$emb" test m_$opt.emb test.txt
    awk -F'\t' '$1 == "P@1" { exit !($2 >= 0.8) }' out.txt || { cat out.txt >&2; fail "$opt: P@1 < 0.8"; }
  done
  # Word n-grams: the model file holds nwords + bucket rows.
  expect_exit 0 "$emb" train --input train.txt --output ngram.emb --dim 8 --epoch 5 --wordNgrams 2 \
    --bucket 1000 --quiet
  expect_exit 0 "$emb" test ngram.emb test.txt
  contains out.txt $'^N\t150$'
  ;;

determinism)
  make_small
  for run in 1 2; do
    expect_exit 0 "$emb" train --input train.txt --output t1_$run.emb --dim 16 --epoch 3 --thread 1 \
      --batch 1 --seed 42 --wordNgrams 2 --bucket 5000 --quiet
  done
  cmp t1_1.emb t1_2.emb || fail "--thread 1 --seed 42: two runs wrote different model files"
  expect_exit 0 "$emb" train --input train.txt --output t1_seed.emb --dim 16 --epoch 3 --thread 1 \
    --batch 1 --seed 43 --wordNgrams 2 --bucket 5000 --quiet
  cmp -s t1_1.emb t1_seed.emb && fail "seeds 42 and 43 gave the same model"
  expect_exit 0 "$emb" test t1_1.emb test.txt
  cp out.txt test_1.txt
  expect_exit 0 "$emb" test t1_2.emb test.txt
  cmp out.txt test_1.txt || fail "identical models tested differently"
  ;;

threads)
  # Deterministic data parallelism: a fixed (seed, thread, batch) gives the same bytes.
  make_small
  for run in 1 2; do
    expect_exit 0 "$emb" train --input train.txt --output t3_$run.emb --dim 16 --epoch 3 --thread 3 \
      --batch 4 --seed 7 --quiet
  done
  cmp t3_1.emb t3_2.emb || fail "--thread 3 --batch 4 --seed 7: two runs differ"
  expect_exit 0 "$emb" test t3_1.emb test.txt
  awk -F'\t' '$1 == "P@1" { exit !($2 >= 0.9) }' out.txt || { cat out.txt >&2; fail "3 threads: P@1 < 0.9"; }
  ;;

bad_input)
  make_small
  printf '__label__a one two\nno label here\n' >nolabel.txt
  expect_error 'nolabel.txt:2: the line has no label' "$emb" train --input nolabel.txt --output m.emb
  [ ! -e m.emb ] || fail "a failed training left a model file"
  printf '__label__a one two\n__label__b\n' >notext.txt
  expect_error 'notext.txt:2: the line has labels but no text' "$emb" train --input notext.txt --output m.emb
  : >empty.txt
  expect_error 'empty.txt: no examples' "$emb" train --input empty.txt --output m.emb
  printf '\n  \n' >blank.txt
  expect_error 'blank.txt: no examples' "$emb" train --input blank.txt --output m.emb
  printf '__label__a one two\n__label__b caf\xc3 x\n' >utf8.txt
  expect_error 'utf8.txt:2: invalid UTF-8 at byte' "$emb" train --input utf8.txt --output m.emb
  expect_error 'missing.txt: cannot open' "$emb" train --input missing.txt --output m.emb
  expect_error '--dim 0' "$emb" train --input train.txt --output m.emb --dim 0
  expect_error '--optimizer adam' "$emb" train --input train.txt --output m.emb --optimizer adam
  expect_error '--bucket 0' "$emb" train --input train.txt --output m.emb --wordNgrams 2 --bucket 0
  expect_error 'nodir/m.emb' "$emb" train --input train.txt --output nodir/m.emb --epoch 1 --quiet
  [ ! -e m.emb ] || fail "a failed training left a model file"
  # Test time: unknown labels and label-less lines are errors with file and line.
  expect_exit 0 "$emb" train --input train.txt --output model.emb --dim 8 --epoch 2 --quiet
  printf '__label__animal cat\n__label__plant tree\n' >unknown.txt
  expect_error 'unknown.txt:2: label "__label__plant" is not one of the model' "$emb" test model.emb unknown.txt
  printf '__label__animal cat\ncat dog\n' >unlabelled.txt
  expect_error 'unlabelled.txt:2: the line has no label' "$emb" test model.emb unlabelled.txt
  expect_error 'empty.txt: no examples' "$emb" test model.emb empty.txt
  "$emb" test model.emb test.txt 0 >out.txt 2>err.txt && fail "k = 0 accepted"
  [ -s err.txt ] || fail "no message for k = 0"
  ;;

bad_model)
  make_small
  expect_exit 0 "$emb" train --input train.txt --output model.emb --dim 8 --epoch 2 --quiet
  size=$(stat -c %s model.emb)
  expect_error 'missing.emb: cannot open' "$emb" test missing.emb test.txt
  : >zero.emb
  expect_error 'too short' "$emb" test zero.emb test.txt
  head -c 4000 /dev/urandom >random.emb 2>/dev/null || dd if=/dev/urandom of=random.emb bs=4000 count=1 2>/dev/null
  expect_error 'random.emb' "$emb" test random.emb test.txt
  head -c $((size - 100)) model.emb >truncated.emb
  expect_error 'truncated' "$emb" test truncated.emb test.txt
  head -c 300 model.emb >header_cut.emb
  expect_error 'header length' "$emb" test header_cut.emb test.txt
  # A header length of 2^62: refused before any allocation.
  { printf '\x00\x00\x00\x00\x00\x00\x00\x40'; tail -c +9 model.emb; } >huge.emb
  expect_error 'exceeds the file' "$emb" test huge.emb test.txt
  # Corrupted JSON: the header's first byte.
  { head -c 8 model.emb; printf 'X'; tail -c +10 model.emb; } >json.emb
  expect_error 'not a JSON object' "$emb" test json.emb test.txt
  # Another version of the layout (same length, so the file stays well-formed).
  pos=$(grep -obUa '"format_version":"1"' model.emb | head -1 | cut -d: -f1)
  [ -n "$pos" ] || fail "no format_version in the model header"
  cp model.emb version.emb
  printf '"format_version":"7"' | dd of=version.emb bs=1 seek="$pos" conv=notrunc 2>/dev/null
  expect_error 'model file version 7' "$emb" test version.emb test.txt
  # A tensor shape that disagrees with its bytes: labels.count [4] (four labels) made [5].
  pos=$(grep -obUa '"dtype":"I64","shape":\[4\]' model.emb | head -1 | cut -d: -f1)
  [ -n "$pos" ] || fail "no labels.count of shape [4] in the model header"
  cp model.emb shape.emb
  printf '"dtype":"I64","shape":[5]' | dd of=shape.emb bs=1 seek="$pos" conv=notrunc 2>/dev/null
  expect_error 'does not fill' "$emb" test shape.emb test.txt
  # Not a model at all: a text file.
  cp test.txt text.emb
  expect_error 'text.emb' "$emb" predict text.emb test.txt
  ;;

wordnet)
  expect_exit 0 "$emb" data wordnet wn
  contains out.txt '^45 labels$'
  train=$(wc -l <wn/train.txt)
  test=$(wc -l <wn/test.txt)
  # WordNet 3.0 has 117,659 synsets; about a tenth go to the test split.
  [ $((train + test)) -eq 117659 ] || fail "$train + $test synsets, expected 117659"
  awk -v t="$test" 'BEGIN { exit !(t > 10500 && t < 13000) }' || fail "test split of $test synsets"
  [ "$(cut -d' ' -f1 wn/train.txt wn/test.txt | sort -u | wc -l)" -eq 45 ] || fail "not 45 labels"
  contains wn/train.txt '^__label__noun\.animal [a-z0-9]'
  contains wn/train.txt '^__label__verb\.motion [a-z0-9]'
  ! cut -d' ' -f2- wn/train.txt | grep -q '[A-Z]' || fail "upper case left in the text"
  # Deterministic: a second conversion writes the same bytes.
  expect_exit 0 "$emb" data wordnet wn2
  cmp wn/train.txt wn2/train.txt && cmp wn/test.txt wn2/test.txt || fail "conversion not deterministic"
  # Train briefly, test, predict.
  expect_exit 0 "$emb" train --input wn/train.txt --output wn.emb --dim 16 --epoch 1 --lr 0.5 --quiet
  expect_exit 0 "$emb" test wn.emb wn/test.txt
  contains out.txt $'^N\t'"$test"'$'
  awk -F'\t' '$1 == "P@1" { exit !($2 >= 0.5) }' out.txt || { cat out.txt >&2; fail "WordNet P@1 < 0.5 after one epoch"; }
  echo "a large domesticated carnivore that barks" | "$emb" predict wn.emb - 3 >out.txt 2>err.txt ||
    fail "predict failed"
  contains out.txt '^__label__noun\.[a-zA-Z]+ __label__[a-z]+\.[a-zA-Z]+ __label__[a-z]+\.[a-zA-Z]+$'
  expect_error 'install Debian' "$emb" data wordnet wn3 --wordnet-dir "$dir/nowhere"
  ;;

plot)
  make_small
  expect_exit 0 "$emb" train --input train.txt --output model.emb --dim 8 --epoch 4 --quiet --plot loss.svg
  [ -s loss.svg ] || fail "no SVG written"
  head -1 loss.svg | grep -q '^<svg ' || fail "loss.svg does not start with <svg"
  tail -1 loss.svg | grep -q '^</svg>$' || fail "loss.svg does not end with </svg>"
  points=$(grep -o 'points="[^"]*"' loss.svg | tr ' ' '\n' | grep -c ',')
  [ "$points" -ge 20 ] || fail "the loss curve has $points points"
  if command -v xmllint >/dev/null; then xmllint --noout loss.svg || fail "loss.svg is not XML"; fi
  # On a terminal (script(1) provides one): a status line redrawn in place, no per-epoch lines.
  script -qc "$emb train --input train.txt --output tty.emb --dim 8 --epoch 400" /dev/null \
    >tty.txt </dev/null || fail "training under script(1) failed"
  grep -q $'\r' tty.txt || fail "no carriage-return redraws on a terminal"
  tr '\r' '\n' <tty.txt | grep -qE '^.*epoch [0-9]+/400 \[[#.]+\] +[0-9.]+%  loss [0-9.]+  lr [0-9.]+  [0-9]+ ex/s  (ETA|time) [0-9]+:[0-9]{2}' ||
    { cat -A tty.txt | head -5 >&2; fail "no progress bar on a terminal"; }
  ! grep -q '^epoch 1/400  loss' tty.txt || fail "plain per-epoch lines on a terminal"
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
echo "ok: $case_name"
