#!/usr/bin/env bash
# Against PCA: a linear autoencoder with a 16-number code (specs/linear.ae)
# and the default nonlinear one with 32 (specs/fmnist_dense.ae), each against
# PCA with as many components, on the training set and the test set.
source "$(dirname "$0")/common.sh"
for spec in linear fmnist_dense; do
    "$B"/aec build specs/$spec.ae -o "$OUT/$spec"
    [ -s "$OUT/$spec.safetensors" ] ||
        "$OUT/$spec" train --data "$DATA/train-images-idx3-ubyte.gz" --out "$OUT/$spec.safetensors" --quiet
    echo "== $spec"
    "$OUT/$spec" compare-pca --data "$DATA/train-images-idx3-ubyte.gz" --test "$DATA/t10k-images-idx3-ubyte.gz" \
        --weights "$OUT/$spec.safetensors"
done
