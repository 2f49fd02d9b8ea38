/* timm's mixup and cutmix (mixup.h). */
#include "mixup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cdb_mix_active(const input_config *in) { return in->mixup_alpha > 0 || in->cutmix_alpha > 0; }

/* Gamma(a, 1) by Marsaglia and Tsang (a < 1 through Gamma(a + 1) U^(1/a)). */
static double rng_gamma(cdb_rng *r, double a)
{
    if (a < 1) {
        double u = cdb_rng_uniform(r);
        return rng_gamma(r, a + 1) * pow(u > 0 ? u : 1e-12, 1.0 / a);
    }
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x = cdb_rng_normal(r), v = 1 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = cdb_rng_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

double cdb_rng_beta(cdb_rng *r, double a)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, a);
    return x + y > 0 ? x / (x + y) : 0.5;
}

void cdb_mix_draw(const input_config *in, uint64_t seed, int step, int epoch, int h, int w, mix_params *out)
{
    memset(out, 0, sizeof(*out));
    out->lam = 1.f;
    if (!cdb_mix_active(in) || (in->mixup_off_epoch && epoch >= in->mixup_off_epoch)) return;
    cdb_rng r = cdb_rng_stream(seed, RNG_STREAM_MIX, (uint64_t)step);
    if (!(cdb_rng_uniform(&r) < in->mixup_prob)) return;
    double lam;
    if (in->mixup_alpha > 0 && in->cutmix_alpha > 0) {
        out->cutmix = cdb_rng_uniform(&r) < in->mixup_switch_prob;
        lam = cdb_rng_beta(&r, out->cutmix ? in->cutmix_alpha : in->mixup_alpha);
    } else if (in->mixup_alpha > 0) {
        lam = cdb_rng_beta(&r, in->mixup_alpha);
    } else {
        out->cutmix = 1;
        lam = cdb_rng_beta(&r, in->cutmix_alpha);
    }
    out->lam = (float)lam;
    if (!out->cutmix) return;
    int cy = cdb_rng_int(&r, h), cx = cdb_rng_int(&r, w);
    cdb_mix_box(lam, cy, cx, h, w, out);
}

void cdb_mix_box(double lam, int cy, int cx, int h, int w, mix_params *out)
{
    double ratio = sqrt(1 - lam);
    int cut_h = (int)(h * ratio), cut_w = (int)(w * ratio);
#define CLIP(v, hi) ((v) < 0 ? 0 : ((v) > (hi) ? (hi) : (v)))
    out->cutmix = 1;
    out->y0 = CLIP(cy - cut_h / 2, h);
    out->y1 = CLIP(cy + cut_h / 2, h);
    out->x0 = CLIP(cx - cut_w / 2, w);
    out->x1 = CLIP(cx + cut_w / 2, w);
#undef CLIP
    out->lam = (float)(1.0 - (double)(out->y1 - out->y0) * (out->x1 - out->x0) / ((double)h * w));
}

void cdb_mix_apply(const mix_params *m, float *images, int n, int c, int h, int w)
{
    if (m->lam == 1.f) return;
    /* image i and image n-1-i trade places in each other's mix: both from
     * the pair's originals, in place (no copy of the batch) */
    size_t size = (size_t)c * h * w;
    float a = m->lam, b = (float)(1.0 - (double)m->lam);
    for (int i = 0; i <= (n - 1) / 2; i++) {
        float *x = images + (size_t)i * size, *y = images + (size_t)(n - 1 - i) * size;
        if (!m->cutmix) {
            for (size_t k = 0; k < size; k++) {
                float xk = x[k], yk = y[k];
                x[k] = xk * a + yk * b;
                y[k] = yk * a + xk * b; /* the middle image (x == y): x a + x b, as timm's */
            }
            continue;
        }
        if (x == y) continue; /* the middle image pastes its own box */
        for (int ch = 0; ch < c; ch++)
            for (int r = m->y0; r < m->y1; r++) {
                float *px = x + ((size_t)ch * h + r) * w, *py = y + ((size_t)ch * h + r) * w;
                for (int col = m->x0; col < m->x1; col++) {
                    float t = px[col];
                    px[col] = py[col];
                    py[col] = t;
                }
            }
    }
}
