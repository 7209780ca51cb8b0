#!/usr/bin/env bash
# End to end for shipping a model (docs/abi.md): object files and headers,
# embedded weights, several models in one program, cross-compilation, debug
# info, and the trainer through the JIT (`aec run`).
#
# The C programs it links (emit_check.c, two_models.c, examples/embed) say
# what they check. Bit-for-bit comparisons run with one BLAS thread: OpenBLAS
# partitions a GEMM by its thread count, which can change the last bits, and
# its threaded GEMM allocates a job table per call (the model never does).
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
E2E=$ROOT/tests/e2e
DATA=/usr/share/datasets/fashion-mnist
TRAIN="$DATA/train-images-idx3-ubyte.gz"
X="$DATA/t10k-images-idx3-ubyte.gz"
CC=${CC:-cc}
# The runtime's link line, as the Makefile wrote it into the build's config.h.
read -ra RT_LIBS <<< "$(sed -n 's/^#define AEC_RT_LIBS "\(.*\)"$/\1/p' "$B/config.h")"
RT=("$B/libaecrt.a" "${RT_LIBS[@]}")
export OPENBLAS_NUM_THREADS=1
# What a model object links with: libc and libm; a CBLAS too on --gemm blas.
MODEL_LIBS=(-lm)
[ "${AEC_GEMM:-aec}" = blas ] && MODEL_LIBS=(-lopenblas -lm)

FM=specs/fmnist_dense.ae
"$AEC" build $FM -o "$T/fm" || { echo "not ok - build"; exit 1; }
"$T/fm" train --data "$TRAIN" --limit 2000 --epochs 1 --quiet --out "$T/w.safetensors"

# aec run: the same trainer through the JIT, no files of its own.
(cd "$T" && "$ROOT/$AEC" run "$ROOT/$FM" -- train --data "$TRAIN" --limit 2000 --epochs 1 --quiet \
    --out jit.safetensors)
expect "aec run trains the same weights as the built trainer, bit for bit" \
    'cmp -s "$T/w.safetensors" "$T/jit.safetensors"'
expect "aec run writes nothing but what the trainer was asked to" '[ "$(ls "$T" | wc -l)" -eq 3 ]'
"$AEC" run $FM -- encode --data "$X" --limit 300 --weights "$T/w.safetensors" -o "$T/jit_codes.npy" --quiet
"$T/fm" encode --data "$X" --limit 300 --weights "$T/w.safetensors" -o "$T/codes300.npy" --quiet
expect "aec run encodes as the built trainer does" 'cmp -s "$T/jit_codes.npy" "$T/codes300.npy"'
"$AEC" run specs/linear.ae -- bogus 2> "$T/err"; st=$?
expect "aec run passes the trainer's usage errors on (exit 2)" '[ $st -eq 2 ] && grep -q "unknown command" "$T/err"'

# The trainer's view of 600 test images (batches 256, 256, 88).
"$T/fm" encode --data "$X" --limit 600 --weights "$T/w.safetensors" -o "$T/codes.npy" --quiet
"$T/fm" reconstruct --data "$X" --limit 600 --weights "$T/w.safetensors" -o "$T/rec.npy" --quiet

# Objects and headers: with parameters passed in, and with them embedded
# (and -g, which the checks below show changes nothing computed).
"$AEC" build $FM --emit obj -o "$T/m.o"
"$AEC" build $FM --emit obj -g --embed-weights "$T/w.safetensors" -o "$T/fm.o"
expect "--emit obj writes the object and its header" '[ -s "$T/m.o" ] && [ -s "$T/m.h" ] && [ -s "$T/fm.h" ]'
expect "the header declares the ABI" \
    'grep -q "int fmnist_dense_encode(const float \*params" "$T/m.h" && grep -q "FMNIST_DENSE_INPUT_SIZE 784" "$T/m.h" &&
     grep -q "extern const aec_model fmnist_dense_model;" "$T/m.h" && ! grep -q _embedded "$T/m.h"'
