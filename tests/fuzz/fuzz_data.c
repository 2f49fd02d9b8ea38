/* The dataset readers on arbitrary bytes: the first byte picks the .data
 * (key=value) reader, an IDX image and label pair, a CIFAR-10 binary file,
 * or a Darknet list file (format=list, labels "cat" and "dog"); each input
 * loads or fails with a message naming the file (and line). */
#include <string.h>

#include "data.h"
#include "fuzz_common.h"
#include "imageset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_limits();
    if (size < 1) return 0;
    int mode = data[0] % 4;
    data++;
    size--;
    const char *a = fuzz_path(".a"), *b = fuzz_path(".b");
    if (mode == 0) {
        if (fuzz_write(a, data, size)) return 0;
        data_config d;
        if (cdb_data_config_load(a, &d) == 0) cdb_data_config_free(&d);
    } else if (mode == 1) {
        /* images, then labels after the first 0xff 0xff 0xff 0xff (or none) */
        size_t split = size;
        for (size_t i = 0; i + 4 <= size; i++)
            if (data[i] == 0xff && data[i + 1] == 0xff && data[i + 2] == 0xff && data[i + 3] == 0xff) {
                split = i;
                break;
            }
        if (fuzz_write(a, data, split) || fuzz_write(b, data + (split + 4 <= size ? split + 4 : size),
                                                     split + 4 <= size ? size - split - 4 : 0))
            return 0;
        cdb_dataset set;
        if (cdb_dataset_load_idx(a, b, 10, &set) == 0) cdb_dataset_clear(&set);
    } else if (mode == 2) {
        if (fuzz_write(a, data, size)) return 0;
        cdb_dataset set;
        if (cdb_dataset_load_cifar(a, 0, 10, &set) == 0) cdb_dataset_clear(&set);
    } else {
        static const uint8_t labels[] = "cat\ndog\n";
        if (fuzz_write(a, data, size) || fuzz_write(b, labels, sizeof(labels) - 1)) return 0;
        data_config d;
        memset(&d, 0, sizeof(d));
        d.path = (char *)"fuzz.data";
        d.classes = 2;
        d.format = DATA_LIST;
        d.labels = (char *)b;
        d.bad_images_skip = 1;
        cdb_dataset set;
        if (cdb_imageset_load_list(&d, a, &set) == 0) cdb_dataset_clear(&set);
    }
    remove(a);
    remove(b);
    return 0;
}
