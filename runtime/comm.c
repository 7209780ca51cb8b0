/* comm.c — training spread over ranks: the communicator the runtime uses,
 * agreement on errors, the split of batches, the data-parallel step.
 *
 * Takes the process's communicator (one rank unless runtime/mpi.c, linked
 * by `aec build --mpi`, installs MPI's); produces what the trainer needs to
 * run the same training on N ranks. This file needs no MPI: with one rank
 * every function here is the single-process path or a no-op.
 *
 * Invariants:
 *   - Every rank makes the same sequence of collective calls; a rank that
 *     fails keeps making them, with its failure in the flags, until the
 *     ranks have agreed to stop. So an error on one rank ends all of them
 *     with its message and never hangs the others.
 *   - The global batch is the spec's: rank r takes rows [lo, lo + nr) of
 *     each global batch (aec_comm_share) and weights its gradient and loss
 *     terms by nr / bs, so their sum over the ranks is the global batch's
 *     mean — exactly for a loss that is a mean over rows (mse, mae, bce, a
 *     VAE's objective, per-sample regularizers; weight terms appear on
 *     every rank with weights summing to 1). Only the order of the sums
 *     differs from one process.
 *   - rmse is sqrt(mse), which does not split over rows: alone, each rank
 *     reduces w·mse_r and w·2·rmse_r·∇rmse_r (= w·∇mse_r), and after the
 *     sum the gradient is scaled by 1 / (2·rmse) — exact. rmse with other
 *     terms cannot be split so from one gradient block: it is reduced like
 *     the others (the ranks' rmse gradients, weighted), and rank 0 warns.
 *   - Batch statistics are per rank, as PyTorch's DistributedDataParallel
 *     has them: batch norm normalizes by its rank's rows, kl_sparsity's ρ̂
 *     is its rank's mean. Batch norm's running statistics, each rank's
 *     moved by its rows (running_stats, ABI 8), are averaged with the
 *     gradient, weighted the same, so every rank keeps the same ones: the
 *     parameter checksum holds and the checkpoint has one set. The mean's
 *     average is the global batch's mean; the variance's is the mean of the
 *     ranks' variances (no spread between the ranks' means).
 *   - A masked loss is the mean over the batch's present values, so a rank
 *     is weighted by its present values / the batch's (every rank has the
 *     data to count them): exact with weight terms beside it. A variational
 *     model's masked loss is a mean over rows: weighted by rows, exact.
 *     With per-sample terms (l1 code, kl_sparsity, contractive) beside a
 *     masked mean neither weight is exact: by present values, and rank 0
 *     warns.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static aec_comm single = {.rank = 0, .size = 1};
static aec_comm *world = &single;

aec_comm *aec_comm_world(void) {
    return world;
}

void aec_comm_set(aec_comm *c) {
    world = c ? c : &single;
    aec_log_rank(world->rank, world->size);
}

int aec_comm_agree(int status) {
    aec_comm *c = world;
    if (c->size == 1) return status;
    int worst = 0, at = 0;
    if (c->max_loc(c->ctx, status, &worst, &at)) {
        aec_error("MPI: the ranks could not exchange their status");
        return AEC_ERANK;
    }
    if (!worst) return AEC_OK;
    c->failed = 1;
    if (status) return status; /* this rank said why */
    if (c->rank == 0) aec_error("rank %d failed (%s): every rank stops", at, aec_strerror(worst));
    return AEC_ERANK;
}

int aec_comm_same(uint64_t value, const char *what) {
    aec_comm *c = world;
    if (c->size == 1) return AEC_OK;
    uint64_t lo = 0, hi = 0;
    if (c->min_max_u64(c->ctx, value, &lo, &hi)) {
        aec_error("MPI: the ranks could not compare %s", what);
        c->failed = 1;
        return AEC_ERANK;
    }
    if (lo == hi) return AEC_OK;
    if (c->rank == 0) aec_error("the ranks differ in %s", what);
    c->failed = 1;
    return AEC_EMISMATCH;
}

void aec_comm_share(const aec_comm *c, int64_t n, int64_t *lo, int64_t *count) {
    int64_t base = n / c->size, extra = n % c->size, r = c->rank;
    *count = base + (r < extra);
    *lo = r * base + (r < extra ? r : extra);
}

