#!/usr/bin/env bash
# Recommendation (AutoRec) on generated ratings: 1,500 users x 200 items of
# rank 4 plus noise, 15 % observed, 10 % of those held out. Trains an
# item-based and a user-based AutoRec with an 8-number linear code and
# compares their held-out RMSE with the per-item mean's; then recommends.
# For MovieLens: specs/autorec.ae and `train --ratings ratings.csv`.
source "$(dirname "$0")/common.sh"
"$PY" - "$OUT" <<'PYEOF'
import sys
import numpy as np
out = sys.argv[1]
rng = np.random.default_rng(3)
U, I, R = 1500, 200, 4
full = 3 + (rng.normal(size=(U, R)) @ rng.normal(size=(I, R)).T) / np.sqrt(R) * 0.9 \
    + rng.normal(scale=0.2, size=(U, I))
uu, ii = np.nonzero(rng.random((U, I)) < 0.15)
vals = full[uu, ii]
perm = rng.permutation(len(vals))
cut = int(0.9 * len(vals))
for name, idx in (("ratings_train", perm[:cut]), ("ratings_test", perm[cut:])):
    with open(f"{out}/{name}.csv", "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        f.writelines(f"{uu[k] + 1},{ii[k] + 1},{vals[k]:.4f},0\n" for k in idx)
tr, te = perm[:cut], perm[cut:]
means = np.array([vals[tr][ii[tr] == i].mean() for i in range(I)])
print(f"per-item mean: held-out RMSE {np.sqrt(((means[ii[te]] - vals[te]) ** 2).mean()):.4f}")
PYEOF
sed 's/input 943/input 1500/; s/dense 500 sigmoid/dense 8/; s/dense 943/dense 1500/; s/l2 weights 1e-4/l2 weights 1e-6/; s/lr=1e-3; batch 32; epochs 100/lr=1e-2; batch 16; epochs 200/' \
    specs/autorec.ae > "$OUT/autorec_items.ae"
sed 's/input 943/input 200/; s/dense 500 sigmoid/dense 8/; s/dense 943/dense 200/; s/lr=1e-3; batch 32; epochs 100/lr=1e-2; batch 64; epochs 60/' \
    specs/autorec.ae > "$OUT/autorec_users.ae"
for by in items users; do
    "$B"/aec build "$OUT/autorec_$by.ae" -o "$OUT/autorec_$by"
    "$OUT/autorec_$by" train --ratings "$OUT/ratings_train.csv" --by "${by%s}" --out "$OUT/autorec_$by.safetensors" --quiet
    echo -n "AutoRec by ${by%s}: "
    "$OUT/autorec_$by" eval --ratings "$OUT/ratings_test.csv" --known "$OUT/ratings_train.csv" \
        --weights "$OUT/autorec_$by.safetensors"
done
"$OUT/autorec_items" recommend --ratings "$OUT/ratings_train.csv" --weights "$OUT/autorec_items.safetensors" \
    --user 1 --user 2 --user 3 -k 5
