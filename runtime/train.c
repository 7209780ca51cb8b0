/* train.c — the training loop.
 *
 * Takes a model table and the `train` command's options; produces a
 * checkpoint after every epoch (atomically, with the optimizer state and the
 * training state) and, with early stopping, the best weights at the end.
 *
 * Invariants:
 *   - Every buffer (params, optimizer state, workspace, batch) is allocated
 *     before the first step; a step allocates nothing.
 *   - Everything random is a function of (seed, stream, counter): the
 *     validation split of the seed, epoch e's order of (seed, e) alone, and
 *     the model's own noise of (seed, step). So a run stopped after any
 *     epoch and resumed from its checkpoint ends bit-identical to a run
 *     that never stopped.
 *   - The training loss of an epoch is the mean of the batch losses weighted
 *     by batch size (the last batch may be smaller); the validation loss is
 *     the inference-mode loss, weighted the same way. So are the loss's
 *     terms (aec_model.n_metrics), reported beside it.
 *   - With `pretrain layerwise E`, a fresh run first trains each stage for E
 *     epochs (stage_step; its own order of samples, a fresh optimizer state
 *     and step count per stage), then fine-tunes the whole model from a
 *     fresh optimizer. Resuming skips pretraining: the checkpoint has it.
 *   - On N ranks (`--mpi`, comm.c) each global batch is split over the
 *     ranks and one allreduce per step keeps their parameters equal (checked
 *     after every epoch); rank 0 alone prints and writes the checkpoint.
 *     Pretraining runs whole on every rank.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rt.h"

#define EVAL_BATCH 256 /* samples per eval call when the model allows it */

/* ------------------------------------------------------------------ a run */

typedef struct Run {
    const aec_model *m;
    const aec_train_opts *o;
    char *out; /* the checkpoint written after every epoch */
    int32_t epochs, batch, eval_batch, patience;
    double min_delta;
    uint64_t seed;
    int early_stop;     /* patience > 0 and there is validation data */
    aec_data data, val; /* val: a file, or the held-out rows copied out */
    int64_t *train_idx; /* rows of data to train on, ascending */
    int64_t *perm;      /* this epoch's order of train_idx */
    int64_t n_train;
    void *params, *opt, *best, *ws, *xb, *mb, *loss; /* aligned blocks; loss: n_metrics */
    double terms[AEC_MAX_METRICS];                   /* the last epoch's metrics */
    aec_train_state st;
    aec_comm *comm; /* the ranks; with more than one, dp does the steps */
    aec_dp dp;
} Run;

