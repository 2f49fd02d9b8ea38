/* Image files: the resampling against a direct computation, the crop
 * boxes, folder and list datasets (labels, names=, bad files), the
 * prefetching loader against the synchronous batches, and stb against
 * OpenCV in OPENCV=1 builds. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "images.h"
#include "imageset.h"
#include "loader.h"
#include "test.h"

#ifdef STB_IMAGE
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#endif

#define NEED_DECODER()                                                   \
    do {                                                                 \
        if (!cdb_image_decoder_available() || !have_stb_writer()) {          \
            printf("  (built without stb_image: skipped)\n");            \
            return;                                                      \
        }                                                                \
    } while (0)

/* The input pipeline's settings of a network's cfg (a static copy). */
static const input_config *input_of(const cdb_network *net)
{
    static input_config in;
    if (cdb_input_config_of(net, &in)) memset(&in, 0, sizeof(in));
    return &in;
}

static int have_stb_writer(void)
{
#ifdef STB_IMAGE
    return 1;
#else
    return 0;
#endif
}

/* The triangle filter written out in two dimensions, in doubles: output
 * (y, x) is the weighted mean of the source pixels i, j with weight
 * tri((j + 0.5 - cx) / sx') tri((i + 0.5 - cy) / sy'), cx = box.x + (x +
 * 0.5) box.w / W, s' = max(box.w / W, 1), indices clamped to the image. */
static double reference_pixel(const byte_image *im, image_box b, int W, int H, int c, int y, int x)
{
    double sx = b.w / W, sy = b.h / H, rx = sx > 1 ? sx : 1, ry = sy > 1 ? sy : 1;
    double cx = b.x + (x + 0.5) * sx, cy = b.y + (y + 0.5) * sy;
    double sum = 0, wsum = 0;
    for (int i = (int)floor(cy - ry) - 1; i <= (int)ceil(cy + ry) + 1; i++)
        for (int j = (int)floor(cx - rx) - 1; j <= (int)ceil(cx + rx) + 1; j++) {
            double wy = 1 - fabs(i + 0.5 - cy) / ry, wx = 1 - fabs(j + 0.5 - cx) / rx;
            if (wy <= 0 || wx <= 0) continue;
            int ii = i < 0 ? 0 : (i >= im->h ? im->h - 1 : i), jj = j < 0 ? 0 : (j >= im->w ? im->w - 1 : j);
            sum += wy * wx * im->px[((size_t)ii * im->w + jj) * im->c + c];
            wsum += wy * wx;
        }
    return sum / wsum;
}

static void t_resample(void)
{
    enum { SW = 37, SH = 23, C = 3 };
    uint8_t src[SW * SH * C];
    cdb_rng r = cdb_rng_stream(5, 99, 0);
    for (int i = 0; i < SW * SH * C; i++) src[i] = (uint8_t)cdb_rng_int(&r, 256);
    byte_image im = {SW, SH, C, src};
    /* the identity box copies, channels moved first */
    uint8_t out[64 * 64 * C];
    image_box whole = {0, 0, SW, SH};
    cdb_image_resample(&im, whole, SW, SH, out);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < SH; y++)
            for (int x = 0; x < SW; x++)
                CHECK(out[((size_t)c * SH + y) * SW + x] == src[((size_t)y * SW + x) * C + c], "identity at %d,%d,%d",
                      c, y, x);
    /* reductions, enlargements and off-centre boxes against the direct sum */
    const image_box boxes[] = {{0, 0, SW, SH}, {3.5, 2.25, 20, 11}, {-2, -1, 41, 25}, {10, 5, 7, 6}};
    const int sizes[][2] = {{16, 10}, {9, 9}, {50, 31}, {28, 28}};
    for (int k = 0; k < 4; k++) {
        int W = sizes[k][0], H = sizes[k][1];
        cdb_image_resample(&im, boxes[k], W, H, out);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double want = reference_pixel(&im, boxes[k], W, H, c, y, x);
                    int got = out[((size_t)c * H + y) * W + x];
                    CHECK(fabs(got - want) <= 0.5 + 1e-3, "box %d to %dx%d at %d,%d,%d: %d, want %.3f", k, W, H, c, y, x,
                          got, want);
                }
    }
    /* a constant image stays constant whatever the scale */
    memset(src, 77, sizeof(src));
    cdb_image_resample(&im, boxes[1], 50, 31, out);
    for (int i = 0; i < 50 * 31 * C; i++) CHECK(out[i] == 77, "constant image: %d at %d", out[i], i);
}

