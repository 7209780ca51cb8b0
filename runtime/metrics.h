/* metrics.h — the names of a model's metrics: one table for the compiler
 * and the runtime.
 *
 * A model reports its loss, then (when the loss has more than one term) the
 * reconstruction and each term it has, in this order; the compiler
 * (compiler/lower.c) writes the names into the model table's metric_names,
 * and the runtime finds terms by them (the ELBO is -(recon + kl)), prints
 * them and uses them as JSON keys. Both include this header, so the names
 * cannot drift apart. Appending is safe; renaming changes what users see
 * (DESIGN: JSON keys are kept).
 */
#ifndef AEC_METRICS_H
#define AEC_METRICS_H

/* X(ID, name): AEC_METRIC_ID is the row, "name" what the model table holds. */
#define AEC_METRICS(X)                                                                             \
    X(LOSS, "loss")               /* the loss the optimizer minimizes: metrics[0] */               \
    X(RECON, "recon")             /* the reconstruction term (the spec's loss) */                  \
    X(KL, "kl")                   /* a variational code's KL divergence from N(0, I) */            \
    X(L1_CODE, "l1_code")         /* regularize l1 code: mean |code| */                            \
    X(KL_SPARSITY, "kl_sparsity") /* regularize kl_sparsity: KL(rho || mean activation) */         \
    X(CONTRACTIVE, "contractive") /* regularize contractive: the Jacobian's squared norm */        \
    X(L2_WEIGHTS, "l2_weights")   /* regularize l2 weights */                                      \
    X(L1_WEIGHTS, "l1_weights")   /* regularize l1 weights */

typedef enum aec_metric {
#define AEC_METRIC_ENUM(id, name) AEC_METRIC_##id,
    AEC_METRICS(AEC_METRIC_ENUM)
#undef AEC_METRIC_ENUM
        AEC_N_METRIC_NAMES,
    AEC_METRIC_FIRST_TERM = AEC_METRIC_KL, /* the terms beyond the reconstruction start here */
} aec_metric;

static inline const char *aec_metric_name(aec_metric k) {
    static const char *const names[] = {
#define AEC_METRIC_NAME(id, name) name,
        AEC_METRICS(AEC_METRIC_NAME)
#undef AEC_METRIC_NAME
    };
    return k >= 0 && k < AEC_N_METRIC_NAMES ? names[k] : "?";
}

#endif
