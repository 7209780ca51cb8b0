/* timeline.c — where a training step's time goes, region by region.
 *
 * Linked against one object of a spec, its model renamed `vt`
 * (bench/timeline.sh does that). Runs training steps on Fashion-MNIST
 * batches through a pool of THREADS threads whose parallel-for is wrapped:
 * for each parallel region of a step, in order, it records the task
 * function, the task count, the time inside the region and the time the
 * caller spent between it and the region before (serial work, during which
 * the workers wait). Prints one line per region, averaged over STEPS steps
 * after WARMUP: `index task-address (decimal) tasks us-in-region us-before`, and a
 * first line with the step's total; timeline.sh names the addresses.
 * Usage: timeline THREADS [STEPS [DATA]]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "aec.h"
#include "pool.h"
#define BENCH_NAME "timeline"
#define BENCH_IDX
#include "common.h"

#define WARMUP 10
#define MAX_REGIONS 1024
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

extern const aec_model vt_model;

static struct {
    void (*fn)(void *, int64_t);
    int64_t tasks;
    double inside, before; /* seconds, summed over the timed steps */
} regions[MAX_REGIONS];
static int nregions, region; /* regions per step; the current one */
static double last_end;      /* when the last region (or the step) ended */
static int timing;

static void timed_parallel_for(void *pool, int64_t n, void (*fn)(void *, int64_t), void *arg) {
    double t0 = now();
    aec_pool_parallel_for(pool, n, fn, arg);
    double t1 = now();
    if (timing && region < MAX_REGIONS) {
        regions[region].fn = fn;
        regions[region].tasks = n;
        regions[region].inside += t1 - t0;
        regions[region].before += t0 - last_end;
    }
    region++;
    last_end = t1;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, steps = argc > 2 ? atoi(argv[2]) : 100;
    const aec_model *m = &vt_model;
    if (m->dtype != AEC_F32 || steps < 1) {
        fprintf(stderr, "timeline: an f32 spec and STEPS >= 1, please\n");
        return 1;
    }
    int batch = m->train.batch, n;
    float *data = load_idx(argc > 3 ? argv[3] : DEFAULT_DATA, m->input_size, 0, &n);
    float *params = xalloc(sizeof(float) * (size_t)m->param_count);
    float *opt = xalloc(sizeof(float) * (size_t)(m->opt_state_count + 1));
    void *ws = xalloc(m->workspace_size(batch));
    if (m->init(params, 1)) {
        fprintf(stderr, "timeline: init failed\n");
        return 1;
    }
    aec_pool *pool = aec_pool_new(threads);
    aec_exec exec = {.parallel_for = timed_parallel_for, .pool = pool};
    double total = 0, after = 0;
    for (int s = 0; s < WARMUP + steps; s++) {
        const float *x = data + (size_t)(((uint64_t)s * (uint64_t)batch) % (uint64_t)(n - batch)) *
                                    (size_t)m->input_size;
        float loss;
        timing = s >= WARMUP;
        region = 0;
        double t0 = now();
        last_end = t0;
        if (m->train_step_ex(params, opt, x, NULL, batch, (uint64_t)s + 1, &loss, ws, &exec)) {
            fprintf(stderr, "timeline: train_step failed\n");
            return 1;
        }
        double t1 = now();
        if (timing) total += t1 - t0, after += t1 - last_end;
        if (region > nregions) nregions = region;
    }
    if (nregions > MAX_REGIONS) nregions = MAX_REGIONS;
    double inside = 0;
    for (int i = 0; i < nregions; i++)
        inside += regions[i].inside;
    printf("step %.1f us at %d thread(s), batch %d, %d regions: %.1f us in them, %.1f between\n",
           1e6 * total / steps, aec_pool_threads(pool), batch, nregions, 1e6 * inside / steps,
           1e6 * (total - inside) / steps);
    for (int i = 0; i < nregions; i++)
        printf("%d %llu %lld %.1f %.1f\n", i, (unsigned long long)(uintptr_t)regions[i].fn,
               (long long)regions[i].tasks, 1e6 * regions[i].inside / steps,
               1e6 * regions[i].before / steps);
    printf("after %.1f\n", 1e6 * after / steps);
    aec_pool_free(pool);
    return 0;
}
