#!/usr/bin/env bash
# compiler_layers.sh — the compiler's modules form no cycle and keep to their layers.
#
# Usage: tests/compiler_layers.sh [BUILD_DIR]
#
# The modules share the one internal header compiler/aec.h (sectioned by
# file; check.h, lower.h and cg.h are their groups' own), so #includes alone
# cannot show who uses whom. As tests/layers.sh does for the runtime, this
# reads it from the objects: a module uses another when one of its undefined
# symbols is defined there (nm). It prints each module's includes and uses,
# then fails if the use graph has a cycle (tsort), if a module uses one of
# its own or a higher layer, if codegen uses check, lower or autodiff, or if
# a module is in no layer. docs/internals.md draws the same map.
set -u
B=${1:-build}
cd "$(dirname "$0")/.."

# Bottom first, in data-flow order; a module may use lower layers only.
LAYERS=(
    "util tables"         # arena, diagnostics; the activation/optimizer/... tables
    "limits"              # size arithmetic that saturates; the size limits
    "ast"                 # the syntax tree
    "grammar"             # flex scanner and bison parser (build/grammar)
    "shape"               # shape arithmetic
    "form"                # the generic statement grammar, "did you mean"
    "check_layer"         # one layer: statement, spelling, shapes
    "expand layout"       # mirror/tied and output ACT; names and the params block
    "check report"        # the model's statements, check_model; the printed table
    "ir"                  # the graph, its op table, the verifier
    "forward optim"       # the layers' ops; the optimizer update
    "objective"           # the loss, noise, regularizers, stages
    "lower autodiff"      # an entry point's graph; its backward pass
    "fuse"                # kernels
    "gemm_kernels"        # the generated GEMM's packing, micro-kernel, tile task, GEMV
    "gemm"                # the generated GEMM: targets, tiling, pack sizes, each product
    "plan"                # the memory plan and its verifier
    "pipeline"            # the pass list: the Program
    "cg"                  # codegen: builder verbs
    "cg_math"             # inline math, the RNG
    "nest"                # image kernels
    "kernels"             # graph bodies: loop and GEMM kernels
    "abi"                 # entry points, the model table
    "emit header"         # the module, emission, JIT; m.h
    "options driver"      # the command line's options; the commands
    "main"                # aec
)
CODEGEN="gemm_kernels gemm cg cg_math nest kernels abi emit"
FRONT="shape form check_layer expand layout check report forward optim objective lower autodiff"

layer_of() {
    local i p
    for i in "${!LAYERS[@]}"; do
        for p in ${LAYERS[$i]}; do [[ $1 == "$p" ]] && { echo "$i"; return; }; done
    done
    echo -1
}

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "compiler layers: $*" >&2; fails=$((fails + 1)); }

objs=("$B"/compiler/*.o)
[ -e "${objs[0]}" ] || { echo "compiler layers: no objects in $B/compiler (build first)" >&2; exit 1; }
name_of() { case $1 in */grammar/*) echo grammar ;; *) basename "$1" .o ;; esac; }
for o in "${objs[@]}" "$B"/grammar/*.o; do
    nm --defined-only -g "$o" | awk -v m="$(name_of "$o")" 'NF == 3 {print $3, m}'
done | sort > "$T/defs"

for o in "${objs[@]}"; do
    m=$(name_of "$o")
    uses=$(nm -u "$o" | awk '{print $2}' | sort -u | join - "$T/defs" | awk '{print $2}' |
           sort -u | grep -vx "$m" | tr '\n' ' ')
    includes=$(sed -n 's/^#include "\(.*\)".*/\1/p' "compiler/$m.c" | tr '\n' ' ')
    printf '%-12s includes %-30s uses %s\n' "$m" "$includes" "${uses:-(nothing)}"
    lm=$(layer_of "$m")
    if [ "$lm" -lt 0 ]; then fail "compiler/$m.c is in no layer: add it to LAYERS in $0"; continue; fi
    for u in $uses; do
        echo "$u $m" >> "$T/edges" # tsort: u comes before m
        lu=$(layer_of "$u")
        [ "$lu" -lt "$lm" ] || fail "$m (layer $lm) uses $u (layer $lu): only lower layers may be used"
        if [[ " $CODEGEN " == *" $m "* && " $FRONT " == *" $u "* ]]; then
            fail "codegen's $m uses $u: codegen emits a Program and uses only ir, fuse, plan, util"
        fi
    done
    if [[ " $CODEGEN " == *" $m "* ]] && [[ " $includes " == *" check.h "* || " $includes " == *" lower.h "* ]]; then
        fail "codegen's $m includes the checker's or the lowering's header"
    fi
done
if [ -s "$T/edges" ] && ! tsort "$T/edges" > /dev/null 2> "$T/tsort"; then
    fail "the compiler's modules use each other in a cycle:"
    sed 's/^tsort: /  /' "$T/tsort" >&2
fi
[ "$fails" -eq 0 ] && echo "compiler layers: ${#objs[@]} modules, no cycle, every use goes down a layer"
[ "$fails" -eq 0 ]
