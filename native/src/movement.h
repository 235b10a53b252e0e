/* Data-movement ops that TF.js's wasm backend runs element by element (Tile, Slice on rank >= 4):
 * here they are runs of memcpy. Pure copies, so results are bit-identical to TF.js. Any rank <= 8. */
#ifndef FEDSEG_MOVEMENT_H
#define FEDSEG_MOVEMENT_H

#include <stddef.h>

#define MOVEMENT_MAX_RANK 8

/* out[i] = x[i mod shape] with out shape = shape * reps (elementwise). */
void tile_f32(const float *x, const ptrdiff_t *shape, const ptrdiff_t *reps, int rank, float *out);
/* out = x[begin : begin + size] (every begin + size <= shape; checked by the caller). */
void slice_f32(const float *x, const ptrdiff_t *shape, const ptrdiff_t *begin, const ptrdiff_t *size, int rank, float *out);

#endif
