/* One in-memory image's augmentation and normalisation, as a training
 * batch applies them (data.h) and image files after decoding (imageset.h). */
#ifndef CDB_AUGMENT_H
#define CDB_AUGMENT_H

#include <stdint.h>

#include "network.h"

/* The input pipeline's keys of [net] (docs/cfg.md): augmentation in
 * training and normalisation always. Read from a network's [net] by
 * cdb_input_config_read. */
typedef struct {
    int crop_pad;              /* random crop after zero-padding by this many pixels */
    int flip;                  /* random horizontal flip */
    float angle;               /* random rotation by up to this many degrees either way (Darknet's angle=) */
    float hue, saturation, exposure; /* Darknet's colour distortion: hue shift up to +-hue, factors up to x or / the others */
    float mean[4], std[4];     /* per-channel input normalisation of [0,1] pixels */
    int nmean, nstd;
    /* Image files (folder and list datasets, predict): the shorter side
     * resized to image_resize (0: the larger of width and height), then
     * the centre crop; in training with resized_crop=1, torchvision's
     * RandomResizedCrop instead (area scale..1, aspect ratio..1/ratio). */
    int image_resize;
    int resized_crop;
    float resized_crop_scale, resized_crop_ratio;
    /* Darknet's classifier crop of image files in training (min_crop,
     * max_crop, aspect keys, or darknet=1; center=1 turns it off): the
     * shorter side scaled to a random min_crop..max_crop, the aspect
     * stretched by up to `aspect`, a random window of the network's size. */
    int darknet_crop, min_crop, max_crop;
    int darknet_crop_keys;     /* min_crop, max_crop or aspect given (warned about for in-memory datasets) */
    float aspect;
    /* timm's mixup and cutmix over each step's batch (mixup.h) */
    float mixup_alpha, cutmix_alpha; /* Beta(alpha, alpha) of each; 0: off */
    float mixup_prob;          /* the chance a batch is mixed */
    float mixup_switch_prob;   /* with both alphas: the chance of cutmix rather than mixup */
    int mixup_off_epoch;       /* from this epoch (0-based) on, no mixing (0: never off) */
} input_config;

/* The input keys of [net] (the reader of the full build, which checks
 * for unknown keys at the end), or those of a built network. 0, or -1
 * with the error recorded (file, line, key). */
int cdb_input_config_read(cfg_reader *r, input_config *in);
int cdb_input_config_of(const cdb_network *net, input_config *in);

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
