/* cmd_score.c — `score`: anomaly scores, and how well they find anomalies.
 *
 * Takes data and weights and produces each sample's anomaly score: its own
 * loss in inference mode, with the spec's loss (masked values left out; a
 * variational model's per-sample negative ELBO at μ). With labels and the
 * normal class(es), the ROC AUC and average precision of the scores; with a
 * threshold (given, or a quantile of the scores of normal data) the flagged
 * samples and, with labels, precision, recall and F1.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"
#include "pool.h"

/* One eval call per sample: the model's loss is a batch mean, so a batch of
 * one is the sample's own loss, exactly as training and eval define it. */
static int sample_scores(const aec_model *m, const aec_infer *f, const aec_data *d, double *score) {
    size_t row = (size_t)d->dim * aec_dtype_size(m->dtype);
    double loss[AEC_MAX_METRICS], metrics[AEC_MAX_METRICS]; /* room for either dtype */
    /* A model with regularizer terms scores by its reconstruction term alone
     * (metric 1); a variational one by its whole objective, the negative ELBO. */
    int recon_only = m->n_metrics > 1 && !m->variational && m->metrics;
    for (int64_t i = 0; i < d->n; i++) {
        const char *x = (const char *)d->x + i * row;
        const char *mask = d->mask ? (const char *)d->mask + i * row : NULL;
        int st = m->eval_ex(f->params, x, mask, 1, loss, NULL, f->ws, aec_trainer_exec());
        if (!st && recon_only) st = m->metrics(f->ws, metrics);
        if (st) {
            aec_error("eval of sample %lld: %s", (long long)i, aec_strerror(st));
            return st;
        }
        score[i] = aec_get(recon_only ? (const void *)metrics : (const void *)loss, m->dtype,
                           recon_only ? 1 : 0);
    }
    return AEC_OK;
}

/* "0,3,7": the normal classes; positive[i] = 1 for every other label. */
static int mark_anomalies(const char *normal, const int32_t *labels, int64_t n, int *positive) {
    int32_t classes[256];
    int nc = 0;
    for (const char *s = normal; *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ',') || nc == 256) {
            aec_error("--normal %s: expected class numbers separated by commas", normal);
            return AEC_EFORMAT;
        }
        classes[nc++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    for (int64_t i = 0; i < n; i++) {
        positive[i] = 1;
        for (int c = 0; c < nc; c++)
            if (labels[i] == classes[c]) positive[i] = 0;
    }
    return AEC_OK;
}

