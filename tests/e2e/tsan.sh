#!/usr/bin/env bash
# Concurrency: an embedded model's encode and eval called from 8 threads at
# once, each with its own workspace, under ThreadSanitizer (clang
# -fsanitize=thread, halting on the first report): no report, and every
# thread's results equal one thread's bit for bit (tsan.c says what it
# checks). Without clang it fails, saying so.
. "$(dirname "$0")/lib.sh"
E2E=$(pwd)/tests/e2e
DATA=/usr/share/datasets/fashion-mnist
export OPENBLAS_NUM_THREADS=1

FM=specs/fmnist_dense.ae
"$AEC" build $FM -o "$T/fm" || { echo "not ok - build"; exit 1; }
"$T/fm" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 1000 --epochs 1 --quiet \
    --out "$T/w.safetensors"
"$AEC" build $FM --emit obj --embed-weights "$T/w.safetensors" -o "$T/fm.o"
# Under make asan-test the runtime is ASan-instrumented, which TSan cannot
# link with: the same calls then run under ASan ($CC adds it), and
# `make test` runs them under TSan.
SAN=(clang -fsanitize=thread) what=ThreadSanitizer
[ -n "${AEC_SANITIZED:-}" ] && SAN=(${CC:-cc}) what="the $AEC_SANITIZED sanitizer"
if ! "${SAN[@]}" -std=c11 -O1 -g -D_GNU_SOURCE -I runtime -I "$T" "$E2E/tsan.c" \
    "$T/fm.o" "$B/libaecrt.a" -lopenblas -lpng -ljson-c -lz -lm -lpthread -o "$T/tsan"; then
    echo "not ok - ${SAN[*]} builds the harness (make fuzz-deps installs clang)"
    exit 1
fi
ok "the harness builds with ${SAN[*]}"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$T/tsan" "$DATA/t10k-images-idx3-ubyte.gz" 1000 8 3 \
    > "$T/out" 2> "$T/err"; st=$?
cat "$T/out"
passes=$((passes + $(grep -c '^ok - ' "$T/out")))
fails=$((fails + $(grep -c '^not ok - ' "$T/out")))
if grep -q "Sanitizer" "$T/err" || [ $st -ne 0 ]; then
    fail "$what reports nothing (exit $st)"; head -40 "$T/err" | sed 's/^/# /'
else
    ok "$what reports nothing over 8 threads x 3 passes of 20 batches"
fi
summary "tsan"
