/* Unfold image patches into columns for convolution-as-GEMM, and the
 * adjoint that folds column gradients back onto the image. */
#ifndef CDB_IM2COL_H
#define CDB_IM2COL_H

/* im is (channels, height, width); col is (channels*ksize*ksize, out_h*out_w). */
void im2col(const float *im, int channels, int height, int width, int ksize, int stride, int pad, float *col);
/* im += fold(col). */
void col2im(const float *col, int channels, int height, int width, int ksize, int stride, int pad, float *im);

#endif