static void run_free(Run *r) {
    free(r->out);
    aec_data_free(&r->data);
    aec_data_free(&r->val);
    free(r->train_idx);
    free(r->perm);
    free(r->params);
    free(r->opt);
    free(r->best);
    free(r->ws);
    free(r->xb);
    free(r->mb);
    free(r->loss);
    aec_dp_free(&r->dp);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Copies rows `idx` of src into a new contiguous data set. */
static int take_rows(const aec_data *src, const int64_t *idx, int64_t n, aec_data *dst) {
    size_t row = (size_t)src->dim * aec_dtype_size(src->dtype);
    *dst = *src;
    dst->n = n;
    dst->x = malloc(row * (size_t)(n ? n : 1));
    dst->mask = src->mask ? malloc(row * (size_t)(n ? n : 1)) : NULL;
    if (!dst->x || (src->mask && !dst->mask)) {
        aec_error("out of memory for %lld validation samples", (long long)n);
        return AEC_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        memcpy((char *)dst->x + i * row, (const char *)src->x + idx[i] * row, row);
        if (src->mask)
            memcpy((char *)dst->mask + i * row, (const char *)src->mask + idx[i] * row, row);
    }
    return AEC_OK;
}

/* The training rows, and validation from --val or held out by the seed. */
static int load_sets(Run *r) {
    const aec_model *m = r->m;
    const aec_train_opts *o = r->o;
    int status = AEC_OK;
    if (o->dataset) { /* already in memory (train --ratings): a copy, which run_free frees */
        int64_t n = o->dataset->n, *all = malloc((size_t)(n ? n : 1) * sizeof *all);
        for (int64_t i = 0; all && i < n; i++)
            all[i] = i;
        status = all ? take_rows(o->dataset, all, n, &r->data) : AEC_ENOMEM;
        free(all);
    } else {
        status = aec_data_load_for(o->data, m, 0, o->limit, &r->data);
    }
    if (status) return status;
    int64_t n = r->data.n, n_val = 0;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    r->perm = malloc((size_t)n * sizeof *r->perm);
    if (!idx || !r->perm) {
        free(idx);
        return AEC_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    if (o->val) {
        status = aec_data_load_for(o->val, m, 0, o->limit, &r->val);
    } else if (m->train.validation > 0) {
        n_val = llround((double)n * m->train.validation);
        if (n_val < 1) n_val = 1;
        if (n_val > n - 1) n_val = n - 1;
        if (n_val < 1)
            aec_warn("%s: %lld sample(s) are too few to hold out %g for validation", o->data,
                     (long long)n, m->train.validation);
        else
            aec_shuffle(idx, n, r->seed, AEC_STREAM_VALID);
        if (n_val > 0) status = take_rows(&r->data, idx + n - n_val, n_val, &r->val);
    }
    r->n_train = n - n_val;
    qsort(idx, (size_t)r->n_train, sizeof *idx, cmp_i64); /* memory order within an epoch */
    r->train_idx = idx;
    return status;
}

/* Buffers for the whole run, sized by the largest batch either loop uses. */
static int alloc_step_buffers(Run *r) {
    const aec_model *m = r->m;
    size_t el = aec_dtype_size(m->dtype);
    int train_bs = (int)(r->n_train < r->batch ? r->n_train : r->batch);
    int eval_bs = (int)(r->val.n < r->eval_batch ? r->val.n : r->eval_batch);
    size_t ws = m->workspace_size(train_bs);
    if (eval_bs > 0 && m->workspace_size(eval_bs) > ws) ws = m->workspace_size(eval_bs);
    r->ws = aec_alloc(ws);
    r->xb = aec_alloc((size_t)train_bs * (size_t)m->input_size * el);
    r->mb = r->data.mask ? aec_alloc((size_t)train_bs * (size_t)m->input_size * el) : NULL;
    r->loss = aec_alloc(sizeof(double) * AEC_MAX_METRICS);
    if (!r->ws || !r->xb || (r->data.mask && !r->mb) || !r->loss) {
        aec_error("out of memory for a %zu-byte workspace and a batch of %d", ws, train_bs);
        return AEC_ENOMEM;
    }
    return AEC_OK;
}

/* Continues from a checkpoint: live params, optimizer state, counters. */
static int resume(Run *r) {
    const aec_model *m = r->m;
    const char *path = r->o->resume;
    int has = 0;
    aec_train_state st;
    /* The named tensors are the best weights when train.params is there. */
    int status = aec_ckpt_load(path, m, r->best, r->opt, r->params, &st, &has);
    if (status) return status;
    if (!(has & AEC_CKPT_TRAIN))
        memcpy(r->params, r->best, (size_t)m->param_count * aec_dtype_size(m->dtype));
    if (!(has & AEC_CKPT_STATE)) {
        aec_warn("%s holds weights but no training state: training starts at epoch 1 from them",
                 path);
        return AEC_OK;
    }
    if (m->opt_state_count > 0 && !(has & AEC_CKPT_OPT))
        aec_warn("%s has no optimizer state: the optimizer starts afresh", path);
    if (r->o->has_seed && r->o->seed != st.seed)
        aec_warn("--seed %llu differs from the checkpoint's seed %llu: the validation split and "
                 "the order of samples change",
                 (unsigned long long)r->o->seed, (unsigned long long)st.seed);
    if (!r->o->has_seed) r->seed = st.seed;
    if (!r->o->batch && st.batch > 0) r->batch = st.batch;
    r->st.step = st.step;
    r->st.epoch = st.epoch;
    r->st.train_loss = st.train_loss;
    r->st.val_loss = st.val_loss;
    /* Early-stopping counters are kept only if this run early-stops too
     * (set_early_stop decides, once the validation data is known). */
    r->st.best_val = st.best_val;
    r->st.best_epoch = st.best_epoch;
    r->st.bad_epochs = st.bad_epochs;
    r->st.n_train = st.n_train;
    r->st.n_val = st.n_val;
    return AEC_OK;
}

static int save(Run *r) {
    /* With early stopping the named tensors are the best weights, so the file
     * is always what eval should use; the live ones ride along to resume. */
    const void *weights = r->early_stop && r->st.best_epoch > 0 ? r->best : r->params;
    const void *live = weights != r->params && r->st.best_epoch != r->st.epoch ? r->params : NULL;
    return aec_ckpt_save(r->out, r->m, weights, r->opt, live, &r->st);
}

static void gather(const Run *r, const int64_t *rows, int bs) {
    size_t row = (size_t)r->m->input_size * aec_dtype_size(r->m->dtype);
    for (int k = 0; k < bs; k++) {
        memcpy((char *)r->xb + k * row, (const char *)r->data.x + rows[k] * row, row);
        if (r->mb) memcpy((char *)r->mb + k * row, (const char *)r->data.mask + rows[k] * row, row);
    }
}

/* One pass over the training rows in this epoch's order. */
static int train_epoch(Run *r, aec_progress *p, double *train_loss) {
    const aec_model *m = r->m;
    int32_t e = r->st.epoch; /* epochs done before this one: the shuffle's stream offset */
    memcpy(r->perm, r->train_idx, (size_t)r->n_train * sizeof *r->perm);
    aec_shuffle(r->perm, r->n_train, r->seed, AEC_STREAM_SHUFFLE + (uint64_t)e);
    double sum = 0, terms[AEC_MAX_METRICS] = {0};
    int64_t b = 0;
    for (int64_t i = 0; i < r->n_train; i += r->batch) {
        int bs = (int)(r->n_train - i < r->batch ? r->n_train - i : r->batch);
        int64_t lo = 0, nr = bs; /* this rank's rows of the batch */
        aec_comm_share(r->comm, bs, &lo, &nr);
        gather(r, r->perm + i + lo, (int)nr);
        r->st.step++;
        int status;
        if (r->comm->size > 1)
            status = aec_dp_step(&r->dp, r->params, r->opt, r->xb, r->mb, lo, nr,
                                 aec_dp_weight(&r->dp, &r->data, r->perm + i, bs, lo, nr),
                                 r->st.step, r->loss, r->ws, aec_trainer_exec());
        else
            status = m->train_step_ex(r->params, r->opt, r->xb, r->mb, bs, r->st.step, r->loss,
                                      r->ws, aec_trainer_exec());
        if (!status && m->n_metrics > 1 && r->comm->size == 1) status = m->metrics(r->ws, r->loss);
        double loss = aec_get(r->loss, m->dtype, 0);
        if (!status && !isfinite(loss)) status = AEC_ENONFINITE;
        if (status == AEC_ERANK) return status; /* rank 0 said which failed */
        if (status) {
            aec_progress_clear(p);
            /* The checkpoint is left as the last good epoch wrote it (or
             * resumed from it); a first epoch has none to keep. */
            char kept[64];
            if (e > 0 || r->o->resume)
                snprintf(kept, sizeof kept, " holds epoch %d", e);
            else
                snprintf(kept, sizeof kept, ": no checkpoint was written");
            aec_error("epoch %d, batch %lld (step %llu): %s%s; %s%s", e + 1, (long long)b + 1,
                      (unsigned long long)r->st.step, aec_strerror(status),
                      status == AEC_ENONFINITE ? " (try a lower learning rate)" : "", r->out, kept);
            return status;
        }
        sum += loss * bs;
        for (int k = 0; k < m->n_metrics; k++)
            terms[k] += aec_get(r->loss, m->dtype, k) * bs;
        aec_progress_batch(p, e + 1, ++b, bs, sum / (double)(i + bs));
    }
    *train_loss = sum / (double)r->n_train;
    for (int k = 0; k < m->n_metrics; k++)
        r->terms[k] = terms[k] / (double)r->n_train;
    return AEC_OK;
}

/* Greedy layer-wise pretraining: stage s trains its layer pair for E epochs
 * (Hinton & Salakhutdinov 2006; Bengio et al. 2007), each stage with a fresh
 * optimizer state and step count, in orders of (seed, stage, epoch). */
static int pretrain(Run *r, aec_progress *p, int32_t epochs) {
    const aec_model *m = r->m;
    size_t opt_bytes = (size_t)m->opt_state_count * aec_dtype_size(m->dtype);
    for (int32_t s = 1; s <= m->n_stages; s++) {
        memset(r->opt, 0, opt_bytes);
        uint64_t step = 0;
        for (int32_t e = 0; e < epochs; e++) {
            double t0 = aec_now(), sum = 0;
            memcpy(r->perm, r->train_idx, (size_t)r->n_train * sizeof *r->perm);
            aec_shuffle(r->perm, r->n_train, r->seed,
                        AEC_STREAM_PRETRAIN + ((uint64_t)s << 24) + (uint64_t)e);
            for (int64_t i = 0; i < r->n_train; i += r->batch) {
                int bs = (int)(r->n_train - i < r->batch ? r->n_train - i : r->batch);
                gather(r, r->perm + i, bs);
                int status =
                    m->stage_step(s, r->params, r->opt, r->xb, r->mb, bs, ++step, r->loss, r->ws);
                double loss = aec_get(r->loss, m->dtype, 0);
                if (!status && !isfinite(loss)) status = AEC_ENONFINITE;
                if (status) {
                    aec_error("pretraining stage %d, epoch %d (step %llu): %s", s, e + 1,
                              (unsigned long long)step, aec_strerror(status));
                    return status;
                }
                sum += loss * bs;
            }
            aec_progress_stage(p, s, m->n_stages, e + 1, epochs, sum / (double)r->n_train,
                               aec_now() - t0);
        }
    }
    memset(r->opt, 0, opt_bytes); /* fine-tuning starts afresh */
    return AEC_OK;
}

/* Updates the early-stopping state after an epoch; returns the epoch's note. */
static const char *early_stop_update(Run *r, double val_loss, char *note, size_t size) {
    note[0] = 0;
    if (!r->early_stop) return note;
    if (val_loss < r->st.best_val - r->min_delta) {
        r->st.best_val = val_loss;
        r->st.best_epoch = r->st.epoch;
        r->st.bad_epochs = 0;
        memcpy(r->best, r->params, (size_t)r->m->param_count * aec_dtype_size(r->m->dtype));
        snprintf(note, size, "best");
    } else {
        r->st.bad_epochs++;
        snprintf(note, size, "no improvement %d/%d", r->st.bad_epochs, r->patience);
    }
    return note;
}

static void print_final_json(const Run *r, double seconds, int stopped) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "event", json_object_new_string("done"));
    json_object_object_add(o, "epoch", json_object_new_int(r->st.epoch));
    json_object_object_add(o, "step", json_object_new_int64(r->st.step));
    double v[] = {r->st.train_loss, r->st.val_loss, r->st.best_val};
    const char *k[] = {"train_loss", "val_loss", "best_val"};
    for (int i = 0; i < 3; i++)
        json_object_object_add(o, k[i], isfinite(v[i]) ? json_object_new_double(v[i]) : NULL);
    json_object_object_add(o, "best_epoch",
                           r->early_stop ? json_object_new_int(r->st.best_epoch) : NULL);
    json_object_object_add(o, "stopped_early", json_object_new_boolean(stopped));
    json_object_object_add(o, "seconds", json_object_new_double(seconds));
    json_object_object_add(o, "out", json_object_new_string(r->out));
    if (r->comm->size > 1) { /* what the data-parallel steps cost (bench/mpi.sh) */
        json_object_object_add(o, "ranks", json_object_new_int(r->comm->size));
        json_object_object_add(
            o, "allreduce_bytes_per_step",
            json_object_new_int64(r->dp.n_red * (int64_t)aec_dtype_size(r->m->dtype)));
        json_object_object_add(o, "allreduce_seconds",
                               json_object_new_double(r->comm->allreduce_seconds));
        json_object_object_add(o, "allreduce_calls",
                               json_object_new_int64(r->comm->allreduce_calls));
    }
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(stdout);
    json_object_put(o);
}

