#!/usr/bin/env bash
# The application commands end to end, each checked against an independent
# computation in NumPy: score's AUC and average precision, search's
# neighbours against brute force, the .aez container read by its documented
# layout, denoise's PSNRs, compare-pca against NumPy's SVD, AutoRec against
# the per-item mean, and the PNGs plot draws.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
DATA=/usr/share/datasets/fashion-mnist
py() { "$PY" - "$T" "$@"; }

# 3000 training images of classes 0-4 (the normal ones), 1000 test images of all ten.
py "$DATA" <<'PYEOF'
import gzip, sys
import numpy as np
t, data = sys.argv[1], sys.argv[2]
def read(name, off):
    with gzip.open(f"{data}/{name}") as f:
        return np.frombuffer(f.read(), np.uint8, offset=off)
x = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
y = read("train-labels-idx1-ubyte.gz", 8)
xt = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:1000]
yt = read("t10k-labels-idx1-ubyte.gz", 8)[:1000]
np.save(f"{t}/normal.npy", (x[y < 5][:3000] / np.float32(255)).astype(np.float32))
np.save(f"{t}/train.npy", (x[:3000] / np.float32(255)).astype(np.float32))
np.save(f"{t}/train_labels.npy", y[:3000].astype(np.int64))
np.save(f"{t}/test.npy", (xt / np.float32(255)).astype(np.float32))
np.save(f"{t}/test_labels.npy", yt.astype(np.int64))
PYEOF

"$B"/aec build specs/fmnist_dense.ae -o "$T/fd" || { echo "not ok - build"; exit 1; }
"$T/fd" train --data "$T/normal.npy" --epochs 3 --out "$T/normal.safetensors" --quiet
"$T/fd" train --data "$T/train.npy" --epochs 3 --out "$T/all.safetensors" --quiet
expect "the models train" '[ -s "$T/normal.safetensors" ] && [ -s "$T/all.safetensors" ]'

# ---- score
"$T/fd" score --data "$T/test.npy" --weights "$T/normal.safetensors" --labels "$T/test_labels.npy" \
    --normal 0,1,2,3,4 --calibrate "$T/normal.npy" --quantile 0.95 -o "$T/scores.csv" --json > "$T/score.json"
"$T/fd" score --data "$T/normal.npy" --weights "$T/normal.safetensors" -o "$T/cal.npy" --quiet > /dev/null
"$T/fd" reconstruct --data "$T/test.npy" --weights "$T/normal.safetensors" -o "$T/rec.npy" --quiet
py > "$T/score.out" <<'PYEOF'
import json, sys
import numpy as np
t = sys.argv[1]
j = json.load(open(f"{t}/score.json"))
table = np.loadtxt(f"{t}/scores.csv", delimiter=",", skiprows=1)
s, flag = table[:, 0], table[:, 1]
x, rec = np.load(f"{t}/test.npy"), np.load(f"{t}/rec.npy")
anom = np.load(f"{t}/test_labels.npy") >= 5
# The AUC by the rank formula: mean ranks of tied scores (Mann-Whitney).
order = np.argsort(s, kind="stable")
ranks = np.empty(len(s))
ranks[order] = np.arange(1, len(s) + 1)
for v in np.unique(s):
    ranks[s == v] = ranks[s == v].mean()
P, N = anom.sum(), (~anom).sum()
auc = (ranks[anom].sum() - P * (P + 1) / 2) / (P * N)
# Average precision over distinct thresholds.
ap, prev = 0.0, 0.0
for v in np.sort(np.unique(s))[::-1]:
    sel = s >= v
    rec_v, prec_v = (sel & anom).sum() / P, (sel & anom).sum() / sel.sum()
    ap += (rec_v - prev) * prec_v
    prev = rec_v
cal = np.load(f"{t}/cal.npy")[:, 0]
thr = np.quantile(cal, 0.95)
mse = ((rec.astype(np.float64) - x) ** 2).mean(axis=1)
ok = [abs(j["auc"] - auc) < 1e-12, abs(j["ap"] - ap) < 1e-12,
      np.abs(mse - s).max() < 1e-5 * mse.max(),
      abs(j["threshold"] - thr) < 1e-6 * thr, j["flagged"] == int((s > j["threshold"]).sum()),
      (flag == (s > j["threshold"])).all()]
