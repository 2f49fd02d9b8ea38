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

void im2col(const float *im, int channels, int height, int width, int ksize, int stride, int pad, float *col, int ld)
{
    int out_h = (height + 2 * pad - ksize) / stride + 1;
    int out_w = (width + 2 * pad - ksize) / stride + 1;
    int rows = channels * ksize * ksize;
    for (int r = 0; r < rows; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        const float *plane = im + (long)c * height * width;
        float *dst = col + (long)r * ld;
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

void col2im(const float *col, int channels, int height, int width, int ksize, int stride, int pad, float *im, int ld)
{
    int out_h = (height + 2 * pad - ksize) / stride + 1;
    int out_w = (width + 2 * pad - ksize) / stride + 1;
    int rows = channels * ksize * ksize;
    for (int r = 0; r < rows; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        float *plane = im + (long)c * height * width;
        const float *src = col + (long)r * ld;
        int lo, hi;
        valid_range(out_w, width, stride, kx, pad, &lo, &hi);
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky - pad;
            if (iy < 0 || iy >= height) continue;
            float *dst = plane + iy * width + kx - pad;
            const float *s = src + y * out_w;
            if (stride == 1)
                for (int x = lo; x < hi; x++) dst[x] += s[x];
            else
                for (int x = lo; x < hi; x++) dst[x * stride] += s[x];
        }
    }
}
