/* units.c — one object file, compiled in parts on threads.
 *
 * Takes a Codegen's verified, unoptimized module; writes one object file
 * (or declines, and emit.c compiles the module whole). The optimizer and
 * the backend take a big model's build time (mnist_conv 1.4 s at -O3, all
 * but 40 ms of it), and they work one function at a time: every function
 * aec generates is noinline. So the functions are dealt, largest first,
 * into units of about equal size; each unit is the module with the other
 * units' functions left as declarations, in an LLVM context of its own (a
 * context belongs to one thread), and goes through the passes and the
 * backend on a thread of its own. The system linker joins the units'
 * objects (`cc -r`), and objcopy makes the symbols that crossed units local
 * again, so the object has the symbols, sections and code the whole module
 * would have, save what interprocedural passes (constant propagation,
 * attribute inference) did across units. Which function goes to which
 * unit depends on the module only, never on the CPU count, so a build is
 * reproducible.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"

/* A unit is worth a thread from about this many LLVM instructions before
 * optimization (fmnist_dense had 8,100, mnist_conv 19,000, linear 4,600
 * before the micro-kernels' k loops were unrolled, and linear now has two):
 * below, the second parse of the module and the link cost more than the
 * thread saves (vae, 7,900: 0.55 s whole, 0.35 s in two units). */
#define UNIT_INSTRUCTIONS 3000
#define MAX_UNITS 4

typedef struct Unit {
    int index;
    const char *bitcode; /* the prepared module, shared, read only */
    size_t bitcode_size;
    char *const *names; /* the defined functions ... */
    const int *owner;   /* ... and the unit each belongs to */
    int nfunctions;
    LLVMTargetMachineRef tm;
    int opt_level;
    char object[32]; /* its object file, /tmp/aec-unit-XXXXXX.o */
    bool ok;
} Unit;

static long instruction_count(LLVMValueRef f) {
    long n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i))
            n++;
    return n;
}

typedef struct Sized {
    long size;
    int index;
} Sized;

static int larger_first(const void *pa, const void *pb) {
    const Sized *a = pa, *b = pb;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    return a->index - b->index;
}

static bool is_defined(LLVMValueRef g) {
    return LLVMIsAFunction(g) ? LLVMCountBasicBlocks(g) > 0 : LLVMGetInitializer(g) != NULL;
}

static bool llvm_reserved(LLVMValueRef g) { /* llvm.used and the like */
    size_t len;
    return !strncmp(LLVMGetValueName2(g, &len), "llvm.", 5);
}

/* A definition other units may refer to: internal and private symbols
 * become hidden globals (made local again after the link), named after
 * the model so that two models' objects can be linked together meanwhile. */
static void share(LLVMValueRef g, const char *prefix, int serial) {
    LLVMLinkage l = LLVMGetLinkage(g);
    if (!is_defined(g) || llvm_reserved(g) || (l != LLVMInternalLinkage && l != LLVMPrivateLinkage))
        return;
    size_t len;
    const char *name = LLVMGetValueName2(g, &len);
    if (strncmp(name, prefix, strlen(prefix))) {
        char buf[512];
        int n = len ? snprintf(buf, sizeof buf, "%s.%s", prefix, name)
                    : snprintf(buf, sizeof buf, "%s.anon.%d", prefix, serial);
        LLVMSetValueName2(g, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
    }
    LLVMSetLinkage(g, LLVMExternalLinkage);
    LLVMSetVisibility(g, LLVMHiddenVisibility);
}

/* Function f of another unit: a declaration of the same name in its place. */
static void declare_only(LLVMModuleRef mod, LLVMValueRef f) {
    size_t len;
    char *name = strdup(LLVMGetValueName2(f, &len));
    LLVMSetValueName2(f, "", 0);
    LLVMValueRef decl = LLVMAddFunction(mod, name, LLVMGlobalGetValueType(f));
    LLVMSetLinkage(decl, LLVMExternalLinkage);
    LLVMSetVisibility(decl, LLVMGetVisibility(f));
    LLVMSetFunctionCallConv(decl, LLVMGetFunctionCallConv(f));
    LLVMReplaceAllUsesWith(f, decl);
    LLVMDeleteFunction(f);
    free(name);
}

static void *compile_unit(void *arg) {
    Unit *u = arg;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMMemoryBufferRef buf =
        LLVMCreateMemoryBufferWithMemoryRangeCopy(u->bitcode, u->bitcode_size, "unit");
    LLVMModuleRef mod;
    bool parsed = !LLVMParseBitcodeInContext2(ctx, buf, &mod);
    LLVMDisposeMemoryBuffer(buf);
    if (!parsed) internal_error("unit %d: the module's bitcode does not parse", u->index);
    for (int i = 0; i < u->nfunctions; i++)
        if (u->owner[i] != u->index) declare_only(mod, LLVMGetNamedFunction(mod, u->names[i]));
    if (u->index > 0) /* the data lives in unit 0 */
        for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = LLVMGetNextGlobal(g))
            if (LLVMGetInitializer(g) && !llvm_reserved(g)) LLVMSetInitializer(g, NULL);
    char *err = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &err))
        internal_error("unit %d does not verify: %s", u->index, err);
    LLVMDisposeMessage(err);
    cg_optimize(mod, u->tm, u->opt_level, false);
    LLVMMemoryBufferRef obj;
    if (!LLVMTargetMachineEmitToMemoryBuffer(u->tm, mod, LLVMObjectFile, &err, &obj)) {
        snprintf(u->object, sizeof u->object, "/tmp/aec-unit-XXXXXX.o");
        int fd = mkstemps(u->object, 2);
        size_t size = LLVMGetBufferSize(obj);
        u->ok = fd >= 0 && write(fd, LLVMGetBufferStart(obj), size) == (ssize_t)size;
        if (fd >= 0) close(fd);
        LLVMDisposeMemoryBuffer(obj);
    } else {
        fprintf(stderr, "aec: error: LLVM: %s\n", err);
        LLVMDisposeMessage(err);
    }
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    return NULL;
}

