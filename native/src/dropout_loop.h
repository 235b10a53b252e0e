/* The dropout loop, instantiated per instruction set like the GEMM micro-kernels: dropout.c (baseline:
 * SSE2 / NEON / scalar), dropout_avx2.c and dropout_avx512.c (compiled with those ISA flags, see
 * binding.gyp). The loop is branch-free and written for the compilers' auto-vectorisers; its 32-bit
 * multiplies need SSE4.1's pmulld, so the same source runs ~1 ns per element as SSE2, ~0.3 as AVX2 and
 * ~0.1 as AVX-512 (one core, L2-resident). */
#ifndef FEDSEG_DROPOUT_LOOP_H
#define FEDSEG_DROPOUT_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*dropout_range_fn)(const float *x, ptrdiff_t begin, ptrdiff_t end, uint32_t seed, uint32_t threshold, float scale,
                                 float *out);

/* x86-64 only: picked at run time with the GEMM kernels' instruction set (gemm_kernels()->isa). */
void dropout_range_avx2(const float *x, ptrdiff_t begin, ptrdiff_t end, uint32_t seed, uint32_t threshold, float scale,
                        float *out);
void dropout_range_avx512(const float *x, ptrdiff_t begin, ptrdiff_t end, uint32_t seed, uint32_t threshold, float scale,
                          float *out);

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

/* out[i] = hash(seed, i) < threshold ? x[i] * scale : +0 for i in [begin, end); the index is the
 * element's position modulo 2^32, as JavaScript's Math.imul sees it. x * scale in float: the exact
 * product of two floats fits a double, so JavaScript's double product rounded to float32 has the same
 * bits. The kept value is masked with the comparison instead of selected, which every vectoriser takes. */
#define DEFINE_DROPOUT_RANGE(NAME)                                                                              \
  void NAME(const float *x, ptrdiff_t begin, ptrdiff_t end, uint32_t seed, uint32_t threshold, float scale, float *out) { \
    const uint32_t base = (uint32_t)begin;                                                                      \
    const ptrdiff_t n = end - begin;                                                                            \
    const float *src = x + begin;                                                                               \
    float *dst = out + begin;                                                                                   \
    for (ptrdiff_t i = 0; i < n; i++) {                                                                         \
      float kept = src[i] * scale;                                                                              \
      uint32_t bits;                                                                                            \
      memcpy(&bits, &kept, sizeof bits);                                                                        \
      bits &= 0u - (uint32_t)(dropout_hash(seed, base + (uint32_t)i) < threshold);                              \
      memcpy(dst + i, &bits, sizeof bits);                                                                      \
    }                                                                                                           \
  }

#endif