static void t_crop_boxes(void)
{
    /* the validation transform: shorter side to the net's size, the centre */
    image_box b = cdb_image_center_box(100, 50, 0, 32, 32);
    CHECK(fabs(b.w - 50) < 1e-9 && fabs(b.h - 50) < 1e-9 && fabs(b.x - 25) < 1e-9 && fabs(b.y) < 1e-9,
          "centre box %g %g %g %g", b.x, b.y, b.w, b.h);
    /* ImageNet's: shorter side 256, centre 224 */
    b = cdb_image_center_box(512, 384, 256, 224, 224);
    double scale = 256.0 / 384;
    CHECK(fabs(b.w - 224 / scale) < 1e-9 && fabs(b.x - (512 - 224 / scale) / 2) < 1e-9 &&
              fabs(b.y - (384 - 224 / scale) / 2) < 1e-9,
          "resize 256 crop 224: %g %g %g %g", b.x, b.y, b.w, b.h);
    /* RandomResizedCrop: inside the image, area and ratio in range, repeatable */
    for (int t = 0; t < 500; t++) {
        cdb_rng r1 = cdb_rng_stream(3, 7, (uint64_t)t), r2 = cdb_rng_stream(3, 7, (uint64_t)t);
        image_box a = cdb_image_random_resized_box(120, 80, 0.08f, 0.75f, &r1);
        image_box c = cdb_image_random_resized_box(120, 80, 0.08f, 0.75f, &r2);
        CHECK(a.x == c.x && a.y == c.y && a.w == c.w && a.h == c.h, "not repeatable");
        CHECK(a.x >= 0 && a.y >= 0 && a.x + a.w <= 120 && a.y + a.h <= 80 && a.w >= 1 && a.h >= 1, "box %g %g %g %g",
              a.x, a.y, a.w, a.h);
        double area = a.w * a.h / (120.0 * 80), ratio = a.w / a.h;
        int fallback = a.w == 120 && a.h == 80;
        CHECK(fallback || (area > 0.07 && area < 1.02 && ratio > 0.70 && ratio < 1.42), "area %.3f ratio %.3f", area,
              ratio);
    }
    /* Darknet's crop: min_crop = max_crop = 32 on a 100x50 image scales the
     * shorter side to 32, so the window is the full height, shifted
     * across the width; with aspect the window's width stretches. */
    for (int t = 0; t < 200; t++) {
        cdb_rng rd = cdb_rng_stream(4, 2, (uint64_t)t);
        image_box d = cdb_image_darknet_box(100, 50, 32, 32, 32, 32, 1.f, &rd);
        CHECK(fabs(d.h - 50) < 1e-9 && fabs(d.w - 50) < 1e-9 && fabs(d.y) < 1e-9 && d.x >= -1e-9 && d.x <= 50 + 1e-9,
              "darknet box %g %g %g %g", d.x, d.y, d.w, d.h);
        d = cdb_image_darknet_box(100, 50, 32, 32, 32, 64, 1.5f, &rd);
        double a = d.w / d.h; /* the aspect factor drawn */
        double shorter = 50 < 100 * a ? 50 : 100 * a, s = 32 / d.h, r = s * shorter;
        CHECK(a > 1 / 1.5 - 1e-6 && a < 1.5 + 1e-6 && r > 32 - 1e-6 && r < 64 + 1e-6 &&
                  fabs(r - floor(r + 0.5)) < 1e-6,
              "aspect %.4f, shorter side %.3f", a, r);
        /* the window stays within the scaled image: its centre within the slack */
        double cx = d.x + d.w / 2, cy = d.y + d.h / 2;
        CHECK(fabs(cx - 50) <= (100 * s / a - 32) / 2 * a / s + 1e-6 && fabs(cy - 25) <= (50 * s - 32) / 2 / s + 1e-6,
              "centre %g %g", cx, cy);
    }
    /* a strip no box of the ratio range fits ten times: the centre crop at the nearest ratio */
    cdb_rng r = cdb_rng_stream(1, 1, 1);
    image_box s = cdb_image_random_resized_box(400, 10, 0.99f, 0.75f, &r);
    CHECK(s.h == 10 && fabs(s.w - 13) < 1e-9 && fabs(s.x - (400 - 13) / 2) < 1e-9, "fallback %g %g %g %g", s.x, s.y,
          s.w, s.h);
}

/* A W x H image of `channels` whose pixels encode (label, k): written as
 * PNG (or BMP / JPEG by the extension). */
static int write_image(const char *path, int W, int H, int channels, int label, int k)
{
#ifdef STB_IMAGE
    uint8_t px[64 * 64 * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < channels; c++)
                px[((size_t)y * W + x) * channels + c] = (uint8_t)(20 * label + 3 * k + x + 2 * y + 50 * c);
    const char *ext = strrchr(path, '.');
    if (!strcmp(ext, ".bmp")) return stbi_write_bmp(path, W, H, channels, px) ? 0 : -1;
    if (!strcmp(ext, ".jpg")) return stbi_write_jpg(path, W, H, channels, px, 95) ? 0 : -1;
    return stbi_write_png(path, W, H, channels, px, W * channels) ? 0 : -1;
#else
    (void)path, (void)W, (void)H, (void)channels, (void)label, (void)k;
    return -1;
#endif
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* root/{b_cat,a_dog,c_eel}/ with 3, 2 and 4 images of 8x6 (one BMP). */
static int make_folder(const char *root)
{
    const char *classes[3] = {"b_cat", "a_dog", "c_eel"};
    const int count[3] = {3, 2, 4};
    char path[700];
    mkdir(root, 0755);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof(path), "%s/%s", root, classes[k]);
        mkdir(path, 0755);
        for (int i = 0; i < count[k]; i++) {
            snprintf(path, sizeof(path), "%s/%s/img%d.%s", root, classes[k], i, i == 1 ? "bmp" : "png");
            if (write_image(path, 8, 6, 3, k, i)) return -1;
        }
    }
    snprintf(path, sizeof(path), "%s/a_dog/notes.txt", root); /* not an image: not listed */
    return write_text(path, "not an image\n");
}

static int data_file(const char *path, const char *format, const char *train, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text), "classes=3\nformat=%s\ntrain=%s\nvalid=%s\nbackup=%s/unused\n%s", format, train, train,
             test_tmpdir(), extra);
    return write_text(path, text);
}

