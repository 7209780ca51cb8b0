/* driver.c — the pipeline, stage by stage, for the command line.
 *
 *   parse → check → compile_model (pipeline.c: lower → autodiff → verify →
 *   fuse → plan → verify the plan) → codegen → emit
 *
 * Takes a spec path and what to produce — a trainer (linked with the
 * runtime), an object and its documented header, assembly or LLVM IR,
 * optionally with weights embedded (checked with the runtime's safetensors
 * reader), or, for `aec run`, the trainer JIT-compiled and run in process —
 * and returns an exit status (0 ok, 1 for errors in the user's input, which
 * were reported). The front end reports its own located errors; this file
 * only reports files it cannot read or write, and a failing link.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aec.h"
#include "config.h" /* generated: AEC_RT_LIBS, AEC_BUILD_LIB_DIR, AEC_BUILD_INCLUDE_DIR */
#include "../runtime/rt.h" /* aec_ckpt_load, aec_main: the runtime is linked in */

Model *driver_load(Arena *a, const char *spec_path, bool allow_unsupported) {
    size_t len;
    char *text = read_file_text(spec_path, &len);
    if (!text) {
        fprintf(stderr, "aec: error: cannot read %s: %s\n", spec_path, strerror(errno));
        return NULL;
    }
    char *kept = arena_strdup(a, text); /* diagnostics show lines from it later */
    free(text);
    AstModel *ast = parse_spec(a, spec_path, kept);
    if (!ast || diag_error_count()) return NULL;
    return check_model_ex(a, ast, allow_unsupported);
}

/* --dump=ir|grad|kernels: what the pipeline made of one entry point. */
static void dump_entry(FILE *out, const Program *p, GraphKind kind, const char *what) {
    const Entry *e = program_entry(p, kind, 0);
    if (!strcmp(what, "ir") || !strcmp(what, "grad")) {
        ir_dump(out, e->graph);
        return;
    }
    fuse_dump(out, e->fusion);
    plan_dump(out, e->plan);
}

int driver_check(const char *spec, const char *dump, bool allow_unsupported) {
    Arena *a = arena_new();
    int status = 0;
    if (dump && !strcmp(dump, "tokens")) {
        size_t len;
        char *text = read_file_text(spec, &len);
        if (!text) {
            fprintf(stderr, "aec: error: cannot read %s: %s\n", spec, strerror(errno));
            arena_free(a);
            return 1;
        }
        lex_dump_tokens(stdout, spec, text);
        free(text);
        arena_free(a);
        return 0;
    }
    if (dump && !strcmp(dump, "ast")) {
        size_t len;
        char *text = read_file_text(spec, &len);
        AstModel *ast = text ? parse_spec(a, spec, arena_strdup(a, text)) : NULL;
        free(text);
        if (ast) ast_dump(stdout, ast);
        arena_free(a);
        return ast ? 0 : 1;
    }
    Model *m = driver_load(a, spec, allow_unsupported);
    if (!m) status = 1;
    else if (!dump) check_print_table(stdout, m);
    else if (!strcmp(dump, "shapes")) check_dump_shapes(stdout, m);
    else if (!strcmp(dump, "ir")) {
        Program *p = compile_model(a, m);
        dump_entry(stdout, p, GRAPH_EVAL, "ir");
        dump_entry(stdout, p, GRAPH_OPTIM, "ir");
    } else if (!strcmp(dump, "grad")) dump_entry(stdout, compile_model(a, m), GRAPH_TRAIN, "grad");
    else if (!strcmp(dump, "kernels")) {
        Program *p = compile_model(a, m);
        const GraphKind kinds[] = {GRAPH_TRAIN, GRAPH_OPTIM, GRAPH_EVAL, GRAPH_ENCODE, GRAPH_DECODE};
        for (int k = 0; k < countof(kinds); k++) dump_entry(stdout, p, kinds[k], "kernels");
    } else if (!strcmp(dump, "llvm")) {
        CodegenOptions opt = {.opt_level = 3};
        Codegen *cg = cg_program(compile_model(a, m), &opt);
        if (cg) cg_dump_llvm(stdout, cg);
        else status = 1;
        cg_free(cg);
    } else {
        fprintf(stderr, "aec: error: unknown dump '%s' (tokens, ast, shapes, ir, grad, kernels, llvm)\n", dump);
        status = 2;
    }
    arena_free(a);
    return status;
}

