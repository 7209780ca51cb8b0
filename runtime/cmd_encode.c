/* cmd_encode.c — `encode`: the code of every sample of --data, as an .npy (-o). */
#include "cli.h"

int aec_cmd_encode(const aec_command *c, const aec_model *m, const aec_args *a) {
    return aec_map_batches(c, m, a, 0);
}
