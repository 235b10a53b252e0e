#include "reduce.h"

#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "thread_pool.h"

#define MAX_CHUNKS 16
#define ROWS_PER_CHUNK_MIN 512

typedef struct {
  const float *x;
  ptrdiff_t rows, cols;
  int chunks;
  double *partials; /* [chunks][cols] */
  fs_atomic next;
} sum_job;

static void sum_worker(void *ctx, int ti, int tc) {
  sum_job *j = ctx;
  for (int chunk; (chunk = fs_atomic_fetch_add(&j->next, 1)) < j->chunks;) {
    double *acc = j->partials + (ptrdiff_t)chunk * j->cols;
    ptrdiff_t r0 = j->rows * chunk / j->chunks, r1 = j->rows * (chunk + 1) / j->chunks;
    memset(acc, 0, sizeof(double) * (size_t)j->cols);
    for (ptrdiff_t r = r0; r < r1; r++) {
      const float *row = j->x + r * j->cols;
      for (ptrdiff_t c = 0; c < j->cols; c++) acc[c] += row[c];
    }
  }
  (void)ti;
  (void)tc;
}

int sum_rows_f32(const float *x, ptrdiff_t rows, ptrdiff_t cols, float *out) {
  ptrdiff_t chunks = rows / ROWS_PER_CHUNK_MIN;
  if (chunks > MAX_CHUNKS) chunks = MAX_CHUNKS;
  if (chunks < 1) chunks = 1;
  sum_job j = {.x = x, .rows = rows, .cols = cols, .chunks = (int)chunks};
  j.partials = malloc(sizeof(double) * (size_t)chunks * (size_t)(cols ? cols : 1));
  if (!j.partials) return -1;
  fs_atomic_store(&j.next, 0);
  if (chunks > 1)
    pool_run(sum_worker, &j);
  else
    sum_worker(&j, 0, 1);
  for (ptrdiff_t c = 0; c < cols; c++) {
    double total = 0;
    for (ptrdiff_t k = 0; k < chunks; k++) total += j.partials[k * cols + c];
    out[c] = (float)total;
  }
  free(j.partials);
  return 0;
}
