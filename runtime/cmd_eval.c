/* cmd_eval.c — `eval`: the model's loss, its terms, the MSE and the PSNR on a data set.
 *
 * Takes --data and --weights; prints one line, or one JSON object with --json.
 * With --ratings TEST --known R: an AutoRec model's RMSE and MAE on TEST's
 * ratings, predicted from R's (cmd_recommend.c).
 * Under MPI (--mpi) the ranks split the samples and rank 0 prints the result.
 */
#include "apps.h"

int aec_cmd_eval(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (a->ratings) { /* AutoRec: one pass over the ratings matrix, on rank 0 alone */
        int st = aec_comm_world()->rank == 0 ? aec_ratings_eval(c, m, a) : 0;
        int all = aec_comm_agree(st ? AEC_ERANK : AEC_OK); /* the others wait for it */
        return st ? st : aec_exit_status(all);
    }
    if (aec_require(c, a->data, "--data") || aec_require(c, a->weights, "--weights"))
        return AEC_EXIT_USAGE;
    aec_infer f;
    double metrics[AEC_MAX_METRICS];
    double mse;
    int st = aec_comm_agree(aec_infer_setup(m, a, a->data, 0, m->input_size, &f));
    if (!st) st = aec_comm_eval_metrics(m, f.params, &f.data, f.batch, f.ws, f.out, metrics, &mse);
    if (!st && aec_comm_world()->rank == 0) aec_report_metrics(m, a, 1, &f.data, metrics, mse);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
