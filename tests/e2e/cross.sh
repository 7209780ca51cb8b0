#!/usr/bin/env bash
# Code generated for another machine computes what the host's code does:
# each spec below is built for the host and with --target aarch64-linux-gnu
# (NEON: 128-bit vectors, 32 registers, its own tiles), both objects linked
# with tests/e2e/cross_run.c, and the aarch64 program run under qemu-user
# (and, on an AVX-512 host, with --cpu x86-64-v3: AVX2's 256-bit code, run
# here); from the same init and batch, their losses over three training steps,
# codes (batch and batch 1), embedded batch-1 codes and eval loss agree.
# Not to the bit: vectorized sums (the loss, the norms) add lanes in an
# order that follows the vector width, so each number may differ by a few
# units in its last places (f32 rtol 1e-4, f64 1e-9).
# Small specs with edges in every dimension (100 = 6·16 + 4, a batch of
# 40 = 6·6 + 4): qemu emulates NEON's FMAs one lane at a time.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
CC=${CC:-cc}
if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    fail "qemu-aarch64 and aarch64-linux-gnu-gcc are installed (make deps: qemu-user, gcc-aarch64-linux-gnu)"
    summary "cross"
    exit
fi

cat >"$T/dense.ae" <<'AE'
model dense {
    input 1x28x28
    encoder { flatten; dense 100 relu; dense 70 relu; dense 17 }
    decoder mirror
    output sigmoid
    train { optimizer adam lr=1e-3; batch 40 }
}
AE
cat >"$T/conv.ae" <<'AE'
model conv {
    input 1x28x28
    encoder {
        conv 8 3x3 stride=2 pad=same relu
        conv 12 3x3 pad=same relu
        maxpool 2
        flatten
        dense 10
    }
    decoder { dense 784 sigmoid; reshape 1x28x28 }
    train { optimizer adam; batch 12 }
}
AE

# agree NAME RTOL: the host's and the other object's outputs, line by line.
agree() {
    awk -v rtol="$2" '
        NR == FNR { want[$1] = $2; n++; next }
        { if (!($1 in want)) { bad = "extra " $1; exit }
          d = $2 - want[$1]; if (d < 0) d = -d
          s = want[$1] < 0 ? -want[$1] : want[$1]; if (s < 1) s = 1
          if (d > rtol * s) { bad = $1 ": " want[$1] " against " $2; exit }
          seen++ }
        END { if (bad == "" && seen != n) bad = seen " of " n " lines"
              if (bad != "") { print "# " bad; exit 1 } }' "$T/$1.host" "$T/$1.other"
}

# cross NAME SPEC RTOL KIND [aec build options...]: the host's object and
# one for KIND (aarch64: built with --target aarch64-linux-gnu, run under
# qemu; avx2: --cpu x86-64-v3, run here, on an x86-64 host with AVX-512,
# whose own code is 512-bit) agree.
cross() {
    local name=$1 spec=$2 rtol=$3 kind=$4 model other=() cc=() run=()
    shift 4
    case $kind in
    aarch64) other=(--target aarch64-linux-gnu) cc=(aarch64-linux-gnu-gcc -static) run=(qemu-aarch64) ;;
    avx2) other=(--cpu x86-64-v3) cc=("$CC") ;;
    esac
    model=$(basename "$spec" .ae) # each spec file is named after its model
    # --gemm aec also under `make test-blas`: the generated kernels are what
    # is compared, and the aarch64 side has no BLAS to link
    "$AEC" build "$spec" --emit obj --gemm aec "$@" -o "$T/$name.host.o" &&
        "$AEC" build "$spec" --emit obj --gemm aec "${other[@]}" "$@" -o "$T/$name.other.o" ||
        { fail "$name builds for the host and for $kind"; return; }
    $CC -std=c11 -O2 -I runtime -DMODEL="${model}_model" tests/e2e/cross_run.c "$T/$name.host.o" \
        -lm -o "$T/$name.host.run" &&
        "${cc[@]}" -std=c11 -O2 -I runtime -DMODEL="${model}_model" \
            tests/e2e/cross_run.c "$T/$name.other.o" -lm -o "$T/$name.other.run" ||
        { fail "$name: cross_run links with each object"; return; }
    "$T/$name.host.run" >"$T/$name.host" || { fail "$name runs on the host"; return; }
    "${run[@]}" "$T/$name.other.run" >"$T/$name.other" || { fail "$name runs as $kind code"; return; }
    expect "$name: the $kind object trains, encodes and evaluates as the host's does (rtol $rtol)" \
        "agree $name $rtol"
}

# trained weights for --embed-weights: a few steps of the host's trainer
"$AEC" build "$T/dense.ae" -o "$T/dense_trainer" &&
    "$T/dense_trainer" train --data "$DATA" --limit 400 --epochs 1 --quiet --out "$T/dense.safetensors" ||
    fail "the dense spec's trainer writes weights"

cross dense "$T/dense.ae" 1e-4 aarch64 --embed-weights "$T/dense.safetensors"
cross dense_half "$T/dense.ae" 1e-4 aarch64 --embed-weights "$T/dense.safetensors" --embed-half
cross dense_f64 "$T/dense.ae" 1e-9 aarch64 --dtype f64
cross conv "$T/conv.ae" 1e-4 aarch64
if [ "$(uname -m)" = x86_64 ] && grep -qw avx512f /proc/cpuinfo; then
    cross dense_avx2 "$T/dense.ae" 1e-4 avx2 --embed-weights "$T/dense.safetensors"
    cross dense_half_avx2 "$T/dense.ae" 1e-4 avx2 --embed-weights "$T/dense.safetensors" --embed-half
    cross conv_avx2 "$T/conv.ae" 1e-4 avx2
fi

summary "cross"
