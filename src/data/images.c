#include "images.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#ifdef OPENCV
#include "image_opencv.h"
#endif
#ifdef STB_IMAGE
#include <stb/stb_image.h>
#endif

int cdb_image_decoder_available(void)
{
#if defined(OPENCV) || defined(STB_IMAGE)
    return 1;
#else
    return 0;
#endif
}

const char *cdb_image_decoder_name(void)
{
#ifdef OPENCV
    return "OpenCV";
#elif defined(STB_IMAGE)
    return "stb_image";
#else
    return "none";
#endif
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const unsigned char *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }

/* A PNG's chunks against their CRCs, to its IEND (stb decodes a PNG
 * without looking at them: a damaged byte became a wrong pixel). */
static int check_png(const unsigned char *b, size_t n, const char *path)
{
    for (size_t at = 8;;) {
        if (n - at < 12) {
            cdb_set_error("image '%s' ends at byte %zu, before its IEND chunk: it is truncated", path, at);
            return -1;
        }
        uint32_t len = be32(b + at);
        if (len > n - at - 12) {
            cdb_set_error("image '%s' ends inside its chunk %.4s at byte %zu: it is truncated", path, b + at + 4, at);
            return -1;
        }
        if (be32(b + at + 8 + len) != (uint32_t)crc32(0L, b + at + 4, len + 4)) {
            cdb_set_error("image '%s': its chunk %.4s at byte %zu fails its CRC: the file is corrupt", path, b + at + 4,
                          at);
            return -1;
        }
        if (!memcmp(b + at + 4, "IEND", 4)) return 0;
        at += 12 + (size_t)len;
    }
}

/* What the decoders leave unchecked, in the file's bytes: a PNG's CRCs
 * (and its end), a BMP shorter than its header says (stb fills the rest
 * with zeros), a PGM or PPM of maxval 0. 0, or -1 with the error naming
 * the file. */
static int check_damage(const unsigned char *h, size_t n, const char *path)
{
    if (n >= 8 && !memcmp(h, "\x89PNG\r\n\x1a\n", 8)) return check_png(h, n, path);
    if (n >= 34 && h[0] == 'B' && h[1] == 'M' && le32(h + 14) >= 40 && le32(h + 30) == 0) {
        /* uncompressed: each row padded to 4 bytes */
        long long width = (int32_t)le32(h + 18), height = (int32_t)le32(h + 22), bits = h[28] | h[29] << 8;
        if (height < 0) height = -height;
        long long need = le32(h + 10) + ((bits * width + 31) / 32) * 4 * height;
        if (width > 0 && bits > 0 && (long long)n < need) {
            cdb_set_error("image '%s' has %zu bytes, but its header says %lld: it is truncated", path, n, need);
            return -1;
        }
        return 0;
    }
    if (n >= 3 && h[0] == 'P' && (h[1] == '2' || h[1] == '3' || h[1] == '5' || h[1] == '6')) {
        /* width, height, maxval after the magic, with # comments */
        long v[3] = {-1, -1, -1};
        size_t i = 2, end = n < 256 ? n : 256;
        for (int k = 0; k < 3 && i < end; k++) {
            while (i < end && (isspace(h[i]) || h[i] == '#')) {
                if (h[i] == '#')
                    while (i < end && h[i] != '\n') i++;
                else
                    i++;
            }
            if (i >= end || !isdigit(h[i])) break;
            v[k] = 0;
            while (i < end && isdigit(h[i]) && v[k] < 1000000000) v[k] = v[k] * 10 + (h[i++] - '0');
        }
        if (v[2] == 0) {
            cdb_set_error("image '%s': its maxval is 0, so it holds no pixel values: the file is corrupt", path);
            return -1;
        }
    }
    return 0;
}

/* The whole file in memory (read once: checked, then decoded from there).
 * NULL with the error naming the file. */
static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        cdb_set_error("cannot read image '%s': %s", path, strerror(errno));
        if (f) fclose(f);
        return NULL;
    }
    unsigned char *b = cdb_xmalloc((size_t)st.st_size + 1);
    *n = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (b && *n != (size_t)st.st_size) {
        cdb_set_error("cannot read image '%s': %s", path, strerror(errno));
        free(b);
        return NULL;
    }
    return b;
}