static void t_folder_dataset(void)
{
    NEED_DECODER();
    char root[600], data[600], names[600];
    snprintf(root, sizeof(root), "%s/imgfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/imgfolder.data", test_tmpdir());
    snprintf(names, sizeof(names), "%s/imgfolder.names", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    CHECK(data_file(data, "folder", root, "") == 0, "data file");
    data_config d;
    cdb_dataset set;
    CHECK(cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) == 0, "%s", cdb_last_error());
    /* classes by sorted folder name, files by sorted name */
    CHECK(set.n == 9 && !strcmp(set.class_names[0], "a_dog") && !strcmp(set.class_names[1], "b_cat") &&
              !strcmp(set.class_names[2], "c_eel"),
          "%d images, classes %s %s %s", set.n, set.class_names[0], set.class_names[1], set.class_names[2]);
    const int want[9] = {0, 0, 1, 1, 1, 2, 2, 2, 2};
    for (int i = 0; i < 9; i++) CHECK(set.labels[i] == want[i], "image %d (%s) label %d", i, set.paths[i], set.labels[i]);
    CHECK(strstr(set.paths[2], "b_cat/img0.png") && strstr(set.paths[3], "b_cat/img1.bmp"), "order: %s %s",
          set.paths[2], set.paths[3]);
    /* decoded at the network's shape: 8x6 to 4x3 is a reduction by 2 */
    cdb_network *net = net_from_text("[net]\nbatch=3\nwidth=4\nheight=4\nchannels=3\nclasses=3\n"
                                     "[connected]\noutput=3\n[softmax]\n");
    CHECK(net, "net");
    CHECK(cdb_dataset_check_against(&set, net) == 0 && set.c == 3 && set.h == 4 && set.w == 4, "%s", cdb_last_error());
    float images[3 * 48];
    int labels[3], idx[3] = {0, 3, 8};
    CHECK(cdb_dataset_fill_batch(&set, idx, 3, input_of(net), 0, NULL, images, labels) == 0, "%s", cdb_last_error());
    CHECK(labels[0] == 0 && labels[1] == 1 && labels[2] == 2, "labels %d %d %d", labels[0], labels[1], labels[2]);
    /* against the pieces: decode, centre box, resample, /255 */
    byte_image im;
    CHECK(cdb_image_decode(set.paths[3], 3, &im) == 0, "%s", cdb_last_error());
    uint8_t bytes[48];
    cdb_image_resample(&im, cdb_image_center_box(im.w, im.h, 0, 4, 4), 4, 4, bytes);
    cdb_image_free(&im);
    for (int i = 0; i < 48; i++)
        CHECK(fabsf(images[48 + i] - bytes[i] / 255.f) < 1e-6f, "pixel %d: %g, want %g", i, images[48 + i], bytes[i] / 255.f);
    /* flip=1 through the file path: each image as it is or mirrored */
    input_config flip = *input_of(net);
    flip.flip = 1;
    int mirrored = 0;
    for (int t = 0; t < 8; t++) {
        cdb_rng r = cdb_rng_stream(11, 3, (uint64_t)t);
        float aug[3 * 48];
        CHECK(cdb_dataset_fill_batch(&set, idx, 3, &flip, 1, &r, aug, labels) == 0, "%s", cdb_last_error());
        for (int b = 0; b < 3; b++) {
            int same = 1, mirror = 1;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 4; x++) {
                        float v = aug[b * 48 + (c * 4 + y) * 4 + x];
                        same &= v == images[b * 48 + (c * 4 + y) * 4 + x];
                        mirror &= v == images[b * 48 + (c * 4 + y) * 4 + 3 - x];
                    }
            CHECK(same || mirror, "image %d of try %d is neither itself nor its mirror", b, t);
            mirrored += mirror && !same;
        }
    }
    CHECK(mirrored > 0 && mirrored < 24, "%d of 24 images mirrored", mirrored);
    /* cache=1: the same floats from memory */
    cdb_dataset cached;
    cdb_data_config_free(&d);
    CHECK(data_file(data, "folder", root, "cache=1\n") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &cached) == 0 && cdb_dataset_check_against(&cached, net) == 0 && cached.pixels &&
              !cached.paths,
          "cache: %s", cdb_last_error());
    float again[3 * 48];
    CHECK(cdb_dataset_fill_batch(&cached, idx, 3, input_of(net), 0, NULL, again, labels) == 0, "cached fill");
    CHECK(!memcmp(images, again, sizeof(again)), "cache=1 gives other pixels");
    cdb_dataset_clear(&cached);
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
    /* names=: labels follow its lines; a folder not in it is an error */
    CHECK(write_text(names, "c_eel\na_dog\nb_cat\n") == 0, "names");
    char extra[700];
    snprintf(extra, sizeof(extra), "names=%s\n", names);
    CHECK(data_file(data, "folder", root, extra) == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) == 0, "%s", cdb_last_error());
    CHECK(set.labels[0] == 1 && set.labels[2] == 2 && set.labels[8] == 0 && !strcmp(set.class_names[0], "c_eel"),
          "names= order: %d %d %d", set.labels[0], set.labels[2], set.labels[8]);
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
    CHECK(write_text(names, "c_eel\na_dog\nb_bat\n") == 0, "names");
    CHECK(cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "b_cat' is not in the names file"), "%s",
          cdb_last_error());
    cdb_data_config_free(&d);
    /* an empty class folder names itself; classes= must match */
    char empty[700];
    snprintf(empty, sizeof(empty), "%s/d_fox", root);
    mkdir(empty, 0755);
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "4 class folders but"), "%s",
          cdb_last_error());
    cdb_data_config_free(&d);
    CHECK(write_text(data, "classes=4\nformat=folder\ntrain=x\nvalid=x\n") == 0, "data");
    char text[1700];
    snprintf(text, sizeof(text), "classes=4\nformat=folder\ntrain=%s\nvalid=%s\n", root, root);
    CHECK(write_text(data, text) == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "d_fox' has no image files"), "%s",
          cdb_last_error());
    cdb_data_config_free(&d);
    rmdir(empty);
    free_net(net);
}

/* A truncated PNG and a file that is no image: bad_images=error names the
 * file; skip leaves it out with a warning. */
static void t_bad_images(void)
{
    NEED_DECODER();
    char root[600], data[600], path[700], cmd[1600];
    snprintf(root, sizeof(root), "%s/badfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/badfolder.data", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    snprintf(path, sizeof(path), "%s/c_eel/img2.png", root);
    snprintf(cmd, sizeof(cmd), "truncate -s 40 '%s' && printf 'no image here' > '%s/b_cat/img2.png'", path, root);
    CHECK(system(cmd) == 0, "truncate");
    data_config d;
    cdb_dataset set;
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "b_cat/img2.png") &&
              strstr(cdb_last_error(), "bad_images=skip"),
          "bad_images=error: %s", cdb_last_error());
    cdb_data_config_free(&d);
    CHECK(data_file(data, "folder", root, "bad_images=skip\n") == 0 && cdb_data_config_load(data, &d) == 0, "%s",
          cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) == 0, "%s", cdb_last_error());
    /* the header of the truncated PNG is whole: it is found when decoded */
    int left = set.n;
    cdb_network *net = net_from_text("[net]\nbatch=8\nwidth=4\nheight=4\nchannels=3\nclasses=3\n"
                                     "[connected]\noutput=3\n[softmax]\n");
    CHECK(net && cdb_dataset_check_against(&set, net) == 0, "%s", cdb_last_error());
    int truncated = -1;
    for (int i = 0; i < set.n; i++)
        if (strstr(set.paths[i], "c_eel/img2.png")) truncated = i;
    CHECK(left == 8 && truncated >= 0, "%d images left, truncated at %d", left, truncated);
    float images[48];
    int label;
    CHECK(cdb_dataset_fill_batch(&set, &truncated, 1, input_of(net), 0, NULL, images, &label) == 0 && label == 2,
          "skip: the next image stands in (label %d): %s", label, cdb_last_error());
    set.bad_skip = 0;
    CHECK(cdb_dataset_fill_batch(&set, &truncated, 1, input_of(net), 0, NULL, images, &label) != 0 &&
              strstr(cdb_last_error(), "c_eel/img2.png"),
          "error: %s", cdb_last_error());
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
    free_net(net);
    /* a JPEG cut after its header: found by its header, refused when decoded */
    char jpg[700];
    snprintf(jpg, sizeof(jpg), "%s/cut.jpg", test_tmpdir());
    CHECK(write_image(jpg, 40, 30, 3, 2, 1) == 0, "write %s", jpg);
    struct stat st;
    CHECK(stat(jpg, &st) == 0 && st.st_size > 600, "jpeg of %ld bytes", (long)st.st_size);
    snprintf(cmd, sizeof(cmd), "truncate -s %ld '%s'", (long)st.st_size / 3, jpg);
    CHECK(system(cmd) == 0, "truncate");
    int w, h;
    byte_image im;
    CHECK(cdb_image_probe(jpg, &w, &h) == 0 && w == 40 && h == 30, "the header of the cut JPEG: %s", cdb_last_error());
    CHECK(cdb_image_decode(jpg, 3, &im) != 0 && strstr(cdb_last_error(), "cut.jpg") &&
              strstr(cdb_last_error(), "truncated or corrupt"),
          "a cut JPEG decoded: %s", cdb_last_error());
}

