/* A Bison parser, made by GNU Bison 3.8.2.  */

/* Bison interface for Yacc-like parsers in C

   Copyright (C) 1984, 1989-1990, 2000-2015, 2018-2021 Free Software Foundation,
   Inc.

   This program is free software: you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation, either version 3 of the License, or
   (at your option) any later version.

   This program is distributed in the hope that it will be useful,
   but WITHOUT ANY WARRANTY; without even the implied warranty of
   MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
   GNU General Public License for more details.

   You should have received a copy of the GNU General Public License
   along with this program.  If not, see <https://www.gnu.org/licenses/>.  */

/* As a special exception, you may create a larger work that contains
   part or all of the Bison parser skeleton and distribute that work
   under terms of your choice, so long as that work isn't itself a
   parser generator using the skeleton or a modified version thereof
   as a parser skeleton.  Alternatively, if you modify or redistribute
   the parser skeleton itself, you may (at your option) remove this
   special exception, which will cause the skeleton and the resulting
   Bison output files to be licensed under the GNU General Public
   License without this special exception.

   This special exception was added by the Free Software Foundation in
   version 2.2 of Bison.  */

/* DO NOT RELY ON FEATURES THAT ARE NOT DOCUMENTED in the manual,
   especially those whose name start with YY_ or yy_.  They are
   private implementation details that can be changed or removed.  */

#ifndef YY_YY_BUILD_EMIT_GRAMMAR_PARSER_H_INCLUDED
# define YY_YY_BUILD_EMIT_GRAMMAR_PARSER_H_INCLUDED
/* Debug traces.  */
#ifndef YYDEBUG
# define YYDEBUG 0
#endif
#if YYDEBUG
extern int yydebug;
#endif
/* "%code requires" blocks.  */
#line 24 "grammar/parser.y"

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

#line 68 "build-emit/grammar/parser.h"

/* Token kinds.  */
#ifndef YYTOKENTYPE
# define YYTOKENTYPE
  enum yytokentype
  {
    YYEMPTY = -2,
    YYEOF = 0,                     /* "end of file"  */
    YYerror = 256,                 /* error  */
    YYUNDEF = 257,                 /* "invalid token"  */
    IDENT = 258,                   /* "identifier"  */
    NUMBER = 259,                  /* "number"  */
    SHAPE = 260,                   /* "shape"  */
    NEWLINE = 261                  /* "end of line"  */
  };
  typedef enum yytokentype yytoken_kind_t;
#endif

/* Value type.  */
#if ! defined YYSTYPE && ! defined YYSTYPE_IS_DECLARED
union YYSTYPE
{
#line 66 "grammar/parser.y"

    const char *str;
    AstValue *value;
    AstArg *arg;
    AstArgList *args;
    AstStmt *stmt;
    AstStmtList *stmts;

#line 100 "build-emit/grammar/parser.h"

};
typedef union YYSTYPE YYSTYPE;
# define YYSTYPE_IS_TRIVIAL 1
# define YYSTYPE_IS_DECLARED 1
#endif

/* Location type.  */
#if ! defined YYLTYPE && ! defined YYLTYPE_IS_DECLARED
typedef struct YYLTYPE YYLTYPE;
struct YYLTYPE
{
  int first_line;
  int first_column;
  int last_line;
  int last_column;
};
# define YYLTYPE_IS_DECLARED 1
# define YYLTYPE_IS_TRIVIAL 1
#endif




int yyparse (yyscan_t scanner, ParseCtx *ctx);

/* "%code provides" blocks.  */
#line 43 "grammar/parser.y"

/* A bison location (first column inclusive, last exclusive) as a Loc; a
 * span over several lines keeps only its start. */
static inline Loc parse_loc(const ParseCtx *ctx, YYLTYPE l) {
    int len = l.last_line == l.first_line ? l.last_column - l.first_column : 1;
    return (Loc){ctx->file, l.first_line, l.first_column, len > 0 ? len : 1};
}

#line 137 "build-emit/grammar/parser.h"

#endif /* !YY_YY_BUILD_EMIT_GRAMMAR_PARSER_H_INCLUDED  */
