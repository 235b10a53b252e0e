/* SIMD portability layer for the micro-kernels (gemm.c): one small set of vector operations per
 * instruction set, written with the vendors' intrinsics so that GCC, Clang, clang-cl and MSVC all
 * compile them, plus a scalar fallback for other CPUs (or forced with -DFEDSEG_SIMD_SCALAR, to test it).
 *
 * For each instruction set X: type simd_X, width SIMD_X_LANES, and
 *   simd_X_zero(), simd_X_load(p), simd_X_store(p, v) (unaligned), simd_X_add(a, b),
 *   simd_X_madd(acc, s, b) = acc + s * b (fused where the instruction set has FMA).
 * Sets: sse (x86-64 baseline SSE2, 4 lanes), avx2 (AVX2 + FMA, 8), avx512 (AVX-512F, 16), neon
 * (AArch64, 4), scalar (4 floats in a struct, left to the compiler's auto-vectoriser).
 *
 * The AVX2 and AVX-512 operations are only used in gemm_avx2.c and gemm_avx512.c, the files binding.gyp
 * compiles for those instruction sets; everything else is built for the baseline, so one build runs on
 * every x86-64 CPU and gemm.c picks the kernels once from CPUID (simd_cpu_has_*). */
#ifndef FEDSEG_SIMD_H
#define FEDSEG_SIMD_H

#if !defined(FEDSEG_SIMD_SCALAR) && (defined(__x86_64__) || defined(_M_X64))
#define SIMD_HAVE_X86 1
#include <immintrin.h>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif
#elif !defined(FEDSEG_SIMD_SCALAR) && (defined(__aarch64__) || defined(_M_ARM64))
#define SIMD_HAVE_NEON 1
#include <arm_neon.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SIMD_INLINE static inline __attribute__((always_inline))
/* The kernels' small constant-bound loops must be unrolled fully so the accumulators live in registers. */
#define SIMD_UNROLL _Pragma("GCC unroll 32")
#else
#define SIMD_INLINE static __forceinline
#define SIMD_UNROLL
#endif

/* ---- scalar fallback: any CPU ---- */
#define SIMD_SCALAR_LANES 4
typedef struct {
  float v[SIMD_SCALAR_LANES];
} simd_scalar;
SIMD_INLINE simd_scalar simd_scalar_zero(void) {
  simd_scalar r = {{0.0f, 0.0f, 0.0f, 0.0f}};
  return r;
}
SIMD_INLINE simd_scalar simd_scalar_load(const float *p) {
  simd_scalar r;
  for (int i = 0; i < SIMD_SCALAR_LANES; i++) r.v[i] = p[i];
  return r;
}
SIMD_INLINE void simd_scalar_store(float *p, simd_scalar a) {
  for (int i = 0; i < SIMD_SCALAR_LANES; i++) p[i] = a.v[i];
}
SIMD_INLINE simd_scalar simd_scalar_add(simd_scalar a, simd_scalar b) {
  for (int i = 0; i < SIMD_SCALAR_LANES; i++) a.v[i] += b.v[i];
  return a;
}
SIMD_INLINE simd_scalar simd_scalar_madd(simd_scalar acc, float s, simd_scalar b) {
  for (int i = 0; i < SIMD_SCALAR_LANES; i++) acc.v[i] += s * b.v[i];
  return acc;
}

#ifdef SIMD_HAVE_X86
/* ---- SSE2: every x86-64 CPU ---- */
#define SIMD_SSE_LANES 4
typedef __m128 simd_sse;
SIMD_INLINE simd_sse simd_sse_zero(void) { return _mm_setzero_ps(); }
SIMD_INLINE simd_sse simd_sse_load(const float *p) { return _mm_loadu_ps(p); }
SIMD_INLINE void simd_sse_store(float *p, simd_sse a) { _mm_storeu_ps(p, a); }
SIMD_INLINE simd_sse simd_sse_add(simd_sse a, simd_sse b) { return _mm_add_ps(a, b); }
SIMD_INLINE simd_sse simd_sse_madd(simd_sse acc, float s, simd_sse b) { return _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(s), b)); }

/* The wider sets exist only in the files compiled for them (GCC/Clang -mavx2 / -mavx512f and MSVC
 * /arch:AVX2 / /arch:AVX512 define these macros): clang-cl declares their intrinsics nowhere else. */
