#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cfg.h"
#include "images.h"
#include "imageset.h"

#define FASHION_HINT "install it with `scripts/install_deps.sh` (Debian package dataset-fashion-mnist)"

static const char *missing_hint(const char *path)
{
    if (strstr(path, "fashion-mnist")) return FASHION_HINT;
    if (strstr(path, "cifar")) return "download the CIFAR binary version and unpack it where the .data file points";
    return "put the IDX files where the .data file points (see docs/data.md)";
}

int data_config_load(const char *path, data_config *out)
{
    memset(out, 0, sizeof(*out));
    long failed_before = cdb_failed_allocations();
    cfg_file *f = cfg_parse_keyvalue_file(path, "data", "data file");
    if (!f) return -1;
    cfg_reader r = cfg_reader_for(f, 0, -1);
    static const char *const formats[] = {"idx", "cifar10", "cifar100", "folder", "list", NULL};
    static const char *const bad_images[] = {"error", "skip", NULL};
    out->path = xstrdup(path);
    out->classes = cfg_int(&r, "classes", 0, 1, 1 << 20);
    out->format = (data_format)cfg_choice(&r, "format", formats, DATA_IDX);
    const char *s;
#define TAKE(field, key)                        \
    s = cfg_str(&r, key, NULL);                 \
    out->field = s ? xstrdup(s) : NULL;
    TAKE(train, "train");
    TAKE(train_labels, "train_labels");
    TAKE(valid, "valid");
    TAKE(valid_labels, "valid_labels");
    TAKE(names, "names");
    TAKE(labels, "labels");
    out->bad_images_skip = cfg_choice(&r, "bad_images", bad_images, 0);
    out->cache = cfg_int(&r, "cache", 0, 0, 1);
    out->loader_threads = cfg_int(&r, "loader_threads", 0, 0, 64);
    s = cfg_str(&r, "backup", "backup");
    out->backup = xstrdup(s);
#undef TAKE
    if (cdb_failed_allocations() > failed_before) cfg_fail(&r, NULL, "out of memory");
    cfg_check_unused(&r);
    if (!r.failed && !cfg_has(&r, "classes")) cfg_fail(&r, NULL, "missing key 'classes'");
    if (!r.failed && (!out->train || !out->valid)) cfg_fail(&r, NULL, "needs both 'train' and 'valid'");
    if (!r.failed && out->format == DATA_IDX && (!out->train_labels || !out->valid_labels))
        cfg_fail(&r, NULL, "format=idx needs 'train_labels' and 'valid_labels'");
    if (!r.failed && out->format == DATA_LIST && !out->labels && !out->names)
        cfg_fail(&r, NULL, "format=list needs 'labels' (or 'names'): the label names found in the image paths");
    if (!r.failed && out->format != DATA_FOLDER && out->format != DATA_LIST &&
        (cfg_has(&r, "bad_images") || cfg_has(&r, "cache") || cfg_has(&r, "loader_threads")))
        cfg_fail(&r, NULL, "bad_images, cache and loader_threads are for image files (format=folder or list)");
    if (!r.failed && (out->format == DATA_FOLDER || out->format == DATA_LIST) && !image_decoder_available())
        cfg_fail(&r, "format", "this cdbnet was built without an image decoder, so it cannot read image files "
                               "(install libstb-dev and rebuild, or build with OPENCV=1)");
    int status = r.failed ? -1 : 0;
    cfg_free(f);
    if (status) data_config_free(out);
    return status;
}

/* Class names from the .data file's names= (one per line), or NULL. */
char **data_load_names(const char *path, int classes)
{
    if (cdb_check_regular(path, "class names file")) return NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        cdb_set_error("cannot open class names file '%s'", path);
        return NULL;
    }
    char **names = xcalloc((size_t)classes, sizeof(char *));
    if (!names) {
        fclose(f);
        return NULL;
    }
    char line[512];
    int n = 0, oom = 0;
    while (n < classes && !oom && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        oom = !(names[n++] = xstrdup(line));
    }
    fclose(f);
    if (n < classes || oom) {
        if (!oom) cdb_set_error("class names file '%s' has %d lines for %d classes", path, n, classes);
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return NULL;
    }
    return names;
}

void data_free_names(char **names, int classes)
{
    if (!names) return;
    for (int i = 0; i < classes; i++) free(names[i]);
    free(names);
}

void data_config_free(data_config *d)
{
    free(d->path);
    free(d->train);
    free(d->train_labels);
    free(d->valid);
    free(d->valid_labels);
    free(d->backup);
    free(d->names);
    free(d->labels);
    memset(d, 0, sizeof(*d));
}

