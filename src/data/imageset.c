#include "imageset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "images.h"

/* A growing list of strings. */
typedef struct {
    char **s;
    int n, cap;
} strings;

static int strings_add(strings *l, const char *text)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **s = realloc(l->s, sizeof(char *) * (size_t)cap);
        if (!s) {
            cdb_set_error("out of memory listing image files");
            return -1;
        }
        l->s = s;
        l->cap = cap;
    }
    if (!(l->s[l->n] = cdb_xstrdup(text))) return -1;
    l->n++;
    return 0;
}

static void strings_free(strings *l)
{
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof(*l));
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The file extensions the decoders read (case ignored). */
static int is_image_name(const char *name)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "bmp", "tga", "gif", "ppm", "pgm", "pnm", "tif", "tiff",
                                      "webp", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; ext[i]; i++)
        if (!strcasecmp(dot + 1, ext[i])) return 1;
    return 0;
}

/* The folders from the dataset's root down to the one being listed, by
 * device and inode: a folder reached again through a link is a loop. */
#define MAX_FOLDER_DEPTH 16
typedef struct {
    dev_t dev[MAX_FOLDER_DEPTH + 3];
    ino_t ino[MAX_FOLDER_DEPTH + 3];
    const char *path[MAX_FOLDER_DEPTH + 3];
    int n;
} folder_chain;

/* Every image file under dir (sub-folders too, as ImageFolder; links to
 * folders are followed, but not back to a folder above them), sorted by
 * path. */
