#!/usr/bin/env bash
# make demo: compile the default Fashion-MNIST autoencoder, train it, print
# the test-set reconstruction error, write originals over reconstructions
# to out/fmnist_dense.png and the test set's codes, projected to 2-D and
# coloured by class, to out/fmnist_dense_latent.png.
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
    --weights out/fmnist_dense.safetensors --png out/fmnist_dense.png --quiet
out/fmnist_dense scatter --data "$DATA/t10k-images-idx3-ubyte.gz" --weights out/fmnist_dense.safetensors \
    --labels "$DATA/t10k-labels-idx1-ubyte.gz" -o out/fmnist_dense_latent.png
echo "== wrote out/fmnist_dense.png (top: test images, bottom: reconstructions)"
echo "   and out/fmnist_dense_latent.png (the test set's codes, PCA to 2-D, one colour per class)"
