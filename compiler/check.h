/* check.h — what the checker's files share (the compiler's API is the
 * check section of aec.h).
 *
 * The checker, in the order a spec goes through it:
 *   form.c        the generic statement grammar: forms, values, keywords,
 *                 "did you mean"
 *   check_layer.c one layer: its statement, its spelling, its shapes
 *   check.c       the model's statements and check_model, the two passes
 *   expand.c      decoder mirror/tied, output ACT, the model's shapes
 *   layout.c      Model.layers, PyTorch names, the params block, model facts
 *   report.c      the printed table and --dump=shapes
 *   shape.c       shape arithmetic (no checker state)
 * Each uses only the files below it in "form.c, shape.c <- check_layer.c
 * <- expand.c, layout.c <- check.c"; report.c uses check_layer.c and
 * layout.c.
 */
#ifndef AEC_CHECK_H
#define AEC_CHECK_H

#include "aec.h"

/* A layer as it is being checked: the Layer plus what only checking needs. */
typedef struct Draft {
    Layer l;
    bool act_written; /* the spec wrote this layer's ACT (so `output ACT` must agree) */
    bool bad;         /* a value was wrong: its output shape is unknown, not a guess */
    int tie;          /* mirror of: encoder draft index, TIE_LATENT_MU, or TIE_NONE */
} Draft;

enum { TIE_NONE = -1, TIE_LATENT_MU = -2 };

typedef struct Drafts {
    Draft *items;
    int n, cap;
} Drafts;

typedef enum { DEC_NONE, DEC_LAYERS, DEC_MIRROR, DEC_TIED } DecoderKind;

/* Where a statement may appear; keywords of one context are unknown in
 * another, and the error says where they belong. */
typedef enum { CTX_FILE, CTX_MODEL, CTX_LAYERS, CTX_TRAIN, CTX_REGULARIZE, CTX_COUNT } Context;

typedef struct Keyword Keyword;

typedef struct Checker {
    Arena *arena;
    /* The keyword table of each context (check.c's), for form.c's dispatch. */
    const Keyword *(*keywords_of)(Context ctx, int *n);
    Model *m;                                       /* settings are written here as they are read */
    const AstStmt *seen_model[16], *seen_train[16]; /* first use of each keyword */
    const AstStmt *seen_l2, *seen_l1w, *seen_l1c, *seen_kls, *seen_contractive, *seen_kl;
    bool have_input; /* the input shape is valid */
    const AstStmt *input_stmt, *encoder_stmt, *pretrain_stmt;
    Drafts enc, dec, heads;
    DecoderKind decoder;
    const AstStmt *decoder_stmt;
    const AstStmt *output_stmt; /* `output ACT`, if given */
    ActKind out_act;
    double out_alpha;
    const AstStmt *latent_stmt;
    bool encoder_ok; /* encoder shapes all known, so mirror can expand */
} Checker;

typedef void StmtFn(Checker *c, const AstStmt *s);
struct Keyword {
    const char *name;
    StmtFn *fn;
};

/* ---------------------------------------------------------------- shape.c */

Shape shape_vec(int n);
Shape shape_chw(int c, int h, int w);
bool shape_eq(Shape a, Shape b);
int clamp_int(long x);
/* The padding PyTorch needs along one dimension for pad mode `mode`. */
void conv_padding(LayerKind kind, int in, int k, int stride, int mode, int *before, int *extra);

/* ----------------------------------------------------------------- form.c */

int find_word(const char *w, const char *const *words, int n); /* its index, or -1 */
char *join(Arena *a, const char *const *words, int n);         /* "a, b, c" */
/* ", did you mean 'X'?" or "". */
const char *did_you_mean(Arena *a, const char *w, const char *const *words, int n);

typedef enum { BODY_NO, BODY_YES, BODY_OPTIONAL } BodyRule;

/* What a statement may contain, besides its keyword. */
typedef struct Form {
    const char *usage;    /* shown in errors: "dense N [ACT]" */
    int min_pos, max_pos; /* positional arguments, an ACT not counted */
    bool act;             /* takes an optional ACT: `relu` or `leaky_relu=0.2` */
    BodyRule body;
    const char *keys[7]; /* allowed key=value keys */
    bool head_value;     /* may be written `keyword=value` (an ACT alone) */
} Form;

/* A statement's arguments, sorted by check_form. */
typedef struct Args {
    const AstArg *pos[4];
    int npos;
    const AstArg *act; /* the ACT argument, positional or keyed */
} Args;

const AstArg *keyarg(const AstStmt *s, const char *key);
/* Checks a statement against its form: block, argument count, keys (unknown
 * ones with a suggestion, duplicates), at most one ACT. */
Args check_form(Checker *c, const AstStmt *s, const Form *f);

const char *written(Arena *a, const AstValue *v); /* a value as the spec wrote it */
typedef enum { R_ANY, R_POSITIVE, R_NONNEG, R_PROB, R_UNIT, R_OPEN_UNIT } Range;
bool get_real(Checker *c, const AstValue *v, const char *what, Range r, double *out);
bool get_int(Checker *c, const AstValue *v, const char *what, long min, int *out);
bool get_shape(Checker *c, const AstValue *v, const char *what, Shape *out);
bool get_kernel(Checker *c, const AstValue *v, const char *what, int *kh, int *kw);
int get_word(Checker *c, const AstValue *v, const char *what, const char *const *words, int n);
bool get_act(Checker *c, const char *name, Loc loc, const AstValue *param, ActKind *act,
             double *alpha);
bool get_act_arg(Checker *c, const AstArg *a, ActKind *act, double *alpha);

/* The layer keywords, in LayerKind's order. */
enum { LAYER_KEYWORDS = 10 };
extern const char *const layer_keywords[LAYER_KEYWORDS];
enum { KEYWORDS_MAX = 32 };
/* Every keyword of a context (at most KEYWORDS_MAX), for suggestions. */
int keyword_names(const Checker *c, Context ctx, const char **names);
void unknown_keyword(Checker *c, const AstStmt *s, Context ctx, const char *where);
/* Runs the handler of s's keyword in ctx; `seen` (a slot per keyword, or
 * NULL) catches a keyword given twice. */
void dispatch(Checker *c, const AstStmt *s, Context ctx, const char *where, const AstStmt **seen);
bool first_use(const AstStmt **slot, const AstStmt *s, const char *what);

/* ---------------------------------------------------------- check_layer.c */

bool has_act_field(LayerKind k); /* dense, conv, deconv: `dense N ACT` */
Draft new_draft(LayerKind kind, Loc loc, bool in_decoder);
/* One statement of encoder { } or decoder { } into a draft layer. */
void layer_stmt(Checker *c, const AstStmt *s, Drafts *out, const char *where, bool in_decoder);
char *layer_text(Arena *a, const Layer *l, bool full); /* `full` adds keys and the activation */
bool infer_layer(Checker *c, Layer *l, const char *after);
Shape infer_section(Checker *c, Drafts *ds, Shape in, const char *first_after, bool *ok);

/* --------------------------------------------------------------- expand.c */

/* Pass 2's shapes: encoder, heads, mirror/tied expansion, output ACT, decoder. */
void infer_model(Checker *c);

/* --------------------------------------------------------------- layout.c */

void assemble(Checker *c); /* Model.layers, the tensors, counts and facts; the size limits */
int walk_order(const Model *m, int k); /* the k-th layer in tensor order: encoder, heads, decoder */
const char *layer_prefix(Arena *a, const Model *m, int i); /* "encoder.3" */

#endif
