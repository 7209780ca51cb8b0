#!/bin/sh
# mpi.sh — `make bench`, data-parallel part: the W1 model (specs/fmnist_dense.ae)
# trained on 1 process and on 1 and 2 MPI ranks on this machine.
#
# Builds the trainer twice (plain and `--mpi`), trains each configuration
# for EPOCHS epochs of LIMIT Fashion-MNIST samples (batch 256, the spec's)
# and prints, from the trainer's --json lines, the training samples/s of the
# last epoch, the bytes each step allreduces (the gradient block, the loss
# terms and the failure flags), the time spent in MPI_Allreduce and its
# share of the run. Every rank runs one thread (--threads 1, and one
# OpenBLAS thread); the 1-process rows run 1 and 2. See docs/bench.md.
#
# Usage: bench/mpi.sh [BUILD]   (LIMIT defaults to 15360, EPOCHS to 2; MCA
#        settings for loopback TCP are set unless OMPI_MCA_btl is)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
LIMIT=${LIMIT:-15360}
EPOCHS=${EPOCHS:-2}
DATA=${DATA:-/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

command -v mpirun > /dev/null || { echo "bench/mpi.sh: mpirun not found (make deps installs openmpi-bin)" >&2; exit 1; }
[ -r "$DATA" ] || { echo "bench/mpi.sh: $DATA not found" >&2; exit 1; }
if [ -z "${OMPI_MCA_btl:-}" ]; then
    export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
fi
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$B/aec" build "$ROOT/specs/fmnist_dense.ae" -o "$TMP/one"
"$B/aec" build "$ROOT/specs/fmnist_dense.ae" --mpi -o "$TMP/dp"
ARGS="train --data $DATA --limit $LIMIT --epochs $EPOCHS --json --quiet --out $TMP/w.safetensors"

run() { # name, threads per process, command...
    name=$1 threads=$2
    shift 2
    OPENBLAS_NUM_THREADS=$threads "$@" $ARGS --threads "$threads" > "$TMP/$name.json"
}
run one_t1 1 "$TMP/one"
run one_t2 2 "$TMP/one"
run mpi_n1 1 mpirun --allow-run-as-root -x OPENBLAS_NUM_THREADS -n 1 "$TMP/dp"
run mpi_n2 1 mpirun --allow-run-as-root -x OPENBLAS_NUM_THREADS -n 2 "$TMP/dp"

echo "data-parallel training, specs/fmnist_dense.ae, batch 256, $LIMIT samples x $EPOCHS epochs"
echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs, $(mpirun --version | head -n 1)"
"$PY" - "$TMP" << 'EOF'
import json, sys
rows = [("one_t1", "1 process, 1 thread"), ("one_t2", "1 process, 2 threads"),
        ("mpi_n1", "mpirun -n 1, 1 thread"), ("mpi_n2", "mpirun -n 2, 1 thread each")]
print("%-28s %10s %12s %14s %12s" % ("", "samples/s", "bytes/step", "allreduce ms", "of the run"))
for key, label in rows:
    lines = [json.loads(l) for l in open("%s/%s.json" % (sys.argv[1], key))]
    epoch = [o for o in lines if o["event"] == "epoch"][-1]
    done = lines[-1]
    if "ranks" in done:
        per_step = 1e3 * done["allreduce_seconds"] / done["step"]
        cells = ("%d" % done["allreduce_bytes_per_step"], "%.2f /step" % per_step,
                 "%.1f%%" % (100 * done["allreduce_seconds"] / done["seconds"]))
    else:
        cells = ("-", "-", "-")
    print("%-28s %10.0f %12s %14s %12s" % ((label, epoch["samples_per_s"]) + cells))
EOF
