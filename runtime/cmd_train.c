/* cmd_train.c — `train`: the options as aec_train_opts, then aec_train (train.c);
 * with --ratings, AutoRec's data first (ratings.c), on any number of ranks. */
#include "apps.h"

int aec_cmd_train(const aec_command *c, const aec_model *m, const aec_args *a) {
    aec_train_opts o = {
        .data = a->data,
        .val = a->val,
        .out = a->out,
        .resume = a->resume,
        .epochs = a->epochs,
        .batch = a->batch,
        .limit = a->limit,
        .seed = a->seed,
        .has_seed = a->has_seed,
        .early_stop = a->early_stop,
        .has_early_stop = a->has_early_stop,
        .min_delta = a->min_delta,
        .has_min_delta = a->has_min_delta,
        .pretrain_epochs = a->pretrain_epochs,
        .has_pretrain_epochs = a->has_pretrain_epochs,
        .json = a->json,
        .quiet = a->quiet,
        .plot = a->plot,
    };
    if (a->ratings) return aec_ratings_train(c, m, a, &o);
    return aec_exit_status(aec_train(m, &o));
}
