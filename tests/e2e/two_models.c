/* two_models.c — two emitted models linked into one program (run by
 * tests/e2e/emit.sh), with nothing but libc, libm and BLAS: the objects of
 * specs/linear.ae (lin.o, parameters from its init) and of
 * specs/fmnist_dense.ae with embedded weights (fm.o). Their symbols do not
 * clash, and each computes its own code. Prints `ok`/`not ok` lines.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm.h"
#include "lin.h"

static int fails;
static void check(int cond, const char *what) {
    printf("%s - %s\n", cond ? "ok" : "not ok", what);
    if (!cond) fails++;
}

int main(void) {
    static float x[LINEAR_INPUT_SIZE], lin_params[LINEAR_PARAM_COUNT];
    float lin_code[LINEAR_CODE_SIZE], fm_code[FMNIST_DENSE_CODE_SIZE];
    for (int i = 0; i < LINEAR_INPUT_SIZE; i++)
        x[i] = (float)(i % 28) / 28.0f;
    size_t ws_size = linear_workspace_size(1) > fmnist_dense_workspace_size(1)
                         ? linear_workspace_size(1)
                         : fmnist_dense_workspace_size(1);
    void *ws = malloc(ws_size);

    check(linear_init(lin_params, 7) == AEC_OK &&
              linear_encode(lin_params, x, lin_code, 1, ws) == AEC_OK,
          "the linear model encodes");
    check(fmnist_dense_encode_embedded(x, fm_code, 1, ws) == AEC_OK,
          "the embedded fmnist_dense model encodes");
    check(strcmp(linear_model.name, "linear") == 0 &&
              strcmp(fmnist_dense_model.name, "fmnist_dense") == 0 &&
              (void (*)(void))linear_model.encode == (void (*)(void))linear_encode &&
              (void (*)(void))fmnist_dense_model.encode == (void (*)(void))fmnist_dense_encode,
          "each model's table names its own model and entry points");

    /* The linear code by hand, W x + b, finding W and b in the symbol table. */
    const aec_tensor_info *w = &linear_model.tensors[0], *b = &linear_model.tensors[1];
    check(!strcmp(w->name, "encoder.0.weight") && w->shape[0] == LINEAR_CODE_SIZE &&
              w->shape[1] == LINEAR_INPUT_SIZE && !strcmp(b->name, "encoder.0.bias"),
          "the symbol table lists encoder.0.weight [16, 784] and its bias");
    double err = 0;
    for (int j = 0; j < LINEAR_CODE_SIZE; j++) {
        double s = lin_params[b->offset + j];
        for (int i = 0; i < LINEAR_INPUT_SIZE; i++)
            s += (double)lin_params[w->offset + j * LINEAR_INPUT_SIZE + i] * x[i];
        err = fabs(s - lin_code[j]) > err ? fabs(s - lin_code[j]) : err;
    }
    check(err < 1e-4, "the linear model's code is W x + b");
    free(ws);
    return fails ? 1 : 0;
}
