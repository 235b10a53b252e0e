/* The dropout loop for AVX-512F (16 lanes); binding.gyp compiles this file with -mavx512f or
 * /arch:AVX512, and dropout.c calls it only where the GEMM kernels chose AVX-512 (CPUID). */
#include "dropout_loop.h"

#if defined(__x86_64__) || defined(_M_X64)
DEFINE_DROPOUT_RANGE(dropout_range_avx512)
#endif
