#include "movement.h"

#include <string.h>

/* Tiles dims [dim, rank) of one source block into dst; higher repeats are copies of the first. */
static void tile_rec(const float *src, const ptrdiff_t *shape, const ptrdiff_t *reps, const ptrdiff_t *src_stride,
                     const ptrdiff_t *dst_stride, int dim, int rank, float *dst) {
  if (dim == rank - 1) {
    for (ptrdiff_t r = 0; r < reps[dim]; r++) memcpy(dst + r * shape[dim], src, sizeof(float) * (size_t)shape[dim]);
    return;
  }
  for (ptrdiff_t i = 0; i < shape[dim]; i++)
    tile_rec(src + i * src_stride[dim], shape, reps, src_stride, dst_stride, dim + 1, rank, dst + i * dst_stride[dim]);
  ptrdiff_t block = shape[dim] * dst_stride[dim];
  for (ptrdiff_t r = 1; r < reps[dim]; r++) memcpy(dst + r * block, dst, sizeof(float) * (size_t)block);
}

void tile_f32(const float *x, const ptrdiff_t *shape, const ptrdiff_t *reps, int rank, float *out) {
  ptrdiff_t src_stride[MOVEMENT_MAX_RANK], dst_stride[MOVEMENT_MAX_RANK];
  ptrdiff_t s = 1, d = 1;
  for (int i = rank - 1; i >= 0; i--) {
    src_stride[i] = s;
    dst_stride[i] = d;
    s *= shape[i];
    d *= shape[i] * reps[i];
  }
  if (s == 0 || d == 0) return;
  tile_rec(x, shape, reps, src_stride, dst_stride, 0, rank, out);
}

void slice_f32(const float *x, const ptrdiff_t *shape, const ptrdiff_t *begin, const ptrdiff_t *size, int rank, float *out) {
  ptrdiff_t stride[MOVEMENT_MAX_RANK];
  ptrdiff_t s = 1, total = 1;
  for (int i = rank - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
    total *= size[i];
  }
  if (total == 0) return;
  /* Trailing dims taken whole merge into one contiguous run with the first partial dim above them. */
  int k = rank - 1;
  while (k > 0 && size[k] == shape[k]) k--;
  ptrdiff_t run = size[k] * stride[k];
  ptrdiff_t idx[MOVEMENT_MAX_RANK] = {0};
  for (;;) {
    ptrdiff_t offset = begin[k] * stride[k];
    for (int i = 0; i < k; i++) offset += (begin[i] + idx[i]) * stride[i];
    memcpy(out, x + offset, sizeof(float) * (size_t)run);
    out += run;
    int i = k - 1;
    while (i >= 0 && ++idx[i] == size[i]) idx[i--] = 0;
    if (i < 0) break;
  }
}
