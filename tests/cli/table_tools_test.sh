#!/usr/bin/env bash
# End-to-end checks of the table tools: emb info, convert, lookup, neighbors.
#   table_tools_test.sh EMB SCRATCH_DIR CASE
# Expected values are computed here independently (awk, in double precision) from the generated
# text file, never taken from emb's own output.
source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" "$@"

# 200 words x 12 dims, values with 4 decimals (exact as float32 text: the shortest float32
# decimal of each is the same number), word2vec text with its count header.
rows=200
dim=12
awk -v rows=$rows -v dim=$dim 'BEGIN {
  srand(777); print rows, dim;
  for (i = 0; i < rows; i++) {
    line = (i == 5 ? "café" : "w" i);
    for (d = 0; d < dim; d++) line = line " " sprintf("%.4f", (rand() - 0.5) * (1 + i % 7));
    print line;
  }
}' >v.vec

# lookup output (or a .vec body) against v.vec, per row: |x - v| <= bound(row), where
# bound = a * step + b * |min| + c with step = (max - min) / levels of the original row.
check_close() {  # FILE LEVELS A B C WHAT
  awk -v levels="$2" -v A="$3" -v B="$4" -v C="$5" '
    function abs(x) { return x < 0 ? -x : x }
    NR == FNR { if (FNR > 1) { for (d = 2; d <= NF; d++) v[$1, d] = $d; n[$1] = NF } next }
    FNR == 1 && NF == 2 { next }   # a count header
    {
      if (!($1 in n) || NF != n[$1]) { print "row " $1 ": bad line"; exit 1 }
      lo = v[$1, 2]; hi = lo;
      for (d = 2; d <= NF; d++) { if (v[$1, d] < lo) lo = v[$1, d]; if (v[$1, d] > hi) hi = v[$1, d] }
      bound = A * (hi - lo) / levels + B * abs(lo) + C * (abs(lo) + abs(hi));
      for (d = 2; d <= NF; d++) if (abs($d - v[$1, d]) > bound) {
        print "row " $1 " element " d - 2 ": " $d " vs " v[$1, d] " (bound " bound ")"; exit 1 }
      rows++
    }
    END { if (rows == 0) { print "no rows"; exit 1 } }' v.vec "$1" >check.txt ||
    { cat check.txt >&2; fail "$6"; }
}

all_words() { awk 'NR > 1 { printf "%s ", $1 }' v.vec; }

case "$case_name" in
info)
  expect_exit 0 "$emb" --help
  for sub in info convert lookup neighbors; do contains out.txt "^ *$sub "; done
  expect_exit 0 "$emb" convert --help
  for opt in --dtype --format --tensor --quiet; do contains out.txt -- "$opt"; done
  expect_exit 0 "$emb" neighbors --help
  for opt in -k --ids --threads --tensor --quiet; do contains out.txt -- "$opt"; done
  expect_error 'No such file' "$emb" info missing.safetensors
  expect_exit 0 "$emb" info v.vec --quiet
  contains out.txt '^format: text$'
  contains out.txt "^size: $(wc -c <v.vec) bytes$"
  contains out.txt "^table: $rows rows x $dim, float32$"
  contains out.txt "^vocabulary: $rows words$"
  # Norms: min, mean, max against awk's, to 5 significant digits.
  awk 'NR > 1 { s = 0; for (d = 2; d <= NF; d++) s += $d * $d; n = sqrt(s);
         if (NR == 2 || n < lo) lo = n; if (n > hi) hi = n; sum += n; k++ }
       END { printf "%.9g %.9g %.9g\n", lo, sum / k, hi }' v.vec >want.txt
  read -r lo mean hi <want.txt
  sed -nE 's/^norms: min ([^ ]+) mean ([^ ]+) max ([^ ]+) \(zero rows 0, not finite 0\)$/\1 \2 \3/p' \
    out.txt >got.txt
  [ -s got.txt ] || { cat out.txt >&2; fail "no norms line"; }
  read -r glo gmean ghi <got.txt
  awk -v a="$lo $mean $hi" -v b="$glo $gmean $ghi" 'BEGIN { split(a, x); split(b, y);
    for (i = 1; i <= 3; i++) if ((x[i] - y[i]) / x[i] > 1e-5 || (y[i] - x[i]) / x[i] > 1e-5) exit 1 }' ||
    fail "norms $glo $gmean $ghi, awk says $lo $mean $hi"
  # A safetensors file: every tensor listed, the quantized mark explained.
  expect_exit 0 "$emb" convert v.vec q.safetensors --dtype int8 --quiet
  expect_exit 0 "$emb" info q.safetensors
  contains out.txt '^format: safetensors$'
  contains out.txt "^tensor: weight U8 \[$rows, $((dim + 8))\] $((rows * (dim + 8))) bytes$"
  contains out.txt "^metadata: emb.quant.weight = int8:$dim$"
  contains out.txt "^table: \"weight\" $rows rows x $dim, int8 \(row-wise quantized, $((dim + 8)) bytes a row\)$"
  contains err.txt '^norms: '   # progress: one line per stage when stderr is not a terminal
  ;;

