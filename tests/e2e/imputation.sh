#!/usr/bin/env bash
# `loss ... masked` end to end: data with NaN (missing values) trains a
# masked model, whose reconstructions fill the gaps better than the mean
# does; a model without `masked` refuses the same data.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DATA=/usr/share/datasets/fashion-mnist

# 3000 training and 500 test images with 30 % of the pixels missing (NaN).
"$PY" - "$DATA" "$T" <<'PYEOF'
import gzip, sys
import numpy as np
data, out = sys.argv[1], sys.argv[2]
def images(name, n):
    with gzip.open(f"{data}/{name}") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784].reshape(n, 784) / np.float32(255)
rng = np.random.default_rng(1)
for name, n, file in (("train-images-idx3-ubyte.gz", 3000, "train"), ("t10k-images-idx3-ubyte.gz", 500, "test")):
    x = images(name, n).astype(np.float32)
    holes = rng.random(x.shape) < 0.3
    np.save(f"{out}/{file}_clean.npy", x)
    x[holes] = np.nan
    np.save(f"{out}/{file}_holes.npy", x)
PYEOF

"$B"/aec build specs/imputation.ae -o "$T/imp" || { echo "not ok - build"; exit 1; }
"$T/imp" train --data "$T/train_holes.npy" --epochs 3 --out "$T/imp.safetensors" --quiet
expect "a masked model trains on data with missing values" '[ -s "$T/imp.safetensors" ]'
"$T/imp" eval --data "$T/test_holes.npy" --weights "$T/imp.safetensors" --json > "$T/eval.json"
expect "its loss on the present values is finite" 'grep -q "\"loss\": *[0-9]" "$T/eval.json"'
"$T/imp" reconstruct --data "$T/test_holes.npy" --weights "$T/imp.safetensors" -o "$T/filled.npy" --quiet
"$PY" - "$T" > "$T/score" <<'PYEOF'
import sys
import numpy as np
t = sys.argv[1]
clean, holes, filled = (np.load(f"{t}/{n}.npy") for n in ("test_clean", "test_holes", "filled"))
gap = np.isnan(holes)
mean_fill = np.nanmean(np.load(f"{t}/train_holes.npy"), axis=0)   # per-pixel mean of what is present
model = np.mean((filled[gap] - clean[gap]) ** 2)
baseline = np.mean((np.broadcast_to(mean_fill, clean.shape)[gap] - clean[gap]) ** 2)
print(f"{model:.5f} {baseline:.5f} {int(np.isnan(filled).sum())}")
PYEOF
read model baseline nans < "$T/score"
echo "imputation: MSE on the missing pixels $model (model) vs $baseline (per-pixel mean)"
expect "the reconstruction has no NaN" '[ "$nans" = 0 ]'
expect "the model fills the gaps better than the per-pixel mean" \
    '"$PY" -c "import sys; sys.exit(not ($model < 0.7 * $baseline))"'
"$B"/aec build specs/fmnist_dense.ae -o "$T/plain"
"$T/plain" eval --data "$T/test_holes.npy" --weights "$T/imp.safetensors" 2> "$T/err"; st=$?
expect "a model without 'masked' refuses NaN, naming sample and feature" '[ $st -eq 1 ] && grep -qi "nan" "$T/err"'

summary "imputation"
