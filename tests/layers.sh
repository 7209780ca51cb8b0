#!/usr/bin/env bash
# layers.sh — the runtime's modules form no cycle and keep to their layers.
#
# Usage: tests/layers.sh [BUILD_DIR]   (`make layers`; part of `make check`)
#
# The modules share one internal header (runtime/rt.h, sectioned by file),
# so their #includes alone cannot show who uses whom. This reads it from
# the objects instead: a module uses another when one of its undefined
# symbols is defined there (nm). It prints each module's includes and the
# modules it uses, then fails if the use graph has a cycle (tsort), if a
# module uses one of its own or a higher layer, if a module below the
# command files includes cli.h, or if a module is missing from LAYERS.
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

layer_of() {
    local i p
    for i in "${!LAYERS[@]}"; do
        for p in ${LAYERS[$i]}; do
            # shellcheck disable=SC2053 # $p is a glob on purpose
            [[ $1 == $p ]] && { echo "$i"; return; }
        done
    done
    echo -1
}

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "layers: $*" >&2; fails=$((fails + 1)); }

objs=("$B"/runtime/*.o)
[ -e "${objs[0]}" ] || { echo "layers: no objects in $B/runtime (build first)" >&2; exit 1; }
for o in "${objs[@]}"; do
    nm --defined-only -g "$o" | awk -v m="$(basename "$o" .o)" 'NF == 3 {print $3, m}'
done | sort > "$T/defs"

cli_layer=$(layer_of "$CLI_FROM")
for o in "${objs[@]}"; do
    m=$(basename "$o" .o)
    uses=$(nm -u "$o" | awk '{print $2}' | sort -u | join - "$T/defs" | awk '{print $2}' |
           sort -u | grep -vx "$m" | tr '\n' ' ')
    includes=$(sed -n 's/^#include "\(.*\)".*/\1/p' "runtime/$m.c" | tr '\n' ' ')
    printf '%-16s includes %-22s uses %s\n' "$m" "$includes" "${uses:-(nothing)}"
    lm=$(layer_of "$m")
    if [ "$lm" -lt 0 ]; then fail "runtime/$m.c is in no layer: add it to LAYERS in $0"; continue; fi
    for u in $uses; do
        echo "$u $m" >> "$T/edges" # tsort: u comes before m
        lu=$(layer_of "$u")
        [ "$lu" -lt "$lm" ] || fail "$m (layer $lm) uses $u (layer $lu): only lower layers may be used"
    done
    if [ "$lm" -lt "$cli_layer" ] && [[ " $includes " == *" cli.h "* ]]; then
        fail "$m includes cli.h, which is for the command line's layers ($CLI_FROM and above)"
    fi
done
if [ -s "$T/edges" ] && ! tsort "$T/edges" > /dev/null 2> "$T/tsort"; then
    fail "the runtime's modules use each other in a cycle:"
    sed 's/^tsort: /  /' "$T/tsort" >&2
fi
[ "$fails" -eq 0 ] && echo "layers: ${#objs[@]} runtime modules, no cycle, every use goes down a layer"
[ "$fails" -eq 0 ]
