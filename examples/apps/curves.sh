#!/usr/bin/env bash
# Loss curves: a sparse autoencoder (its loss has two terms) trained with a
# validation hold-out; train --plot redraws the chart after every epoch,
# plot draws it (with the terms) from the --json log afterwards.
source "$(dirname "$0")/common.sh"
"$B"/aec build specs/sparse_l1.ae -o "$OUT/sparse_l1"
"$OUT/sparse_l1" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 20000 --epochs 8 \
    --out "$OUT/sparse_l1.safetensors" --plot "$OUT/sparse_l1_live.png" --json > "$OUT/sparse_l1.jsonl"
"$OUT/sparse_l1" plot "$OUT/sparse_l1.jsonl" -o "$OUT/sparse_l1_curves.png"
