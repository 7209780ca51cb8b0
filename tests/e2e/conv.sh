#!/usr/bin/env bash
# Convolutional autoencoders end to end through the command lines: the
# seed's mnist_conv has Keras's parameter totals, builds, trains (batch-norm
# running statistics land in the checkpoint) and draws the seed's picture;
# conv_small trains, reconstructs, and its codes make a latent scatter plot.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
is_png() { [ "$(head -c 4 "$1" 2>/dev/null | tail -c 3)" = PNG ]; }

"$AEC" check specs/mnist_conv.ae > "$T/table"
expect "mnist_conv: 416,262 parameters as Keras reports" 'grep -q "^Total params: 416,262$" "$T/table"'
expect "mnist_conv: 415,494 trainable" 'grep -q "^Trainable params: 415,494$" "$T/table"'

"$AEC" build specs/mnist_conv.ae -o "$T/mc" || { echo "not ok - build mnist_conv"; exit 1; }
"$T/mc" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 256 --epochs 1 --out "$T/mc.safetensors" \
    --quiet --json > "$T/mc.json"
expect "mnist_conv trains (finite loss)" 'grep -q "\"train_loss\": *[0-9]" "$T/mc.json"'
expect "the checkpoint keeps the batch-norm running statistics" \
    'head -c 4096 "$T/mc.safetensors" | grep -q "encoder.6.running_var"'
"$T/mc" reconstruct --data "$DATA/t10k-images-idx3-ubyte.gz" --limit 20 -w "$T/mc.safetensors" \
    --png "$T/mc.png" --quiet
expect "mnist_conv reconstruct --png writes the originals/reconstructions grid" 'is_png "$T/mc.png"'

"$AEC" build specs/conv_small.ae -o "$T/cs" || { echo "not ok - build conv_small"; exit 1; }
"$T/cs" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 2048 --epochs 2 --out "$T/cs.safetensors" --quiet
"$T/cs" eval --data "$DATA/t10k-images-idx3-ubyte.gz" --limit 500 -w "$T/cs.safetensors" --json > "$T/eval.json"
expect "conv_small reconstructs the test set (MSE < 0.06)" \
    'awk -F"\"mse\": " "{split(\$2, a, \",\"); exit !(a[1] < 0.06)}" "$T/eval.json"'
"$T/cs" encode --data "$DATA/t10k-images-idx3-ubyte.gz" --limit 1000 -w "$T/cs.safetensors" -o "$T/codes.npy" --quiet
if /usr/bin/python3 -c 'import matplotlib, numpy' 2>/dev/null; then
    /usr/bin/python3 examples/latent_scatter.py "$T/codes.npy" "$DATA/t10k-labels-idx1-ubyte.gz" \
        -o "$T/latent.png" 2>/dev/null
    expect "latent_scatter.py draws the codes by class" 'is_png "$T/latent.png"'
else
    echo "skip - latent_scatter.py: python3-matplotlib is not installed"
fi

summary "conv e2e"
