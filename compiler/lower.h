/* lower.h — what the lowering's files share (the compiler's API is the
 * lower section of aec.h).
 *
 *   forward.c    the layers' forward ops, training or inference mode
 *   objective.c  the loss, corruption, the variational code, the
 *                regularizer terms and lower_metrics; pretraining stages
 *   optim.c      the optimizer update and its state slots
 *   lower.c      lower_model_stage: which of them an entry point runs
 * forward.c uses none of the others; objective.c uses forward.c; lower.c
 * uses all three.
 */
#ifndef AEC_LOWER_H
#define AEC_LOWER_H

#include "aec.h"

typedef struct Lower {
    Graph *g;
    const Model *m;
    bool training;
    int *act; /* per layer: the IR_ACT node of its activation, or -1 (contractive) */
} Lower;

/* RAND streams that are not a layer's (a layer's is its index). */
enum { STREAM_CORRUPT = 0x8000, STREAM_SALT = 0x8001, STREAM_EPS = 0x8002 };

/* ------------------------------------------------------------- forward.c */

int rand_node(Lower *L, IrType t, RandKind kind, double p, int use);
int param(Lower *L, int tensor);
int set_loc(Lower *L, int node, Loc loc); /* give node the spec line loc, if it has none */
int activation(Lower *L, int x, ActKind act, double alpha, Loc loc);
int dense(Lower *L, const Layer *ly, int x);
/* Layers [from, to) of the model on x, in L's mode; each activation's node in L->act. */
int layers(Lower *L, int x, int from, int to);

/* ----------------------------------------------------------- objective.c */

/* The train or eval graph's loss (and eval's reconstruction), as outputs. */
void model_objective(Lower *L);
/* Pretraining stage k's shallow autoencoder and its loss. */
void stage_objective(Lower *L, int k);

#endif
