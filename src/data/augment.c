/* The augmentation of one in-memory image and its normalisation
 * (augment.h). */
#include "augment.h"

#include <math.h>
#include <string.h>

/* Darknet's HSV conversions (h in [0, 1), a gray pixel's hue 0). */
static void rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float max = r > g ? (r > b ? r : b) : (g > b ? g : b), min = r < g ? (r < b ? r : b) : (g < b ? g : b);
    float delta = max - min;
    *v = max;
    if (max == 0 || delta == 0) {
        *s = 0;
        *h = 0;
        return;
    }
    *s = delta / max;
    float hh = r == max ? (g - b) / delta : (g == max ? 2 + (b - r) / delta : 4 + (r - g) / delta);
    if (hh < 0) hh += 6;
    *h = hh / 6;
}

static void hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    if (s == 0) {
        *r = *g = *b = v;
        return;
    }
    float hh = 6 * h;
    int index = (int)floorf(hh);
    float f = hh - index, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (index) {
    case 0: *r = v, *g = t, *b = p; break;
    case 1: *r = q, *g = v, *b = p; break;
    case 2: *r = p, *g = v, *b = t; break;
    case 3: *r = p, *g = q, *b = v; break;
    case 4: *r = t, *g = p, *b = v; break;
    default: *r = v, *g = p, *b = q; break;
    }
}

static float clamp01(float x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }

/* Darknet's distort_image: on 3 or more channels, the hue shifted (a
 * fraction of the circle, wrapped), saturation and value scaled, then
 * clamped to [0, 1]; on fewer, the value (each channel) scaled. px holds
 * C planes of n pixels in [0, 1]. */
static void colour_jitter(float *px, int C, size_t n, float dhue, float dsat, float dexp)
{
    if (C < 3) {
        for (size_t i = 0; i < (size_t)C * n; i++) px[i] = clamp01(px[i] * dexp);
        return;
    }
    float *r = px, *g = px + n, *b = px + 2 * n;
    for (size_t i = 0; i < n; i++) {
        float h, s, v;
        rgb_to_hsv(r[i], g[i], b[i], &h, &s, &v);
        s = s * dsat;
        v = v * dexp;
        h += dhue;
        if (h > 1) h -= 1;
        if (h < 0) h += 1;
        hsv_to_rgb(h, s, v, &r[i], &g[i], &b[i]);
        r[i] = clamp01(r[i]);
        g[i] = clamp01(g[i]);
        b[i] = clamp01(b[i]);
    }
}

void cdb_augment_image(const uint8_t *src, int C, int H, int W, const input_config *in, const augment_params *ap,
                   float *dst)
{
    /* Output pixel (y, x) reads the flipped, shifted image at the inverse
     * rotation of (y, x) about ((W-1)/2, (H-1)/2), rounded to the nearest
     * pixel; with y pointing down, a counter-clockwise turn by a on screen
     * reads from (cx + cos a * u - sin a * v, cy + sin a * u + cos a * v)
     * for u = x - cx, v = y - cy. Pixels first in [0, 1] (0 outside the
     * image), then the colour jitter, then the normalisation. */
    double a = ap->degrees * (M_PI / 180.0), ca = cos(a), sa = sin(a);
    double cx = 0.5 * (W - 1), cy = 0.5 * (H - 1);
    int rotate = ap->degrees != 0.f;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int ry = y, rx = x;
                if (rotate) {
                    double u = x - cx, v = y - cy;
                    rx = (int)floor(cx + ca * u - sa * v + 0.5);
                    ry = (int)floor(cy + sa * u + ca * v + 0.5);
                }
                float value = 0.f;
                if (ry >= 0 && ry < H && rx >= 0 && rx < W) {
                    int sy = ry + ap->dy, sx = (ap->flip ? W - 1 - rx : rx) + ap->dx;
                    if (sy >= 0 && sy < H && sx >= 0 && sx < W) value = src[((size_t)c * H + sy) * W + sx] * (1.f / 255.f);
                }
                dst[((size_t)c * H + y) * W + x] = value;
            }
    if (ap->dhue != 0.f || ap->dsat != 1.f || ap->dexp != 1.f)
        colour_jitter(dst, C, (size_t)H * W, ap->dhue, ap->dsat, ap->dexp);
    for (int c = 0; c < C; c++) {
        float mean = in->nmean ? in->mean[c] : 0.f, inv_std = in->nstd ? 1.f / in->std[c] : 1.f;
        if (!in->nmean && !in->nstd) continue;
        float *plane = dst + (size_t)c * H * W;
        for (size_t i = 0; i < (size_t)H * W; i++) plane[i] = (plane[i] - mean) * inv_std;
    }
}

/* Darknet's rand_scale: a factor between 1 and s (either side of 1), or
 * its inverse, evenly. */
static float random_scale(cdb_rng *rng, float s)
{
    float lo = s < 1 ? s : 1, hi = s < 1 ? 1 : s;
    float scale = lo + (hi - lo) * cdb_rng_uniform(rng);
    return cdb_rng_int(rng, 2) ? scale : 1.f / scale;
}

