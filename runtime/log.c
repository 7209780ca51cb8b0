/* log.c — the runtime's messages and clock.
 *
 * Errors and warnings go to stderr as "error: ..." / "warning: ..."; the
 * text of the last error is kept (per thread), so tests can check what was
 * reported without reading stderr. Under MPI (aec_log_rank) an error
 * names its rank and only rank 0 warns, since every rank would say the
 * same. The bottom layer: it uses no other module, and every module
 * reports through it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "rt.h"

static _Thread_local char last_error[1024];
static int quiet_errors;
static int log_rank, log_size = 1;

static void vreport(const char *kind, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(last_error, sizeof last_error, fmt, copy);
    va_end(copy);
    if (quiet_errors) return;
    if (log_size > 1)
        fprintf(stderr, "%s: rank %d: %s\n", kind, log_rank, last_error);
    else
        fprintf(stderr, "%s: %s\n", kind, last_error);
}

void aec_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("error", fmt, ap);
    va_end(ap);
}

/* Warnings do not replace the last error. */
void aec_warn(const char *fmt, ...) {
    if (quiet_errors || log_rank > 0) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *aec_last_error(void) {
    return last_error;
}

void aec_set_quiet_errors(int quiet) {
    quiet_errors = quiet;
}

void aec_log_rank(int rank, int size) {
    log_rank = rank;
    log_size = size;
}

double aec_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
