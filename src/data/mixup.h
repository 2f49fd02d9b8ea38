/* timm's mixup and cutmix (timm.data.Mixup, mode "batch") over a step's
 * batch: with probability mixup_prob the batch is mixed, by cutmix with
 * probability mixup_switch_prob when both alphas are set (else by the one
 * set), lambda drawn from Beta(alpha, alpha); image i is mixed with image
 * n - 1 - i (the batch reversed); mixup blends the two images, cutmix
 * pastes the partner's box of area about (1 - lambda), lambda then
 * corrected to the box's true area; the targets are lambda y_i +
 * (1 - lambda) y_{n-1-i} of the label-smoothed one-hots. The draws come
 * from the run's seed and the step number, so a seed repeats and a resume
 * is exact. */
#ifndef CDB_MIXUP_H
#define CDB_MIXUP_H

#include <stdint.h>

#include "augment.h"
#include "utils.h"

typedef struct {
    float lam;                 /* the weight of each image's own label (1: not mixed) */
    int cutmix;                /* the box was pasted (else the images blended) */
    int y0, y1, x0, x1;        /* cutmix: the box, rows y0..y1-1, columns x0..x1-1 */
} mix_params;

/* Mixing is configured (either alpha above 0): the targets are soft. */
int cdb_mix_active(const input_config *in);
/* The parameters of step `step` (0-based) of epoch `epoch` for images of
 * h x w pixels. */
void cdb_mix_draw(const input_config *in, uint64_t seed, int step, int epoch, int h, int w, mix_params *out);
/* timm's rand_bbox (no margin) for lambda `lam` centred at (cy, cx), and
 * the area correction of lambda (correct_lam): lam = 1 - box area / (h w). */
void cdb_mix_box(double lam, int cy, int cx, int h, int w, mix_params *out);
/* Mix n images of (c, h, w) floats in place (image i with image n-1-i). */
void cdb_mix_apply(const mix_params *m, float *images, int n, int c, int h, int w);
/* A Beta(a, a) draw (a > 0). */
double cdb_rng_beta(cdb_rng *r, double a);

#endif
