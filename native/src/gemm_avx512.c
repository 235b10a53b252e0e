/* AVX-512F micro-kernels; binding.gyp compiles this file (only) with -mavx512f or /arch:AVX512, and
 * gemm.c calls them only on CPUs (and OSes) that support AVX-512F (CPUID + XGETBV). */
#include "gemm_template.h"

#ifdef SIMD_HAVE_X86
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__AVX512F__)
#error "gemm_avx512.c must be compiled with -mavx512f (see native/binding.gyp)"
#endif

DEFINE_KERNEL(kernel_avx512_8x32, avx512, 16, 8, 2)
DEFINE_KERNEL(kernel_avx512_12x16, avx512, 16, 12, 1)
DEFINE_SEGMENT_KERNEL(segment_avx512_8x32, avx512, 16, 8, 2)
DEFINE_SEGMENT_KERNEL(segment_avx512_12x16, avx512, 16, 12, 1)

/* Tile shapes picked by measurement on a Xeon (AVX-512, 240 x 432 blocks in L2, one thread, best of 15):
 * 8x32 185 GFLOP/s vs 12x32 173; 12x16 150 vs 24x16 140 (24 row pointers spill registers). */
const kernel_set gemm_avx512_set = {"avx512", {8, 32, kernel_avx512_8x32, segment_avx512_8x32},
                                    {12, 16, kernel_avx512_12x16, segment_avx512_12x16}};
#endif
