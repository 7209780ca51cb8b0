/* plot.c — loss curves as a PNG, drawn by PLplot (its cairo PNG driver).
 *
 * Takes per-epoch series (the training loss, the validation loss, and the
 * loss's terms) and produces one chart: loss against epoch, a legend, a
 * logarithmic loss axis when the values span more than a factor of 20.
 * PLplot writes the temporary that aec_atomic renames, so a chart redrawn after
 * every epoch (`train --plot`) is replaced whole, never seen half-written.
 * Also `aec_plot_log`: the series read from `train --json` output.
 */
#include <errno.h>
#include <math.h>
#include <plplot/plplot.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rt.h"

/* PLplot's cmap0 colours, one per series: red, blue, green, magenta, ... */
static const PLINT colours[AEC_MAX_CURVES] = {1, 9, 3, 13, 8, 10, 12, 4, 6, 7};

int aec_plot_curves(const char *path, const aec_curves *all) {
    /* The series with something to draw (no validation: no val_loss). */
    aec_curves kept = *all, *c = &kept;
    int ns = 0;
    for (int s = 0; s < all->n_series; s++) {
        int any = 0;
        for (int64_t i = 0; i < all->n; i++)
            any |= isfinite(all->y[s][i]);
        if (any) kept.names[ns] = all->names[s], kept.y[ns++] = all->y[s];
    }
    kept.n_series = ns;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < ns; s++)
        for (int64_t i = 0; i < c->n; i++) {
            double v = c->y[s][i];
            if (isfinite(v) && v > 0) lo = fmin(lo, v), hi = fmax(hi, v);
            if (isfinite(v) && v <= 0) lo = -INFINITY;
        }
    if (c->n < 1 || !isfinite(hi)) {
        aec_error("%s: no finite loss to plot", path);
        return AEC_EFORMAT;
    }
    int logy = isfinite(lo) && lo > 0 && hi / lo > 20;
    double ylo = logy ? floor(log10(lo)) : fmin(0, isfinite(lo) ? lo : 0);
    double yhi = logy ? ceil(log10(hi)) : hi * 1.05;
    if (!isfinite(lo)) /* a term <= 0: the axis starts at the lowest value */
        for (int s = 0; s < ns; s++)
            for (int64_t i = 0; i < c->n; i++)
                if (isfinite(c->y[s][i])) ylo = fmin(ylo, c->y[s][i]);
    double x0 = c->x[0], x1 = c->x[c->n - 1] > x0 ? c->x[c->n - 1] : x0 + 1;
    PLFLT *ys = malloc((size_t)c->n * sizeof *ys), *xs = malloc((size_t)c->n * sizeof *xs);
    if (!ys || !xs) {
        free(ys);
        free(xs);
        return AEC_ENOMEM;
    }
    aec_atomic a;
    int st = aec_atomic_begin(&a, path);
    if (st) {
        free(ys);
        free(xs);
        return st;
    }
    plsdev("pngcairo");
    plsfnam(a.tmp); /* PLplot opens (and at plend closes) the temporary itself */
    plspage(0, 0, 900, 560, 0, 0);
    plscolbg(255, 255, 255);
    plscol0(15, 0, 0, 0); /* black text and axes on the white background */
    plinit();
    plcol0(15);
    plenv(x0, x1, ylo, yhi, 0, logy ? 20 : 0);
    pllab("epoch", logy ? "loss (log scale)" : "loss", c->title ? c->title : "");
    PLINT opts[AEC_MAX_CURVES], cols[AEC_MAX_CURVES], styles[AEC_MAX_CURVES],
        text_cols[AEC_MAX_CURVES];
    PLFLT widths[AEC_MAX_CURVES];
    const char *names[AEC_MAX_CURVES];
    for (int s = 0; s < ns; s++) {
        /* A series is drawn between consecutive finite points (val may be absent). */
        int64_t m = 0;
        for (int64_t i = 0; i < c->n; i++)
            if (isfinite(c->y[s][i]) && (!logy || c->y[s][i] > 0)) {
                xs[m] = c->x[i];
                ys[m++] = logy ? log10(c->y[s][i]) : c->y[s][i];
            }
        int loss = strstr(c->names[s], "_loss") != NULL; /* the losses solid, the terms dashed */
        plcol0(colours[s]);
        pllsty(loss ? 1 : 2);
        plwidth(loss ? 2.0 : 1.0);
        if (m > 1) plline((PLINT)m, xs, ys);
        if (m > 0) plpoin((PLINT)m, xs, ys, 17);
        opts[s] = PL_LEGEND_LINE;
        cols[s] = text_cols[s] = colours[s];
        styles[s] = loss ? 1 : 2;
        widths[s] = loss ? 2.0 : 1.0;
        names[s] = c->names[s];
    }
    pllsty(1);
    plwidth(1.0);
    PLFLT lw, lh;
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_TOP | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.02, 0.08, 0, 15, 1,
             0, 0, ns, opts, 1.0, 0.9, 1.8, 0.0, text_cols, names, NULL, NULL, NULL, NULL, cols,
             styles, widths, NULL, NULL, NULL, NULL);
    plend();
    free(ys);
    free(xs);
    return aec_atomic_commit(&a);
}

