#!/usr/bin/env bash
# End to end for `PROG export`: every spec in specs/ (and tests/e2e/onnx/,
# which has the layers and activations the specs lack) is built, trained
# briefly, and exported as its autoencoder, encoder and decoder; each file
# must pass python3-onnx's checker (full_check) and shape inference, and a
# numpy evaluation of its graph, op by op (onnx_eval.py), must equal what
# the trainer computes — reconstruct, encode and decode — to 1e-5.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3

# 64 test images as .npy, so that the trainer and numpy read the same values.
$PY -c "
import gzip, numpy as np
x = np.frombuffer(gzip.open('$DATA/t10k-images-idx3-ubyte.gz').read()[16:], np.uint8)
np.save('$T/x.npy', x.reshape(-1, 784)[:64].astype(np.float32) / np.float32(255))"

for spec in ${ONNX_SPECS:-specs/*.ae tests/e2e/onnx/*.ae}; do  # ONNX_SPECS: a subset, while iterating
    name=$(basename "$spec" .ae)
    P="$T/$name"
    if ! "$AEC" build "$spec" -o "$P" 2> "$T/err"; then
        cat "$T/err"; fail "$name: builds"; continue
    fi
    # Brief training: batch-norm statistics and weights move off their init.
    # Fashion-MNIST for 784-value inputs; uniform noise of the right size for
    # the others (autorec's 943 users).
    d=$("$P" summary | sed -n 's/^input .*(\([0-9]*\) values)$/\1/p')
    train=$DATA/train-images-idx3-ubyte.gz X=$T/x.npy
    if [ "$d" != 784 ]; then
        train=$T/train$d.npy X=$T/x$d.npy
        $PY -c "
import numpy as np; r = np.random.default_rng(1)
np.save('$train', r.random((512, $d), np.float32)); np.save('$X', r.random((64, $d), np.float32))"
    fi
    "$P" train --data "$train" --limit 512 --epochs 1 --quiet \
        --out "$P.safetensors" > /dev/null 2>&1 || { fail "$name: trains"; continue; }
    W=(--weights "$P.safetensors")
    "$P" reconstruct --data "$X" "${W[@]}" -o "$P.rec.npy" --quiet
    "$P" encode --data "$X" "${W[@]}" -o "$P.codes.npy" --quiet
    "$P" decode --codes "$P.codes.npy" "${W[@]}" -o "$P.dec.npy" --quiet
    for part in autoencoder encoder decoder; do
        if ! "$P" export "${W[@]}" --part "$part" -o "$P.$part.onnx" --quiet 2> "$T/err"; then
            cat "$T/err"; fail "$name: export --part $part"; continue
        fi
        case $part in
        autoencoder) tally $PY tests/e2e/onnx_eval.py "$P.$part.onnx" "$X" "$P.rec.npy" ;;
        encoder) tally $PY tests/e2e/onnx_eval.py "$P.$part.onnx" "$X" "$P.codes.npy" ;;
        decoder) tally $PY tests/e2e/onnx_eval.py "$P.$part.onnx" "$P.codes.npy" "$P.dec.npy" ;;
        esac
    done
done

# A model built with --dtype f64 exports DOUBLE tensors, and agrees too.
P="$T/conv64"
$PY -c "import numpy as np; np.save('$T/x64.npy', np.load('$T/x.npy').astype(np.float64))"
if "$AEC" build specs/conv_small.ae --dtype f64 -o "$P" &&
    "$P" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 256 --epochs 1 --quiet \
        --out "$P.safetensors" > /dev/null 2>&1 &&
    "$P" reconstruct --data "$T/x64.npy" --weights "$P.safetensors" -o "$P.rec.npy" --quiet &&
    "$P" export --weights "$P.safetensors" -o "$P.onnx" --quiet; then
    tally $PY tests/e2e/onnx_eval.py "$P.onnx" "$T/x64.npy" "$P.rec.npy"
    expect "an f64 model's parameters are DOUBLE initializers" "$PY -c \"
import onnx, sys; m = onnx.load('$P.onnx')
w = [t for t in m.graph.initializer if '.' in t.name]  # the parameters: encoder.0.weight
sys.exit(0 if w and all(t.data_type == onnx.TensorProto.DOUBLE for t in w) else 1)\""
else
    fail "conv_small --dtype f64: build, train, reconstruct, export"
fi

# Together the exports use every operator the mapping has (so each was checked).
if [ -z "${ONNX_SPECS:-}" ]; then
    missing=$($PY -c "
import glob, onnx
used = {n.op_type for f in glob.glob('$T/*.onnx') for n in onnx.load(f).graph.node}
want = 'Gemm Relu Sigmoid Tanh Elu Softplus LeakyRelu Erf Conv ConvTranspose MaxPool AveragePool Resize BatchNormalization Reshape Flatten'.split()
print(' '.join(sorted(set(want) - used)))")
    expect "the exports use every mapped operator${missing:+ (unused: $missing)}" '[ -z "$missing" ]'
fi

# The default part is the autoencoder; a bad --part is a usage error.
P="$T/linear"
"$P" export --weights "$P.safetensors" -o "$T/default.onnx" --quiet
expect "export without --part writes the autoencoder" 'cmp -s "$T/default.onnx" "$P.autoencoder.onnx"'
"$P" export --weights "$P.safetensors" -o "$T/x.onnx" --part middle 2> "$T/err"; st=$?
expect "an unknown --part exits 2 naming the parts" '[ $st -eq 2 ] && grep -q "autoencoder, encoder, decoder" "$T/err"'
"$P" export --weights "$T/vae.safetensors" -o "$T/x.onnx" 2> "$T/err"; st=$?
expect "another model's weights are refused" '[ $st -eq 1 ] && [ ! -e "$T/x.onnx" ]'

summary "onnx"
