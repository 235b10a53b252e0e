/* AVX2 + FMA micro-kernels; binding.gyp compiles this file (only) with -mavx2 -mfma or /arch:AVX2, and
 * gemm.c calls them only on CPUs that have both (CPUID). */
#include "gemm_template.h"

#ifdef SIMD_HAVE_X86
#if (defined(__GNUC__) || defined(__clang__)) && !(defined(__AVX2__) && defined(__FMA__))
#error "gemm_avx2.c must be compiled with -mavx2 -mfma (see native/binding.gyp)"
#endif

DEFINE_KERNEL(kernel_avx2_6x16, avx2, 8, 6, 2)
DEFINE_KERNEL(kernel_avx2_12x8, avx2, 8, 12, 1)
DEFINE_SEGMENT_KERNEL(segment_avx2_6x16, avx2, 8, 6, 2)
DEFINE_SEGMENT_KERNEL(segment_avx2_12x8, avx2, 8, 12, 1)

const kernel_set gemm_avx2_set = {"avx2-fma", {6, 16, kernel_avx2_6x16, segment_avx2_6x16},
                                  {12, 8, kernel_avx2_12x8, segment_avx2_12x8}};
#endif