static json_object *num(double v) {
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

int aec_cmd_score(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->data || !a->weights) {
        return aec_usage_error(c, "%s", "--data and --weights are required", NULL);
    }
    if ((a->labels != NULL) != (a->normal != NULL)) {
        return aec_usage_error(
            c, "%s", "--labels and --normal go together (the normal class(es) of the labels)",
            NULL);
    }
    if (a->has_threshold && a->calibrate) {
        return aec_usage_error(c, "%s", "give --threshold or --calibrate, not both", NULL);
    }
    if (a->has_quantile && (a->quantile > 1 || !a->calibrate))
        return aec_usage_error(c, "%s", "--quantile Q needs --calibrate, and Q in [0, 1]", NULL);
    aec_infer f;
    double *score = NULL, *cal = NULL, *table = NULL;
    int *positive = NULL;
    int32_t *labels = NULL;
    int64_t n_labels = 0;
    int st = aec_infer_open(m, a->weights, a->data, a->limit, &f);
    int64_t n = f.data.n;
    if (!st) {
        score = malloc((size_t)(n ? n : 1) * sizeof *score);
        positive = malloc((size_t)(n ? n : 1) * sizeof *positive);
        table = malloc((size_t)(n ? n : 1) * 2 * sizeof *table);
        st = score && positive && table ? AEC_OK : AEC_ENOMEM;
    }
    if (!st) st = sample_scores(m, &f, &f.data, score);
    if (!st && a->labels) {
        st = aec_labels_load(a->labels, &n_labels, &labels);
        if (!st && n_labels < n) {
            aec_error("%s has %lld labels, %s has %lld samples", a->labels, (long long)n_labels,
                      a->data, (long long)n);
            st = AEC_EMISMATCH;
        }
        if (!st) st = mark_anomalies(a->normal, labels, n, positive);
    }
    double threshold = a->has_threshold ? a->threshold : NAN;
    if (!st && a->calibrate) {
        aec_data normal;
        st = aec_data_load_for(a->calibrate, m, 0, 0, &normal);
        if (!st) {
            cal = malloc((size_t)(normal.n ? normal.n : 1) * sizeof *cal);
            st = cal ? sample_scores(m, &f, &normal, cal) : AEC_ENOMEM;
            if (!st) threshold = aec_quantile(cal, normal.n, a->has_quantile ? a->quantile : 0.99);
            aec_data_free(&normal);
        }
    }

    double auc = NAN, ap = NAN, precision = NAN, recall = NAN, f1 = NAN, mean = 0;
    int64_t flagged = -1;
    if (!st) {
        for (int64_t i = 0; i < n; i++)
            mean += score[i] / (double)n;
        if (a->labels) {
            auc = aec_auc(score, positive, n);
            ap = aec_average_precision(score, positive, n);
        }
        if (!isnan(threshold)) {
            int64_t tp = 0, pos = 0;
            flagged = 0;
            for (int64_t i = 0; i < n; i++) {
                int flag = score[i] > threshold;
                flagged += flag;
                tp += flag && positive[i];
                pos += positive[i];
            }
            if (a->labels) {
                precision = flagged ? (double)tp / (double)flagged : NAN;
                recall = pos ? (double)tp / (double)pos : NAN;
                f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : NAN;
            }
        }
    }
    if (!st && a->out) {
        int cols = isnan(threshold) ? 1 : 2;
        for (int64_t i = 0; i < n; i++) {
            table[i * cols] = score[i];
            if (cols == 2) table[i * cols + 1] = score[i] > threshold;
        }
        const char *header[] = {"score", "flag"};
        st = aec_table_write(a->out, table, n, cols, header);
        if (!st && !a->quiet) fprintf(stderr, "wrote %s: %lld scores\n", a->out, (long long)n);
    }
    if (!st) {
        double p50 = aec_quantile(score, n, 0.5), p99 = aec_quantile(score, n, 0.99);
        if (a->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "samples", json_object_new_int64(n));
            json_object_object_add(o, "mean", num(mean));
            json_object_object_add(o, "p50", num(p50));
            json_object_object_add(o, "p99", num(p99));
            json_object_object_add(o, "auc", num(auc));
            json_object_object_add(o, "ap", num(ap));
            json_object_object_add(o, "threshold", num(threshold));
            json_object_object_add(o, "flagged",
                                   flagged >= 0 ? json_object_new_int64(flagged) : NULL);
            json_object_object_add(o, "precision", num(precision));
            json_object_object_add(o, "recall", num(recall));
            json_object_object_add(o, "f1", num(f1));
            puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            json_object_put(o);
        } else {
            printf("%lld samples: score mean %.6g  p50 %.6g  p99 %.6g\n", (long long)n, mean, p50,
                   p99);
            if (a->labels)
                printf("anomalies = labels not in {%s}: ROC AUC %.4f  average precision %.4f\n",
                       a->normal, auc, ap);
            if (flagged >= 0) {
                printf("threshold %.6g%s: %lld flagged", threshold,
                       a->calibrate ? " (a quantile of the --calibrate scores)" : "",
                       (long long)flagged);
                if (a->labels)
                    printf("  precision %.4f  recall %.4f  F1 %.4f", precision, recall, f1);
                printf("\n");
            }
        }
    }
    free(score);
    free(cal);
    free(table);
    free(positive);
    free(labels);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
