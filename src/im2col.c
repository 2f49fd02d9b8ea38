#include "im2col.h"

void im2col(const float *im, int channels, int height, int width, int ksize, int stride, int pad, float *col, int ld)
{
    int out_h = (height + 2 * pad - ksize) / stride + 1;
    int out_w = (width + 2 * pad - ksize) / stride + 1;
    int rows = channels * ksize * ksize;
    for (int r = 0; r < rows; r++) {
        int kx = r % ksize, ky = (r / ksize) % ksize, c = r / ksize / ksize;
        const float *plane = im + (long)c * height * width;
        float *dst = col + (long)r * ld;
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky - pad;
            float *d = dst + y * out_w;
            if (iy < 0 || iy >= height) {
                for (int x = 0; x < out_w; x++) d[x] = 0;
                continue;
            }
            const float *src = plane + iy * width;
            for (int x = 0; x < out_w; x++) {
                int ix = x * stride + kx - pad;
                d[x] = (ix >= 0 && ix < width) ? src[ix] : 0;
            }
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
        for (int y = 0; y < out_h; y++) {
            int iy = y * stride + ky - pad;
            if (iy < 0 || iy >= height) continue;
            float *dst = plane + iy * width;
            const float *s = src + y * out_w;
            for (int x = 0; x < out_w; x++) {
                int ix = x * stride + kx - pad;
                if (ix >= 0 && ix < width) dst[ix] += s[x];
            }
        }
    }
}
