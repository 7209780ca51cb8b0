/* rng.c — the counter-based random generator and the shuffle built on it.
 *
 * Takes (seed, stream, counter) and produces 64 random bits; no state, so a
 * value can be recomputed anywhere, in any order, by any thread. Generated
 * code implements the same three functions, so these must stay bit for bit
 * as they are: changing one changes every trained model.
 */
#include <math.h>

#include "rt.h"

/* splitmix64 (Steele, Lea, Flood 2014): advance by the golden gamma, then
 * the finalizer, a bijection with full avalanche. */
uint64_t aec_mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Mixing between the inputs keeps (seed, stream, counter) triples apart:
 * nearby seeds or streams do not give shifted copies of one sequence. */
uint64_t aec_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter) {
    return aec_mix64(aec_mix64(aec_mix64(seed) ^ stream) ^ counter);
}

/* The top 53 bits make every double in [0, 1) with spacing 2^-53 equally likely. */
double aec_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter) {
    return (double)(aec_rng_u64(seed, stream, counter) >> 11) * 0x1.0p-53;
}

uint64_t aec_rng_noise(uint64_t seed, uint64_t stream, uint64_t step, uint64_t counter) {
    return aec_mix64(aec_rng_u64(seed, stream, step) ^ counter);
}

double aec_rng_normal(uint64_t seed, uint64_t stream, uint64_t i) {
    double u1 = aec_rng_uniform(seed, stream, 2 * i), u2 = aec_rng_uniform(seed, stream, 2 * i + 1);
    return sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
}

/* Counter i draws the partner of position i, so the permutation depends only
 * on (seed, stream, n): an epoch's order is recomputed exactly on resume. */
void aec_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(aec_rng_uniform(seed, stream, (uint64_t)i) * (double)(i + 1));
        if (j > i) j = i; /* cannot happen below 2^53; keeps the bound obvious */
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
