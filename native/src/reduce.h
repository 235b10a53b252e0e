/* Column sums of a row-major [rows x cols] float32 matrix: what Sum over the leading axes (every
 * bias gradient) reduces to. TF.js's wasm backend transposes the tensor first; this reads it once. */
#ifndef FEDSEG_REDUCE_H
#define FEDSEG_REDUCE_H

#include <stddef.h>

/* out[c] = sum_r x[r * cols + c], accumulated in double over fixed row chunks summed in order, so the
 * result does not depend on the thread count. Returns -1 when scratch memory is unavailable. */
int sum_rows_f32(const float *x, ptrdiff_t rows, ptrdiff_t cols, float *out);

#endif
