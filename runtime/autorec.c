/* autorec.c — AutoRec's train --ratings and eval --ratings, and the
 * predictions `recommend` (cmd_recommend.c) starts from.
 *
 * Takes MovieLens-style ratings (ratings.c) and a model with `loss ...
 * masked`. train --ratings builds the ratings matrix (an item's ratings by
 * every user per sample with --by item, the default; a user's with --by
 * user), stores the id mapping in the checkpoint and trains on it;
 * --split F holds out a fraction of the ratings and measures them after
 * training. eval --ratings TEST --known R predicts TEST's ratings from the
 * known ratings R (RMSE, MAE).
 *
 * Under mpirun, train --ratings runs on every rank: each builds the same
 * matrix and held-out split from the file and the seed, aec_train splits
 * the batches, and rank 0 alone prints and measures the held-out ratings
 * (from the checkpoint it wrote). eval --ratings is one process's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"

/* Where (row, column) of the matrix rating k of r lands, or -1. */
static int64_t cell(const aec_ratings_map *map, int64_t user, int64_t item) {
    int64_t u = aec_ratings_column(map->users, map->n_users, user);
    int64_t i = aec_ratings_column(map->items, map->n_items, item);
    if (u < 0 || i < 0) return -1;
    return map->by_item ? i * map->n_users + u : u * map->n_items + i;
}

/* RMSE and MAE of pred on r's ratings; unknown ids are skipped. */
static void errors(const aec_ratings_map *map, int dtype, const void *pred, const aec_ratings *r,
                   double *rmse, double *mae, int64_t *used, int64_t *skipped) {
    double se = 0, ae = 0;
    *used = *skipped = 0;
    for (int64_t k = 0; k < r->n; k++) {
        int64_t at = cell(map, r->user[k], r->item[k]);
        if (at < 0) {
            ++*skipped;
            continue;
        }
        double e = aec_get(pred, dtype, at) - r->value[k];
        se += e * e;
        ae += fabs(e);
        ++*used;
    }
    *rmse = *used ? sqrt(se / (double)*used) : NAN;
    *mae = *used ? ae / (double)*used : NAN;
}

/* The model's input must be one row of the matrix; names what the file needs. */
static int check_model(const aec_model *m, const char *path, const aec_ratings_map *map) {
    int64_t need = map->by_item ? map->n_users : map->n_items;
    if (!aec_model_masked(m)) {
        aec_error("model %s has no `loss ... masked`: a ratings matrix is mostly missing "
                  "values, which the loss must leave out (specs/autorec.ae)",
                  m->name);
        return AEC_EMISMATCH;
    }
    if (m->input_size != need) {
        aec_error(
            "%s has %lld users and %lld items: with --by %s a sample is %s, so the spec "
            "needs `input %lld`; model %s has input %lld",
            path, (long long)map->n_users, (long long)map->n_items, map->by_item ? "item" : "user",
            map->by_item ? "an item's ratings by every user" : "a user's ratings of every item",
            (long long)need, m->name, (long long)m->input_size);
        return AEC_EMISMATCH;
    }
    return AEC_OK;
}

/* Ratings k in idx[0..n) of r, copied. */
static int subset(const aec_ratings *r, const int64_t *idx, int64_t n, aec_ratings *out) {
    out->n = n;
    out->user = malloc((size_t)(n ? n : 1) * sizeof *out->user);
    out->item = malloc((size_t)(n ? n : 1) * sizeof *out->item);
    out->value = malloc((size_t)(n ? n : 1) * sizeof *out->value);
    if (!out->user || !out->item || !out->value) return AEC_ENOMEM;
    for (int64_t k = 0; k < n; k++) {
        out->user[k] = r->user[idx[k]];
        out->item[k] = r->item[idx[k]];
        out->value[k] = r->value[idx[k]];
    }
    return AEC_OK;
}

/* The baseline AutoRec is measured against: each item's mean training
 * rating (the global mean for an item without any). */
static double item_mean_rmse(const aec_ratings_map *map, const aec_ratings *train,
                             const aec_ratings *test) {
    double *sum = calloc((size_t)map->n_items, sizeof *sum), all = 0, se = 0;
    int64_t *cnt = calloc((size_t)map->n_items, sizeof *cnt), used = 0;
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return NAN;
    }
    for (int64_t k = 0; k < train->n; k++) {
        int64_t i = aec_ratings_column(map->items, map->n_items, train->item[k]);
        sum[i] += train->value[k];
        cnt[i]++;
        all += train->value[k] / (double)train->n;
    }
    for (int64_t k = 0; k < test->n; k++) {
        int64_t i = aec_ratings_column(map->items, map->n_items, test->item[k]);
        if (i < 0 || aec_ratings_column(map->users, map->n_users, test->user[k]) < 0) continue;
        double p = cnt[i] ? sum[i] / (double)cnt[i] : all, e = p - test->value[k];
        se += e * e;
        used++;
    }
    free(sum);
    free(cnt);
    return used ? sqrt(se / (double)used) : NAN;
}

