/* Dataset readers on small files written here: IDX (raw and .gz), CIFAR
 * binary, .data files; bad files are rejected with messages naming them. */
#include <stdlib.h>
#include <zlib.h>

#include "data.h"
#include "mixup.h"
#include "test.h"

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", test_tmpdir(), name); }

static void write_bytes(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* An IDX image file of n images of h x w whose pixel (i, y, x) = i + y + x. */
static size_t make_idx_images(unsigned char *buf, int n, int h, int w)
{
    unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, (unsigned char)h, 0, 0, 0, (unsigned char)w};
    memcpy(buf, hdr, 16);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) buf[16 + (i * h + y) * w + x] = (unsigned char)(i + y + x);
    return 16 + (size_t)n * h * w;
}

static size_t make_idx_labels(unsigned char *buf, int n, int top)
{
    unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)n};
    memcpy(buf, hdr, 8);
    for (int i = 0; i < n; i++) buf[8 + i] = (unsigned char)(i % top);
    return 8 + (size_t)n;
}

static void t_idx_raw_and_gz(void)
{
    unsigned char img[16 + 5 * 4 * 3], lab[8 + 5];
    size_t ni = make_idx_images(img, 5, 4, 3), nl = make_idx_labels(lab, 5, 3);
    for (int gz = 0; gz < 2; gz++) {
        char ip[512], lp[512];
        tmp_path(ip, sizeof(ip), gz ? "img.gz" : "img.idx");
        tmp_path(lp, sizeof(lp), gz ? "lab.gz" : "lab.idx");
        write_bytes(ip, img, ni, gz);
        write_bytes(lp, lab, nl, gz);
        cdb_dataset d;
        CHECK(cdb_dataset_load_idx(ip, lp, 3, &d) == 0, "load (%s): %s", gz ? "gz" : "raw", cdb_last_error());
        CHECK(d.n == 5 && d.c == 1 && d.h == 4 && d.w == 3, "shape %d %d %d %d", d.n, d.c, d.h, d.w);
        CHECK(d.pixels[(2 * 4 + 1) * 3 + 2] == 5 && d.labels[4] == 1, "contents");
        cdb_dataset_clear(&d);
    }
}

static void t_idx_bad_files(void)
{
    unsigned char img[16 + 5 * 4 * 3], lab[8 + 5];
    size_t ni = make_idx_images(img, 5, 4, 3), nl = make_idx_labels(lab, 5, 3);
    char ip[512], lp[512], bad[512];
    tmp_path(ip, sizeof(ip), "b_img");
    tmp_path(lp, sizeof(lp), "b_lab");
    tmp_path(bad, sizeof(bad), "b_bad");
    write_bytes(ip, img, ni, 0);
    write_bytes(lp, lab, nl, 1);
    cdb_dataset d;
    write_bytes(bad, img, ni - 7, 1);
    CHECK(cdb_dataset_load_idx(bad, lp, 3, &d) != 0 && strstr(cdb_last_error(), "truncated") && strstr(cdb_last_error(), "b_bad"),
          "truncated images: %s", cdb_last_error());
    write_bytes(bad, lab, nl - 1, 0);
    CHECK(cdb_dataset_load_idx(ip, bad, 3, &d) != 0 && strstr(cdb_last_error(), "truncated"), "truncated labels: %s",
          cdb_last_error());
    CHECK(cdb_dataset_load_idx(ip, lp, 2, &d) != 0 && strstr(cdb_last_error(), "not below classes=2"),
          "label out of range: %s", cdb_last_error());
    unsigned char lab4[8 + 4];
    write_bytes(bad, lab4, make_idx_labels(lab4, 4, 3), 0);
    CHECK(cdb_dataset_load_idx(ip, bad, 3, &d) != 0 && strstr(cdb_last_error(), "has 4 labels but"), "count mismatch: %s",
          cdb_last_error());
    CHECK(cdb_dataset_load_idx(lp, lp, 3, &d) != 0 && strstr(cdb_last_error(), "not an IDX file"), "labels as images: %s",
          cdb_last_error());
    unsigned char longer[16 + 5 * 4 * 3 + 2];
    memcpy(longer, img, ni);
    longer[ni] = longer[ni + 1] = 0;
    write_bytes(bad, longer, ni + 2, 0);
    CHECK(cdb_dataset_load_idx(bad, lp, 3, &d) != 0 && strstr(cdb_last_error(), "past the 5 images"), "trailing data: %s",
          cdb_last_error());
    CHECK(cdb_dataset_load_idx("/nonexistent/fashion-mnist/x.gz", lp, 3, &d) != 0 &&
              strstr(cdb_last_error(), "dataset-fashion-mnist"),
          "missing Fashion-MNIST says how to install it: %s", cdb_last_error());
}

