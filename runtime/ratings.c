/* ratings.c — a ratings file as a matrix with missing entries (AutoRec).
 *
 * Takes MovieLens's ratings.csv layout — `userId,movieId,rating[,timestamp]`
 * after a header line — and produces: the ratings as three columns; the
 * mapping of ids to matrix columns (sorted ids, so the same file always
 * maps the same way, and the mapping travels in the checkpoint's metadata
 * as text); and the matrix itself, one row per item (I-AutoRec, `--by
 * item`: a sample is an item's ratings by every user) or per user (`--by
 * user`), NaN where no rating is known, so `loss mse masked` leaves those
 * out.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"

void aec_ratings_free(aec_ratings *r) {
    free(r->user);
    free(r->item);
    free(r->value);
    memset(r, 0, sizeof *r);
}

static int grow(aec_ratings *r, int64_t *cap) {
    *cap = *cap ? 2 * *cap : 4096;
    int64_t *u = realloc(r->user, (size_t)*cap * sizeof *u);
    if (u) r->user = u;
    int64_t *i = realloc(r->item, (size_t)*cap * sizeof *i);
    if (i) r->item = i;
    double *v = realloc(r->value, (size_t)*cap * sizeof *v);
    if (v) r->value = v;
    return u && i && v ? AEC_OK : AEC_ENOMEM;
}

int aec_ratings_load(const char *path, aec_ratings *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f) {
        aec_error("%s: cannot open: %s", path, strerror(errno));
        return AEC_EIO;
    }
    char *line = NULL;
    size_t size = 0;
    int64_t cap = 0, lineno = 0;
    int st = AEC_OK;
    while (!st && getline(&line, &size, f) > 0) {
        lineno++;
        char *p = line, *end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n' || *p == '\r' || *p == 0 || *p == '#') continue;
        if (lineno == 1 && !(*p >= '0' && *p <= '9') && *p != '-') continue; /* the header */
        long long u = strtoll(p, &end, 10);
        int ok = end != p && *end == ',';
        long long i = ok ? strtoll(p = end + 1, &end, 10) : 0;
        ok = ok && end != p && *end == ',';
        double v = ok ? strtod(p = end + 1, &end) : NAN;
        ok = ok && end != p && (*end == ',' || *end == '\n' || *end == '\r' || *end == 0) &&
             isfinite(v);
        if (!ok) {
            aec_error("%s:%lld: expected userId,movieId,rating[,timestamp], got '%.40s'", path,
                      (long long)lineno, line);
            st = AEC_EFORMAT;
            break;
        }
        if (r->n == cap && grow(r, &cap)) {
            aec_error("%s: out of memory after %lld ratings", path, (long long)r->n);
            st = AEC_ENOMEM;
            break;
        }
        r->user[r->n] = u;
        r->item[r->n] = i;
        r->value[r->n++] = v;
    }
    free(line);
    fclose(f);
    if (!st && r->n == 0) {
        aec_error("%s: no ratings (expected lines userId,movieId,rating after a header)", path);
        st = AEC_EFORMAT;
    }
    if (st) aec_ratings_free(r);
    return st;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct values of ids (n), sorted. */
