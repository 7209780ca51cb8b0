/* cmd_decode.c — `decode`: the decoding of every code of --codes, as an .npy (-o). */
#include "cli.h"

int aec_cmd_decode(const aec_command *c, const aec_model *m, const aec_args *a) {
    return aec_map_batches(c, m, a, 1);
}
