/* golden.h — golden-file testing for the cmocka suites (header-only).
 *
 * A golden directory holds inputs (`NAME.ae`) beside their expected outputs
 * (`NAME.ast`, `NAME.err`, `NAME.shapes`, ...). A suite renders its output
 * to a string and golden_expect() compares it with the file; with
 * AEC_UPDATE_GOLDEN=1 in the environment it (re)writes the file instead, so
 * `git diff tests/golden` reviews a change. Paths are relative to the repo
 * root (AEC_SOURCE_DIR), and diagnostics name the spec by that relative
 * path, so goldens do not depend on where the repo lives.
 * Diagnostics are captured in memory through diag_set_stream.
 */
#ifndef AEC_GOLDEN_H
#define AEC_GOLDEN_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

#ifndef AEC_SOURCE_DIR
#define AEC_SOURCE_DIR "."
#endif

static inline char *golden_path(const char *rel) {
    size_t n = strlen(AEC_SOURCE_DIR) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", AEC_SOURCE_DIR, rel);
    return p;
}

/* The text of a repo file (malloc'd), or NULL. */
static inline char *golden_read(const char *rel) {
    char *path = golden_path(rel);
    char *text = read_file_text(path, NULL);
    free(path);
    return text;
}

static inline bool golden_updating(void) {
    const char *u = getenv("AEC_UPDATE_GOLDEN");
    return u && *u && strcmp(u, "0") != 0;
}

/* Compares `actual` with the golden file `rel`; prints both on a mismatch.
 * Returns true if they agree (or the file was rewritten). */
static inline bool golden_expect(const char *rel, const char *actual) {
    if (golden_updating()) {
        char *path = golden_path(rel);
        FILE *f = fopen(path, "wb");
        if (f) {
            fputs(actual, f);
            fclose(f);
        }
        free(path);
        return f != NULL;
    }
    char *expected = golden_read(rel);
    bool same = expected && strcmp(expected, actual) == 0;
    if (!same) {
        fprintf(stderr, "golden mismatch: %s (AEC_UPDATE_GOLDEN=1 rewrites it)\n", rel);
        fprintf(stderr, "--- expected\n%s--- actual\n%s---\n", expected ? expected : "(missing)\n",
                actual);
    }
    free(expected);
    return same;
}

static inline int golden_cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names (without `ext`) of the files in repo directory `dir` that end
 * in `ext`, sorted; a NULL-terminated malloc'd array. */
static inline char **golden_list(const char *dir, const char *ext) {
    char *path = golden_path(dir);
    DIR *d = opendir(path);
    free(path);
    int n = 0, cap = 16;
    char **names = malloc(sizeof(char *) * (size_t)cap);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name), elen = strlen(ext);
        if (len <= elen || strcmp(e->d_name + len - elen, ext) != 0) continue;
        if (n + 1 == cap) names = realloc(names, sizeof(char *) * (size_t)(cap *= 2));
        names[n] = strndup(e->d_name, len - elen);
        n++;
    }
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof(char *), golden_cmp_names);
    names[n] = NULL;
    return names;
}

static inline void golden_free_list(char **names) {
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

/* Diagnostics (and anything else) written to a memory stream. */
typedef struct Capture {
    FILE *f;
    char *buf;
    size_t len;
} Capture;

static inline void capture_begin(Capture *c) {
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    diag_set_stream(c->f);
    diag_reset();
}

/* Ends the capture; returns the text (malloc'd). */
static inline char *capture_end(Capture *c) {
    diag_set_stream(NULL);
    fclose(c->f);
    return c->buf;
}

#endif