static void t_cifar(void)
{
    enum { REC10 = 1 + 3072, REC100 = 2 + 3072 };
    unsigned char *buf = calloc(3, REC100);
    for (int i = 0; i < 3; i++) {
        buf[i * REC10] = (unsigned char)(i + 7);
        buf[i * REC10 + 1] = (unsigned char)(10 * i);
    }
    char p[512];
    tmp_path(p, sizeof(p), "c10.bin");
    write_bytes(p, buf, 3 * REC10, 0);
    cdb_dataset d;
    CHECK(cdb_dataset_load_cifar(p, 0, 10, &d) == 0, "cifar10: %s", cdb_last_error());
    CHECK(d.n == 3 && d.c == 3 && d.h == 32 && d.labels[2] == 9 && d.pixels[3072 * 2] == 20, "cifar10 contents");
    cdb_dataset_clear(&d);
    write_bytes(p, buf, 3 * REC10 - 5, 0);
    CHECK(cdb_dataset_load_cifar(p, 0, 10, &d) != 0 && strstr(cdb_last_error(), "truncated"), "cifar truncated: %s",
          cdb_last_error());
    memset(buf, 0, 3 * REC100);
    buf[0] = 3;
    buf[1] = 55; /* coarse 3, fine 55 */
    write_bytes(p, buf, REC100, 0);
    CHECK(cdb_dataset_load_cifar(p, 1, 100, &d) == 0 && d.labels[0] == 55, "cifar100 uses the fine label");
    cdb_dataset_clear(&d);
    free(buf);
}

static void t_data_file(void)
{
    char p[512];
    tmp_path(p, sizeof(p), "x.data");
    const char *good = "classes=10\nformat=idx\ntrain=a\ntrain_labels=b\nvalid=c\nvalid_labels=d\n";
    write_bytes(p, good, strlen(good), 0);
    data_config d;
    CHECK(cdb_data_config_load(p, &d) == 0 && d.classes == 10 && !strcmp(d.backup, "backup"), "good .data");
    cdb_data_config_free(&d);
    const char *bad = "classes=10\ntrian=a\n";
    write_bytes(p, bad, strlen(bad), 0);
    CHECK(cdb_data_config_load(p, &d) != 0 && strstr(cdb_last_error(), "x.data:2: [data] key 'trian'"), "typo: %s",
          cdb_last_error());
    const char *missing = "classes=10\nformat=idx\ntrain=a\nvalid=c\n";
    write_bytes(p, missing, strlen(missing), 0);
    CHECK(cdb_data_config_load(p, &d) != 0 && strstr(cdb_last_error(), "train_labels"), "missing labels: %s", cdb_last_error());
}

