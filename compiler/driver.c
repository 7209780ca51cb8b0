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
#include <unistd.h>

#include "../runtime/rt.h" /* aec_ckpt_load, aec_main: the runtime is linked in */
#include "aec.h"
#include "config.h" /* generated: AEC_RT_LIBS, AEC_BUILD_LIB_DIR, AEC_BUILD_INCLUDE_DIR */

Model *driver_load(Arena *a, const char *spec_path) {
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
    return check_model(a, ast);
}

int driver_check(const char *spec, const char *dump) {
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
    Model *m = driver_load(a, spec);
    if (!m)
        status = 1;
    else if (!dump)
        check_print_table(stdout, m);
    else if (!strcmp(dump, "shapes"))
        check_dump_shapes(stdout, m);
    else if (!strcmp(dump, "ir") || !strcmp(dump, "grad") || !strcmp(dump, "kernels"))
        program_dump(stdout, compile_model(a, m), dump);
    else if (!strcmp(dump, "llvm")) {
        CodegenOptions opt = {.opt_level = 3};
        Codegen *cg = cg_program(compile_model(a, m), &opt);
        if (cg)
            cg_dump_llvm(stdout, cg);
        else
            status = 1;
        cg_free(cg);
    } else {
        fprintf(stderr,
                "aec: error: unknown dump '%s' (tokens, ast, shapes, ir, grad, kernels, llvm)\n",
                dump);
        status = 2;
    }
    arena_free(a);
    return status;
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
 * the libraries the build recorded (the same RT_LIBS as aec.pc's Libs); with
 * `mpi`, main is the MPI layer's (runtime/mpi.c, libaecrt_mpi.a beside
 * libaecrt.a), linked with the MPI_LIBS mpicc gave when aec was built. */
static int link_trainer(const char *prefix, const char *obj, const char *out, bool mpi) {
    char lib[PATH_MAX], inc[PATH_MAX];
    if (!driver_runtime_paths(lib, inc)) {
        fprintf(stderr,
                "aec: error: cannot find the runtime (libaecrt.a and aec.h): not in ../lib and "
                "../include/aec beside the aec program, nor in its build tree %s\n",
                AEC_BUILD_LIB_DIR);
        return 1;
    }
    char inc_flag[PATH_MAX + 2], archive[PATH_MAX + 16], mpi_archive[PATH_MAX + 20];
    snprintf(inc_flag, sizeof inc_flag, "-I%s", inc);
    snprintf(archive, sizeof archive, "%s/libaecrt.a", lib);
    snprintf(mpi_archive, sizeof mpi_archive, "%s/libaecrt_mpi.a", lib);
    if (mpi && (!AEC_MPI_LIBS[0] || !is_file(mpi_archive))) {
        fprintf(stderr,
                "aec: error: --mpi: this aec was built without MPI (no %s; `make deps` "
                "installs libopenmpi-dev, then rebuild aec)\n",
                mpi_archive);
        return 1;
    }
    char stub[] = "/tmp/aec-main-XXXXXX.c";
    int fd = mkstemps(stub, 2);
    if (fd < 0) return 1;
    FILE *f = fdopen(fd, "w");
    const char *entry = mpi ? "aec_mpi_main" : "aec_main";
    fprintf(f,
            "#include \"aec.h\"\nextern const aec_model %s_model;\n"
            "int %s(const aec_model *m, int argc, char **argv);\n"
            "int main(int argc, char **argv) { return %s(&%s_model, argc, argv); }\n",
            prefix, entry, entry, prefix);
    fclose(f);
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-O2";
    argv[n++] = inc_flag;
    argv[n++] = stub;
    argv[n++] = (char *)obj;
    if (mpi) argv[n++] = mpi_archive;
    argv[n++] = archive;
    char libs[] = AEC_RT_LIBS " " AEC_MPI_LIBS;
    if (!mpi) libs[strlen(AEC_RT_LIBS)] = 0;
    for (char *tok = strtok(libs, " "); tok && n < 60; tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    argv[n] = NULL;
    int st = run_command(argv);
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
        t[i] = (aec_tensor_info){.name = pt->name,
                                 .ndim = pt->ndim,
                                 .kind = pt->kind,
                                 .offset = pt->offset,
                                 .numel = pt->numel};
        for (int k = 0; k < pt->ndim; k++)
            t[i].shape[k] = pt->shape[k];
    }
    return (aec_model){.abi_version = AEC_ABI_VERSION,
                       .dtype = f64 ? AEC_F64 : AEC_F32,
                       .name = m->name,
                       .max_batch = AEC_MAX_BATCH,
                       .input_size = shape_numel(m->input),
                       .code_size = shape_numel(m->code),
                       .param_count = m->param_count,
                       .trainable_count = m->trainable_count,
                       .opt_state_count = (long)p->opt_slots * m->trainable_count,
                       .n_tensors = m->ntensors,
                       .tensors = t,
                       .train = m->train};
}

/* --embed-weights: the params block from a safetensors file, which must
 * hold exactly the model's tensors (names, shapes; F32 or F64) with finite
 * values; NULL after saying what does not match. */
static void *load_weights(Arena *a, const Program *p, const char *path, bool f64, bool half) {
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
                fprintf(stderr, "error: %s: tensor %s holds %g at element %ld\n", path, pt->name, v,
                        i);
                st = AEC_EFORMAT;
                break;
            }
            if (half && pt->ndim == 2 && fabs(v) > F16_MAX) { /* the weights --embed-half copies */
                fprintf(stderr,
                        "error: %s: tensor %s holds %g at element %ld, beyond f16's range "
                        "(+-%g): --embed-half cannot store it\n",
                        path, pt->name, v, i, F16_MAX);
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
                 const char *weights, bool mpi) {
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
    Model *m = driver_load(a, spec);
    int status = 1;
    Codegen *cg = NULL;
    Program *prog = m ? compile_model(a, m) : NULL;
    if (prog && weights && !(opt.embed = load_weights(a, prog, weights, opt.f64, opt.embed_half)))
        goto done;
    if (prog) cg = cg_program(prog, &opt);
    if (!cg) goto done;
    const char *prefix = m->symbol;
    if (!emit) {
        char obj[] = "/tmp/aec-model-XXXXXX.o";
        int fd = mkstemps(obj, 2);
        if (fd < 0) goto done;
        close(fd);
        status = cg_emit_file(cg, obj, false);
        if (!status) status = link_trainer(prefix, obj, out, mpi);
        unlink(obj);
    } else if (!strcmp(emit, "obj")) {
        status = cg_emit_file(cg, out, false);
        if (!status) {
            char lib[PATH_MAX], inc[PATH_MAX];
            driver_runtime_paths(lib, inc); /* for the header's build line only */
            status = header_write(a, prog, out, spec, &opt, weights, inc, AEC_MODEL_LIBS);
        }
    } else if (!strcmp(emit, "asm")) {
        status = cg_emit_file(cg, out, true);
    } else {
        FILE *f = fopen(out, "w");
        if (!f)
            fprintf(stderr, "aec: error: cannot write %s: %s\n", out, strerror(errno));
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
    Model *m = driver_load(a, spec);
    Codegen *cg = m ? cg_program(compile_model(a, m), opt) : NULL;
    int status = 1;
    const aec_model *table =
        cg ? cg_jit_lookup(cg, arena_printf(a, "%s_model", cg_prefix(cg))) : NULL;
    if (table) {
        /* argv[0] names the program in the trainer's messages: the model. */
        char **args = arena_alloc(a, sizeof(char *) * (size_t)(argc + 2));
        args[0] = arena_strdup(a, m->name);
        for (int i = 0; i < argc; i++)
            args[i + 1] = argv[i];
        fflush(stdout);
        status = aec_main(table, argc + 1, args);
    }
    fflush(stdout);
    cg_free(cg);
    arena_free(a);
    return status;
}
