#!/usr/bin/env bash
# Runs every cmocka suite built into $1/tests, from the repo root, and the
# end-to-end scripts in tests/e2e/. Prints one closing line
# "N passed, M failed" (suites) and exits non-zero if any failed.
set -u
B=${1:-build}
cd "$(dirname "$0")/.."
passed=0 failed=0 failures=()
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    start=$(date +%s)
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
    echo "--- $name: $(( $(date +%s) - start ))s"
done
for t in tests/e2e/*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    start=$(date +%s)
    if bash "$t" "$B"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
    echo "--- $name: $(( $(date +%s) - start ))s"
done
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