static int list_images(const char *dir, strings *out, int depth, folder_chain *chain)
{
    DIR *d = opendir(dir);
    if (!d) {
        cdb_set_error("cannot open folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    strings here = {0};
    struct dirent *e;
    int status = 0;
    while (!status && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
            cdb_set_error("'%.60s...' in the folder '%.200s': its path is longer than %d bytes (move the dataset "
                          "higher, or shorten its names)",
                          e->d_name, dir, (int)sizeof(path) - 1);
            status = -1;
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode) && depth >= MAX_FOLDER_DEPTH) {
            cdb_set_error("the folder '%.200s' is more than %d folders below its class folder: cdbnet reads %d levels",
                          path, MAX_FOLDER_DEPTH, MAX_FOLDER_DEPTH);
            status = -1;
            break;
        }
        if (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && is_image_name(e->d_name)))
            status = strings_add(&here, path);
    }
    closedir(d);
    if (!status && here.n > 1) qsort(here.s, (size_t)here.n, sizeof(char *), by_name);
    for (int i = 0; !status && i < here.n; i++) {
        struct stat st;
        if (stat(here.s[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            for (int k = 0; k < chain->n; k++)
                if (chain->dev[k] == st.st_dev && chain->ino[k] == st.st_ino) {
                    cdb_set_error("'%s' leads back to '%s' (a link that makes a loop): remove the link, or make it "
                                  "point below the dataset's class folders",
                                  here.s[i], chain->path[k]);
                    status = -1;
                }
            if (status) break;
            chain->dev[chain->n] = st.st_dev;
            chain->ino[chain->n] = st.st_ino;
            chain->path[chain->n] = here.s[i];
            chain->n++;
            status = list_images(here.s[i], out, depth + 1, chain);
            chain->n--;
        } else {
            status = strings_add(out, here.s[i]);
        }
    }
    strings_free(&here);
    return status;
}

/* The chain of a class folder: the dataset's root, then the class folder. */
static int start_chain(folder_chain *chain, const char *root, const char *class_dir)
{
    struct stat a, b;
    if (stat(root, &a) || stat(class_dir, &b)) {
        cdb_set_error("cannot read folder '%s': %s", class_dir, strerror(errno));
        return -1;
    }
    chain->dev[0] = a.st_dev;
    chain->ino[0] = a.st_ino;
    chain->path[0] = root;
    chain->dev[1] = b.st_dev;
    chain->ino[1] = b.st_ino;
    chain->path[1] = class_dir;
    chain->n = 2;
    return 0;
}

/* Check each file's header; with skip, leave out those that fail (a
 * warning each, up to 10, then a count). */
static int check_headers(const data_config *d, cdb_dataset *out)
{
    int kept = 0, bad = 0;
    for (int i = 0; i < out->n; i++) {
        int w, h;
        int unreadable = cdb_image_probe(out->paths[i], &w, &h);
        long long limit = d->max_image_pixels > 0 ? d->max_image_pixels : DEFAULT_MAX_IMAGE_PIXELS;
        if (!unreadable && (long long)w * h > limit) {
            /* refused before decoding: a small file can hold a huge image */
            cdb_set_error("image '%s' is %d x %d pixels, more than max_image_pixels=%lld", out->paths[i], w, h, limit);
            unreadable = 1;
        }
        if (unreadable) {
            if (!d->bad_images_skip) {
                char why[2048];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("%s (of the dataset '%s'; bad_images=skip in %s leaves such files out)", why, out->name,
                              d->path);
                return -1;
            }
            if (bad++ < 10) fprintf(stderr, "warning: left out: %s\n", cdb_last_error());
            free(out->paths[i]);
            continue;
        }
        out->paths[kept] = out->paths[i];
        out->labels[kept] = out->labels[i];
        if ((long long)w * h > out->max_pixels) out->max_pixels = (long long)w * h;
        kept++;
    }
    if (bad > 10) fprintf(stderr, "warning: left out %d unreadable images of '%s' in all\n", bad, out->name);
    out->n = kept;
    if (kept == 0) {
        cdb_set_error("the dataset '%s' has no readable images", out->name);
        return -1;
    }
    return 0;
}

static void take_options(const data_config *d, cdb_dataset *out)
{
    out->bad_skip = d->bad_images_skip;
    out->cache = d->cache;
    int cpus = cdb_available_cpus();
    out->workers = d->loader_threads ? d->loader_threads : (cpus < 4 ? cpus : 4);
}

int cdb_imageset_load_folder(const data_config *d, const char *dir, cdb_dataset *out)
{
    memset(out, 0, sizeof(*out));
    out->name = cdb_xstrdup(dir);
    out->classes = d->classes;
    take_options(d, out);
    DIR *dd = opendir(dir);
    if (!dd) {
        cdb_set_error("cannot open the image folder '%s' (format=folder in %s): %s", dir, d->path, strerror(errno));
        cdb_dataset_clear(out);
        return -1;
    }
    strings classes = {0}, files = {0};
    struct dirent *e;
    int status = 0;
    while (!status && (e = readdir(dd))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
            cdb_set_error("'%.60s...' in the image folder '%.200s': its path is longer than %d bytes", e->d_name, dir,
                          (int)sizeof(path) - 1);
            status = -1;
        } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            status = strings_add(&classes, e->d_name);
        }
    }
    closedir(dd);
    char **names = NULL;
    int *label_of = NULL;
    if (status) goto done;
    if (classes.n > 1) qsort(classes.s, (size_t)classes.n, sizeof(char *), by_name);
    for (int k = 0; k < classes.n; k++) {
        char shown[256];
        int control = 0;
        size_t j = 0;
        for (const unsigned char *c = (const unsigned char *)classes.s[k]; *c && j + 1 < sizeof(shown); c++) {
            int bad = *c < 0x20 || *c == 0x7f;
            control |= bad;
            shown[j++] = bad ? '?' : (char)*c;
        }
        shown[j] = 0;
        if (control) { /* it would break the logs' headers and the terminal */
            cdb_set_error("the class folder '%s/%s' has a control byte (shown as ?) in its name: rename it", dir, shown);
            goto fail;
        }
    }
    if (classes.n == 0) {
        cdb_set_error("the image folder '%s' has no class sub-folders (format=folder: DIR/CLASS/IMAGE)", dir);
        goto fail;
    }
    if (classes.n != d->classes) {
        cdb_set_error("the image folder '%s' has %d class folders but %s says classes=%d", dir, classes.n, d->path,
                      d->classes);
        goto fail;
    }
    label_of = cdb_xcalloc((size_t)classes.n, sizeof(int));
    if (!label_of) goto fail;
    if (d->names) { /* each folder's label is its line in names= */
        if (!(names = cdb_data_load_names(d->names, d->classes))) goto fail;
        for (int k = 0; k < classes.n; k++) {
            label_of[k] = -1;
            for (int j = 0; j < d->classes; j++)
                if (!strcmp(names[j], classes.s[k])) label_of[k] = j;
            if (label_of[k] < 0) {
                cdb_set_error("the class folder '%s/%s' is not in the names file '%s' (the folders must be named as "
                              "its lines)",
                              dir, classes.s[k], d->names);
                goto fail;
            }
        }
    } else {
        for (int k = 0; k < classes.n; k++) label_of[k] = k;
    }
    int *first = cdb_xcalloc((size_t)classes.n + 1, sizeof(int));
    if (!first) goto fail;
    for (int k = 0; k < classes.n; k++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, classes.s[k]);
        first[k] = files.n;
        folder_chain chain;
        if (start_chain(&chain, dir, path) || list_images(path, &files, 0, &chain)) {
            free(first);
            goto fail;
        }
        if (files.n == first[k]) {
            cdb_set_error("the class folder '%s' has no image files (.png, .jpg, .bmp, ...)", path);
            free(first);
            goto fail;
        }
    }
    first[classes.n] = files.n;
    out->n = files.n;
    out->paths = files.s;
    out->labels = cdb_xcalloc((size_t)files.n, sizeof(int));
    out->class_names = cdb_xcalloc((size_t)d->classes, sizeof(char *));
    files.s = NULL;
    files.n = 0;
    if (!out->labels || !out->class_names) {
        free(first);
        goto fail;
    }
    for (int k = 0; k < classes.n; k++) {
        for (int i = first[k]; i < first[k + 1]; i++) out->labels[i] = label_of[k];
        out->class_names[label_of[k]] = classes.s[k];
        classes.s[k] = NULL;
    }
    free(first);
    if (check_headers(d, out)) goto fail;
    goto done;