static void t_batch_fill(void)
{
    uint8_t pixels[2 * 2 * 3] = {0, 51, 102, 153, 204, 255, 10, 20, 30, 40, 50, 60};
    int labels[2] = {1, 0};
    cdb_dataset d = {NULL, 2, 1, 2, 3, 2, pixels, labels, NULL, 0, 0, 0, NULL, 0};
    input_config in = {0};
    in.mean[0] = 0.5f;
    in.std[0] = 0.25f;
    in.nmean = in.nstd = 1;
    float out[6];
    int lab;
    int idx = 0;
    cdb_dataset_fill_batch(&d, &idx, 1, &in, 0, NULL, out, &lab);
    CHECK(lab == 1 && fabsf(out[1] - (0.2f - 0.5f) / 0.25f) < 1e-6f, "normalisation: %g", out[1]);
    in.flip = 1;
    in.crop_pad = 1;
    int flips = 0, shifted = 0;
    for (int s = 0; s < 40; s++) {
        cdb_rng r = cdb_rng_stream(1, RNG_STREAM_AUGMENT, (uint64_t)s);
        cdb_dataset_fill_batch(&d, &idx, 1, &in, 1, &r, out, &lab);
        /* row 0 is 0, 51, 102: flipped in place it reads 102, 51, 0 */
        flips += fabsf(out[0] - (0.4f - 0.5f) / 0.25f) < 1e-6f && fabsf(out[2] - (0.f - 0.5f) / 0.25f) < 1e-6f;
        shifted += fabsf(out[0] - (0.f - 0.5f) / 0.25f) > 1e-6f;
    }
    CHECK(flips > 0 && shifted > 0, "augmentation must sometimes flip (%d) and shift (%d)", flips, shifted);
    int order[50], seen[50] = {0};
    cdb_dataset_epoch_order(50, 3, 2, order);
    for (int i = 0; i < 50; i++) seen[order[i]]++;
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1, "epoch order is not a permutation");
    int again[50];
    cdb_dataset_epoch_order(50, 3, 2, again);
    CHECK(!memcmp(order, again, sizeof(order)), "epoch order must be reproducible");
    cdb_dataset_epoch_order(50, 3, 3, again);
    CHECK(memcmp(order, again, sizeof(order)), "each epoch gets its own order");
}

/* Rotation against closed forms: 90 degrees counter-clockwise moves
 * pixel (y, x) of the output to read the input's (x, W-1-y); 180 degrees
 * reads (H-1-y, W-1-x); 45 degrees keeps the centre and fills the
 * corners. Then the drawn angles: within +-angle, and varying. */
static void t_rotation(void)
{
    enum { S = 5 };
    uint8_t img[2 * S * S];
    for (int i = 0; i < 2 * S * S; i++) img[i] = (uint8_t)(3 + 5 * i);
    input_config in = {0};
    float out[2 * S * S];
    cdb_augment_image(img, 2, S, S, &in, &(augment_params){0, 0, 0, 90.f, 0.f, 1.f, 1.f}, out);
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                CHECK(out[(c * S + y) * S + x] == img[(c * S + x) * S + (S - 1 - y)] * (1.f / 255.f),
                      "90 degrees: channel %d (%d,%d) is %g", c, y, x, out[(c * S + y) * S + x] * 255);
    cdb_augment_image(img, 2, S, S, &in, &(augment_params){0, 0, 0, -180.f, 0.f, 1.f, 1.f}, out);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            CHECK(out[y * S + x] == img[(S - 1 - y) * S + (S - 1 - x)] * (1.f / 255.f), "180 degrees at (%d,%d)", y, x);
    cdb_augment_image(img, 2, S, S, &in, &(augment_params){0, 0, 0, 45.f, 0.f, 1.f, 1.f}, out);
    CHECK(out[2 * S + 2] == img[2 * S + 2] * (1.f / 255.f) && out[0] == 0 && out[S - 1] == 0 && out[S * S - 1] == 0,
          "45 degrees: the centre stays, the corners are filled with 0");
    /* Flip then rotate: the flip applies to the image the rotation reads. */
    cdb_augment_image(img, 1, S, S, &in, &(augment_params){0, 0, 1, 90.f, 0.f, 1.f, 1.f}, out);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            CHECK(out[y * S + x] == img[x * S + y] * (1.f / 255.f), "flip, then 90 degrees, at (%d,%d)", y, x);
    /* Drawn angles through cdb_dataset_fill_batch. */
    int labels[1] = {0}, idx = 0, lab, differ = 0;
    cdb_dataset d = {NULL, 1, 1, S, S, 1, img, labels, NULL, 0, 0, 0, NULL, 0};
    in.angle = 30.f;
    float first[S * S];
    for (int s = 0; s < 20; s++) {
        cdb_rng r = cdb_rng_stream(1, RNG_STREAM_AUGMENT, (uint64_t)s);
        cdb_dataset_fill_batch(&d, &idx, 1, &in, 1, &r, out, &lab);
        CHECK(out[2 * S + 2] == img[2 * S + 2] * (1.f / 255.f), "the centre never moves");
        if (!s) memcpy(first, out, sizeof(first));
        differ += memcmp(first, out, sizeof(first)) != 0;
        cdb_rng again = cdb_rng_stream(1, RNG_STREAM_AUGMENT, (uint64_t)s);
        float twin[S * S];
        cdb_dataset_fill_batch(&d, &idx, 1, &in, 1, &again, twin, &lab);
        CHECK(!memcmp(out, twin, sizeof(twin)), "the same stream gives the same rotation");
    }
    CHECK(differ > 0, "the drawn angle must vary");
    cdb_dataset_fill_batch(&d, &idx, 1, &in, 0, NULL, out, &lab);
    CHECK(out[0] == img[0] * (1.f / 255.f) && out[S - 1] == img[S - 1] * (1.f / 255.f),
          "no rotation without augment (validation)");
}

