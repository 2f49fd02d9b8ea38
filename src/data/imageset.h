/* Datasets of image files: format=folder (one sub-folder per class,
 * torchvision's ImageFolder layout) and format=list (Darknet's classifier
 * list: one path per line, the label the entry of labels= found in the
 * path). Images are decoded when a batch needs them (images.h), by
 * dataset->workers threads, or once with cache=1. */
#ifndef CDB_IMAGESET_H
#define CDB_IMAGESET_H

#include "augment.h"
#include "dataset.h"

/* The files of `dir` (format=folder; out->class_names are its classes in
 * label order: the sorted folder names, or names= when given) or of the list `file` (format=list),
 * each checked by its header (bad_images=skip leaves out, with a warning,
 * what bad_images=error stops at). 0, or -1 with the error naming the
 * folder, file or line. */
int cdb_imageset_load_folder(const data_config *d, const char *dir, cdb_dataset *out);
int cdb_imageset_load_list(const data_config *d, const char *file, cdb_dataset *out);

/* One image, decoded and pre-processed to (c, h, w) bytes of the dataset's
 * shape: the validation transform, or with `rng` (training) the
 * RandomResizedCrop of in->resized_crop or Darknet's crop of
 * in->darknet_crop. 0, or -1 with the error naming
 * the file. */
int cdb_imageset_load_bytes(const cdb_dataset *d, int index, const input_config *in, cdb_rng *rng, uint8_t *dst);

/* cache=1: decode every image once (the validation transform) into
 * d->pixels; the dataset is then an in-memory one. */
int cdb_imageset_cache(cdb_dataset *d, const input_config *in);

/* Fill a batch of image files with d->workers threads: as
 * cdb_dataset_fill_batch. */
int cdb_imageset_fill_batch(const cdb_dataset *d, const int *indices, int n, const input_config *in, int augment,
                        cdb_rng *rng, float *images, int *labels);

#endif
