#!/usr/bin/env bash
# Similarity search: the 10 nearest training images (60,000) of every test
# image (10,000) by the distance of their 32-number codes; precision@10 is
# the share of neighbours of the query's class. Draws 16 queries, each
# followed by its neighbours.
source "$(dirname "$0")/common.sh"
"$B"/aec build specs/fmnist_dense.ae -o "$OUT/fmnist_dense"
[ -s "$OUT/fmnist_dense.safetensors" ] ||
    "$OUT/fmnist_dense" train --data "$DATA/train-images-idx3-ubyte.gz" --out "$OUT/fmnist_dense.safetensors" --quiet
"$OUT/fmnist_dense" search --index "$DATA/train-images-idx3-ubyte.gz" --query "$DATA/t10k-images-idx3-ubyte.gz" \
    --weights "$OUT/fmnist_dense.safetensors" -k 10 --labels "$DATA/train-labels-idx1-ubyte.gz" \
    --query-labels "$DATA/t10k-labels-idx1-ubyte.gz" -o "$OUT/neighbours.csv" --png "$OUT/neighbours.png"