static void t_list_dataset(void)
{
    NEED_DECODER();
    char root[600], data[600], list[600], labels[600], text[4096];
    snprintf(root, sizeof(root), "%s/listfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/list.data", test_tmpdir());
    snprintf(list, sizeof(list), "%s/list.txt", test_tmpdir());
    snprintf(labels, sizeof(labels), "%s/list.labels", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    CHECK(write_text(labels, "cat\ndog\neel\n") == 0, "labels");
    snprintf(text, sizeof(text), "# a comment\n%s/b_cat/img0.png\n\n  %s/a_dog/img1.bmp  \n%s/c_eel/img3.png\n", root,
             root, root);
    CHECK(write_text(list, text) == 0, "list");
    char extra[700];
    snprintf(extra, sizeof(extra), "labels=%s\n", labels);
    CHECK(data_file(data, "list", list, extra) == 0, "data");
    data_config d;
    cdb_dataset set;
    CHECK(cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) == 0, "%s", cdb_last_error());
    CHECK(set.n == 3 && set.labels[0] == 0 && set.labels[1] == 1 && set.labels[2] == 2, "labels %d %d %d (%d images)",
          set.labels[0], set.labels[1], set.labels[2], set.n);
    cdb_dataset_clear(&set);
    /* no label in the path, two labels, a missing file: each names its line */
    const char *cases[3][2] = {{"%s/a_dog/img0.png\n%s/x/none.png\n", "list.txt:2: '"},
                               {"%s/a_dog/img0.png\n%s/cat_eel/x.png\n", "list.txt:2: '"},
                               {"%s/a_dog/img0.png\n%s/a_dog/missing_dog.png\n", "list.txt:2: the image '"}};
    const char *why[3] = {"contains none of the labels", "contains two labels", "does not exist"};
    for (int k = 0; k < 3; k++) {
        snprintf(text, sizeof(text), cases[k][0], root, root);
        CHECK(write_text(list, text) == 0, "list");
        CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), cases[k][1]) &&
                  strstr(cdb_last_error(), why[k]),
              "case %d: %s", k, cdb_last_error());
    }
    cdb_data_config_free(&d);
    CHECK(data_file(data, "list", list, "") == 0, "data");
    CHECK(cdb_data_config_load(data, &d) != 0 && strstr(cdb_last_error(), "format=list needs 'labels'"), "%s",
          cdb_last_error());
}

/* The prefetching loader gives each step exactly the synchronous batch,
 * from any first step (a resume). */
