/* fuzz_data.c — libFuzzer target: the data loaders (IDX, .gz, .npy, CSV).
 *
 * Takes arbitrary bytes; the first byte picks the file's name (and so the
 * loader the extension selects, or detection by content), the element type
 * and a sample limit; the rest is the file. Writes it to a private
 * temporary directory in /dev/shm and loads it as `aec train` does: aec_data_load, then
 * the value checks (NaN as missing or refused), and as labels. A crash, a
 * sanitizer report, a leak or an allocation beyond libFuzzer's limit is a
 * finding; a refused file is expected (errors are kept off stderr).
 * Built and run by `make fuzz` (docs/reliability.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"d",     "d.idx",    "d-ubyte",  "d.npy",    "d.csv",
                                    "d.tsv", "d.idx.gz", "d.npy.gz", "d.csv.gz", "d.gz"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/dev/shm/aec-fuzz-data.%ld", (long)getpid());
        mkdir(dir, 0700);
        aec_set_quiet_errors(1);
    }
    if (size < 1) return 0;
    uint8_t sel = data[0];
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, names[(sel & 15) % (sizeof names / sizeof names[0])]);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    if (fclose(f)) abort();

    int dtype = sel & 16 ? AEC_F64 : AEC_F32;
    int64_t limit = sel & 32 ? 3 : 0;
    aec_data d;
    if (aec_data_load(path, dtype, limit, sel & 64 ? AEC_DATA_RAW : 0, &d) == AEC_OK) {
        aec_data_check_dim(path, &d, d.dim, "the fuzzer");
        aec_data_check_values(path, &d, sel & 128);
        aec_data_free(&d);
    }
    int64_t n;
    int32_t *labels = NULL;
    if (aec_labels_load(path, &n, &labels) == AEC_OK) free(labels);
    unlink(path);
    return 0;
}
