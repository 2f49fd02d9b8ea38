/* One in-memory image's augmentation and normalisation, as a training
 * batch applies them (data.h) and image files after decoding (imageset.h). */
#ifndef CDB_AUGMENT_H
#define CDB_AUGMENT_H

#include <stdint.h>

#include "network.h"

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
void cdb_augment_image(const uint8_t *src, int C, int H, int W, const input_config *in, const augment_params *ap,
                   float *dst);

/* One image's random parameters from `rng`, per the keys of `in`. */
void cdb_augment_draw(cdb_rng *rng, const input_config *in, augment_params *ap);

#endif
