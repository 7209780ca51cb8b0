#!/usr/bin/env bash
# Divergence: a learning rate that makes the loss non-finite stops training
# at the first non-finite step, with the epoch, batch and step named, exit
# status 1, and the last good checkpoint kept byte for byte.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export OPENBLAS_NUM_THREADS=1

# One architecture, two learning rates: the second diverges within a batch or two.
spec() {
    printf 'model d {\n  input 784\n  encoder { dense 32 relu }\n  decoder mirror\n  loss mse\n'
    printf '  train { optimizer sgd lr=%s; batch 50; epochs 4 }\n}\n' "$1"
}
spec 0.05 > "$T/good.ae"
spec 1e6 > "$T/bad.ae"
"$AEC" build "$T/good.ae" -o "$T/good" && "$AEC" build "$T/bad.ae" -o "$T/bad" ||
    { echo "not ok - build"; exit 1; }
CK="$T/d.safetensors"
"$T/good" train --data "$DATA" --limit 400 --epochs 2 --out "$CK" --quiet
expect "two good epochs leave a checkpoint" '[ -f "$CK" ]'
cp "$CK" "$T/good.safetensors"

"$T/bad" train --data "$DATA" --limit 400 --resume "$CK" --out "$CK" --quiet 2>"$T/err"; st=$?
cat "$T/err"
expect "a diverging run exits 1" '[ $st -eq 1 ]'
expect "...naming the epoch, batch and step where the loss stopped being finite" \
    'grep -Eq "epoch 3, batch [0-9]+ \(step [0-9]+\): loss is not finite" "$T/err"'
expect "...and saying the checkpoint holds the last good epoch" \
    'grep -q "d.safetensors holds epoch 2" "$T/err"'
expect "the last good checkpoint is kept byte for byte" 'cmp -s "$T/good.safetensors" "$CK"'
expect "...and still loads" \
    '"$T/good" eval --data "$DATA" --limit 10 --weights "$CK" >/dev/null'

# From scratch there is no good checkpoint to keep: none is written, and the
# message does not claim one.
"$T/bad" train --data "$DATA" --limit 400 --out "$T/new.safetensors" --quiet 2>"$T/err"; st=$?
cat "$T/err"
expect "diverging in the first epoch exits 1" '[ $st -eq 1 ]'
expect "...naming epoch 1" 'grep -Eq "epoch 1, batch [0-9]+ \(step [0-9]+\)" "$T/err"'
expect "...writing no checkpoint, and saying so" \
    '[ ! -e "$T/new.safetensors" ] && grep -q "no checkpoint was written" "$T/err"'

summary "divergence"