int cdb_image_decode(const char *path, int channels, byte_image *out)
{
    memset(out, 0, sizeof(*out));
    if (cdb_check_regular(path, "image")) return -1;
#if defined(OPENCV) || defined(STB_IMAGE)
    size_t n;
    unsigned char *bytes = read_file(path, &n);
    if (!bytes) return -1;
    if (check_damage(bytes, n, path)) {
        free(bytes);
        return -1;
    }
#endif
#ifdef OPENCV
    free(bytes); /* OpenCV reads the file itself */
    char why[256];
    out->px = opencv_decode(path, channels, &out->w, &out->h, why, sizeof(why));
    if (!out->px) {
        cdb_set_error("cannot read image '%s': %s", path, why);
        return -1;
    }
#elif defined(STB_IMAGE)
    int c;
    out->px = n <= INT_MAX ? stbi_load_from_memory(bytes, (int)n, &out->w, &out->h, &c, channels) : NULL;
    free(bytes);
    if (!out->px) {
        cdb_set_error("cannot read image '%s' (stb_image: %s): not an image, truncated or corrupt", path,
                      n <= INT_MAX ? stbi_failure_reason() : "larger than 2 GB");
        return -1;
    }
#else
    (void)channels;
    cdb_set_error("cannot read image '%s': this cdbnet was built without an image decoder (build with "
                  "libstb-dev installed, STB=1, or OPENCV=1)",
                  path);
    return -1;
#endif
    out->c = channels;
    return 0;
}

void cdb_image_free(byte_image *im)
{
#ifdef OPENCV
    opencv_free(im->px);
#elif defined(STB_IMAGE)
    stbi_image_free(im->px);
#endif
    im->px = NULL;
}

int cdb_image_probe(const char *path, int *w, int *h)
{
    if (cdb_check_regular(path, "image")) return -1;
#ifdef STB_IMAGE
    /* stb reads the header alone, also in OpenCV builds (OpenCV has no
     * header-only reader and would decode the whole image) */
    int n;
    if (stbi_info(path, w, h, &n)) {
        if (*w > 0 && *h > 0) return 0;
        /* e.g. a BMP whose height is -2^31 */
        cdb_set_error("image '%s' says it is %d x %d pixels: not an image, or a corrupt one", path, *w, *h);
        return -1;
    }
#ifndef OPENCV
    cdb_set_error("cannot read image '%s' (stb_image: %s): not an image, or a format stb_image does not read", path,
                  stbi_failure_reason());
    return -1;
#endif
#endif
#ifdef OPENCV
    char why[256];
    if (opencv_probe(path, w, h, why, sizeof(why))) {
        cdb_set_error("cannot read image '%s': %s", path, why);
        return -1;
    }
    return 0;
#elif !defined(STB_IMAGE)
    (void)w;
    (void)h;
    cdb_set_error("cannot read image '%s': this cdbnet was built without an image decoder", path);
    return -1;
#endif
}

image_box cdb_image_center_box(int w, int h, int resize, int W, int H)
{
    if (resize <= 0) resize = W > H ? W : H;
    double scale = (double)resize / (w < h ? w : h); /* resized pixels per source pixel */
    image_box b;
    b.w = W / scale;
    b.h = H / scale;
    b.x = 0.5 * (w - b.w);
    b.y = 0.5 * (h - b.h);
    return b;
}

image_box cdb_image_random_resized_box(int w, int h, float scale_min, float ratio_min, cdb_rng *rng)
{
    double area = (double)w * h, lr0 = log(ratio_min), lr1 = -lr0;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale_min + (1.0 - scale_min) * cdb_rng_uniform(rng));
        double ratio = exp(lr0 + (lr1 - lr0) * cdb_rng_uniform(rng));
        int cw = (int)lround(sqrt(target * ratio)), ch = (int)lround(sqrt(target / ratio));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            image_box b = {cdb_rng_int(rng, w - cw + 1), cdb_rng_int(rng, h - ch + 1), cw, ch};
            return b;
        }
    }
    double in_ratio = (double)w / h, lo = ratio_min, hi = 1.0 / ratio_min;
    int cw = w, ch = h;
    if (in_ratio < lo)
        ch = (int)lround(cw / lo);
    else if (in_ratio > hi)
        cw = (int)lround(ch * hi);
    image_box b = {(w - cw) / 2, (h - ch) / 2, cw, ch};
    return b;
}

image_box cdb_image_darknet_box(int w, int h, int W, int H, int min_crop, int max_crop, float aspect, cdb_rng *rng)
{
    /* Darknet: aspect = rand_scale(aspect); r = rand_int(min, max);
     * shorter = min(h, w * aspect); s = r / shorter; the output pixel x
     * reads source (x - W/2 + dx) * aspect / s + w/2, y likewise without
     * the aspect, dx uniform in +-(w s / aspect - W) / 2. */
    float lo = aspect < 1 ? aspect : 1, hi = aspect < 1 ? 1 : aspect;
    float a = lo + (hi - lo) * cdb_rng_uniform(rng);
    if (cdb_rng_int(rng, 2)) a = 1.f / a;
    int r = min_crop + cdb_rng_int(rng, max_crop - min_crop + 1);
    double shorter = h < w * a ? h : w * a, s = r / shorter;
    double mx = (w * s / a - W) / 2, my = (h * s - H) / 2;
    double dx = (2 * cdb_rng_uniform(rng) - 1) * mx, dy = (2 * cdb_rng_uniform(rng) - 1) * my;
    image_box b;
    b.w = W * a / s;
    b.h = H / s;
    b.x = w / 2.0 + (dx - W / 2.0) * a / s;
    b.y = h / 2.0 + (dy - H / 2.0) / s;
    return b;
}