int aec_ratings_train(const aec_command *c, const aec_model *m, const aec_args *a,
                      aec_train_opts *o) {
    if (a->data || a->val)
        return aec_usage_error(c, "%s", "--ratings is the training data: no --data or --val", NULL);
    if (a->by && strcmp(a->by, "item") && strcmp(a->by, "user"))
        return aec_usage_error(c, "--by %s: expected item or user", a->by, NULL);
    if (a->has_split && !(a->split > 0 && a->split < 1))
        return aec_usage_error(c, "%s", "--split F: F is a fraction between 0 and 1", NULL);
    aec_ratings all = {0}, train = {0}, held = {0};
    aec_ratings_map map = {0};
    aec_data d = {0};
    char *meta = NULL;
    int64_t *idx = NULL, skipped = 0;
    int rank0 = aec_comm_world()->rank == 0, quiet = a->quiet || !rank0; /* rank 0 reports */
    int st = aec_ratings_load(a->ratings, &all);
    if (!st) st = aec_ratings_map_build(&all, !a->by || !strcmp(a->by, "item"), &map);
    if (!st) st = check_model(m, a->ratings, &map);
    int64_t n_held = a->has_split ? llround((double)all.n * a->split) : 0;
    if (!st) {
        idx = malloc((size_t)all.n * sizeof *idx);
        st = idx ? AEC_OK : AEC_ENOMEM;
        for (int64_t k = 0; !st && k < all.n; k++)
            idx[k] = k;
        /* The held-out ratings depend on the seed and the file only. */
        if (!st && n_held)
            aec_shuffle(idx, all.n, a->has_seed ? a->seed : m->train.seed, AEC_STREAM_SPLIT);
    }
    if (!st) st = subset(&all, idx, all.n - n_held, &train);
    if (!st) st = subset(&all, idx + all.n - n_held, n_held, &held);
    if (!st) st = aec_ratings_matrix(&train, &map, m->dtype, &d, &skipped);
    if (!st) st = aec_data_check_values(a->ratings, &d, 1);
    if (!st && !(meta = aec_ratings_map_text(&map))) st = AEC_ENOMEM;
    if (!st && !quiet)
        fprintf(stderr,
                "%s: %lld ratings of %lld items by %lld users (%.2f %% known), one sample "
                "per %s%s\n",
                a->ratings, (long long)all.n, (long long)map.n_items, (long long)map.n_users,
                100.0 * (double)all.n / ((double)map.n_items * (double)map.n_users),
                map.by_item ? "item" : "user", n_held ? "" : "");
    st = aec_comm_agree(st); /* a rank that cannot read the ratings stops all */
    if (!st) {
        o->dataset = &d;
        o->data = a->ratings;
        o->meta = meta;
        st = aec_train(m, o);
    }
    int held_st = AEC_OK;
    if (!st && n_held && rank0) { /* the held-out ratings, predicted from the training ones */
        char def[256];
        snprintf(def, sizeof def, "%s.safetensors", m->name);
        const char *w = o->out ? o->out : o->resume ? o->resume : def;
        aec_infer f;
        void *pred = malloc((size_t)(d.n * d.dim) * aec_dtype_size(m->dtype) + 1);
        double loss, rmse, mae;
        int64_t used, unknown;
        held_st = pred ? aec_infer_open(m, w, NULL, 0, &f) : AEC_ENOMEM;
        if (!held_st) held_st = aec_eval_data(m, f.params, &d, f.batch, f.ws, pred, &loss);
        if (!held_st) {
            errors(&map, m->dtype, pred, &held, &rmse, &mae, &used, &unknown);
            double base = item_mean_rmse(&map, &train, &held);
            if (!a->quiet)
                fprintf(stderr,
                        "held out %lld ratings (--split %g): RMSE %.4f  MAE %.4f  "
                        "(per-item mean: RMSE %.4f)\n",
                        (long long)used, a->split, rmse, mae, base);
        }
        if (pred) aec_infer_free(&f);
        free(pred);
    }
    if (!st) st = aec_comm_agree(held_st);
    free(idx);
    free(meta);
    aec_data_free(&d);
    aec_ratings_free(&all);
    aec_ratings_free(&train);
    aec_ratings_free(&held);
    aec_ratings_map_free(&map);
    return aec_exit_status(st);
}

int aec_ratings_open(const aec_model *m, const char *weights, const char *known, aec_infer *f,
                     aec_ratings_map *map, aec_data *d, void **pred) {
    char *text = NULL;
    memset(map, 0, sizeof *map);
    memset(d, 0, sizeof *d);
    *pred = NULL;
    int st = aec_infer_open(m, weights, NULL, 0, f);
    if (!st) st = aec_ckpt_meta(weights, "ratings", &text);
    if (!st) st = aec_ratings_map_parse(weights, text, map);
    if (!st) st = check_model(m, weights, map);
    if (!st) st = aec_ratings_predict(m, f, known, map, d, pred);
    free(text);
    return st;
}

int aec_ratings_eval(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->weights, "--weights") || aec_require(c, a->known, "--known"))
        return AEC_EXIT_USAGE;
    aec_infer f;
    aec_ratings_map map;
    aec_data d;
    aec_ratings test = {0};
    void *pred;
    int st = aec_ratings_open(m, a->weights, a->known, &f, &map, &d, &pred);
    if (!st) st = aec_ratings_load(a->ratings, &test);
    if (!st) {
        double rmse, mae;
        int64_t used, skipped;
        errors(&map, m->dtype, pred, &test, &rmse, &mae, &used, &skipped);
        if (a->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "ratings", json_object_new_int64(used));
            json_object_object_add(o, "rmse", isfinite(rmse) ? json_object_new_double(rmse) : NULL);
            json_object_object_add(o, "mae", isfinite(mae) ? json_object_new_double(mae) : NULL);
            json_object_object_add(o, "skipped", json_object_new_int64(skipped));
            puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            json_object_put(o);
        } else {
            printf("%lld ratings of %s predicted from %s: RMSE %.4f  MAE %.4f", (long long)used,
                   a->ratings, a->known, rmse, mae);
            if (skipped) printf("  (%lld with unknown users or items skipped)", (long long)skipped);
            printf("\n");
        }
    }
    free(pred);
    aec_data_free(&d);
    aec_ratings_free(&test);
    aec_ratings_map_free(&map);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