print(" ".join("1" if o else "0" for o in ok), f"{j['auc']:.4f} {auc:.4f} {j['ap']:.4f} {ap:.4f}")
PYEOF
read auc_ok ap_ok mse_ok thr_ok flag_ok col_ok auc_num < "$T/score.out"
echo "score: AUC/AP (ours, numpy): $(cut -d' ' -f7- "$T/score.out")"
expect "score: AUC equals NumPy's rank formula" '[ "$auc_ok" = 1 ]'
expect "score: average precision equals NumPy's" '[ "$ap_ok" = 1 ]'
expect "score: a score is the sample's own MSE (reconstruct)" '[ "$mse_ok" = 1 ]'
expect "score: --calibrate's threshold is the quantile of those scores" '[ "$thr_ok" = 1 ]'
expect "score: flagged = scores above the threshold" '[ "$flag_ok" = 1 ] && [ "$col_ok" = 1 ]'
expect "score: classes 5-9 score above 0-4 (AUC > 0.7)" \
    '"$PY" -c "import json,sys; sys.exit(not json.load(open(\"$T/score.json\"))[\"auc\"] > 0.7)"'
"$T/fd" score --data "$T/test.npy" --weights "$T/normal.safetensors" --labels "$T/test_labels.npy" 2>/dev/null
expect "score: --labels without --normal is a usage error" '[ $? -eq 2 ]'
# A variational model scores by its negative ELBO at mu, a regularized one by
# its reconstruction term: the mean score is eval's loss, resp. its recon term.
for spec in vae sparse_l1; do
    "$B"/aec build specs/$spec.ae -o "$T/$spec" &&
        "$T/$spec" train --data "$T/train.npy" --limit 600 --epochs 1 --out "$T/$spec.safetensors" --quiet
    "$T/$spec" score --data "$T/test.npy" --limit 300 --weights "$T/$spec.safetensors" --json > "$T/${spec}_score.json"
    "$T/$spec" eval --data "$T/test.npy" --limit 300 --weights "$T/$spec.safetensors" --json > "$T/${spec}_eval.json"
done
expect "score: a VAE's mean score is its loss (the negative ELBO at mu); a sparse one's its recon term" \
    'py <<<"