/* The taps of one output coordinate: source pixels first..first+n-1 with
 * normalised weights. */
typedef struct {
    int first, n;
} taps;

/* Triangle filter of radius `support` source pixels about `center`
 * (in source pixel units, pixel i covering [i, i+1)); indices clamped to
 * [0, size): the edge replicated. Returns the taps; weights in w. */
static taps filter_taps(double center, double support, int size, float *w, int max_taps)
{
    int lo = (int)floor(center - support), hi = (int)ceil(center + support);
    if (hi - lo > max_taps) hi = lo + max_taps;
    taps t = {lo, hi - lo};
    double sum = 0;
    for (int i = lo; i < hi; i++) {
        double d = fabs(i + 0.5 - center) / support;
        double v = d < 1 ? 1 - d : 0;
        w[i - lo] = (float)v;
        sum += v;
    }
    if (sum <= 0) { /* cannot happen for support >= 1; the nearest pixel then */
        for (int i = 0; i < t.n; i++) w[i] = 0;
        int nearest = (int)floor(center) - lo;
        w[nearest < 0 ? 0 : (nearest >= t.n ? t.n - 1 : nearest)] = 1;
        sum = 1;
    }
    for (int i = 0; i < t.n; i++) w[i] = (float)(w[i] / sum);
    (void)size;
    return t;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

void cdb_image_resample(const byte_image *src, image_box box, int W, int H, uint8_t *dst)
{
    const int C = src->c, sw = src->w, sh = src->h;
    double sx = box.w / W, sy = box.h / H; /* source pixels per output pixel */
    double rx = sx > 1 ? sx : 1, ry = sy > 1 ? sy : 1;
    int max_x = (int)ceil(2 * rx) + 2, max_y = (int)ceil(2 * ry) + 2;
    float *wx = malloc(sizeof(float) * (size_t)W * max_x), *wy = malloc(sizeof(float) * (size_t)H * max_y);
    taps *tx = malloc(sizeof(taps) * (size_t)W), *ty = malloc(sizeof(taps) * (size_t)H);
    /* the horizontal pass for every source row the vertical pass reads */
    float *rows = NULL;
    int row0 = 0, nrows = 0;
    if (wx && wy && tx && ty) {
        for (int x = 0; x < W; x++) tx[x] = filter_taps(box.x + (x + 0.5) * sx, rx, sw, wx + (size_t)x * max_x, max_x);
        for (int y = 0; y < H; y++) ty[y] = filter_taps(box.y + (y + 0.5) * sy, ry, sh, wy + (size_t)y * max_y, max_y);
        row0 = ty[0].first;
        nrows = ty[H - 1].first + ty[H - 1].n - row0;
        rows = malloc(sizeof(float) * (size_t)nrows * W * C);
    }
    if (!rows) { /* out of memory: nearest pixel, no scratch */
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    int iy = clampi((int)floor(box.y + (y + 0.5) * sy), 0, sh - 1);
                    int ix = clampi((int)floor(box.x + (x + 0.5) * sx), 0, sw - 1);
                    dst[((size_t)c * H + y) * W + x] = src->px[((size_t)iy * sw + ix) * C + c];
                }
    } else {
        for (int r = 0; r < nrows; r++) {
            const uint8_t *line = src->px + (size_t)clampi(row0 + r, 0, sh - 1) * sw * C;
            float *out = rows + (size_t)r * W * C;
            for (int x = 0; x < W; x++) {
                const float *w = wx + (size_t)x * max_x;
                for (int c = 0; c < C; c++) {
                    float acc = 0;
                    for (int k = 0; k < tx[x].n; k++) acc += w[k] * line[(size_t)clampi(tx[x].first + k, 0, sw - 1) * C + c];
                    out[(size_t)x * C + c] = acc;
                }
            }
        }
        for (int y = 0; y < H; y++) {
            const float *w = wy + (size_t)y * max_y;
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    float acc = 0;
                    for (int k = 0; k < ty[y].n; k++)
                        acc += w[k] * rows[((size_t)(ty[y].first + k - row0) * W + x) * C + c];
                    long v = lroundf(acc);
                    dst[((size_t)c * H + y) * W + x] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
        }
    }
    free(rows);
    free(wx);
    free(wy);
    free(tx);
    free(ty);
}
