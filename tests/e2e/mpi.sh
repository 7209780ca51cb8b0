#!/usr/bin/env bash
# Data-parallel training on 2 MPI ranks over the loopback interface (issue
# 12): `aec build --mpi` trainers under `mpirun -n 2` follow single-process
# training step by step (corruption noise and dropout keyed by the global
# row, an odd split 128 + 127 of the batch, validation split over the
# ranks): to 1e-6 relative per step over 100 steps, where only the order
# of the sums differs, in f64 and in f32 (whose loss folds its column sums
# in double: in f32 they alone were off by 1.3e-6); two runs
# are bit-identical, a checkpoint resumes with another
# number of ranks, eval splits over the ranks, a rank given bad data or a
# non-finite loss ends both ranks with its message, never a hang, and a
# batch-norm model trains with per-rank batch statistics and averaged
# running statistics, ranks whose parameters differ stop (the per-epoch
# checksum), kl_sparsity's rho-hat is per rank, and AutoRec (a masked loss,
# weighted by present values) and layer-wise pretraining follow 1 process.
# mpirun is required, not optional: `make deps` installs openmpi-bin.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
DATA=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

command -v mpirun > /dev/null || { echo "not ok - mpirun not found (make deps installs openmpi-bin)"; exit 1; }
# What a container needs: TCP on loopback only (no shared-memory segment,
# no InfiniBand or other interfaces probed), no remote-shell launcher,
# more ranks than cores allowed, running as root allowed.
export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
export OMPI_MCA_plm_rsh_agent= OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mpi_yield_when_idle=1 # waiting ranks yield the shared cores
export OPENBLAS_NUM_THREADS=1
# Under `make asan-test`: Open MPI keeps its own allocations to the end of
# the process by design, which LeakSanitizer reports in every rank; the
# ranks are still checked for every memory error, only not for leaks.
[ -n "${AEC_SANITIZED:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpi() { timeout 60 mpirun --allow-run-as-root --oversubscribe "$@"; }

# No batch statistics; noise (corruption, dropout) that must follow the
# sample. 319 samples: 255 to train (one step of 128 + 127 rows an epoch),
# 64 held out for validation.
printf 'model dp {\n input 784\n encoder { dense 32 relu; dropout 0.1; dense 8 }\n decoder { dense 32 relu; dense 784 sigmoid }\n loss mse\n corrupt gaussian 0.1\n regularize { l2 weights 1e-4 }\n train { optimizer adam lr=3e-3; batch 255; epochs 100; seed 3; validation 0.2 }\n}\n' > "$T/dp.ae"
"$AEC" build "$T/dp.ae" -o "$T/one" || { echo "not ok - build"; exit 1; }
"$AEC" build "$T/dp.ae" --mpi -o "$T/dp" || { echo "not ok - build --mpi"; exit 1; }
"$AEC" build "$T/dp.ae" --dtype f64 -o "$T/one64" || { echo "not ok - build f64"; exit 1; }
"$AEC" build "$T/dp.ae" --dtype f64 --mpi -o "$T/dp64" || { echo "not ok - build f64 --mpi"; exit 1; }
X=(--data "$DATA" --limit 319)

# The loss per step (one step an epoch), single process against 2 ranks.
"$T/one" train "${X[@]}" --json --quiet --out "$T/one.st" > "$T/one.json"
mpi -n 2 "$T/dp" train "${X[@]}" --json --quiet --out "$T/two.st" > "$T/two.json"; st=$?
expect "mpirun -n 2 trains (exit 0)" '[ $st -eq 0 ]'
"$T/one64" train "${X[@]}" --json --quiet --out "$T/one64.st" > "$T/one64.json"
mpi -n 2 "$T/dp64" train "${X[@]}" --json --quiet --out "$T/two64.st" > "$T/two64.json"
# Prints the largest relative difference of train_loss and val_loss over
# the epochs of two --json logs; fails if it is above $3 or a log is short.
cat > "$T/cmp.py" << 'EOF'
import json, sys
def epochs(path):
    return [o for o in map(json.loads, open(path)) if o["event"] == "epoch"]
a, b = epochs(sys.argv[1]), epochs(sys.argv[2])
worst = 0.0
for x, y in zip(a, b):
    for k in ("train_loss", "val_loss"):
        if x[k] is None and y[k] is None: continue  # no validation
        worst = max(worst, abs(x[k] - y[k]) / abs(x[k]))
print("%d steps, largest relative difference %.3g" % (len(a), worst))
sys.exit(0 if len(a) == len(b) == int(sys.argv[4]) and worst <= float(sys.argv[3]) else 1)
EOF
expect "f64: 2 ranks follow 1 process to 1e-6 per step ($($PY "$T/cmp.py" "$T/one64.json" "$T/two64.json" 1e-6 100))" \
    '$PY "$T/cmp.py" "$T/one64.json" "$T/two64.json" 1e-6 100 > /dev/null'
expect "f32: 2 ranks follow 1 process to 1e-6 per step ($($PY "$T/cmp.py" "$T/one.json" "$T/two.json" 1e-6 100))" \
    '$PY "$T/cmp.py" "$T/one.json" "$T/two.json" 1e-6 100 > /dev/null'
expect "only rank 0 prints: one done line" '[ "$(grep -c "\"event\":\"done\"" "$T/two.json")" = 1 ]'
expect "the done line counts the allreduced bytes" 'grep -q "\"allreduce_bytes_per_step\":" "$T/two.json"'

mpi -n 2 "$T/dp" train "${X[@]}" --epochs 20 --quiet --out "$T/a.st"
mpi -n 2 "$T/dp" train "${X[@]}" --epochs 20 --quiet --out "$T/b.st"
expect "two runs on 2 ranks are bit-identical" 'cmp -s "$T/a.st" "$T/b.st"'

# Resume with another N, both ways: the checkpoint does not know N.
mpi -n 2 "$T/dp" train "${X[@]}" --epochs 10 --quiet --out "$T/r21.st"
"$T/one" train "${X[@]}" --epochs 20 --resume "$T/r21.st" --json --quiet > "$T/r21.json"
"$T/one" train "${X[@]}" --epochs 10 --quiet --out "$T/r12.st"
mpi -n 2 "$T/dp" train "${X[@]}" --epochs 20 --resume "$T/r12.st" --json --quiet > "$T/r12.json"
grep '"event":"epoch"' "$T/one.json" | sed -n 11,20p > "$T/one_11_20.json"
expect "2 ranks for 10 epochs, resumed on 1 process, follow 1 process to 1e-6 ($($PY "$T/cmp.py" "$T/one_11_20.json" "$T/r21.json" 1e-6 10))" \
    '$PY "$T/cmp.py" "$T/one_11_20.json" "$T/r21.json" 1e-6 10 > /dev/null'
expect "1 process for 10 epochs, resumed on 2 ranks, follow 1 process to 1e-6 ($($PY "$T/cmp.py" "$T/one_11_20.json" "$T/r12.json" 1e-6 10))" \
    '$PY "$T/cmp.py" "$T/one_11_20.json" "$T/r12.json" 1e-6 10 > /dev/null'

# eval splits the samples over the ranks and reduces.
"$T/one" eval --data "$DATA" --limit 999 --weights "$T/one.st" --json > "$T/e1.json"
mpi -n 2 "$T/dp" eval --data "$DATA" --limit 999 --weights "$T/one.st" --json > "$T/e2.json"
expect "eval on 2 ranks gives one line with the loss, MSE and PSNR of 1 process" \
    '$PY -c "
import json, sys
a, b = json.load(open(sys.argv[1])), [json.loads(l) for l in open(sys.argv[2])]
sys.exit(len(b) != 1 or b[0][\"samples\"] != 999 or
         any(abs(a[k] - b[0][k]) > 1e-6 * abs(a[k]) for k in (\"loss\", \"mse\", \"psnr\")))
" "$T/e1.json" "$T/e2.json"'
# A command that is not split runs once, on rank 0.
mpi -n 2 "$T/dp" encode --data "$DATA" --limit 10 --weights "$T/one.st" -o "$T/codes.npy" 2> "$T/err"
expect "encode under mpirun runs on rank 0 once" '[ -s "$T/codes.npy" ] && [ "$(grep -c wrote "$T/err")" = 1 ]'

# A rank given unreadable data: both ranks end, with its message, non-zero.
head -c 3000 "$DATA" > "$T/cut.gz"
start=$(date +%s)
mpi -n 1 "$T/dp" train "${X[@]}" --out "$T/bad.st" : -n 1 "$T/dp" train --data "$T/cut.gz" \
    --limit 319 --out "$T/bad.st" > /dev/null 2> "$T/err"; st=$?
expect "unreadable data on rank 1 ends both ranks non-zero, without a hang (exit $st)" \
    '[ $st -ne 0 ] && [ $st -ne 124 ] && [ $(( $(date +%s) - start )) -lt 30 ]'
expect "... with rank 1's message naming the file" 'grep -q "error: rank 1: .*cut.gz" "$T/err"'
expect "... and rank 0 saying rank 1 failed" 'grep -q "error: rank 0: rank 1 failed" "$T/err"'
expect "... and no checkpoint" '[ ! -e "$T/bad.st" ]'

# A non-finite loss on one rank (its data is huge) stops both at step 1.
$PY -c "
import sys
for i in range(319): print(','.join(['1e30'] * 784))" > "$T/huge.csv"
mpi -n 1 "$T/dp" train "${X[@]}" --out "$T/nf.st" : -n 1 "$T/dp" train --data "$T/huge.csv" \
    --limit 319 --out "$T/nf.st" > /dev/null 2> "$T/err"; st=$?
expect "a non-finite loss on rank 1 ends both ranks non-zero (exit $st)" '[ $st -ne 0 ] && [ $st -ne 124 ]'
expect "... with rank 1's message" 'grep -q "error: rank 1: epoch 1, batch 1 (step 1): loss is not finite" "$T/err"'

# Ranks given different numbers of samples would run different steps: refused.
mpi -n 1 "$T/dp" train "${X[@]}" --out "$T/d.st" : -n 1 "$T/dp" train --data "$DATA" \
    --limit 300 --out "$T/d.st" > /dev/null 2> "$T/err"; st=$?
expect "ranks with different data are refused, not hung (exit $st)" \
    '[ $st -ne 0 ] && [ $st -ne 124 ] && grep -q "ranks differ" "$T/err"'

# Batch norm on 2 ranks: each rank normalizes by its own rows; the running
# statistics each rank moves by its rows (running_stats, ABI 8) are averaged
# in the step's allreduce, so the ranks keep the same ones.
printf 'model bn {\n input 784\n encoder { dense 32; batchnorm; relu; dropout 0.1; dense 8; batchnorm momentum=0.2 }\n decoder { dense 32 relu; dense 784 sigmoid }\n loss mse\n train { optimizer adam lr=3e-3; batch 255; epochs 10; seed 3; validation 0.2 }\n}\n' > "$T/bn.ae"
"$AEC" build "$T/bn.ae" --mpi -o "$T/bn" && "$AEC" build "$T/bn.ae" -o "$T/bn1" || fail "build bn"
mpi -n 2 "$T/bn" train "${X[@]}" --json --quiet --out "$T/bn2.st" > "$T/bn2.json" 2> "$T/err"; st=$?
# The ranks compare a checksum of their parameters, running statistics
# included, and optimizer state after every epoch; a difference stops them.
expect "a batch-norm model trains on 2 ranks, their parameters and running statistics equal after each of 10 epochs (exit $st)" \
    '[ $st -eq 0 ] && [ "$(grep -c "\"event\":\"epoch\"" "$T/bn2.json")" = 10 ] && ! grep -q differ "$T/err"'
# The checksum can fail: a rank built with another learning rate (the same
# model otherwise, so the allreduce matches) computes another update, and
# both ranks stop after epoch 1, before the checkpoint.
sed 's/lr=3e-3/lr=1e-3/' "$T/bn.ae" > "$T/bnlr.ae"
"$AEC" build "$T/bnlr.ae" --mpi -o "$T/bnlr" || fail "build bnlr"
mpi -n 1 "$T/bn" train "${X[@]}" --epochs 3 --quiet --out "$T/lr.st" : -n 1 "$T/bnlr" train \
    "${X[@]}" --epochs 3 --quiet --out "$T/lr.st" 2> "$T/err"; st=$?
expect "ranks whose parameters differ after an epoch both stop, saying so (exit $st)" \
    '[ $st -ne 0 ] && [ $st -ne 124 ] && grep -q "the ranks differ in their parameters after epoch 1" "$T/err" && [ ! -e "$T/lr.st" ]'
# After one step from the same initial parameters the first batch norm's
# running mean (its input does not depend on the batch) is the whole
# batch's, as 1 process has it: the ranks' means were averaged, not one
# rank's kept; the variance is the ranks' variances' mean, not the whole's.
mpi -n 2 "$T/bn" train "${X[@]}" --epochs 1 --quiet --out "$T/bn2_1.st"
"$T/bn1" train "${X[@]}" --epochs 1 --quiet --out "$T/bn1_1.st"
cat > "$T/stats.py" << 'EOF2'
import json, struct, sys
import numpy as np
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                             dtype=np.float32 if v["dtype"] == "F32" else np.float64)
            for k, v in h.items() if k != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
name = "encoder.1"
mean = float(np.max(np.abs(a[name + ".running_mean"] - b[name + ".running_mean"]) /
                    np.maximum(np.abs(b[name + ".running_mean"]), 1e-3)))
var = float(np.max(np.abs(a[name + ".running_var"] - b[name + ".running_var"]) /
                   b[name + ".running_var"]))
print("running_mean to %.2g, running_var to %.2g" % (mean, var))
sys.exit(0 if mean <= float(sys.argv[3]) and var > mean else 1)
EOF2
expect "after 1 step on 2 ranks the running mean is 1 process's ($($PY "$T/stats.py" "$T/bn2_1.st" "$T/bn1_1.st" 1e-5))" \
    '$PY "$T/stats.py" "$T/bn2_1.st" "$T/bn1_1.st" 1e-5 > /dev/null'
# The 2-rank checkpoint resumes on 1 process, and evaluates and encodes.
"$T/bn1" train "${X[@]}" --epochs 15 --resume "$T/bn2.st" --json --quiet --out "$T/bn21.st" > "$T/bn21.json"; st=$?
expect "the 2-rank batch-norm checkpoint resumes on 1 process for 5 epochs, the loss going on from where it was" \
    '[ $st -eq 0 ] && $PY -c "
import json, sys
a = [o for o in map(json.loads, open(sys.argv[1])) if o[\"event\"] == \"epoch\"]
b = [o for o in map(json.loads, open(sys.argv[2])) if o[\"event\"] == \"epoch\"]
sys.exit(len(b) != 5 or b[0][\"epoch\"] != 11 or abs(b[0][\"train_loss\"] / a[-1][\"train_loss\"] - 1) > 0.1
         or b[-1][\"train_loss\"] >= a[0][\"train_loss\"])
" "$T/bn2.json" "$T/bn21.json"'
"$T/bn1" eval --data "$DATA" --limit 999 --weights "$T/bn2.st" --json > "$T/be1.json"
mpi -n 2 "$T/bn" eval --data "$DATA" --limit 999 --weights "$T/bn2.st" --json > "$T/be2.json"
expect "eval of it on 1 process and on 2 ranks agree (the running statistics are one set)" \
    '$PY -c "
import json, math, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
sys.exit(not math.isfinite(a[\"loss\"]) or abs(a[\"loss\"] - b[\"loss\"]) > 1e-6 * a[\"loss\"])
" "$T/be1.json" "$T/be2.json"'
"$T/bn1" encode --data "$DATA" --limit 10 --weights "$T/bn2.st" -o "$T/bc1.npy" 2> /dev/null
mpi -n 2 "$T/bn" encode --data "$DATA" --limit 10 --weights "$T/bn2.st" -o "$T/bc2.npy" 2> /dev/null
expect "encode of it gives finite codes, the same under mpirun" \
    '$PY -c "
import numpy as np, sys
c = np.load(sys.argv[1])
sys.exit(c.shape != (10, 8) or not np.isfinite(c).all())
" "$T/bc1.npy" && cmp -s "$T/bc1.npy" "$T/bc2.npy"'

# AutoRec (train --ratings) on 2 ranks: every rank builds the same ratings
# matrix and split; a masked loss is a mean over present values, so each
# rank's share is weighted by its present values, and the run follows 1
# process (weighted by rows it would not: the items' rating counts vary
# threefold). Rank 0 alone reports the held-out ratings.
$PY - "$T" << 'EOF2'
import sys
import numpy as np
rng = np.random.default_rng(5)
U, I = 120, 45
p = rng.uniform(0.05, 0.5, size=I)  # items rated by 5 % to 50 % of the users
with open(sys.argv[1] + "/ratings.csv", "w") as f:
    f.write("userId,movieId,rating,timestamp\n")
    for u in range(U):
        for i in range(I):
            if rng.random() < p[i]:
                f.write("%d,%d,%.1f,0\n" % (u + 1, i + 1, rng.integers(1, 11) / 2))
EOF2
printf 'model ar {\n input 120\n encoder { dense 8 sigmoid }\n decoder { dense 120 }\n loss mse masked\n regularize { l2 weights 1e-4 }\n train { optimizer adam lr=1e-2; batch 16; epochs 30; seed 1 }\n}\n' > "$T/ar.ae"
"$AEC" build "$T/ar.ae" -o "$T/ar1" && "$AEC" build "$T/ar.ae" --mpi -o "$T/ar" || fail "build autorec"
"$T/ar1" train --ratings "$T/ratings.csv" --split 0.1 --json --out "$T/ar1.st" > "$T/ar1.json" 2> "$T/ar1.err"
mpi -n 2 "$T/ar" train --ratings "$T/ratings.csv" --split 0.1 --json --out "$T/ar2.st" > "$T/ar2.json" 2> "$T/ar2.err"; st=$?
expect "AutoRec on 2 ranks follows 1 process to 1e-6 per step ($($PY "$T/cmp.py" "$T/ar1.json" "$T/ar2.json" 1e-6 30))" \
    '[ $st -eq 0 ] && $PY "$T/cmp.py" "$T/ar1.json" "$T/ar2.json" 1e-6 30 > /dev/null'
expect "... with no warning, and the held-out ratings measured once, as 1 process measures them" \
    '! grep -q warning "$T/ar2.err" && [ "$(grep -c "^held out" "$T/ar2.err")" = 1 ] &&
     [ "$(grep "^held out" "$T/ar2.err")" = "$(grep "^held out" "$T/ar1.err")" ]'

"$T/ar1" eval --ratings "$T/ratings.csv" --known "$T/ratings.csv" --weights "$T/ar2.st" --json > "$T/are1.json"
mpi -n 2 "$T/ar" eval --ratings "$T/ratings.csv" --known "$T/ratings.csv" --weights "$T/ar2.st" --json > "$T/are2.json"; st=$?
expect "eval --ratings under mpirun runs once, on rank 0, as 1 process does" \
    '[ $st -eq 0 ] && [ "$(wc -l < "$T/are2.json")" = 1 ] && cmp -s "$T/are1.json" "$T/are2.json"'

# kl_sparsity's rho-hat is per rank: from identical parameters, step 1's
# reconstruction term is 1 process's, its kl_sparsity term the ranks' mean
# KL, which is above the KL of their mean (Jensen: KL is convex in rho-hat).
printf 'model kls {\n input 784\n encoder { dense 32 relu; dense 16 sigmoid }\n decoder { dense 32 relu; dense 784 sigmoid }\n loss mse\n regularize { kl_sparsity 0.05 0.1 }\n train { optimizer adam lr=3e-3; batch 255; epochs 5; seed 3; validation 0.2 }\n}\n' > "$T/kls.ae"
"$AEC" build "$T/kls.ae" -o "$T/kls1" && "$AEC" build "$T/kls.ae" --mpi -o "$T/kls" || fail "build kls"
"$T/kls1" train "${X[@]}" --json --quiet --out "$T/kls1.st" > "$T/kls1.json"
mpi -n 2 "$T/kls" train "${X[@]}" --json --quiet --out "$T/kls2.st" > "$T/kls2.json"; st=$?
expect "kl_sparsity on 2 ranks: rho-hat per rank (step 1: recon as 1 process, kl_sparsity above it)" \
    '[ $st -eq 0 ] && $PY -c "
import json, sys
a, b = ([o for o in map(json.loads, open(p)) if o[\"event\"] == \"epoch\"] for p in sys.argv[1:])
r1, r2 = a[0][\"terms\"], b[0][\"terms\"]
sys.exit(len(b) != 5 or abs(r2[\"recon\"] / r1[\"recon\"] - 1) > 1e-6
         or not r2[\"kl_sparsity\"] > r1[\"kl_sparsity\"] * (1 + 1e-6))
" "$T/kls1.json" "$T/kls2.json"'

# Layer-wise pretraining runs whole on every rank (the same stages, the
# same bits), then fine-tuning splits the batches: the run follows 1 process.
printf 'model pre {\n input 784\n encoder { dense 64 relu; dense 16 relu }\n decoder mirror\n output sigmoid\n loss mse\n train { optimizer adam lr=3e-3; batch 255; epochs 20; seed 4; validation 0.2; pretrain layerwise 2 }\n}\n' > "$T/pre.ae"
"$AEC" build "$T/pre.ae" -o "$T/pre1" && "$AEC" build "$T/pre.ae" --mpi -o "$T/pre" || fail "build pre"
"$T/pre1" train "${X[@]}" --json --quiet --out "$T/pre1.st" > "$T/pre1.json"
mpi -n 2 "$T/pre" train "${X[@]}" --json --quiet --out "$T/pre2.st" > "$T/pre2.json"; st=$?
expect "pretraining then fine-tuning on 2 ranks follows 1 process to 1e-6 per step ($($PY "$T/cmp.py" "$T/pre1.json" "$T/pre2.json" 1e-6 20))" \
    '[ $st -eq 0 ] && $PY "$T/cmp.py" "$T/pre1.json" "$T/pre2.json" 1e-6 20 > /dev/null'

summary "mpi"
