/* fuzz_ckpt.c — libFuzzer target: the safetensors checkpoint loader.
 *
 * Takes arbitrary bytes as a checkpoint file and loads it, with every
 * optional output (optimizer state, live params, training state), into a
 * fixed model of two tensors — "encoder.0.weight" [4, 3] and
 * "encoder.0.bias" [4] — as `aec train --resume` and `--embed-weights` do.
 * A crash, a sanitizer report, a leak or a read outside the buffers is a
 * finding; a refused file is expected (errors are kept off stderr).
 * Built and run by `make fuzz` (docs/reliability.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const aec_tensor_info tensors[] = {
    {.name = "encoder.0.weight",
     .ndim = 2,
     .shape = {4, 3},
     .kind = AEC_TENSOR_WEIGHT,
     .offset = 0,
     .numel = 12},
    {.name = "encoder.0.bias",
     .ndim = 1,
     .shape = {4},
     .kind = AEC_TENSOR_BIAS,
     .offset = 12,
     .numel = 4},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/dev/shm/aec-fuzz-ckpt.%ld", (long)getpid());
        aec_set_quiet_errors(1);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f)) abort();
    for (int dtype = AEC_F32; dtype <= AEC_F64; dtype++) {
        aec_model m = {.abi_version = AEC_ABI_VERSION,
                       .dtype = dtype,
                       .name = "fuzz",
                       .param_count = 16,
                       .trainable_count = 16,
                       .opt_state_count = 32,
                       .n_tensors = 2,
                       .tensors = tensors};
        double weights[16], opt[32], live[16];
        aec_train_state st;
        int has;
        aec_ckpt_load(path, &m, weights, opt, live, &st, &has);
    }
    unlink(path);
    return 0;
}
