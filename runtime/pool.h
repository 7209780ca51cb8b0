/* pool.h — the trainer's thread pool (runtime/pool.c): the parallel-for a
 * model's aec_exec takes. An embedder may use it or pass its own. */
#ifndef AEC_POOL_H
#define AEC_POOL_H

#include <stdint.h>

typedef struct aec_pool aec_pool;

/* `threads` in all, counting the caller (1: none started); NULL when out
 * of memory. */
aec_pool *aec_pool_new(int threads);
void aec_pool_free(aec_pool *p);
int aec_pool_threads(const aec_pool *p);
/* Runs fn(arg, t) for t in [0, ntasks) on the caller and the workers;
 * returns when all have finished. The signature of aec_exec.parallel_for. */
void aec_pool_parallel_for(void *pool, int64_t ntasks, void (*fn)(void *arg, int64_t task),
                           void *arg);
/* The online CPUs: the default of --threads. */
int aec_online_cpus(void);

/* The trainer's exec for the model's entry points: a pool of `threads`
 * (made on the first call; 1 thread: no pool, NULL), which
 * aec_trainer_exec() returns until the process ends. */
struct aec_exec;
const struct aec_exec *aec_trainer_set_threads(int threads);
const struct aec_exec *aec_trainer_exec(void);

#endif
