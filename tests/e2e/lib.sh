# tests/e2e/lib.sh — what every end-to-end script shares; each sources it
# first (`. "$(dirname "$0")/lib.sh"`) and ends with `summary NAME`.
#
# Sets B (the build directory, the script's first argument, default build),
# AEC (its aec), T (a temporary directory, removed at exit) and the counts
# `passes` and `fails`; defines ok, fail, expect, tally and summary, which
# print TAP-style "ok - ..." / "not ok - ..." lines (tests/run_tests.sh and
# make test read the summary line and the exit status).
set -u
B=${1:-build}
AEC="$B/aec"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0

ok() { passes=$((passes + 1)); echo "ok - $1"; }
fail() { fails=$((fails + 1)); echo "not ok - $1"; }
# expect WHAT CONDITION: CONDITION (a string, eval'd) holds.
expect() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }

# tally PROGRAM ARGS...: runs a check that prints ok/not ok lines itself,
# counting them; its other output becomes "# " comments (its own comments
# stay as they are), and a non-zero exit status is a failure of its own.
tally() {
    local out st
    out=$("$@" 2>&1); st=$?
    [ $st -eq 0 ] || fail "$* exits $st"
    while read -r line; do
        case $line in
        "ok - "*) ok "${line#ok - }" ;;
        "not ok - "*) fail "${line#not ok - }" ;;
        "#"*) echo "$line" ;;
        *) [ -n "$line" ] && echo "# $line" ;;
        esac
    done <<< "$out"
}

# summary NAME: the counts, and the script's exit status (0: nothing failed).
summary() {
    echo "$1: $passes passed, $fails failed"
    [ "$fails" -eq 0 ]
}
