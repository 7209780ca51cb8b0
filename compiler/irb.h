/* irb.h — shorthands for IR arithmetic, for the files that write formulas
 * as graphs (forward.c, optim.c, autodiff.c). Each expects a `Graph *g` in
 * scope; ir_binary folds constants and the identities x·1, x+0. */
#ifndef AEC_IRB_H
#define AEC_IRB_H

#include "aec.h"

#define K(v) ir_const(g, (v))
#define ADD(a, b) ir_binary(g, IR_ADD, a, b)
#define SUB(a, b) ir_binary(g, IR_SUB, a, b)
#define MUL(a, b) ir_binary(g, IR_MUL, a, b)
#define DIV(a, b) ir_binary(g, IR_DIV, a, b)

#endif
