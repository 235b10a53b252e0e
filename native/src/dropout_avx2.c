/* The dropout loop for AVX2 (vpmulld, 8 lanes); binding.gyp compiles this file with -mavx2 -mfma or
 * /arch:AVX2, and dropout.c calls it only where the GEMM kernels chose AVX2 (CPUID). */
#include "dropout_loop.h"

#if defined(__x86_64__) || defined(_M_X64)
DEFINE_DROPOUT_RANGE(dropout_range_avx2)
#endif