/* Darknet's colour distortion against closed forms on red, gray, a mixed
 * colour and black: the value halved; saturation 0 (every pixel its
 * maximum channel); the hue turned by a third (r, g, b -> b, r, g); values
 * past 1 clamped; one channel scaled. */
static void t_colour_jitter(void)
{
    const uint8_t img[12] = {255, 128, 200, 0, /* r */ 0, 128, 100, 0, /* g */ 0, 128, 50, 0 /* b */};
    input_config in = {0};
    float out[12];
#define JITTER(h, s, v) cdb_augment_image(img, 3, 2, 2, &in, &(augment_params){0, 0, 0, 0.f, h, s, v}, out)
#define PIX(c, i) (img[(c) * 4 + (i)] * (1.f / 255.f))
    JITTER(0.f, 1.f, 1.f);
    for (int i = 0; i < 12; i++) CHECK(out[i] == img[i] * (1.f / 255.f), "identity at %d", i);
    JITTER(0.f, 1.f, 0.5f);
    for (int i = 0; i < 12; i++) CHECK(fabsf(out[i] - 0.5f * img[i] / 255.f) < 1e-6f, "value x0.5 at %d: %g", i, out[i]);
    JITTER(0.f, 0.f, 1.f);
    for (int p = 0; p < 4; p++) {
        float v = fmaxf(PIX(0, p), fmaxf(PIX(1, p), PIX(2, p)));
        for (int c = 0; c < 3; c++) CHECK(fabsf(out[c * 4 + p] - v) < 1e-6f, "saturation 0: pixel %d channel %d", p, c);
    }
    JITTER(1.f / 3, 1.f, 1.f);
    for (int p = 0; p < 4; p++) {
        CHECK(fabsf(out[0 * 4 + p] - PIX(2, p)) < 1e-5f && fabsf(out[1 * 4 + p] - PIX(0, p)) < 1e-5f &&
                  fabsf(out[2 * 4 + p] - PIX(1, p)) < 1e-5f,
              "hue +1/3: pixel %d is (%g, %g, %g)", p, out[p], out[4 + p], out[8 + p]);
    }
    JITTER(0.f, 1.f, 3.f);
    CHECK(out[2] == 1.f && out[6] == 1.f && fabsf(out[10] - 150.f / 255.f) < 1e-5f, "clamped: (%g, %g, %g)", out[2],
          out[6], out[10]);
    cdb_augment_image(img, 1, 2, 2, &in, &(augment_params){0, 0, 0, 0.f, 0.f, 1.f, 2.f}, out);
    /* 255, 128, 200 and 0 doubled: all past 1 but black */
    CHECK(out[0] == 1.f && out[1] == 1.f && out[2] == 1.f && out[3] == 0.f, "one channel: the value scaled and clamped");
#undef JITTER
#undef PIX
    /* Drawn through cdb_dataset_fill_batch: reproducible, and varying. */
    int labels[1] = {0}, idx = 0, lab, differ = 0;
    cdb_dataset d = {NULL, 1, 3, 2, 2, 1, (uint8_t *)img, labels, NULL, 0, 0, 0, NULL, 0};
    in.hue = 0.1f;
    in.saturation = 1.5f;
    in.exposure = 0.75f;
    float first[12], again[12];
    for (int s = 0; s < 10; s++) {
        cdb_rng r1 = cdb_rng_stream(2, RNG_STREAM_AUGMENT, (uint64_t)s), r2 = cdb_rng_stream(2, RNG_STREAM_AUGMENT, (uint64_t)s);
        cdb_dataset_fill_batch(&d, &idx, 1, &in, 1, &r1, out, &lab);
        cdb_dataset_fill_batch(&d, &idx, 1, &in, 1, &r2, again, &lab);
        CHECK(!memcmp(out, again, sizeof(out)), "the same stream gives the same colours");
        for (int i = 0; i < 12; i++) CHECK(out[i] >= 0 && out[i] <= 1, "in [0, 1]");
        if (!s) memcpy(first, out, sizeof(first));
        differ += memcmp(first, out, sizeof(first)) != 0;
    }
    CHECK(differ > 0, "the colours must vary");
}