convert)
  # Round trips through every format, compared byte for byte.
  expect_exit 0 "$emb" convert v.vec a.safetensors --quiet
  expect_exit 0 "$emb" convert a.safetensors b.bin --quiet
  expect_exit 0 "$emb" convert b.bin c.vec --quiet
  expect_exit 0 "$emb" convert c.vec d.safetensors --quiet
  same_file a.safetensors d.safetensors
  expect_exit 0 "$emb" convert v.vec c2.vec --quiet
  same_file c.vec c2.vec
  expect_exit 0 "$emb" convert c.vec g.glove
  [ "$(head -1 g.glove)" = "$(sed -n 2p c.vec)" ] || fail "GloVe output has a header"
  expect_exit 0 "$emb" convert g.glove c3.vec --quiet
  same_file c.vec c3.vec
  # .npy keeps the values (not the words): its data bytes are the safetensors data bytes.
  expect_exit 0 "$emb" convert a.safetensors e.npy
  contains err.txt 'holds no vocabulary'
  cmp -s <(tail -c $((rows * dim * 4)) e.npy) <(tail -c $((rows * dim * 4)) a.safetensors) ||
    fail ".npy data differ from the safetensors data"
  expect_exit 0 "$emb" convert e.npy h.safetensors --quiet
  expect_exit 0 "$emb" convert h.safetensors g.npy --quiet
  same_file e.npy g.npy
  # The text written equals the input numerically (4-decimal values are exact in float32 text).
  check_close c.vec 1 0 0 0 "c.vec differs from v.vec"
  # float16 / bfloat16: a second trip through float32 gives the same bytes; values within the
  # format's relative rounding (2^-11, 2^-8) of the original.
  for t in f16:11 bf16:8; do
    ty=${t%%:*}
    bits=${t##*:}
    expect_exit 0 "$emb" convert v.vec "$ty.safetensors" --dtype "$ty" --quiet
    expect_exit 0 "$emb" convert "$ty.safetensors" "${ty}_32.safetensors" --dtype f32 --quiet
    expect_exit 0 "$emb" convert "${ty}_32.safetensors" "${ty}_b.safetensors" --dtype "$ty" --quiet
    same_file "$ty.safetensors" "${ty}_b.safetensors"
    expect_exit 0 "$emb" lookup "$ty.safetensors" $(all_words) --quiet
    awk -v b="$bits" 'function abs(x) { return x < 0 ? -x : x }
      NR == FNR { if (FNR > 1) for (d = 2; d <= NF; d++) v[$1, d] = $d; next }
      { for (d = 2; d <= NF; d++) if (abs($d - v[$1, d]) > abs(v[$1, d]) * 2 ^ -b + 1e-30) exit 1 }' \
      v.vec out.txt || fail "$ty values are not the rounded originals"
  done
  # int8 / int4: per element within half a step (plus the float16 scale and bias for int4).
  expect_exit 0 "$emb" convert v.vec q8.safetensors --dtype int8 --quiet
  expect_exit 0 "$emb" lookup q8.safetensors $(all_words) --quiet
  check_close out.txt 255 0.5 0 1e-6 "int8 values beyond half a step"
  expect_exit 0 "$emb" convert v.vec q4.safetensors --dtype int4 --quiet
  expect_exit 0 "$emb" lookup q4.safetensors $(all_words) --quiet
  check_close out.txt 15 "$(awk 'BEGIN { print 0.5 + 15 / 2048 }')" "$(awk 'BEGIN { print 1 / 2048 }')" 1e-6 \
    "int4 values beyond half a step and the float16 scale and bias"
  # A quantized table converted to the same type keeps its bytes; dequantized to text, the
  # values are the quantized lookup's.
  expect_exit 0 "$emb" convert q8.safetensors q8b.safetensors --dtype int8 --quiet
  same_file q8.safetensors q8b.safetensors
  expect_exit 0 "$emb" lookup q4.safetensors $(all_words) --quiet
  mv out.txt q4_lookup.txt
  expect_exit 0 "$emb" convert q4.safetensors q4.vec --quiet
  [ "$(tail -n +2 q4.vec)" = "$(cat q4_lookup.txt)" ] || fail "dequantized q4.vec differs from lookup"
  # Errors: nothing written, message on stderr.
  expect_error 'safetensors files only' "$emb" convert v.vec x.vec --dtype int8
  [ ! -e x.vec ] || fail "x.vec written"
  expect_error 'extension' "$emb" convert v.vec x.parquet
  expect_error 'bfloat16' "$emb" convert v.vec x.npy --dtype bf16 --quiet
  [ ! -e x.npy ] || fail "x.npy written"
  "$emb" convert v.vec x.safetensors --dtype int3 >out.txt 2>err.txt && fail "--dtype int3 accepted"
  [ -s err.txt ] || fail "no message for --dtype int3"
  ;;

lookup)
  expect_exit 0 "$emb" lookup v.vec w7 café w199 --quiet
  [ "$(wc -l <out.txt)" -eq 3 ] || fail "lookup printed $(wc -l <out.txt) lines for 3 words"
  check_close out.txt 1 0 0 0 "lookup values differ from the file"
  [ "$(sed -n 2p out.txt | cut -d' ' -f1)" = "café" ] || fail "second line is not café"
  # The same rows by id, from a format without words.
  expect_exit 0 "$emb" convert v.vec t.npy --quiet
  expect_exit 0 "$emb" lookup t.npy 7 5 --quiet
  [ "$(cut -d' ' -f2- out.txt)" = "$("$emb" lookup v.vec w7 café --quiet | cut -d' ' -f2-)" ] ||
    fail 'npy rows 7 and 5 differ from w7 and café'
  expect_exit 0 "$emb" lookup v.vec 7 --ids --quiet
  [ "$(cut -d' ' -f2- out.txt)" = "$("$emb" lookup v.vec w7 --quiet | cut -d' ' -f2-)" ] ||
    fail "--ids 7 differs from w7"
  expect_error 'not in the vocabulary' "$emb" lookup v.vec w7 nosuchword
  grep -qF '"nosuchword"' err.txt || fail "the unknown word is not named"
  expect_error 'not a row id' "$emb" lookup t.npy 200
  expect_error 'not a row id' "$emb" lookup t.npy -1
  expect_error 'No such file' "$emb" lookup missing.vec w1
  head -c 100 v.vec >trunc.vec
  expect_exit 1 "$emb" lookup trunc.vec w1
  contains err.txt '^emb: error: .*trunc\.vec'
  ;;

