#include "pool3d.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "thread_pool.h"

typedef struct {
  const pool3d_shape *s;
  const float *x, *dy;
  float *out; /* y (forward) or dx (backward) */
  int backward;
  fs_atomic next_plane;
  fs_atomic failed;
} pool_job;

/* Valid window range [lo, hi) along one axis for output index o. */
static inline void window(int o, int stride, int pad, int filter, int size, int *lo, int *hi) {
  int start = o * stride - pad;
  *lo = start < 0 ? 0 : start;
  *hi = start + filter < size ? start + filter : size;
}

static void pool_plane(const pool_job *j, ptrdiff_t plane, float *best, ptrdiff_t *where) {
  const pool3d_shape *s = j->s;
  const int c = s->channels;
  const int b = (int)(plane / s->out_d), od = (int)(plane % s->out_d);
  const ptrdiff_t in_plane = (ptrdiff_t)s->in_h * s->in_w * c;
  const float *xb = j->x + (ptrdiff_t)b * s->in_d * in_plane;
  int d0, d1;
  window(od, s->stride[0], s->pad[0], s->filter[0], s->in_d, &d0, &d1);
  for (int oh = 0; oh < s->out_h; oh++) {
    int h0, h1;
    window(oh, s->stride[1], s->pad[1], s->filter[1], s->in_h, &h0, &h1);
    for (int ow = 0; ow < s->out_w; ow++) {
      int w0, w1;
      window(ow, s->stride[2], s->pad[2], s->filter[2], s->in_w, &w0, &w1);
      for (int ch = 0; ch < c; ch++) {
        best[ch] = -INFINITY;
        where[ch] = -1;
      }
      for (int d = d0; d < d1; d++)
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) {
            ptrdiff_t base = d * in_plane + ((ptrdiff_t)h * s->in_w + w) * c;
            const float *px = xb + base;
            if (j->backward) {
              for (int ch = 0; ch < c; ch++)
                if (px[ch] >= best[ch]) {
                  best[ch] = px[ch];
                  where[ch] = base + ch;
                }
            } else {
              for (int ch = 0; ch < c; ch++)
                if (px[ch] > best[ch]) best[ch] = px[ch];
            }
          }
      ptrdiff_t o = ((((ptrdiff_t)b * s->out_d + od) * s->out_h + oh) * s->out_w + ow) * c;
      if (j->backward) {
        float *dxb = j->out + (ptrdiff_t)b * s->in_d * in_plane;
        for (int ch = 0; ch < c; ch++)
          if (where[ch] >= 0) dxb[where[ch]] += j->dy[o + ch];
      } else {
        memcpy(j->out + o, best, sizeof(float) * (size_t)c);
      }
    }
  }
}

static void pool_worker(void *ctx, int ti, int tc) {
  pool_job *j = ctx;
  float *best = malloc(sizeof(float) * (size_t)j->s->channels);
  ptrdiff_t *where = malloc(sizeof(ptrdiff_t) * (size_t)j->s->channels);
  if (!best || !where) {
    fs_atomic_store(&j->failed, 1);
  } else {
    const ptrdiff_t planes = (ptrdiff_t)j->s->batch * j->s->out_d;
    for (ptrdiff_t p; (p = fs_atomic_fetch_add(&j->next_plane, 1)) < planes;) pool_plane(j, p, best, where);
  }
  free(best);
  free(where);
  (void)ti;
  (void)tc;
}

static int run(pool_job *j, int parallel) {
  fs_atomic_store(&j->next_plane, 0);
  fs_atomic_store(&j->failed, 0);
  if (parallel)
    pool_run(pool_worker, j);
  else
    pool_worker(j, 0, 1);
  return fs_atomic_load(&j->failed) ? -1 : 0;
}

int maxpool3d_forward(const pool3d_shape *s, const float *x, float *y) {
  pool_job j = {.s = s, .x = x, .out = y, .backward = 0};
  return run(&j, 1);
}

int maxpool3d_backward(const pool3d_shape *s, const float *x, const float *dy, float *dx) {
  memset(dx, 0, sizeof(float) * (size_t)s->batch * s->in_d * s->in_h * s->in_w * s->channels);
  pool_job j = {.s = s, .x = x, .dy = dy, .out = dx, .backward = 1};
  /* Output planes scatter into disjoint input planes only when depth windows do not overlap. */
  return run(&j, s->stride[0] >= s->filter[0]);
}
