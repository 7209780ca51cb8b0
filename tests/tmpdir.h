/* tmpdir.h — the runtime suites' group fixture: a fresh temporary directory
 * `dir` for the files a suite writes, removed afterwards, and the runtime's
 * error messages kept off stderr (the tests read them with aec_last_error). */
#ifndef AEC_TMPDIR_H
#define AEC_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[256];

static inline int tmpdir_setup(const char *suite) {
    snprintf(dir, sizeof dir, "/tmp/aec_test_%s_XXXXXX", suite);
    if (!mkdtemp(dir)) return -1;
    aec_set_quiet_errors(1);
    return 0;
}

static inline int tmpdir_teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

#endif