/* The host's architecture is the module's: the system linker can join it. */
static bool host_arch(LLVMModuleRef mod) {
    char *host = LLVMGetDefaultTargetTriple();
    const char *triple = LLVMGetTarget(mod);
    size_t n = strcspn(host, "-");
    bool same = !strncmp(host, triple, n) && (triple[n] == '-' || !triple[n]);
    LLVMDisposeMessage(host);
    return same;
}

/* How many units: AEC_UNITS caps it (1: compile whole, for comparisons). */
static int unit_count(long instructions) {
    long n = instructions / UNIT_INSTRUCTIONS;
    const char *env = getenv("AEC_UNITS");
    long cap = env && *env ? strtol(env, NULL, 10) : MAX_UNITS;
    if (cap > MAX_UNITS) cap = MAX_UNITS;
    return (int)(n < cap ? n : cap);
}

/* Join the units' objects into path: cc -r, then the crossing symbols made
 * local (objcopy; without it they stay hidden, which links the same). */
static bool link_units(Unit *units, int n, const char *path) {
    char *tmp = malloc(strlen(path) + 32);
    sprintf(tmp, "%s.tmp.%d", path, (int)getpid());
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[MAX_UNITS + 8];
    int a = 0;
    argv[a++] = (char *)cc;
    argv[a++] = "-r";
    argv[a++] = "-nostdlib";
    argv[a++] = "-o";
    argv[a++] = tmp;
    for (int u = 0; u < n; u++)
        argv[a++] = units[u].object;
    argv[a] = NULL;
    bool ok = run_command(argv) == 0;
    if (ok) {
        char *objcopy[] = {"objcopy", "--localize-hidden", tmp, NULL};
        run_command(objcopy);
        ok = rename(tmp, path) == 0;
    }
    if (!ok) unlink(tmp);
    free(tmp);
    return ok;
}

int cg_emit_units(Codegen *cg, const char *path) {
    if (cg->opt.opt_level <= 0 || !host_arch(cg->mod)) return -1;
    long total = 0;
    int nfunctions = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(cg->mod); f; f = LLVMGetNextFunction(f))
        if (is_defined(f)) total += instruction_count(f), nfunctions++;
    int n = unit_count(total);
    if (n < 2) return -1;

    /* The module prepared: identical functions merged (as cg_optimize would
     * have), every symbol another unit may use shared, then as bitcode. */
    LLVMModuleRef mod = LLVMCloneModule(cg->mod);
    cg_merge_functions(mod, cg->tm);
    int serial = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        share(f, cg->prefix, serial++);
    for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = LLVMGetNextGlobal(g))
        share(g, cg->prefix, serial++);

    /* Deal the functions, largest first (ties in module order), each to
     * the least loaded unit. */
    char **names = calloc((size_t)nfunctions, sizeof *names);
    Sized *order = calloc((size_t)nfunctions, sizeof *order);
    int *owner = calloc((size_t)nfunctions, sizeof *owner);
    nfunctions = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        if (is_defined(f)) {
            size_t len;
            names[nfunctions] = strdup(LLVMGetValueName2(f, &len));
            order[nfunctions] = (Sized){instruction_count(f), nfunctions};
            nfunctions++;
        }
    qsort(order, (size_t)nfunctions, sizeof *order, larger_first);
    long load[MAX_UNITS] = {0};
    for (int i = 0; i < nfunctions; i++) {
        int least = 0;
        for (int u = 1; u < n; u++)
            if (load[u] < load[least]) least = u;
        owner[order[i].index] = least;
        load[least] += order[i].size;
    }
    LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(mod);
    LLVMDisposeModule(mod);

    Unit units[MAX_UNITS] = {{0}};
    pthread_t threads[MAX_UNITS];
    bool started[MAX_UNITS] = {false};
    for (int u = 0; u < n; u++) {
        char *triple;
        units[u] = (Unit){.index = u,
                          .bitcode = LLVMGetBufferStart(bitcode),
                          .bitcode_size = LLVMGetBufferSize(bitcode),
                          .names = names,
                          .owner = owner,
                          .nfunctions = nfunctions,
                          .tm = cg_target_machine(&cg->opt, &triple), /* one per thread */
                          .opt_level = cg->opt.opt_level};
        LLVMDisposeMessage(triple);
        if (u > 0) started[u] = !pthread_create(&threads[u], NULL, compile_unit, &units[u]);
    }
    compile_unit(&units[0]);
    for (int u = 1; u < n; u++)
        if (started[u])
            pthread_join(threads[u], NULL);
        else
            compile_unit(&units[u]); /* no thread: in turn */
    bool ok = true;
    for (int u = 0; u < n; u++)
        ok = ok && units[u].ok;
    int status = ok && link_units(units, n, path) ? 0 : -1;
    for (int u = 0; u < n; u++) {
        if (units[u].object[0]) unlink(units[u].object);
        LLVMDisposeTargetMachine(units[u].tm);
    }
    for (int i = 0; i < nfunctions; i++)
        free(names[i]);
    free(names);
    free(order);
    free(owner);
    LLVMDisposeMemoryBuffer(bitcode);
    return status;
}
