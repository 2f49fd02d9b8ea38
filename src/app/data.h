/* Datasets: IDX (MNIST, Fashion-MNIST; .gz or raw), the CIFAR-10/100
 * binary format, and image files (a folder per class, or a Darknet list
 * file), described by a .data file (docs/data.md). In-memory images are
 * kept as bytes and turned into normalised floats batch by batch; image
 * files are decoded batch by batch (or once, with cache=1). */
#ifndef CDB_DATA_H
#define CDB_DATA_H

#include <stdint.h>

#include "network.h"

typedef struct {
    char *name;        /* file it came from, for messages */
    int n, c, h, w;    /* image files: c, h, w are the network's, set by dataset_check_against */
    int classes;
    uint8_t *pixels;   /* (n, c, h, w); NULL for image files not cached */
    int *labels;       /* (n) */
    char **paths;      /* (n) image files (folder and list formats), or NULL */
    int bad_skip;      /* bad_images=skip: an image that cannot be read is replaced by the next */
    int cache;         /* cache=1: decode every image once (dataset_check_against does) */
    int workers;       /* threads that decode a batch of image files */
    char **class_names; /* (classes) format=folder: the class of each label */
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
} data_config;

int data_config_load(const char *path, data_config *out);
/* Class names from a names= file (one per line, at least `classes`), or
 * NULL with the error recorded. */
char **data_load_names(const char *path, int classes);
void data_free_names(char **names, int classes);
void data_config_free(data_config *d);
/* which = "train" or "valid". */
int dataset_load(const data_config *d, const char *which, cdb_dataset *out);
int dataset_load_idx(const char *images_path, const char *labels_path, int classes, cdb_dataset *out);
int dataset_load_cifar(const char *paths, int cifar100, int classes, cdb_dataset *out);
void dataset_free(cdb_dataset *d);
/* Keep the first n entries only (n < d->n). */
void dataset_truncate(cdb_dataset *d, int n);
/* Check that the dataset fits the network's input and classes (image files
 * take the network's shape; with cache=1 they are decoded here). 0, or -1
 * with the error recorded. */
int dataset_check_against(cdb_dataset *d, const cdb_network *net);

/* Fill `images` (n, c, h, w floats) and `labels` with the dataset entries
 * `indices`, normalised per net->input_cfg; with `augment`, apply the random
 * pad-and-crop, flip and rotation of input_cfg using `rng` (image files:
 * each image its own stream, seeded from `rng` in batch order, so that the
 * batch is the same whichever thread decodes which image). 0, or -1 with
 * the error recorded (an image file that cannot be read, with
 * bad_images=error). */
int dataset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                       cdb_rng *rng, float *images, int *labels);

/* One image's random parameters. */
typedef struct {
    int dy, dx, flip;         /* shift (zero padding) and horizontal flip */
    float degrees;            /* counter-clockwise rotation */
    float dhue, dsat, dexp;   /* hue shift (fraction of the circle), saturation and value factors */
} augment_params;

/* One image's augmentation with explicit parameters, in the reference's
 * order (torchvision's RandomCrop(padding), RandomHorizontalFlip,
 * RandomRotation), then Darknet's colour distortion: the image shifted by
 * (dy, dx) with zero padding, flipped when `flip`, rotated
 * counter-clockwise by `degrees` about its centre with nearest-pixel
 * sampling and zero fill, its HSV hue shifted and saturation and value
 * scaled (3 channels; fewer: the value only), clamped to [0, 1];
 * normalised per `in`. */
void augment_image(const uint8_t *src, int C, int H, int W, const input_config *in, const augment_params *ap,
                   float *dst);

/* Advance `rng` past what dataset_fill_batch would draw for n images
 * (the images of a batch before a rank's shard). */
void dataset_skip_draws(const cdb_dataset *d, const input_config *in, int n, cdb_rng *rng);

/* One image's random parameters from `rng`, per the keys of `in`. */
void augment_draw(cdb_rng *rng, const input_config *in, augment_params *ap);

/* A permutation of [0, n) for epoch `epoch` of a run seeded with `seed`. */
void dataset_epoch_order(int n, uint64_t seed, int epoch, int *order);

#endif
