/* rng.h - the seedable generator behind training's shuffling
 *
 * xoshiro256** (Blackman and Vigna, 2018), its 256-bit state seeded from a
 * 64-bit seed with splitmix64, as the authors recommend.  Same seed, same
 * sequence on every host and build; the state is four integers, saved in
 * checkpoints.  Not for cryptography.
 */
#ifndef DC_RNG_H
#define DC_RNG_H

#include <stddef.h>
#include <stdint.h>

struct dc_rng {
    uint64_t s[4];
};

void dc_rng_seed (struct dc_rng *r, uint64_t seed);
uint64_t dc_rng_next (struct dc_rng *r);

/* Uniform in [0, n) without modulo bias (Lemire's method); n > 0. */
uint64_t dc_rng_below (struct dc_rng *r, uint64_t n);

/* idx[0..n) = a uniformly random permutation of 0..n-1 (Fisher-Yates,
 * from the last element down, consuming n-1 draws). */
void dc_rng_permute (struct dc_rng *r, size_t *idx, size_t n);

#endif
