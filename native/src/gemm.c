#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "simd.h"

/* One template, instantiated per instruction set from simd.h's operations; the compiler keeps the
 * MR x NV accumulators in registers (loops have constant bounds and are fully unrolled). */
#define DEFINE_KERNEL(NAME, ATTR, ISA, VL, MR, NV)                                                        \
  ATTR static void NAME(ptrdiff_t kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,         \
                        ptrdiff_t bks, float *c, ptrdiff_t ldc, int accumulate) {                           \
    simd_##ISA acc[MR][NV];                                                                                 \
    SIMD_UNROLL for (int r = 0; r < MR; r++) SIMD_UNROLL for (int j = 0; j < NV; j++) acc[r][j] = simd_##ISA##_zero(); \
    for (ptrdiff_t k = 0; k < kc; k++) {                                                                    \
      simd_##ISA bv[NV];                                                                                    \
      SIMD_UNROLL for (int j = 0; j < NV; j++) bv[j] = simd_##ISA##_load(b + k * bks + j * VL);             \
      const float *ak = a + k * aks;                                                                        \
      SIMD_UNROLL for (int r = 0; r < MR; r++) {                                                            \
        float s = ak[r * ars];                                                                              \
        SIMD_UNROLL for (int j = 0; j < NV; j++) acc[r][j] = simd_##ISA##_madd(acc[r][j], s, bv[j]);        \
      }                                                                                                     \
    }                                                                                                       \
    SIMD_UNROLL for (int r = 0; r < MR; r++) {                                                              \
      SIMD_UNROLL for (int j = 0; j < NV; j++) {                                                            \
        float *cp = c + r * ldc + j * VL;                                                                   \
        simd_##ISA##_store(cp, accumulate ? simd_##ISA##_add(acc[r][j], simd_##ISA##_load(cp)) : acc[r][j]); \
      }                                                                                                     \
    }                                                                                                       \
  }

