/* gemm_jit.h — JIT-compiles generated GEMM functions in this process, for
 * tests/test_gemm.c and bench/bench_gemm.c: one module of products for the
 * host (or a named CPU), optimized at O3 as aec optimizes a model. */
#ifndef AEC_GEMM_JIT_H
#define AEC_GEMM_JIT_H

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemm.h"

void cg_llvm_options(void); /* compiler/aec.h: LLVM's options as aec sets them */

typedef void (*gemm_fn)(const void *a, const void *b, void *c, int64_t batch, void *pack,
                        const void *exec, void *epilogue, void *epilogue_env);

typedef struct GemmJit {
    LLVMOrcThreadSafeContextRef tsc;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
    LLVMOrcLLJITRef jit;
    GemmTarget target;
} GemmJit;

static LLVMTargetMachineRef gemm_jit_machine(const char *cpu, const char *features) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) abort();
    char *host_cpu = LLVMGetHostCPUName(), *host_features = LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, triple, cpu ? cpu : host_cpu, cpu ? (features ? features : "") : host_features,
        LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    LLVMDisposeMessage(triple);
    return tm;
}

/* cpu NULL: the host, with its features. */
static void gemm_jit_begin(GemmJit *j, const char *cpu) {
    cg_llvm_options(); /* as aec compiles them */
    j->tm = gemm_jit_machine(cpu, NULL);
    j->target = gemm_target(NULL, cpu, NULL);
    j->tsc = LLVMOrcCreateNewThreadSafeContext();
    j->ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
    j->mod = LLVMModuleCreateWithNameInContext("gemm", j->ctx);
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMSetTarget(j->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(j->tm);
    LLVMSetModuleDataLayout(j->mod, layout);
    LLVMDisposeTargetData(layout);
    j->jit = NULL;
}

static void gemm_jit_add(GemmJit *j, const GemmSpec *s, const char *name) {
    LLVMValueRef f = gemm_emit(j->mod, s, j->target, name);
    LLVMSetLinkage(f, LLVMExternalLinkage);
}

/* Verifies, optimizes and compiles the module; 0 on success. */
static int gemm_jit_finish(GemmJit *j) {
    char *err = NULL;
    if (LLVMVerifyModule(j->mod, LLVMReturnStatusAction, &err)) {
        fprintf(stderr, "gemm module does not verify: %s\n", err);
        return 1;
    }
    LLVMDisposeMessage(err);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 0); /* as aec (compiler/emit.c) */
    if (LLVMRunPasses(j->mod, "default<O3>", j->tm, po)) return 1;
    LLVMDisposePassBuilderOptions(po);
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(j->tm));
    j->tm = NULL; /* owned by the JIT */
    if (LLVMOrcCreateLLJIT(&j->jit, builder)) return 1;
    LLVMOrcJITDylibRef dylib = LLVMOrcLLJITGetMainJITDylib(j->jit);
    LLVMOrcDefinitionGeneratorRef gen; /* libc's memcpy/memset, which LLVM may call */
    if (LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
            &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL))
        return 1;
    LLVMOrcJITDylibAddGenerator(dylib, gen);
    if (LLVMOrcLLJITAddLLVMIRModule(j->jit, dylib,
                                    LLVMOrcCreateNewThreadSafeModule(j->mod, j->tsc)))
        return 1;
    j->mod = NULL;
    return 0;
}

static gemm_fn gemm_jit_lookup(GemmJit *j, const char *name) {
    LLVMOrcExecutorAddress addr = 0;
    if (LLVMOrcLLJITLookup(j->jit, &addr, name)) return NULL;
    return (gemm_fn)(uintptr_t)addr;
}

static void gemm_jit_end(GemmJit *j) {
    if (j->jit) LLVMOrcDisposeLLJIT(j->jit);
    if (j->mod) LLVMDisposeModule(j->mod);
    if (j->tm) LLVMDisposeTargetMachine(j->tm);
    LLVMOrcDisposeThreadSafeContext(j->tsc);
}

#endif
