#!/usr/bin/env bash
# compiler_layers.sh — the compiler's modules form no cycle and keep to their layers.
#
# Usage: tests/compiler_layers.sh [BUILD_DIR]
#
# The modules share the one internal header compiler/aec.h (sectioned by
# file; check.h, lower.h and cg.h are their groups' own), so #includes alone
# cannot show who uses whom. As tests/layers.sh does for the runtime, this
# reads it from the objects (tests/layers_lib.sh, which the two share): a
# module uses another when one of its undefined symbols is defined there
# (nm). It prints each module's includes and uses, then fails if the use
# graph has a cycle (tsort), if a module uses one of its own or a higher
# layer, if codegen uses check, lower or autodiff, or if a module is in no
# layer. docs/internals.md draws the same map.
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
    "winograd"            # Winograd's F(2x2, 3x3): where it applies, its sizes
    "plan"                # the memory plan and its verifier
    "pipeline"            # the pass list: the Program
    "cg"                  # codegen: builder verbs
    "cg_math"             # inline math, the RNG
    "winograd_kernels"    # 3x3 convolutions as Winograd's: transforms, products
    "nest"                # image kernels
    "kernels"             # graph bodies: loop and GEMM kernels
    "abi"                 # entry points, the model table
    "target"              # the target machine, LLVM's options, the passes
    "units"               # an object compiled in parts, on threads
    "emit header"         # the module, emission, JIT; m.h
    "options driver"      # the command line's options; the commands
    "main"                # aec
)
CODEGEN="gemm_kernels gemm winograd cg cg_math winograd_kernels nest kernels abi target units emit"
FRONT="shape form check_layer expand layout check report forward optim objective lower autodiff"

WHO="compiler layers" WHOSE="the compiler's" SRC=compiler ROW='%-12s includes %-30s uses %s\n'
. tests/layers_lib.sh
use_rule() {
    if [[ " $CODEGEN " == *" $1 "* && " $FRONT " == *" $2 "* ]]; then
        fail "codegen's $1 uses $2: codegen emits a Program and uses only ir, fuse, plan, util"
    fi
}
module_rule() {
    if [[ " $CODEGEN " == *" $1 "* ]] && [[ " $2 " == *" check.h "* || " $2 " == *" lower.h "* ]]; then
        fail "codegen's $1 includes the checker's or the lowering's header"
    fi
}
check_layers "$B/compiler" "$B/grammar"
[ "$fails" -eq 0 ] && echo "compiler layers: $nmodules modules, no cycle, every use goes down a layer"
[ "$fails" -eq 0 ]
