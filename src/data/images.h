/* Image files: decoding (stb_image, or OpenCV with OPENCV=1), and the
 * geometric pre-processing of folder and list datasets and of `predict`:
 * a box of the source image resampled to the network's size with an
 * antialiased triangle filter, the box chosen by the validation transform
 * (shorter side to `image_resize`, centre crop) or, in training with
 * resized_crop=1, torchvision's RandomResizedCrop. */
#ifndef CDB_IMAGES_H
#define CDB_IMAGES_H

#include <stdint.h>

#include "network.h"
#include "utils.h"

/* A decoded image, channels last (as decoders give it). */
typedef struct {
    int w, h, c;
    uint8_t *px; /* (h, w, c) */
} byte_image;

/* 1 when this build can decode image files (stb or OpenCV). */
int cdb_image_decoder_available(void);
/* Which decoder: "stb_image", "OpenCV" or "none". */
const char *cdb_image_decoder_name(void);
/* Decode `path` to `channels` channels (1: grey, 3: RGB; converted as the
 * decoder does). 0, or -1 with the error naming the file. */
int cdb_image_decode(const char *path, int channels, byte_image *out);
void cdb_image_free(byte_image *im);
/* The header only: width and height, without decoding. 0, or -1 with the
 * error naming the file. */
int cdb_image_probe(const char *path, int *w, int *h);

/* A crop box in source pixels: left, top, width, height (fractions allowed). */
typedef struct {
    double x, y, w, h;
} image_box;

/* The validation transform's box: the image's shorter side scaled to
 * `resize` (0: the larger of W and H), then the centre W x H. */
image_box cdb_image_center_box(int w, int h, int resize, int W, int H);
/* torchvision's RandomResizedCrop: an area of scale_min..1 of the image
 * and an aspect ratio (width / height) log-uniform in ratio_min..1/ratio_min,
 * ten tries, else the centre crop of the largest box within the ratio
 * range. */
image_box cdb_image_random_resized_box(int w, int h, float scale_min, float ratio_min, cdb_rng *rng);
/* Darknet's classifier crop (random_augment_image without its rotation,
 * which `angle` does afterwards): the aspect ratio stretched by a factor
 * between 1 and `aspect` or its inverse, the shorter side (after the
 * stretch) scaled to a random min_crop..max_crop pixels, and a W x H
 * window shifted uniformly within the scaled image about its centre. */
image_box cdb_image_darknet_box(int w, int h, int W, int H, int min_crop, int max_crop, float aspect, cdb_rng *rng);
/* Resample `box` of `src` to W x H, channels first (dst: (c, H, W)), with
 * a triangle (bilinear) filter widened by the scale when reducing, so that
 * a reduction averages rather than skips pixels; edges replicated. */
void cdb_image_resample(const byte_image *src, image_box box, int W, int H, uint8_t *dst);

#endif