static void t_loader_matches_sync(void)
{
    NEED_DECODER();
    char root[600], data[600];
    snprintf(root, sizeof(root), "%s/loaderfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/loader.data", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    CHECK(data_file(data, "folder", root, "loader_threads=3\n") == 0, "data");
    data_config d;
    cdb_dataset set;
    CHECK(cdb_data_config_load(data, &d) == 0 && cdb_dataset_read(&d, "train", &set) == 0, "%s", cdb_last_error());
    cdb_network *net = net_from_text("[net]\nbatch=2\nwidth=5\nheight=5\nchannels=3\nclasses=3\nflip=1\ncrop_pad=1\n"
                                     "resized_crop=1\nresized_crop_scale=0.3\nhue=0.1\n[connected]\noutput=3\n[softmax]\n");
    CHECK(net && cdb_dataset_check_against(&set, net) == 0 && set.workers == 3, "%s", cdb_last_error());
    enum { STEPS = 9 };
    size_t size = 2 * 75;
    float sync[STEPS][150];
    int sync_labels[STEPS][2], order[9], order_epoch = -1;
    for (int s = 0; s < STEPS; s++)
        CHECK(cdb_loader_fill_step(&set, input_of(net), 7, 2, 0, 2, s, order, &order_epoch, sync[s], sync_labels[s]) == 0, "%s",
              cdb_last_error());
    int differ = 0;
    for (int s = 1; s < STEPS; s++) differ += memcmp(sync[s], sync[0], size * sizeof(float)) != 0;
    CHECK(differ == STEPS - 1, "the steps' batches should differ");
    for (int first = 0; first < 4; first += 3) {
        batch_loader l;
        CHECK(cdb_loader_start(&l, &set, input_of(net), 7, 2, 0, 2, first, STEPS) == 0, "%s", cdb_last_error());
        for (int s = first; s < STEPS; s++) {
            float *im;
            int *lab;
            CHECK(cdb_loader_next(&l, s, &im, &lab) == 0, "%s", cdb_last_error());
            CHECK(!memcmp(im, sync[s], size * sizeof(float)) && lab[0] == sync_labels[s][0] && lab[1] == sync_labels[s][1],
                  "from step %d: step %d differs from the synchronous batch", first, s);
        }
        cdb_loader_stop(&l);
    }
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
    free_net(net);
}

/* OPENCV=1 builds: OpenCV decodes as stb does: PNG and BMP exactly, JPEG
 * (other IDCTs and chroma upsampling) within a few levels. */
static void t_stb_opencv(void)
{
#if defined(OPENCV) && defined(STB_IMAGE)
    const char *files[3] = {"cv.png", "cv.bmp", "cv.jpg"};
    for (int k = 0; k < 3; k++)
        for (int channels = 1; channels <= 3; channels += 2) {
            char path[600];
            snprintf(path, sizeof(path), "%s/%d%s", test_tmpdir(), channels, files[k]);
            CHECK(write_image(path, 40, 30, 3, 1, channels) == 0, "write %s", path);
            byte_image cv;
            CHECK(cdb_image_decode(path, channels, &cv) == 0, "%s", cdb_last_error());
            int w, h, n;
            uint8_t *stb = stbi_load(path, &w, &h, &n, channels);
            CHECK(stb && w == cv.w && h == cv.h, "sizes %dx%d and %dx%d", w, h, cv.w, cv.h);
            int worst = 0;
            double sum = 0;
            for (int i = 0; i < w * h * channels; i++) {
                int d = abs((int)stb[i] - (int)cv.px[i]);
                worst = d > worst ? d : worst;
                sum += d;
            }
            stbi_image_free(stb);
            cdb_image_free(&cv);
            int jpeg = k == 2;
            printf("    %s, %d channel%s: largest difference %d/255, mean %.3f/255\n", files[k], channels,
                   channels == 1 ? "" : "s", worst, sum / (w * h * channels));
            CHECK(jpeg ? worst <= 8 && sum / (w * h * channels) <= 1.0 : worst <= 1, "%s: %d", files[k], worst);
        }
#else
    printf("  (not an OPENCV=1 build: skipped)\n");
#endif
}

/* cdbnet benchmark -data: a folder dataset timed against its images in
 * memory, trained and (-data-only) decoded alone. */
static void t_data_benchmark(void)
{
    NEED_DECODER();
    char root[600], data[600], cfg[600], cmd[2400];
    static char out[16384];
    snprintf(root, sizeof(root), "%s/benchfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/bench.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/bench.cfg", test_tmpdir());
    CHECK(make_folder(root) == 0 && data_file(data, "folder", root, "") == 0, "folder");
    CHECK(write_text(cfg, "[net]\nbatch=3\nwidth=6\nheight=6\nchannels=3\nlearning_rate=0.01\nmax_batches=10\n"
                          "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n[avgpool]\n"
                          "[connected]\noutput=3\n[softmax]\n") == 0,
          "cfg");
    for (int only = 0; only < 2; only++) {
        snprintf(cmd, sizeof(cmd), "./cdbnet benchmark %s -data %s -steps 2 -repeats 2 -warmup 1 -threads 1 %s", cfg,
                 data, only ? "-data-only" : "");
        CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
        CHECK(strstr(out, only ? "image files, decoded " : "image files, decoded while training") &&
                  strstr(out, "the same images in memory") && strstr(out, "image files / in memory: ") &&
                  strstr(strstr(out, "median ") + 1, "median ") && strstr(out, "/benchfolder: 9 images"),
              "%s", out);
    }
    snprintf(cmd, sizeof(cmd), "./cdbnet benchmark %s -data-only", cfg);
    CHECK(run_command(cmd, out, sizeof(out)) != 0 && strstr(out, "-data-only needs -data"), "%s", out);
}

static void t_darknet_crop_keys(void)
{
    const char *head = "[net]\nbatch=1\nwidth=16\nheight=16\nchannels=1\nclasses=2\n";
    const char *tail = "[connected]\noutput=2\n[softmax]\n";
    char text[512];
    snprintf(text, sizeof(text), "%s%s", head, tail);
    cdb_network *net = net_from_text(text);
    CHECK(net && !input_of(net)->darknet_crop, "off by default");
    free_net(net);
    snprintf(text, sizeof(text), "%saspect=0.75\nmax_crop=24\n%s", head, tail);
    net = net_from_text(text);
    CHECK(net && input_of(net)->darknet_crop && input_of(net)->min_crop == 16 && input_of(net)->max_crop == 24 &&
              input_of(net)->aspect == 0.75f,
          "keys: Darknet's defaults min_crop = width");
    free_net(net);
    snprintf(text, sizeof(text), "%sdarknet=1\n%s", head, tail);
    net = net_from_text(text);
    CHECK(net && input_of(net)->darknet_crop && input_of(net)->max_crop == 32, "darknet=1: max_crop = 2 width");
    free_net(net);
    snprintf(text, sizeof(text), "%sdarknet=1\ncenter=1\nmin_crop=20\n%s", head, tail);
    net = net_from_text(text);
    CHECK(net && !input_of(net)->darknet_crop, "center=1 turns it off");
    free_net(net);
    snprintf(text, sizeof(text), "%smin_crop=30\nmax_crop=20\n%s", head, tail);
    const char *e = net_error_from_text("crop", text);
    CHECK(e && strstr(e, "max_crop=20 is below min_crop=30"), "%s", e ? e : "built");
    snprintf(text, sizeof(text), "%saspect=1.2\nresized_crop=1\n%s", head, tail);
    e = net_error_from_text("crop", text);
    CHECK(e && strstr(e, "not both"), "%s", e ? e : "built");
}

/* An image of the validation set that cannot be decoded (a PNG cut after
 * its header) stops the run at its first validation: the message names the
 * validation and its step, and that step's checkpoint is already saved, so
 * the epoch's training is not lost. */
static void t_bad_validation_image_keeps_the_checkpoint(void)
{
    NEED_DECODER();
    char train[600], valid[600], data[600], cfg[600], backup[600], path[700], cmd[1600], text[2400];
    snprintf(train, sizeof(train), "%s/vtrain", test_tmpdir());
    snprintf(valid, sizeof(valid), "%s/vvalid", test_tmpdir());
    snprintf(data, sizeof(data), "%s/vbad.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/vbad.cfg", test_tmpdir());
    snprintf(backup, sizeof(backup), "%s/vbad-backup", test_tmpdir());
    CHECK(make_folder(train) == 0 && make_folder(valid) == 0, "write the folders");
    snprintf(path, sizeof(path), "%s/c_eel/img2.png", valid);
    snprintf(cmd, sizeof(cmd), "truncate -s 60 '%s'", path);
    CHECK(system(cmd) == 0, "truncate");
    snprintf(text, sizeof(text), "classes=3\nformat=folder\ntrain=%s\nvalid=%s\nbackup=%s\n", train, valid, backup);
    CHECK(write_text(data, text) == 0 && write_text(cfg, "[net]\nbatch=4\nwidth=4\nheight=4\nchannels=3\n"
                                                         "learning_rate=0.1\nmax_batches=6\nvalid_every=2\n"
                                                         "[connected]\noutput=3\n[softmax]\n") == 0,
          "write the cfg and .data");
    cdb_network *net = cdb_network_load(cfg, NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    cdb_dataset *tr = cdb_dataset_load(data, "train", net), *va = tr ? cdb_dataset_load(data, "valid", net) : NULL;
    CHECK(tr && va, "load: %s", cdb_last_error());
    cdb_train_options opt = {.backup_dir = backup, .log_path = "none", .quiet = 1};
    int rc = cdb_train(trainer_of(net), tr, va, &opt, NULL);
    char why[2048];
    snprintf(why, sizeof(why), "%s", cdb_last_error());
    cdb_dataset_free(tr);
    cdb_dataset_free(va);
    free_net(net);
    CHECK(rc != 0 && strstr(why, "validation at step 2: ") && strstr(why, "img2.png"),
          "the message names the validation, its step and the image: %s", why);
    snprintf(path, sizeof(path), "%s/vbad_last.weights", backup);
    cdb_network *saved = cdb_network_load(cfg, NULL, 0);
    CHECK(saved && cdb_weights_load(saved, path) == 0, "the checkpoint of step 2: %s", cdb_last_error());
    CHECK(saved->images_seen == 8, "the checkpoint holds %llu images seen, not step 2's 8", (unsigned long long)saved->images_seen);
    free_net(saved);
}

/* A side file of the log that cannot be written (the per-channel
 * statistics, here blocked by a folder where its temporary goes) is warned
 * of and left off; the run goes on to its final weights. */
static void t_side_file_unwritable_run_goes_on(void)
{
    NEED_DECODER();
    char root[600], data[600], cfg[600], backup[600], log[700], blocker[800], text[2400], final[800];
    snprintf(root, sizeof(root), "%s/sidefolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/side.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/side.cfg", test_tmpdir());
    snprintf(backup, sizeof(backup), "%s/side-backup", test_tmpdir());
    snprintf(log, sizeof(log), "%s/side.csv", test_tmpdir());
    snprintf(blocker, sizeof(blocker), "%s/side_channels.csv.tmp", test_tmpdir());
    snprintf(final, sizeof(final), "%s/side_final.weights", backup);
    CHECK(make_folder(root) == 0, "write the folder");
    mkdir(blocker, 0755);
    snprintf(text, sizeof(text), "classes=3\nformat=folder\ntrain=%s\nvalid=%s\nbackup=%s\n", root, root, backup);
    CHECK(write_text(data, text) == 0 && write_text(cfg, "[net]\nbatch=4\nwidth=4\nheight=4\nchannels=3\n"
                                                         "learning_rate=0.1\nmax_batches=6\nvalid_every=2\n"
                                                         "channel_dropback=1\ndropback_skip=0\n"
                                                         "dropback_layer_rate=1\ndropback_layer_rate_init=1\n"
                                                         "[connected]\noutput=3\n[softmax]\n") == 0,
          "write the cfg and .data");
    cdb_network *net = cdb_network_load(cfg, NULL, 0);
    CHECK(net, "%s", cdb_last_error());
    cdb_dataset *tr = cdb_dataset_load(data, "train", net), *va = tr ? cdb_dataset_load(data, "valid", net) : NULL;
    CHECK(tr && va, "load: %s", cdb_last_error());
    cdb_train_options opt = {.backup_dir = backup, .log_path = log, .quiet = 1};
    int rc = cdb_train(trainer_of(net), tr, va, &opt, NULL);
    char why[2048];
    snprintf(why, sizeof(why), "%s", cdb_last_error());
    cdb_dataset_free(tr);
    cdb_dataset_free(va);
    free_net(net);
    rmdir(blocker);
    CHECK(rc == 0, "the run stopped: %s", why);
    CHECK(access(final, R_OK) == 0, "no final weights %s", final);
}

/* Links in an image folder: one to its own folder or to the dataset's
 * root makes a loop (which used to multiply the images, relabel them, or
 * never end) and is refused, naming it; a link to a folder outside is
 * followed. */
static void t_folder_link_loops(void)
{
    NEED_DECODER();
    char root[600], data[600], cmd[2000];
    snprintf(root, sizeof(root), "%s/loopfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/loopfolder.data", test_tmpdir());
    CHECK(make_folder(root) == 0 && data_file(data, "folder", root, "") == 0, "write the folder");
    data_config d;
    cdb_dataset set;
    CHECK(cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    const char *links[2] = {".", ".."};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof(cmd), "ln -sfn %s '%s/b_cat/link'", links[k], root);
        CHECK(system(cmd) == 0, "ln");
        int rc = cdb_dataset_read(&d, "train", &set);
        CHECK(rc != 0 && strstr(cdb_last_error(), "b_cat/link") && strstr(cdb_last_error(), "loop"),
              "a link to %s: %s", links[k], rc ? cdb_last_error() : "it loaded");
    }
    /* a link to a folder of images elsewhere is followed */
    char other[700];
    snprintf(other, sizeof(other), "%s/loop-other", test_tmpdir());
    CHECK(make_folder(other) == 0, "write the other folder");
    snprintf(cmd, sizeof(cmd), "ln -sfn '%s/a_dog' '%s/b_cat/link'", other, root);
    CHECK(system(cmd) == 0, "ln");
    CHECK(cdb_dataset_read(&d, "train", &set) == 0 && set.n == 9 + 2, "a link outside: %d images: %s", set.n,
          cdb_last_error());
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
}

/* A PNG whose header says 32000 x 32000 (it would decode to 3 GB from a
 * file of a few bytes) is refused from its header, naming it, before
 * anything is decoded; max_image_pixels= raises the limit. */
static void write_png_header(const char *path, uint32_t w, uint32_t h)
{
    unsigned char png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int k = 0; k < 4; k++) {
        png[16 + k] = (unsigned char)(w >> (24 - 8 * k));
        png[20 + k] = (unsigned char)(h >> (24 - 8 * k));
    }
    png[24] = 8; /* bit depth */
    png[25] = 0; /* grey: stb itself refuses an RGB one this large, but decodes this to 3 GB as RGB */
    uLong crc = crc32(0, png + 12, 17);
    for (int k = 0; k < 4; k++) png[29 + k] = (unsigned char)(crc >> (24 - 8 * k));
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(png, 1, sizeof(png), f);
    fclose(f);
}

