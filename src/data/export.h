/* `cdbnet export`: an in-memory dataset (IDX, CIFAR) written as a folder
 * dataset of PNG files, DIR/train/CLASS/N.png and DIR/valid/CLASS/N.png,
 * with DIR/classes.names and DIR/dataset.data (format=folder) to train
 * from it. */
#ifndef CDB_EXPORT_H
#define CDB_EXPORT_H

#include "data.h"

typedef struct {
    int limit;        /* at most this many images of each set (0: all) */
    int size;         /* resample each image to size x size (0: as it is) */
    int rgb;          /* write grey images as RGB (the grey in each channel) */
    int jpeg_quality; /* 1..100: JPEG files of this quality instead of PNG */
} export_options;

/* 0, or -1 with the error recorded (naming the file that could not be
 * written). */
int cdb_export_images(const data_config *d, const char *dir, const export_options *opt);

#endif