void aec_curves_free(aec_curves *c) {
    for (int s = 0; s < c->n_series; s++) {
        free(c->y[s]);
        free(c->names[s]);
    }
    free(c->x);
    memset(c, 0, sizeof *c);
}

/* Series s named `name`, created (NaN-filled up to cap) when new. */
static double *series(aec_curves *c, const char *name, int64_t cap) {
    for (int s = 0; s < c->n_series; s++)
        if (!strcmp(c->names[s], name)) return c->y[s];
    if (c->n_series == AEC_MAX_CURVES) return NULL;
    double *y = malloc((size_t)cap * sizeof *y);
    char *copy = strdup(name);
    if (!y || !copy) {
        free(y);
        free(copy);
        return NULL;
    }
    for (int64_t i = 0; i < cap; i++)
        y[i] = NAN;
    c->y[c->n_series] = y;
    c->names[c->n_series++] = copy;
    return y;
}

static double number(json_object *o, const char *key) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v) return NAN;
    return json_object_get_double(v);
}

int aec_plot_log(const char *log, aec_curves *c) {
    memset(c, 0, sizeof *c);
    FILE *f = fopen(log, "r");
    if (!f) {
        aec_error("%s: cannot open: %s", log, strerror(errno));
        return AEC_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    int64_t lines = 0, n = 0, room = 0;
    int st = AEC_OK;
    while (!st && getline(&line, &cap, f) > 0) {
        lines++;
        json_object *o = json_tokener_parse(line);
        json_object *ev, *terms;
        if (!o) {
            aec_error("%s:%lld: not a JSON object (expected `train --json` output)", log,
                      (long long)lines);
            st = AEC_EFORMAT;
            break;
        }
        if (json_object_object_get_ex(o, "event", &ev) &&
            !strcmp(json_object_get_string(ev), "epoch")) {
            if (n == room) { /* grow every series together */
                room = room ? 2 * room : 64;
                double *x = realloc(c->x, (size_t)room * sizeof *x);
                st = x ? AEC_OK : AEC_ENOMEM;
                if (x) c->x = x;
                for (int s = 0; !st && s < c->n_series; s++) {
                    double *y = realloc(c->y[s], (size_t)room * sizeof *y);
                    if (!y)
                        st = AEC_ENOMEM;
                    else
                        c->y[s] = y;
                    for (int64_t i = n; y && i < room; i++)
                        y[i] = NAN;
                }
            }
            double *tr = st ? NULL : series(c, "train_loss", room);
            double *va = st ? NULL : series(c, "val_loss", room);
            if (!st && (!tr || !va)) st = AEC_ENOMEM;
            if (!st) {
                c->x[n] = number(o, "epoch");
                tr[n] = number(o, "train_loss");
                va[n] = number(o, "val_loss");
            }
            if (!st && json_object_object_get_ex(o, "terms", &terms) && terms) {
                json_object_object_foreach(terms, key, val) {
                    double *y = series(c, key, room);
                    if (y) y[n] = val ? json_object_get_double(val) : NAN;
                }
            }
            n++;
        }
        json_object_put(o);
    }
    free(line);
    fclose(f);
    c->n = n;
    if (!st && n == 0) {
        aec_error("%s: no {\"event\":\"epoch\"} lines (write it with `train --json > LOG`)", log);
        st = AEC_EFORMAT;
    }
    return st;
}

int aec_plot_scatter(const char *path, const double *xy, const int32_t *labels, int64_t n,
                     const char *title, const char *xlabel, const char *ylabel) {
    if (n < 1) {
        aec_error("%s: no points to plot", path);
        return AEC_EFORMAT;
    }
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    for (int64_t i = 0; i < n; i++) {
        x0 = fmin(x0, xy[2 * i]), x1 = fmax(x1, xy[2 * i]);
        y0 = fmin(y0, xy[2 * i + 1]), y1 = fmax(y1, xy[2 * i + 1]);
        lo = labels[i] < lo ? labels[i] : lo;
        hi = labels[i] > hi ? labels[i] : hi;
    }
    double padx = 0.05 * (x1 - x0) + 1e-9, pady = 0.05 * (y1 - y0) + 1e-9;
    int classes = hi - lo + 1 <= AEC_MAX_CURVES ? hi - lo + 1 : AEC_MAX_CURVES;
    PLFLT *px = malloc((size_t)n * sizeof *px), *py = malloc((size_t)n * sizeof *py);
    aec_atomic a;
    int st = px && py ? aec_atomic_begin(&a, path) : AEC_ENOMEM;
    if (st) {
        free(px);
        free(py);
        return st;
    }
    plsdev("pngcairo");
    plsfnam(a.tmp);
    plspage(0, 0, 900, 760, 0, 0);
    plscolbg(255, 255, 255);
    plscol0(15, 0, 0, 0);
    plinit();
    plcol0(15);
    plenv(x0 - padx, x1 + padx, y0 - pady, y1 + pady * 6, 0, 0); /* room for the legend */
    pllab(xlabel, ylabel, title);
    PLINT opts[AEC_MAX_CURVES], cols[AEC_MAX_CURVES], syms_n[AEC_MAX_CURVES];
    PLFLT scales[AEC_MAX_CURVES];
    char names[AEC_MAX_CURVES][24];
    const char *text[AEC_MAX_CURVES], *syms[AEC_MAX_CURVES];
    /* One class at a time, its points in the class's colour (labels past
     * the tenth share the last colour). */
    for (int c = 0; c < classes; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) {
            int k = labels[i] - lo < classes ? labels[i] - lo : classes - 1;
            if (k == c) px[m] = xy[2 * i], py[m++] = xy[2 * i + 1];
        }
        plcol0(colours[c]);
        plssym(0, 0.5);
        if (m) plstring((PLINT)m, px, py, "#(728)");
        opts[c] = PL_LEGEND_SYMBOL;
        cols[c] = colours[c];
        syms_n[c] = 1;
        scales[c] = 1.5;
        syms[c] = "#(728)";
        snprintf(names[c], sizeof names[c],
                 c == classes - 1 && hi - lo + 1 > classes ? "%d+" : "%d", lo + c);
        text[c] = names[c];
    }
    plcol0(15);
    PLFLT lw, lh;
    pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             PL_POSITION_TOP | PL_POSITION_INSIDE, 0, 0.01, 0.05, 0, 15, 1, 2, (classes + 1) / 2,
             classes, opts, 0.6, 0.8, 1.5, 0.0, cols, text, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, cols, scales, syms_n, syms);
    plend();
    free(px);
    free(py);
    return aec_atomic_commit(&a);
}
