/* cmd_recommend.c — `recommend`: AutoRec's top-k unrated items per user.
 *
 * Takes the ratings R a user is known by and an AutoRec checkpoint
 * (autorec.c); lists, for each user asked for, the k items they have not
 * rated with the highest predicted ratings, as lines or CSV.
 */
#include <stdlib.h>
#include <string.h>

#include "apps.h"

typedef struct Scored {
    double value;
    int64_t item;
} Scored;

static int by_prediction(const void *pa, const void *pb) {
    const Scored *a = pa, *b = pb;
    if (a->value != b->value) return a->value < b->value ? 1 : -1;
    return (a->item > b->item) - (a->item < b->item);
}

int aec_cmd_recommend(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->ratings, "--ratings") || aec_require(c, a->weights, "--weights"))
        return AEC_EXIT_USAGE;
    if (!a->all == !a->n_users)
        return aec_usage_error(c, "%s", "give --user U (one or more) or --all", NULL);
    int k = a->k ? a->k : 10;
    aec_infer f;
    aec_ratings_map map;
    aec_data d;
    void *pred;
    Scored *cand = NULL;
    aec_atomic out = {0};
    int st = aec_ratings_open(m, a->weights, a->ratings, &f, &map, &d, &pred);
    if (!st) st = (cand = malloc((size_t)map.n_items * sizeof *cand + 1)) ? AEC_OK : AEC_ENOMEM;
    if (!st && a->out) st = aec_atomic_begin(&out, a->out);
    FILE *to = a->out ? out.f : stdout;
    if (!st && a->out) fprintf(to, "userId,rank,movieId,predicted\n");
    int64_t n_users = a->all ? map.n_users : a->n_users, unknown = 0;
    for (int64_t q = 0; !st && q < n_users; q++) {
        int64_t user = a->all ? map.users[q] : strtoll(a->users[q], NULL, 10);
        int64_t u = aec_ratings_column(map.users, map.n_users, user);
        if (u < 0) {
            aec_warn("user %lld is not in %s's ratings: no recommendations", (long long)user,
                     a->weights);
            unknown++;
            continue;
        }
        int64_t nc = 0;
        for (int64_t i = 0; i < map.n_items; i++) {
            int64_t at = map.by_item ? i * map.n_users + u : u * map.n_items + i;
            if (aec_get(d.mask, m->dtype, at) != 0) continue; /* rated already */
            cand[nc++] = (Scored){aec_get(pred, m->dtype, at), i};
        }
        qsort(cand, (size_t)nc, sizeof *cand, by_prediction);
        if (!a->out) printf("user %lld:", (long long)user);
        for (int64_t r = 0; r < nc && r < k; r++) {
            if (a->out)
                fprintf(to, "%lld,%lld,%lld,%.6g\n", (long long)user, (long long)r,
                        (long long)map.items[cand[r].item], cand[r].value);
            else
                printf(" %lld (%.2f)", (long long)map.items[cand[r].item], cand[r].value);
        }
        if (!a->out) printf("\n");
    }
    if (a->out && out.f) {
        if (!st)
            st = aec_atomic_commit(&out);
        else
            aec_atomic_abort(&out);
        if (!st && !a->quiet)
            fprintf(stderr, "wrote %s: top %d items for %lld users\n", a->out, k,
                    (long long)(n_users - unknown));
    }
    free(cand);
    free(pred);
    aec_data_free(&d);
    aec_ratings_map_free(&map);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
