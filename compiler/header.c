/* header.c — the C header beside an emitted object (DESIGN §4): m.o gets m.h.
 *
 * Takes the Program, the object's and spec's paths, the codegen options,
 * the embedded weights' file (or NULL) and the directory of the runtime's
 * aec.h; writes the header the person embedding the model reads: what the
 * model is (its layer table, its tensors and their offsets), the sizes as
 * macros, the rules for buffers, workspaces, threads and errors, the
 * declarations of its entry points (generated from aec.h's
 * AEC_MODEL_FIELDS, the one list of the ABI), how to build, an example.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

/* The C header of DESIGN §4 beside an emitted object: FILE.o gets FILE.h.
 * The person embedding the model reads it, so it says all that calling the
 * model takes: sizes, buffer layouts, the parameter tensors, workspaces and
 * threads, errors, how to compile and link, an example. In the templates
 * below $p is the symbol prefix, $P the same upper-cased, $T the element
 * type, $O the object's file name, $I the directory of aec.h and $L the
 * libraries a model object links with. */
static void put_template(FILE *f, const char *text, const char *const sub[6]) {
    static const char keys[] = "pPTOIL";
    for (const char *c = text; *c; c++) {
        const char *k = *c == '$' && c[1] ? strchr(keys, c[1]) : NULL;
        if (k) {
            fputs(sub[k - keys], f);
            c++;
        } else
            fputc(*c, f);
    }
}

static const char header_intro[] =
    " *\n"
    " * An autoencoder: $p_encode maps inputs to their codes, $p_decode codes back\n"
    " * to inputs, $p_eval reconstructs inputs and scores them, $p_train_step\n"
    " * trains. Build: the object needs only libc and libm (and a CBLAS if it\n"
    " * was built with --gemm blas):\n"
    " *     cc app.c $O $(pkg-config --cflags --libs aec)\n"
    " * with aec installed (`make install`), or from aec's source tree\n"
    " *     cc -I$I app.c $O $L\n"
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

/* The entry points m.h declares, in its order, each after its comment; a
 * NULL comment declares one more under the previous one. The declarations
 * themselves come from aec.h's AEC_MODEL_FIELDS (abi_fields). */
typedef struct HeaderEntry {
    const char *entry, *doc;
} HeaderEntry;

static const HeaderEntry header_entries[] = {
    {"workspace_size", "/* Bytes of workspace a call with this batch needs (any alignment). */\n"},
    {"init", "/* Fills all $P_PARAM_COUNT parameters as the spec's `init` says (random\n"
             " * weights from seed, zero biases); the same seed gives the same bits on\n"
             " * every machine. */\n"},
    {"encode", "/* x [batch][$P_INPUT_SIZE] -> code [batch][$P_CODE_SIZE], in inference mode\n"
               " * (no dropout or noise; batch norm from its running statistics; the mean\n"
               " * of a variational code). */\n"},
    {"decode",
     "/* code [batch][$P_CODE_SIZE] -> x_hat [batch][$P_INPUT_SIZE], inference mode. */\n"},
    {"eval", "/* The reconstruction x_hat [batch][$P_INPUT_SIZE] (x_hat may be NULL) and\n"
             " * the loss, in inference mode: loss[0] is the spec's objective averaged\n"
             " * over the batch (with batch 1, that sample's reconstruction error: an\n"
             " * anomaly score); *loss is that one value (its terms: $p_metrics). mask\n"
             " * is NULL, or [batch][$P_INPUT_SIZE] with 1 where x is present and 0 where\n"
             " * it is missing (`loss ... masked`). */\n"},
    {"train_step", "/* One optimizer step on a batch: the training-mode loss into *loss, then\n"
                   " * params and opt_state ($P_OPT_STATE_COUNT values, zeroed before the first\n"
                   " * step; NULL when that is 0) updated. step counts steps from 1; it keys the\n"
                   " * random noise and dropout masks, and Adam's bias correction. mask as for\n"
                   " * $p_eval. */\n"},
    {"loss_grad", "/* The training-mode loss and its gradient grad [$P_TRAINABLE_COUNT] (the\n"
                  " * trainable tensors come first in params), without an update. */\n"},
    {"metrics", "/* The $P_N_METRICS values of the objective (the loss, then each term) of\n"
                " * the last train_step, loss_grad, eval or stage_step call on this ws. */\n"},
    {"encode_ex", "/* The functions above with an exec (aec.h's aec_exec; NULL is what they\n"
                  " * pass): exec->parallel_for runs the model's tasks (NULL: the model runs\n"
                  " * them itself, in order), and exec->row_offset is the index of this call's\n"
                  " * first row in a larger global batch, so the random draws (noise, dropout\n"
                  " * masks, a variational code's eps) are those of the global batch's rows:\n"
                  " * a batch split over processes draws what it would draw whole. */\n"},
    {"decode_ex", NULL},
    {"eval_ex", NULL},
    {"train_step_ex", NULL},
    {"loss_grad_ex", NULL},
    {"apply_grad", "/* train_step's update from a gradient grad [$P_TRAINABLE_COUNT] the caller\n"
                   " * has (loss_grad's, summed or averaged over processes): params and\n"
                   " * opt_state updated as train_step updates them, so loss_grad then\n"
                   " * apply_grad is train_step bit for bit (batch-norm running statistics\n"
                   " * aside: loss_grad leaves them). step as for train_step. */\n"},
    {"running_stats",
     "/* The batch-norm running statistics [$P_PARAM_COUNT - $P_TRAINABLE_COUNT] (params'\n"
     " * tail) as the last loss_grad on ws, with this batch, moved them: copy them\n"
     " * into params (averaged over processes, if any) to make loss_grad then\n"
     " * apply_grad train_step. Read them before another call but metrics on ws.\n"
     " * Without batch norm there are none (out may be NULL). */\n"},
};

