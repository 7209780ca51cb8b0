/* fuzz_aez.c — libFuzzer target: the .aez compressed-codes container reader.
 *
 * Takes arbitrary bytes as a .aez file. A container ends in the CRC-32 of
 * everything before it, which random bytes almost never match, so the
 * target fixes it for most inputs (those whose size is a multiple of 16
 * are read as given) to reach the header and size checks behind it. Reads the file as `aec
 * decompress` does (aec_aez_read, no model) and dequantizes what it accepts, in both element types.
 * A crash, a sanitizer report, a leak or an allocation beyond libFuzzer's limit is a finding; a
 * refused file is expected. Built and run by `make fuzz` (docs/reliability.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "apps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/dev/shm/aec-fuzz-aez.%ld", (long)getpid());
        aec_set_quiet_errors(1);
    }
    unsigned char *buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    if (size >= 4 && size % 16 != 0) {
        uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(size - 4));
        memcpy(buf + size - 4, &crc, 4); /* little-endian, as aez.c writes it */
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(buf, 1, size, f) != size) abort();
    if (fclose(f)) abort();
    free(buf);
    aec_aez z;
    if (aec_aez_read(path, NULL, &z) == AEC_OK) {
        int64_t count = z.n * z.code_size;
        double *out = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
        if (!out) abort();
        aec_aez_dequantize(&z, AEC_F32, out);
        aec_aez_dequantize(&z, AEC_F64, out);
        free(out);
        aec_aez_free(&z);
    }
    unlink(path);
    return 0;
}