/* Run a command (argv[0] looked up in PATH); 0 when it exits 0. */
static int run(char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The C header of DESIGN §4 beside an emitted object: FILE.o gets FILE.h.
 * The person embedding the model reads it, so it says all that calling the
 * model takes: sizes, buffer layouts, the parameter tensors, workspaces and
 * threads, errors, how to compile and link, an example. In the templates
 * below $p is the symbol prefix, $P the same upper-cased, $T the element
 * type and $O the object's file name. */
static void put_template(FILE *f, const char *text, const char *const sub[5]) {
    static const char keys[] = "pPTOI";
    for (const char *c = text; *c; c++) {
        const char *k = *c == '$' && c[1] ? strchr(keys, c[1]) : NULL;
        if (k) {
            fputs(sub[k - keys], f);
            c++;
        } else fputc(*c, f);
    }
}

static const char header_intro[] =
    " *\n"
    " * An autoencoder: $p_encode maps inputs to their codes, $p_decode codes back\n"
    " * to inputs, $p_eval reconstructs inputs and scores them, $p_train_step\n"
    " * trains. Build: the object needs only libc, libm and a CBLAS (OpenBLAS):\n"
    " *     cc app.c $O $(pkg-config --cflags --libs aec)\n"
    " * with aec installed (`make install`), or from aec's source tree\n"
    " *     cc -I$I app.c $O " AEC_MODEL_LIBS "\n"
    " * (aec.h is aec's small public runtime header; it defines aec_model, the\n"
    " * AEC_E* codes and aec_strerror.)\n"
    " *\n"
    " * Buffers: x is [batch][$P_INPUT_SIZE] and code [batch][$P_CODE_SIZE] $T,\n"
    " * row-major, one sample after another (an image is CxHxW, channel-major).\n"
    " * params is the whole parameter block, $P_PARAM_COUNT values: the tensors\n"
    " * listed below at their offsets, with PyTorch nn.Sequential names and\n"
    " * layouts (a dense weight is [out, in]), as aec's safetensors checkpoints\n"
    " * store them. Align params and opt_state to AEC_ALIGN bytes for speed.\n"
    " *\n"
    " * Workspace: every call takes ws, $p_workspace_size(batch) bytes at any\n"
    " * alignment; one sized for a batch of N serves every batch up to N. Its\n"
    " * contents need not survive between calls.\n"
    " *\n"
    " * Threads: the model writes no globals, allocates nothing and starts no\n"
    " * threads; the caller owns every buffer. Calls with different workspaces\n"
    " * may run at the same time (one workspace per thread, params shared\n"
    " * read-only). BLAS may run its own threads (OPENBLAS_NUM_THREADS=1: none;\n"
    " * OpenBLAS's threaded GEMM also mallocs a job table per call).\n"
    " *\n"
    " * Errors: each function returns AEC_OK (0) or an AEC_E* code and never\n"
    " * aborts: AEC_EBATCH for a batch below 1 or above $P_MAX_BATCH, AEC_ENULL\n"
    " * for a missing buffer, AEC_ENONFINITE when training meets a non-finite loss\n"
    " * (the parameters are then left as they were). aec_strerror names a code.\n"
    " *\n"
    " * Results are deterministic: the same weights, inputs and batch size give\n"
    " * the same bits on every call, in every thread, and the same bits as the\n"
    " * trainer's encode/decode/reconstruct (batches of 256) with as many BLAS\n"
    " * threads. Another batch size or BLAS thread count may change the last\n"
    " * bits, as BLAS then splits the products differently.\n";

static const char header_decls[] =
    "/* Bytes of workspace a call with this batch needs (any alignment). */\n"
    "size_t $p_workspace_size(int batch);\n\n"
    "/* Fills all $P_PARAM_COUNT parameters as the spec's `init` says (random\n"
    " * weights from seed, zero biases); the same seed gives the same bits on\n"
    " * every machine. */\n"
    "int $p_init($T *params, uint64_t seed);\n\n"
    "/* x [batch][$P_INPUT_SIZE] -> code [batch][$P_CODE_SIZE], in inference mode\n"
    " * (no dropout or noise; batch norm from its running statistics; the mean\n"
    " * of a variational code). */\n"
    "int $p_encode(const $T *params, const $T *x, $T *code, int batch, void *ws);\n\n"
    "/* code [batch][$P_CODE_SIZE] -> x_hat [batch][$P_INPUT_SIZE], inference mode. */\n"
    "int $p_decode(const $T *params, const $T *code, $T *x_hat, int batch, void *ws);\n\n"
    "/* The reconstruction x_hat [batch][$P_INPUT_SIZE] (x_hat may be NULL) and\n"
    " * the loss, in inference mode: loss[0] is the spec's objective averaged\n"
    " * over the batch (with batch 1, that sample's reconstruction error: an\n"
    " * anomaly score); *loss is that one value (its terms: $p_metrics). mask\n"
    " * is NULL, or [batch][$P_INPUT_SIZE] with 1 where x is present and 0 where\n"
    " * it is missing (`loss ... masked`). */\n"
    "int $p_eval(const $T *params, const $T *x, const $T *mask, int batch, $T *loss,\n"
    "    $T *x_hat, void *ws);\n\n"
    "/* One optimizer step on a batch: the training-mode loss into *loss, then\n"
    " * params and opt_state ($P_OPT_STATE_COUNT values, zeroed before the first\n"
    " * step; NULL when that is 0) updated. step counts steps from 1; it keys the\n"
    " * random noise and dropout masks, and Adam's bias correction. mask as for\n"
    " * $p_eval. */\n"
    "int $p_train_step($T *params, $T *opt_state, const $T *x, const $T *mask, int batch,\n"
    "    uint64_t step, $T *loss, void *ws);\n\n"
    "/* The training-mode loss and its gradient grad [$P_TRAINABLE_COUNT] (the\n"
    " * trainable tensors come first in params), without an update. */\n"
    "int $p_loss_grad(const $T *params, const $T *x, const $T *mask, int batch, uint64_t step,\n"
    "    $T *loss, $T *grad, void *ws);\n\n"
    "/* The $P_N_METRICS values of the objective (the loss, then each term) of\n"
    " * the last train_step, loss_grad, eval or stage_step call on this ws. */\n"
    "int $p_metrics(const void *ws, $T *out);\n\n"
    "/* The symbol table (aec.h): the tensors' names, shapes, offsets and kinds,\n"
    " * the training settings, the layer table, and the entry points above. */\n"
    "extern const aec_model $p_model;\n";

static const char header_stages[] =
    "/* train_step for pretraining stage 1..$P_N_STAGES: updates only that stage's\n"
    " * encoder/decoder dense pair, trained as a shallow autoencoder of the codes\n"
    " * below it (frozen, inference mode); writes loss[0]. Start each stage with a\n"
    " * zeroed opt_state and step 1; fine-tune with $p_train_step afterwards. */\n"
    "int $p_stage_step(int stage, $T *params, $T *opt_state, const $T *x, const $T *mask,\n"
    "    int batch, uint64_t step, $T *loss, void *ws);\n";

static const char header_embedded[] =
    "\n/* --embed-weights: the trained parameters, read-only data in the object\n"
    " * ($p_model.embedded_params points to them too). The functions below are\n"
    " * the ones above called with them as params, bit for bit. At batch 1 these\n"
    " * weights take a faster path, which skips zero inputs and sums in a fixed\n"
    " * order: the same bits on every machine, to rounding those of the same\n"
    " * weights passed in from elsewhere. */\n"
    "#define $P_EMBEDDED 1\n"
    "extern const $T $p_embedded_params[$P_PARAM_COUNT];\n"
    "int $p_encode_embedded(const $T *x, $T *code, int batch, void *ws);\n"
    "int $p_decode_embedded(const $T *code, $T *x_hat, int batch, void *ws);\n"
    "int $p_eval_embedded(const $T *x, const $T *mask, int batch, $T *loss, $T *x_hat,\n"
    "    void *ws);\n";

static const char header_example[] =
    "\n/* Example: the code of one input.\n"
    " *     void *ws = malloc($p_workspace_size(1));\n"
    " *     $T code[$P_CODE_SIZE];\n"
    " *     int err = %s;\n"
    " *     if (err) fprintf(stderr, \"encode: %%s\\n\", aec_strerror(err));\n"
    " */\n";

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* m.o -> m.h; m -> m.h. */
static char *header_path(Arena *a, const char *obj_path) {
    char *path = arena_alloc(a, strlen(obj_path) + 3);
    strcpy(path, obj_path);
    char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/')) strcpy(dot, ".h");
    else strcat(path, ".h");
    return path;
}

static int write_header(Arena *a, const Program *prog, const char *obj_path, const char *spec,
                        const CodegenOptions *opt, const char *weights) {
    const Model *m = prog->model;
    const char *prefix = m->symbol;
    char *path = header_path(a, obj_path);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *up = arena_strdup(a, prefix);
    for (char *p = up; *p; p++) *p = (char)toupper((unsigned char)*p);
    char lib[PATH_MAX], inc[PATH_MAX];
    driver_runtime_paths(lib, inc); /* for the header's build line only */
    const char *sub[5] = {prefix, up, opt->f64 ? "double" : "float", base_name(obj_path), inc};

    fprintf(f, "/* %s — model '%s' of %s, compiled by aec into %s.\n", base_name(path), m->name,
            base_name(spec), base_name(obj_path));
    fprintf(f, " * Generated: do not edit; rebuild with `aec build SPEC --emit obj`.\n");
    if (opt->triple || opt->cpu)
        fprintf(f, " * Target: %s%s%s.\n", opt->triple ? opt->triple : "host",
                opt->cpu ? ", cpu " : "", opt->cpu ? opt->cpu : "");
    if (weights) fprintf(f, " * Weights: %s, embedded.\n", base_name(weights));
    put_template(f, header_intro, sub);

    fprintf(f, " *\n * Layers (as `aec check` prints them):\n");
    char *table = arena_strdup(a, prog->summary);
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(f, " *   %s\n", line);
    fprintf(f, " *\n * Tensors in params (offsets and sizes in values):\n");
    for (int t = 0; t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        char shape[64] = "[";
        for (int k = 0; k < pt->ndim; k++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), k ? ", %d" : "%d",
                     pt->shape[k]);
        strcat(shape, "]");
        fprintf(f, " *   %-24s %-18s at %9ld, %9ld%s\n", pt->name, shape, pt->offset, pt->numel,
                pt->kind == AEC_TENSOR_BUFFER ? " (a buffer, not trained)" : "");
    }
    fprintf(f, " */\n#ifndef %s_AEC_H\n#define %s_AEC_H\n\n", up, up);
    fprintf(f, "#include <stddef.h>\n#include <stdint.h>\n\n#include \"aec.h\"\n\n");
    fprintf(f, "#define %s_INPUT_SIZE %ld /* values per sample (%s) */\n", up,
            shape_numel(m->input), shape_str(a, m->input));
    fprintf(f, "#define %s_CODE_SIZE %ld /* values per code */\n", up, shape_numel(m->code));
    fprintf(f, "#define %s_PARAM_COUNT %ld /* values in params, trainable first */\n", up,
            m->param_count);
    fprintf(f, "#define %s_TRAINABLE_COUNT %ld\n", up, m->trainable_count);
    fprintf(f, "#define %s_OPT_STATE_COUNT %ld /* optimizer state values */\n", up,
            (long)prog->opt_slots * m->trainable_count);
    fprintf(f, "#define %s_ALIGN AEC_ALIGN /* bytes; the alignment params should have */\n", up);
    fprintf(f, "#define %s_MAX_BATCH AEC_MAX_BATCH /* the largest batch a call accepts */\n", up);
    /* What $p_metrics reads back after train_step, loss_grad and eval. */
    fprintf(f, "#define %s_N_METRICS %d /* values %s_metrics gives:", up, prog->nmetrics, prefix);
    for (int i = 0; i < prog->nmetrics; i++) fprintf(f, "%s %s", i ? "," : "", prog->metric_names[i]);
    fprintf(f, " */\n\n");
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    put_template(f, header_decls, sub);
    if (m->nstages > 0) {
        fprintf(f, "\n#define %s_N_STAGES %d /* greedy layer-wise pretraining stages */\n", up,
                m->nstages);
        put_template(f, header_stages, sub);
    }
    if (weights) put_template(f, header_embedded, sub);
    char *call = arena_printf(a, weights ? "%s_encode_embedded(x, code, 1, ws)"
                                         : "%s_encode(params, x, code, 1, ws)", prefix);
    char *example = arena_printf(a, header_example, call);
    put_template(f, example, sub);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    if (fclose(f)) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Where the runtime library (libaecrt.a) and its header (aec.h) are. An
 * installed aec (`make install`: PREFIX/bin/aec) finds them beside itself,
 * in PREFIX/lib and PREFIX/include/aec, so a moved or relocated prefix keeps
 * working and the source tree is not needed; otherwise aec runs from its
 * build tree (or is linked into a test) and uses the paths the build
 * recorded. False when neither has them (then lib and inc are the build
 * tree's paths). */
bool driver_runtime_paths(char *lib, char *inc) {
    char exe[PATH_MAX - 32]; /* room for the suffixes below */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0; /* PREFIX/bin */
        snprintf(lib, PATH_MAX, "%s/../lib", exe);
        snprintf(inc, PATH_MAX, "%s/../include/aec", exe);
        char a[PATH_MAX + 16], h[PATH_MAX + 16];
        snprintf(a, sizeof a, "%s/libaecrt.a", lib);
        snprintf(h, sizeof h, "%s/aec.h", inc);
        if (is_file(a) && is_file(h)) return true;
    }
    snprintf(lib, PATH_MAX, "%s", AEC_BUILD_LIB_DIR);
    snprintf(inc, PATH_MAX, "%s", AEC_BUILD_INCLUDE_DIR);
    return is_file(AEC_BUILD_LIB_DIR "/libaecrt.a") && is_file(AEC_BUILD_INCLUDE_DIR "/aec.h");
}

/* Link the model object with the runtime's generic trainer into PROG, with
 * the libraries the build recorded (the same RT_LIBS as aec.pc's Libs). */
static int link_trainer(const char *prefix, const char *obj, const char *out) {
    char lib[PATH_MAX], inc[PATH_MAX];
    if (!driver_runtime_paths(lib, inc)) {
        fprintf(stderr,
                "aec: error: cannot find the runtime (libaecrt.a and aec.h): not in ../lib and "
                "../include/aec beside the aec program, nor in its build tree %s\n",
                AEC_BUILD_LIB_DIR);
        return 1;
    }
    char inc_flag[PATH_MAX + 2], archive[PATH_MAX + 16];
    snprintf(inc_flag, sizeof inc_flag, "-I%s", inc);
    snprintf(archive, sizeof archive, "%s/libaecrt.a", lib);
    char stub[] = "/tmp/aec-main-XXXXXX.c";
    int fd = mkstemps(stub, 2);
    if (fd < 0) return 1;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "#include \"aec.h\"\nextern const aec_model %s_model;\n"
               "int aec_main(const aec_model *m, int argc, char **argv);\n"
               "int main(int argc, char **argv) { return aec_main(&%s_model, argc, argv); }\n",
            prefix, prefix);
    fclose(f);
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-O2";
    argv[n++] = inc_flag;
    argv[n++] = stub;
    argv[n++] = (char *)obj;
    argv[n++] = archive;
    char libs[] = AEC_RT_LIBS;
    for (char *tok = strtok(libs, " "); tok && n < 60; tok = strtok(NULL, " ")) argv[n++] = tok;
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    argv[n] = NULL;
    int st = run(argv);
    unlink(stub);
    if (st) fprintf(stderr, "aec: error: linking %s failed (%s exited with %d)\n", out, cc, st);
    return st ? 1 : 0;
}

