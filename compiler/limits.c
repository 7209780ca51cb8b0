/* limits.c — how large a spec may be, and size arithmetic that cannot overflow.
 *
 * Every size the checker computes from a spec (parameter counts, FLOPs,
 * activations, bytes) goes through lim_mul/lim_add: non-negative longs that
 * saturate at LIM_INF instead of overflowing, so a spec asking for more than
 * a long can count is still checked, and refused, with its size named.
 * The limits themselves (docs/reliability.md, "Limits"):
 *   - one layer's output, per sample: at most INT_MAX elements (check.c);
 *   - the params block and the activations of one training batch: at most
 *     LIM_BYTES, and at most the machine's physical memory (limits_memory).
 * Takes numbers; produces numbers and the text that names them.
 */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "aec.h"

long lim_mul(long a, long b) {
    long r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return LIM_INF;
    return r;
}

long lim_add(long a, long b) {
    long r;
    if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return LIM_INF;
    return r;
}

long limits_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? lim_mul(pages, size) : LIM_INF;
}

/* 1234567 -> "1,234,567": counts for the table and messages. */
char *lim_commas(Arena *a, long n) {
    char digits[32], out[48];
    int len = snprintf(digits, sizeof digits, "%ld", n < 0 ? -n : n), k = 0;
    if (n < 0) out[k++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
    return arena_strdup(a, out);
}

/* "1.5 GiB", "256 TiB": bytes for a message. */
char *lim_bytes_str(Arena *a, long bytes) {
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes == LIM_INF) return arena_printf(a, "more than %ld bytes", LONG_MAX);
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < countof(units) - 1)
        v /= 1024, u++;
    return u ? arena_printf(a, "%.1f %s", v, units[u]) : arena_printf(a, "%ld bytes", bytes);
}