uint64_t aec_hash_bytes(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The squared errors of x_hat against d's present values, over n rows of
 * both from row lo, and how many values those are. */
static void squared_errors(const aec_data *d, const void *x_hat, int64_t lo, int64_t n, double *sum,
                           double *count) {
    *sum = *count = 0;
    for (int64_t i = lo * d->dim; i < (lo + n) * d->dim; i++) {
        if (d->mask && aec_get(d->mask, d->dtype, i) == 0) continue;
        double e = aec_get(x_hat, d->dtype, i) - aec_get(d->x, d->dtype, i);
        *sum += e * e;
        *count += 1;
    }
}

/* Each rank evaluates its contiguous share; the sums of metric x rows, the
 * rows, the squared errors, the present values and a failure flag are
 * reduced in double. */
int aec_comm_eval_metrics(const aec_model *m, const void *params, const aec_data *d, int batch,
                          void *ws, void *x_hat, double *metrics, double *mse) {
    aec_comm *c = world;
    int nm = m->n_metrics, status = AEC_OK;
    if (c->size == 1) {
        status = aec_eval_metrics(m, params, d, batch, ws, x_hat, metrics);
        double se = 0, count = 0;
        if (mse && !status) squared_errors(d, x_hat, 0, d->n, &se, &count);
        if (mse) *mse = count > 0 ? se / count : NAN;
        return status;
    }
    int64_t lo, n;
    aec_comm_share(c, d->n, &lo, &n);
    size_t row = (size_t)d->dim * aec_dtype_size(d->dtype);
    aec_data part = *d;
    part.n = n;
    part.x = (char *)d->x + (size_t)lo * row;
    part.mask = d->mask ? (char *)d->mask + (size_t)lo * row : NULL;
    void *part_hat = x_hat ? (char *)x_hat + (size_t)lo * row : NULL;
    double sum[AEC_MAX_METRICS + 4] = {0};
    if (n > 0) status = aec_eval_metrics(m, params, &part, batch, ws, part_hat, metrics);
    if (n > 0 && !status) {
        for (int k = 0; k < nm; k++)
            sum[k] = metrics[k] * (double)n;
        if (mse) squared_errors(d, x_hat, lo, n, &sum[nm + 1], &sum[nm + 2]);
    }
    sum[nm] = (double)n;
    sum[nm + 3] = status ? 1 : 0;
    if (c->allreduce_sum(c->ctx, sum, nm + 4, AEC_F64)) {
        aec_error("MPI: the allreduce of the evaluation failed");
        c->failed = 1;
        return AEC_ERANK;
    }
    for (int k = 0; k < nm; k++)
        metrics[k] = sum[nm] > 0 ? sum[k] / sum[nm] : NAN;
    if (mse) *mse = sum[nm + 2] > 0 ? sum[nm + 1] / sum[nm + 2] : NAN;
    if (sum[nm + 3] == 0) return AEC_OK;
    c->failed = 1;
    if (status) return status; /* this rank said why */
    if (c->rank == 0) aec_error("evaluation failed on %.0f rank(s): every rank stops", sum[nm + 3]);
    return AEC_ERANK;
}

/* ------------------------------------------------------- the data-parallel step */

int aec_dp_init(aec_dp *dp, const aec_model *m, aec_comm *c) {
    memset(dp, 0, sizeof *dp);
    dp->m = m;
    dp->c = c;
    if (c->size == 1) return AEC_OK;
    if (m->abi_version < 6 || !m->loss_grad_ex || !m->apply_grad) {
        aec_error("model %s has no loss_grad_ex/apply_grad entry points (ABI 6), which training "
                  "on %d ranks needs",
                  m->name, c->size);
        return AEC_EUNSUPPORTED;
    }
    if (m->param_count > m->trainable_count && (m->abi_version < 8 || !m->running_stats)) {
        aec_error("model %s has batch-norm running statistics but no running_stats entry point "
                  "(ABI 8), which training on %d ranks needs",
                  m->name, c->size);
        return AEC_EUNSUPPORTED;
    }
    dp->n_red = m->trainable_count + m->n_metrics + 3 + (m->param_count - m->trainable_count);
    dp->red = aec_alloc((size_t)dp->n_red * aec_dtype_size(m->dtype));
    if (!dp->red) {
        aec_error("out of memory for a gradient block of %lld values",
                  (long long)m->trainable_count);
        return AEC_ENOMEM;
    }
    dp->exact_rmse = m->train.loss == AEC_LOSS_RMSE && m->n_metrics == 1;
    if (c->rank == 0 && m->train.loss == AEC_LOSS_RMSE && !dp->exact_rmse)
        aec_warn("rmse with other terms on %d ranks: the gradient is the ranks' rmse gradients, "
                 "weighted by rows, not exactly the global batch's (docs/trainer.md)",
                 c->size);
    if (aec_model_masked(m) && !m->variational) {
        int per_sample = 0; /* terms that are means over rows, not over present values */
        for (int k = 1; k < m->n_metrics; k++) {
            const char *t = m->metric_names[k];
            per_sample |= strcmp(t, "recon") && strcmp(t, "l2_weights") && strcmp(t, "l1_weights");
        }
        dp->by_present = 1;
        if (c->rank == 0 && per_sample)
            aec_warn("a masked loss with per-sample terms on %d ranks: each rank's share is "
                     "weighted by its present values, which is exact for the loss, not for "
                     "those terms (docs/trainer.md)",
                     c->size);
    }
    return AEC_OK;
}

void aec_dp_free(aec_dp *dp) {
    free(dp->red);
    dp->red = NULL;
}

static void scale(void *p, int dtype, int64_t n, double s) {
    if (dtype == AEC_F64)
        for (int64_t i = 0; i < n; i++)
            ((double *)p)[i] *= s;
    else
        for (int64_t i = 0; i < n; i++)
            ((float *)p)[i] = (float)(((float *)p)[i] * s);
}

double aec_dp_weight(const aec_dp *dp, const aec_data *d, const int64_t *rows, int bs, int64_t lo,
                     int64_t nr) {
    if (!dp->by_present || !d->mask) return (double)nr / bs;
    double all = 0, mine = 0; /* the mask's sums, as the loss's denominator has them */
    for (int k = 0; k < bs; k++) {
        double s = 0;
        for (int64_t j = rows[k] * d->dim; j < (rows[k] + 1) * d->dim; j++)
            s += aec_get(d->mask, d->dtype, j);
        all += s;
        if (k >= lo && k < lo + nr) mine += s;
    }
    return all > 0 ? mine / all : (double)nr / bs;
}

int aec_dp_step(aec_dp *dp, void *params, void *opt, const void *x, const void *mask, int64_t lo,
                int64_t nr, double w, uint64_t step, void *loss, void *ws, const aec_exec *exec) {
    const aec_model *m = dp->m;
    aec_comm *c = dp->c;
    int dt = m->dtype, nm = m->n_metrics, status = AEC_OK;
    int64_t g = m->trainable_count, nb = m->param_count - g;
    size_t el = aec_dtype_size(dt);
    char *terms = (char *)dp->red + (size_t)g * el, *stats = terms + (size_t)(nm + 3) * el;
    /* The caller's threads; the noise of row i of this share is the global
     * batch's row lo + i. */
    aec_exec ex = exec ? *exec : (aec_exec){0};
    ex.row_offset = lo;
    double local = 0;
    if (nr > 0) {
        status = m->loss_grad_ex(params, x, mask, (int)nr, step, terms, dp->red, ws, &ex);
        if (!status && nm > 1) status = m->metrics(ws, terms);
        if (!status && nb > 0) status = m->running_stats(ws, (int)nr, stats);
        local = aec_get(terms, dt, 0);
        if (!status && !isfinite(local)) status = AEC_ENONFINITE;
    }
    if (status || nr == 0) {
        memset(dp->red, 0, (size_t)(g + nm) * el);
        memset(stats, 0, (size_t)nb * el);
    } else if (dp->exact_rmse) { /* reduce w·mse_r and w·∇mse_r = w·2·rmse_r·∇rmse_r */
        scale(dp->red, dt, g, w * 2 * local);
        aec_set(terms, dt, 0, w * local * local);
        scale(stats, dt, nb, w);
    } else {
        scale(dp->red, dt, g + nm, w);
        scale(stats, dt, nb, w);
    }
    aec_set(terms, dt, nm, status ? 1 : 0);           /* ranks that failed */
    aec_set(terms, dt, nm + 1, status ? c->rank : 0); /* which, when one did */
    aec_set(terms, dt, nm + 2, status);
    if (c->allreduce_sum(c->ctx, dp->red, dp->n_red, dt)) {
        aec_error("MPI: the allreduce of step %llu failed", (unsigned long long)step);
        c->failed = 1;
        return AEC_ERANK;
    }
    double failed = aec_get(terms, dt, nm);
    if (failed > 0) {
        c->failed = 1;
        if (status) return status; /* the caller says why */
        if (c->rank == 0 && failed == 1)
            aec_error("rank %.0f failed at step %llu (%s): every rank stops",
                      aec_get(terms, dt, nm + 1), (unsigned long long)step,
                      aec_strerror((int)aec_get(terms, dt, nm + 2)));
        else if (c->rank == 0)
            aec_error("%.0f ranks failed at step %llu: every rank stops", failed,
                      (unsigned long long)step);
        return AEC_ERANK;
    }
    if (dp->exact_rmse) {
        double mse = aec_get(terms, dt, 0), rmse = sqrt(mse);
        scale(dp->red, dt, g, rmse > 0 ? 1 / (2 * rmse) : 0);
        aec_set(terms, dt, 0, rmse);
    }
    /* The same sum on every rank: all see the same loss and stop together. */
    if (!isfinite(aec_get(terms, dt, 0))) return AEC_ENONFINITE;
    /* The ranks' running statistics, averaged: every rank keeps the same. */
    memcpy((char *)params + (size_t)g * el, stats, (size_t)nb * el);
    ex.row_offset = 0;
    status = m->apply_grad(params, opt, dp->red, step, ws, &ex);
    memcpy(loss, terms, (size_t)nm * el);
    return status;
}

int aec_dp_sync(aec_dp *dp, void *params, const void *opt, int32_t epoch, uint64_t *hash) {
    const aec_model *m = dp->m;
    aec_comm *c = dp->c;
    size_t el = aec_dtype_size(m->dtype);
    uint64_t h = aec_hash_bytes(params, (size_t)m->param_count * el, 0xcbf29ce484222325ull);
    *hash = aec_hash_bytes(opt, (size_t)m->opt_state_count * el, h);
    if (c->size == 1) return AEC_OK;
    char what[96];
    snprintf(what, sizeof what, "their parameters after epoch %d (they computed different updates)",
             epoch);
    return aec_comm_same(*hash, what);
}
