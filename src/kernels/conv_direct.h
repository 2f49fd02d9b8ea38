/* Direct and Winograd convolution on channel-blocked images (CPU), written
 * once over the vector type of simd.h: 16-wide with AVX-512, 8-wide with
 * AVX2 + FMA, 4-wide with NEON or any other target.
 *
 * Layouts, 16 channels to a block (c16 = channel % 16, the fastest index):
 *   blocked image  (n, C/16, PH, PW, 16): an input zero-padded by pad pixels,
 *                  PH = H + 2 pad, PW = W + 2 pad;
 *   blocked output (F/16, n * OH * OW, 16): the images' pixels in a row;
 *   blocked weights (F/G, C/16, k, k, 16 c, G f): filters in groups of G = 64
 *                  (4 blocks), or 32 where F is not a multiple of 64.
 * Each micro-tile keeps 6 output pixels x 64 filters (or 12 x 32) with
 * AVX-512, 6 pixels x 16 filters with AVX2 or NEON, 3 x 16 otherwise, in
 * registers over the whole reduction (C/16 blocks x k x k taps x 16
 * channels), broadcasting one input value against the group's weight
 * vectors; no im2col, no packing of the images beyond the one blocked copy.
 * The input gradient is the same kernel applied to the zero-padded output
 * gradient with transposed, flipped weights (per stride phase). The
 * weight gradient keeps 8 channels x 32 filters of one tap in registers and
 * runs over every pixel of every image, in a fixed order at any thread count.
 * Winograd F(2x2, 3x3) (below) runs its 16 products on the same kernels. */
#ifndef CDB_CONV_DIRECT_H
#define CDB_CONV_DIRECT_H

#include <stddef.h>
#include <stdint.h>

/* which vector width the kernels were compiled for: "avx512", "avx2",
 * "neon" or "generic" (4-wide GCC vectors) */
const char *cdb_cd_kernels_isa(void);
size_t cdb_cd_kernels_vector_bytes(void);

/* Compute skipping of dropped filters works on whole groups of this many
 * filters (32 with AVX-512, 16 otherwise). */
int cdb_cd_skip_filter_group(void);

/* count images (C, H, W), image_stride floats apart, into blocked images
 * padded by pad pixels (C a multiple of 16) */
void cdb_cd_pack_input(const float *src, size_t image_stride, int count, int C, int H, int W, int pad, float *dst);

/* weights (F, C, k, k) into blocked weights (filters a multiple of 32,
 * channels of 16) */
void cdb_cd_pack_weights(const float *w, int F, int C, int k, float *wb);

/* slice_bytes (cdb_cd_forward, cdb_cd_winograd, cdb_cd_input_grad): bytes of one
 * group's weights per pass over the tiles (the network's conv_policy,
 * default 320 KiB). The reduction is split into slices of channel blocks
 * whose weights stay in L2 (ResNet-18's 512-filter layers have 1.2 MB per
 * group of 64 filters, read once per tile), each slice adding to the output
 * of the last. */

/* blocked output (F/16, count*OH*OW, 16) of a stride-s convolution of count
 * blocked images (C channels, PH x PW padded) with blocked weights */
void cdb_cd_forward(const float *xb, int count, int C, int PH, int PW, const float *wb, int F, int k, int s, int OH, int OW,
                float *yb, size_t slice_bytes);

/* Winograd F(2x2, 3x3) for 3x3 stride-1 pad-1 convolutions with an even
 * output size: the same blocked input (padded by 1) and output as
 * cdb_cd_forward, 2.25 times fewer products. Weights transformed and packed
 * into 16*F*C floats (transpose = 1: those of the input gradient, C filters
 * over F channels, flipped); scratch of cd_winograd_scratch floats (C the
 * input's channels, F the output's). */
static inline size_t cd_winograd_scratch(int count, int C, int F, int H, int W)
{
    return (size_t)16 * ((size_t)count * (H / 2) * (W / 2) * (C + F) + 32);
}
void cdb_cd_winograd_pack_weights(const float *w, int F, int C, int transpose, float *u);
void cdb_cd_winograd(const float *xb, int count, int C, int H, int W, const float *u, int F, float *scratch, float *yb,
                 size_t slice_bytes);
/* the weight gradient by Winograd: its 16 transformed parts du (16*F*C
 * floats, zeroed by the caller before the first chunk) += those of count
 * images (dy and skipping as cdb_cd_weight_grad; scratch as above); then once
 * per pass, dwb (as cdb_cd_weight_grad's) += du taken back to 3x3 */
void cdb_cd_winograd_weight_grad(const float *xb, int count, int C, int H, int W, const float *dy, size_t dy_image,
                             size_t dy_block, int dy_row, int F, const uint8_t *skip_c, const uint8_t *skip_f,
                             float *scratch, float *du);
void cdb_cd_winograd_weight_grad_finish(const float *du, int F, int C, float *dwb);

/* The input gradient of a stride-s convolution, phase by phase: input pixel
 * (iy, ix) receives from the taps ky = (iy + pad) mod s + s*m (likewise kx),
 * a kernel of at most ceil(k/s)^2 taps applied at stride 1 to the output
 * gradient zero-padded by cd_grad_pad pixels. For s = 1 it is one phase:
 * the whole kernel, flipped. Needs pad < k. */
static inline int cd_grad_pad(int k, int s, int pad) { return s == 1 ? k - 1 - pad : k - 1; }

/* the weights of every phase in a row (F*C*k*k floats in all; C a multiple
 * of 32, F of 16) */
void cdb_cd_pack_weights_grad(const float *w, int F, int C, int k, int s, float *wb);

/* blocked input gradient dxb (C/16, count*H*W, 16) from the blocked output
 * gradient dyb (count images of F channels, padded by cd_grad_pad) */
void cdb_cd_input_grad(const float *dyb, int count, int F, int OH, int OW, const float *wb, int C, int H, int W, int k,
                   int s, int pad, float *dxb, size_t slice_bytes);

/* dst images (F, HW), image_stride floats apart, = (add = 0) or += (add = 1)
 * the blocked output of count images */
void cdb_cd_unpack(const float *yb, int count, int F, int HW, float *dst, size_t image_stride, int add);

/* blocked weight gradient dwb (F/16, C/16, k, k, 16 c, 16 f) += over count
 * images: output gradient (pixel (i, fb, oy, ox) at
 * dy + i*dy_image + fb*dy_block + (oy*dy_row + ox)*16) times the blocked
 * inputs of the forward pass. Compute skipping: the channels c with
 * skip_c[c] set are not computed (their entries of dwb are left as they
 * are), nor groups of filters whose skip_f entries are all set; either
 * may be NULL (groups of cdb_cd_skip_filter_group()
 * filters). Each computed entry gets the same arithmetic either way. */
void cdb_cd_weight_grad(const float *xb, int count, int C, int PH, int PW, const float *dy, size_t dy_image,
                    size_t dy_block, int dy_row, int F, int k, int s, int OH, int OW, const uint8_t *skip_c,
                    const uint8_t *skip_f, float *dwb);

/* grad (F, C, k, k) += the blocked weight gradient */
void cdb_cd_add_weight_grad(const float *dwb, int F, int C, int k, float *grad);

#endif