/* timm's mixup and cutmix: the box and the corrected lambda of rand_bbox
 * on fixed draws, the blend and the pasted box (image i with n-1-i), the
 * draws' probabilities and Beta's mean, and the targets a mixed step
 * trains on (timm's mixup_target with label smoothing). */
static void t_mixup_cutmix(void)
{
    mix_params m;
    /* lam 0.64 on 10 x 10: ratio 0.6, a 6 x 6 cut centred at (2, 8),
     * clipped to rows 0..4, columns 5..9: area 25, lam 0.75 */
    cdb_mix_box(0.64, 2, 8, 10, 10, &m);
    CHECK(m.cutmix && m.y0 == 0 && m.y1 == 5 && m.x0 == 5 && m.x1 == 10 && m.lam == 0.75f, "box %d..%d x %d..%d, lam %g",
          m.y0, m.y1, m.x0, m.x1, m.lam);
    /* odd cut sizes lose a row and a column to cut // 2 on both sides, as timm's */
    cdb_mix_box(0.51, 4, 4, 8, 8, &m); /* ratio 0.7: cut 5, rows and columns 2..5 */
    CHECK(m.y0 == 2 && m.y1 == 6 && m.x0 == 2 && m.x1 == 6 && m.lam == 0.75f, "odd cut: %d..%d, lam %g", m.y0, m.y1, m.lam);
    /* the pasted box: image i takes image n-1-i's box (3 images: the middle one its own) */
    float img[3][1][4][4], orig[3][1][4][4];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 16; k++) img[i][0][k / 4][k % 4] = (float)(100 * i + k);
    memcpy(orig, img, sizeof(img));
    cdb_mix_box(0.75, 1, 1, 4, 4, &m); /* cut 2: rows 0..1, columns 0..1 */
    cdb_mix_apply(&m, &img[0][0][0][0], 3, 1, 4, 4);
    for (int i = 0; i < 3; i++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                int inside = y >= m.y0 && y < m.y1 && x >= m.x0 && x < m.x1;
                float want = inside ? orig[2 - i][0][y][x] : orig[i][0][y][x];
                CHECK(img[i][0][y][x] == want, "cutmix image %d (%d, %d): %g, want %g", i, y, x, img[i][0][y][x], want);
            }
    /* the blend: lam x_i + (1 - lam) x_{n-1-i} */
    memcpy(img, orig, sizeof(img));
    mix_params blend = {0.7f, 0, 0, 0, 0, 0};
    cdb_mix_apply(&blend, &img[0][0][0][0], 3, 1, 4, 4);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 16; k++) {
            float want = orig[i][0][k / 4][k % 4] * 0.7f + orig[2 - i][0][k / 4][k % 4] * (float)(1.0 - (double)0.7f);
            CHECK(img[i][0][k / 4][k % 4] == want, "mixup image %d [%d]", i, k);
        }
    /* the draws: mixup_prob, the switch, Beta's mean, mixup_off_epoch */
    input_config in;
    memset(&in, 0, sizeof(in));
    in.mixup_alpha = 1.f;
    in.cutmix_alpha = 1.f;
    in.mixup_prob = 0.5f;
    in.mixup_switch_prob = 0.25f;
    int mixed = 0, cut = 0;
    double sum_lam = 0;
    for (int s = 0; s < 4000; s++) {
        cdb_mix_draw(&in, 7, s, 0, 32, 32, &m);
        if (m.lam == 1.f) continue;
        mixed++;
        cut += m.cutmix;
        if (!m.cutmix) sum_lam += m.lam;
        if (m.cutmix)
            CHECK(fabsf(m.lam - (1.f - (float)((m.y1 - m.y0) * (m.x1 - m.x0)) / 1024.f)) < 1e-6f, "step %d: lam %g of box", s,
                  m.lam);
    }
    CHECK(abs(mixed - 2000) < 150 && abs(cut - mixed / 4) < 100, "%d of 4000 mixed, %d by cutmix", mixed, cut);
    CHECK(fabs(sum_lam / (mixed - cut) - 0.5) < 0.03, "Beta(1, 1)'s mean: %g", sum_lam / (mixed - cut));
    cdb_mix_draw(&in, 7, 3, 5, 32, 32, &m);
    in.mixup_off_epoch = 5;
    mix_params off;
    cdb_mix_draw(&in, 7, 3, 5, 32, 32, &off);
    CHECK(off.lam == 1.f, "mixup_off_epoch=5: epoch 5 is not mixed");
    /* the same draw for the same seed and step */
    in.mixup_off_epoch = 0;
    mix_params again;
    cdb_mix_draw(&in, 7, 3, 5, 32, 32, &again);
    CHECK(!memcmp(&m, &again, sizeof(m)), "a draw repeats");
    /* the targets of a mixed step: lam y + (1 - lam) y', smoothed one-hots */
    cdb_network *net = net_from_text("[net]\nbatch=2\nwidth=2\nheight=2\nchannels=1\nlabel_smoothing=0.1\n"
                                     "mixup_alpha=0.2\n[connected]\noutput=4\n[softmax]\n");
    cdb_trainer *tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(tr, "build: %s", cdb_last_error());
    float images[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int labels[2] = {1, 3}, partners[2] = {3, 1};
    CHECK(isfinite(cdb_trainer_run_step_mix(tr, images, labels, partners, 0.7f)), "step");
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 4; k++) {
            double want = 0.7 * (k == labels[b] ? 0.925 : 0.025) + 0.3 * (k == partners[b] ? 0.925 : 0.025);
            CHECK(fabs(net->truth[b * 4 + k] - want) < 1e-6, "target [%d][%d] %g, want %g", b, k, net->truth[b * 4 + k],
                  want);
        }
    cdb_trainer_free(tr);
    cdb_network_free(net);
    const char *msg = net_error_from_text("mix.cfg", "[net]\nbatch=2\nwidth=2\nheight=2\nchannels=1\nmixup_prob=0.5\n"
                                                     "[connected]\noutput=4\n[softmax]\n");
    CHECK(msg && strstr(msg, "mix.cfg:6: [net] key 'mixup_prob': applies with mixup_alpha or cutmix_alpha"), "%s",
          msg ? msg : "built");
    msg = net_error_from_text("mix.cfg", "[net]\nbatch=2\nwidth=2\nheight=2\nchannels=1\ncutmix_alpha=-1\n"
                                         "[connected]\noutput=4\n[softmax]\n");
    CHECK(msg && strstr(msg, "mix.cfg:6: [net] key 'cutmix_alpha'"), "%s", msg ? msg : "built");
}

