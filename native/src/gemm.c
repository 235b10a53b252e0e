#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "gemm_template.h"

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
#define DEFINE_WITH_ISA(MACRO, NAME, ISA, MR, NV) MACRO(NAME, ISA, 4, MR, NV)
#define DEFINE_BASE(MACRO, NAME, MR, NV) DEFINE_WITH_ISA(MACRO, NAME, BASE_ISA, MR, NV)
DEFINE_BASE(DEFINE_KERNEL, kernel_portable_6x8, 6, 2)
DEFINE_BASE(DEFINE_KERNEL, kernel_portable_8x4, 8, 1)
DEFINE_BASE(DEFINE_SEGMENT_KERNEL, segment_portable_6x8, 6, 2)
DEFINE_BASE(DEFINE_SEGMENT_KERNEL, segment_portable_8x4, 8, 1)


static const kernel_set portable_set = {BASE_NAME, {6, 8, kernel_portable_6x8, segment_portable_6x8},
                                        {8, 4, kernel_portable_8x4, segment_portable_8x4}};

static const kernel_set *chosen;

static const kernel_set *detect(void) {
#ifdef SIMD_HAVE_X86
  const char *force = getenv("FEDSEG_NATIVE_ISA");
  int want512 = !force || strcmp(force, "avx512") == 0;
  int want2 = !force || want512 || strcmp(force, "avx2") == 0;
  if (want512 && simd_cpu_has_avx512f()) return &gemm_avx512_set;
  if (want2 && simd_cpu_has_avx2_fma()) return &gemm_avx2_set;
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
