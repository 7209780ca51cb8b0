/* target.c — the LLVM target a module is compiled for, and its passes.
 *
 * Takes the CodegenOptions (--target, --cpu, --features, -O); gives the
 * target machine (the host's CPU and features unless told otherwise), the
 * process's LLVM options, and the optimization pipeline every module and
 * every part of one (units.c) runs after merging identical functions:
 * at -O3 aec's own list of passes (below), at -O1 and -O2 LLVM's
 * `default<O1>` and `default<O2>`, without the unroller.
 */
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

/* LLVM's fatal errors (a target that cannot compile what it was asked)
 * end aec with a message, as its own errors do, not with an abort. */
static void llvm_fatal(const char *reason) {
    fprintf(stderr, "aec: error: LLVM: %s\n", reason);
    exit(1);
}

/* LLVM's options, once per process. A loop kernel reads and writes many
 * buffers of one workspace, which LLVM cannot tell apart: its vectorizer
 * then needs a runtime check per pair, and gives up past 8 (the default),
 * leaving the biggest fused loop of a training step (the output layer's
 * sigmoid, loss and their gradient: 10 % of W1's step) scalar. 64 checks
 * cost a few comparisons per row. No loop strength reduction: it was half
 * of the backend's time (fmnist_dense 1.23 -> 0.90 s to build, mnist_conv
 * 2.2 -> 1.6 s), for no measured speed (docs/internals.md). No second,
 * narrower vector loop for a vectorized loop's remainder: it was 10-20 %
 * of the optimizer's and backend's time (deep 1.06 -> 0.89 s), and our rows
 * are mostly whole vectors. */
void cg_llvm_options(void) {
    static bool done;
    if (done) return;
    done = true;
    const char *argv[] = {"aec", "-runtime-memory-check-threshold=64", "-disable-lsr",
                          "-enable-epilogue-vectorization=0"};
    LLVMParseCommandLineOptions(4, argv, NULL);
}

LLVMTargetMachineRef cg_target_machine(const CodegenOptions *opt, char **triple_out) {
    LLVMInstallFatalErrorHandler(llvm_fatal);
    cg_llvm_options();
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    char *triple =
        opt->triple ? LLVMNormalizeTargetTriple(opt->triple) : LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        fprintf(stderr, "aec: error: unknown target '%s': %s\n", triple, err);
        LLVMDisposeMessage(err);
        return NULL;
    }
    /* The host CPU name can be "generic" on new CPUs: pass its features too.
     * A named CPU or another target gets its own features (plus --features);
     * an empty CPU is the target's baseline (RISC-V refuses "generic"). */
    bool host = !opt->cpu && !opt->triple;
    char *cpu = opt->cpu ? strdup(opt->cpu) : host ? LLVMGetHostCPUName() : strdup("");
    char *features = opt->features ? strdup(opt->features)
                     : host        ? LLVMGetHostCPUFeatures()
                                   : strdup("");
    LLVMCodeGenOptLevel level = opt->opt_level >= 3   ? LLVMCodeGenLevelAggressive
                                : opt->opt_level == 0 ? LLVMCodeGenLevelNone
                                                      : LLVMCodeGenLevelDefault;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, level,
                                                      LLVMRelocPIC, LLVMCodeModelDefault);
    free(cpu);
    free(features);
    *triple_out = triple;
    return tm;
}

static void run_passes(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *pipeline) {
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    /* No unroller: the kernels that need unrolling are written unrolled
     * (the GEMM micro-kernels), and the vectorizer still interleaves the
     * loops. Unrolling the rest cost 60 % of a conv spec's compile time
     * (mnist_conv 8.8 s -> 2.5 s) and no measured speed. */
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
    LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        internal_error("LLVM passes failed: %s", msg);
    }
    LLVMDisposePassBuilderOptions(po);
}

/* Entry points often fuse a kernel the same way (eval and encode share
 * their encoder's loops; products of one tiling share a tile task): each
 * copy merged is one the optimizer and the backend no longer compile. */
void cg_merge_functions(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    run_passes(mod, tm, "mergefunc");
}

/* -O3: the passes aec's code needs, once each where LLVM's default<O3>
 * runs its function simplification several times over. Every function
 * aec generates is noinline and built from explicit loops: it needs its
 * allocas promoted, its arithmetic combined, invariant loads and address
 * arithmetic hoisted (before and after the vectorizer: the run-time
 * overlap checks of a row loop's inner loop are invariant in the row),
 * zero-fill loops as memset and the loop kernels vectorized (the
 * micro-kernels are vectors already); then what a function does not do
 * (unwind, write an argument) inferred, which spares its unwind tables.
 * Measured against default<O3> (docs/bench.md): the same bits and the
 * same step times (bench/ab.sh), every spec's build 0.6-0.7x the time. */
static const char aec_pipeline[] = "function(sroa,early-cse<memssa>,simplifycfg,instcombine,"
                                   "loop-mssa(loop-rotate,licm),loop(loop-idiom),gvn,"
                                   "loop-vectorize,instcombine,loop-mssa(licm),simplifycfg),"
                                   "cgscc(function-attrs)";

void cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level, bool merge) {
    if (opt_level <= 0) return;
    char llvm_default[24], pipeline[sizeof aec_pipeline + 16];
    snprintf(llvm_default, sizeof llvm_default, "default<O%d>", opt_level);
    snprintf(pipeline, sizeof pipeline, "%s%s", merge ? "mergefunc," : "",
             opt_level >= 3 ? aec_pipeline : llvm_default);
    run_passes(mod, tm, pipeline);
}