/* The runtime's description of a checked model, as much of it as the
 * safetensors reader (aec_ckpt_load) consults: the tensors and counts. */
static aec_model runtime_view(Arena *a, const Program *p, bool f64) {
    const Model *m = p->model;
    aec_tensor_info *t = arena_alloc(a, sizeof *t * (size_t)(m->ntensors + 1));
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *pt = &m->tensors[i];
        t[i] = (aec_tensor_info){.name = pt->name, .ndim = pt->ndim, .kind = pt->kind,
                                 .offset = pt->offset, .numel = pt->numel};
        for (int k = 0; k < pt->ndim; k++) t[i].shape[k] = pt->shape[k];
    }
    return (aec_model){.abi_version = AEC_ABI_VERSION, .dtype = f64 ? AEC_F64 : AEC_F32,
                       .name = m->name, .max_batch = AEC_MAX_BATCH,
                       .input_size = shape_numel(m->input), .code_size = shape_numel(m->code),
                       .param_count = m->param_count, .trainable_count = m->trainable_count,
                       .opt_state_count = (long)p->opt_slots * m->trainable_count,
                       .n_tensors = m->ntensors, .tensors = t, .train = m->train};
}

/* --embed-weights: the params block from a safetensors file, which must
 * hold exactly the model's tensors (names, shapes; F32 or F64) with finite
 * values; NULL after saying what does not match. */