int dataset_load(const data_config *d, const char *which, cdb_dataset *out)
{
    int train = !strcmp(which, "train");
    const char *images = train ? d->train : d->valid;
    if (d->format == DATA_FOLDER) return imageset_load_folder(d, images, out);
    if (d->format == DATA_LIST) return imageset_load_list(d, images, out);
    if (d->format == DATA_IDX) return dataset_load_idx(images, train ? d->train_labels : d->valid_labels, d->classes, out);
    return dataset_load_cifar(images, d->format == DATA_CIFAR100, d->classes, out);
}

void dataset_truncate(cdb_dataset *d, int n)
{
    if (n >= d->n) return;
    if (d->paths)
        for (int i = n; i < d->n; i++) {
            free(d->paths[i]);
            d->paths[i] = NULL;
        }
    d->n = n;
}

void dataset_free(cdb_dataset *d)
{
    free(d->name);
    free(d->pixels);
    free(d->labels);
    if (d->paths)
        for (int i = 0; i < d->n; i++) free(d->paths[i]);
    free(d->paths);
    if (d->class_names)
        for (int i = 0; i < d->classes; i++) free(d->class_names[i]);
    free(d->class_names);
    memset(d, 0, sizeof(*d));
}

/* Read exactly n bytes; returns the count read. */
static size_t read_bytes(gzFile f, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        unsigned chunk = (unsigned)((n - done) > (1u << 30) ? (1u << 30) : (n - done));
        int got = gzread(f, (char *)buf + done, chunk);
        if (got <= 0) break;
        done += (size_t)got;
    }
    return done;
}

/* Read up to n bytes into a buffer that grows with what the file holds
 * (16 MiB, then doubling), so that a header claiming more than the file has
 * costs no memory: the buffer (its *got bytes read), or NULL out of memory
 * with the error naming path. */
static uint8_t *read_growing(gzFile f, size_t n, size_t *got, const char *path)
{
    size_t cap = n < (16u << 20) ? n : (16u << 20), done = 0;
    uint8_t *buf = xmalloc(cap ? cap : 1);
    while (buf) {
        done += read_bytes(f, buf + done, cap - done);
        if (done < cap || cap == n) break; /* the end of the file, or all that was asked */
        size_t next = cap > n / 2 ? n : 2 * cap;
        uint8_t *grown = xrealloc(buf, next);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap = next;
    }
    if (!buf) {
        char why[256];
        snprintf(why, sizeof(why), "%s", cdb_last_error());
        cdb_set_error("'%s': %s", path, why);
        return NULL;
    }
    *got = done;
    return buf;
}

/* A gzip stream that failed with corrupt data (a bad block or checksum), as
 * opposed to one that merely ended: an error naming the file. */
static int stream_broken(gzFile f, const char *path)
{
    int err;
    const char *msg = gzerror(f, &err);
    if (err == Z_OK || err == Z_BUF_ERROR) return 0; /* Z_BUF_ERROR: cut short, reported as truncation */
    cdb_set_error("'%s' is corrupt: %s (gzip data error)", path, msg);
    return 1;
}

static gzFile open_data(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        cdb_set_error("dataset file '%s' is not a regular file (a directory, FIFO or device)", path);
        return NULL;
    }
    gzFile f = gzopen(path, "rb");
    if (!f) cdb_set_error("cannot open dataset file '%s' (%s): %s", path, strerror(errno), missing_hint(path));
    return f;
}

static int at_eof(gzFile f)
{
    unsigned char extra;
    return gzread(f, &extra, 1) == 0;
}

/* Reads an IDX header: magic (type 0x08 = ubyte, ndims) and dims. */
static int idx_header(gzFile f, const char *path, int want_dims, int *dims)
{
    unsigned char m[4];
    if (read_bytes(f, m, 4) != 4) {
        cdb_set_error("'%s' is empty or truncated (no IDX header)", path);
        return -1;
    }
    if (m[0] || m[1] || m[2] != 0x08 || m[3] != want_dims) {
        cdb_set_error("'%s' is not an IDX file of unsigned bytes with %d dimensions (magic %02x %02x %02x %02x)", path,
                      want_dims, m[0], m[1], m[2], m[3]);
        return -1;
    }
    for (int i = 0; i < want_dims; i++) {
        unsigned char b[4];
        if (read_bytes(f, b, 4) != 4) {
            cdb_set_error("'%s' is truncated inside its IDX header", path);
            return -1;
        }
        dims[i] = (int)((unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3]);
        if (dims[i] <= 0) {
            cdb_set_error("'%s': IDX dimension %d is %d", path, i, dims[i]);
            return -1;
        }
    }
    return 0;
}

