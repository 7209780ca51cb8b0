/* file.c — files that replace an old one only once complete.
 *
 * aec_atomic_begin opens `path.tmp.PID` beside `path`; the caller writes
 * with stdio; aec_atomic_commit checks every write's error, flushes, fsyncs
 * and renames the temporary over `path` (then fsyncs the directory), so a
 * crash or a full disk leaves the previous file intact; a temporary left
 * by a process that died is removed by the next writer of the same path.
 * Checkpoints, .npy outputs and PNGs are all written this way. Uses log.c
 * only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

/* Temporaries `path.tmp.PID` of processes that died before renaming them
 * (SIGKILL, a crash, a power cut) are removed by the next writer of `path`;
 * one whose PID is alive may be another writer's, and stays. */
static void remove_stale_temporaries(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path + 1) : 1, slash ? path : ".");
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(n + blen + 5, &end, 10);
        if (*end || end == n + blen + 5 || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to know */
        char stale[4096 + 256];
        snprintf(stale, sizeof stale, "%s%s", slash ? dir : "", n);
        if (unlink(stale) == 0) aec_warn("%s: removed %s, left by a process that died", path, n);
    }
    closedir(d);
}

int aec_atomic_begin(aec_atomic *a, const char *path) {
    remove_stale_temporaries(path);
    size_t len = strlen(path) + 32;
    a->path = path;
    a->tmp = malloc(len);
    if (!a->tmp) return AEC_ENOMEM;
    snprintf(a->tmp, len, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp, "wb");
    if (!a->f) {
        aec_error("%s: cannot create %s: %s", path, a->tmp, strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        return AEC_EIO;
    }
    return AEC_OK;
}

void aec_atomic_abort(aec_atomic *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    a->f = NULL;
    a->tmp = NULL;
}

/* The rename is durable only once the directory entry is on disk too. */
static void sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path > 0 ? slash - path : 1), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse, the data is safe anyway */
        close(fd);
    }
}

int aec_atomic_commit(aec_atomic *a) {
    /* A failed fwrite sets the stream's error flag; fflush and fsync catch
     * what was still buffered (a full disk, a file size limit). */
    int failed = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    if (fclose(a->f) != 0 && !failed) failed = 1, err = errno;
    a->f = NULL;
    /* Test hook (tests/e2e/killtest.sh): a pause with the temporary
     * complete but not yet renamed, so that kills land in the write. */
    const char *delay = getenv("AEC_TEST_COMMIT_DELAY_MS");
    if (!failed && delay && *delay) usleep((useconds_t)atoi(delay) * 1000);
    if (!failed && rename(a->tmp, a->path) != 0) failed = 1, err = errno;
    if (failed) {
        aec_error("%s: writing failed: %s (an older %s, if any, is unchanged)", a->path,
                  strerror(err ? err : EIO), a->path);
        aec_atomic_abort(a);
        return AEC_EIO;
    }
    sync_dir(a->path);
    free(a->tmp);
    a->tmp = NULL;
    return AEC_OK;
}