static void t_huge_image_refused_from_header(void)
{
    NEED_DECODER();
    char root[600], data[600], bomb[700];
    snprintf(root, sizeof(root), "%s/bombfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/bomb.data", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    snprintf(bomb, sizeof(bomb), "%s/a_dog/bomb.png", root);
    write_png_header(bomb, 32000, 32000);
    int w = 0, h = 0;
    CHECK(cdb_image_probe(bomb, &w, &h) == 0 && w == 32000 && h == 32000, "the crafted header: %dx%d: %s", w, h,
          cdb_last_error());
    data_config d;
    cdb_dataset set;
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "bomb.png") &&
              strstr(cdb_last_error(), "32000 x 32000") && strstr(cdb_last_error(), "max_image_pixels"),
          "a 32000 x 32000 image: %s", cdb_last_error());
    cdb_data_config_free(&d);
    CHECK(data_file(data, "folder", root, "max_image_pixels=2000000000\n") == 0 && cdb_data_config_load(data, &d) == 0,
          "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) == 0 && set.n == 10, "with the limit raised: %s", cdb_last_error());
    /* its decode buffer counts against the memory limit: 1 thread x 1.02e9 pixels x 4 bytes is more than 1 GiB */
    cdb_network *small = net_from_text("[net]\nbatch=1\nwidth=4\nheight=4\nchannels=3\nclasses=3\n"
                                       "[connected]\noutput=3\n[softmax]\n");
    set.workers = 1;
    cdb_set_memory_limit((size_t)1 << 30);
    int rc = small ? cdb_dataset_check_against(&set, small) : 0;
    cdb_set_memory_limit(0);
    CHECK(rc != 0 && strstr(cdb_last_error(), "decoding") && strstr(cdb_last_error(), "memory limit"),
          "the decode buffer against a 1 GiB limit: %s", rc ? cdb_last_error() : "accepted");
    if (small) free_net(small);
    cdb_dataset_clear(&set);
    cdb_data_config_free(&d);
    cdb_network *net = net_from_text("[net]\nbatch=1\nwidth=4\nheight=4\nchannels=3\nclasses=3\n"
                                     "[connected]\noutput=3\n[softmax]\n");
    float image[48];
    CHECK(net && cdb_image_file_input(net, bomb, image) != 0 && strstr(cdb_last_error(), "32000 x 32000"),
          "predict's image: %s", cdb_last_error());
    free_net(net);
}

