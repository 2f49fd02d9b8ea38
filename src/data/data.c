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

int cdb_dataset_read(const data_config *d, const char *which, cdb_dataset *out)
{
    int train = !strcmp(which, "train");
    const char *images = train ? d->train : d->valid;
    if (d->format == DATA_FOLDER) return cdb_imageset_load_folder(d, images, out);
    if (d->format == DATA_LIST) return cdb_imageset_load_list(d, images, out);
    if (d->format == DATA_IDX) return cdb_dataset_load_idx(images, train ? d->train_labels : d->valid_labels, d->classes, out);
    return cdb_dataset_load_cifar(images, d->format == DATA_CIFAR100, d->classes, out);
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
    uint8_t *buf = cdb_xmalloc(cap ? cap : 1);
    while (buf) {
        done += read_bytes(f, buf + done, cap - done);
        if (done < cap || cap == n) break; /* the end of the file, or all that was asked */
        size_t next = cap > n / 2 ? n : 2 * cap;
        uint8_t *grown = cdb_xrealloc(buf, next);
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

int cdb_dataset_load_idx(const char *images_path, const char *labels_path, int classes, cdb_dataset *out)
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
        cdb_dataset_clear(out);
        return -1;
    }
    gzclose(fi);
    if (got != npix) {
        cdb_set_error("'%s' is truncated: its header promises %d images of %dx%d (%zu bytes) but it holds %zu",
                      images_path, idims[0], idims[1], idims[2], npix, got);
        cdb_dataset_clear(out);
        return -1;
    }
    if (trailing) {
        cdb_set_error("'%s' has data past the %d images its header declares", images_path, idims[0]);
        cdb_dataset_clear(out);
        return -1;
    }
    gzFile fl = open_data(labels_path);
    if (!fl) {
        cdb_dataset_clear(out);
        return -1;
    }
    if (idx_header(fl, labels_path, 1, ldims)) {
        gzclose(fl);
        cdb_dataset_clear(out);
        return -1;
    }
    if (ldims[0] != idims[0]) {
        gzclose(fl);
        cdb_set_error("'%s' has %d labels but '%s' has %d images", labels_path, ldims[0], images_path, idims[0]);
        cdb_dataset_clear(out);
        return -1;
    }
    uint8_t *raw = read_growing(fl, (size_t)ldims[0], &got, labels_path);
    if (!raw) {
        gzclose(fl);
        cdb_dataset_clear(out);
        return -1;
    }
    trailing = got == (size_t)ldims[0] && !at_eof(fl);
    int broken = stream_broken(fl, labels_path);
    gzclose(fl);
    if (broken || trailing) {
        if (trailing) cdb_set_error("'%s' has data past the %d labels its header declares", labels_path, ldims[0]);
        free(raw);
        cdb_dataset_clear(out);
        return -1;
    }
    if (got != (size_t)ldims[0]) {
        cdb_set_error("'%s' is truncated: %zu of %d labels", labels_path, got, ldims[0]);
        free(raw);
        cdb_dataset_clear(out);
        return -1;
    }
    out->labels = cdb_xmalloc((size_t)ldims[0] * sizeof(int));
    if (!out->labels) {
        free(raw);
        cdb_dataset_clear(out);
        return -1;
    }
    for (int i = 0; i < ldims[0]; i++) {
        if (raw[i] >= classes) {
            cdb_set_error("'%s': label %d of item %d is not below classes=%d", labels_path, raw[i], i, classes);
            free(raw);
            cdb_dataset_clear(out);
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
    out->name = cdb_xstrdup(images_path);
    if (!out->name) {
        cdb_dataset_clear(out);
        return -1;
    }
    return 0;
}

int cdb_dataset_load_cifar(const char *paths, int cifar100, int classes, cdb_dataset *out)
{
    memset(out, 0, sizeof(*out));
    const int label_bytes = cifar100 ? 2 : 1, pixels = 3 * 32 * 32, record = label_bytes + pixels;
    char *list = cdb_xstrdup(paths), *save = NULL;
    size_t cap = 0;
    uint8_t *rec = cdb_xmalloc((size_t)record);
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
                uint8_t *px = cdb_xrealloc(out->pixels, grown * pixels);
                if (px) out->pixels = px;
                int *lb = px ? cdb_xrealloc(out->labels, grown * sizeof(int)) : NULL;
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
    out->name = cdb_xstrdup(paths);
    if (!out->name) goto fail;
    return 0;
fail:
    free(rec);
    free(list);
    cdb_dataset_clear(out);
    return -1;
}

int cdb_dataset_check_against(cdb_dataset *d, const cdb_network *net)
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
    if (d->paths && !d->pixels && d->max_pixels > 0) {
        /* the decode buffers count against the memory a run may take: each
         * worker holds one decoded image (4 bytes a pixel at most) at a time */
        size_t limit = cdb_memory_limit();
        double need = (double)(d->workers > 0 ? d->workers : 1) * (double)d->max_pixels * 4;
        if (limit && need > (double)limit) {
            cdb_set_error("decoding '%s' takes up to %.0f MiB at a time (%d thread%s, each with an image of up to %lld "
                          "pixels), more than the memory limit of %.0f MiB (%s): lower loader_threads=, or shrink the "
                          "images",
                          d->name, need / 1048576, d->workers, d->workers == 1 ? "" : "s", d->max_pixels,
                          limit / 1048576.0, cdb_memory_limit_source());
            return -1;
        }
    }
    if (d->paths && d->cache) {
        input_config in;
        if (cdb_input_config_of(net, &in)) return -1;
        if (in.resized_crop || in.darknet_crop) {
            cdb_set_error("%s: cache=1 keeps each image once, pre-processed, so it cannot serve the random crops of %s "
                          "(%s: a new crop of the original each time): drop cache=1%s",
                          d->name, net->cfg_path,
                          in.resized_crop ? "resized_crop=1" : "Darknet's min_crop/max_crop/aspect",
                          in.resized_crop ? " or resized_crop" : ", or set center=1 in [net]");
            return -1;
        }
        return cdb_imageset_cache(d, &in);
    }
    return 0;
}

void cdb_dataset_skip_draws(const cdb_dataset *d, const input_config *in, int n, cdb_rng *rng)
{
    for (int b = 0; b < n; b++) {
        if (!d->pixels) { /* image files: one seed per image (cdb_imageset_fill_batch) */
            cdb_rng_next(rng);
            continue;
        }
        augment_params ap = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
        cdb_augment_draw(rng, in, &ap);
    }
}

int cdb_dataset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                       cdb_rng *rng, float *images, int *labels)
{
    if (!d->pixels) return cdb_imageset_fill_batch(d, indices, n, in, augment, rng, images, labels);
    int C = d->c, H = d->h, W = d->w;
    size_t size = (size_t)C * H * W;
    for (int b = 0; b < n; b++) {
        augment_params ap = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
        if (augment) cdb_augment_draw(rng, in, &ap);
        cdb_augment_image(d->pixels + (size_t)indices[b] * size, C, H, W, in, &ap, images + (size_t)b * size);
        labels[b] = d->labels[indices[b]];
    }
    return 0;
}

