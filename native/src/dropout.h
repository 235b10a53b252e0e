/* Seeded inverted dropout: voxel i is kept when hash(seed, i) < threshold and then scaled, else zero.
 * Bit-identical to core/tf/dropout.ts (its JavaScript loop and WGSL shader), which computes threshold
 * and scale from the rate, so every backend drops the same voxels. */
#ifndef FEDSEG_DROPOUT_H
#define FEDSEG_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

/* out[i] = hash(seed, i) < threshold ? x[i] * scale : 0, on the pool's threads. x and out must not overlap. */
void dropout_f32(const float *x, ptrdiff_t count, uint32_t seed, uint32_t threshold, float scale, float *out);

#endif