static const char header_model[] =
    "/* The symbol table (aec.h): the tensors' names, shapes, offsets and kinds,\n"
    " * the training settings, the layer table, and the entry points above. */\n"
    "extern const aec_model $p_model;\n";

static const char header_stages[] =
    "/* train_step for pretraining stage 1..$P_N_STAGES: updates only that stage's\n"
    " * encoder/decoder dense pair, trained as a shallow autoencoder of the codes\n"
    " * below it (frozen, inference mode); writes loss[0]. Start each stage with a\n"
    " * zeroed opt_state and step 1; fine-tune with $p_train_step afterwards. */\n";

static const char header_embedded[] =
    "\n/* --embed-weights: the trained parameters, read-only data in the object\n"
    " * ($p_model.embedded_params points to them too). The functions below are\n"
    " * the ones above called with them as params, bit for bit. At batch 1 these\n"
    " * weights take a faster path, which skips zero inputs and sums in a fixed\n"
    " * order: the same bits on every machine, to rounding those of the same\n"
    " * weights passed in from elsewhere. */\n"
    "#define $P_EMBEDDED 1\n"
    "extern const $T $p_embedded_params[$P_PARAM_COUNT];\n";

/* An argument's C type in the header's templates. */
static const char *arg_ctype(AbiType t) {
    switch (t) {
    case ABI_BUF: return "$T *";
    case ABI_CBUF: return "const $T *";
    case ABI_WS: return "void *";
    case ABI_CWS: return "const void *";
    case ABI_INT: return "int ";
    case ABI_U64: return "uint64_t ";
    case ABI_EXEC: return "const aec_exec *";
    default: internal_error("abi type %d is not an argument", t);
    }
}

enum { HEADER_WIDTH = 89 }; /* template columns before a declaration wraps */

/* The declaration of entry point `e` (named NAME`suffix`, without its first
 * `skip` arguments) as a template, wrapped at HEADER_WIDTH with a 4-space
 * continuation. */
