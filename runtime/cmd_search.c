/* cmd_search.c — `search`: similar items by the distance of their codes.
 *
 * Takes an index and queries (data the model encodes, or codes), produces
 * each query's exact k nearest index items (knn.c): as CSV rows
 * query,rank,index,distance; as a PNG of each query followed by its
 * neighbours; and with labels the precision@k, the mean share of
 * neighbours that carry the query's label.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"

/* Codes of a data file (encoded) or a codes file, as floats. */
static int codes_of(const aec_model *m, const aec_infer *f, const char *data, const char *codes,
                    int64_t limit, aec_data *d, float **out) {
    int st = aec_data_load_for(data ? data : codes, m, data ? 0 : 1, limit, d);
    if (st) return st;
    size_t el = aec_dtype_size(m->dtype);
    void *z = malloc((size_t)(d->n * m->code_size) * el + 1);
    *out = malloc((size_t)(d->n * m->code_size) * sizeof **out + 1);
    if (!z || !*out) {
        free(z);
        aec_error("out of memory for %lld codes", (long long)d->n);
        return AEC_ENOMEM;
    }
    st = data ? aec_encode_batches(m, f, d, z) : AEC_OK;
    const void *src = data ? z : d->x;
    for (int64_t i = 0; !st && i < d->n * m->code_size; i++)
        (*out)[i] = (float)aec_get(src, m->dtype, i);
    free(z);
    return st;
}

/* Rows of the PNG: query i's image, then its k neighbours' images. */
static int write_png(const aec_model *m, const aec_args *a, const aec_data *index,
                     const aec_data *query, const int64_t *nbr, int64_t q, int k) {
    int rows = q < 16 ? (int)q : 16, cols = k + 1;
    size_t image = (size_t)m->input_size * aec_dtype_size(m->dtype);
    char *cells = malloc((size_t)rows * (size_t)cols * image);
    const void **ptr = malloc((size_t)rows * sizeof *ptr);
    int *counts = malloc((size_t)rows * sizeof *counts);
    int st = cells && ptr && counts ? AEC_OK : AEC_ENOMEM;
    for (int r = 0; !st && r < rows; r++) {
        char *row = cells + (size_t)r * (size_t)cols * image;
        memcpy(row, (const char *)query->x + (size_t)r * image, image);
        for (int j = 0; j < k; j++)
            memcpy(row + (size_t)(j + 1) * image,
                   (const char *)index->x + (size_t)nbr[(int64_t)r * k + j] * image, image);
        ptr[r] = row;
        counts[r] = cols;
    }
    if (!st) st = aec_png_rows(a->png, m, ptr, counts, rows, cols);
    if (!st && !a->quiet)
        fprintf(stderr, "wrote %s: %d queries and their neighbours\n", a->png, rows);
    free(cells);
    free(ptr);
    free(counts);
    return st;
}

int aec_cmd_search(const aec_command *c, const aec_model *m, const aec_args *a) {
    if ((!a->index == !a->index_codes) || (!a->query == !a->query_codes)) {
        return aec_usage_error(
            c, "%s", "give --index X or --index-codes Z, and --query Q or --query-codes Z", NULL);
    }
    if ((a->index || a->query) && !a->weights) {
        return aec_usage_error(c, "%s", "--weights is required to encode --index/--query", NULL);
    }
    if (a->png && (!a->index || !a->query)) {
        return aec_usage_error(
            c, "%s", "--png draws images, so it needs --index and --query data (not codes)", NULL);
    }
    int k = a->k ? a->k : 10, metric = AEC_KNN_L2;
    if (a->metric && strcmp(a->metric, "l2") && strcmp(a->metric, "cosine"))
        return aec_usage_error(c, "--metric %s: expected l2 or cosine", a->metric, NULL);
    if (a->metric && !strcmp(a->metric, "cosine")) metric = AEC_KNN_COSINE;
    aec_infer f;
    memset(&f, 0, sizeof f);
    aec_data index = {0}, query = {0};
    float *zi = NULL, *zq = NULL, *dist = NULL;
    int64_t *nbr = NULL;
    int32_t *li = NULL, *lq = NULL;
    int st = a->weights ? aec_infer_open(m, a->weights, NULL, 0, &f) : AEC_OK;
    if (!st) st = codes_of(m, &f, a->index, a->index_codes, a->limit, &index, &zi);
    if (!st) st = codes_of(m, &f, a->query, a->query_codes, a->limit, &query, &zq);
    int64_t n = index.n, q = query.n;
    if (!st) {
        nbr = malloc((size_t)(q * k) * sizeof *nbr + 1);
        dist = malloc((size_t)(q * k) * sizeof *dist + 1);
        st = nbr && dist ? AEC_OK : AEC_ENOMEM;
    }
    double t0 = aec_now();
    if (!st) st = aec_knn(zi, n, zq, q, m->code_size, k, metric, nbr, dist);
    double seconds = aec_now() - t0;

    double precision = -1;
    if (!st && a->labels) {
        int64_t nl = 0, nq = 0;
        const char *qpath = a->query_labels ? a->query_labels : a->labels;
        st = aec_labels_load(a->labels, &nl, &li);
        if (!st) st = aec_labels_load(qpath, &nq, &lq);
        if (!st && (nl < n || nq < q)) {
            aec_error("%s has %lld labels for %lld index items; %s has %lld for %lld queries",
                      a->labels, (long long)nl, (long long)n, qpath, (long long)nq, (long long)q);
            st = AEC_EMISMATCH;
        }
        int64_t same = 0;
        for (int64_t i = 0; !st && i < q * k; i++)
            same += li[nbr[i]] == lq[i / k];
        if (!st) precision = (double)same / (double)(q * k);
    }
    if (!st && a->out) {
        aec_atomic w;
        st = aec_atomic_begin(&w, a->out);
        if (!st) {
            fprintf(w.f, "query,rank,index,distance\n");
            for (int64_t i = 0; i < q * k; i++)
                fprintf(w.f, "%lld,%lld,%lld,%.9g\n", (long long)(i / k), (long long)(i % k),
                        (long long)nbr[i], (double)dist[i]);
            st = aec_atomic_commit(&w);
        }
        if (!st && !a->quiet)
            fprintf(stderr, "wrote %s: %lld x %d neighbours\n", a->out, (long long)q, k);
    }
    if (!st && a->png) st = write_png(m, a, &index, &query, nbr, q, k);
    if (!st && a->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "queries", json_object_new_int64(q));
        json_object_object_add(o, "index", json_object_new_int64(n));
        json_object_object_add(o, "k", json_object_new_int(k));
        json_object_object_add(o, "precision_at_k",
                               precision >= 0 ? json_object_new_double(precision) : NULL);
        json_object_object_add(o, "seconds", json_object_new_double(seconds));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (!st) {
        printf("%lld queries x %lld index items, k %d (%s): %.3f s", (long long)q, (long long)n, k,
               metric == AEC_KNN_COSINE ? "cosine" : "l2", seconds);
        if (precision >= 0) printf("  precision@%d %.4f", k, precision);
        printf("\n");
    }
    aec_data_free(&index);
    aec_data_free(&query);
    free(zi);
    free(zq);
    free(nbr);
    free(dist);
    free(li);
    free(lq);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
