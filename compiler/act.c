/* act.c — the activations' facts: names and parameters.
 *
 * Takes an ActKind; gives its spelling in specs and checkpoints, whether it
 * takes a parameter (leaky_relu's slope, elu's alpha) and that parameter's
 * default (PyTorch's).
 */
#include "aec.h"

const char *const act_names[ACT_COUNT] = {
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus", "gelu",
};

bool act_takes_param(ActKind a) {
    return a == ACT_LEAKY_RELU || a == ACT_ELU;
}

double act_default_alpha(ActKind a) {
    return a == ACT_LEAKY_RELU ? 0.01 : a == ACT_ELU ? 1.0 : 0.0;
}