static void put_decl(FILE *f, const AbiField *e, const char *suffix, int skip,
                     const char *const sub[6]) {
    char text[1024], line[256];
    snprintf(line, sizeof line, "%s $p_%s%s(", e->ret == ABI_RET_SIZE ? "size_t" : "int", e->name,
             suffix);
    text[0] = '\0';
    bool fresh = true; /* nothing after the '(' or the indent yet */
    for (int i = skip; i < e->nargs; i++) {
        char piece[96];
        snprintf(piece, sizeof piece, "%s%s%s", arg_ctype(e->args[i].type), e->args[i].name,
                 i + 1 == e->nargs ? ");" : ",");
        if (!fresh && strlen(line) + 1 + strlen(piece) > HEADER_WIDTH) {
            strcat(text, line);
            strcat(text, "\n");
            snprintf(line, sizeof line, "    %s", piece);
        } else {
            snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", fresh ? "" : " ",
                     piece);
        }
        fresh = false;
    }
    strcat(text, line);
    strcat(text, "\n");
    put_template(f, text, sub);
}

/* The entry points and the table, as header_entries lists them. */
static void put_decls(FILE *f, const char *const sub[6]) {
    for (int i = 0; i < countof(header_entries); i++) {
        const HeaderEntry *h = &header_entries[i];
        if (h->doc && i) fputc('\n', f);
        if (h->doc) put_template(f, h->doc, sub);
        put_decl(f, abi_entry(h->entry), "", 0, sub);
    }
    fputc('\n', f);
    put_template(f, header_model, sub);
}

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
char *header_path(Arena *a, const char *obj_path) {
    char *path = arena_alloc(a, strlen(obj_path) + 3);
    strcpy(path, obj_path);
    char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        strcpy(dot, ".h");
    else
        strcat(path, ".h");
    return path;
}

int header_write(Arena *a, const Program *prog, const char *obj_path, const char *spec,
                 const CodegenOptions *opt, const char *weights, const char *inc,
                 const char *libs) {
    const Model *m = prog->model;
    const char *prefix = m->symbol;
    char *path = header_path(a, obj_path);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *up = arena_strdup(a, prefix);
    for (char *p = up; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    const char *sub[6] = {prefix, up,  opt->f64 ? "double" : "float", base_name(obj_path),
                          inc,    libs};

    fprintf(f, "/* %s — model '%s' of %s, compiled by aec into %s.\n", base_name(path), m->name,
            base_name(spec), base_name(obj_path));
    fprintf(f, " * Generated: do not edit; rebuild with `aec build SPEC --emit obj`.\n");
    if (opt->triple || opt->cpu)
        fprintf(f, " * Target: %s%s%s.\n", opt->triple ? opt->triple : "host",
                opt->cpu ? ", cpu " : "", opt->cpu ? opt->cpu : "");
    if (weights)
        fprintf(f, " * Weights: %s, embedded%s.\n", base_name(weights),
                opt->embed_half ? " (batch 1 reads them as f16)" : "");
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
    for (int i = 0; i < prog->nmetrics; i++)
        fprintf(f, "%s %s", i ? "," : "", prog->metric_names[i]);
    fprintf(f, " */\n\n");
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    put_decls(f, sub);
    if (m->nstages > 0) {
        fprintf(f, "\n#define %s_N_STAGES %d /* greedy layer-wise pretraining stages */\n", up,
                m->nstages);
        put_template(f, header_stages, sub);
        put_decl(f, abi_entry("stage_step"), "", 0, sub);
    }
    if (weights) {
        put_template(f, header_embedded, sub);
        if (opt->embed_half)
            put_template(
                f,
                "/* --embed-half: at batch 1 the weight matrices are read as f16 copies\n"
                " * (half the bytes; sums in $T), so the codes differ from full-precision\n"
                " * weights' by f16's rounding (about 1e-3 relative per weight). */\n"
                "#define $P_EMBEDDED_HALF 1\n",
                sub);
        static const char *const twins[] = {"encode", "decode", "eval"}; /* as emit_embedded */
        for (int t = 0; t < countof(twins); t++)
            put_decl(f, abi_entry(twins[t]), "_embedded", 1, sub);
    }
    char *call = arena_printf(
        a, weights ? "%s_encode_embedded(x, code, 1, ws)" : "%s_encode(params, x, code, 1, ws)",
        prefix);
    char *example = arena_printf(a, header_example, call);
    put_template(f, example, sub);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
    if (fclose(f)) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}
