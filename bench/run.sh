#!/bin/sh
# run.sh — `make bench`: aec against the PyTorch reference on Fashion-MNIST.
#
# Compiles specs/fmnist_dense.ae to an object with BUILD/aec, links
# bench/bench_aec.c against it, then for 1 and 2 threads runs it and
# bench/torch_ref.py under the same environment (OPENBLAS_NUM_THREADS,
# OMP_NUM_THREADS, torch.set_num_threads; OPENBLAS_CORETYPE passes through)
# and prints a table and a headline; bench/embed_latency.c adds the batch-1
# latency of the same model with trained weights embedded (--embed-weights,
# and with --embed-half).
# Without a working PyTorch it says why and shows aec's figures alone. Then the same for the seed's convolutional
# autoencoder, specs/mnist_conv.ae (bench/bench_conv.c, bench/torch_conv.py),
# over CONV_STEPS training steps of batch 256 (CONV=0 skips it). On an AVX-512 CPU it also
# runs the AVX2 code (--cpu x86-64-v3) against PyTorch with OPENBLAS_CORETYPE=Haswell
# (AVX2=0 skips it). Last, every spec's build time (COMPILE=0 skips it).
# See docs/bench.md.
#
# PyTorch's figures are its best on this machine: when OPENBLAS_CORETYPE is
# set, PyTorch also runs without it (OpenBLAS's own pick) and the faster wins.
# Usage: bench/run.sh [BUILD]   (BUILD defaults to build; PYTHON to /usr/bin/python3,
#        THREADS to "1 2", DATA to the Debian Fashion-MNIST training images,
#        CONV_STEPS to 4)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-1 2}
DATA=${DATA:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

[ -x "$B/aec" ] || { echo "bench: $B/aec not found (run make first)" >&2; exit 1; }
[ -r "$DATA" ] || { echo "bench: $DATA not found (make deps installs dataset-fashion-mnist)" >&2; exit 1; }
"$B/aec" build "$ROOT/specs/fmnist_dense.ae" --emit obj -o "$TMP/fmnist_dense.o"
$CC -O2 -I "$ROOT/runtime" -I "$TMP" "$ROOT/bench/bench_aec.c" "$ROOT/runtime/pool.c" "$TMP/fmnist_dense.o" \
    -lopenblas -lz -lm -lpthread -o "$TMP/bench_aec"
# The same model with trained weights compiled in (--embed-weights), as
# examples/embed uses it: bench/embed_latency.c times its batch-1 calls. A few
# seconds of training (through the JIT) give weights with realistic zeros
# after each ReLU, which the embedded batch-1 path skips.
"$B/aec" run "$ROOT/specs/fmnist_dense.ae" -- train --data "$DATA" --limit 5120 --epochs 1 --quiet \
    --out "$TMP/fmnist_dense.safetensors"
mkdir -p "$TMP/embedded"
"$B/aec" build "$ROOT/specs/fmnist_dense.ae" --emit obj --embed-weights "$TMP/fmnist_dense.safetensors" \
    -o "$TMP/embedded/fmnist_dense.o"
$CC -O2 -I "$ROOT/runtime" -I "$TMP/embedded" "$ROOT/bench/embed_latency.c" "$ROOT/runtime/pool.c" \
    "$TMP/embedded/fmnist_dense.o" -lopenblas -lz -lm -lpthread -o "$TMP/embed_latency"
# and with --embed-half: the batch-1 calls read f16 copies of the weights
mkdir -p "$TMP/half"
"$B/aec" build "$ROOT/specs/fmnist_dense.ae" --emit obj --embed-weights "$TMP/fmnist_dense.safetensors" \
    --embed-half -o "$TMP/half/fmnist_dense.o"
$CC -O2 -I "$ROOT/runtime" -I "$TMP/half" "$ROOT/bench/embed_latency.c" "$ROOT/runtime/pool.c" \
    "$TMP/half/fmnist_dense.o" -lopenblas -lz -lm -lpthread -o "$TMP/embed_half"

load=$(cut -d' ' -f1-3 /proc/loadavg)
torch_why=""
if ! torch_err=$("$PYTHON" -c 'import torch, numpy' 2>&1); then
    torch_why="PyTorch unavailable with $PYTHON: $(printf '%s\n' "$torch_err" | tail -n 1)"
fi

# field FILE KEY: a number or string value from a one-line JSON file.
field() { sed -n "s/.*\"$2\": \"*\([^\",}]*\).*/\1/p" "$1"; }

# torch_run OUT SCRIPT ARGS...: PyTorch at its best setting on this machine.
# It runs under the environment as it is and, when that names an OpenBLAS
# core (OPENBLAS_CORETYPE, which PyTorch's sgemm obeys too), once more with
# OpenBLAS's own pick for this CPU. OUT gets the faster run's figures with
# the lower of the two encode latencies; OUT.cores the core each came from.
torch_run() {
    out=$1 script=$2
    shift 2
    OPENBLAS_VERBOSE=2 "$PYTHON" "$ROOT/bench/$script" "$@" >"$out" 2>"$TMP/torch.err" || return 1
    core=$(sed -n 's/^Core: //p' "$TMP/torch.err" | head -n 1)
    train_core=$core encode_core=$core
    if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
        env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 "$PYTHON" "$ROOT/bench/$script" "$@" >"$out.own" \
            2>"$TMP/torch.err" || return 1
        own=$(sed -n 's/^Core: //p' "$TMP/torch.err" | head -n 1)
        enc=$(field "$out" encode_us) enc_own=$(field "$out.own" encode_us)
        if [ "$(echo "$(field "$out.own" samples_per_s) $(field "$out" samples_per_s)" |
            awk '{print ($1>$2)}')" = 1 ]; then
            cp "$out.own" "$out"
            train_core=$own
        fi
        if [ "$(echo "$enc_own $enc" | awk '{print ($1<$2)}')" = 1 ]; then
            encode_core=$own enc=$enc_own
        fi
        sed -i "s/\"encode_us\": [0-9.e+-]*/\"encode_us\": $enc/" "$out"
    fi
    echo "$train_core $encode_core" >"$out.cores"
}

# torch_cores NAME: which OpenBLAS core PyTorch's figures came from.
torch_cores() {
    printf "PyTorch's OpenBLAS core (training, encode):"
    for t in $THREADS; do printf ' %s thr %s' "$t" "$(sed 's/ /, /' "$TMP/$1.$t.cores")"; done
    if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
        printf ' (the faster of OPENBLAS_CORETYPE=%s and unset)' "$OPENBLAS_CORETYPE"
    fi
    echo
}

for t in $THREADS; do
    echo "bench: $t thread(s): aec ..." >&2
    AEC_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$TMP/bench_aec" "$DATA" >"$TMP/aec.$t"
    AEC_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$TMP/embed_latency" "$DATA" >"$TMP/emb.$t"
    AEC_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$TMP/embed_half" "$DATA" >"$TMP/half.$t"
    if [ -z "$torch_why" ]; then
        echo "bench: $t thread(s): pytorch ..." >&2
        if ! OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t torch_run "$TMP/torch.$t" torch_ref.py "$t" "$DATA"; then
            torch_why="bench/torch_ref.py failed: $(tail -n 1 "$TMP/torch.err")"
        fi
    fi
done

echo
echo "fmnist_dense (784-512-128-32-128-512-784), Adam, batch 256, one epoch of 60000 images"
echo "(median of 3 epochs); encode = batch-1 latency, median of 5000 calls."
echo "speed-up = how many times faster aec is (above 1: aec wins)."
echo
if [ -z "$torch_why" ]; then
    printf '%-8s %14s %14s %9s   %12s %12s %9s\n' threads "aec img/s" "torch img/s" speed-up \
        "aec enc us" "torch enc us" speed-up
else
    printf '%-8s %14s   %12s\n' threads "aec img/s" "aec enc us"
fi
best_a=0 best_at=0 best_t=0 best_tt=0 lat_a=0
for t in $THREADS; do
    a=$(field "$TMP/aec.$t" samples_per_s) al=$(field "$TMP/aec.$t" encode_us)
    if [ -z "$torch_why" ]; then
        p=$(field "$TMP/torch.$t" samples_per_s) pl=$(field "$TMP/torch.$t" encode_us)
        printf '%-8s %14.0f %14.0f %8.2fx   %12.1f %12.1f %8.2fx\n' "$t" "$a" "$p" \
            "$(echo "$a $p" | awk '{print $1/$2}')" "$al" "$pl" "$(echo "$pl $al" | awk '{print $1/$2}')"
        if [ "$(echo "$p $best_t" | awk '{print ($1>$2)}')" = 1 ]; then best_t=$p best_tt=$t; fi
    else
        printf '%-8s %14.0f   %12.1f\n' "$t" "$a" "$al"
    fi
    if [ "$(echo "$a $best_a" | awk '{print ($1>$2)}')" = 1 ]; then best_a=$a best_at=$t lat_a=$al; fi
done

echo
if [ -z "$torch_why" ]; then
    printf 'headline: aec %.0f img/s (%s thr) vs PyTorch %.0f img/s (%s thr): %.2fx; ' \
        "$best_a" "$best_at" "$best_t" "$best_tt" "$(echo "$best_a $best_t" | awk '{print $1/$2}')"
    best_al=$(for t in $THREADS; do field "$TMP/aec.$t" encode_us; done | sort -g | head -n 1)
    best_pl=$(for t in $THREADS; do field "$TMP/torch.$t" encode_us; done | sort -g | head -n 1)
    printf 'encode %.1f us vs %.1f us: %.2fx\n' "$best_al" "$best_pl" "$(echo "$best_pl $best_al" | awk '{print $1/$2}')"
    t1=$(set -- $THREADS; echo "$1")
    printf 'last-epoch loss (sanity): aec %s, PyTorch %s\n' "$(field "$TMP/aec.$t1" last_epoch_loss)" \
        "$(field "$TMP/torch.$t1" last_epoch_loss)"
    ca=$(field "$TMP/aec.$t1" samples_per_cpu_s) cp=$(field "$TMP/torch.$t1" samples_per_cpu_s)
    printf '%s thr, img per CPU-second (less disturbed by other load): aec %.0f, PyTorch %.0f: %.2fx\n' \
        "$t1" "$ca" "$cp" "$(echo "$ca $cp" | awk '{print $1/$2}')"
    torch_cores torch
else
    printf 'headline: aec %.0f img/s (%s thr), encode %.1f us; no PyTorch comparison.\n' "$best_a" "$best_at" "$lat_a"
    echo "why: $torch_why"
fi

# The embedded object's batch-1 latency (bench/embed_latency.c).
echo
echo "fmnist_dense with its weights embedded (--embed-weights), batch 1, median of 5000 calls:"
echo "encode, its 99th percentile, and score (eval: encode, decode and the error, examples/embed)."
echo
if [ -z "$torch_why" ]; then
    printf '%-8s %12s %12s %12s   %12s %9s\n' threads "emb enc us" "p99 us" "score us" "torch enc us" speed-up
else
    printf '%-8s %12s %12s %12s\n' threads "emb enc us" "p99 us" "score us"
fi
for t in $THREADS; do
    e=$(field "$TMP/emb.$t" embedded_encode_us) e99=$(field "$TMP/emb.$t" embedded_encode_p99_us)
    es=$(field "$TMP/emb.$t" embedded_score_us)
    if [ -z "$torch_why" ]; then
        pl=$(field "$TMP/torch.$t" encode_us)
        printf '%-8s %12.1f %12.1f %12.1f   %12.1f %8.2fx\n' "$t" "$e" "$e99" "$es" "$pl" \
            "$(echo "$pl $e" | awk '{print $1/$2}')"
    else
        printf '%-8s %12.1f %12.1f %12.1f\n' "$t" "$e" "$e99" "$es"
    fi
done
best_el=$(for t in $THREADS; do field "$TMP/emb.$t" embedded_encode_us; done | sort -g | head -n 1)
echo
if [ -z "$torch_why" ]; then
    printf 'headline: embedded batch-1 encode %.1f us vs PyTorch %.1f us (best thread counts): %.1fx\n' \
        "$best_el" "$best_pl" "$(echo "$best_pl $best_el" | awk '{print $1/$2}')"
else
    printf 'headline: embedded batch-1 encode %.1f us; no PyTorch comparison.\n' "$best_el"
fi
echo
echo "the same object with --embed-half (f16 copies of the weights at batch 1), against the one above:"
printf '%-8s %12s %12s %12s %12s\n' threads "emb enc us" "p99 us" "score us" "enc, score"
for t in $THREADS; do
    h=$(field "$TMP/half.$t" embedded_encode_us) h99=$(field "$TMP/half.$t" embedded_encode_p99_us)
    hs=$(field "$TMP/half.$t" embedded_score_us)
    e=$(field "$TMP/emb.$t" embedded_encode_us) es=$(field "$TMP/emb.$t" embedded_score_us)
    printf '%-8s %12.1f %12.1f %12.1f %6.2fx %5.2fx\n' "$t" "$h" "$h99" "$hs" \
        "$(echo "$e $h" | awk '{print $1/$2}')" "$(echo "$es $hs" | awk '{print $1/$2}')"
done

# On an AVX-512 CPU, the AVX2 code as well: aec built with --cpu x86-64-v3
# (256-bit kernels) against PyTorch with OpenBLAS's Haswell (AVX2) kernels,
# which is what an AVX2-only machine runs (AVX2=0 skips it).
if [ "${AVX2:-1}" != 0 ] && grep -qw avx512f /proc/cpuinfo; then
    mkdir -p "$TMP/avx2"
    "$B/aec" build "$ROOT/specs/fmnist_dense.ae" --emit obj --cpu x86-64-v3 -o "$TMP/avx2/fmnist_dense.o"
    $CC -O2 -I "$ROOT/runtime" -I "$ROOT/bench" -I "$TMP/avx2" "$ROOT/bench/bench_aec.c" "$ROOT/runtime/pool.c" \
        "$TMP/avx2/fmnist_dense.o" -lopenblas -lz -lm -lpthread -o "$TMP/bench_avx2"
    echo
    echo "fmnist_dense with AVX2 code on this CPU: aec --cpu x86-64-v3, PyTorch with OPENBLAS_CORETYPE=Haswell"
    echo
    printf '%-8s %14s %14s %9s\n' threads "aec img/s" "torch img/s" speed-up
    for t in $THREADS; do
        echo "bench: $t thread(s): AVX2 ..." >&2
        AEC_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$TMP/bench_avx2" "$DATA" >"$TMP/avx2.$t"
        a=$(field "$TMP/avx2.$t" samples_per_s)
        if [ -z "$torch_why" ] &&
            OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t \
                "$PYTHON" "$ROOT/bench/torch_ref.py" "$t" "$DATA" >"$TMP/torch_avx2.$t" 2>"$TMP/torch.err"; then
            p=$(field "$TMP/torch_avx2.$t" samples_per_s)
            printf '%-8s %14.0f %14.0f %8.2fx\n' "$t" "$a" "$p" "$(echo "$a $p" | awk '{print $1/$2}')"
        else
            printf '%-8s %14.0f\n' "$t" "$a"
        fi
    done
fi

# The seed's convolutional autoencoder: a few steps per thread count (an
# epoch of it takes minutes in aec, most of an hour in PyTorch).
if [ "${CONV:-1}" != 0 ]; then
    CONV_STEPS=${CONV_STEPS:-4}
    "$B/aec" build "$ROOT/specs/mnist_conv.ae" --emit obj -o "$TMP/mnist_conv.o"
    $CC -O2 -I "$ROOT/runtime" -I "$TMP" "$ROOT/bench/bench_conv.c" "$ROOT/runtime/pool.c" "$TMP/mnist_conv.o" \
        -lopenblas -lz -lm -lpthread -o "$TMP/bench_conv"
    conv_why=$torch_why
    for t in $THREADS; do
        echo "bench: mnist_conv, $t thread(s): aec ..." >&2
        AEC_THREADS=$t OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$TMP/bench_conv" "$CONV_STEPS" "$DATA" >"$TMP/conv_aec.$t"
        if [ -z "$conv_why" ]; then
            echo "bench: mnist_conv, $t thread(s): pytorch ..." >&2
            if ! OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t torch_run "$TMP/conv_torch.$t" torch_conv.py "$t" \
                "$CONV_STEPS" "$DATA"; then
                conv_why="bench/torch_conv.py failed: $(tail -n 1 "$TMP/torch.err")"
            fi
        fi
    done
    echo
    echo "mnist_conv (the seed's conv autoencoder, 416,262 params, 234 MFLOP/image forward), RMSE,"
    echo "Adam, batch 256, training mode: $CONV_STEPS steps after a warm-up step; encode = batch-1"
    echo "latency, median of 100 calls."
    echo
    if [ -z "$conv_why" ]; then
        printf '%-8s %14s %14s %9s   %12s %12s %9s\n' threads "aec img/s" "torch img/s" speed-up \
            "aec enc ms" "torch enc ms" speed-up
    else
        printf '%-8s %14s   %12s\n' threads "aec img/s" "aec enc ms"
    fi
    cbest_a=0 cbest_at=0 cbest_t=0 cbest_tt=0
    for t in $THREADS; do
        a=$(field "$TMP/conv_aec.$t" samples_per_s) al=$(field "$TMP/conv_aec.$t" encode_us)
        if [ -z "$conv_why" ]; then
            p=$(field "$TMP/conv_torch.$t" samples_per_s) pl=$(field "$TMP/conv_torch.$t" encode_us)
            printf '%-8s %14.1f %14.1f %8.2fx   %12.2f %12.2f %8.2fx\n' "$t" "$a" "$p" \
                "$(echo "$a $p" | awk '{print $1/$2}')" "$(echo "$al" | awk '{print $1/1000}')" \
                "$(echo "$pl" | awk '{print $1/1000}')" "$(echo "$pl $al" | awk '{print $1/$2}')"
            if [ "$(echo "$p $cbest_t" | awk '{print ($1>$2)}')" = 1 ]; then cbest_t=$p cbest_tt=$t; fi
        else
            printf '%-8s %14.1f   %12.2f\n' "$t" "$a" "$(echo "$al" | awk '{print $1/1000}')"
        fi
        if [ "$(echo "$a $cbest_a" | awk '{print ($1>$2)}')" = 1 ]; then cbest_a=$a cbest_at=$t; fi
    done
    echo
    if [ -z "$conv_why" ]; then
        printf 'headline: mnist_conv aec %.1f img/s (%s thr) vs PyTorch %.1f img/s (%s thr): %.2fx\n' \
            "$cbest_a" "$cbest_at" "$cbest_t" "$cbest_tt" "$(echo "$cbest_a $cbest_t" | awk '{print $1/$2}')"
        t1=$(set -- $THREADS; echo "$1")
        printf 'mean loss over the steps (sanity): aec %s, PyTorch %s\n' "$(field "$TMP/conv_aec.$t1" mean_loss)" \
            "$(field "$TMP/conv_torch.$t1" mean_loss)"
        torch_cores conv_torch
    else
        printf 'headline: mnist_conv aec %.1f img/s (%s thr); no PyTorch comparison.\n' "$cbest_a" "$cbest_at"
        echo "why: $conv_why"
    fi
fi

# The products themselves: each W1 GEMM against OpenBLAS and the FMA peak
# this machine measures (bench/bench_gemm.c).
if [ -x "$B/bench/bench_gemm" ]; then
    echo
    echo "W1's matrix products, GFLOP/s (median of 31 calls) and percent of the FMA peak (the median"
    echo "over the calls of each one's share of a burst of the peak loop timed just before it):"
    echo
    "$B/bench/bench_gemm"
    if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
        echo
        echo "and with OPENBLAS_CORETYPE unset (OpenBLAS's own pick for this CPU):"
        echo
        env -u OPENBLAS_CORETYPE "$B/bench/bench_gemm"
    fi
fi

# Build time: every spec to an object at -O3 (the issue's "under 1 s"), the
# median of three builds, wall and CPU seconds (CPU exceeds wall when the
# object is compiled in units on threads: docs/internals.md).
if [ "${COMPILE:-1}" != 0 ]; then
    echo
    echo "aec build SPEC --emit obj -O3, seconds (median of 3), on $(nproc) CPUs:"
    echo
    printf '%-20s %8s %8s\n' spec wall cpu
    slowest=0 slowest_spec=
    for spec in "$ROOT"/specs/*.ae; do
        name=$(basename "$spec" .ae)
        for r in 1 2 3; do
            /usr/bin/time -f '%e %U %S' "$B/aec" build "$spec" --emit obj -o "$TMP/build.o" 2>&1 >/dev/null |
                tail -n 1
        done >"$TMP/build.times"
        w=$(awk '{print $1}' "$TMP/build.times" | sort -n | sed -n 2p)
        c=$(awk '{print $2 + $3}' "$TMP/build.times" | sort -n | sed -n 2p)
        printf '%-20s %8.2f %8.2f\n' "$name" "$w" "$c"
        if [ "$(echo "$w $slowest" | awk '{print ($1>$2)}')" = 1 ]; then slowest=$w slowest_spec=$name; fi
    done
    echo
    printf 'headline: every spec builds in at most %.2f s (%s)\n' "$slowest" "$slowest_spec"
fi

t1=$(set -- $THREADS; echo "$1")
echo
echo "environment:"
echo "  OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (OpenBLAS core: $(field "$TMP/aec.$t1" blas_core))"
env | grep '^OPENBLAS_' | grep -v '^OPENBLAS_CORETYPE=' | sed 's/^/  /' || true
echo "  threads: $THREADS (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = torch.set_num_threads)"
echo "  load average before the run: $load (other work on the machine skews the figures)"
echo "  cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) online"
if [ -z "$torch_why" ]; then
    echo "  torch: $(field "$TMP/torch.$t1" torch) ($PYTHON), OMP_WAIT_POLICY=$(field "$TMP/torch.$t1" \
        omp_wait_policy), malloc keeps freed memory: $(field "$TMP/torch.$t1" malloc_tuned)"
else
    echo "  torch: none"
fi