fail:
    status = -1;
done:
    if (names) cdb_data_free_names(names, d->classes);
    free(label_of);
    strings_free(&classes);
    strings_free(&files);
    if (status) cdb_dataset_clear(out);
    return status;
}

int cdb_imageset_load_list(const data_config *d, const char *file, cdb_dataset *out)
{
    memset(out, 0, sizeof(*out));
    out->name = cdb_xstrdup(file);
    out->classes = d->classes;
    take_options(d, out);
    const char *labels_path = d->labels ? d->labels : d->names;
    char **labels = NULL;
    strings files = {0};
    int status = -1, line_no = 0;
    if (!labels_path) {
        cdb_set_error("%s: format=list needs labels= (or names=): the label names, one per line, found in each path",
                      d->path);
        goto done;
    }
    if (!(labels = cdb_data_load_names(labels_path, d->classes))) goto done;
    for (int k = 0; k < d->classes; k++)
        if (!labels[k][0]) {
            cdb_set_error("the labels file '%s' has an empty line %d (an empty label is found in every path)",
                          labels_path, k + 1);
            goto done;
        }
    if (cdb_check_regular(file, "image list")) goto done;
    FILE *f = fopen(file, "r");
    if (!f) {
        cdb_set_error("cannot open the image list '%s': %s", file, strerror(errno));
        goto done;
    }
    char line[4096];
    int *lab = NULL, cap = 0, bad = 0;
    while (fgets(line, sizeof(line), f)) {
        line_no++;
        size_t len = strcspn(line, "\r\n");
        if (line[len] == 0 && !feof(f)) {
            cdb_set_error("%s:%d: the line is longer than %d characters", file, line_no, (int)sizeof(line) - 2);
            bad = 1;
            break;
        }
        line[len] = 0;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        for (char *end = p + strlen(p); end > p && isspace((unsigned char)end[-1]);) *--end = 0;
        if (!*p || *p == '#') continue;
        /* Darknet's rule: the label is the one entry of labels= that occurs in the path */
        int found = -1, count = 0;
        for (int k = 0; k < d->classes; k++)
            if (strstr(p, labels[k])) {
                if (count == 1) {
                    cdb_set_error("%s:%d: '%s' contains two labels of '%s', '%s' and '%s' (it must contain exactly "
                                  "one)",
                                  file, line_no, p, labels_path, labels[found], labels[k]);
                    bad = 1;
                }
                found = k;
                count++;
            }
        if (bad) break;
        if (count == 0) {
            cdb_set_error("%s:%d: '%s' contains none of the labels of '%s' (it must contain exactly one)", file,
                          line_no, p, labels_path);
            bad = 1;
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            cdb_set_error("%s:%d: the image '%s' %s", file, line_no, p,
                          stat(p, &st) != 0 ? "does not exist" : "is not a regular file");
            bad = 1;
            break;
        }
        if (files.n == cap) {
            cap = cap ? 2 * cap : 256;
            int *grown = realloc(lab, sizeof(int) * (size_t)cap);
            if (!grown) {
                cdb_set_error("out of memory reading '%s'", file);
                bad = 1;
                break;
            }
            lab = grown;
        }
        if (strings_add(&files, p)) {
            bad = 1;
            break;
        }
        lab[files.n - 1] = found;
    }
    fclose(f);
    if (!bad && files.n == 0) {
        cdb_set_error("the image list '%s' names no images", file);
        bad = 1;
    }
    if (bad) {
        free(lab);
        goto done;
    }
    out->n = files.n;
    out->paths = files.s;
    out->labels = lab;
    files.s = NULL;
    files.n = 0;
    status = check_headers(d, out);
done:
    if (labels) cdb_data_free_names(labels, d->classes);
    strings_free(&files);
    if (status) cdb_dataset_clear(out);
    return status;
}

