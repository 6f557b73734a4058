#!/usr/bin/env bash
# emb against gensim 4.2 (Debian's python3-gensim) on the same generated word2vec files: loading
# text and binary, and exact cosine top-10 per query. See docs/PERFORMANCE.md.
#   bench/word_vectors/compare.sh [EMB] [DIR] [extra compare.py options, e.g. --rows 200000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
emb=${1:-$here/../../build/emb}
dir=${2:-${TMPDIR:-/tmp}/emb-word-vectors}
shift $(( $# < 2 ? $# : 2 ))
python=${EMB_GENSIM_PYTHON:-/usr/bin/python3}
"$python" -c 'import gensim' 2>/dev/null ||
  { echo "gensim is not installed for $python (scripts/setup-deps.sh --bench)" >&2; exit 2; }
trap 'rm -rf "$dir"' EXIT
"$python" "$here/compare.py" "$emb" "$dir" "$@"