void cdb_dataset_epoch_order(int n, uint64_t seed, int epoch, int *order)
{
    cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_SHUFFLE, (uint64_t)epoch);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = cdb_rng_int(&rng, i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int cdb_dataset_input(const cdb_dataset *d, int index, const cdb_network *net, float *image, int *label)
{
    if (index < 0 || index >= d->n) {
        cdb_set_error("item %d of '%s': it has %d items", index, d->name, d->n);
        return -1;
    }
    input_config in;
    if (cdb_input_config_of(net, &in)) return -1;
    return cdb_dataset_fill_batch(d, &index, 1, &in, 0, NULL, image, label);
}

int cdb_image_file_input(const cdb_network *net, const char *path, float *out)
{
    byte_image im;
    int w, h;
    input_config in;
    if (cdb_input_config_of(net, &in) || cdb_image_probe(path, &w, &h)) return -1;
    if ((long long)w * h > DEFAULT_MAX_IMAGE_PIXELS) { /* from the header, before decoding it */
        cdb_set_error("image '%s' is %d x %d pixels, more than the %lld an image may have", path, w, h,
                      DEFAULT_MAX_IMAGE_PIXELS);
        return -1;
    }
    if (cdb_image_decode(path, net->c == 1 ? 1 : 3, &im)) return -1;
    uint8_t *bytes = cdb_xcalloc((size_t)net->inputs, 1), *chw = bytes;
    uint8_t *rgb = net->c > 3 ? cdb_xcalloc((size_t)3 * net->h * net->w, 1) : NULL;
    if (!bytes || (net->c > 3 && !rgb)) {
        free(bytes);
        cdb_image_free(&im);
        return -1;
    }
    if (rgb) chw = rgb;
    cdb_image_resample(&im, cdb_image_center_box(im.w, im.h, in.image_resize, net->w, net->h), net->w, net->h, chw);
    if (rgb) memcpy(bytes, rgb, (size_t)3 * net->h * net->w); /* the other channels 0 */
    augment_params none = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
    cdb_augment_image(bytes, net->c, net->h, net->w, &in, &none, out);
    free(rgb);
    free(bytes);
    cdb_image_free(&im);
    return 0;
}

void cdb_dataset_warn_unused_keys(const cdb_dataset *train, const cdb_network *net)
{
    input_config in;
    if (!train->paths && !cdb_input_config_of(net, &in) && in.darknet_crop_keys)
        fprintf(stderr, "warning: %s: min_crop, max_crop and aspect crop image files (format=folder or list); the images "
                        "of '%s' are used at their size\n",
                net->cfg_path, train->name);
}