int dataset_load_idx(const char *images_path, const char *labels_path, int classes, cdb_dataset *out)
{
    memset(out, 0, sizeof(*out));
    int idims[3], ldims[1];
    gzFile fi = open_data(images_path);
    if (!fi) return -1;
    if (idx_header(fi, images_path, 3, idims)) {
        gzclose(fi);
        return -1;
    }
    if ((long)idims[1] * idims[2] > (1L << 24)) {
        gzclose(fi);
        cdb_set_error("'%s': images of %dx%d pixels are too large", images_path, idims[1], idims[2]);
        return -1;
    }
    size_t npix = (size_t)idims[0] * idims[1] * idims[2], got = 0;
    out->pixels = read_growing(fi, npix, &got, images_path);
    if (!out->pixels) {
        gzclose(fi);
        return -1;
    }
    int trailing = got == npix && !at_eof(fi);
    if (stream_broken(fi, images_path)) {
        gzclose(fi);
        dataset_free(out);
        return -1;
    }
    gzclose(fi);
    if (got != npix) {
        cdb_set_error("'%s' is truncated: its header promises %d images of %dx%d (%zu bytes) but it holds %zu",
                      images_path, idims[0], idims[1], idims[2], npix, got);
        dataset_free(out);
        return -1;
    }
    if (trailing) {
        cdb_set_error("'%s' has data past the %d images its header declares", images_path, idims[0]);
        dataset_free(out);
        return -1;
    }
    gzFile fl = open_data(labels_path);
    if (!fl) {
        dataset_free(out);
        return -1;
    }
    if (idx_header(fl, labels_path, 1, ldims)) {
        gzclose(fl);
        dataset_free(out);
        return -1;
    }
    if (ldims[0] != idims[0]) {
        gzclose(fl);
        cdb_set_error("'%s' has %d labels but '%s' has %d images", labels_path, ldims[0], images_path, idims[0]);
        dataset_free(out);
        return -1;
    }
    uint8_t *raw = read_growing(fl, (size_t)ldims[0], &got, labels_path);
    if (!raw) {
        gzclose(fl);
        dataset_free(out);
        return -1;
    }
    trailing = got == (size_t)ldims[0] && !at_eof(fl);
    int broken = stream_broken(fl, labels_path);
    gzclose(fl);
    if (broken || trailing) {
        if (trailing) cdb_set_error("'%s' has data past the %d labels its header declares", labels_path, ldims[0]);
        free(raw);
        dataset_free(out);
        return -1;
    }
    if (got != (size_t)ldims[0]) {
        cdb_set_error("'%s' is truncated: %zu of %d labels", labels_path, got, ldims[0]);
        free(raw);
        dataset_free(out);
        return -1;
    }
    out->labels = xmalloc((size_t)ldims[0] * sizeof(int));
    if (!out->labels) {
        free(raw);
        dataset_free(out);
        return -1;
    }
    for (int i = 0; i < ldims[0]; i++) {
        if (raw[i] >= classes) {
            cdb_set_error("'%s': label %d of item %d is not below classes=%d", labels_path, raw[i], i, classes);
            free(raw);
            dataset_free(out);
            return -1;
        }
        out->labels[i] = raw[i];
    }
    free(raw);
    out->n = idims[0];
    out->c = 1;
    out->h = idims[1];
    out->w = idims[2];
    out->classes = classes;
    out->name = xstrdup(images_path);
    if (!out->name) {
        dataset_free(out);
        return -1;
    }
    return 0;
}

