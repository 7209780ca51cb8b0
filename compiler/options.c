/* options.c — the `aec` command line as data: its commands and options.
 *
 * main.c parses argv and prints usage from these two tables; the generator
 * (tools/aecgen.c) writes bash completion from them, and a test checks that
 * aec(1) (docs/aec.md) documents every option. So a command or an option of
 * `aec` is written down once, here. An option's `values` lists the words it
 * takes (for completion and the error that names them), NULL for a free
 * value, "FILE" for a file name; `commands` says which commands take it.
 */
#include "aec.h"

const CliCommand cli_commands[CLI_N_COMMANDS] = {
    [CLI_CHECK] = {"check", "SPEC [--dump=STAGE]",
                   "parse and check SPEC; print the layer table (shapes, parameters, FLOPs)"},
    [CLI_BUILD] = {"build", "SPEC -o PROG | SPEC --emit obj|asm|llvm -o FILE [options]",
                   "a standalone trainer PROG, or an object and its header (FILE.h)"},
    [CLI_RUN] = {"run", "SPEC -- ARGS", "the trainer, JIT-compiled: ARGS as for PROG"},
};

const CliOption cli_options[CLI_N_OPTIONS] = {
    [CLI_OPT_DUMP] = {"--dump", "STAGE", "tokens ast shapes ir grad kernels llvm", "check",
                      "print what one stage of the pipeline produced"},
    [CLI_OPT_OUT] = {"-o", "FILE", "FILE", "build", "the trainer, object, assembly or IR to write"},
    [CLI_OPT_EMIT] = {"--emit", "KIND", "obj asm llvm", "build",
                      "an object (and its header), assembly or LLVM IR instead of a trainer"},
    [CLI_OPT_EMBED_WEIGHTS] = {"--embed-weights", "W.safetensors", "FILE", "build",
                               "compile trained weights into the object as constant data"},
    [CLI_OPT_EMBED_HALF] = {"--embed-half", NULL, NULL, "build",
                            "with --embed-weights: batch-1 calls read the weights as f16 (half the "
                            "bytes; sums in the model's type)"},
    [CLI_OPT_TARGET] = {"--target", "TRIPLE", NULL, "build",
                        "cross-compile for this target (e.g. aarch64-linux-gnu)"},
    [CLI_OPT_CPU] = {"--cpu", "NAME", NULL, "build run", "the CPU to tune for (default: this one)"},
    [CLI_OPT_FEATURES] = {"--features", "LIST", NULL, "build run",
                          "CPU features, LLVM style (+avx2,-avx512f)"},
    [CLI_OPT_DTYPE] = {"--dtype", "TYPE", "f32 f64", "build run",
                       "the element type (f64 for gradient checks)"},
    [CLI_OPT_GEMM] = {"--gemm", "BACKEND", "aec blas", "build run",
                      "matrix products: generated kernels (default) or OpenBLAS's cblas"},
    [CLI_OPT_CONV] = {"--conv", "ALGORITHM", "winograd im2col", "build run",
                      "3x3 convolutions: Winograd F(2x2,3x3) where it applies (default) or im2col"},
    [CLI_OPT_OPT] = {"-O", "N", "0 1 2 3", "build run", "LLVM optimization level (default -O3)"},
    [CLI_OPT_DEBUG] = {"-g", NULL, NULL, "build run",
                       "debug info: code mapped to the spec's lines"},
    [CLI_OPT_MPI] = {"--mpi", NULL, NULL, "build",
                     "a trainer for `mpirun -n N PROG train ...`: data-parallel over N ranks"},
};
