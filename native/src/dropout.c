/* The mask costs a dozen integer operations per element and the pass is otherwise a streaming copy, so
 * it is split into fixed pieces on the pool (one writer per element: identical at any thread count) and
 * the loop is kept branch-free, in a form GCC, Clang and MSVC vectorise for the baseline ISA. */
#include "dropout.h"

#include <string.h>

#include "platform.h"
#include "thread_pool.h"

#define PIECE_FLOATS (64 * 1024) /* 256 KiB in, 256 KiB out: a piece stays in L2 */

/* Wellons' lowbias32 finaliser over a Weyl step, as in core/tf/dropout.ts; unsigned 32-bit wrap-around
 * is JavaScript's Math.imul / >>> 0 and WGSL's u32 arithmetic. */
static inline uint32_t dropout_hash(uint32_t seed, uint32_t index) {
  uint32_t h = seed ^ (index * 0x9e3779b9u);
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}

/* The index is the element's position modulo 2^32, as JavaScript's Math.imul sees it. */
static void dropout_range(const float *x, ptrdiff_t begin, ptrdiff_t end, uint32_t seed, uint32_t threshold, float scale,
                          float *out) {
  const uint32_t base = (uint32_t)begin;
  const ptrdiff_t n = end - begin;
  const float *src = x + begin;
  float *dst = out + begin;
  for (ptrdiff_t i = 0; i < n; i++) {
    /* x * scale in float: the exact product of two floats fits a double, so JavaScript's double
     * product rounded to float32 gives the same bits. A dropped element is +0 (all bits clear). */
    float kept = src[i] * scale;
    uint32_t bits;
    memcpy(&bits, &kept, sizeof bits);
    bits &= 0u - (uint32_t)(dropout_hash(seed, base + (uint32_t)i) < threshold);
    memcpy(dst + i, &bits, sizeof bits);
  }
}

typedef struct {
  const float *x;
  float *out;
  ptrdiff_t count;
  uint32_t seed, threshold;
  float scale;
  fs_atomic next;
} dropout_job;

static void dropout_worker(void *ctx, int ti, int tc) {
  dropout_job *j = ctx;
  for (ptrdiff_t begin; (begin = fs_atomic_fetch_add(&j->next, PIECE_FLOATS)) < j->count;) {
    ptrdiff_t end = begin + PIECE_FLOATS < j->count ? begin + PIECE_FLOATS : j->count;
    dropout_range(j->x, begin, end, j->seed, j->threshold, j->scale, j->out);
  }
  (void)ti;
  (void)tc;
}

void dropout_f32(const float *x, ptrdiff_t count, uint32_t seed, uint32_t threshold, float scale, float *out) {
  if (count <= PIECE_FLOATS) {
    dropout_range(x, 0, count, seed, threshold, scale, out);
    return;
  }
  dropout_job j = {.x = x, .out = out, .count = count, .seed = seed, .threshold = threshold, .scale = scale};
  fs_atomic_store(&j.next, 0);
  pool_run(dropout_worker, &j);
}
