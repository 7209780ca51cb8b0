/* ast.h — the parsed spec, before any meaning is given to it.
 *
 * Included by aec.h after the util section (Loc, Arena). Produced by
 * grammar/parser.y through the constructors of ast.c; read by check.c.
 *
 * Every statement of the language has one generic form,
 *     keyword positional-args... key=value... [{ statements }]
 * (e.g. `conv 64 3x3 stride=2 pad=same relu`, `train { batch 32 }`), so the
 * grammar knows no keywords: the checker gives each statement its meaning
 * and can say "unknown keyword 'dens', did you mean 'dense'?" with a
 * location instead of a bare syntax error. An activation with a parameter
 * may also head a statement: `leaky_relu=0.2` as a layer of its own.
 * Every node carries a Loc; nothing after the checker reads the AST.
 */
#ifndef AEC_AST_H
#define AEC_AST_H

#define AST_MAX_DIMS 4 /* the lexer rejects longer shapes */

typedef enum AstValueKind {
    AV_NUMBER, /* number: 64, 0.2, 1e-3, -1 */
    AV_IDENT,  /* ident: relu, same, mirror */
    AV_SHAPE,  /* shape: 1x28x28, 3x3 (two or more dimensions, each an integer) */
} AstValueKind;

typedef struct AstValue {
    AstValueKind kind;
    Loc loc;
    const char *text; /* as written, e.g. "1e-3" */
    union {
        struct {
            double value;
            bool is_int; /* integral and exactly representable */
        } number;
        struct {
            const char *name;
        } ident;
        struct {
            int ndim;
            int dim[AST_MAX_DIMS];
        } shape;
    };
} AstValue;

/* One argument: positional (`64`) or keyed (`lr=1e-3`). */
typedef struct AstArg {
    Loc loc;         /* the whole argument, `key=value` or the value */
    const char *key; /* NULL for a positional argument */
    Loc key_loc;
    AstValue *value;
} AstArg;

typedef struct AstStmt {
    Loc loc; /* the keyword */
    const char *keyword;
    AstValue *keyword_value; /* `leaky_relu=0.2` heading the statement, else NULL */
    AstArg **args;
    int nargs;
    bool has_body; /* a `{ }` block followed, possibly empty */
    Loc body_loc;  /* its '{' */
    struct AstStmt **body;
    int nbody;
} AstStmt;

/* The whole file: its top-level statements (normally one `model NAME { }`). */
typedef struct AstModel {
    const char *file;
    AstStmt **stmts;
    int nstmts;
} AstModel;

/* Lists the parser grows while reducing (arena-backed). */
typedef struct AstArgList {
    AstArg **items;
    int n, cap;
} AstArgList;
typedef struct AstStmtList {
    AstStmt **items;
    int n, cap;
} AstStmtList;

/* Constructors: the only thing parser actions call. */
AstValue *ast_number(Arena *a, Loc loc, const char *text, double value);
AstValue *ast_ident(Arena *a, Loc loc, const char *name);
AstValue *ast_shape(Arena *a, Loc loc, const char *text, int ndim, const int *dim);
AstArg *ast_arg(Arena *a, Loc loc, const char *key, Loc key_loc, AstValue *value);
AstArgList *ast_arg_list(Arena *a);
AstArgList *ast_arg_push(Arena *a, AstArgList *list, AstArg *arg);
AstStmtList *ast_stmt_list(Arena *a);
AstStmtList *ast_stmt_push(Arena *a, AstStmtList *list, AstStmt *stmt); /* NULL stmt: skipped */
/* body NULL: the statement has no block. */
AstStmt *ast_stmt(Arena *a, Loc loc, const char *keyword, AstValue *keyword_value, AstArgList *args,
                  AstStmtList *body, Loc body_loc);
AstModel *ast_model(Arena *a, const char *file, AstStmtList *stmts);

/* Parses a spec (grammar/parser.y). Registers `text` with the diagnostics
 * (it must outlive them); reports lexical and syntax errors located
 * file:line:col and returns NULL if there was any. */
AstModel *parse_spec(Arena *a, const char *file, const char *text);

/* Stable text dumps for `aec check --dump=tokens|ast` and golden tests. */
void ast_dump(FILE *out, const AstModel *m);
void lex_dump_tokens(FILE *out, const char *file, const char *text); /* grammar/lexer.l */

#endif
