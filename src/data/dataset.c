/* Datasets as the library holds them: the .data file, class names, and
 * freeing (dataset.h). */
#include "dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "images.h"
#include "utils.h"

int cdb_data_config_load(const char *path, data_config *out)
{
    memset(out, 0, sizeof(*out));
    long failed_before = cdb_failed_allocations();
    cfg_file *f = cdb_cfg_parse_keyvalue_file(path, "data", "data file");
    if (!f) return -1;
    cfg_reader r = cdb_cfg_reader_for(f, 0, -1);
    static const char *const formats[] = {"idx", "cifar10", "cifar100", "folder", "list", NULL};
    static const char *const bad_images[] = {"error", "skip", NULL};
    out->path = cdb_xstrdup(path);
    out->classes = cdb_cfg_int(&r, "classes", 0, 1, 1 << 20);
    out->format = (data_format)cdb_cfg_choice(&r, "format", formats, DATA_IDX);
    const char *s;
#define TAKE(field, key)                        \
    s = cdb_cfg_str(&r, key, NULL);                 \
    out->field = s ? cdb_xstrdup(s) : NULL;
    TAKE(train, "train");
    TAKE(train_labels, "train_labels");
    TAKE(valid, "valid");
    TAKE(valid_labels, "valid_labels");
    TAKE(names, "names");
    TAKE(labels, "labels");
    out->bad_images_skip = cdb_cfg_choice(&r, "bad_images", bad_images, 0);
    out->cache = cdb_cfg_int(&r, "cache", 0, 0, 1);
    out->loader_threads = cdb_cfg_int(&r, "loader_threads", 0, 0, 64);
    out->train_subset = cdb_cfg_int(&r, "train_subset", 0, 0, 1 << 30);
    out->max_image_pixels = cdb_cfg_int(&r, "max_image_pixels", (int)DEFAULT_MAX_IMAGE_PIXELS, 1, INT_MAX);
    s = cdb_cfg_str(&r, "backup", "backup");
    out->backup = cdb_xstrdup(s);
#undef TAKE
    if (cdb_failed_allocations() > failed_before) cdb_cfg_fail(&r, NULL, "out of memory");
    cdb_cfg_check_unused(&r);
    if (!r.failed && !cdb_cfg_has(&r, "classes")) cdb_cfg_fail(&r, NULL, "missing key 'classes'");
    if (!r.failed && (!out->train || !out->valid)) cdb_cfg_fail(&r, NULL, "needs both 'train' and 'valid'");
    if (!r.failed && out->format == DATA_IDX && (!out->train_labels || !out->valid_labels))
        cdb_cfg_fail(&r, NULL, "format=idx needs 'train_labels' and 'valid_labels'");
    if (!r.failed && out->format == DATA_LIST && !out->labels && !out->names)
        cdb_cfg_fail(&r, NULL, "format=list needs 'labels' (or 'names'): the label names found in the image paths");
    if (!r.failed && out->format != DATA_FOLDER && out->format != DATA_LIST &&
        (cdb_cfg_has(&r, "bad_images") || cdb_cfg_has(&r, "cache") || cdb_cfg_has(&r, "loader_threads") ||
         cdb_cfg_has(&r, "max_image_pixels")))
        cdb_cfg_fail(&r, NULL, "bad_images, cache, loader_threads and max_image_pixels are for image files (format=folder "
                               "or list)");
    if (!r.failed && (out->format == DATA_FOLDER || out->format == DATA_LIST) && !cdb_image_decoder_available())
        cdb_cfg_fail(&r, "format", "this cdbnet was built without an image decoder, so it cannot read image files "
                               "(install libstb-dev and rebuild, or build with OPENCV=1)");
    int status = r.failed ? -1 : 0;
    cdb_cfg_free(f);
    if (status) cdb_data_config_free(out);
    return status;
}

