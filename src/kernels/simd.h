/* One vector type whose width the instruction set decides, for the kernels
 * written once over it (the fixed-order GEMM, the direct and Winograd
 * convolutions): 16 floats with AVX-512, 8 with AVX2 + FMA, 4 with NEON or
 * plain SSE / any other target (GCC vector extensions).
 *   vf                     the vector; VL floats
 *   vload(p), vstore(p, v) unaligned
 *   vset1(x), vzero()
 *   vfma(a, b, c)          a * b + c, one rounding where the ISA has FMA
 *                          (AVX-512, AVX2, NEON); a multiply then an add
 *                          otherwise. Either way the same for every element,
 *                          so a sum of vfma in a fixed order gives the same
 *                          bits whichever elements are computed alongside.
 * vf supports + - * as GCC vector types do. SIMD_ISA names the choice. */
#ifndef CDB_SIMD_H
#define CDB_SIMD_H

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16
#define SIMD_ISA "avx512"
typedef __m512 vf;
static inline vf vload(const float *p) { return _mm512_loadu_ps(p); }
static inline void vstore(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vset1(float x) { return _mm512_set1_ps(x); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
#define SIMD_ISA "avx2"
typedef __m256 vf;
static inline vf vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void vstore(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vset1(float x) { return _mm256_set1_ps(x); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define VL 4
#define SIMD_ISA "neon"
typedef float32x4_t vf;
static inline vf vload(const float *p) { return vld1q_f32(p); }
static inline void vstore(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vset1(float x) { return vdupq_n_f32(x); }
static inline vf vfma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
#else
#define VL 4
#define SIMD_ISA "generic"
typedef float vf __attribute__((vector_size(16)));
static inline vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vset1(float x) { return (vf){x, x, x, x}; }
static inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
#endif

static inline vf vzero(void) { return vset1(0.f); }
static inline vf vadd(vf a, vf b) { return a + b; }
static inline vf vsub(vf a, vf b) { return a - b; }
static inline vf vmul(vf a, vf b) { return a * b; }

#endif
