/* Vectorisable exp and erf for the hot element-wise loops (GELU, attention
 * softmax). Plain arithmetic, fused multiply-adds (fmaf) and integer bit
 * moves, so the compiler turns a loop over them into AVX-512 code; libm's
 * expf/erff calls do not vectorise.
 *   fast_expf: relative error below 2e-7 on [-87, 88]; 0 below, +inf above.
 *   fast_erff: absolute error below 4e-7 (Taylor series near 0, else
 *              Abramowitz & Stegun 7.1.26 with fast_expf); odd, erf(0) = 0. */
#ifndef CDB_FASTMATH_H
#define CDB_FASTMATH_H

#include <math.h>
#include <stdint.h>

static inline float fast_expf(float x)
{
    x = x < -87.3f ? -87.3f : x; /* exp(-87.3) ~ 1e-38, still a normal float */
    x = x > 88.7f ? 88.7f : x;
    /* x = n ln2 + r, |r| <= ln2/2; n rounded to nearest by the 1.5 * 2^23
     * trick, which vectorises where roundf does not. */
    float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
    float r = x - n * 0.693359375f;   /* ln2 split in two for accuracy */
    r = r + n * 2.12194440e-4f;
    /* exp(r) by its Taylor/minimax polynomial (Cephes expf coefficients) */
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p * r, r, r) + 1.f;
    union {
        int32_t i;
        float f;
    } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

/* erf(x) given exp_mx2 = exp(-x*x), for callers that need that exponential
 * anyway (the GELU derivative). */
static inline float fast_erff_given_exp(float x, float exp_mx2)
{
    float a = x < 0 ? -x : x;
    float t = 1.f / (1.f + 0.3275911f * a);
    float y = fmaf(t, 1.061405429f, -1.453152027f);
    y = fmaf(y, t, 1.421413741f);
    y = fmaf(y, t, -0.284496736f);
    y = fmaf(y, t, 0.254829592f) * t;
    float e = 1.f - y * exp_mx2;
    /* Near 0 the difference above cancels: use the Taylor series there. */
    float x2 = x * x;
    float series = 1.1283791671f * x * (1.f + x2 * (-1.f / 3 + x2 * (1.f / 10 + x2 * (-1.f / 42 + x2 * (1.f / 216)))));
    return a < 0.3f ? series : (x < 0 ? -e : e);
}

static inline float fast_erff(float x) { return fast_erff_given_exp(x, fast_expf(-x * x)); }

#endif