/* Class names from the .data file's names= (one per line), or NULL. */
char **cdb_data_load_names(const char *path, int classes)
{
    if (cdb_check_regular(path, "class names file")) return NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        cdb_set_error("cannot open class names file '%s'", path);
        return NULL;
    }
    char **names = cdb_xcalloc((size_t)classes, sizeof(char *));
    if (!names) {
        fclose(f);
        return NULL;
    }
    char line[512];
    int n = 0, oom = 0, bad = 0;
    while (n < classes && !oom && !bad && fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        if (line[len] == 0 && !feof(f)) { /* no end of line within the buffer: a name this long is a mistake */
            cdb_set_error("class names file '%s', line %d: a name of more than %d bytes", path, n + 1,
                          (int)sizeof(line) - 2);
            bad = 1;
            break;
        }
        line[len] = 0;
        for (const unsigned char *c = (const unsigned char *)line; *c && !bad; c++)
            if (*c < 0x20 || *c == 0x7f) { /* a control byte: it would break the logs' headers and the terminal */
                cdb_set_error("class names file '%s', line %d: the name holds a control byte (0x%02x)", path, n + 1,
                              *c);
                bad = 1;
            }
        if (!bad) oom = !(names[n++] = cdb_xstrdup(line));
    }
    fclose(f);
    if (n < classes || oom || bad) {
        if (!oom && !bad) cdb_set_error("class names file '%s' has %d lines for %d classes", path, n, classes);
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return NULL;
    }
    return names;
}

void cdb_data_free_names(char **names, int classes)
{
    if (!names) return;
    for (int i = 0; i < classes; i++) free(names[i]);
    free(names);
}

void cdb_data_config_free(data_config *d)
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


void cdb_dataset_truncate(cdb_dataset *d, int n)
{
    if (n >= d->n) return;
    if (d->paths)
        for (int i = n; i < d->n; i++) {
            free(d->paths[i]);
            d->paths[i] = NULL;
        }
    d->n = n;
}

int cdb_dataset_subset(cdb_dataset *d, int n, uint64_t seed)
{
    if (n < 1 || n > d->n) {
        cdb_set_error("a training subset of %d images of '%s', which has %d", n, d->name, d->n);
        return -1;
    }
    if (n == d->n) return 0;
    int K = d->classes;
    long *count = cdb_xcalloc((size_t)K, sizeof(long)), *quota = cdb_xcalloc((size_t)K, sizeof(long));
    int *order = cdb_xmalloc((size_t)d->n * sizeof(int));
    unsigned char *keep = cdb_xcalloc((size_t)d->n, 1);
    int status = count && quota && order && keep ? 0 : -1;
    if (!status) {
        for (int i = 0; i < d->n; i++) count[d->labels[i]]++;
        /* the floors of each class's share, then one more to the largest
         * remainders (n count_k mod entries), ties to the lower class */
        long given = 0;
        for (int k = 0; k < K; k++) {
            quota[k] = (long)((long long)n * count[k] / d->n);
            given += quota[k];
        }
        for (; given < n; given++) {
            int best = -1;
            long long best_rem = -1;
            for (int k = 0; k < K; k++) {
                long long rem = (long long)n * count[k] % d->n;
                int has_extra = quota[k] > (long)((long long)n * count[k] / d->n);
                if (!has_extra && rem > best_rem) {
                    best = k;
                    best_rem = rem;
                }
            }
            quota[best]++;
        }
        /* within each class, a seeded shuffle of its entries; the first quota kept */
        cdb_rng rng = cdb_rng_stream(seed, RNG_STREAM_SUBSET, 0);
        for (int i = 0; i < d->n; i++) order[i] = i;
        for (int i = d->n - 1; i > 0; i--) {
            int j = cdb_rng_int(&rng, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < d->n; i++) {
            int e = order[i];
            if (quota[d->labels[e]] > 0) {
                quota[d->labels[e]]--;
                keep[e] = 1;
            }
        }
        size_t size = d->pixels ? (size_t)d->c * d->h * d->w : 0;
        int m = 0;
        for (int i = 0; i < d->n; i++) {
            if (!keep[i]) {
                if (d->paths) free(d->paths[i]);
                continue;
            }
            if (d->pixels && m != i) memmove(d->pixels + (size_t)m * size, d->pixels + (size_t)i * size, size);
            d->labels[m] = d->labels[i];
            if (d->paths) d->paths[m] = d->paths[i];
            m++;
        }
        for (int i = m; d->paths && i < d->n; i++) d->paths[i] = NULL;
        d->n = m;
    }
    free(count);
    free(quota);
    free(order);
    free(keep);
    return status;
}

void cdb_dataset_clear(cdb_dataset *d)
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