/* Settings: the command line over the spec's train block. */
static int configure(Run *r) {
    const aec_model *m = r->m;
    const aec_train_opts *o = r->o;
    r->seed = o->has_seed ? o->seed : m->train.seed;
    r->batch = o->batch ? o->batch : m->train.batch;
    r->epochs = o->epochs ? o->epochs : m->train.epochs;
    r->patience = o->has_early_stop ? o->early_stop : m->train.early_stop;
    r->min_delta = o->has_min_delta ? o->min_delta : m->train.min_delta;
    r->eval_batch = m->max_batch < EVAL_BATCH ? m->max_batch : EVAL_BATCH;
    const char *out = o->out ? o->out : o->resume;
    size_t len = out ? strlen(out) + 1 : strlen(m->name) + 16;
    r->out = malloc(len);
    if (!r->out) return AEC_ENOMEM;
    if (out)
        memcpy(r->out, out, len);
    else
        snprintf(r->out, len, "%s.safetensors", m->name);
    if (!m->init || !m->train_step || !m->workspace_size) {
        aec_error("model %s has no training entry points (built without them?)", m->name);
        return AEC_EUNSUPPORTED;
    }
    return AEC_OK;
}

/* Early stopping needs validation data; without it the counters reset. */
static void set_early_stop(Run *r) {
    r->early_stop = r->patience > 0 && r->val.n > 0;
    if (r->patience > 0 && r->val.n == 0)
        aec_warn("early stopping needs validation data (--val or `validation F` in the spec); "
                 "it is off");
    if (!r->early_stop) {
        r->st.best_val = INFINITY;
        r->st.best_epoch = 0;
        r->st.bad_epochs = 0;
    }
}

