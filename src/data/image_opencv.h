/* Image decoding with OpenCV (make OPENCV=1): OpenCV 4 has no C API, so
 * image_opencv.cpp wraps cv::imread behind these C functions. Pixels come
 * back as stb_image gives them: rows top to bottom, channels last, RGB (not
 * OpenCV's BGR) or grey. */
#ifndef CDB_IMAGE_OPENCV_H
#define CDB_IMAGE_OPENCV_H

#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `path` decoded to `channels` (1 or 3) channels, *w by *h; NULL with the
 * reason in why. Free with opencv_free. */
uint8_t *opencv_decode(const char *path, int channels, int *w, int *h, char *why, size_t why_size);
void opencv_free(uint8_t *pixels);
/* The image's size (OpenCV decodes it: it has no header-only reader for
 * every format). 0, or -1 with the reason in why. */
int opencv_probe(const char *path, int *w, int *h, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif
