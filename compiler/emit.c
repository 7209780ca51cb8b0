/* emit.c — a Program as one LLVM module, and that module's life.
 *
 * Takes a Program and the CodegenOptions; produces a Codegen owning an
 * LLVM module for the target (the host's CPU and features unless
 * --target/--cpu/--features say otherwise): every entry point's graph body
 * (kernels.c), the public functions and model table (abi.c), with
 * --embed-weights the parameters as constant data, with -g DWARF mapping
 * instructions to the spec lines in IrNode.loc. The module is verified (a
 * failure is an internal error); then printed, written as an object or
 * assembly, or JIT-compiled in process with ORC LLJIT, each after the
 * passes (target.c) — or, for a big module's object, compiled in units on
 * threads (units.c), which run the passes themselves.
 */
#include <dlfcn.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "config.h" /* generated: AEC_GEMM_DEFAULT */

/* -------------------------------------------------------------- debug info */

/* -g: a compile unit whose file is the spec (absolute, so gdb finds it from
 * anywhere); functions get subprograms in cg_function, and instructions the
 * line of the IR node they compute (IrNode.loc, from Layer.loc). */
static void debug_begin(Codegen *cg) {
    const char *path = cg->model->loc.file ? cg->model->loc.file : cg->model->name;
    char *full = realpath(path, NULL);
    const char *p = full ? full : path, *slash = strrchr(p, '/');
    const char *file = slash ? slash + 1 : p;
    const char *dir = !slash ? "." : slash == p ? "/" : p;
    size_t dirlen = !slash ? 1 : slash == p ? 1 : (size_t)(slash - p);
    cg->dib = LLVMCreateDIBuilder(cg->mod);
    cg->di_file = LLVMDIBuilderCreateFile(cg->dib, file, strlen(file), dir, dirlen);
    free(full);
    LLVMDIBuilderCreateCompileUnit(cg->dib, LLVMDWARFSourceLanguageC99, cg->di_file, "aec", 3,
                                   cg->opt.opt_level > 0, "", 0, 0, "", 0, LLVMDWARFEmissionFull, 0,
                                   0, 0, "", 0, "", 0);
    cg->di_fn_type =
        LLVMDIBuilderCreateSubroutineType(cg->dib, cg->di_file, NULL, 0, LLVMDIFlagZero);
    LLVMAddModuleFlag(cg->mod, LLVMModuleFlagBehaviorWarning, "Debug Info Version", 18,
                      LLVMValueAsMetadata(cg_i32(cg, LLVMDebugMetadataVersion())));
    LLVMAddModuleFlag(cg->mod, LLVMModuleFlagBehaviorWarning, "Dwarf Version", 13,
                      LLVMValueAsMetadata(cg_i32(cg, 4)));
}

/* ------------------------------------------------------------ the module */

Codegen *cg_program(const Program *prog, const CodegenOptions *opt) {
    const Model *m = prog->model;
    Codegen *cg = calloc(1, sizeof *cg);
    cg->prog = prog;
    cg->model = m;
    cg->opt = *opt;
    cg->arena = arena_new();
    cg->prefix = arena_strdup(cg->arena, m->symbol);
    char *triple;
    cg->tm = cg_target_machine(opt, &triple);
    if (!cg->tm) {
        cg_free(cg);
        return NULL;
    }
    cg->gemm_target = gemm_target(opt->triple, opt->cpu, opt->features);
    if (cg->opt.gemm == GEMM_DEFAULT) { /* AEC_GEMM=blas runs every suite on the reference */
        const char *env = getenv("AEC_GEMM");
        cg->opt.gemm = env && *env ? !strcmp(env, "blas") ? GEMM_BLAS : GEMM_AEC
                       : !strcmp(AEC_GEMM_DEFAULT, "blas") ? GEMM_BLAS
                                                           : GEMM_AEC;
    }
    cg->tsc = LLVMOrcCreateNewThreadSafeContext();
    cg->ctx = LLVMOrcThreadSafeContextGetContext(cg->tsc);
    cg->mod = LLVMModuleCreateWithNameInContext(m->name, cg->ctx);
    LLVMSetTarget(cg->mod, triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(cg->tm);
    LLVMSetModuleDataLayout(cg->mod, layout);
    LLVMDisposeTargetData(layout);
    LLVMDisposeMessage(triple);
    cg->b = LLVMCreateBuilderInContext(cg->ctx);
    cg->T = opt->f64 ? LLVMDoubleTypeInContext(cg->ctx) : LLVMFloatTypeInContext(cg->ctx);
    cg->T_ptr = LLVMPointerType(cg->T, 0);
    cg->i8_ptr = LLVMPointerType(LLVMInt8TypeInContext(cg->ctx), 0);
    cg->i32 = LLVMInt32TypeInContext(cg->ctx);
    cg->i64 = LLVMInt64TypeInContext(cg->ctx);
    cg->f64 = LLVMDoubleTypeInContext(cg->ctx);
    cg->void_t = LLVMVoidTypeInContext(cg->ctx);
    cg->trainable = m->trainable_count;
    cg->xhat_scratch = round16(shape_numel(m->input));
    cg->im2col = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(2 * m->nlayers + 1));
    if (opt->debug) debug_begin(cg);
    if (opt->embed) /* before the bodies: their batch-1 GEMMs test for it */
        cg->embedded = embed_global(cg, arena_printf(cg->arena, "%s_embedded_params", cg->prefix),
                                    opt->embed, (size_t)m->param_count, opt->f64 ? 8 : 4, true);

    /* One internal function per entry, in the Program's order, then the
     * public functions that call them. */
    Bodies bo = {arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)prog->nentries)};
    cg->ws_batch = prog->ws_batch; /* before the bodies: they find the later slots */
    cg->ws_const = prog->ws_const;
    cg->ws_slot = prog->ws_slot;
    for (int e = 0; e < prog->nentries; e++)
        bo.fn[e] = graph_body(cg, &prog->entries[e]);
    emit_abi(cg, &bo);
    cg->prog = NULL; /* the Program may go before the Codegen */

    if (cg->dib) { /* nothing is emitted after this */
        LLVMDIBuilderFinalize(cg->dib);
        LLVMDisposeDIBuilder(cg->dib);
        cg->dib = NULL;
    }
    char *err = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &err)) {
        LLVMDumpModule(cg->mod);
        internal_error("generated module does not verify: %s", err);
    }
    LLVMDisposeMessage(err);
    return cg; /* optimized when first printed, emitted or JIT-compiled */
}

/* The whole module through the passes, once (an object compiled in units
 * leaves cg->mod as it was: each unit runs the passes itself). */
static void optimize(Codegen *cg) {
    if (cg->optimized) return;
    cg->optimized = true;
    cg_optimize(cg->mod, cg->tm, cg->opt.opt_level, true);
}

void cg_dump_llvm(FILE *out, Codegen *cg) {
    optimize(cg);
    char *s = LLVMPrintModuleToString(cg->mod);
    fputs(s, out);
    LLVMDisposeMessage(s);
}

int cg_emit_file(Codegen *cg, const char *path, bool assembly) {
    if (!assembly && !cg->optimized) {
        int st = cg_emit_units(cg, path);
        if (st >= 0) return st;
    }
    optimize(cg);
    char *err = NULL;
    if (LLVMTargetMachineEmitToFile(cg->tm, cg->mod, (char *)path,
                                    assembly ? LLVMAssemblyFile : LLVMObjectFile, &err)) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, err);
        LLVMDisposeMessage(err);
        return 1;
    }
    return 0;
}

static bool jit_failed(LLVMErrorRef e, const char *what) {
    if (!e) return false;
    char *msg = LLVMGetErrorMessage(e);
    fprintf(stderr, "aec: error: JIT %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

/* Compile the module in process (ORC LLJIT) and return the address of
 * `symbol`; external symbols (cblas, libm) resolve in this process. */
void *cg_jit_lookup(Codegen *cg, const char *symbol) {
    if (!cg->jit) {
        if (!cg->mod) return NULL;
        optimize(cg);
        /* The host program may not link OpenBLAS itself: load it globally
         * so the process symbol search below finds cblas_?gemm. */
        if (!dlopen("libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL) &&
            !dlopen("libopenblas.so", RTLD_NOW | RTLD_GLOBAL) &&
            !dlopen("libblas.so.3", RTLD_NOW | RTLD_GLOBAL)) {
            fprintf(stderr, "aec: error: JIT: cannot load OpenBLAS: %s\n", dlerror());
            return NULL;
        }
        LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
        char *triple;
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
            builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(
                         cg_target_machine(&cg->opt, &triple)));
        LLVMDisposeMessage(triple);
        if (jit_failed(LLVMOrcCreateLLJIT(&cg->jit, builder), "setup")) return NULL;
        LLVMOrcDefinitionGeneratorRef gen;
        if (jit_failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                           &gen, LLVMOrcLLJITGetGlobalPrefix(cg->jit), NULL, NULL),
                       "symbols"))
            return NULL;
        LLVMOrcJITDylibRef dylib = LLVMOrcLLJITGetMainJITDylib(cg->jit);
        LLVMOrcJITDylibAddGenerator(dylib, gen);
        LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cg->mod, cg->tsc);
        cg->mod = NULL; /* owned by the JIT now */
        if (jit_failed(LLVMOrcLLJITAddLLVMIRModule(cg->jit, dylib, tsm), "add module")) return NULL;
    }
    LLVMOrcExecutorAddress addr;
    if (jit_failed(LLVMOrcLLJITLookup(cg->jit, &addr, symbol), "lookup")) return NULL;
    return (void *)(uintptr_t)addr;
}

void cg_free(Codegen *cg) {
    if (!cg) return;
    if (cg->b) LLVMDisposeBuilder(cg->b);
    if (cg->mod) LLVMDisposeModule(cg->mod);
    if (cg->jit) LLVMOrcDisposeLLJIT(cg->jit);
    if (cg->tsc) LLVMOrcDisposeThreadSafeContext(cg->tsc);
    if (cg->tm) LLVMDisposeTargetMachine(cg->tm);
    arena_free(cg->arena);
    free(cg);
}

const char *cg_prefix(const Codegen *cg) {
    return cg->prefix;
}
