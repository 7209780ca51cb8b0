/* ast.c — AST constructors (called by the parser's actions) and the AST dump.
 *
 * Takes locations and token values from grammar/parser.y; produces arena
 * nodes (ast.h). Constructors only build: meaning is the checker's job.
 *
 * Dump format (stable, one statement per line, two spaces per depth):
 *     LINE:COL KEYWORD[=VALUE] ARG... [{]
 * where a positional ARG is a typed value, `num(64)`, `ident(relu)` or
 * `shape(1x28x28)` (numbers and shapes as written), and a keyed one is
 * `key=VALUE`; a statement with a block ends with `{`, its statements
 * follow one level deeper, then `}`.
 */
#include <math.h>
#include <string.h>

#include "aec.h"

AstValue *ast_number(Arena *a, Loc loc, const char *text, double value) {
    AstValue *v = arena_alloc(a, sizeof *v);
    v->kind = AV_NUMBER;
    v->loc = loc;
    v->text = arena_strdup(a, text);
    v->number.value = value;
    /* 2^53: beyond it doubles skip integers, so "integral" would be a guess. */
    v->number.is_int = value == floor(value) && fabs(value) <= 9007199254740992.0;
    return v;
}

AstValue *ast_ident(Arena *a, Loc loc, const char *name) {
    AstValue *v = arena_alloc(a, sizeof *v);
    v->kind = AV_IDENT;
    v->loc = loc;
    v->text = arena_strdup(a, name);
    v->ident.name = v->text;
    return v;
}

AstValue *ast_shape(Arena *a, Loc loc, const char *text, int ndim, const int *dim) {
    ensure(ndim >= 2 && ndim <= AST_MAX_DIMS);
    AstValue *v = arena_alloc(a, sizeof *v);
    v->kind = AV_SHAPE;
    v->loc = loc;
    v->text = arena_strdup(a, text);
    v->shape.ndim = ndim;
    memcpy(v->shape.dim, dim, sizeof(int) * (size_t)ndim);
    return v;
}

AstArg *ast_arg(Arena *a, Loc loc, const char *key, Loc key_loc, AstValue *value) {
    AstArg *arg = arena_alloc(a, sizeof *arg);
    arg->loc = loc;
    arg->key = key ? arena_strdup(a, key) : NULL;
    arg->key_loc = key_loc;
    arg->value = value;
    return arg;
}

AstArgList *ast_arg_list(Arena *a) {
    return arena_alloc(a, sizeof(AstArgList));
}

AstArgList *ast_arg_push(Arena *a, AstArgList *list, AstArg *arg) {
    ARRAY_PUSH(a, list->items, list->n, list->cap, arg);
    return list;
}

AstStmtList *ast_stmt_list(Arena *a) {
    return arena_alloc(a, sizeof(AstStmtList));
}

AstStmtList *ast_stmt_push(Arena *a, AstStmtList *list, AstStmt *stmt) {
    /* A statement lost to a syntax error is NULL; the error is reported. */
    if (stmt) ARRAY_PUSH(a, list->items, list->n, list->cap, stmt);
    return list;
}

AstStmt *ast_stmt(Arena *a, Loc loc, const char *keyword, AstValue *keyword_value, AstArgList *args,
                  AstStmtList *body, Loc body_loc) {
    AstStmt *s = arena_alloc(a, sizeof *s);
    s->loc = loc;
    s->keyword = arena_strdup(a, keyword);
    s->keyword_value = keyword_value;
    if (args) {
        s->args = args->items;
        s->nargs = args->n;
    }
    if (body) {
        s->has_body = true;
        s->body_loc = body_loc;
        s->body = body->items;
        s->nbody = body->n;
    }
    return s;
}

AstModel *ast_model(Arena *a, const char *file, AstStmtList *stmts) {
    AstModel *m = arena_alloc(a, sizeof *m);
    m->file = file;
    m->stmts = stmts->items;
    m->nstmts = stmts->n;
    return m;
}

/* ----------------------------------------------------------------- dump */

static void dump_value(FILE *out, const AstValue *v) {
    switch (v->kind) {
    case AV_NUMBER: fprintf(out, "num(%s)", v->text); break;
    case AV_IDENT: fprintf(out, "ident(%s)", v->ident.name); break;
    case AV_SHAPE: fprintf(out, "shape(%s)", v->text); break;
    }
}

static void dump_stmt(FILE *out, const AstStmt *s, int depth) {
    fprintf(out, "%*s%d:%d %s", 2 * depth, "", s->loc.line, s->loc.col, s->keyword);
    if (s->keyword_value) {
        fputc('=', out);
        dump_value(out, s->keyword_value);
    }
    for (int i = 0; i < s->nargs; i++) {
        fputc(' ', out);
        if (s->args[i]->key) fprintf(out, "%s=", s->args[i]->key);
        dump_value(out, s->args[i]->value);
    }
    if (!s->has_body) {
        fputc('\n', out);
        return;
    }
    fputs(" {\n", out);
    for (int i = 0; i < s->nbody; i++)
        dump_stmt(out, s->body[i], depth + 1);
    fprintf(out, "%*s}\n", 2 * depth, "");
}

void ast_dump(FILE *out, const AstModel *m) {
    for (int i = 0; i < m->nstmts; i++)
        dump_stmt(out, m->stmts[i], 0);
}
