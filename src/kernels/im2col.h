/* Unfold image patches into columns for convolution-as-GEMM, and the
 * adjoint that folds column gradients back onto the image. */
#ifndef CDB_IM2COL_H
#define CDB_IM2COL_H

/* im is (channels, height, width); col is (channels*ksize*ksize, out_h*out_w)
 * with rows `ld` floats apart (ld >= out_h*out_w lets several images share
 * one column matrix, side by side). */
void cdb_im2col(const float *im, int channels, int height, int width, int ksize, int stride, int pad, float *col, int ld);
/* im += fold(col), col laid out as for im2col. col is scratch: entries that
 * fall on the padding may be overwritten with zeros. */
void cdb_col2im(float *col, int channels, int height, int width, int ksize, int stride, int pad, float *im, int ld);

/* Dilated (atrous) convolutions: tap (ky, kx) reads input pixel
 * (y*stride + ky*dilation - pad, x*stride + kx*dilation - pad), out_h and
 * out_w given; the same column layout. Plain loops: dilated layers are rare. */
void cdb_im2col_dilated(const float *im, int channels, int height, int width, int ksize, int stride, int pad, int dilation,
                    int out_h, int out_w, float *col, int ld);
/* im += fold(col) for cdb_im2col_dilated's layout. */
void cdb_col2im_dilated(const float *col, int channels, int height, int width, int ksize, int stride, int pad, int dilation,
                    int out_h, int out_w, float *im, int ld);

#endif