import json, sys
t = sys.argv[1]
l = lambda f: json.load(open(t + \"/\" + f))
v, ve, s, se = l(\"vae_score.json\"), l(\"vae_eval.json\"), l(\"sparse_l1_score.json\"), l(\"sparse_l1_eval.json\")
sys.exit(not (abs(v[\"mean\"] - ve[\"loss\"]) < 1e-5 * ve[\"loss\"] and abs(s[\"mean\"] - se[\"recon\"]) < 1e-5 * se[\"recon\"] and se[\"loss\"] > 1.01 * se[\"recon\"]))"'

# ---- search
"$T/fd" encode --data "$T/train.npy" --weights "$T/all.safetensors" -o "$T/zi.npy" --quiet
"$T/fd" encode --data "$T/test.npy" --weights "$T/all.safetensors" -o "$T/zq.npy" --quiet
"$T/fd" search --index "$T/train.npy" --query "$T/test.npy" --weights "$T/all.safetensors" -k 7 \
    --labels "$T/train_labels.npy" --query-labels "$T/test_labels.npy" -o "$T/nb.csv" \
    --png "$T/nb.png" --json > "$T/search.json"
"$T/fd" search --index-codes "$T/zi.npy" --query-codes "$T/zq.npy" -k 7 --metric cosine \
    -o "$T/nbc.csv" --quiet > /dev/null
py > "$T/search.out" <<'PYEOF'
import json, sys
import numpy as np
t = sys.argv[1]
zi, zq = np.load(f"{t}/zi.npy").astype(np.float64), np.load(f"{t}/zq.npy").astype(np.float64)
li, lq = np.load(f"{t}/train_labels.npy"), np.load(f"{t}/test_labels.npy")
def check(file, d):
    got = np.loadtxt(file, delimiter=",", skiprows=1)
    k = 7
    idx, dist = got[:, 2].astype(int).reshape(-1, k), got[:, 3].reshape(-1, k)
    bad = 0
    for q in range(len(zq)):
        order = np.lexsort((np.arange(len(zi)), d[q]))[:k]
        for r in range(k):
            if idx[q, r] != order[r] and abs(d[q, idx[q, r]] - d[q, order[r]]) > 1e-4 * (1 + d[q, order[r]]):
                bad += 1
        if np.abs(dist[q] - d[q, order]).max() > 1e-3 * (1 + d[q, order].max()):
            bad += 1
    return bad, idx
l2 = np.sqrt(((zq[:, None, :] - zi[None, :, :]) ** 2).sum(-1))
bad_l2, idx = check(f"{t}/nb.csv", l2)
n = lambda z: z / np.linalg.norm(z, axis=1, keepdims=True)
bad_cos, _ = check(f"{t}/nbc.csv", 1 - n(zq) @ n(zi).T)
prec = (li[idx] == lq[:, None]).mean()
j = json.load(open(f"{t}/search.json"))
print(bad_l2, bad_cos, int(abs(prec - j["precision_at_k"]) < 1e-12), f"{prec:.4f}")
PYEOF
read bad_l2 bad_cos prec_ok prec < "$T/search.out"
echo "search: precision@7 $prec (1000 test queries, 3000 training items)"
expect "search: l2 neighbours equal brute force ($bad_l2 differ)" '[ "$bad_l2" = 0 ]'
expect "search: cosine neighbours equal brute force ($bad_cos differ)" '[ "$bad_cos" = 0 ]'
expect "search: precision@k as NumPy counts it" '[ "$prec_ok" = 1 ]'
expect "search: precision@k well above chance (0.1)" '"$PY" -c "import sys; sys.exit(not $prec > 0.5)"'
expect "search: --png writes a PNG" '[ "$(head -c 4 "$T/nb.png" | od -An -tx1 | tr -d " ")" = 89504e47 ]'

# ---- compress / decompress
"$T/fd" compress --data "$T/test.npy" --weights "$T/all.safetensors" -o "$T/t.aez" --json > "$T/comp.json"
"$T/fd" compress --data "$T/test.npy" --weights "$T/all.safetensors" -o "$T/t4.aez" --bits 4 --quiet > /dev/null
"$T/fd" decompress "$T/t.aez" --weights "$T/all.safetensors" -o "$T/dec.npy" --png "$T/dec.png" --quiet
py > "$T/aez.out" <<'PYEOF'
import json, struct, sys, zlib
import numpy as np
t = sys.argv[1]
z = np.load(f"{t}/zq.npy").astype(np.float64)
def read(path):
    b = open(path, "rb").read()
    assert b[:8] == b"\x89AEZ\r\n\x1a\n"
    version, lhash, n, c, bits, L = struct.unpack_from("<IIQIIH", b, 8)
    name = b[34:34 + L].decode()
    r = np.frombuffer(b, "<f4", 2 * c, 34 + L).reshape(c, 2).astype(np.float64)
    body = np.frombuffer(b, np.uint8, len(b) - 4 - (34 + L + 8 * c), 34 + L + 8 * c)
    bitsarr = np.unpackbits(body, bitorder="little")[: n * c * bits].reshape(n * c, bits)
    q = (bitsarr * (1 << np.arange(bits))).sum(1).reshape(n, c)
    step = (r[:, 1] - r[:, 0]) / (2 ** bits - 1)
    crc_ok = zlib.crc32(b[:-4]) == struct.unpack("<I", b[-4:])[0]
    return name, n, c, bits, r[:, 0] + q * step, step, crc_ok
worst = []
for f in ("t.aez", "t4.aez"):
    name, n, c, bits, deq, step, crc_ok = read(f"{t}/{f}")
    err = np.abs(deq - z)
    worst.append(f"{(err / (step / 2 + 1e-7 * np.abs(z).max())).max():.3f}")
    ok = crc_ok and name == "fmnist_dense" and n == len(z) and c == z.shape[1]
    worst.append("1" if ok and (err <= step / 2 + 1e-6 * (1 + np.abs(z).max())).all() else "0")
    np.save(f"{t}/deq_{bits}.npy", deq.astype(np.float32))
j = json.load(open(f"{t}/comp.json"))
x, dec = np.load(f"{t}/test.npy").astype(np.float64), np.load(f"{t}/dec.npy")
psnr = 10 * np.log10(1 / ((dec - x) ** 2).mean())
print(*worst, int(abs(psnr - j["psnr"]) < 1e-3), int(j["bytes_in"] == x.size * 4), f"{j['ratio']:.1f} {psnr:.2f}")
PYEOF
read w8 ok8 w4 ok4 psnr_ok bytes_ok ratio psnr < "$T/aez.out"
echo "compress: ratio $ratio (float32 .npy in), PSNR $psnr dB; worst code error / half step: $w8 (8 bits), $w4 (4 bits)"
expect "compress: the file follows its documented layout and CRC, codes within half a step (8 bits)" '[ "$ok8" = 1 ]'
expect "compress: the same at 4 bits" '[ "$ok4" = 1 ]'
"$T/fd" decode --codes "$T/deq_8.npy" --weights "$T/all.safetensors" -o "$T/dec_ref.npy" --quiet
expect "decompress: equals decode of the dequantized codes" \
    'py <<<"import sys, numpy as np; t=sys.argv[1]; sys.exit(not np.abs(np.load(t+\"/dec.npy\")-np.load(t+\"/dec_ref.npy\")).max() < 1e-5)"'
expect "compress: PSNR and bytes in as reported" '[ "$psnr_ok" = 1 ] && [ "$bytes_ok" = 1 ]'
expect "decompress: --png writes a PNG" '[ "$(head -c 4 "$T/dec.png" | od -An -tx1 | tr -d " ")" = 89504e47 ]'
cp "$T/t.aez" "$T/flip.aez"
printf '\x01' | dd of="$T/flip.aez" bs=1 seek=300 conv=notrunc 2>/dev/null
"$T/fd" decompress "$T/flip.aez" --weights "$T/all.safetensors" -o "$T/x.npy" 2> "$T/err"; st=$?
expect "decompress: refuses a flipped byte (CRC-32)" '[ $st -eq 1 ] && grep -q "corrupt: CRC-32" "$T/err"'
head -c 999 "$T/t.aez" > "$T/cut.aez"
"$T/fd" decompress "$T/cut.aez" --weights "$T/all.safetensors" -o "$T/x.npy" 2> "$T/err"; st=$?
expect "decompress: refuses a truncated file" '[ $st -eq 1 ] && grep -q "truncated" "$T/err"'
"$B"/aec build specs/linear.ae -o "$T/lin"
"$T/lin" train --data "$T/test.npy" --epochs 1 --out "$T/lin.safetensors" --quiet
"$T/lin" decompress "$T/t.aez" --weights "$T/lin.safetensors" -o "$T/x.npy" 2> "$T/err"; st=$?
expect "decompress: refuses another model's file, naming both" \
    '[ $st -eq 1 ] && grep -q "model fmnist_dense" "$T/err" && grep -q "model linear" "$T/err"'

# ---- denoise
"$B"/aec build specs/denoising.ae -o "$T/dn" || { echo "not ok - build denoising"; exit 1; }
"$T/dn" train --data "$T/train.npy" --epochs 3 --out "$T/dn.safetensors" --quiet
for noise in gaussian=0.3 mask=0.5 saltpepper=0.2; do
    "$T/dn" denoise --data "$T/test.npy" --weights "$T/dn.safetensors" --noise $noise \
        -o "$T/den_${noise%%=*}.npy" --json > "$T/den_${noise%%=*}.json"
done
"$T/dn" denoise --data "$T/test.npy" --weights "$T/dn.safetensors" --noise gaussian=0.3 \
    -o "$T/den_again.npy" --png "$T/den.png" --quiet > /dev/null
"$T/dn" denoise --data "$T/test.npy" --weights "$T/dn.safetensors" --noise gaussian=0.3 --seed 99 \
    -o "$T/den_seed.npy" --quiet > /dev/null
py > "$T/den.out" <<'PYEOF'
import json, sys
import numpy as np
t = sys.argv[1]
x = np.load(f"{t}/test.npy").astype(np.float64)
ok, figures = [], []
for kind, expect_noisy in (("gaussian", -20 * np.log10(0.3)),
                           ("mask", 10 * np.log10(1 / (0.5 * (x ** 2).mean()))), ("saltpepper", None)):
    j = json.load(open(f"{t}/den_{kind}.json"))
    out = np.load(f"{t}/den_{kind}.npy")
    psnr = 10 * np.log10(1 / ((out - x) ** 2).mean())
    ok.append(abs(psnr - j["psnr_denoised"]) < 1e-3)
    if expect_noisy is not None:           # the noise has the strength asked for
        ok.append(abs(j["psnr_noisy"] - expect_noisy) < 0.1)
    figures.append(f"{kind} {j['psnr_noisy']:.2f}->{j['psnr_denoised']:.2f}")
g = json.load(open(f"{t}/den_gaussian.json"))
mk = json.load(open(f"{t}/den_mask.json"))
ok.append(g["psnr_denoised"] > g["psnr_noisy"] + 1 and mk["psnr_denoised"] > mk["psnr_noisy"] + 3)
ok.append((np.load(f"{t}/den_again.npy") == np.load(f"{t}/den_gaussian.npy")).all())
ok.append(not (np.load(f"{t}/den_seed.npy") == np.load(f"{t}/den_gaussian.npy")).all())
print(int(all(ok)), " ".join(str(int(o)) for o in ok), ", ".join(figures))
PYEOF
read den_ok den_detail < "$T/den.out"
echo "denoise: PSNR noisy->denoised (dB): $(cut -d' ' -f3- "$T/den.out")"
expect "denoise: PSNRs as NumPy measures them, noise of the asked strength, denoised by > 1 dB (gaussian) and > 3 dB (mask), reproducible per seed" '[ "$den_ok" = 1 ]'
expect "denoise: --png writes a PNG" '[ "$(head -c 4 "$T/den.png" | od -An -tx1 | tr -d " ")" = 89504e47 ]'

# ---- compare-pca
"$T/lin" train --data "$T/train.npy" --epochs 4 --out "$T/lin.safetensors" --quiet
"$T/lin" compare-pca --data "$T/train.npy" --test "$T/test.npy" --weights "$T/lin.safetensors" --json > "$T/pca.json"
"$T/fd" compare-pca --data "$T/train.npy" --weights "$T/all.safetensors" --json > "$T/pca_fd.json"
"$T/lin" eval --data "$T/train.npy" --weights "$T/lin.safetensors" --json > "$T/lin_eval.json"
py > "$T/pca.out" <<'PYEOF'
import json, struct, sys
import numpy as np
t = sys.argv[1]
j, fd, ev = (json.load(open(f"{t}/{f}")) for f in ("pca.json", "pca_fd.json", "lin_eval.json"))
x, xt = np.load(f"{t}/train.npy").astype(np.float64), np.load(f"{t}/test.npy").astype(np.float64)
k = j["k"]
mu = x.mean(0)
u, s, vt = np.linalg.svd(x - mu, full_matrices=False)
mse = (s[k:] ** 2).sum() / x.size
v = vt[:k]
test_mse = (((xt - mu) - (xt - mu) @ v.T @ v) ** 2).mean()
explained = (s[:k] ** 2).sum() / (s ** 2).sum()
b = open(f"{t}/lin.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
e = h["decoder.0.weight"]
w = np.frombuffer(b, "<f4", int(np.prod(e["shape"])), 8 + n + e["data_offsets"][0]).reshape(e["shape"])
qa, _ = np.linalg.qr(w.astype(np.float64))
cos = np.linalg.svd(qa.T @ v.T, compute_uv=False)
angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
rel = lambda a, b: abs(a - b) / abs(b)
ok = [rel(j["pca_mse"], mse) < 1e-4, rel(j["pca_test_mse"], test_mse) < 1e-4,
      rel(j["pca_explained_variance"], explained) < 1e-6,
      j["ae_mse"] >= j["pca_mse"] * (1 - 1e-6), rel(j["ae_mse"], ev["mse"]) < 1e-6,
      j["principal_angles_deg"] is not None and np.abs(np.array(j["principal_angles_deg"]) - angles).max() < 0.05,
      fd["principal_angles_deg"] is None]
print(int(all(ok)), "".join(str(int(o)) for o in ok), f"AE {j['ae_mse']:.5f} PCA {j['pca_mse']:.5f} (numpy {mse:.5f})")
PYEOF
read pca_ok pca_detail pca_fig < "$T/pca.out"
echo "compare-pca: $pca_fig; checks $pca_detail"
expect "compare-pca: PCA's MSE, test MSE and explained variance equal NumPy's SVD; the linear AE is no better; principal angles as NumPy's; none for a nonlinear decoder" '[ "$pca_ok" = 1 ]'

# ---- encode CSV
"$T/fd" encode --data "$T/test.npy" --weights "$T/all.safetensors" -o "$T/codes.csv" --quiet
expect "encode -o codes.csv: a header and the same codes as .npy" \
    'py <<<"import sys, numpy as np; t=sys.argv[1]; c=np.loadtxt(t+\"/codes.csv\", delimiter=\",\", skiprows=1); sys.exit(not (open(t+\"/codes.csv\").readline().startswith(\"z0,z1\") and (c.astype(np.float32) == np.load(t+\"/zq.npy\")).all()))"'

# ---- plot, train --plot
# each command's exit status too: under ASan a leak makes it nonzero
"$T/fd" train --data "$T/train.npy" --epochs 3 --out "$T/plot.safetensors" --plot "$T/live.png" \
    --json --quiet > "$T/log.jsonl"; st_train=$?
"$T/fd" plot "$T/log.jsonl" -o "$T/curves.png" --quiet; st_plot=$?
pngcheck() { py "$1" <<<"import sys, zlib, struct; b = open(sys.argv[2], 'rb').read(); ok = b[:8] == b'\x89PNG\r\n\x1a\n'; w, h = struct.unpack('>II', b[16:24]); sys.exit(not (ok and w >= 400 and h >= 300 and b'IEND' in b[-12:]))"; }
expect "plot: a PNG of the loss curves from train --json" '[ $st_plot -eq 0 ] && pngcheck "$T/curves.png"'
expect "train --plot: the PNG is there after training" '[ $st_train -eq 0 ] && pngcheck "$T/live.png"'
"$T/fd" scatter --data "$T/test.npy" --weights "$T/all.safetensors" --labels "$T/test_labels.npy" \
    -o "$T/latent.png" --quiet; st=$?
expect "scatter: a PNG of the codes in 2-D" '[ $st -eq 0 ] && pngcheck "$T/latent.png"'
echo '{"event":"done"}' > "$T/empty.jsonl"
"$T/fd" plot "$T/empty.jsonl" -o "$T/x.png" 2> "$T/err"; st=$?
expect "plot: a log without epochs is an error that says so" '[ $st -eq 1 ] && grep -q "no {\"event\":\"epoch\"}" "$T/err"'

# ---- AutoRec: synthetic rank-4 ratings, 1500 users x 200 items, 15 % observed
py <<'PYEOF'
import sys
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(3)
U, I, R = 1500, 200, 4
full = 3 + (rng.normal(size=(U, R)) @ rng.normal(size=(I, R)).T) / np.sqrt(R) * 0.9 \
    + rng.normal(scale=0.2, size=(U, I))
uu, ii = np.nonzero(rng.random((U, I)) < 0.15)
vals = full[uu, ii]
perm = rng.permutation(len(vals))
cut = int(0.9 * len(vals))
for name, idx in (("train", perm[:cut]), ("test", perm[cut:])):
    with open(f"{t}/{name}_ratings.csv", "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for k in idx:   # ids that are not 0..n-1, to exercise the mapping
            f.write(f"{uu[k] + 1},{ii[k] * 3 + 7},{vals[k]:.4f},0\n")
tr, te = perm[:cut], perm[cut:]
means = np.array([vals[tr][ii[tr] == i].mean() for i in range(I)])
print(np.sqrt(((means[ii[te]] - vals[te]) ** 2).mean()), file=open(f"{t}/item_mean", "w"))
PYEOF
sed 's/input 943/input 1500/; s/dense 500 sigmoid/dense 8/; s/dense 943/dense 1500/; s/l2 weights 1e-4/l2 weights 1e-6/; s/lr=1e-3; batch 32; epochs 100/lr=1e-2; batch 16; epochs 200/' \
    specs/autorec.ae > "$T/ar.ae"
"$B"/aec build "$T/ar.ae" -o "$T/ar" || { echo "not ok - build autorec"; exit 1; }
"$T/ar" train --ratings "$T/train_ratings.csv" --out "$T/ar.safetensors" --quiet
"$T/ar" eval --ratings "$T/test_ratings.csv" --known "$T/train_ratings.csv" --weights "$T/ar.safetensors" --json > "$T/ar.json"
read item_mean < "$T/item_mean"
echo "autorec: held-out $(cat "$T/ar.json"), per-item mean RMSE $item_mean"
expect "AutoRec (item-based) beats the per-item mean on held-out ratings by a third" \
    'py <<<"import json, sys; j = json.load(open(sys.argv[1] + \"/ar.json\")); sys.exit(not (j[\"ratings\"] > 4000 and j[\"skipped\"] == 0 and j[\"rmse\"] < 0.67 * $item_mean))"'
"$T/ar" recommend --ratings "$T/train_ratings.csv" --weights "$T/ar.safetensors" --user 1 --user 2 -k 5 \
    -o "$T/recs.csv" --quiet
expect "recommend: top-5 unrated items per user, best first" \
    'py <<<"
import sys, numpy as np
t = sys.argv[1]
r = np.loadtxt(t + \"/recs.csv\", delimiter=\",\", skiprows=1)
known = np.loadtxt(t + \"/train_ratings.csv\", delimiter=\",\", skiprows=1)
rated = {(int(u), int(i)) for u, i in known[:, :2]}
ok = r.shape == (10, 4) and all((int(u), int(i)) not in rated for u, _, i, _ in r)
ok = ok and all((np.diff(r[r[:, 0] == u, 3]) <= 0).all() for u in (1, 2))
sys.exit(not ok)"'
sed 's/input 943/input 200/; s/dense 500 sigmoid/dense 8/; s/dense 943/dense 200/; s/lr=1e-3; batch 32; epochs 100/lr=1e-2; batch 64; epochs 60/' \
    specs/autorec.ae > "$T/aru.ae"
"$B"/aec build "$T/aru.ae" -o "$T/aru"
"$T/aru" train --ratings "$T/train_ratings.csv" --by user --out "$T/aru.safetensors" --quiet
"$T/aru" eval --ratings "$T/test_ratings.csv" --known "$T/train_ratings.csv" --weights "$T/aru.safetensors" --json > "$T/aru.json"
echo "autorec --by user: $(cat "$T/aru.json")"
expect "AutoRec (user-based) beats the per-item mean too" \
    'py <<<"import json, sys; sys.exit(not json.load(open(sys.argv[1] + \"/aru.json\"))[\"rmse\"] < $item_mean)"'
"$T/ar" train --ratings "$T/train_ratings.csv" --by user --out "$T/x.safetensors" --quiet 2> "$T/err"; st=$?
expect "train --ratings: a spec of the wrong size is refused, naming the input it needs" \
    '[ $st -eq 1 ] && grep -q "needs .input 200." "$T/err"'
"$T/fd" train --ratings "$T/train_ratings.csv" --out "$T/x.safetensors" --quiet 2> "$T/err"; st=$?
expect "train --ratings: a model without 'masked' is refused" '[ $st -eq 1 ] && grep -q "masked" "$T/err"'

summary "apps"
