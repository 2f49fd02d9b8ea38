/* `cdbnet export`: an in-memory dataset (IDX, CIFAR) written as a folder
 * dataset of PNG files, DIR/train/CLASS/N.png and DIR/valid/CLASS/N.png,
 * with DIR/classes.names and DIR/dataset.data (format=folder) to train
 * from it. */
#ifndef CDB_EXPORT_H
#define CDB_EXPORT_H

#include "data.h"

/* At most `limit` images of each set (0: all). 0, or -1 with the error
 * recorded (naming the file that could not be written). */
int export_images(const data_config *d, const char *dir, int limit);

#endif
