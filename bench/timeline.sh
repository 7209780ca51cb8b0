#!/bin/sh
# timeline.sh — a training step's parallel regions, in order, with the
# task function each runs (named from the object's symbols), its task
# count, the time inside it and the caller's time before it: where a step
# goes, and how much of it the workers spend waiting on serial work
# (bench/timeline.c). docs/bench.md.
#
# Usage: bench/timeline.sh SPEC [THREADS [STEPS]]   (AEC, FLAGS, DATA, CC)
# Example: bench/timeline.sh specs/fmnist_dense.ae 2
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SPEC=$1
THREADS=${2:-1}
STEPS=${3:-100}
AEC=${AEC:-$ROOT/build/aec}
DATA=${DATA:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

sed "s/^\([[:space:]]*\)model [A-Za-z_][A-Za-z0-9_]*/\1model vt/" "$SPEC" >"$TMP/vt.ae"
# shellcheck disable=SC2086 # the flags are words
"$AEC" build "$TMP/vt.ae" --emit obj ${FLAGS:-} -o "$TMP/vt.o"
# not position-independent, so that the symbol table's addresses are the run's
$CC -O2 -no-pie -I "$ROOT/runtime" "$ROOT/bench/timeline.c" "$ROOT/runtime/pool.c" "$TMP/vt.o" \
    -lz -lm -lpthread -o "$TMP/timeline"
"$TMP/timeline" "$THREADS" "$STEPS" "$DATA" >"$TMP/out"
nm -n --radix=d "$TMP/timeline" | awk '$2 ~ /^[tT]$/ {print $1 + 0, $3}' >"$TMP/syms"
head -n 1 "$TMP/out"
printf '%4s %-58s %6s %10s %10s\n' region "task function" tasks "us in it" "us before"
# each address named by the last symbol at or below it
tail -n +2 "$TMP/out" | grep -v '^after' | awk -v syms="$TMP/syms" '
    BEGIN { while ((getline line < syms) > 0) { split(line, f, " "); a[n] = f[1] + 0; s[n++] = f[2] } }
    {
        addr = $2 + 0; name = "?"
        lo = 0; hi = n - 1
        while (lo <= hi) { mid = int((lo + hi) / 2); if (a[mid] <= addr) { name = s[mid]; lo = mid + 1 } else hi = mid - 1 }
        sub(/^vt\./, "", name)
        printf "%4d %-58s %6d %10.1f %10.1f\n", $1, substr(name, 1, 58), $3, $4, $5
    }'
grep '^after' "$TMP/out" | awk '{printf "caller after the last region: %.1f us\n", $2}'
