#!/usr/bin/env bash
# Runs every cmocka suite built into $1/tests, from the repo root, and the
# end-to-end scripts in tests/e2e/ (not lib.sh, which they source); or,
# given suite names after $1 (`run_tests.sh build test_cli test_rng`, as
# `make check` does), only those suites. Prints one closing line "N passed,
# M failed" (suites) and exits non-zero if any failed.
set -u
B=${1:-build}
shift $(($# > 0))
cd "$(dirname "$0")/.."
passed=0 failed=0 failures=()
if [ $# -gt 0 ]; then suites=("${@/#/$B/tests/}"); else suites=("$B"/tests/test_*); fi
for t in "${suites[@]}"; do
    [[ $t == *.d ]] && continue # the suites' header dependencies
    if [ ! -x "$t" ]; then
        [ $# -gt 0 ] && { failed=$((failed + 1)); failures+=("$(basename "$t") (not built)"); }
        continue
    fi
    name=$(basename "$t")
    start=$(date +%s)
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
    echo "--- $name: $(( $(date +%s) - start ))s"
done
[ $# -gt 0 ] && e2e=() || e2e=(tests/e2e/*.sh)
for t in "${e2e[@]}"; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [ "$name" = lib ] && continue # what the scripts share (sourced), no test of its own
    start=$(date +%s)
    if bash "$t" "$B"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
    echo "--- $name: $(( $(date +%s) - start ))s"
done
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