int cdb_imageset_load_bytes(const cdb_dataset *d, int index, const input_config *in, cdb_rng *rng, uint8_t *dst)
{
    byte_image im;
    if (cdb_image_decode(d->paths[index], d->c == 1 ? 1 : 3, &im)) return -1;
    image_box box;
    if (rng && in->resized_crop)
        box = cdb_image_random_resized_box(im.w, im.h, in->resized_crop_scale, in->resized_crop_ratio, rng);
    else if (rng && in->darknet_crop)
        box = cdb_image_darknet_box(im.w, im.h, d->w, d->h, in->min_crop, in->max_crop, in->aspect, rng);
    else
        box = cdb_image_center_box(im.w, im.h, in->image_resize, d->w, d->h);
    uint8_t *chw = dst;
    uint8_t *tmp = NULL;
    if (d->c != im.c) { /* 4 channels asked: RGB and a zero plane */
        tmp = cdb_xcalloc((size_t)im.c * d->h * d->w, 1);
        if (!tmp) {
            cdb_image_free(&im);
            return -1;
        }
        chw = tmp;
    }
    cdb_image_resample(&im, box, d->w, d->h, chw);
    if (tmp) {
        memset(dst, 0, (size_t)d->c * d->h * d->w);
        memcpy(dst, tmp, (size_t)(im.c < d->c ? im.c : d->c) * d->h * d->w);
        free(tmp);
    }
    cdb_image_free(&im);
    return 0;
}

/* One batch's work, shared by its threads: each takes the next image. */
typedef struct {
    const cdb_dataset *d;
    const int *indices;
    int n;
    const input_config *in;
    int augment;
    const uint64_t *seeds; /* (n) each image's stream */
    float *images;
    int *labels;
    pthread_mutex_t lock;
    int next, failed, replaced;
    char error[2048];
} batch_job;

static int load_image_floats(batch_job *job, int b, uint8_t *bytes)
{
    const cdb_dataset *d = job->d;
    size_t size = (size_t)d->c * d->h * d->w;
    cdb_rng rng = cdb_rng_stream(job->seeds[b], RNG_STREAM_AUGMENT, 0);
    int index = job->indices[b];
    /* bad_images=skip: an image that cannot be read gives way to the next
     * (up to 10), the same one whichever thread reads it */
    for (int attempt = 0; attempt < (d->bad_skip ? 10 : 1); attempt++) {
        int at = (index + attempt) % d->n;
        if (cdb_imageset_load_bytes(d, at, job->in, job->augment ? &rng : NULL, bytes) == 0) {
            augment_params ap = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
            if (job->augment) cdb_augment_draw(&rng, job->in, &ap);
            cdb_augment_image(bytes, d->c, d->h, d->w, job->in, &ap, job->images + (size_t)b * size);
            job->labels[b] = d->labels[at];
            if (attempt) {
                pthread_mutex_lock(&job->lock);
                job->replaced++;
                pthread_mutex_unlock(&job->lock);
            }
            return 0;
        }
        if (d->bad_skip) fprintf(stderr, "warning: %s; the next image is used instead\n", cdb_last_error());
    }
    return -1;
}

