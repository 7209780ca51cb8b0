#!/bin/sh
# ab_embed.sh — a change's effect on the batch-1 latency of a spec with its
# weights embedded (--embed-weights), measured in one process as ab.sh
# measures a training step: the spec compiled by two aec builds (AEC_A,
# AEC_B; or one, with FLAGS_A and FLAGS_B) with the same weights, both
# linked into bench/ab_embed.c, which alternates their encodes and evals
# and prints each one's medians, the ratios, and whether they give the same
# bits. The weights: WEIGHTS, or a few seconds of training. docs/bench.md.
#
# Usage: bench/ab_embed.sh SPEC [THREADS]
# Example: build the base commit in a worktree, then
#   AEC_A=/tmp/base/build/aec bench/ab_embed.sh specs/fmnist_dense.ae 2
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SPEC=$1
THREADS=${2:-1}
AEC_A=${AEC_A:-$ROOT/build/aec}
AEC_B=${AEC_B:-$ROOT/build/aec}
DATA=${DATA:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

WEIGHTS=${WEIGHTS:-}
if [ -z "$WEIGHTS" ]; then # realistic zeros after each ReLU, as bench/run.sh
    WEIGHTS=$TMP/w.safetensors
    "$AEC_A" run "$SPEC" -- train --data "$DATA" --limit 5120 --epochs 1 --quiet --out "$WEIGHTS"
fi
for v in a b; do
    sed "s/^\([[:space:]]*\)model [A-Za-z_][A-Za-z0-9_]*/\1model v$v/" "$SPEC" >"$TMP/v$v.ae"
done
# shellcheck disable=SC2086 # the flags are words
"$AEC_A" build "$TMP/va.ae" --emit obj --embed-weights "$WEIGHTS" ${FLAGS_A:-} -o "$TMP/va.o"
# shellcheck disable=SC2086
"$AEC_B" build "$TMP/vb.ae" --emit obj --embed-weights "$WEIGHTS" ${FLAGS_B:-} -o "$TMP/vb.o"
$CC -O2 -I "$ROOT/runtime" -I "$TMP" "$ROOT/bench/ab_embed.c" "$ROOT/runtime/pool.c" "$TMP/va.o" \
    "$TMP/vb.o" -lz -lm -lpthread -o "$TMP/ab_embed"
"$TMP/ab_embed" "$THREADS" "$DATA"