#ifdef __AVX2__
/* ---- AVX2 + FMA ---- */
#define SIMD_AVX2_LANES 8
typedef __m256 simd_avx2;
SIMD_INLINE simd_avx2 simd_avx2_zero(void) { return _mm256_setzero_ps(); }
SIMD_INLINE simd_avx2 simd_avx2_load(const float *p) { return _mm256_loadu_ps(p); }
SIMD_INLINE void simd_avx2_store(float *p, simd_avx2 a) { _mm256_storeu_ps(p, a); }
SIMD_INLINE simd_avx2 simd_avx2_add(simd_avx2 a, simd_avx2 b) { return _mm256_add_ps(a, b); }
SIMD_INLINE simd_avx2 simd_avx2_madd(simd_avx2 acc, float s, simd_avx2 b) {
  return _mm256_fmadd_ps(_mm256_set1_ps(s), b, acc);
}
#endif

#ifdef __AVX512F__
/* ---- AVX-512F ---- */
#define SIMD_AVX512_LANES 16
typedef __m512 simd_avx512;
SIMD_INLINE simd_avx512 simd_avx512_zero(void) { return _mm512_setzero_ps(); }
SIMD_INLINE simd_avx512 simd_avx512_load(const float *p) { return _mm512_loadu_ps(p); }
SIMD_INLINE void simd_avx512_store(float *p, simd_avx512 a) { _mm512_storeu_ps(p, a); }
SIMD_INLINE simd_avx512 simd_avx512_add(simd_avx512 a, simd_avx512 b) { return _mm512_add_ps(a, b); }
SIMD_INLINE simd_avx512 simd_avx512_madd(simd_avx512 acc, float s, simd_avx512 b) {
  return _mm512_fmadd_ps(_mm512_set1_ps(s), b, acc);
}
#endif

/* CPUID + XGETBV: the CPU has the instructions and the OS saves their registers on context switches. */
#if defined(_MSC_VER) && !defined(__clang__)
static inline void simd_cpuid(int leaf, int sub, int r[4]) { __cpuidex(r, leaf, sub); }
static inline unsigned long long simd_xcr0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static inline void simd_cpuid(int leaf, int sub, int r[4]) {
  unsigned a, b, c, d;
  __cpuid_count(leaf, sub, a, b, c, d);
  r[0] = (int)a, r[1] = (int)b, r[2] = (int)c, r[3] = (int)d;
}
static inline unsigned long long simd_xcr0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((unsigned long long)hi << 32) | lo;
}
#endif

static inline int simd_os_saves(unsigned long long mask) {
  int r[4];
  simd_cpuid(1, 0, r);
  if (!(r[2] & (1 << 27))) return 0; /* OSXSAVE: xgetbv usable */
  return (simd_xcr0() & mask) == mask;
}
static inline int simd_cpu_has_avx2_fma(void) {
  int r1[4], r7[4];
  simd_cpuid(0, 0, r1);
  if (r1[0] < 7) return 0;
  simd_cpuid(1, 0, r1);
  simd_cpuid(7, 0, r7);
  return (r1[2] & (1 << 12)) && (r7[1] & (1 << 5)) && simd_os_saves(0x6); /* FMA, AVX2; XMM+YMM state */
}
static inline int simd_cpu_has_avx512f(void) {
  int r7[4];
  if (!simd_cpu_has_avx2_fma()) return 0;
  simd_cpuid(7, 0, r7);
  return (r7[1] & (1 << 16)) && simd_os_saves(0xe6); /* AVX512F; XMM, YMM, opmask, ZMM state */
}
#endif

#ifdef SIMD_HAVE_NEON
/* ---- NEON: every AArch64 CPU ---- */
#define SIMD_NEON_LANES 4
typedef float32x4_t simd_neon;
SIMD_INLINE simd_neon simd_neon_zero(void) { return vdupq_n_f32(0.0f); }
SIMD_INLINE simd_neon simd_neon_load(const float *p) { return vld1q_f32(p); }
SIMD_INLINE void simd_neon_store(float *p, simd_neon a) { vst1q_f32(p, a); }
SIMD_INLINE simd_neon simd_neon_add(simd_neon a, simd_neon b) { return vaddq_f32(a, b); }
SIMD_INLINE simd_neon simd_neon_madd(simd_neon acc, float s, simd_neon b) { return vfmaq_n_f32(acc, b, s); }
#endif

#endif
