/* The mask costs a dozen integer operations per element and the pass is otherwise a streaming copy, so
 * it is split into fixed pieces on the pool (one writer per element: identical at any thread count),
 * each run by the widest loop this CPU has (dropout_loop.h). */
#include "dropout.h"

#include <string.h>

#include "dropout_loop.h"
#include "gemm.h"
#include "platform.h"
#include "simd.h"
#include "thread_pool.h"

#define PIECE_FLOATS (64 * 1024) /* 256 KiB in, 256 KiB out: a piece stays in L2 */

DEFINE_DROPOUT_RANGE(dropout_range_portable)

/* The instruction set the GEMM kernels were chosen for (CPUID, capped by FEDSEG_NATIVE_ISA). */
static dropout_range_fn pick_range(void) {
#ifdef SIMD_HAVE_X86
  const char *isa = gemm_kernels()->isa;
  if (strcmp(isa, gemm_avx512_set.isa) == 0) return dropout_range_avx512;
  if (strcmp(isa, gemm_avx2_set.isa) == 0) return dropout_range_avx2;
#endif
  return dropout_range_portable;
}

typedef struct {
  const float *x;
  float *out;
  ptrdiff_t count;
  uint32_t seed, threshold;
  float scale;
  dropout_range_fn range;
  fs_atomic next;
} dropout_job;

static void dropout_worker(void *ctx, int ti, int tc) {
  dropout_job *j = ctx;
  for (ptrdiff_t begin; (begin = fs_atomic_fetch_add(&j->next, PIECE_FLOATS)) < j->count;) {
    ptrdiff_t end = begin + PIECE_FLOATS < j->count ? begin + PIECE_FLOATS : j->count;
    j->range(j->x, begin, end, j->seed, j->threshold, j->scale, j->out);
  }
  (void)ti;
  (void)tc;
}

void dropout_f32(const float *x, ptrdiff_t count, uint32_t seed, uint32_t threshold, float scale, float *out) {
  dropout_job j = {.x = x, .out = out, .count = count, .seed = seed, .threshold = threshold, .scale = scale, .range = pick_range()};
  if (count <= PIECE_FLOATS) {
    j.range(x, 0, count, seed, threshold, scale, out);
    return;
  }
  fs_atomic_store(&j.next, 0);
  pool_run(dropout_worker, &j);
}
