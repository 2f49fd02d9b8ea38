/* A dataset as the library holds it (images as bytes, or the paths of
 * image files), the .data file that describes one (docs/data.md), and
 * the helpers every reader shares. The readers are in data.h (IDX, CIFAR)
 * and imageset.h (image files). */
#ifndef CDB_DATASET_H
#define CDB_DATASET_H

#include <stdint.h>

/* The default max_image_pixels= of a .data file: 8192 x 8192 (an RGB
 * image of that size decodes to 192 MiB). */
#define DEFAULT_MAX_IMAGE_PIXELS (8192LL * 8192LL)

typedef struct cdb_dataset {
    char *name;        /* file it came from, for messages */
    int n, c, h, w;    /* image files: c, h, w are the network's, set by cdb_dataset_check_against */
    int classes;
    uint8_t *pixels;   /* (n, c, h, w); NULL for image files not cached */
    int *labels;       /* (n) */
    char **paths;      /* (n) image files (folder and list formats), or NULL */
    int bad_skip;      /* bad_images=skip: an image that cannot be read is replaced by the next */
    int cache;         /* cache=1: decode every image once (cdb_dataset_check_against does) */
    int workers;       /* threads that decode a batch of image files */
    char **class_names; /* (classes) format=folder: the class of each label */
    long long max_pixels; /* image files: the largest image's width x height, from the headers */
} cdb_dataset;

typedef enum { DATA_IDX, DATA_CIFAR10, DATA_CIFAR100, DATA_FOLDER, DATA_LIST } data_format;

typedef struct {
    char *path;
    int classes;
    data_format format;
    char *train, *train_labels, *valid, *valid_labels;
    char *backup;
    char *names;       /* optional file with one class name per line */
    char *labels;      /* format=list: the label names found in the paths (default: names) */
    int bad_images_skip; /* bad_images=skip (default error) */
    int cache;         /* cache=1 */
    int loader_threads; /* threads decoding image files (0: one per CPU, at most 4) */
    long long max_image_pixels; /* image files larger than this (width x height) are refused from their header */
    int train_subset;  /* train_subset=N: a stratified, seeded N images of the training set (0: all) */
} data_config;

int cdb_data_config_load(const char *path, data_config *out);
/* Class names from a names= file (one per line, at least `classes`), or
 * NULL with the error recorded. */
char **cdb_data_load_names(const char *path, int classes);
void cdb_data_free_names(char **names, int classes);
void cdb_data_config_free(data_config *d);
void cdb_dataset_clear(cdb_dataset *d);
/* Keep the first n entries only (n < d->n). */
void cdb_dataset_truncate(cdb_dataset *d, int n);
/* Keep a stratified sample of n entries, in their order: each class's
 * share of n in proportion to its entries (floors, then the largest
 * remainders, ties to the lower class), the entries of each class drawn
 * from `seed`'s stream. 0, or -1 when n is not in 1..entries (recorded). */
int cdb_dataset_subset(cdb_dataset *d, int n, uint64_t seed);

#endif
