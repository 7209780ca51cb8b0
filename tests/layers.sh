#!/usr/bin/env bash
# layers.sh — the runtime's modules form no cycle and keep to their layers.
#
# Usage: tests/layers.sh [BUILD_DIR]   (`make layers`; part of `make check`)
#
# The modules share one internal header (runtime/rt.h, sectioned by file),
# so their #includes alone cannot show who uses whom. This reads it from
# the objects instead (tests/layers_lib.sh, which compiler_layers.sh shares):
# a module uses another when one of its undefined symbols is defined there
# (nm). It prints each module's includes and the modules it uses, then fails
# if the use graph has a cycle (tsort), if a module uses one of its own or a
# higher layer, if a module below the command files includes cli.h, or if a
# module is missing from LAYERS.
set -u
B=${1:-build}
cd "$(dirname "$0")/.."

# Bottom first; a module may use the modules of lower layers only. A pattern
# may name several files (cmd_* is every command). Keep in step with the
# diagram in runtime/rt.h and docs/internals.md.
LAYERS=(
    "log suggest rng pool"     # messages, "did you mean", the counter-based generator, threads
    "file"                     # atomic file writes
    "model"                    # helpers over a model table: alloc, eval, ELBO
    "data ckpt image progress comm onnx" # data sets, checkpoints, PNG grids, progress lines, ranks, ONNX
    "aez knn pca rank plot ratings" # the applications' numeric modules, .aez files, charts,
                                    # ratings matrices (apps.h)
    "train"                    # the training loop
    "args"                     # the command line's option parsing and usage errors
    "infer apps"               # what the inference and the application commands share
    "autorec"                  # train --ratings, eval --ratings (before cmd_train, cmd_eval)
    "cmd_*"                    # one file per command
    "commands"                 # the command and option tables
    "cli"                      # aec_main
    "mpi"                      # aec_mpi_main: MPI around aec_main (libaecrt_mpi.a, --mpi)
)
CLI_FROM=args # the first layer that may include cli.h

WHO=layers WHOSE="the runtime's" SRC=runtime ROW='%-16s includes %-22s uses %s\n'
. tests/layers_lib.sh
use_rule() { :; }
cli_layer=$(layer_of "$CLI_FROM")
module_rule() {
    if [ "$(layer_of "$1")" -lt "$cli_layer" ] && [[ " $2 " == *" cli.h "* ]]; then
        fail "$1 includes cli.h, which is for the command line's layers ($CLI_FROM and above)"
    fi
}
check_layers "$B/runtime"
[ "$fails" -eq 0 ] && echo "layers: $nmodules runtime modules, no cycle, every use goes down a layer"
[ "$fails" -eq 0 ]