int dataset_load_cifar(const char *paths, int cifar100, int classes, cdb_dataset *out)
{
    memset(out, 0, sizeof(*out));
    const int label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
    char *list = xstrdup(paths), *save = NULL;
    size_t cap = 0;
    uint8_t *rec = xmalloc((size_t)record);
    if (!list || !rec) goto fail;
    for (char *path = strtok_r(list, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
        while (*path == ' ') path++;
        gzFile f = open_data(path);
        if (!f) goto fail;
        int index = 0;
        for (;;) {
            size_t got = read_bytes(f, rec, (size_t)record);
            if (stream_broken(f, path)) {
                gzclose(f);
                goto fail;
            }
            if (got == 0) break;
            if (got != (size_t)record) {
                cdb_set_error("'%s' is truncated: record %d has %zu of %d bytes (CIFAR-%d binary format)", path, index,
                              got, record, cifar100 ? 100 : 10);
                gzclose(f);
                goto fail;
            }
            int label = rec[label_bytes - 1]; /* CIFAR-100: coarse, then fine label */
            if (label >= classes) {
                cdb_set_error("'%s': label %d of record %d is not below classes=%d", path, label, index, classes);
                gzclose(f);
                goto fail;
            }
            if ((size_t)out->n == cap) {
                size_t grown = cap ? 2 * cap : 10000;
                uint8_t *px = xrealloc(out->pixels, grown * pixels);
                if (px) out->pixels = px;
                int *lb = px ? xrealloc(out->labels, grown * sizeof(int)) : NULL;
                if (lb) out->labels = lb;
                if (!px || !lb) {
                    gzclose(f);
                    goto fail;
                }
                cap = grown;
            }
            memcpy(out->pixels + (size_t)out->n * pixels, rec + label_bytes, (size_t)pixels);
            out->labels[out->n++] = label;
            index++;
        }
        gzclose(f);
        if (index == 0) {
            cdb_set_error("'%s' holds no records", path);
            goto fail;
        }
    }
    free(rec);
    free(list);
    out->c = 3;
    out->h = out->w = 32;
    out->classes = classes;
    out->name = xstrdup(paths);
    if (!out->name) goto fail;
    return 0;
fail:
    free(rec);
    free(list);
    dataset_free(out);
    return -1;
}

int dataset_check_against(cdb_dataset *d, const cdb_network *net)
{
    if (d->paths && !d->pixels) { /* image files take the network's shape */
        d->c = net->c;
        d->h = net->h;
        d->w = net->w;
    }
    if (d->c != net->c || d->h != net->h || d->w != net->w) {
        cdb_set_error("dataset '%s' has %dx%dx%d images (c x h x w) but '%s' expects %dx%dx%d ([net] channels, "
                      "height, width)",
                      d->name, d->c, d->h, d->w, net->cfg_path, net->c, net->h, net->w);
        return -1;
    }
    if (d->classes != net->classes) {
        cdb_set_error("dataset '%s' has %d classes (its .data file's classes=) but '%s' ends with %d outputs (its "
                      "last layer's)",
                      d->name, d->classes, net->cfg_path, net->classes);
        return -1;
    }
    if (d->paths && d->cache) {
        if (net->input_cfg.resized_crop || net->input_cfg.darknet_crop) {
            cdb_set_error("%s: cache=1 keeps each image once, pre-processed, so it cannot serve the random crops of %s "
                          "(%s: a new crop of the original each time): drop cache=1%s",
                          d->name, net->cfg_path,
                          net->input_cfg.resized_crop ? "resized_crop=1" : "Darknet's min_crop/max_crop/aspect",
                          net->input_cfg.resized_crop ? " or resized_crop" : ", or set center=1 in [net]");
            return -1;
        }
        return imageset_cache(d, &net->input_cfg);
    }
    return 0;
}

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

void augment_image(const uint8_t *src, int C, int H, int W, const input_config *in, const augment_params *ap,
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
    float scale = lo + (hi - lo) * rng_uniform(rng);
    return rng_int(rng, 2) ? scale : 1.f / scale;
}

void augment_draw(cdb_rng *rng, const input_config *in, augment_params *ap)
{
    if (in->crop_pad) {
        ap->dy = rng_int(rng, 2 * in->crop_pad + 1) - in->crop_pad;
        ap->dx = rng_int(rng, 2 * in->crop_pad + 1) - in->crop_pad;
    }
    if (in->flip) ap->flip = rng_int(rng, 2);
    /* Each drawn only when asked for, so that runs without it keep
     * their stream. */
    if (in->angle > 0) ap->degrees = (2.f * rng_uniform(rng) - 1.f) * in->angle;
    if (in->hue > 0) ap->dhue = (2.f * rng_uniform(rng) - 1.f) * in->hue;
    /* 0 (a zeroed input_config) and 1 mean none */
    if (in->saturation > 0 && in->saturation != 1.f) ap->dsat = random_scale(rng, in->saturation);
    if (in->exposure > 0 && in->exposure != 1.f) ap->dexp = random_scale(rng, in->exposure);
}

void dataset_skip_draws(const cdb_dataset *d, const input_config *in, int n, cdb_rng *rng)
{
    for (int b = 0; b < n; b++) {
        if (!d->pixels) { /* image files: one seed per image (imageset_fill_batch) */
            rng_next(rng);
            continue;
        }
        augment_params ap = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
        augment_draw(rng, in, &ap);
    }
}

int dataset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                       cdb_rng *rng, float *images, int *labels)
{
    if (!d->pixels) return imageset_fill_batch(d, indices, n, in, augment, rng, images, labels);
    int C = d->c, H = d->h, W = d->w;
    size_t size = (size_t)C * H * W;
    for (int b = 0; b < n; b++) {
        augment_params ap = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
        if (augment) augment_draw(rng, in, &ap);
        augment_image(d->pixels + (size_t)indices[b] * size, C, H, W, in, &ap, images + (size_t)b * size);
        labels[b] = d->labels[indices[b]];
    }
    return 0;
}

void dataset_epoch_order(int n, uint64_t seed, int epoch, int *order)
{
    cdb_rng rng = rng_stream(seed, RNG_STREAM_SHUFFLE, (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = rng_int(&rng, i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}
