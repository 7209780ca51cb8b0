#!/usr/bin/env bash
# Crash consistency of `PROG train`, measured: SIGKILL at random moments,
# each followed by --resume, must never lose or corrupt the checkpoint, and
# the last run's weights must be bit-identical to an uninterrupted run's.
#
# - KILLS (default 40) kills at random delays. AEC_TEST_COMMIT_DELAY_MS
#   (a test hook in the runtime's atomic files: a pause between writing the
#   temporary and renaming it over the checkpoint) widens the window of the
#   checkpoint write, so a share of the kills lands inside it; they are
#   counted (the temporary OUT.tmp.PID was on disk when the process died).
# - After every kill the checkpoint (if one was written yet) must load
#   (`PROG eval --weights`), and the next run must remove the dead
#   process's temporary (the trainer cleans stale OUT.tmp.PID files).
# - A checkpoint write that fails (RLIMIT_FSIZE, `ulimit -f`) exits 1 with a
#   clear error and leaves the previous checkpoint byte for byte.
# Prints "killtest: K kills (W during the checkpoint write), ..." for
# docs/reliability.md.
. "$(dirname "$0")/lib.sh"
KILLS=${KILLS:-40}
DATA=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export OPENBLAS_NUM_THREADS=1 # one thread: sums in one order, runs bit-identical

cat > "$T/k.ae" <<'SPEC'
model k {
    input 784
    encoder { dense 32 relu }
    decoder mirror
    loss mse
    train { optimizer adam lr=1e-3; batch 50; epochs 300 }
}
SPEC
"$AEC" build "$T/k.ae" -o "$T/k" || { echo "not ok - build"; exit 1; }
EPOCHS=300 # long enough that KILLS kills land before it ends, however fast it trains
# The first 400 training images as a small IDX file (its header still says
# 60000; --limit 400 reads only what is there): a run starts in milliseconds.
gzip -dc "$DATA" | head -c $((16 + 400 * 784)) > "$T/small.idx"
DATA="$T/small.idx"
# An array, not a function: `&` must start the trainer itself, whose PID is
# the one killed and the one in the temporary's name.
TRAIN=("$T/k" train --data "$DATA" --limit 400 --quiet --epochs $EPOCHS)
train() { "${TRAIN[@]}" "$@"; }

start=$(date +%s)
train --out "$T/ref.safetensors" || fail "the uninterrupted run"

CK="$T/ck.safetensors"
kills=0 in_write=0 loaded=0 bad_loads=0 resumed=0
export AEC_TEST_COMMIT_DELAY_MS=20
while [ $kills -lt "$KILLS" ]; do
    args=(--out "$CK")
    [ -f "$CK" ] && { args+=(--resume "$CK"); resumed=$((resumed + 1)); }
    "${TRAIN[@]}" "${args[@]}" 2>>"$T/runs.err" &
    pid=$!
    sleep "0.$(printf '%03d' $((RANDOM % 250)))"
    if ! kill -0 $pid 2>/dev/null; then wait $pid; break; fi # it finished first
    kill -KILL $pid
    wait $pid 2>/dev/null
    kills=$((kills + 1))
    [ -e "$CK.tmp.$pid" ] && in_write=$((in_write + 1))
    if [ -f "$CK" ]; then
        if AEC_TEST_COMMIT_DELAY_MS= "$T/k" eval --data "$DATA" --limit 10 --weights "$CK" \
            >/dev/null 2>"$T/eval.err"; then
            loaded=$((loaded + 1))
        else
            bad_loads=$((bad_loads + 1)); cat "$T/eval.err"
        fi
    fi
done
unset AEC_TEST_COMMIT_DELAY_MS
# The last run: no kill. It also removes the dead processes' temporaries.
args=(--out "$CK"); [ -f "$CK" ] && args+=(--resume "$CK")
train "${args[@]}" 2>>"$T/runs.err" || fail "the final resumed run"
left=$(ls "$T" | grep -c '\.tmp\.' || true)
removed=$(grep -c "removed ck.safetensors.tmp.[0-9]*, left by a process that died" "$T/runs.err")
expect "$kills kills at random moments (at least 30)" '[ $kills -ge 30 ]'
expect "$in_write of them during the checkpoint write (at least 5)" '[ $in_write -ge 5 ]'
expect "the checkpoint loaded after every kill ($loaded loads, $bad_loads failures)" \
    '[ $bad_loads -eq 0 ] && [ $loaded -gt 0 ]'
expect "the resumed weights are bit-identical to the uninterrupted run's" \
    'cmp -s "$T/ref.safetensors" "$CK"'
expect "the trainer removed the dead processes' temporaries ($removed), none is left ($left)" \
    '[ "$removed" -ge 1 ] && [ "$left" -eq 0 ]'

# A failing write: the file-size limit is below the checkpoint's size.
cp "$CK" "$T/before.safetensors"
size_kb=$(( $(stat -c %s "$CK") / 1024 ))
( ulimit -f $((size_kb / 2)); train --epochs $((EPOCHS + 1)) --resume "$CK" --out "$CK" ) \
    2>"$T/err"; st=$?
expect "a write beyond RLIMIT_FSIZE exits 1" '[ $st -eq 1 ]'
expect "...saying the write failed and why" 'grep -q "writing failed: File too large" "$T/err"'
expect "...and the previous checkpoint is intact" 'cmp -s "$T/before.safetensors" "$CK"'
expect "...with no temporary left" '[ $(ls "$T" | grep -c "\.tmp\.") -eq 0 ]'

echo "killtest: $kills kills ($in_write during the checkpoint write), $loaded loads, $resumed resumes, $(( $(date +%s) - start )) s"
summary "killtest"
