#!/usr/bin/env bash
# The trainer under valgrind memcheck: train an epoch on a few hundred
# images, eval, encode and reconstruct, each with no invalid read or write,
# no use of an uninitialized value and no definite leak (--error-exitcode).
# valgrind's CPU has no AVX-512, so the trainer is built for x86-64-v3 on
# x86 hosts and OpenBLAS is told to use its Haswell kernels.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
export OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell
if [ -n "${AEC_SANITIZED:-}" ]; then # make asan-test: valgrind cannot run ASan programs
    echo "# valgrind: not run on the $AEC_SANITIZED-sanitized build (make test runs it)"; exit 0
fi
if ! command -v valgrind > /dev/null; then
    echo "not ok - valgrind is installed (apt-get install valgrind)"; exit 1
fi
CPU=(); [ "$(uname -m)" = x86_64 ] && CPU=(--cpu x86-64-v3)
# fmnist_dense's layers, narrower (valgrind runs ~50x slower than the CPU).
cat > "$T/vg.ae" <<'SPEC'
model vg {
    input 784
    encoder { dense 64 relu; dense 16 }
    decoder mirror
    loss bce
    train { optimizer adam lr=1e-3; batch 50; epochs 1 }
}
SPEC
"$AEC" build "$T/vg.ae" "${CPU[@]}" -o "$T/fm" || { echo "not ok - build"; exit 1; }
# Real images, cut to what the runs read (the gz of 60000 would be most of
# valgrind's time): the headers still say 60000 and 10000; --limit reads
# only what is there.
gzip -dc "$DATA/train-images-idx3-ubyte.gz" | head -c $((16 + 300 * 784)) > "$T/train.idx"
gzip -dc "$DATA/t10k-images-idx3-ubyte.gz" | head -c $((16 + 200 * 784)) > "$T/test.idx"
X="$T/test.idx"
vg() {
    local what=$1; shift
    local start=$(date +%s)
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        "$T/fm" "$@" --quiet > "$T/out" 2> "$T/vg.err"
    local st=$?
    if [ $st -eq 0 ]; then ok "valgrind: $what is clean ($(( $(date +%s) - start )) s)"
    else fail "valgrind: $what (exit $st)"; sed 's/^/# /' "$T/vg.err" | head -30; fi
}
vg "train, one epoch of 300 images" train --data "$T/train.idx" --limit 300 \
    --epochs 1 --batch 50 --out "$T/w.safetensors"
W=(--weights "$T/w.safetensors")
vg "eval of 200 images" eval --data "$X" --limit 200 "${W[@]}"
vg "encode of 200 images" encode --data "$X" --limit 200 "${W[@]}" -o "$T/c.npy"
vg "reconstruct of 200 images, with a PNG" reconstruct --data "$X" --limit 200 "${W[@]}" \
    -o "$T/r.npy" --png "$T/r.png"
summary "valgrind"
