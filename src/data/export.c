#include "export.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "images.h"
#include "utils.h"

#ifdef STB_IMAGE
#include <stb/stb_image_write.h>
#endif

/* A class name as a folder name: '/' and control characters become '_'. */
static void folder_name(const char *name, int k, char *out, size_t n)
{
    if (!name || !name[0] || !strcmp(name, ".") || !strcmp(name, "..")) {
        snprintf(out, n, "class%03d", k);
        return;
    }
    snprintf(out, n, "%s", name);
    for (char *c = out; *c; c++)
        if (*c == '/' || (unsigned char)*c < 32) *c = '_';
}

typedef struct {
    FILE *f;
    int failed, error;
} write_sink;

static void sink_write(void *context, void *data, int size)
{
    write_sink *s = context;
    if (!s->failed && fwrite(data, 1, (size_t)size, s->f) != (size_t)size) {
        s->failed = 1;
        s->error = errno;
    }
}

/* A folder export may write into: new, or empty. */
static int check_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0; /* made next */
    struct dirent *e;
    int used = 0;
    while (!used && (e = readdir(d))) used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    if (used) {
        cdb_set_error("'%s' is not empty: export writes into a new or empty folder (images left from another export "
                      "would join this one)",
                      dir);
        return -1;
    }
    return 0;
}

static int write_set(const cdb_dataset *set, const char *dir, char **folders, const export_options *opt)
{
    if (cdb_make_dir(dir)) return -1;
    for (int k = 0; k < set->classes; k++) {
        char path[4600];
        snprintf(path, sizeof(path), "%s/%s", dir, folders[k]);
        if (cdb_make_dir(path)) return -1;
    }
    int n = opt->limit && opt->limit < set->n ? opt->limit : set->n, C = set->c, H = set->h, W = set->w;
    int OW = opt->size ? opt->size : W, OH = opt->size ? opt->size : H, OC = opt->rgb && C == 1 ? 3 : C;
    uint8_t *hwc = cdb_xcalloc((size_t)C * H * W, 1), *chw = cdb_xcalloc((size_t)C * OH * OW, 1),
            *out = cdb_xcalloc((size_t)OC * OH * OW, 1);
    int status = hwc && chw && out ? 0 : -1;
    for (int i = 0; !status && i < n; i++) {
        const uint8_t *src = set->pixels + (size_t)i * C * H * W;
        for (int c = 0; c < C; c++)
            for (int p = 0; p < H * W; p++) hwc[(size_t)p * C + c] = src[(size_t)c * H * W + p];
        byte_image im = {W, H, C, hwc};
        image_box whole = {0, 0, W, H};
        cdb_image_resample(&im, whole, OW, OH, chw);
        for (int c = 0; c < OC; c++)
            for (int p = 0; p < OH * OW; p++) out[(size_t)p * OC + c] = chw[(size_t)(c < C ? c : 0) * OH * OW + p];
        char path[4700];
        snprintf(path, sizeof(path), "%s/%s/%05d.%s", dir, folders[set->labels[i]], i, opt->jpeg_quality ? "jpg" : "png");
#ifdef STB_IMAGE
        /* through our own writes: stb's file writer ignores their errors
         * (a full disk gave empty images) */
        FILE *f = fopen(path, "wb");
        write_sink sink = {f, 0, 0};
        int ok = f && (opt->jpeg_quality ? stbi_write_jpg_to_func(sink_write, &sink, OW, OH, OC, out, opt->jpeg_quality)
                                         : stbi_write_png_to_func(sink_write, &sink, OW, OH, OC, out, OW * OC));
        int saved = errno;
        if (f && fclose(f)) ok = 0, saved = errno;
        if (!ok || sink.failed) {
            cdb_set_error("cannot write '%s': %s", path, strerror(sink.failed ? sink.error : saved));
            remove(path);
            status = -1;
        }
#else
        cdb_set_error("cannot write '%s': this cdbnet was built without stb (libstb-dev)", path);
        status = -1;
#endif
    }
    free(hwc);
    free(chw);
    free(out);
    if (!status) printf("  %s: %d images\n", dir, n);
    return status;
}

int cdb_export_images(const data_config *d, const char *dir, const export_options *opt)
{
    if (d->format == DATA_FOLDER || d->format == DATA_LIST) {
        cdb_set_error("%s is already a dataset of image files", d->path);
        return -1;
    }
    char **names = d->names ? cdb_data_load_names(d->names, d->classes) : NULL;
    if (d->names && !names) return -1;
    char **folders = cdb_xcalloc((size_t)d->classes, sizeof(char *));
    int status = folders ? 0 : -1;
    for (int k = 0; !status && k < d->classes; k++) {
        char name[256];
        folder_name(names ? names[k] : NULL, k, name, sizeof(name));
        for (int j = 0; j < k; j++)
            if (!strcmp(folders[j], name)) snprintf(name, sizeof(name), "class%03d", k); /* two names alike */
        if (!(folders[k] = cdb_xstrdup(name))) status = -1;
    }
    if (!status && strpbrk(dir, "#;\n")) {
        cdb_set_error("the folder '%s' has a '#', ';' or line break in its path, which the .data file export writes "
                      "would read as a comment or a new line: choose another folder",
                      dir);
        status = -1;
    }
    if (!status) status = cdb_make_dir(dir);
    const char *sets[2] = {"train", "valid"};
    for (int s = 0; !status && s < 2; s++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, sets[s]);
        status = check_empty(path);
    }
    for (int s = 0; !status && s < 2; s++) {
        cdb_dataset set = {0};
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, sets[s]);
        status = cdb_dataset_read(d, sets[s], &set) || write_set(&set, path, folders, opt) ? -1 : 0;
        cdb_dataset_clear(&set);
    }
    if (!status) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/classes.names", dir);
        FILE *f = fopen(path, "w");
        for (int k = 0; f && k < d->classes; k++) fprintf(f, "%s\n", folders[k]);
        if (!f || fclose(f)) {
            cdb_set_error("cannot write '%s': %s", path, strerror(errno));
            status = -1;
        }
        snprintf(path, sizeof(path), "%s/dataset.data", dir);
        f = status ? NULL : fopen(path, "w");
        if (f) {
            fprintf(f, "# written by cdbnet export from %s: one folder per class, PNG files\nclasses=%d\nformat=folder\n"
                       "train=%s/train\nvalid=%s/valid\nnames=%s/classes.names\nbackup=backup\n",
                    d->path, d->classes, dir, dir, dir);
            if (fclose(f)) {
                f = NULL;
                status = -1;
            }
        }
        if (!f) {
            cdb_set_error("cannot write '%s': %s", path, strerror(errno));
            status = -1;
        }
        if (!status) printf("  %s: train from it with -data %s\n", path, path);
    }
    if (names) cdb_data_free_names(names, d->classes);
    if (folders)
        for (int k = 0; k < d->classes; k++) free(folders[k]);
    free(folders);
    return status;
}
