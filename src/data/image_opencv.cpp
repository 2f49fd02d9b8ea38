// make OPENCV=1: cv::imread behind the C interface of image_opencv.h.
#include "image_opencv.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

static void say(char *why, size_t n, const char *text)
{
    if (why && n) std::snprintf(why, n, "%s", text);
}

extern "C" uint8_t *opencv_decode(const char *path, int channels, int *w, int *h, char *why, size_t why_size)
{
    try {
        // IMREAD_COLOR and IMREAD_GRAYSCALE convert as stb does (alpha
        // dropped, grey = weighted RGB); IGNORE_ORIENTATION: the pixels as
        // stored, as stb_image reads them.
        int flags = (channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR) | cv::IMREAD_IGNORE_ORIENTATION;
        cv::Mat im = cv::imread(path, flags);
        if (im.empty()) {
            say(why, why_size, "OpenCV cannot decode it (not an image, truncated or corrupt)");
            return nullptr;
        }
        if (im.depth() != CV_8U) im.convertTo(im, CV_8U);
        if (channels == 3) cv::cvtColor(im, im, cv::COLOR_BGR2RGB);
        size_t row = (size_t)im.cols * channels;
        uint8_t *out = (uint8_t *)std::malloc(row * im.rows);
        if (!out) {
            say(why, why_size, "out of memory");
            return nullptr;
        }
        for (int y = 0; y < im.rows; y++) std::memcpy(out + row * y, im.ptr<uint8_t>(y), row);
        *w = im.cols;
        *h = im.rows;
        return out;
    } catch (const std::exception &e) {
        say(why, why_size, e.what());
        return nullptr;
    }
}

extern "C" void opencv_free(uint8_t *pixels) { std::free(pixels); }

extern "C" int opencv_probe(const char *path, int *w, int *h, char *why, size_t why_size)
{
    uint8_t *px = opencv_decode(path, 1, w, h, why, why_size);
    if (!px) return -1;
    opencv_free(px);
    return 0;
}
