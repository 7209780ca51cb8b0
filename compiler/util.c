/* util.c — the compiler's plumbing: arenas, diagnostics, suggestions, files.
 *
 * Takes nothing from the pipeline; every stage uses it.
 * - Arena: a bump allocator. Memory is zeroed, aligned for any type, and
 *   freed all at once; nothing is ever freed per node.
 * - Diagnostics: `file:line:col: error: msg`, then the source line and a
 *   `^~~~` underline of the span (cproc/gcc style). The source text of each
 *   file is registered (not copied: it must outlive the diagnostics) so the
 *   line can be shown. Errors are counted so a stage can keep going and the
 *   driver can stop afterwards.
 * - Internal errors are aec's bugs: they say where in aec and exit 70
 *   (EX_SOFTWARE), never looking like the user's mistake.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../runtime/rt.h" /* aec_edit_distance: the runtime is linked in */
#include "aec.h"

/* ---------------------------------------------------------------- arena */

enum { ARENA_BLOCK = 64 * 1024 };

typedef struct ArenaBlock {
    struct ArenaBlock *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
} ArenaBlock;

struct Arena {
    ArenaBlock *head; /* the block being filled; older blocks follow */
};

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (!p) internal_error("out of memory (%zu bytes)", n * size);
    return p;
}

static ArenaBlock *arena_block(size_t size) {
    ArenaBlock *b = xcalloc(1, sizeof(ArenaBlock) + size);
    b->size = size;
    return b;
}

Arena *arena_new(void) {
    return xcalloc(1, sizeof(Arena));
}

void *arena_alloc(Arena *a, size_t size) {
    const size_t align = _Alignof(max_align_t);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0) size = align;
    ArenaBlock *b = a->head;
    if (!b || b->size - b->used < size) {
        /* A large request gets a block of its own, linked behind the current
         * one so the current block's free space is not wasted. */
        if (size > ARENA_BLOCK / 4 && b) {
            ArenaBlock *big = arena_block(size);
            big->next = b->next;
            b->next = big;
            big->used = size;
            return big->data;
        }
        b = arena_block(size > ARENA_BLOCK ? size : ARENA_BLOCK);
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p; /* zeroed: blocks come from calloc and are never reused */
}

char *arena_strdup(Arena *a, const char *s) {
    size_t n = strlen(s);
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    return p;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ensure(n >= 0);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free(Arena *a) {
    if (!a) return;
    for (ArenaBlock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a);
}

/* ---------------------------------------------------------- diagnostics */

typedef struct Source {
    const char *file, *text;
} Source;

static Source *sources;
static int nsources, cap_sources;
static int error_count;
static FILE *diag_stream; /* NULL: stderr (not a constant, so set lazily) */

void diag_register_source(const char *file, const char *text) {
    if (nsources == cap_sources) {
        cap_sources = cap_sources ? 2 * cap_sources : 8;
        sources = realloc(sources, sizeof(*sources) * (size_t)cap_sources);
        if (!sources) internal_error("out of memory");
    }
    sources[nsources++] = (Source){file, text};
}

/* The newest registration wins, so a test may reuse a file name. */
static const char *source_text(const char *file) {
    for (int i = nsources - 1; i >= 0; i--)
        if (sources[i].file == file || strcmp(sources[i].file, file) == 0) return sources[i].text;
    return NULL;
}

int diag_error_count(void) {
    return error_count;
}

void diag_reset(void) {
    error_count = 0;
}

void diag_set_stream(FILE *f) {
    diag_stream = f;
}

/* Prints `  12 | the line` and `     |   ^~~~` for loc, if its line is known. */
static void print_source_line(FILE *out, Loc loc) {
    const char *p = source_text(loc.file);
    if (!p || loc.line < 1) return;
    for (int line = 1; line < loc.line; line++) {
        p = strchr(p, '\n');
        if (!p) return; /* past the end, e.g. "unexpected end of file" */
        p++;
    }
    int n = (int)strcspn(p, "\n");
    if (n > 0 && p[n - 1] == '\r') n--;
    fprintf(out, "%5d | %.*s\n", loc.line, n, p);
    /* Tabs are copied so the caret lines up however the terminal shows them. */
    fprintf(out, "      | ");
    int col = loc.col < 1 ? 1 : loc.col;
    for (int i = 0; i < col - 1 && i < n; i++)
        fputc(p[i] == '\t' ? '\t' : ' ', out);
    int len = loc.len < 1 ? 1 : loc.len;
    if (col - 1 + len > n && n >= col) len = n - col + 1; /* keep it on this line */
    fputc('^', out);
    for (int i = 1; i < len; i++)
        fputc('~', out);
    fputc('\n', out);
}

static void vdiag(const char *kind, Loc loc, const char *fmt, va_list ap) {
    FILE *out = diag_stream ? diag_stream : stderr;
    if (!loc.file)
        fprintf(out, "aec: %s: ", kind);
    else if (loc.line < 1)
        fprintf(out, "%s: %s: ", loc.file, kind);
    else
        fprintf(out, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    if (loc.file) print_source_line(out, loc);
    fflush(out);
}

void diag_error(Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdiag("error", loc, fmt, ap);
    va_end(ap);
    error_count++;
}

void diag_note(Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdiag("note", loc, fmt, ap);
    va_end(ap);
}

/* ----------------------------------------------------------- suggestion */

const char *suggest(const char *word, const char *const *candidates, int n) {
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < n; i++) {
        if (!candidates[i]) continue;
        /* The runtime's distance: case-insensitive, a swap of neighbours costs 1. */
        int d = aec_edit_distance(word, candidates[i], AEC_EDIT_SWAP | AEC_EDIT_NOCASE);
        /* Close means: a third of the candidate's letters at most (one for
         * short words), and not a rewrite of the whole word. */
        int len = (int)strlen(candidates[i]);
        int limit = len <= 3 ? 1 : len / 3 < 2 ? 2 : len / 3;
        if (d <= limit && d < (int)strlen(word) && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ------------------------------------------------------- internal errors */

_Noreturn void internal_error_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fprintf(stderr, "internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(70);
}

/* ------------------------------------------------------------- binary16 */

uint16_t f16_from_double(double x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (isnan(x)) return sign | 0x7e00;
    if (a == 0) return sign;
    int e;
    frexp(a, &e); /* a = f·2^e, f in [0.5, 1): the leading bit is 2^(e-1) */
    e -= 1;
    /* in units of the last place: 2^-24 below the normal range (subnormals,
     * and the carry into 2^-14 lands on its code), 2^(e-10) in it */
    double q = nearbyint(ldexp(a, e < -14 ? 24 : 10 - e));
    if (e < -14) return sign | (uint16_t)q;
    if (q == 2048) q = 1024, e++; /* rounded up to the next power of two */
    if (e > 15) return sign | 0x7c00;
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)(q - 1024);
}

double f16_to_double(uint16_t h) {
    int e = h >> 10 & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

/* ---------------------------------------------------------------- files */

char *read_file_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
            if (!buf) break;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    int saved = errno;
    fclose(f);
    errno = saved;
    if (!buf) return NULL;
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int run_command(char *const argv[]) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