static void announce(const Run *r) {
    if (r->o->quiet) return;
    fprintf(stderr, "training %s: %lld samples", r->m->name, (long long)r->n_train);
    if (r->val.n)
        fprintf(stderr, ", %lld for validation (%s)", (long long)r->val.n,
                r->o->val ? r->o->val : "held out");
    fprintf(stderr, ", batch %d, %d epochs, seed %llu", r->batch, r->epochs,
            (unsigned long long)r->seed);
    if (r->comm->size > 1) fprintf(stderr, ", %d ranks", r->comm->size);
    if (r->early_stop) fprintf(stderr, ", early stop after %d", r->patience);
    fprintf(stderr, "\n");
    if (r->o->resume)
        fprintf(stderr, "resuming from %s at epoch %d, step %lld\n", r->o->resume, r->st.epoch,
                (long long)r->st.step);
}

int aec_train(const aec_model *m, const aec_train_opts *opts) {
    aec_train_opts local = *opts; /* rank 0 alone prints */
    aec_comm *comm = aec_comm_world();
    if (comm->rank > 0) local.quiet = 1, local.json = 0, local.plot = NULL;
    const aec_train_opts *o = &local;
    Run r = {.m = m, .o = o, .comm = comm};
    r.st.best_val = INFINITY;
    r.st.train_loss = r.st.val_loss = NAN;
    size_t pbytes = (size_t)m->param_count * aec_dtype_size(m->dtype);
    int status = configure(&r);
    if (!status) {
        r.params = aec_alloc(pbytes);
        r.best = aec_alloc(pbytes);
        r.opt = aec_alloc((size_t)m->opt_state_count * aec_dtype_size(m->dtype));
        if (!r.params || !r.best || !r.opt) status = AEC_ENOMEM;
    }
    if (!status && o->resume) status = resume(&r);
    if (!status) status = load_sets(&r);
    if (!status && (r.batch < 1 || r.batch > m->max_batch)) {
        aec_error("batch %d is out of range: model %s takes batches of 1 to %d", r.batch, m->name,
                  m->max_batch);
        status = AEC_EBATCH;
    }
    if (!status && r.n_train < 1) {
        aec_error("%s: no samples left to train on", o->data);
        status = AEC_EMISMATCH;
    }
    if (!status) status = alloc_step_buffers(&r);
    if (!status && !o->resume) {
        status = m->init(r.params, r.seed);
        if (status) aec_error("init: %s", aec_strerror(status));
        memcpy(r.best, r.params, pbytes);
    }
    status = aec_comm_agree(status);
    if (!status) { /* the same steps on every rank, or their collectives would not match */
        int64_t plan[] = {r.n_train, r.val.n,    r.batch,         r.epochs,
                          r.st.step, r.st.epoch, (int64_t)r.seed, r.patience};
        status = aec_comm_same(aec_hash_bytes(plan, sizeof plan, 0xcbf29ce484222325ull),
                               "their samples, batch, epochs, seed or checkpoint (give every "
                               "rank the same data and options)");
    }
    if (!status) status = aec_comm_agree(aec_dp_init(&r.dp, m, comm));
    if (status) {
        run_free(&r);
        return status;
    }
    set_early_stop(&r);
    if (o->resume && r.st.n_train && (r.st.n_train != r.n_train || r.st.n_val != r.val.n))
        aec_warn("the checkpoint was trained on %lld + %lld samples, this run has %lld + %lld",
                 (long long)r.st.n_train, (long long)r.st.n_val, (long long)r.n_train,
                 (long long)r.val.n);
    r.st.n_train = r.n_train;
    r.st.n_val = r.val.n;
    r.st.batch = r.batch;
    r.st.seed = r.seed;
    r.st.ratings = o->meta;
    announce(&r);

    aec_progress p;
    aec_progress_start(&p, r.epochs, r.st.epoch, (r.n_train + r.batch - 1) / r.batch, r.n_train,
                       o->quiet, o->json);
    int stopped = r.early_stop && r.st.bad_epochs >= r.patience, saved = 0;
    if (stopped && !o->quiet)
        fprintf(stderr,
                "%s already stopped early at epoch %d (no improvement for %d epochs; "
                "raise --early-stop to go on)\n",
                o->resume, r.st.epoch, r.st.bad_epochs);
    if (r.st.epoch >= r.epochs && !o->quiet)
        fprintf(stderr, "%s already has %d epochs; raise --epochs to train on\n", o->resume,
                r.st.epoch);
    int32_t pre = o->has_pretrain_epochs ? o->pretrain_epochs : m->train.pretrain_epochs;
    if (!status && pre > 0 && m->n_stages == 0)
        aec_warn("--pretrain-epochs: model %s has no pretraining stages (its spec has no "
                 "'pretrain layerwise'); it is ignored",
                 m->name);
    if (!status && !o->resume && pre > 0 && m->n_stages > 0 && m->stage_step) {
        if (!o->quiet)
            fprintf(stderr, "pretraining %d stages layer-wise, %d epoch%s each\n", m->n_stages, pre,
                    pre == 1 ? "" : "s");
        status = aec_comm_agree(pretrain(&r, &p, pre));
        p.t_start = p.t_epoch = p.t_print = aec_now(); /* rates and ETAs of fine-tuning alone */
    }
    aec_curves curves = {0}; /* --plot: this run's epochs */
    if (o->plot) {
        int64_t cap = r.epochs > 0 ? r.epochs : 1;
        curves.x = malloc((size_t)cap * sizeof *curves.x);
        for (int s = 0; s < 2; s++) {
            curves.y[s] = malloc((size_t)cap * sizeof *curves.y[s]);
            curves.names[s] = strdup(s ? "val_loss" : "train_loss");
        }
        curves.n_series = 2;
        curves.title = m->name;
        if (!curves.x || !curves.y[0] || !curves.y[1] || !curves.names[0] || !curves.names[1])
            status = AEC_ENOMEM;
    }
    while (!status && !stopped && r.st.epoch < r.epochs) {
        double train_loss, val_loss = NAN, val_terms[AEC_MAX_METRICS];
        uint64_t hash;
        status = train_epoch(&r, &p, &train_loss);
        if (!status) status = aec_dp_sync(&r.dp, r.params, r.opt, r.st.epoch + 1, &hash);
        if (!status && r.val.n)
            status = aec_comm_eval_metrics(m, r.params, &r.val, r.eval_batch, r.ws, NULL, val_terms,
                                           NULL);
        if (status) break;
        if (r.val.n) val_loss = val_terms[0];
        aec_progress_terms(&p, m, r.terms, r.val.n ? val_terms : NULL);
        r.st.epoch++;
        r.st.train_loss = train_loss;
        r.st.val_loss = val_loss;
        char note[64];
        early_stop_update(&r, val_loss, note, sizeof note);
        stopped = r.early_stop && r.st.bad_epochs >= r.patience;
        status = aec_comm_agree(comm->rank == 0 ? save(&r) : AEC_OK);
        saved = 1;
        aec_progress_epoch(&p, r.st.epoch, r.st.step, train_loss, val_loss, note);
        if (o->plot && curves.n_series) {
            curves.x[curves.n] = r.st.epoch;
            curves.y[0][curves.n] = train_loss;
            curves.y[1][curves.n++] = val_loss;
            if (aec_plot_curves(o->plot, &curves)) { /* a chart is not worth the run */
                aec_warn("--plot %s: not drawn; training goes on without it", o->plot);
                aec_curves_free(&curves);
            }
        }
    }
    aec_curves_free(&curves);
    if (!status && !saved) /* nothing trained: still leave --out */
        status = aec_comm_agree(comm->rank == 0 ? save(&r) : AEC_OK);
    if (!status) {
        if (!o->quiet && stopped && saved)
            fprintf(stderr, "early stopping: no improvement for %d epoch%s\n", r.patience,
                    r.patience == 1 ? "" : "s");
        if (!o->quiet && r.early_stop && r.st.best_epoch > 0)
            fprintf(stderr, "best val_loss %.6g at epoch %d: those weights are in %s\n",
                    r.st.best_val, r.st.best_epoch, r.out);
        else if (!o->quiet)
            fprintf(stderr, "saved %s (epoch %d, step %lld)\n", r.out, r.st.epoch,
                    (long long)r.st.step);
        if (o->json) print_final_json(&r, aec_now() - p.t_start, stopped);
    }
    run_free(&r);
    return status;
}