expect "the embedded header declares the _embedded entry points" \
    'grep -q "int fmnist_dense_encode_embedded(const float \*x" "$T/fm.h" && grep -q "FMNIST_DENSE_EMBEDDED 1" "$T/fm.h"'
alone() {
    printf '#include "%s.h"\nint main(void) { return 0; }\n' "$1" > "$T/inc_$1.c"
    $CC -std=c99 -pedantic -Wall -Wextra -Werror -I runtime -I "$T" -c "$T/inc_$1.c" -o "$T/inc_$1.o"
}
expect "the headers compile alone as C99 with -pedantic -Wall -Wextra -Werror" 'alone m && alone fm'
if command -v c++ > /dev/null; then
    printf '#include "fm.h"\nint main() { return fmnist_dense_model.n_tensors > 0 ? 0 : 1; }\n' > "$T/inc.cc"
    expect "the header compiles as C++" 'c++ -Wall -Werror -I runtime -I "$T" -c "$T/inc.cc" -o "$T/inc_cc.o"'
fi
writable() { objdump -h "$1" | awk '$2 ~ /^\.(data|bss)$/ && $3 !~ /^0+$/' | wc -l; }
expect "the objects have no writable data (.data, .bss)" '[ "$(writable "$T/m.o")" -eq 0 ] && [ "$(writable "$T/fm.o")" -eq 0 ]'
expect "the embedded weights are read-only data" \
    'objdump -t "$T/fm.o" | grep -q "\.rodata.*fmnist_dense_embedded_params"'

# Under make asan-test the allocation counter's malloc interposer would
# run before ASan's own; the allocation check is make test's.
HOOK=(); [ -n "${AEC_SANITIZED:-}" ] && HOOK=(-DNO_MALLOC_HOOK)
for v in m fm; do
    def=(-DHEADER="\"$v.h\"" -DPREFIX=fmnist_dense "${HOOK[@]}")
    [ $v = fm ] && def+=(-DEMBEDDED)
    $CC -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -I runtime -I "$T" "${def[@]}" "$E2E/emit_check.c" \
        "$T/$v.o" "${RT[@]}" -o "$T/check_$v" || fail "emit_check builds against $v.o"
done
echo "# $T/m.o, weights passed in:"
tally "$T/check_m" "$X" 600 "$T/w.safetensors" "$T/codes.npy" "$T/rec.npy"
echo "# $T/fm.o, weights embedded, -g:"
tally "$T/check_fm" "$X" 600 "$T/w.safetensors" "$T/codes.npy" "$T/rec.npy"

# A convolutional model, embedded and with -g: im2col, pooling and
# transposed-convolution kernels. The same checks.
cat > "$T/tiny_conv.ae" <<'EOF'
model tiny_conv {
    input 1x28x28
    encoder { conv 4 3x3 stride=2 pad=same relu; maxpool 2; flatten; dense 16 }
    decoder { dense 196 relu; reshape 4x7x7; deconv 1 4x4 stride=4 pad=0 sigmoid }
    loss mse
}
EOF
C=$T/conv
mkdir -p "$C"
"$AEC" build "$T/tiny_conv.ae" -o "$C/prog" &&
    "$C/prog" train --data "$TRAIN" --limit 512 --epochs 1 --quiet --out "$C/w.safetensors" &&
    "$C/prog" encode --data "$X" --limit 300 --weights "$C/w.safetensors" -o "$C/c.npy" --quiet &&
    "$C/prog" reconstruct --data "$X" --limit 300 --weights "$C/w.safetensors" -o "$C/r.npy" --quiet &&
    "$AEC" build "$T/tiny_conv.ae" --emit obj -g --embed-weights "$C/w.safetensors" -o "$C/m.o" &&
    $CC -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -I runtime -I "$C" -DHEADER='"m.h"' -DPREFIX=tiny_conv \
        -DEMBEDDED "${HOOK[@]}" "$E2E/emit_check.c" "$C/m.o" "${RT[@]}" -o "$C/check" ||
    fail "tiny_conv: trainer, weights, and the embedded object with -g"
if [ -x "$C/check" ]; then
    echo "# tiny_conv, weights embedded, -g:"
    tally "$C/check" "$X" 300 "$C/w.safetensors" "$C/c.npy" "$C/r.npy"
fi

# valgrind: no invalid reads or writes, no uninitialized values, in one
# thread or two (a few samples: it is slow). Its CPU has no AVX-512, so the
# object is built for x86-64-v3 (AVX2) on x86 hosts.
VG_CPU=()
[ "$(uname -m)" = x86_64 ] && VG_CPU=(--cpu x86-64-v3)
# (Under make asan-test, AEC_SANITIZED: the programs are ASan's, which
# valgrind cannot run; make test runs these.)
VALGRIND=$(command -v valgrind)
[ -n "${AEC_SANITIZED:-}" ] && VALGRIND=
if [ -n "$VALGRIND" ]; then
    mkdir -p "$T/vg"
    "$AEC" build $FM --emit obj --embed-weights "$T/w.safetensors" "${VG_CPU[@]}" -o "$T/vg/fm.o"
    $CC -std=c11 -O2 -g -D_GNU_SOURCE -I runtime -I "$T/vg" -DHEADER='"fm.h"' -DPREFIX=fmnist_dense -DEMBEDDED \
        -DNO_MALLOC_HOOK "$E2E/emit_check.c" "$T/vg/fm.o" "${RT[@]}" -o "$T/check_vg"
    OPENBLAS_CORETYPE=Haswell "$T/fm" encode --data "$X" --limit 4 --weights "$T/w.safetensors" -o "$T/c8.npy" --quiet
    OPENBLAS_CORETYPE=Haswell "$T/fm" reconstruct --data "$X" --limit 4 --weights "$T/w.safetensors" -o "$T/r8.npy" --quiet
    OPENBLAS_CORETYPE=Haswell valgrind -q --error-exitcode=99 "$T/check_vg" "$X" 4 "$T/w.safetensors" "$T/c8.npy" "$T/r8.npy" \
        > "$T/vg.out" 2> "$T/vg.err"; st=$?
    expect "valgrind reports no errors in the embedded model's calls" '[ $st -eq 0 ]'
    [ $st -eq 0 ] || sed 's/^/# /' "$T/vg.err" | head -30
fi

# Two models in one program, with only libc, libm and BLAS.
"$AEC" build specs/linear.ae --emit obj -o "$T/lin.o"
$CC -std=c11 -O2 -Wall -Wextra -Werror -I runtime -I "$T" "$E2E/two_models.c" "$T/lin.o" "$T/fm.o" \
    "${MODEL_LIBS[@]}" -o "$T/two" && ok "two models link into one program with only ${MODEL_LIBS[*]}" ||
    fail "two models link into one program with only ${MODEL_LIBS[*]}"
[ -x "$T/two" ] && tally "$T/two"

# Weights that do not match the spec are refused, naming the mismatch.
"$AEC" run specs/linear.ae -- train --data "$TRAIN" --limit 300 --epochs 1 --quiet --out "$T/lin.safetensors"
"$AEC" build $FM --emit obj --embed-weights "$T/lin.safetensors" -o "$T/bad.o" 2> "$T/err"; st=$?
expect "another model's weights are refused (exit 1), naming the tensor" \
    '[ $st -eq 1 ] && grep -q "encoder.1.weight" "$T/err" && [ ! -e "$T/bad.o" ]'
head -c 5000 "$T/w.safetensors" > "$T/trunc.safetensors"
"$AEC" build $FM --emit obj --embed-weights "$T/trunc.safetensors" -o "$T/bad.o" 2> "$T/err"; st=$?
expect "truncated weights are refused" '[ $st -eq 1 ] && grep -q "trunc.safetensors" "$T/err"'
"$AEC" build $FM --embed-weights "$T/w.safetensors" -o "$T/bad" 2> /dev/null; st=$?
expect "--embed-weights without --emit is a usage error" '[ $st -eq 2 ]'

# --embed-half: f16 copies for batch 1 (tests/test_emit.c checks what they
# compute): a smaller object, a header that says so, weights beyond f16's
# range refused.
"$AEC" build $FM --emit obj --embed-weights "$T/w.safetensors" --embed-half -o "$T/half.o"
text() { size -A "$1" | awk '$1 ~ /^\.rodata/ { n += $2 } END { print n + 0 }'; }
# (the params block stays f32: a quarter less read-only data, not half)
expect "--embed-half: a smaller object (read-only data $(text "$T/fm.o") -> $(text "$T/half.o") bytes)" \
    '[ "$(text "$T/half.o")" -gt 0 ] && [ $(($(text "$T/half.o") * 8)) -lt $(($(text "$T/fm.o") * 7)) ]'
expect "--embed-half: the header says so" 'grep -q "FMNIST_DENSE_EMBEDDED_HALF 1" "$T/half.h"'
"$AEC" build $FM --emit obj --embed-half -o "$T/bad.o" 2> /dev/null; st=$?
expect "--embed-half without --embed-weights is a usage error" '[ $st -eq 2 ] && [ ! -e "$T/bad.o" ]'
# the first value of the first tensor (encoder.1.weight) set to 1e5
hdr=$(od -An -tu8 -N8 "$T/w.safetensors" | tr -d ' ')
cp "$T/w.safetensors" "$T/big.safetensors"
printf '\000\120\303\107' | dd of="$T/big.safetensors" bs=1 seek=$((8 + hdr)) conv=notrunc 2> /dev/null
"$AEC" build $FM --emit obj --embed-weights "$T/big.safetensors" --embed-half -o "$T/bad.o" 2> "$T/err"; st=$?
expect "--embed-half refuses a weight beyond f16's range, naming it" \
    '[ $st -eq 1 ] && grep -q "encoder.1.weight holds 100000 at element 0, beyond f16" "$T/err" && [ ! -e "$T/bad.o" ]'
"$AEC" build $FM --emit obj --embed-weights "$T/big.safetensors" -o "$T/big.o"
expect "without --embed-half the same weights embed" '[ -s "$T/big.o" ]'

# --emit asm and llvm; cross-compilation.
"$AEC" build $FM --emit llvm -o "$T/m.ll"
expect "--emit llvm writes LLVM IR" 'grep -q "define i32 @fmnist_dense_encode(" "$T/m.ll"'
# -O3's own pass list (compiler/target.c) still vectorizes the fused loops:
# Adam's update and the training step's loops (with --gemm aec most of them
# run in the products' epilogues: the output layer's sigmoid, loss and
# gradient among them).
vector_loads() { # the vector loads in the functions whose names match $1
    awk -v f="$1" '$0 ~ "^define.*@" f { on = 1 } on && /load <[0-9]+ x float>/ { n++ }
                   /^}/ { on = 0 } END { print n + 0 }' "$T/m.ll"
}
expect "-O3 vectorizes the loop kernels (Adam's update, the training step's fused loops)" \
    '[ "$(vector_loads "fmnist_dense__optim[.]loop0[(]")" -gt 0 ] &&
     [ "$(vector_loads "fmnist_dense__train[.](epilogue|loop)")" -gt 0 ]'
"$AEC" build $FM --emit obj --target aarch64-linux-gnu --embed-weights "$T/w.safetensors" -o "$T/a64.o"
# What a file is: file(1), or readelf's machine when file is not installed.
kind() { if command -v file > /dev/null; then file "$1"; else readelf -h "$1" | grep Machine; fi; }
expect "an aarch64 object is produced and recognized" 'kind "$T/a64.o" | grep -q "ARM aarch64\|AArch64"'
"$AEC" build $FM --emit asm --target aarch64-linux-gnu --cpu cortex-a72 --features +neon -o "$T/a64.s"
expect "--emit asm writes assembly, for aarch64 with NEON" \
    'grep -q "^fmnist_dense_encode:" "$T/a64.s" && grep -q "fadd.*v[0-9]*\.4s" "$T/a64.s"'
[ -f "$T/vg/fm.o" ] && expect "an x86-64 object for another CPU (x86-64-v3, for valgrind)" \
    'kind "$T/vg/fm.o" | grep -q "x86-64\|X86-64" && ! objdump -d "$T/vg/fm.o" | grep -q zmm'
"$AEC" build $FM --emit obj --target riscv64-linux-gnu -o "$T/rv.o" 2> /dev/null &&
    expect "a riscv64 object too" 'kind "$T/rv.o" | grep -q "RISC-V"'
"$AEC" build $FM --emit obj --target nonsense-cpu-none -o "$T/bad.o" 2> "$T/err"; st=$?
expect "an unknown target is refused" '[ $st -ne 0 ] && grep -q "unknown target" "$T/err"'

# -g: the generated code maps to the spec's lines.
lines=" $(objdump --dwarf=decodedline "$T/fm.o" | awk '$1 == "fmnist_dense.ae" { print $2 }' | sort -un | tr '\n' ' ')"
has_lines() { for l in "$@"; do case "$lines" in *" $l "*) ;; *) return 1 ;; esac; done; }
expect "-g: the line table maps code to the layers' lines 8, 9, 10, 12 (it has:$lines)" 'has_lines 8 9 10 12'
expect "without -g there is no line table" \
    '! objdump --dwarf=decodedline "$T/m.o" | grep -q "fmnist_dense.ae"'
if command -v gdb > /dev/null; then
    printf '#include <stdlib.h>\n#include "fm.h"\nint main(void) { float x[784] = {0}, c[32];\n'\
'  void *ws = malloc(fmnist_dense_workspace_size(1));\n  return fmnist_dense_encode_embedded(x, c, 1, ws); }\n' > "$T/g.c"
    $CC -g -I runtime -I "$T" "$T/g.c" "$T/fm.o" "${MODEL_LIBS[@]}" -o "$T/g"
    gdb -batch -nx -ex 'break fmnist_dense.ae:9' -ex run -ex bt "$T/g" > "$T/gdb.out" 2>&1
    expect "gdb stops at a spec line, shows it, and has it in the backtrace" \
        'grep -q "^#0 .* at .*fmnist_dense.ae:9" "$T/gdb.out" && grep -q "dense 128 relu" "$T/gdb.out"'
fi

# examples/embed, built with its own Makefile, scores inputs from stdin.
if make -s -C examples/embed O="$T/ex" AEC="$ROOT/$AEC" WEIGHTS="$T/w.safetensors" AECFLAGS="${VG_CPU[*]}" \
    > "$T/ex.log" 2>&1; then
    ok "examples/embed builds with its own Makefile"
    img() { zcat "$X" | tail -c +17 | head -c $((784 * 20)) | od -An -v -tu1 -w784; }
    normal=$(img | "$T/ex/score" --scale 255 2> /dev/null | awk '{ s += $2 } END { print s / NR }')
    noise=$(head -c $((784 * 20)) /dev/urandom | od -An -v -tu1 -w784 | "$T/ex/score" --scale 255 2> /dev/null |
        awk '{ s += $2 } END { print s / NR }')
    expect "the scorer rates noise as more anomalous than test images ($noise > $normal)" \
        'awk -v a="$noise" -v b="$normal" "BEGIN { exit !(a > b) }"'
    if [ -n "$VALGRIND" ]; then
        img | head -n 3 | valgrind -q --error-exitcode=99 "$T/ex/score" --scale 255 > /dev/null 2> "$T/vg2.err"
        st=$?
        expect "valgrind reports no errors in the scorer" '[ $st -eq 0 ]'
        [ $st -eq 0 ] || sed 's/^/# /' "$T/vg2.err" | head -30
    fi
    echo "1 2 3" | "$T/ex/score" > /dev/null 2> "$T/err"; st=$?
    expect "the scorer refuses a short input line" '[ $st -eq 1 ] && grep -q "expected 784" "$T/err"'
else
    fail "examples/embed builds with its own Makefile"
    sed 's/^/# /' "$T/ex.log"
fi

summary "emit"
