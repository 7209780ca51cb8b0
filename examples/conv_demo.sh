#!/usr/bin/env bash
# The convolutional autoencoders: check the seed's mnist_conv (Keras's
# 416,262 / 415,494 parameters), then train specs/conv_small.ae (about a
# minute) on Fashion-MNIST and write what it learned: out/conv_small.png
# (test images on top, reconstructions below) and out/conv_small_latent.png
# (the test set's codes, PCA to 2-D, one colour per class).
# MNIST digits instead: DATA=/path/to/mnist examples/conv_demo.sh (the same
# IDX file names). SPEC=specs/mnist_conv.ae trains the seed's model (slow:
# minutes per epoch).
# Usage: examples/conv_demo.sh [BUILD]
set -euo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
SPEC=${SPEC:-specs/conv_small.ae}
name=$(basename "$SPEC" .ae)
mkdir -p out
echo "== aec check specs/mnist_conv.ae (the seed's model)"
"$B"/aec check specs/mnist_conv.ae | tail -n 5
echo "== aec build $SPEC -o out/$name"
"$B"/aec build "$SPEC" -o "out/$name"
echo "== training on $DATA/train-images-idx3-ubyte.gz"
"out/$name" train --data "$DATA/train-images-idx3-ubyte.gz" --out "out/$name.safetensors"
echo "== test set"
W=(--weights "out/$name.safetensors")
"out/$name" eval --data "$DATA/t10k-images-idx3-ubyte.gz" "${W[@]}"
"out/$name" reconstruct --data "$DATA/t10k-images-idx3-ubyte.gz" "${W[@]}" --png "out/$name.png" --quiet
"out/$name" encode --data "$DATA/t10k-images-idx3-ubyte.gz" "${W[@]}" -o "out/${name}_codes.npy"
python3=/usr/bin/python3
[ -x "$python3" ] || python3=python3
names=()
case $DATA in *fashion*) ;; *) names=(--names numbers) ;; esac
"$python3" examples/latent_scatter.py "out/${name}_codes.npy" "$DATA/t10k-labels-idx1-ubyte.gz" \
    -o "out/${name}_latent.png" "${names[@]}"
echo "== wrote out/$name.png (top: test images, bottom: reconstructions) and out/${name}_latent.png"