void cdb_augment_draw(cdb_rng *rng, const input_config *in, augment_params *ap)
{
    if (in->crop_pad) {
        ap->dy = cdb_rng_int(rng, 2 * in->crop_pad + 1) - in->crop_pad;
        ap->dx = cdb_rng_int(rng, 2 * in->crop_pad + 1) - in->crop_pad;
    }
    if (in->flip) ap->flip = cdb_rng_int(rng, 2);
    /* Each drawn only when asked for, so that runs without it keep
     * their stream. */
    if (in->angle > 0) ap->degrees = (2.f * cdb_rng_uniform(rng) - 1.f) * in->angle;
    if (in->hue > 0) ap->dhue = (2.f * cdb_rng_uniform(rng) - 1.f) * in->hue;
    /* 0 (a zeroed input_config) and 1 mean none */
    if (in->saturation > 0 && in->saturation != 1.f) ap->dsat = random_scale(rng, in->saturation);
    if (in->exposure > 0 && in->exposure != 1.f) ap->dexp = random_scale(rng, in->exposure);
}

int cdb_input_config_read(cfg_reader *r, input_config *in)
{
    memset(in, 0, sizeof(*in));
    int darknet = cdb_cfg_int(r, "darknet", 0, 0, 1);
    in->crop_pad = cdb_cfg_int(r, "crop_pad", 0, 0, 64);
    /* Darknet's classifiers flip by default (AlexeyAB's flip=1; pjreddie's always) */
    in->flip = cdb_cfg_int(r, "flip", darknet ? 1 : 0, 0, 1);
    in->angle = cdb_cfg_float(r, "angle", 0.f, 0.f, 180.f);
    in->hue = cdb_cfg_float(r, "hue", 0.f, 0.f, 0.5f);
    in->saturation = cdb_cfg_float(r, "saturation", 1.f, 0.01f, 100.f);
    in->exposure = cdb_cfg_float(r, "exposure", 1.f, 0.01f, 100.f);
    in->nmean = cdb_cfg_has(r, "mean") ? cdb_cfg_float_list(r, "mean", in->mean, 4) : 0;
    in->nstd = cdb_cfg_has(r, "std") ? cdb_cfg_float_list(r, "std", in->std, 4) : 0;
    in->image_resize = cdb_cfg_int(r, "image_resize", 0, 0, 1 << 16);
    in->resized_crop = cdb_cfg_int(r, "resized_crop", 0, 0, 1);
    in->resized_crop_scale = cdb_cfg_float(r, "resized_crop_scale", 0.08f, 0.001f, 1.f);
    in->resized_crop_ratio = cdb_cfg_float(r, "resized_crop_ratio", 0.75f, 0.01f, 1.f);
    int darknet_keys = cdb_cfg_has(r, "min_crop") || cdb_cfg_has(r, "max_crop") || cdb_cfg_has(r, "aspect");
    int width = cdb_cfg_has(r, "width") ? cdb_cfg_int(r, "width", 1, 1, 1 << 16) : 1;
    in->min_crop = cdb_cfg_int(r, "min_crop", width, 1, 1 << 16);
    in->max_crop = cdb_cfg_int(r, "max_crop", 2 * width, 1, 1 << 16);
    in->aspect = cdb_cfg_float(r, "aspect", 1.f, 0.01f, 100.f);
    int center = cdb_cfg_int(r, "center", 0, 0, 1);
    in->darknet_crop = !center && !in->resized_crop && (darknet_keys || darknet);
    in->darknet_crop_keys = darknet_keys;
    if (r->failed) return -1;
    if (darknet_keys && in->resized_crop) {
        cdb_cfg_fail(r, "resized_crop", "give resized_crop=1 (torchvision's crop) or Darknet's min_crop/max_crop/aspect, "
                                        "not both");
        return -1;
    }
    if (in->max_crop < in->min_crop) {
        cdb_cfg_fail(r, "max_crop", "max_crop=%d is below min_crop=%d", in->max_crop, in->min_crop);
        return -1;
    }
    in->mixup_alpha = cdb_cfg_float(r, "mixup_alpha", 0.f, 0.f, 100.f);
    in->cutmix_alpha = cdb_cfg_float(r, "cutmix_alpha", 0.f, 0.f, 100.f);
    in->mixup_prob = cdb_cfg_float(r, "mixup_prob", 1.f, 0.f, 1.f);
    in->mixup_switch_prob = cdb_cfg_float(r, "mixup_switch_prob", 0.5f, 0.f, 1.f);
    in->mixup_off_epoch = cdb_cfg_int(r, "mixup_off_epoch", 0, 0, 1 << 20);
    if (r->failed) return -1;
    static const char *const mix_keys[] = {"mixup_prob", "mixup_switch_prob", "mixup_off_epoch"};
    for (int k = 0; k < 3; k++)
        if (in->mixup_alpha <= 0 && in->cutmix_alpha <= 0 && cdb_cfg_has(r, mix_keys[k])) {
            cdb_cfg_fail(r, mix_keys[k], "applies with mixup_alpha or cutmix_alpha above 0 only");
            return -1;
        }
    int channels = cdb_cfg_has(r, "channels") ? cdb_cfg_int(r, "channels", 1, 1, 1 << 16) : 0;
    if (in->nmean && in->nmean != channels) {
        cdb_cfg_fail(r, "mean", "%d values for %d channels", in->nmean, channels);
        return -1;
    }
    if (in->nstd && in->nstd != channels) {
        cdb_cfg_fail(r, "std", "%d values for %d channels", in->nstd, channels);
        return -1;
    }
    for (int i = 0; i < in->nstd; i++)
        if (in->std[i] <= 0) {
            cdb_cfg_fail(r, "std", "values must be positive");
            return -1;
        }
    return r->failed ? -1 : 0;
}

int cdb_input_config_of(const cdb_network *net, input_config *in)
{
    cfg_reader r = cdb_cfg_reader_for(net->settings, 0, -1);
    return cdb_input_config_read(&r, in);
}
