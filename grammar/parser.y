/* parser.y — the grammar of .ae specs: tokens in, an AST (compiler/ast.h) out.
 *
 * The grammar is generic on purpose: every statement is
 *     keyword args... [{ statements }]      (or `keyword=value args...`)
 * and an argument is a value or `key=value`. It knows no keyword, so a typo
 * is not a syntax error here but an "unknown keyword ..., did you mean ...?"
 * from the checker, located at the word. Statements end at a newline or `;`;
 * blank lines and extra separators are allowed anywhere.
 *
 * Actions only call AST constructors. Syntax errors are reported through
 * diag_error at file:line:col; `stmt: error` resynchronizes at the next
 * separator so several can be reported; parse_spec then returns NULL.
 */

%define api.pure full
%define parse.error detailed
%define parse.lac full
%locations
%expect 0

%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "aec.h"

/* The reentrant scanner's handle, declared the way flex's own header does
 * so that parser.h and lexer.h may be included in either order. */
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* State shared by the parser and the scanner (as the scanner's extra). */
typedef struct ParseCtx {
    Arena *arena;
    const char *file;
    int line, col;     /* the scanner's position: where the next token starts */
    AstModel *result;
} ParseCtx;
}

%code provides {
/* A bison location (first column inclusive, last exclusive) as a Loc; a
 * span over several lines keeps only its start. */
static inline Loc parse_loc(const ParseCtx *ctx, YYLTYPE l) {
    int len = l.last_line == l.first_line ? l.last_column - l.first_column : 1;
    return (Loc){ctx->file, l.first_line, l.first_column, len > 0 ? len : 1};
}
}

%code {
#include "lexer.h"

#define A (ctx->arena)
#define LOC(l) parse_loc(ctx, (l))
/* Where a span starts, one character long: the `{` of a block. */
#define AT(l) ((Loc){ctx->file, (l).first_line, (l).first_column, 1})

static void yyerror(YYLTYPE *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg) {
    (void)scanner;
    diag_error(parse_loc(ctx, *loc), "%s", msg);
}
}

%union {
    const char *str;
    AstValue *value;
    AstArg *arg;
    AstArgList *args;
    AstStmt *stmt;
    AstStmtList *stmts;
}

%token YYEOF 0 "end of file"
%token <str> IDENT "identifier"
%token <value> NUMBER "number"
%token <value> SHAPE "shape"
%token NEWLINE "end of line"

%type <stmts> stmts stmt_list body_opt
%type <stmt> stmt
%type <args> args
%type <arg> arg
%type <value> value

%%

file
    : stmts                         { ctx->result = ast_model(A, ctx->file, $1); }
    ;

/* Statements with any separators before, between and after them. */
stmts
    : seps_opt                      { $$ = ast_stmt_list(A); }
    | seps_opt stmt_list seps_opt   { $$ = $2; }
    ;

stmt_list
    : stmt                          { $$ = ast_stmt_push(A, ast_stmt_list(A), $1); }
    | stmt_list seps stmt           { $$ = ast_stmt_push(A, $1, $3); }
    ;

seps_opt
    : %empty
    | seps
    ;

seps
    : sep
    | seps sep
    ;

sep
    : NEWLINE
    | ';'
    ;

stmt
    : IDENT args body_opt
        { $$ = ast_stmt(A, LOC(@1), $1, NULL, $2, $3, AT(@3)); }
    | IDENT '=' value args body_opt
        { $$ = ast_stmt(A, LOC(@1), $1, $3, $4, $5, AT(@5)); }
    | error                         { $$ = NULL; }
    ;

body_opt
    : %empty                        { $$ = NULL; }
    | '{' stmts '}'                 { $$ = $2; }
    ;

args
    : %empty                        { $$ = ast_arg_list(A); }
    | args arg                      { $$ = ast_arg_push(A, $1, $2); }
    ;

arg
    : value                         { $$ = ast_arg(A, LOC(@1), NULL, LOC(@1), $1); }
    | IDENT '=' value               { $$ = ast_arg(A, LOC(@$), $1, LOC(@1), $3); }
    ;

value
    : NUMBER
    | SHAPE
    | IDENT                         { $$ = ast_ident(A, LOC(@1), $1); }
    ;

%%

AstModel *parse_spec(Arena *a, const char *file, const char *text) {
    diag_register_source(file, text);
    ParseCtx ctx = {.arena = a, .file = file, .line = 1, .col = 1};
    yyscan_t scanner;
    if (yylex_init_extra(&ctx, &scanner) != 0) internal_error("cannot create the scanner");
    YY_BUFFER_STATE buf = yy_scan_string(text, scanner);
    int errors = diag_error_count();
    int status = yyparse(scanner, &ctx);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    if (status == 2) internal_error("parser stack exhausted");
    if (status != 0 || diag_error_count() > errors) return NULL;
    return ctx.result;
}