neighbors)
  # Brute force in double precision: the 5 most similar rows to w7 (itself left out).
  awk -v q=w7 'NR > 1 { w[NR] = $1; for (d = 2; d <= NF; d++) v[NR, d] = $d; if ($1 == q) qi = NR; n = NF }
    END {
      for (i = 2; i <= NR; i++) { s = 0; for (d = 2; d <= n; d++) s += v[i, d] * v[i, d]; nrm[i] = sqrt(s) }
      for (i = 2; i <= NR; i++) if (i != qi) {
        s = 0; for (d = 2; d <= n; d++) s += v[i, d] * v[qi, d]; printf "%s %.9f\n", w[i], s / (nrm[i] * nrm[qi]) }
    }' v.vec | sort -k2,2 -g -r | head -5 >want.txt
  expect_exit 0 "$emb" neighbors v.vec w7 -k 5
  [ "$(wc -l <out.txt)" -eq 5 ] || fail "neighbors printed $(wc -l <out.txt) lines for k = 5"
  paste -d' ' out.txt want.txt | awk '{ if ($1 != "w7" || $2 != $4 || $3 - $5 > 1e-5 || $5 - $3 > 1e-5) exit 1 }' ||
    { paste out.txt want.txt >&2; fail "neighbors of w7 differ from the brute force"; }
  contains err.txt 'norms [0-9.]+ ms \(once\); 1 queries in [0-9.]+ ms, [0-9.]+ ms per query'
  # Several queries; threads do not change the result; ids and formats without words.
  expect_exit 0 "$emb" neighbors v.vec w7 café w0 -k 4 --threads 1 --quiet
  mv out.txt one.txt
  expect_exit 0 "$emb" neighbors v.vec w7 café w0 -k 4 --threads 2 --quiet
  same_file one.txt out.txt
  [ "$(wc -l <one.txt)" -eq 12 ] || fail "3 queries x 4 neighbours: $(wc -l <one.txt) lines"
  expect_exit 0 "$emb" neighbors v.vec 7 --ids -k 5 --quiet
  [ "$(cut -d' ' -f2 out.txt)" = "$(cut -d' ' -f1 want.txt)" ] || fail "--ids 7 differs from w7"
  expect_exit 0 "$emb" convert v.vec t.npy --quiet
  expect_exit 0 "$emb" neighbors t.npy 7 -k 5 --quiet
  [ "$(cut -d' ' -f2 out.txt | tr '\n' ' ')" = "$(cut -d' ' -f1 want.txt | tr -d w | tr '\n' ' ')" ] ||
    fail "neighbors of row 7 in t.npy differ"
  # A quantized table: the neighbours of its dequantized values (as text) are the same.
  expect_exit 0 "$emb" convert v.vec q.safetensors --dtype int8 --quiet
  expect_exit 0 "$emb" neighbors q.safetensors w7 -k 5 --quiet
  mv out.txt q.txt
  expect_exit 0 "$emb" convert q.safetensors q.vec --quiet
  expect_exit 0 "$emb" neighbors q.vec w7 -k 5 --quiet
  same_file q.txt out.txt
  # k beyond the table: every other row.
  expect_exit 0 "$emb" neighbors v.vec w7 -k 1000 --quiet
  [ "$(wc -l <out.txt)" -eq $((rows - 1)) ] || fail "k = 1000 gave $(wc -l <out.txt) lines"
  expect_error 'not in the vocabulary' "$emb" neighbors v.vec nosuchword
  expect_error 'not a row id' "$emb" neighbors v.vec 200 --ids
  "$emb" neighbors v.vec w7 -k 0 >out.txt 2>err.txt && fail "-k 0 accepted"
  [ -s err.txt ] || fail "no message for -k 0"
  ;;

*)
  fail "unknown case $case_name"
  ;;
esac
echo "ok: $case_name"