#define DEFINE_SEGMENT_KERNEL(NAME, ATTR, ISA, VL, MR, NV)                                                \
  ATTR static void NAME(int nseg, const float *const *a, const float *const *b, ptrdiff_t seg_len,          \
                        ptrdiff_t ars, ptrdiff_t bks, float *c, ptrdiff_t ldc) {                            \
    simd_##ISA acc[MR][NV];                                                                                 \
    SIMD_UNROLL for (int r = 0; r < MR; r++) SIMD_UNROLL for (int j = 0; j < NV; j++) acc[r][j] = simd_##ISA##_zero(); \
    for (int sg = 0; sg < nseg; sg++) {                                                                     \
      const float *as = a[sg], *bs = b[sg];                                                                 \
      for (ptrdiff_t k = 0; k < seg_len; k++) {                                                             \
        simd_##ISA bv[NV];                                                                                  \
        SIMD_UNROLL for (int j = 0; j < NV; j++) bv[j] = simd_##ISA##_load(bs + k * bks + j * VL);          \
        SIMD_UNROLL for (int r = 0; r < MR; r++) {                                                          \
          float s = as[r * ars + k];                                                                        \
          SIMD_UNROLL for (int j = 0; j < NV; j++) acc[r][j] = simd_##ISA##_madd(acc[r][j], s, bv[j]);      \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
    SIMD_UNROLL for (int r = 0; r < MR; r++) SIMD_UNROLL for (int j = 0; j < NV; j++)                       \
        simd_##ISA##_store(c + r * ldc + j * VL, acc[r][j]);                                                \
  }

/* The baseline vector kernels every build has: SSE2 on x86-64, NEON on AArch64, else scalar code. */
#if defined(SIMD_HAVE_X86)
#define BASE_ISA sse
#define BASE_NAME "portable-sse2"
#elif defined(SIMD_HAVE_NEON)
#define BASE_ISA neon
#define BASE_NAME "portable-neon"
#else
#define BASE_ISA scalar
#define BASE_NAME "portable-scalar"
#endif
/* Two steps so that BASE_ISA is expanded before DEFINE_KERNEL pastes it into names. */
#define DEFINE_WITH_ISA(MACRO, NAME, ISA, MR, NV) MACRO(NAME, , ISA, 4, MR, NV)
#define DEFINE_BASE(MACRO, NAME, MR, NV) DEFINE_WITH_ISA(MACRO, NAME, BASE_ISA, MR, NV)
DEFINE_BASE(DEFINE_KERNEL, kernel_portable_6x8, 6, 2)
DEFINE_BASE(DEFINE_KERNEL, kernel_portable_8x4, 8, 1)
DEFINE_BASE(DEFINE_SEGMENT_KERNEL, segment_portable_6x8, 6, 2)
DEFINE_BASE(DEFINE_SEGMENT_KERNEL, segment_portable_8x4, 8, 1)

#ifdef SIMD_HAVE_X86
DEFINE_KERNEL(kernel_avx2_6x16, SIMD_TARGET_AVX2, avx2, 8, 6, 2)
DEFINE_KERNEL(kernel_avx2_12x8, SIMD_TARGET_AVX2, avx2, 8, 12, 1)
DEFINE_KERNEL(kernel_avx512_8x32, SIMD_TARGET_AVX512, avx512, 16, 8, 2)
DEFINE_KERNEL(kernel_avx512_12x16, SIMD_TARGET_AVX512, avx512, 16, 12, 1)
DEFINE_SEGMENT_KERNEL(segment_avx2_6x16, SIMD_TARGET_AVX2, avx2, 8, 6, 2)
DEFINE_SEGMENT_KERNEL(segment_avx2_12x8, SIMD_TARGET_AVX2, avx2, 8, 12, 1)
DEFINE_SEGMENT_KERNEL(segment_avx512_8x32, SIMD_TARGET_AVX512, avx512, 16, 8, 2)
DEFINE_SEGMENT_KERNEL(segment_avx512_12x16, SIMD_TARGET_AVX512, avx512, 16, 12, 1)
#endif

static const kernel_set portable_set = {BASE_NAME, {6, 8, kernel_portable_6x8, segment_portable_6x8},
                                        {8, 4, kernel_portable_8x4, segment_portable_8x4}};
#ifdef SIMD_HAVE_X86
static const kernel_set avx2_set = {"avx2-fma", {6, 16, kernel_avx2_6x16, segment_avx2_6x16},
                                    {12, 8, kernel_avx2_12x8, segment_avx2_12x8}};
/* Tile shapes picked by measurement on a Xeon (AVX-512, 240 x 432 blocks in L2, one thread, best of 15):
 * 8x32 185 GFLOP/s vs 12x32 173; 12x16 150 vs 24x16 140 (24 row pointers spill registers). */
static const kernel_set avx512_set = {"avx512", {8, 32, kernel_avx512_8x32, segment_avx512_8x32},
                                      {12, 16, kernel_avx512_12x16, segment_avx512_12x16}};
#endif

static const kernel_set *chosen;

static const kernel_set *detect(void) {
#ifdef SIMD_HAVE_X86
  const char *force = getenv("FEDSEG_NATIVE_ISA");
  int want512 = !force || strcmp(force, "avx512") == 0;
  int want2 = !force || want512 || strcmp(force, "avx2") == 0;
  if (want512 && simd_cpu_has_avx512f()) return &avx512_set;
  if (want2 && simd_cpu_has_avx2_fma()) return &avx2_set;
#endif
  return &portable_set;
}

const kernel_set *gemm_kernels(void) {
  if (!chosen) chosen = detect(); /* benign race: every thread computes the same pointer */
  return chosen;
}

const micro_kernel *gemm_pick(int n) {
  const kernel_set *s = gemm_kernels();
  return n <= s->narrow.nr ? &s->narrow : &s->wide;
}

void gemm_edge_tile(const micro_kernel *k, ptrdiff_t kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t bks,
                    float *c, ptrdiff_t ldc, int accumulate, int rows, int cols) {
  float tile[GEMM_MAX_MR * GEMM_MAX_NR];
  k->fn(kc, a, ars, aks, b, bks, tile, k->nr, 0);
  for (int r = 0; r < rows; r++) {
    float *cr = c + r * ldc;
    const float *tr = tile + r * k->nr;
    if (accumulate)
      for (int j = 0; j < cols; j++) cr[j] += tr[j];
    else
      memcpy(cr, tr, sizeof(float) * (size_t)cols);
  }
}
