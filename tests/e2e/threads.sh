#!/usr/bin/env bash
# Threads change nothing but the time: the generated kernels split their
# work into a grid that depends on the shape only (docs/abi.md), so a
# trainer run with --threads 1, 2 and 3 writes the same checkpoint, byte for
# byte — for a dense model, convolutional ones and f64 — and the other
# commands give the same bits too. Also: the generated object needs no BLAS.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
TRAIN="$DATA/train-images-idx3-ubyte.gz"
X="$DATA/t10k-images-idx3-ubyte.gz"

# same_at_thread_counts NAME SPEC LIMIT [aec build options...]
same_at_thread_counts() {
    local name=$1 spec=$2 limit=$3
    shift 3
    "$AEC" build "$spec" --gemm aec "$@" -o "$T/$name" || { fail "$name builds"; return; }
    for t in 1 2 3; do
        "$T/$name" train --data "$TRAIN" --limit "$limit" --epochs 1 --threads "$t" --quiet \
            --out "$T/$name.$t.safetensors"
        "$T/$name" reconstruct --data "$X" --limit 300 --weights "$T/$name.1.safetensors" \
            --threads "$t" -o "$T/$name.rec.$t.npy" --quiet
    done
    expect "$name: --threads 1, 2 and 3 train the same checkpoint, byte for byte" \
        'cmp -s "$T/$name.1.safetensors" "$T/$name.2.safetensors" && cmp -s "$T/$name.1.safetensors" "$T/$name.3.safetensors"'
    expect "$name: --threads 1, 2 and 3 reconstruct the same bits" \
        'cmp -s "$T/$name.rec.1.npy" "$T/$name.rec.2.npy" && cmp -s "$T/$name.rec.1.npy" "$T/$name.rec.3.npy"'
}

same_at_thread_counts fmnist_dense specs/fmnist_dense.ae 2560
same_at_thread_counts fmnist_dense_f64 specs/fmnist_dense.ae 600 --dtype f64
same_at_thread_counts conv_small specs/conv_small.ae 300
# batch norm's sums over rows of 24 channels of 28x28, in tasks of whole
# channels (Plan.col_split), and max pooling in tasks of planes
cat >"$T/conv_bn.ae" <<'EOF'
model conv_bn {
    input 1x28x28
    encoder { conv 24 3x3 pad=same; batchnorm; relu; maxpool 2; conv 2 1x1; flatten; dense 16 }
    decoder { dense 784 sigmoid; reshape 1x28x28 }
    train { optimizer adam; batch 64 }
}
EOF
same_at_thread_counts conv_bn "$T/conv_bn.ae" 320
# an 8 -> 16 channel 3x3 convolution as Winograd's F(2x2, 3x3): tasks of
# samples, each adding to its own slot of the filter gradient (the last,
# partial batch too); and the same as AVX2 code on x86
cat >"$T/conv_wg.ae" <<'EOF'
model conv_wg {
    input 1x28x28
    encoder { conv 8 3x3 stride=2 pad=same relu; conv 16 3x3 pad=same; batchnorm; relu; flatten; dense 16 }
    decoder { dense 784 sigmoid; reshape 1x28x28 }
    train { optimizer adam; batch 64 }
}
EOF
same_at_thread_counts conv_wg "$T/conv_wg.ae" 320
[ "$(uname -m)" = x86_64 ] && same_at_thread_counts conv_wg_avx2 "$T/conv_wg.ae" 320 --cpu x86-64-v3

# A generated object needs libc and libm only; --gemm blas keeps cblas.
"$AEC" build specs/fmnist_dense.ae --emit obj --gemm aec -o "$T/m.o"
"$AEC" build specs/mnist_conv.ae --emit obj --gemm aec --target aarch64-linux-gnu -o "$T/a.o" # Winograd too
"$AEC" build specs/fmnist_dense.ae --emit obj --gemm blas -o "$T/b.o"
expect "a --gemm aec object has no undefined BLAS symbol" '! nm -u "$T/m.o" | grep -q cblas'
expect "an aarch64 object has no undefined BLAS symbol" '! nm -u "$T/a.o" | grep -q cblas'
expect "a --gemm blas object calls cblas_sgemm" 'nm -u "$T/b.o" | grep -q cblas_sgemm'

summary "threads"
