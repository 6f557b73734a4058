# The preamble the emb tool's test scripts share; sourced (never run) as
#   source "$(dirname "${BASH_SOURCE[0]}")/cli_common.sh" "$@"
# with the script's arguments EMB SCRATCH_DIR CASE: sets emb and case_name, makes SCRATCH_DIR
# afresh and enters it, and defines the checks below. A check exits non-zero at the first
# failure, printing what it expected.
set -uo pipefail
emb=$1
dir=$2
case_name=$3
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 2

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_exit CODE CMD...: runs CMD, stdout -> out.txt, stderr -> err.txt; checks the exit code.
expect_exit() {
  local want=$1
  shift
  "$@" >out.txt 2>err.txt
  local got=$?
  [ "$got" -eq "$want" ] || { cat err.txt >&2; fail "'$*' exited $got, expected $want"; }
}
# expect_error NEEDLE CMD...: CMD must fail (exit 1), print NEEDLE on stderr and nothing on stdout.
expect_error() {
  local needle=$1
  shift
  expect_exit 1 "$@"
  grep -qF -- "$needle" err.txt || { cat err.txt >&2; fail "'$*': stderr lacks \"$needle\""; }
  [ ! -s out.txt ] || fail "'$*' printed on stdout: $(head -c 200 out.txt)"
}
# contains FILE REGEX: FILE has a line matching the extended REGEX.
contains() { grep -qE -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks /$2/"; }; }
# same_file A B: the two files are byte for byte the same.
same_file() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }
