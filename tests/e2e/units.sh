#!/usr/bin/env bash
# An object compiled in units (compiler/units.c: the module's functions
# dealt into parts, each optimized and compiled on a thread of its own,
# joined by the linker) is the object compiled whole, for everything a user
# can see: the same global symbols, the same trained bits, a working -g.
# The generated GEMMs (--gemm aec, also under make test-blas) make these
# modules big enough to split.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
TRAIN="$DATA/train-images-idx3-ubyte.gz"

# same_as_whole NAME SPEC LIMIT [aec build options...]
same_as_whole() {
    local name=$1 spec=$2 limit=$3 model
    model=$(basename "$spec" .ae)
    shift 3
    "$AEC" build "$spec" --emit obj "$@" -o "$T/$name.units.o" &&
        AEC_UNITS=1 "$AEC" build "$spec" --emit obj "$@" -o "$T/$name.whole.o" ||
        { fail "$name builds"; return; }
    expect "$name: built in units (its crossing symbols were renamed and made local)" \
        'nm "$T/$name.units.o" | grep -q " t $model\.aec\.gemm"'
    expect "$name: in units and whole, the same defined global symbols" \
        'cmp -s <(nm -g --defined-only "$T/$name.units.o" | sed "s/^[0-9a-f]* //" | sort) <(nm -g --defined-only "$T/$name.whole.o" | sed "s/^[0-9a-f]* //" | sort)'
    "$AEC" build "$spec" "$@" -o "$T/$name.units" &&
        AEC_UNITS=1 "$AEC" build "$spec" "$@" -o "$T/$name.whole" || { fail "$name: trainers build"; return; }
    for v in units whole; do
        "$T/$name.$v" train --data "$TRAIN" --limit "$limit" --epochs 1 --quiet --out "$T/$name.$v.safetensors"
    done
    expect "$name: in units and whole, training writes the same checkpoint, byte for byte" \
        'cmp -s "$T/$name.units.safetensors" "$T/$name.whole.safetensors"'
}

same_as_whole fmnist_dense specs/fmnist_dense.ae 2560 --gemm aec
same_as_whole deep specs/deep.ae 1024 --gemm aec
same_as_whole conv_small specs/conv_small.ae 256 --gemm aec
same_as_whole deep_f64 specs/deep.ae 512 --dtype f64 --gemm aec

# -g: the units' DWARF survives the link (gdb's line table names the spec)
"$AEC" build specs/conv_small.ae --emit obj -g --gemm aec -o "$T/g.o"
expect "-g in units: the object's line table names the spec" \
    'objdump --dwarf=rawline "$T/g.o" 2>/dev/null | grep -q conv_small.ae'
# A module too small for units, and another architecture, compile whole
# (specs/linear.ae was small enough until the micro-kernels' k loops were
# unrolled; it now makes two units).
printf 'model tiny {\n  input 8\n  encoder { dense 4 }\n  decoder { dense 8 }\n  loss mse\n}\n' >"$T/tiny.ae"
"$AEC" build "$T/tiny.ae" --emit obj -o "$T/tiny.o"
expect "a small model compiles whole" '! nm "$T/tiny.o" | grep -q " t tiny\.aec\.gemm"'
"$AEC" build specs/conv_small.ae --emit obj --gemm aec --target aarch64-linux-gnu -o "$T/a.o"
expect "an aarch64 object compiles whole, and is one" \
    'file "$T/a.o" | grep -q aarch64 || readelf -h "$T/a.o" | grep -q AArch64'

summary "units"
