#!/usr/bin/env bash
# Anomaly detection: train on five Fashion-MNIST classes (T-shirt, trouser,
# pullover, dress, coat), score the whole test set; the other five classes
# (sandal, shirt, sneaker, bag, ankle boot) are the anomalies. Prints the ROC
# AUC and average precision, and the flags at the 99th percentile of the
# training images' own scores. Also draws the loss curves (plot).
source "$(dirname "$0")/common.sh"
"$PY" - "$DATA" "$OUT" <<'PYEOF'
import gzip, sys
import numpy as np
data, out = sys.argv[1:]
def read(name, off):
    with gzip.open(f"{data}/{name}") as f:
        return np.frombuffer(f.read(), np.uint8, offset=off)
x = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
y = read("train-labels-idx1-ubyte.gz", 8)
np.save(f"{out}/normal_train.npy", (x[y < 5] / np.float32(255)).astype(np.float32))
PYEOF
"$B"/aec build specs/fmnist_dense.ae -o "$OUT/fmnist_dense"
"$OUT/fmnist_dense" train --data "$OUT/normal_train.npy" --out "$OUT/normal.safetensors" \
    --json --quiet > "$OUT/normal_train.jsonl"
"$OUT/fmnist_dense" plot "$OUT/normal_train.jsonl" -o "$OUT/normal_curves.png"
"$OUT/fmnist_dense" score --data "$DATA/t10k-images-idx3-ubyte.gz" --weights "$OUT/normal.safetensors" \
    --labels "$DATA/t10k-labels-idx1-ubyte.gz" --normal 0,1,2,3,4 \
    --calibrate "$OUT/normal_train.npy" --quantile 0.99 -o "$OUT/scores.csv"
