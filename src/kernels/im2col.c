#include "im2col.h"

#include <string.h>

/* Output columns x whose input column x*stride + kx - pad lies inside
 * [0, width): x in [*lo, *hi). */
static void valid_range(int out_w, int width, int stride, int kx, int pad, int *lo, int *hi)
{
    int first = pad - kx; /* input column of x = 0 is -first */
    int l = first > 0 ? (first + stride - 1) / stride : 0;
    int h = (width - 1 + pad - kx) / stride + 1;
    if (width - 1 + pad - kx < 0) h = 0;
    *lo = l < out_w ? l : out_w;
    *hi = h < out_w ? h : out_w;
    if (*hi < *lo) *hi = *lo;
}

/* A stride-1 'same' convolution (out_w == width): the column row of (ky, kx)
 * is the input plane shifted by (ky - pad) * width + kx - pad, so the valid
 * output rows [y0, y1) map onto one contiguous run of the plane. Positions
 * x < lo or x >= hi of each row read the neighbouring row in that run and
 * are patched afterwards. */
static int same_shape(int height, int width, int out_h, int out_w, int stride)
{
    return stride == 1 && out_w == width && out_h == height;
}

static void valid_rows(int out_h, int height, int ky, int pad, int *y0, int *y1)
{
    *y0 = pad - ky > 0 ? pad - ky : 0;
    *y1 = height + pad - ky < out_h ? height + pad - ky : out_h;
    if (*y0 > out_h) *y0 = out_h;
    if (*y1 < *y0) *y1 = *y0;
}

/* Rows [y0, y1) of a column row (width W): zero at x < lo and x >= hi, the
 * positions whose input lies in the padding. */
static void zero_outside(int W, float *col_row, int y0, int y1, int lo, int hi)
{
    for (int y = y0; y < y1; y++) {
        float *row = col_row + (size_t)y * W;
        for (int x = 0; x < lo; x++) row[x] = 0;
        for (int x = hi; x < W; x++) row[x] = 0;
    }
}

static void im2col_row_same(const float *restrict plane, int height, int width, int ky, int kx, int pad,
                            float *restrict d)
{
    int W = width, lo, hi, y0, y1;
    valid_range(W, W, 1, kx, pad, &lo, &hi);
    valid_rows(height, height, ky, pad, &y0, &y1);
    memset(d, 0, (size_t)y0 * W * sizeof(float));
    memset(d + (size_t)y1 * W, 0, (size_t)(height - y1) * W * sizeof(float));
    if (y1 == y0 || hi == lo) {
        memset(d + (size_t)y0 * W, 0, (size_t)(y1 - y0) * W * sizeof(float));
        return;
    }
    long shift = (long)(ky - pad) * W + kx - pad, first = (long)y0 * W + lo, last = (long)(y1 - 1) * W + hi;
    memcpy(d + first, plane + first + shift, (size_t)(last - first) * sizeof(float));
    zero_outside(W, d, y0, y1, lo, hi);
}

void cdb_im2col(const float *im, int channels, int height, int width, int ksize, int stride, int pad, float *col, int ld)
{
    int out_h = (height + 2 * pad - ksize) / stride + 1;
    int out_w = (width + 2 * pad - ksize) / stride + 1;
    int rows = channels * ksize * ksize, same = same_shape(height, width, out_h, out_w, stride);
    for (int r = 0; r < rows; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        const float *plane = im + (long)c * height * width;
        float *dst = col + (long)r * ld;
        if (same) {
            im2col_row_same(plane, height, width, ky, kx, pad, dst);
            continue;
        }
        int lo, hi;
        valid_range(out_w, width, stride, kx, pad, &lo, &hi);
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky - pad;
            float *d = dst + y * out_w;
            if (iy < 0 || iy >= height) {
                memset(d, 0, (size_t)out_w * sizeof(float));
                continue;
            }
            const float *src = plane + iy * width + kx - pad;
            for (int x = 0; x < lo; x++) d[x] = 0;
            if (stride == 1)
                memcpy(d + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            else
                for (int x = lo; x < hi; x++) d[x] = src[x * stride];
            for (int x = hi; x < out_w; x++) d[x] = 0;
        }
    }
}

/* The adjoint of im2col_row_same: the positions that map onto a
 * neighbouring row are zeroed in the (scratch) column row first, so the whole
 * run folds back in one pass. */
static void col2im_row_same(float *restrict s, int height, int width, int ky, int kx, int pad, float *restrict plane)
{
    int W = width, lo, hi, y0, y1;
    valid_range(W, W, 1, kx, pad, &lo, &hi);
    valid_rows(height, height, ky, pad, &y0, &y1);
    if (y1 == y0 || hi == lo) return;
    zero_outside(W, s, y0, y1, lo, hi);
    long shift = (long)(ky - pad) * W + kx - pad, first = (long)y0 * W + lo, last = (long)(y1 - 1) * W + hi;
    float *restrict dst = plane + first + shift;
    const float *restrict src = s + first;
    long n = last - first;
#pragma omp simd
    for (long i = 0; i < n; i++) dst[i] += src[i];
}

void cdb_col2im(float *col, int channels, int height, int width, int ksize, int stride, int pad, float *im, int ld)
{
    int out_h = (height + 2 * pad - ksize) / stride + 1;
    int out_w = (width + 2 * pad - ksize) / stride + 1;
    int rows = channels * ksize * ksize, same = same_shape(height, width, out_h, out_w, stride);
    for (int r = 0; r < rows; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        float *plane = im + (long)c * height * width;
        float *src = col + (long)r * ld;
        if (same) {
            col2im_row_same(src, height, width, ky, kx, pad, plane);
            continue;
        }
        int lo, hi;
        valid_range(out_w, width, stride, kx, pad, &lo, &hi);
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky - pad;
            if (iy < 0 || iy >= height) continue;
            float *restrict dst = plane + iy * width + kx - pad;
            const float *restrict s = src + y * out_w;
            if (stride == 1)
                for (int x = lo; x < hi; x++) dst[x] += s[x];
            else
                for (int x = lo; x < hi; x++) dst[x * stride] += s[x];
        }
    }
}

void cdb_im2col_dilated(const float *im, int channels, int height, int width, int ksize, int stride, int pad, int dilation,
                    int out_h, int out_w, float *col, int ld)
{
    for (int r = 0; r < channels * ksize * ksize; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        const float *plane = im + (long)c * height * width;
        float *dst = col + (long)r * ld;
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky * dilation - pad;
            for (int x = 0; x < out_w; x++) {
                int ix = x * stride + kx * dilation - pad;
                dst[y * out_w + x] = iy >= 0 && iy < height && ix >= 0 && ix < width ? plane[iy * width + ix] : 0.f;
            }
        }
    }
}

void cdb_col2im_dilated(const float *col, int channels, int height, int width, int ksize, int stride, int pad, int dilation,
                    int out_h, int out_w, float *im, int ld)
{
    for (int r = 0; r < channels * ksize * ksize; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        float *plane = im + (long)c * height * width;
        const float *src = col + (long)r * ld;
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky * dilation - pad;
            if (iy < 0 || iy >= height) continue;
            for (int x = 0; x < out_w; x++) {
                int ix = x * stride + kx * dilation - pad;
                if (ix >= 0 && ix < width) plane[iy * width + ix] += src[y * out_w + x];
            }
        }
    }
}
