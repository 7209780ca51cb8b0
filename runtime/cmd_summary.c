/* cmd_summary.c — `summary`: the model table as text (layers, sizes,
 * parameters, training settings, tensors), on stdout. */
#include <string.h>

#include "cli.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int aec_cmd_summary(const aec_command *c, const aec_model *m, const aec_args *a) {
    (void)c, (void)a;
    const aec_train_config *t = &m->train;
    char shape[64];
    aec_shape_str(shape, sizeof shape, m->input_ndim, m->input_shape);
    printf("model %s (%s)\n", m->name, m->dtype == AEC_F64 ? "f64" : "f32");
    if (m->summary)
        printf("\n%s%s\n", m->summary,
               m->summary[0] && m->summary[strlen(m->summary) - 1] == '\n' ? "" : "\n");
    printf("input      %s (%lld values)\n", shape, (long long)m->input_size);
    printf("code       %lld values\n", (long long)m->code_size);
    printf("params     %lld (%lld trainable)\n", (long long)m->param_count,
           (long long)m->trainable_count);
    printf("optimizer  %s lr=%g", aec_optimizer_name(t->optimizer), t->lr);
    if (t->optimizer == AEC_OPT_MOMENTUM) printf(" momentum=%g", t->momentum);
    if (t->optimizer == AEC_OPT_ADAM || t->optimizer == AEC_OPT_ADAMW)
        printf(" beta1=%g beta2=%g eps=%g", t->beta1, t->beta2, t->eps);
    if (t->optimizer == AEC_OPT_RMSPROP) printf(" eps=%g", t->eps);
    if (t->decay) printf(" decay=%g", t->decay);
    printf(" (%lld state values)\n", (long long)m->opt_state_count);
    printf("train      loss %s, batch %d, epochs %d, seed %llu", aec_loss_name(t->loss), t->batch,
           t->epochs, (unsigned long long)t->seed);
    if (t->validation > 0) printf(", validation %g", t->validation);
    if (t->early_stop > 0) printf(", early_stop %d min_delta=%g", t->early_stop, t->min_delta);
    if (t->pretrain_epochs > 0)
        printf(", pretrain layerwise %d (%d stages)", t->pretrain_epochs, m->n_stages);
    if (m->n_metrics > 1) {
        printf("\nobjective  loss =");
        for (int i = 1; i < m->n_metrics; i++)
            printf(" %s%s", i > 1 ? "+ w*" : "", m->metric_names[i]);
        printf("%s", m->variational ? " (the negative ELBO; code z ~ N(mu, sigma^2))" : "");
    }
    printf("\nmax batch  %d\n\ntensors:\n", m->max_batch);
    for (int i = 0; i < m->n_tensors; i++) {
        const aec_tensor_info *ti = &m->tensors[i];
        char dims[64] = "";
        size_t at = 0;
        for (int k = 0; k < ti->ndim && at < sizeof dims; k++)
            at += (size_t)snprintf(dims + at, sizeof dims - at, k ? ", %d" : "%d", ti->shape[k]);
        printf("  %-32s [%s]%s\n", ti->name, dims,
               ti->kind == AEC_TENSOR_BUFFER ? "  (buffer)" : "");
    }
    return 0;
}