/* A BMP whose header says a height of -2^31: an error naming the file
 * (it used to be "unknown error"). */
static void t_negative_bmp_named(void)
{
    NEED_DECODER();
    char root[600], data[600], bmp[700];
    snprintf(root, sizeof(root), "%s/negbmp", test_tmpdir());
    snprintf(data, sizeof(data), "%s/negbmp.data", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    snprintf(bmp, sizeof(bmp), "%s/a_dog/neg.bmp", root);
    unsigned char b[54 + 48] = {'B', 'M'};
    uint32_t size = sizeof(b), offset = 54, info = 40, height = 0x80000000u, width = 4;
    memcpy(b + 2, &size, 4);
    memcpy(b + 10, &offset, 4);
    memcpy(b + 14, &info, 4);
    memcpy(b + 18, &width, 4);
    memcpy(b + 22, &height, 4);
    b[26] = 1;  /* planes */
    b[28] = 24; /* bits per pixel */
    FILE *f = fopen(bmp, "wb");
    CHECK(f, "open");
    fwrite(b, 1, sizeof(b), f);
    fclose(f);
    data_config d;
    cdb_dataset set;
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "neg.bmp"), "a BMP of height -2^31: %s",
          cdb_last_error());
    cdb_data_config_free(&d);
}

/* Class names that would break the logs' headers or the terminal: a
 * control byte (a newline) in a class folder's name or a names= line, and
 * a names= line too long to be a name (it used to be split in two). */
static void t_class_names_checked(void)
{
    NEED_DECODER();
    char root[600], data[600], names[600], cmd[1600], extra[800];
    snprintf(root, sizeof(root), "%s/ctrlfolder", test_tmpdir());
    snprintf(data, sizeof(data), "%s/ctrl.data", test_tmpdir());
    snprintf(names, sizeof(names), "%s/ctrl.names", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    snprintf(cmd, sizeof(cmd), "mv '%s/b_cat' \"%s/b_\ncat\"", root, root);
    CHECK(system(cmd) == 0, "rename");
    data_config d;
    cdb_dataset set;
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "b_?cat") &&
              strstr(cdb_last_error(), "control byte") && !strchr(cdb_last_error(), '\n'),
          "a newline in a class folder's name: %s", cdb_last_error());
    cdb_data_config_free(&d);
    snprintf(cmd, sizeof(cmd), "mv \"%s/b_\ncat\" '%s/b_cat'", root, root);
    CHECK(system(cmd) == 0, "rename back");
    char long_name[700];
    memset(long_name, 'x', 600);
    long_name[600] = 0;
    snprintf(cmd, sizeof(cmd), "a_dog\n%s\nc_eel\n", long_name);
    CHECK(write_text(names, cmd) == 0, "names");
    snprintf(extra, sizeof(extra), "names=%s\n", names);
    CHECK(data_file(data, "folder", root, extra) == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "line 2: a name of more than"),
          "a names= line of 600 bytes: %s", cdb_last_error());
    cdb_data_config_free(&d);
    CHECK(write_text(names, "a_dog\nb_c\tat\nc_eel\n") == 0, "names");
    CHECK(cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    CHECK(cdb_dataset_read(&d, "train", &set) != 0 && strstr(cdb_last_error(), "line 2: the name holds a control byte"),
          "a tab in a names= line: %s", cdb_last_error());
    cdb_data_config_free(&d);
}

/* An image whose path is longer than cdbnet reads is an error naming
 * where it is, not an image left out without a word. */
