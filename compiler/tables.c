/* tables.c — the facts of the spec's words, as arrays the compiler reads.
 *
 * Takes the X-macro tables (ACTIVATIONS, CORRUPTIONS, INITS in aec.h;
 * AEC_OPTIMIZERS in runtime/aec.h, shared with the runtime); produces them
 * as arrays by enum: names, each activation's parameter and its default,
 * whether f' follows from y and whether f'' is 0, each optimizer's
 * PyTorch defaults, keys and state slots. check, lower, autodiff and
 * codegen read these rather than a switch of their own.
 */
#include "aec.h"

const char *const act_names[ACT_COUNT] = {
#define ACT(e, name, param, alpha, from_y, linear) name,
    ACTIVATIONS(ACT)
#undef ACT
};

const ActInfo act_info[ACT_COUNT] = {
#define ACT(e, name, param, alpha, from_y, linear) {param, alpha, FROM_Y_##from_y, linear},
    ACTIVATIONS(ACT)
#undef ACT
};

bool act_takes_param(ActKind a) {
    return act_info[a].param != NULL;
}

double act_default_alpha(ActKind a) {
    return act_info[a].alpha;
}

bool act_prime_from_y(ActKind act, double alpha) {
    return act_info[act].from_y == FROM_Y_ALWAYS ||
           (act_info[act].from_y == FROM_Y_IF_POSITIVE && alpha > 0);
}

const char *const corrupt_names[CORRUPT_COUNT] = {
#define X(e, name) name,
    CORRUPTIONS(X)
#undef X
};

const char *const init_names[INIT_COUNT] = {
#define X(e, name) name,
    INITS(X)
#undef X
};

#define STRIP_(...) __VA_ARGS__
const OptInfo opt_info[AEC_N_OPTIMIZERS] = {
#define X(e, name, lr, momentum, beta1, beta2, eps, decay, keys, slots, momentum_slot)             \
    {name, lr, momentum, beta1, beta2, eps, decay, {STRIP_ keys}, slots, momentum_slot},
    AEC_OPTIMIZERS(X)
#undef X
};