static int64_t *distinct(const int64_t *ids, int64_t n, int64_t *count) {
    int64_t *s = malloc((size_t)(n ? n : 1) * sizeof *s), k = 0;
    if (!s) return NULL;
    memcpy(s, ids, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    for (int64_t i = 0; i < n; i++)
        if (k == 0 || s[i] != s[k - 1]) s[k++] = s[i];
    *count = k;
    return s;
}

int aec_ratings_map_build(const aec_ratings *r, int by_item, aec_ratings_map *map) {
    memset(map, 0, sizeof *map);
    map->by_item = by_item;
    map->users = distinct(r->user, r->n, &map->n_users);
    map->items = distinct(r->item, r->n, &map->n_items);
    return map->users && map->items ? AEC_OK : AEC_ENOMEM;
}

void aec_ratings_map_free(aec_ratings_map *map) {
    free(map->users);
    free(map->items);
    memset(map, 0, sizeof *map);
}

int64_t aec_ratings_column(const int64_t *ids, int64_t n, int64_t id) {
    const int64_t *p = bsearch(&id, ids, (size_t)n, sizeof *ids, cmp_i64);
    return p ? p - ids : -1;
}

/* "by=item;users=1,2,...;items=10,20,..." */
char *aec_ratings_map_text(const aec_ratings_map *map) {
    size_t cap = 64 + 21 * (size_t)(map->n_users + map->n_items), at = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    at += (size_t)snprintf(s + at, cap - at, "by=%s;users=", map->by_item ? "item" : "user");
    for (int64_t i = 0; i < map->n_users; i++)
        at += (size_t)snprintf(s + at, cap - at, i ? ",%lld" : "%lld", (long long)map->users[i]);
    at += (size_t)snprintf(s + at, cap - at, ";items=");
    for (int64_t i = 0; i < map->n_items; i++)
        at += (size_t)snprintf(s + at, cap - at, i ? ",%lld" : "%lld", (long long)map->items[i]);
    return s;
}

static int64_t *parse_ids(const char *s, const char *stop, int64_t *n) {
    int64_t count = 1, k = 0;
    for (const char *p = s; p < stop; p++)
        count += *p == ',';
    int64_t *ids = malloc((size_t)count * sizeof *ids);
    for (const char *p = s; ids && p < stop; k++) {
        char *end;
        ids[k] = strtoll(p, &end, 10);
        if (end == p) break;
        p = *end == ',' ? end + 1 : end;
    }
    *n = k;
    return ids;
}

int aec_ratings_map_parse(const char *path, const char *text, aec_ratings_map *map) {
    memset(map, 0, sizeof *map);
    const char *u = text ? strstr(text, ";users=") : NULL, *i = u ? strstr(u, ";items=") : NULL;
    if (!text || strncmp(text, "by=", 3) || !u || !i) {
        aec_error("%s has no ratings mapping in its metadata: was it trained with "
                  "`train --ratings`?",
                  path);
        return AEC_EMISMATCH;
    }
    map->by_item = strncmp(text + 3, "item", 4) == 0;
    map->users = parse_ids(u + 7, i, &map->n_users);
    map->items = parse_ids(i + 7, i + strlen(i), &map->n_items);
    return map->users && map->items ? AEC_OK : AEC_ENOMEM;
}

int aec_ratings_matrix(const aec_ratings *r, const aec_ratings_map *map, int dtype, aec_data *d,
                       int64_t *skipped) {
    memset(d, 0, sizeof *d);
    int64_t rows = map->by_item ? map->n_items : map->n_users;
    int64_t cols = map->by_item ? map->n_users : map->n_items;
    d->n = rows;
    d->dim = cols;
    d->dtype = dtype;
    d->ndim = 1;
    d->shape[0] = cols;
    d->format = "ratings CSV";
    d->x = malloc((size_t)(rows * cols) * aec_dtype_size(dtype) + 1);
    if (!d->x) {
        aec_error("out of memory for a %lld x %lld ratings matrix", (long long)rows,
                  (long long)cols);
        return AEC_ENOMEM;
    }
    for (int64_t k = 0; k < rows * cols; k++)
        aec_set(d->x, dtype, k, NAN);
    *skipped = 0;
    for (int64_t k = 0; k < r->n; k++) {
        int64_t u = aec_ratings_column(map->users, map->n_users, r->user[k]);
        int64_t i = aec_ratings_column(map->items, map->n_items, r->item[k]);
        if (u < 0 || i < 0) {
            ++*skipped;
            continue;
        }
        aec_set(d->x, dtype, map->by_item ? i * cols + u : u * cols + i, r->value[k]);
    }
    return AEC_OK;
}

int aec_ratings_predict(const aec_model *m, const aec_infer *f, const char *known,
                        const aec_ratings_map *map, aec_data *d, void **pred) {
    aec_ratings r;
    int64_t skipped;
    *pred = NULL;
    int st = aec_ratings_load(known, &r);
    if (!st) st = aec_ratings_matrix(&r, map, m->dtype, d, &skipped);
    aec_ratings_free(&r);
    if (!st) st = aec_data_check_values(known, d, 1);
    if (!st) {
        *pred = malloc((size_t)(d->n * d->dim) * aec_dtype_size(m->dtype) + 1);
        double loss;
        st = *pred ? aec_eval_data(m, f->params, d, f->batch, f->ws, *pred, &loss) : AEC_ENOMEM;
    }
    return st;
}
