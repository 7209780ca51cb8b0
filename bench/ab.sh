#!/bin/sh
# ab.sh — a change's effect on a spec's training step, measured so that a
# noisy machine does not decide it: the spec compiled by two aec builds
# (AEC_A, AEC_B; or one, with FLAGS_A and FLAGS_B), both linked into
# bench/ab_step.c, which alternates their steps in one process and prints
# each one's minimum and median step time, the ratio, and whether the
# parameters stay the same bits. docs/bench.md, "A/B in one process".
#
# Usage: bench/ab.sh SPEC [THREADS [ROUNDS]]
#   AEC_A, AEC_B   the two compilers (default: build/aec for both)
#   FLAGS_A, FLAGS_B  aec build options for each (e.g. --cpu x86-64-v3)
# Example: build the base commit in a worktree, then
#   AEC_A=/tmp/base/build/aec bench/ab.sh specs/mnist_conv.ae 2 8
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SPEC=$1
THREADS=${2:-1}
ROUNDS=${3:-20}
AEC_A=${AEC_A:-$ROOT/build/aec}
AEC_B=${AEC_B:-$ROOT/build/aec}
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for v in a b; do
    # the spec's model as va / vb, so both objects link into one program
    sed "s/^\([[:space:]]*\)model [A-Za-z_][A-Za-z0-9_]*/\1model v$v/" "$SPEC" >"$TMP/v$v.ae"
done
# shellcheck disable=SC2086 # the flags are words
"$AEC_A" build "$TMP/va.ae" --emit obj ${FLAGS_A:-} -o "$TMP/va.o"
# shellcheck disable=SC2086
"$AEC_B" build "$TMP/vb.ae" --emit obj ${FLAGS_B:-} -o "$TMP/vb.o"
$CC -O2 -I "$ROOT/runtime" "$ROOT/bench/ab_step.c" "$ROOT/runtime/pool.c" "$TMP/va.o" "$TMP/vb.o" \
    -lz -lm -lpthread -o "$TMP/ab_step"
"$TMP/ab_step" "$THREADS" "$ROUNDS"