static void *batch_worker(void *arg)
{
    batch_job *job = arg;
    const cdb_dataset *d = job->d;
    uint8_t *bytes = cdb_xcalloc((size_t)d->c * d->h * d->w, 1);
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int b = job->failed ? job->n : job->next++;
        pthread_mutex_unlock(&job->lock);
        if (b >= job->n) break;
        if (!bytes || load_image_floats(job, b, bytes)) {
            pthread_mutex_lock(&job->lock);
            if (!job->failed) {
                job->failed = 1;
                snprintf(job->error, sizeof(job->error), "%s", bytes ? cdb_last_error() : "out of memory");
            }
            pthread_mutex_unlock(&job->lock);
            break;
        }
    }
    free(bytes);
    return NULL;
}

int cdb_imageset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                        cdb_rng *rng, float *images, int *labels)
{
    uint64_t *seeds = cdb_xcalloc((size_t)n, sizeof(uint64_t));
    if (!seeds) return -1;
    for (int b = 0; b < n; b++) seeds[b] = augment && rng ? cdb_rng_next(rng) : (uint64_t)indices[b];
    batch_job job = {d, indices, n, in, augment && rng, seeds, images, labels, PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, ""};
    int threads = d->workers < n ? d->workers : n;
    if (threads < 1) threads = 1;
    pthread_t tid[64];
    if (threads > 64) threads = 64;
    int started = 0;
    for (int t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, batch_worker, &job) == 0) started++;
    batch_worker(&job); /* this thread works too */
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&job.lock);
    free(seeds);
    if (job.failed) {
        cdb_set_error("%s", job.error);
        return -1;
    }
    return 0;
}

int cdb_imageset_cache(cdb_dataset *d, const input_config *in)
{
    size_t size = (size_t)d->c * d->h * d->w;
    if ((size_t)d->n > ((size_t)1 << 40) / size) {
        cdb_set_error("cache=1: the %d images of '%s' do not fit in memory", d->n, d->name);
        return -1;
    }
    uint8_t *pixels = cdb_xcalloc((size_t)d->n * size, 1);
    if (!pixels) {
        cdb_set_error("cache=1: cannot hold the %d images of '%s' (%.1f MiB) in memory", d->n, d->name,
                      (double)d->n * size / (1 << 20));
        return -1;
    }
    /* batches of 256 on the dataset's threads; validation transform, no augmentation */
    float *floats = cdb_xcalloc(256 * size, sizeof(float));
    int *idx = cdb_xcalloc(256, sizeof(int)), *lab = cdb_xcalloc(256, sizeof(int));
    int status = floats && idx && lab ? 0 : -1;
    input_config raw = *in;
    raw.nmean = raw.nstd = 0; /* the bytes, not the normalised floats */
    for (int start = 0; !status && start < d->n; start += 256) {
        int n = d->n - start < 256 ? d->n - start : 256;
        for (int b = 0; b < n; b++) idx[b] = start + b;
        status = cdb_imageset_fill_batch(d, idx, n, &raw, 0, NULL, floats, lab);
        for (int b = 0; !status && b < n; b++) {
            for (size_t i = 0; i < size; i++) {
                long v = lroundf(floats[(size_t)b * size + i] * 255.f);
                pixels[(size_t)(start + b) * size + i] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
            }
            d->labels[start + b] = lab[b]; /* bad_images=skip may have replaced it */
        }
    }
    free(floats);
    free(idx);
    free(lab);
    if (status) {
        free(pixels);
        return -1;
    }
    d->pixels = pixels;
    for (int i = 0; i < d->n; i++) free(d->paths[i]);
    free(d->paths);
    d->paths = NULL;
    return 0;
}
