#!/usr/bin/env bash
# make demo: compile the default Fashion-MNIST autoencoder, train it, print
# the test-set reconstruction error and write originals over
# reconstructions to out/fmnist_dense.png.
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
DATA=/usr/share/datasets/fashion-mnist
mkdir -p out
echo "== aec check specs/fmnist_dense.ae"
"$B"/aec check specs/fmnist_dense.ae
echo "== aec build specs/fmnist_dense.ae -o out/fmnist_dense"
"$B"/aec build specs/fmnist_dense.ae -o out/fmnist_dense
echo "== training on $DATA/train-images-idx3-ubyte.gz"
out/fmnist_dense train --data "$DATA/train-images-idx3-ubyte.gz" --out out/fmnist_dense.safetensors
echo "== test set"
out/fmnist_dense eval --data "$DATA/t10k-images-idx3-ubyte.gz" --weights out/fmnist_dense.safetensors
out/fmnist_dense reconstruct --data "$DATA/t10k-images-idx3-ubyte.gz" \
    --weights out/fmnist_dense.safetensors --png out/fmnist_dense.png
echo "== wrote out/fmnist_dense.png (top: test images, bottom: reconstructions)"