static void t_long_path_named(void)
{
    NEED_DECODER();
    char root[600], data[600], cmd[8192];
    snprintf(root, sizeof(root), "%s/longpath", test_tmpdir());
    snprintf(data, sizeof(data), "%s/longpath.data", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    char part[256];
    memset(part, 'd', 255);
    part[255] = 0;
    /* 15 levels of 255-byte names, then a file of a 255-byte name: its
     * path is over 4095 bytes */
    char file[256];
    memcpy(file, part, 251);
    memcpy(file + 251, ".png", 5);
    snprintf(cmd, sizeof(cmd), "cd '%s/a_dog' && for i in $(seq 15); do mkdir %s && cd %s || exit 1; done && "
                               "cp '%s/a_dog/img0.png' %s",
             root, part, part, root, file);
    CHECK(system(cmd) == 0, "make the deep folders");
    data_config d;
    cdb_dataset set;
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    int rc = cdb_dataset_read(&d, "train", &set);
    CHECK(rc != 0 && strstr(cdb_last_error(), "its path is longer than"), "a path over 4095 bytes: %s",
          rc ? cdb_last_error() : "it loaded");
    cdb_data_config_free(&d);
    /* and a folder deeper than the 16 levels read is an error too, not skipped */
    snprintf(root, sizeof(root), "%s/deepfolder", test_tmpdir());
    CHECK(make_folder(root) == 0, "write the folder");
    snprintf(cmd, sizeof(cmd), "cd '%s/a_dog' && for i in $(seq 17); do mkdir d && cd d || exit 1; done && cp %s/a_dog/img0.png .",
             root, root);
    CHECK(system(cmd) == 0, "make the deep folders");
    CHECK(data_file(data, "folder", root, "") == 0 && cdb_data_config_load(data, &d) == 0, "%s", cdb_last_error());
    rc = cdb_dataset_read(&d, "train", &set);
    CHECK(rc != 0 && strstr(cdb_last_error(), "more than 16 folders below"), "17 levels: %s",
          rc ? cdb_last_error() : "it loaded");
    cdb_data_config_free(&d);
}

/* Damage the decoders would read as pixels: a PNG with a byte of its
 * image data changed (its CRC no longer matches), a BMP cut in half (stb
 * fills the rest with zeros), a PGM of maxval 0. Each is refused, naming
 * the file. */
static void t_damaged_images_refused(void)
{
    NEED_DECODER();
    char png[600], bmp[600], pgm[600], cmd[1400];
    snprintf(png, sizeof(png), "%s/damaged.png", test_tmpdir());
    snprintf(bmp, sizeof(bmp), "%s/damaged.bmp", test_tmpdir());
    snprintf(pgm, sizeof(pgm), "%s/damaged.pgm", test_tmpdir());
    CHECK(write_image(png, 16, 16, 3, 1, 2) == 0 && write_image(bmp, 16, 16, 3, 1, 2) == 0, "write");
    byte_image im;
    CHECK(cdb_image_decode(png, 3, &im) == 0, "the sound PNG: %s", cdb_last_error());
    cdb_image_free(&im);
    /* a byte inside IDAT's data: the chunks are IHDR (25 bytes with its
     * header and CRC, after the 8-byte signature), then IDAT */
    FILE *f = fopen(png, "r+b");
    CHECK(f && fseek(f, 8 + 25 + 8 + 3, SEEK_SET) == 0, "open");
    int c = fgetc(f);
    fseek(f, 8 + 25 + 8 + 3, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
    CHECK(cdb_image_decode(png, 3, &im) != 0 && strstr(cdb_last_error(), "damaged.png") &&
              strstr(cdb_last_error(), "CRC"),
          "a PNG with a changed byte: %s", cdb_last_error());
    struct stat st;
    CHECK(stat(bmp, &st) == 0, "stat");
    snprintf(cmd, sizeof(cmd), "truncate -s %ld '%s'", (long)st.st_size / 2, bmp);
    CHECK(system(cmd) == 0, "truncate");
    CHECK(cdb_image_decode(bmp, 3, &im) != 0 && strstr(cdb_last_error(), "damaged.bmp") &&
              strstr(cdb_last_error(), "truncated"),
          "a BMP cut in half: %s", cdb_last_error());
    CHECK(write_text(pgm, "P5\n# a comment\n4 4\n0\n0123456789abcdef") == 0, "write");
    CHECK(cdb_image_decode(pgm, 1, &im) != 0 && strstr(cdb_last_error(), "damaged.pgm") &&
              strstr(cdb_last_error(), "maxval is 0"),
          "a PGM of maxval 0: %s", cdb_last_error());
}

void register_image_tests(void)
{
    test_add("images/damage the decoders would read as pixels is refused (PNG CRC, cut BMP, PGM maxval 0)",
             t_damaged_images_refused);
    test_add("images/an image path too long, or too deep, to read is an error, not left out", t_long_path_named);
    test_add("images/class names with control bytes, or too long, are refused naming the line", t_class_names_checked);
    test_add("images/a BMP header of height -2^31 is an error naming the file", t_negative_bmp_named);
    test_add("images/an image too large is refused from its header (max_image_pixels=)", t_huge_image_refused_from_header);
    test_add("images/a link that loops in an image folder is refused; one outside is followed", t_folder_link_loops);
    test_add("images/a side file of the log that cannot be written: warned of, the run goes on",
             t_side_file_unwritable_run_goes_on);
    test_add("images/an unreadable validation image: the step's checkpoint saved, the validation named",
             t_bad_validation_image_keeps_the_checkpoint);
    test_add_tagged("images/benchmark -data: image files against the same images in memory", t_data_benchmark, TEST_SPAWNS);
    test_add("images/resampling against the direct triangle-filter sum", t_resample);
    test_add("images/centre, random-resized and Darknet crop boxes", t_crop_boxes);
    test_add("images/Darknet's crop keys: min_crop, max_crop, aspect, center, darknet=1", t_darknet_crop_keys);
    test_add("images/format=folder: classes, labels, names=, cache=1, empty folders", t_folder_dataset);
    test_add_tagged("images/bad_images: a truncated and a false image, error and skip", t_bad_images, TEST_SPAWNS);
    test_add("images/format=list: Darknet's label rule, each bad line named", t_list_dataset);
    test_add("images/the prefetching loader gives the synchronous batches, from any step", t_loader_matches_sync);
    test_add("images/OpenCV decodes as stb_image (OPENCV=1 builds)", t_stb_opencv);
}