/* train_subset: each class's share of n by the largest remainders, the
 * entries drawn from the seed, kept in their order, pixels and labels
 * together. */
static cdb_dataset subset_fixture(void)
{
    cdb_dataset d;
    memset(&d, 0, sizeof(d));
    d.name = strdup("fixture");
    d.n = 100;
    d.c = d.h = d.w = 1;
    d.classes = 3;
    d.pixels = malloc(100);
    d.labels = malloc(100 * sizeof(int));
    for (int i = 0; i < 100; i++) {
        d.pixels[i] = (uint8_t)i;                          /* the entry's index */
        d.labels[i] = i % 10 < 5 ? 0 : (i % 10 < 8 ? 1 : 2); /* 50, 30 and 20 */
    }
    return d;
}

static void t_train_subset(void)
{
    const struct {
        int n, want[3];
    } cases[] = {{10, {5, 3, 2}}, {7, {4, 2, 1}}, {99, {49, 30, 20}}, {1, {1, 0, 0}}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        cdb_dataset d = subset_fixture();
        CHECK(cdb_dataset_subset(&d, cases[c].n, 5) == 0 && d.n == cases[c].n, "subset of %d: %s", cases[c].n,
              cdb_last_error());
        int got[3] = {0, 0, 0}, ordered = 1;
        for (int i = 0; i < d.n; i++) {
            got[d.labels[i]]++;
            CHECK(d.labels[i] == (d.pixels[i] % 10 < 5 ? 0 : (d.pixels[i] % 10 < 8 ? 1 : 2)), "labels and pixels apart");
            if (i) ordered &= d.pixels[i] > d.pixels[i - 1];
        }
        CHECK(ordered && got[0] == cases[c].want[0] && got[1] == cases[c].want[1] && got[2] == cases[c].want[2],
              "subset of %d: %d %d %d per class, want %d %d %d (ordered %d)", cases[c].n, got[0], got[1], got[2],
              cases[c].want[0], cases[c].want[1], cases[c].want[2], ordered);
        cdb_dataset_clear(&d);
    }
    /* the same seed draws the same entries, another seed others */
    cdb_dataset a = subset_fixture(), b = subset_fixture(), e = subset_fixture();
    CHECK(cdb_dataset_subset(&a, 20, 5) == 0 && cdb_dataset_subset(&b, 20, 5) == 0 && cdb_dataset_subset(&e, 20, 6) == 0,
          "subsets");
    CHECK(!memcmp(a.pixels, b.pixels, 20) && memcmp(a.pixels, e.pixels, 20), "the draw follows the seed");
    cdb_dataset_clear(&a);
    cdb_dataset_clear(&b);
    cdb_dataset_clear(&e);
    cdb_dataset d = subset_fixture();
    CHECK(cdb_dataset_subset(&d, 101, 5) != 0 && strstr(cdb_last_error(), "101 images of 'fixture', which has 100"), "%s",
          cdb_last_error());
    cdb_dataset_clear(&d);
}

void register_data_tests(void)
{
    test_add("data/colour distortion (hue, saturation, exposure) against closed forms", t_colour_jitter);
    test_add_tagged("data/mixup and cutmix as timm's", t_mixup_cutmix, TEST_KERNELS);
    test_add("data/train_subset: stratified, seeded, in order", t_train_subset);
    test_add("data/rotation (angle=) against closed forms", t_rotation);
    test_add("data/IDX raw and gzip", t_idx_raw_and_gz);
    test_add("data/IDX truncated, mislabeled, mismatched files rejected", t_idx_bad_files);
    test_add("data/CIFAR-10 and CIFAR-100 binary", t_cifar);
    test_add("data/.data files", t_data_file);
    test_add("data/batches: normalisation, augmentation, epoch order", t_batch_fill);
}
