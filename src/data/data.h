/* Datasets: IDX (MNIST, Fashion-MNIST; .gz or raw), the CIFAR-10/100
 * binary format, and image files (a folder per class, or a Darknet list
 * file), described by a .data file (docs/data.md). In-memory images are
 * kept as bytes and turned into normalised floats batch by batch; image
 * files are decoded batch by batch (or once, with cache=1). */
#ifndef CDB_DATA_H
#define CDB_DATA_H

#include <stdint.h>

#include "augment.h"
#include "dataset.h"
#include "network.h"

/* which = "train" or "valid". */
int cdb_dataset_read(const data_config *d, const char *which, cdb_dataset *out);
int cdb_dataset_load_idx(const char *images_path, const char *labels_path, int classes, cdb_dataset *out);
int cdb_dataset_load_cifar(const char *paths, int cifar100, int classes, cdb_dataset *out);
/* Check that the dataset fits the network's input and classes (image files
 * take the network's shape; with cache=1 they are decoded here). 0, or -1
 * with the error recorded. */
int cdb_dataset_check_against(cdb_dataset *d, const cdb_network *net);

/* Fill `images` (n, c, h, w floats) and `labels` with the dataset entries
 * `indices`, normalised per `in`; with `augment`, apply the random
 * pad-and-crop, flip and rotation of `in` using `rng` (image files:
 * each image its own stream, seeded from `rng` in batch order, so that the
 * batch is the same whichever thread decodes which image). 0, or -1 with
 * the error recorded (an image file that cannot be read, with
 * bad_images=error). */
int cdb_dataset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                       cdb_rng *rng, float *images, int *labels);

/* Advance `rng` past what cdb_dataset_fill_batch would draw for n images
 * (the images of a batch before a rank's shard). */
void cdb_dataset_skip_draws(const cdb_dataset *d, const input_config *in, int n, cdb_rng *rng);

/* A permutation of [0, n) for epoch `epoch` of a run seeded with `seed`. */
void cdb_dataset_epoch_order(int n, uint64_t seed, int epoch, int *order);

/* Item `index` of the dataset as validation reads it (no augmentation):
 * (c, h, w) floats normalised for `net`, and its label. 0, or -1 with the
 * error recorded. */
int cdb_dataset_input(const cdb_dataset *d, int index, const cdb_network *net, float *image, int *label);
/* An image file as the validation set's images are read (images.h): the
 * network's channels, the shorter side to image_resize, the centre crop,
 * then normalised into `out` (net's inputs floats). 0, or -1 with the
 * error naming the file. */
int cdb_image_file_input(const cdb_network *net, const char *path, float *out);
/* The warning of keys that do nothing for this training set (Darknet's
 * crop keys on in-memory images). */
void cdb_dataset_warn_unused_keys(const cdb_dataset *train, const cdb_network *net);

#endif
