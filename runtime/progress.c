/* progress.c — what the trainer tells the person running it while it trains.
 *
 * A progress line — epoch, batch
 * i/n, running loss, samples/s, ETA — goes to stderr: on a terminal one line
 * rewritten with \r at most 10 times a second, otherwise plain lines (one per
 * epoch, and one every ~10 s within a long epoch) so logs stay readable.
 * With --json, one JSON object per epoch goes to stdout, which then carries
 * nothing else.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

/* "1:02:03", "4:05", "17s" or "0.4s". */
static void format_duration(char *buf, size_t size, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (s < 9.95)
        snprintf(buf, size, "%.1fs", s);
    else if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

void aec_progress_start(aec_progress *p, int32_t epochs, int32_t first_epoch, int64_t batches,
                        int64_t samples, int quiet, int json) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->json = json;
    p->epochs = epochs;
    p->batches = batches;
    p->samples = samples;
    p->samples_left = (int64_t)(epochs - first_epoch) * samples;
    p->t_start = p->t_epoch = p->t_print = aec_now();
}

void aec_progress_clear(aec_progress *p) {
    if (p->live) fputs("\r\033[K", stderr);
    p->live = 0;
}

/* Rate over the whole run so far, ETA over the work left in the run. */
static void rate_eta(const aec_progress *p, double now, double *rate, char *eta, size_t size) {
    double elapsed = now - p->t_start;
    *rate = elapsed > 0 ? (double)p->samples_done / elapsed : 0;
    format_duration(eta, size, *rate > 0 ? (double)p->samples_left / *rate : NAN);
}

void aec_progress_batch(aec_progress *p, int32_t epoch, int64_t b, int bs, double loss) {
    p->samples_done += bs;
    p->samples_left -= bs;
    if (p->quiet) return;
    double now = aec_now();
    /* A terminal redraws 10 times a second; a log gets a line every 10 s. */
    double every = p->tty ? 0.1 : 10.0;
    if (now - p->t_print < every && b != p->batches) return;
    if (!p->tty && b == p->batches) return; /* the epoch line follows */
    p->t_print = now;
    double rate;
    char eta[32];
    rate_eta(p, now, &rate, eta, sizeof eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[Kepoch %d/%d  batch %lld/%lld  loss %.6g  %.0f samples/s  ETA %s",
                epoch, p->epochs, (long long)b, (long long)p->batches, loss, rate, eta);
        p->live = 1;
    } else {
        fprintf(stderr, "epoch %d/%d  batch %lld/%lld  loss %.6g  %.0f samples/s  ETA %s\n", epoch,
                p->epochs, (long long)b, (long long)p->batches, loss, rate, eta);
    }
    fflush(stderr);
}

static void json_add_double(json_object *o, const char *key, double v) {
    /* NaN and infinities are not JSON: absent values are null. */
    json_object_object_add(o, key, isfinite(v) ? json_object_new_double(v) : NULL);
}

void aec_progress_terms(aec_progress *p, const aec_model *m, const double *train,
                        const double *val) {
    p->terms_of = m->n_metrics > 1 ? m : NULL;
    p->has_val_terms = val != NULL;
    for (int i = 0; i < m->n_metrics && i < AEC_MAX_METRICS; i++) {
        p->terms[i] = train[i];
        p->val_terms[i] = val ? val[i] : NAN;
    }
}

/* "  (recon 25.3  kl 4.1  elbo -29.4)" after the loss. */
static void terms_text(const aec_progress *p, char *buf, size_t size) {
    const aec_model *m = p->terms_of;
    if (!m) return;
    size_t n = (size_t)snprintf(buf, size, "  (");
    for (int i = 1; i < m->n_metrics && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s %.6g", i > 1 ? "  " : "", m->metric_names[i],
                              p->terms[i]);
    double elbo = aec_elbo(m, p->terms);
    if (!isnan(elbo) && n < size) n += (size_t)snprintf(buf + n, size - n, "  elbo %.6g", elbo);
    if (n < size) snprintf(buf + n, size - n, ")");
}

static void terms_json(const aec_progress *p, json_object *o) {
    const aec_model *m = p->terms_of;
    if (!m) return;
    for (int v = 0; v < 1 + p->has_val_terms; v++) {
        const double *x = v ? p->val_terms : p->terms;
        json_object *t = json_object_new_object();
        for (int i = 1; i < m->n_metrics; i++)
            json_object_object_add(t, m->metric_names[i],
                                   isfinite(x[i]) ? json_object_new_double(x[i]) : NULL);
        json_object_object_add(o, v ? "val_terms" : "terms", t);
        double elbo = aec_elbo(m, x);
        if (!isnan(elbo)) json_add_double(o, v ? "val_elbo" : "elbo", elbo);
    }
}

void aec_progress_stage(aec_progress *p, int32_t stage, int32_t stages, int32_t epoch,
                        int32_t epochs, double loss, double seconds) {
    if (!p->quiet) {
        char took[32];
        format_duration(took, sizeof took, seconds);
        fprintf(stderr, "pretrain stage %d/%d  epoch %d/%d  loss %.6g  %s\n", stage, stages, epoch,
                epochs, loss, took);
        fflush(stderr);
    }
    if (p->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "event", json_object_new_string("pretrain"));
        json_object_object_add(o, "stage", json_object_new_int(stage));
        json_object_object_add(o, "stages", json_object_new_int(stages));
        json_object_object_add(o, "epoch", json_object_new_int(epoch));
        json_object_object_add(o, "epochs", json_object_new_int(epochs));
        json_add_double(o, "train_loss", loss);
        json_add_double(o, "seconds", seconds);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        fflush(stdout);
        json_object_put(o);
    }
}

void aec_progress_epoch(aec_progress *p, int32_t epoch, int64_t step, double train_loss,
                        double val_loss, const char *note) {
    double now = aec_now();
    double secs = now - p->t_epoch;
    double rate;
    char eta[32];
    rate_eta(p, now, &rate, eta, sizeof eta);
    rate = secs > 0 ? (double)p->samples / secs : 0; /* this epoch's, validation included */
    p->t_epoch = p->t_print = now;
    if (!p->quiet) {
        aec_progress_clear(p);
        char val[64] = "";
        if (!isnan(val_loss)) snprintf(val, sizeof val, "  val_loss %.6g", val_loss);
        char took[32], terms[512] = "";
        format_duration(took, sizeof took, secs);
        terms_text(p, terms, sizeof terms);
        fprintf(stderr, "epoch %d/%d  loss %.6g%s%s  %s  %.0f samples/s%s%s%s%s\n", epoch,
                p->epochs, train_loss, terms, val, took, rate, epoch < p->epochs ? "  ETA " : "",
                epoch < p->epochs ? eta : "", note && *note ? "  " : "", note ? note : "");
        fflush(stderr);
    }
    if (p->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "event", json_object_new_string("epoch"));
        json_object_object_add(o, "epoch", json_object_new_int(epoch));
        json_object_object_add(o, "epochs", json_object_new_int(p->epochs));
        json_object_object_add(o, "step", json_object_new_int64(step));
        json_add_double(o, "train_loss", train_loss);
        json_add_double(o, "val_loss", val_loss);
        terms_json(p, o);
        json_add_double(o, "seconds", secs);
        json_add_double(o, "samples_per_s", rate);
        if (note && *note) json_object_object_add(o, "note", json_object_new_string(note));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        fflush(stdout);
        json_object_put(o);
    }
}
