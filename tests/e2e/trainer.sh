#!/usr/bin/env bash
# End to end through the command lines: aec builds trainers from specs; the
# trainer trains, resumes exactly, and its encode/decode/reconstruct agree;
# bad specs, data and checkpoints are refused with located messages.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist

"$AEC" build specs/fmnist_dense.ae -o "$T/fm" || { echo "not ok - build"; exit 1; }
"$AEC" build specs/linear.ae -o "$T/lin" || { echo "not ok - build linear"; exit 1; }
train() { "$T/fm" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 2000 --quiet "$@"; }

# Resume: 2 epochs, then 2 more from the checkpoint, equals 4 in one go.
train --epochs 4 --out "$T/a.safetensors"
train --epochs 2 --out "$T/b.safetensors"
train --epochs 4 --resume "$T/b.safetensors" --out "$T/b.safetensors"
expect "resume gives the same checkpoint as an uninterrupted run" 'cmp -s "$T/a.safetensors" "$T/b.safetensors"'

# encode then decode is reconstruct, bit for bit.
W=(--weights "$T/a.safetensors")
X="$DATA/t10k-images-idx3-ubyte.gz"
"$T/fm" encode --data "$X" --limit 500 "${W[@]}" -o "$T/codes.npy"
"$T/fm" decode --codes "$T/codes.npy" "${W[@]}" -o "$T/dec.npy"
"$T/fm" reconstruct --data "$X" --limit 500 "${W[@]}" -o "$T/rec.npy" --png "$T/grid.png"
expect "decode(encode(x)) equals reconstruct(x)" 'cmp -s "$T/dec.npy" "$T/rec.npy"'
expect "reconstruct writes a PNG" '[ "$(head -c 4 "$T/grid.png" | tail -c 3)" = PNG ]'
"$T/fm" eval --data "$X" --limit 1000 "${W[@]}" --json > "$T/eval.json"
expect "eval --json reports the MSE" 'grep -q "\"mse\"" "$T/eval.json"'

# Bad input: located errors, exit status 1, never a crash.
printf 'model bad {\n  input 784\n  encoder { dense 32 rleu }\n  decoder mirror\n}\n' > "$T/bad.ae"
"$AEC" check "$T/bad.ae" 2> "$T/err"; st=$?
expect "a bad spec exits 1" '[ $st -eq 1 ]'
expect "a bad spec is located with a suggestion" 'grep -q "bad.ae:3:.*error:.*did you mean .relu." "$T/err"'
"$T/fm" train --data "$T/missing.idx" --quiet 2> "$T/err"; st=$?
expect "missing data exits 1 naming the file" '[ $st -eq 1 ] && grep -q missing.idx "$T/err"'
"$T/fm" eval --data "$T/codes.npy" "${W[@]}" 2> "$T/err"; st=$?
expect "data of the wrong size is refused with the size expected" '[ $st -eq 1 ] && grep -q 784 "$T/err"'
"$T/lin" eval --data "$X" --limit 10 --weights "$T/a.safetensors" 2> "$T/err"; st=$?
expect "another model's checkpoint is refused naming the mismatch" '[ $st -eq 1 ] && grep -q "encoder.0" "$T/err"'
head -c 1000 "$T/a.safetensors" > "$T/trunc.safetensors"
"$T/fm" eval --data "$X" --limit 10 --weights "$T/trunc.safetensors" 2> "$T/err"; st=$?
expect "a truncated checkpoint is refused" '[ $st -eq 1 ] && grep -q trunc.safetensors "$T/err"'

# The command line is generated from the command and option tables
# (runtime/commands.c): the command list and every command's --help are
# pinned, so a table edit that changes what users see shows up here.
# AEC_UPDATE_GOLDEN=1 rewrites the golden file.
help_text() {
    "$T/fm" --help
    for c in $("$T/fm" --help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do echo; "$T/fm" "$c" --help; done
}
GOLDEN=tests/golden/trainer/help.txt
if [ "${AEC_UPDATE_GOLDEN:-}" = 1 ]; then mkdir -p "$(dirname $GOLDEN)"; help_text > "$GOLDEN"; fi
help_text > "$T/help.txt"
expect "the command list and every command's --help match $GOLDEN" 'diff -u "$GOLDEN" "$T/help.txt"'
"$T/fm" trian 2> "$T/err"; st=$?
expect "an unknown command exits 2 with a suggestion" '[ $st -eq 2 ] && grep -q "did you mean .train." "$T/err"'
"$T/fm" train --epcohs 3 2> "$T/err"; st=$?
expect "an unknown option exits 2 with a suggestion" '[ $st -eq 2 ] && grep -q "did you mean .--epochs." "$T/err"'

summary "trainer"
