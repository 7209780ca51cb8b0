#!/usr/bin/env bash
# End to end through the command lines, for what makes an autoencoder learn
# more than the identity: every spec of specs/ that has a regularizer, noise
# or a variational code builds and trains; runs with noise, dropout and
# sampling resume bit for bit; the trainer reports the loss's terms and the
# pretraining stages; `sample` and `interpolate` write what they say.
. "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
X="$DATA/train-images-idx3-ubyte.gz"
XT="$DATA/t10k-images-idx3-ubyte.gz"

for s in denoising sparse_l1 sparse_kl contractive vae stacked_pretrained; do
    "$AEC" build "specs/$s.ae" -o "$T/$s" || { fail "build specs/$s.ae"; continue; }
    "$T/$s" train --data "$X" --limit 512 --epochs 1 --pretrain-epochs 1 --quiet --out "$T/$s.st"
    expect "specs/$s.ae trains" '[ -s "$T/$s.st" ]'
done

# Noise, dropout and the VAE's sampling are keyed by the step: a resumed
# run ends bit-identical to an uninterrupted one.
printf 'model noisy {\n input 1x28x28\n encoder { flatten; dense 64 tanh; dense 16 }\n latent gaussian 8\n decoder { dense 64 tanh; dropout 0.2; dense 784 sigmoid; reshape 1x28x28 }\n loss bce\n corrupt saltpepper 0.1\n regularize { kl 0.5; l2 weights 1e-4 }\n train { batch 64; seed 3 }\n}\n' > "$T/noisy.ae"
"$AEC" build "$T/noisy.ae" -o "$T/noisy"
"$T/noisy" train --data "$X" --limit 1000 --epochs 3 --quiet --out "$T/a.st"
"$T/noisy" train --data "$X" --limit 1000 --epochs 1 --quiet --out "$T/b.st"
"$T/noisy" train --data "$X" --limit 1000 --epochs 3 --quiet --resume "$T/b.st"
expect "noise, dropout and sampling resume bit for bit" 'cmp -s "$T/a.st" "$T/b.st"'

# The terms of the loss, and the ELBO, in the epoch lines and the JSON.
"$T/vae" train --data "$X" --limit 1000 --epochs 2 --val "$XT" --out "$T/v.st" --json > "$T/v.json" 2> "$T/v.err"
expect "the VAE's epoch line has recon, kl and the ELBO" 'grep -q "recon .* kl .* elbo -" "$T/v.err"'
expect "the VAE's JSON has the terms and the ELBO" 'grep -q "\"terms\":{\"recon\":[0-9.]*,\"kl\":[0-9.]*}" "$T/v.json" && grep -q "\"val_elbo\":-" "$T/v.json"'
"$T/vae" eval --data "$XT" --limit 500 --weights "$T/v.st" > "$T/eval.txt"
expect "eval reports recon, kl and the ELBO" 'grep -q "^loss [0-9.]*  recon [0-9.]*  kl [0-9.]*  elbo -" "$T/eval.txt"'

# sample: z ~ N(0, I) decoded, reproducible for a seed; refused without a prior.
"$T/vae" sample -n 12 --weights "$T/v.st" -o "$T/s1.npy" --png "$T/s.png" --quiet
"$T/vae" sample -n 12 --weights "$T/v.st" -o "$T/s2.npy" --quiet
"$T/vae" sample -n 12 --weights "$T/v.st" -o "$T/s3.npy" --seed 7 --quiet
expect "sample writes 12 images of 784 values" '[ "$(head -c 128 "$T/s1.npy" | grep -ao "(12, 784)")" = "(12, 784)" ]'
expect "sample writes a PNG" '[ "$(head -c 4 "$T/s.png" | tail -c 3)" = PNG ]'
expect "sample is reproducible, and --seed changes it" 'cmp -s "$T/s1.npy" "$T/s2.npy" && ! cmp -s "$T/s1.npy" "$T/s3.npy"'
"$T/sparse_l1" sample -n 4 --weights "$T/sparse_l1.st" -o "$T/x.npy" 2> "$T/err"; st=$?
expect "sample needs a variational model" '[ $st -eq 1 ] && grep -q "latent gaussian" "$T/err"'

# interpolate: the ends are the two samples' reconstructions.
"$T/vae" interpolate --data "$XT" --weights "$T/v.st" --from 3 --to 8 --steps 6 -o "$T/line.npy" --png "$T/line.png" --quiet
expect "interpolate writes 6 points" '[ "$(head -c 128 "$T/line.npy" | grep -ao "(6, 784)")" = "(6, 784)" ]'
"$T/vae" reconstruct --data "$XT" --limit 9 --weights "$T/v.st" -o "$T/rec.npy" --quiet
python3 - "$T" <<'EOF' && ok "interpolate starts and ends at the two reconstructions" || fail "interpolate starts and ends at the two reconstructions"
import struct, sys
def load(p):
    b = open(p, 'rb').read()
    n = struct.unpack('<H', b[8:10])[0]
    return struct.unpack('<%df' % ((len(b) - 10 - n) // 4), b[10 + n:])
t = sys.argv[1]
line, rec = load(t + '/line.npy'), load(t + '/rec.npy')
d = 784
assert max(abs(a - b) for a, b in zip(line[:d], rec[3 * d:4 * d])) < 1e-6
assert max(abs(a - b) for a, b in zip(line[5 * d:6 * d], rec[8 * d:9 * d])) < 1e-6
EOF

# Layer-wise pretraining: one report per stage and epoch, then fine-tuning.
"$T/stacked_pretrained" train --data "$X" --limit 1000 --epochs 1 --pretrain-epochs 2 --out "$T/p.st" --json > "$T/p.json" 2> "$T/p.err"
expect "pretraining reports 3 stages x 2 epochs" '[ "$(grep -c "^pretrain stage [1-3]/3  epoch [12]/2  loss" "$T/p.err")" = 6 ] && [ "$(grep -c "\"event\":\"pretrain\"" "$T/p.json")" = 6 ]'
"$T/stacked_pretrained" train --data "$X" --limit 1000 --epochs 2 --resume "$T/p.st" --quiet --json > "$T/p2.json"
expect "resuming does not pretrain again" '! grep -q pretrain "$T/p2.json"'

# A misuse is a located error.
printf 'model bad {\n  input 784\n  encoder { dense 32 relu }\n  decoder mirror\n  regularize { kl_sparsity 0.05 3 }\n}\n' > "$T/bad.ae"
"$AEC" check "$T/bad.ae" 2> "$T/err"; st=$?
expect "kl_sparsity on a relu code is a located error" '[ $st -eq 1 ] && grep -q "bad.ae:5:16: error: .kl_sparsity. needs code activations in (0, 1)" "$T/err"'

summary "regularizers"
