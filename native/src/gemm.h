/* Register-tiled micro-kernels: C[MR x NR] (+)= sum_k A(r,k) * B(k, 0..NR).
 * A(r,k) = a[r*ars + k*aks] (strides let the same kernel read im2col rows or their transpose);
 * B(k, :) = b[k*bks .. +NR] (NR contiguous floats per k). C rows are ldc apart.
 * Chosen once at load for the CPU (AVX-512, AVX2+FMA, or portable vectors); the kernels' SIMD code is
 * written against simd.h, so GCC, Clang and MSVC all build it. */
#ifndef FEDSEG_GEMM_H
#define FEDSEG_GEMM_H

#include <stddef.h>

typedef void (*micro_kernel_fn)(ptrdiff_t kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t bks,
                                float *c, ptrdiff_t ldc, int accumulate);

/* Segmented variant for direct (gather-free) convolution: sums over nseg segments, segment s reading
 * A(r,k) = a[s][r*ars + k] and B(k,:) = b[s][k*bks ..] for k < seg_len; C is stored (not accumulated). */
typedef void (*segment_kernel_fn)(int nseg, const float *const *a, const float *const *b, ptrdiff_t seg_len, ptrdiff_t ars,
                                  ptrdiff_t bks, float *c, ptrdiff_t ldc);

typedef struct {
  int mr, nr;
  micro_kernel_fn fn;
  segment_kernel_fn seg;
} micro_kernel;

typedef struct {
  const char *isa;
  micro_kernel wide;   /* for N > narrow.nr */
  micro_kernel narrow; /* for small N (Cout 4..16) */
} kernel_set;

const kernel_set *gemm_kernels(void);
/* x86-64 only (gemm_avx2.c, gemm_avx512.c): picked by gemm_kernels when the CPU has the instructions. */
extern const kernel_set gemm_avx2_set, gemm_avx512_set;
/* Kernel best suited to an N-column product. */
const micro_kernel *gemm_pick(int n);
/* Largest MR / NR over all kernels: callers size edge buffers with these. */
#define GEMM_MAX_MR 24
#define GEMM_MAX_NR 32

/* Computes one tile that may be cut at the M (rows < mr) or N (cols < nr) edge: runs the kernel into a
 * scratch tile and copies/adds the valid part. A rows past `rows` must be readable (callers pad). */
void gemm_edge_tile(const micro_kernel *k, ptrdiff_t kc, const float *a, ptrdiff_t ars, ptrdiff_t aks, const float *b, ptrdiff_t bks,
                    float *c, ptrdiff_t ldc, int accumulate, int rows, int cols);

#endif
