/* The micro-kernel templates of gemm.h, instantiated once per instruction set: in gemm.c (the baseline
 * SSE2 / NEON / scalar kernels) and in gemm_avx2.c and gemm_avx512.c, which binding.gyp compiles with
 * those instruction sets enabled (-mavx2 -mfma, -mavx512f; MSVC /arch:AVX2, /arch:AVX512). Per-file
 * flags rather than per-function target attributes, because MSVC has no such attributes and clang-cl
 * (before LLVM 18) declares the AVX intrinsics only when the file is compiled for AVX. */
#ifndef FEDSEG_GEMM_TEMPLATE_H
#define FEDSEG_GEMM_TEMPLATE_H

#include <stddef.h>

#include "gemm.h"
#include "simd.h"

/* One template, instantiated per instruction set from simd.h's operations; the compiler keeps the
 * MR x NV accumulators in registers (loops have constant bounds and are fully unrolled). */
#define DEFINE_KERNEL(NAME, ISA, VL, MR, NV)                                                        \
  static void NAME(ptrdiff_t kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b,         \
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

#define DEFINE_SEGMENT_KERNEL(NAME, ISA, VL, MR, NV)                                                \
  static void NAME(      int nseg, const float *const *a, const float *const *b, ptrdiff_t seg_len,          \
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

#endif
