/* rank.c — rank statistics of scores: ROC AUC, average precision, quantiles.
 *
 * Takes n scores (higher: more anomalous) with a 0/1 label each and produces
 * the exact statistics, ties handled as the standard definitions do: the
 * AUC counts a tied (positive, negative) pair as half a win; average
 * precision takes all samples of one score as one threshold step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"

typedef struct Ranked {
    double score;
    int positive;
} Ranked;

static int by_score_desc(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

static Ranked *sorted(const double *score, const int *positive, int64_t n) {
    Ranked *r = malloc((size_t)(n ? n : 1) * sizeof *r);
    if (!r) return NULL;
    for (int64_t i = 0; i < n; i++)
        r[i] = (Ranked){score[i], positive[i] != 0};
    qsort(r, (size_t)n, sizeof *r, by_score_desc);
    return r;
}

/* Walking down the scores one tie group at a time: a positive beats every
 * negative below its group and half of those in it. */
double aec_auc(const double *score, const int *positive, int64_t n) {
    Ranked *r = sorted(score, positive, n);
    if (!r) return NAN;
    double wins = 0;
    int64_t pos = 0, neg = 0, neg_below;
    for (int64_t i = 0; i < n; i++)
        r[i].positive ? pos++ : neg++;
    neg_below = neg;
    for (int64_t i = 0; i < n;) {
        int64_t j = i, p = 0, q = 0;
        for (; j < n && r[j].score == r[i].score; j++)
            r[j].positive ? p++ : q++;
        neg_below -= q;
        wins += (double)p * ((double)neg_below + 0.5 * (double)q);
        i = j;
    }
    free(r);
    return pos && neg ? wins / ((double)pos * (double)neg) : NAN;
}

double aec_average_precision(const double *score, const int *positive, int64_t n) {
    Ranked *r = sorted(score, positive, n);
    if (!r) return NAN;
    int64_t pos = 0;
    for (int64_t i = 0; i < n; i++)
        pos += r[i].positive;
    double ap = 0, recall_before = 0;
    int64_t tp = 0;
    for (int64_t i = 0; i < n && pos;) {
        int64_t j = i;
        for (; j < n && r[j].score == r[i].score; j++)
            tp += r[j].positive;
        double recall = (double)tp / (double)pos, precision = (double)tp / (double)j;
        ap += (recall - recall_before) * precision;
        recall_before = recall;
        i = j;
    }
    free(r);
    return pos ? ap : NAN;
}

static int by_value(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

double aec_quantile(const double *v, int64_t n, double q) {
    if (n < 1) return NAN;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, by_value);
    double at = q * (double)(n - 1);
    int64_t lo = (int64_t)floor(at), hi = lo + 1 < n ? lo + 1 : lo;
    double value = s[lo] + (at - (double)lo) * (s[hi] - s[lo]);
    free(s);
    return value;
}
