/* knn.c — exact k-nearest-neighbour search in code space.
 *
 * Takes an index (n, d) and queries (q, d) of floats and produces, per
 * query, the k nearest index rows and their distances. The squared
 * Euclidean distance is ‖a‖² + ‖b‖² − 2a·b, so the work is one matrix
 * product per block of queries (cblas_sgemm, multithreaded by OpenBLAS)
 * and a scan of each row that keeps the k best. Cosine distance is the same
 * on rows scaled to unit length: 1 − a·b. The scan visits the index in
 * order and replaces an entry only when strictly nearer, so equal distances
 * keep the lower index: ties are broken by index.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"

#define QUERY_BLOCK 128 /* queries per product: 128 x 60,000 floats is 30 MB */

/* Rows scaled to unit length (a zero row stays zero). */
static float *unit_rows(const float *x, int64_t n, int64_t d) {
    float *u = malloc((size_t)(n * d) * sizeof *u + 1);
    if (!u) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (int64_t j = 0; j < d; j++)
            u[i * d + j] = x[i * d + j] * inv;
    }
    return u;
}

static void squared_norms(const float *x, int64_t n, int64_t d, float *out) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        out[i] = (float)s;
    }
}

/* Keeps the k smallest (dist, index) of one row, sorted, in best/at. */
static void select_row(const float *g, const float *xn, float qn, int64_t n, int k, int metric,
                       float *best, int64_t *at) {
    int have = 0;
    for (int64_t j = 0; j < n; j++) {
        float dd = metric == AEC_KNN_COSINE ? 1 - g[j] : qn + xn[j] - 2 * g[j];
        if (have == k && !(dd < best[k - 1])) continue;
        int p = have < k ? have++ : k - 1;
        while (p > 0 && dd < best[p - 1]) { /* strictly: an equal one stays ahead */
            best[p] = best[p - 1];
            at[p] = at[p - 1];
            p--;
        }
        best[p] = dd;
        at[p] = j;
    }
}

int aec_knn(const float *index, int64_t n, const float *query, int64_t q, int64_t d, int k,
            int metric, int64_t *nbr, float *dist) {
    if (k < 1 || k > n) {
        aec_error("-k %d: the index has %lld items", k, (long long)n);
        return AEC_EMISMATCH;
    }
    const float *a = index, *b = query;
    float *ua = NULL, *ub = NULL;
    if (metric == AEC_KNN_COSINE) {
        a = ua = unit_rows(index, n, d);
        b = ub = unit_rows(query, q, d);
    }
    float *xn = malloc((size_t)n * sizeof *xn), *qn = malloc(QUERY_BLOCK * sizeof *qn);
    float *g = malloc((size_t)QUERY_BLOCK * (size_t)n * sizeof *g);
    int st = xn && qn && g && (metric != AEC_KNN_COSINE || (ua && ub)) ? AEC_OK : AEC_ENOMEM;
    if (st) aec_error("out of memory searching %lld items", (long long)n);
    if (!st) squared_norms(a, n, d, xn);
    for (int64_t i = 0; !st && i < q; i += QUERY_BLOCK) {
        int64_t bq = q - i < QUERY_BLOCK ? q - i : QUERY_BLOCK;
        /* g (bq, n) = queries (bq, d) · index (n, d)ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)bq, (int)n, (int)d, 1.0f,
                    b + i * d, (int)d, a, (int)d, 0.0f, g, (int)n);
        squared_norms(b + i * d, bq, d, qn);
        for (int64_t r = 0; r < bq; r++) {
            float *best = dist + (i + r) * k;
            int64_t *at = nbr + (i + r) * k;
            select_row(g + r * n, xn, qn[r], n, k, metric, best, at);
            if (metric == AEC_KNN_L2)
                for (int j = 0; j < k; j++)
                    best[j] = best[j] > 0 ? sqrtf(best[j]) : 0;
        }
    }
    free(ua);
    free(ub);
    free(xn);
    free(qn);
    free(g);
    return st;
}