static void *load_weights(Arena *a, const Program *p, const char *path, bool f64) {
    const Model *m = p->model;
    aec_model view = runtime_view(a, p, f64);
    size_t el = f64 ? sizeof(double) : sizeof(float);
    void *w = arena_alloc(a, (size_t)m->param_count * el + 1);
    int st = aec_ckpt_load(path, &view, w, NULL, NULL, NULL, NULL);
    for (int t = 0; !st && t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        for (long i = 0; i < pt->numel; i++) {
            double v = aec_get(w, view.dtype, pt->offset + i);
            if (!isfinite(v)) {
                fprintf(stderr, "error: %s: tensor %s holds %g at element %ld\n", path, pt->name,
                        v, i);
                st = AEC_EFORMAT;
                break;
            }
        }
    }
    if (!st) return w;
    fprintf(stderr, "aec: error: cannot embed %s in model '%s' of %s\n", path, m->name,
            m->loc.file);
    return NULL;
}

int driver_build(const char *spec, const char *out, const char *emit, const CodegenOptions *opt_in,
                 const char *weights) {
    if (emit && strcmp(emit, "obj") && strcmp(emit, "asm") && strcmp(emit, "llvm")) {
        fprintf(stderr, "aec: error: unknown --emit '%s' (obj, asm, llvm)\n", emit);
        return 2;
    }
    Arena *a = arena_new();
    if (emit && !strcmp(emit, "obj") && !strcmp(header_path(a, out), out)) {
        fprintf(stderr, "aec: error: -o %s: the header would overwrite the object\n", out);
        arena_free(a);
        return 2;
    }
    CodegenOptions opt = *opt_in;
    Model *m = driver_load(a, spec, false);
    int status = 1;
    Codegen *cg = NULL;
    Program *prog = m ? compile_model(a, m) : NULL;
    if (prog && weights && !(opt.embed = load_weights(a, prog, weights, opt.f64))) goto done;
    if (prog) cg = cg_program(prog, &opt);
    if (!cg) goto done;
    const char *prefix = m->symbol;
    if (!emit) {
        char obj[] = "/tmp/aec-model-XXXXXX.o";
        int fd = mkstemps(obj, 2);
        if (fd < 0) goto done;
        close(fd);
        status = cg_emit_file(cg, obj, false);
        if (!status) status = link_trainer(prefix, obj, out);
        unlink(obj);
    } else if (!strcmp(emit, "obj")) {
        status = cg_emit_file(cg, out, false);
        if (!status) status = write_header(a, prog, out, spec, &opt, weights);
    } else if (!strcmp(emit, "asm")) {
        status = cg_emit_file(cg, out, true);
    } else {
        FILE *f = fopen(out, "w");
        if (!f) fprintf(stderr, "aec: error: cannot write %s: %s\n", out, strerror(errno));
        else {
            cg_dump_llvm(f, cg);
            status = fclose(f) ? 1 : 0;
        }
    }
done:
    cg_free(cg);
    arena_free(a);
    return status;
}

/* `aec run SPEC -- ARGS`: the trainer of SPEC, JIT-compiled in this process
 * (ORC LLJIT) and run as the built trainer would be: the runtime's aec_main,
 * linked into aec, given the JIT's model table. Writes no files of its own;
 * the same code as `aec build` (same passes, CPU and features), so the same
 * results bit for bit. */
int driver_run(const char *spec, const CodegenOptions *opt, int argc, char **argv) {
    Arena *a = arena_new();
    Model *m = driver_load(a, spec, false);
    Codegen *cg = m ? cg_program(compile_model(a, m), opt) : NULL;
    int status = 1;
    const aec_model *table =
        cg ? cg_jit_lookup(cg, arena_printf(a, "%s_model", cg_prefix(cg))) : NULL;
    if (table) {
        /* argv[0] names the program in the trainer's messages: the model. */
        char **args = arena_alloc(a, sizeof(char *) * (size_t)(argc + 2));
        args[0] = arena_strdup(a, m->name);
        for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
        fflush(stdout);
        status = aec_main(table, argc + 1, args);
    }
    fflush(stdout);
    cg_free(cg);
    arena_free(a);
    return status;
}
