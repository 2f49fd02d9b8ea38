/* Datasets: IDX (MNIST, Fashion-MNIST; .gz or raw) and the CIFAR-10/100
 * binary format, described by a .data file (docs/data.md). Images are kept
 * as bytes and turned into normalised floats batch by batch. */
#ifndef CDB_DATA_H
#define CDB_DATA_H

#include <stdint.h>

#include "network.h"

typedef struct {
    char *name;        /* file it came from, for messages */
    int n, c, h, w;
    int classes;
    uint8_t *pixels;   /* (n, c, h, w) */
    int *labels;       /* (n) */
} cdb_dataset;

typedef enum { DATA_IDX, DATA_CIFAR10, DATA_CIFAR100 } data_format;

typedef struct {
    char *path;
    int classes;
    data_format format;
    char *train, *train_labels, *valid, *valid_labels;
    char *backup;
    char *names;       /* optional file with one class name per line */
} data_config;

int data_config_load(const char *path, data_config *out);
void data_config_free(data_config *d);
/* which = "train" or "valid". */
int dataset_load(const data_config *d, const char *which, cdb_dataset *out);
int dataset_load_idx(const char *images_path, const char *labels_path, int classes, cdb_dataset *out);
int dataset_load_cifar(const char *paths, int cifar100, int classes, cdb_dataset *out);
void dataset_free(cdb_dataset *d);
/* Check that the dataset fits the network's input and classes. */
int dataset_check_against(const cdb_dataset *d, const cdb_network *net);

/* Fill `images` (n, c, h, w floats) and `labels` with the dataset entries
 * `indices`, normalised per net->input_cfg; with `augment`, apply the random
 * pad-and-crop, flip and rotation of input_cfg using `rng`. */
void dataset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
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

/* A permutation of [0, n) for epoch `epoch` of a run seeded with `seed`. */
void dataset_epoch_order(int n, uint64_t seed, int epoch, int *order);

#endif
