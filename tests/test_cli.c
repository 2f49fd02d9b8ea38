/* The command-line front end, run as a user would: exit codes and messages
 * for bad input, and a tiny train + valid round trip on generated data. */
#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "conv_direct.h"
#include "images.h"
#include "test.h"
#include "utils.h"


static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static char out[65536];

static void t_usage_and_errors(void)
{
    CHECK(access("./cdbnet", X_OK) == 0, "run the tests from the repository root after `make`");
    CHECK(run_command("./cdbnet", out, sizeof(out)) == 2 && strstr(out, "usage: cdbnet"), "no arguments: usage, exit 2");
    CHECK(run_command("./cdbnet help", out, sizeof(out)) == 0 && strstr(out, "train CFG") && strstr(out, "-nodropback"), "help");
    CHECK(run_command("./cdbnet frobnicate", out, sizeof(out)) == 2 && strstr(out, "unknown command 'frobnicate'"), "bad command");
    CHECK(run_command("./cdbnet train /nonexistent.cfg", out, sizeof(out)) == 1 && strstr(out, "cannot open cfg file '/nonexistent.cfg'"),
          "missing cfg: %s", out);
    CHECK(run_command("./cdbnet train /tmp", out, sizeof(out)) == 1 && strstr(out, "cfg file '/tmp' is not a regular file"),
          "directory as cfg: %s", out);
    CHECK(run_command("./cdbnet train cfg/smallcnn.cfg -data /nonexistent.data", out, sizeof(out)) == 1 &&
              strstr(out, "cannot open data file '/nonexistent.data'"),
          "missing .data: %s", out);
    CHECK(run_command("./cdbnet train cfg/smallcnn.cfg -threads abc", out, sizeof(out)) == 2 && strstr(out, "-threads expects"),
          "bad -threads: %s", out);
    CHECK(run_command("./cdbnet train cfg/smallcnn.cfg -bogus", out, sizeof(out)) == 2 && strstr(out, "unknown option '-bogus'"),
          "bad option: %s", out);
    CHECK(run_command("./cdbnet train cfg/smallcnn.cfg -set net.max_batchez=3", out, sizeof(out)) == 1 &&
              strstr(out, "cfg/smallcnn.cfg: [net] (set on the command line) key 'max_batchez': unknown key"),
          "bad -set key: %s", out);
    char path[512];
    snprintf(path, sizeof(path), "%s/bad.cfg", test_tmpdir());
    write_text(path, "[net]\nbatch=2\nwidth=8\nheight=8\nchannels=1\n[convolutional]\nfilters=abc\n[softmax]\n");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s", path);
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "bad.cfg:7: [convolutional] (layer 0) key 'filters': 'abc' is not an integer"),
          "bad cfg: %s", out);
    snprintf(path, sizeof(path), "%s/short.weights", test_tmpdir());
    FILE *f = fopen(path, "wb");
    int32_t header[3] = {0, 2, 0};
    uint64_t seen = 64;
    float some[3] = {0.1f, 0.2f, 0.3f};
    fwrite(header, 4, 3, f);
    fwrite(&seen, 8, 1, f);
    fwrite(some, 4, 3, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "./cdbnet valid cfg/smallcnn.cfg %s", path);
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "short.weights") && strstr(out, "truncated"),
          "truncated weights: %s", out);
}

/* Generated IDX data: 4 classes, each a bright square in its own corner. */
static void write_toy_dataset(const char *dir, int n)
{
    char p[512];
    size_t npix = (size_t)n * 8 * 8;
    unsigned char *img = calloc(16 + npix, 1), *lab = calloc(8 + (size_t)n, 1);
    unsigned char ih[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n >> 8), (unsigned char)n, 0, 0, 0, 8, 0, 0, 0, 8};
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n >> 8), (unsigned char)n};
    memcpy(img, ih, 16);
    memcpy(lab, lh, 8);
    cdb_rng r = cdb_rng_stream(5, 0, 0);
    for (int i = 0; i < n; i++) {
        int c = i % 4;
        lab[8 + i] = (unsigned char)c;
        unsigned char *im = img + 16 + (size_t)i * 64;
        for (int k = 0; k < 64; k++) im[k] = (unsigned char)cdb_rng_int(&r, 60);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++) im[((c / 2) * 5 + y) * 8 + (c % 2) * 5 + x] = 250;
    }
    snprintf(p, sizeof(p), "%s/toy-images.gz", dir);
    gzFile f = gzopen(p, "wb");
    gzwrite(f, img, (unsigned)(16 + npix));
    gzclose(f);
    snprintf(p, sizeof(p), "%s/toy-labels.gz", dir);
    f = gzopen(p, "wb");
    gzwrite(f, lab, (unsigned)(8 + n));
    gzclose(f);
    free(img);
    free(lab);
}

static const char *toy_cfg =
    "[net]\nbatch=16\nwidth=8\nheight=8\nchannels=1\nlearning_rate=0.05\nmomentum=0.9\nmax_batches=40\n"
    "channel_dropback=1\ndropback_skip=0\nvalid_every=20\nema=1\nema_decay=0.9\n"
    "mixup_alpha=0.2\ncutmix_alpha=1\nmixup_prob=0.5\n"
    "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[connected]\noutput=4\nactivation=linear\n[softmax]\n";

/* 1 when both files hold the same bytes, 0 when not, -1 when one cannot be read */
static int same_files(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb ? 1 : -1, ca, cb;
    while (same == 1) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void t_train_then_valid(void)
{
    const char *dir = test_tmpdir();
    write_toy_dataset(dir, 256);
    char data[512], cfg[512], text[2048], cmd[4096], weights[512];
    snprintf(data, sizeof(data), "%s/toy.data", dir);
    snprintf(text, sizeof(text),
             "classes=4\ntrain=%s/toy-images.gz\ntrain_labels=%s/toy-labels.gz\nvalid=%s/toy-images.gz\n"
             "valid_labels=%s/toy-labels.gz\nbackup=%s/backup\n",
             dir, dir, dir, dir, dir);
    write_text(data, text);
    snprintf(cfg, sizeof(cfg), "%s/toy.cfg", dir);
    write_text(cfg, toy_cfg);
    snprintf(weights, sizeof(weights), "%s/toy.weights", dir);
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -out %s -print 10", cfg, data, weights);
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0, "train exited %d:\n%s", rc, out);
    CHECK(strstr(out, "img/s") && strstr(out, "ETA") && strstr(out, "dropback epoch"), "progress line:\n%s", out);
    CHECK(strstr(out, "valid  step 20:"), "validation every 20 steps:\n%s", out);
    const char *final = strstr(out, "valid  step 40: top-1 ");
    CHECK(final, "final validation line missing:\n%s", out);
    float train_acc;
    CHECK(sscanf(final, "valid  step 40: top-1 %f%%", &train_acc) == 1, "parse accuracy");
    CHECK(train_acc > 60.f, "the toy task must be learnt (top-1 %.2f%%)", train_acc);
    snprintf(cmd, sizeof(cmd), "./cdbnet valid %s %s -data %s", cfg, weights, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "valid: %s", out);
    const char *v = strstr(out, "top-1 ");
    float valid_acc;
    CHECK(v && sscanf(v, "top-1 %f%%", &valid_acc) == 1, "parse valid: %s", out);
    CHECK(valid_acc == train_acc, "valid reproduces %.2f%% from the saved weights, got %.2f%%", train_acc, valid_acc);
    /* ema=1: the log's last ema_top1 is the top-1 of the saved average */
    char logp[600], ema_file[700], row[512] = "", header[512] = "";
    snprintf(logp, sizeof(logp), "%s/backup/toy_log.csv", dir);
    FILE *lf = fopen(logp, "r");
    CHECK(lf, "no log %s", logp);
    while (fgets(row, sizeof(row), lf))
        if (!strncmp(row, "step,", 5)) snprintf(header, sizeof(header), "%s", row);
    fclose(lf);
    CHECK(strstr(header, ",macro_f1,ema_top1\n"), "the log's columns: %s", header);
    const char *last_col = strrchr(row, ',');
    double logged = last_col ? atof(last_col + 1) : -1;
    cdb_ema_path(weights, ema_file, sizeof(ema_file));
    snprintf(cmd, sizeof(cmd), "./cdbnet valid %s %s -data %s", cfg, ema_file, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "valid of the average: %s", out);
    v = strstr(out, "top-1 ");
    float ema_acc;
    CHECK(v && sscanf(v, "top-1 %f%%", &ema_acc) == 1 && fabs(ema_acc - 100 * logged) < 0.01,
          "the average's file gives %.2f%%, the log says %.2f%%: %s", ema_acc, 100 * logged, out);
    snprintf(cmd, sizeof(cmd), "./cdbnet valid %s %s -data %s", cfg, weights, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "valid: %s", out);
    /* the per-class report: its weighted recall is top-1; the confusion
     * matrix's diagonal holds top-1's hits, its rows the classes' images */
    const char *wavg = strstr(out, "weighted avg");
    float wp, wr, wf;
    long ws;
    CHECK(wavg && sscanf(wavg, "weighted avg %f %f %f %ld", &wp, &wr, &wf, &ws) == 4 && ws == 256 &&
              fabsf(100 * wr - valid_acc) < 0.01f && strstr(out, "macro avg"),
          "the per-class report: %s", out);
    char csv[600], line[256];
    snprintf(csv, sizeof(csv), "%s/backup/toy_confusion.csv", dir);
    FILE *cf = fopen(csv, "r");
    CHECK(cf && fgets(line, sizeof(line), cf) && !strcmp(line, "true/predicted,0,1,2,3,not_finite\n"), "%s: header",
          csv);
    long hits = 0, total = 0;
    for (int r = 0; r < 4; r++) {
        long cnt[5];
        int row;
        CHECK(fgets(line, sizeof(line), cf) &&
                  sscanf(line, "%d,%ld,%ld,%ld,%ld,%ld", &row, &cnt[0], &cnt[1], &cnt[2], &cnt[3], &cnt[4]) == 6 && row == r,
              "%s: row %d: %s", csv, r, line);
        hits += cnt[r];
        for (int k = 0; k < 5; k++) total += cnt[k];
    }
    fclose(cf);
    CHECK(total == 256 && fabs(100.0 * hits / 256 - valid_acc) < 0.01, "the matrix: %ld of %ld on the diagonal", hits,
          total);
    /* a [logistic] (multi-label) output: per-class average precision and the mAP */
    char lcfg[600], lweights[600];
    snprintf(lcfg, sizeof(lcfg), "%s/toy_logistic.cfg", dir);
    snprintf(lweights, sizeof(lweights), "%s/toy_logistic.weights", dir);
    char ltext[1024];
    snprintf(ltext, sizeof(ltext), "%.*s[logistic]\n", (int)(strstr(toy_cfg, "[softmax]") - toy_cfg), toy_cfg);
    write_text(lcfg, ltext);
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -out %s -quiet -log none && ./cdbnet valid %s %s -data %s",
             lcfg, data, lweights, lcfg, lweights, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "logistic: %s", out);
    const char *map = strstr(out, "mAP ");
    float map_value;
    CHECK(strstr(out, "AP    images") && map && sscanf(map, "mAP %f over the 4 classes", &map_value) == 1 &&
              map_value > 0.5f && map_value <= 1.f,
          "the AP report: %s", out);
    /* -train-subset N: a stratified N of the training set, and the epoch is of those */
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -out %s.subset -log none -train-subset 96 -set net.max_batches=6",
             cfg, data, weights);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "training subset: 96 of the 256 images") &&
              strstr(out, "6 steps per epoch of 96 images"),
          "-train-subset: %s", out);
    snprintf(cmd, sizeof(cmd), "./cdbnet predict %s %s -data %s -index 3", cfg, weights, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "(label 3)") && strstr(out, "class"), "predict: %s", out);
    /* Resume: continuing from the checkpoint saved at step 20 ends with
     * exactly the weights of the uninterrupted run (data order,
     * augmentation, dropback masks and momentum all carry over). */
    char resumed[600];
    snprintf(resumed, sizeof(resumed), "%s.resumed", weights);
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -weights %s/backup/toy_last.weights -out %s -quiet", cfg,
             data, dir, resumed);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0 && !strstr(out, "warning"), "resume exited %d: %s", rc, out);
    CHECK(same_files(weights, resumed) == 1, "the resumed run's weights differ from the uninterrupted run's");
    /* and so does the moving average of the weights (ema=1), saved beside
     * each checkpoint as .ema.weights */
    char ema_a[700], ema_b[700];
    cdb_ema_path(weights, ema_a, sizeof(ema_a));
    cdb_ema_path(resumed, ema_b, sizeof(ema_b));
    CHECK(same_files(ema_a, ema_b) == 1, "the resumed run's moving average (%s) differs from the uninterrupted run's (%s)",
          ema_b, ema_a);
    /* An image file (binary PGM, read by stb_image) of class 2: the bright
     * square in the lower-left corner. */
    char pgm[512];
    snprintf(pgm, sizeof(pgm), "%s/class2.pgm", dir);
    FILE *img = fopen(pgm, "wb");
    fprintf(img, "P5\n8 8\n255\n");
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) fputc(y >= 5 && x < 3 ? 250 : 20, img);
    fclose(img);
    snprintf(cmd, sizeof(cmd), "./cdbnet predict %s %s -data %s %s -top 1", cfg, weights, data, pgm);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "class2.pgm:") && strstr(out, "class   2"),
          "predict on an image file: %s", out);
    /* A weights file holding a NaN is rejected when loaded. */
    FILE *f = fopen(weights, "r+b");
    float nan_value = NAN;
    CHECK(f && fseek(f, 20 + 4 * 16, SEEK_SET) == 0 && fwrite(&nan_value, 4, 1, f) == 1, "corrupt weights");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "./cdbnet valid %s %s -data %s", cfg, weights, data);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "layer 0") && strstr(out, "not finite"), "NaN in weights (exit %d): %s", rc, out);
    /* A diverging run stops with a clear message instead of saving NaNs. */
    snprintf(cfg, sizeof(cfg), "%s/diverge.cfg", dir);
    write_text(cfg, "[net]\nbatch=16\nwidth=8\nheight=8\nchannels=1\nlearning_rate=100\nmomentum=0.99\n"
                    "max_batches=200\n[connected]\noutput=32\nactivation=linear\n"
                    "[connected]\noutput=4\nactivation=linear\n[softmax]\n");
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -quiet -out %s.nan", cfg, data, weights);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "loss is not finite at step") && strstr(out, "diverge.cfg"), "NaN loss (exit %d): %s",
          rc, out);
    snprintf(cmd, sizeof(cmd), "%s.nan", weights);
    CHECK(access(cmd, F_OK) != 0, "no weights may be saved from a NaN run");
}

/* `cdbnet benchmark`: the report's lines are there and their numbers make
 * sense (no timing is asserted: this machine is shared). */
static void t_benchmark(void)
{
    int rc = run_command("./cdbnet benchmark cfg/smallcnn.cfg -batch 4 -steps 1 -repeats 2 -warmup 0 -top 2 -threads 1", out,
                 sizeof(out));
    CHECK(rc == 0, "benchmark exit %d: %s", rc, out);
    char kernels[128];
    snprintf(kernels, sizeof(kernels), "kernels: %s (%d floats a vector); convolutions: 0 depthwise, 1 Winograd, 1 direct, 0 shifted GEMM, 1 im2col",
             cdb_cd_kernels_isa(), (int)(cdb_cd_kernels_vector_bytes() / sizeof(float)));
    /* smallcnn: 1 -> 32 channels (im2col), 32 -> 64 at 28x28 (Winograd), 64 -> 128 stride 2 (direct) */
    CHECK(strstr(out, kernels), "the kernels line names the ISA and each convolution's path (want '%s'): %s", kernels, out);
    double rate = 0, cores = 0, total = 0, fwd = 0, bwd = 0, flops = 0;
    const char *at = strstr(out, "images/s: median ");
    CHECK(at && sscanf(at, "images/s: median %lf", &rate) == 1 && rate > 0, "images/s line: %s", out);
    at = strstr(out, "cpu: ");
    CHECK(at && sscanf(at, "cpu: %lf cores busy", &cores) == 1 && cores > 0 && cores < 1.5,
          "one thread keeps about one core busy: %s", out);
    at = strstr(out, "ms per step: total ");
    CHECK(at && sscanf(at, "ms per step: total %lf = forward %lf + backward %lf", &total, &fwd, &bwd) == 3 &&
              fwd > 0 && bwd > 0 && fwd + bwd <= total,
          "ms per step line: %s", out);
    at = strstr(out, "training FLOPs per image: ");
    /* smallcnn: 3 convolutions and a linear head, 3 x 2 x 7.5 M multiply-adds */
    CHECK(at && sscanf(at, "training FLOPs per image: %lf GFLOP", &flops) == 1 && fabs(flops - 0.045) < 0.001,
          "FLOPs line: %s", out);
    CHECK(strstr(out, "sgemm 1024^3 in this run"), "sgemm ceiling: %s", out);
    /* -top 2: the table has two rows (which two depends on the timings,
     * which a loaded machine shuffles) */
    at = strstr(out, "layer type");
    int rows = 0;
    for (const char *c = at ? strchr(at, '\n') : NULL; c; c = strchr(c + 1, '\n')) {
        int index;
        char type[32];
        if (sscanf(c + 1, "%d %31s", &index, type) == 2 && index >= 0 && index < 6) rows++;
    }
    CHECK(at && rows == 2, "-top 2 prints two layer rows, %d here: %s", rows, out);
    /* the warm-up steps are not in the profile: the phases add up to no more than the total */
    rc = run_command("./cdbnet benchmark cfg/smallcnn.cfg -batch 4 -steps 2 -repeats 1 -warmup 3 -threads 1", out,
                     sizeof(out));
    double other = 0;
    at = strstr(out, "(+ other ");
    CHECK(rc == 0 && at && sscanf(at, "(+ other %lf)", &other) == 1 && strstr(out, "ms per step: total ") &&
              sscanf(strstr(out, "ms per step: total "), "ms per step: total %lf", &total) == 1 &&
              other >= -0.05 * total,
          "the phases add up to more than the total (other %g ms of %g): %s", other, total, out);
    rc = run_command("./cdbnet benchmark cfg/vit_micro.cfg -batch 4 -steps 1 -repeats 1 -warmup 0 -dropback", out, sizeof(out));
    CHECK(rc == 0 && strstr(out, "dropback cost, medians of 1 alternating repeats") && strstr(out, "skipping dropped channels"),
          "-dropback report (exit %d): %s", rc, out);
    CHECK(run_command("./cdbnet benchmark cfg/smallcnn.cfg -steps 0", out, sizeof(out)) == 2 && strstr(out, "-steps expects"),
          "bad -steps: %s", out);
    CHECK(run_command("./cdbnet benchmark", out, sizeof(out)) == 2 && strstr(out, "usage: cdbnet benchmark"), "no cfg: %s", out);
}

/* Defaults a new user meets: every available CPU, a progress line within
 * the first steps, and the help text's -set net.max_batches example working
 * on a cfg that gives max_epochs. */
static void t_defaults(void)
{
    const char *dir = test_tmpdir();
    write_toy_dataset(dir, 256);
    char data[512], cfg[512], text[2048], cmd[4096];
    snprintf(data, sizeof(data), "%s/toy1.data", dir);
    snprintf(text, sizeof(text),
             "classes=4\ntrain=%s/toy-images.gz\ntrain_labels=%s/toy-labels.gz\nvalid=%s/toy-images.gz\n"
             "valid_labels=%s/toy-labels.gz\nbackup=%s/backup1\n",
             dir, dir, dir, dir, dir);
    write_text(data, text);
    snprintf(cfg, sizeof(cfg), "%s/toy1.cfg", dir);
    /* batch 1: 256 steps an epoch, a regular line every 12 */
    write_text(cfg, "[net]\nbatch=1\nwidth=8\nheight=8\nchannels=1\nlearning_rate=0.01\nmax_epochs=3\n"
                    "[connected]\noutput=4\nactivation=linear\n[softmax]\n");
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -set net.max_batches=30", cfg, data);
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0, "-set net.max_batches on a max_epochs cfg exited %d:\n%s", rc, out);
    CHECK(strstr(out, "length: -set net.max_batches=30 from the command line replaces the cfg's length"),
          "the banner says where the length came from:\n%s", out);
    char threads[64];
    int cpus = cdb_available_cpus();
    snprintf(threads, sizeof(threads), ", %d thread%s\n", cpus, cpus == 1 ? "" : "s");
    CHECK(strstr(out, "training ") && strstr(out, ": 30 steps of 1 images") && strstr(out, threads),
          "30 steps on every available CPU (%d):\n%s", cpus, out);
    const int shown[] = {1, 2, 5, 10, 12, 24, 30}, hidden[] = {3, 4, 6, 11, 13, 20};
    for (int i = 0; i < 7; i++) {
        snprintf(text, sizeof(text), "step %6d/30 ", shown[i]);
        CHECK(strstr(out, text), "progress after step %d:\n%s", shown[i], out);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(text, sizeof(text), "step %6d/30 ", hidden[i]);
        CHECK(!strstr(out, text), "no progress line after step %d:\n%s", hidden[i], out);
    }
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -set net.max_batches=30 -set net.max_epochs=1", cfg, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "give either max_batches or max_epochs, not both"),
          "both lengths on the command line stay an error: %s", out);
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -data %s -set net.max_batches=3 -threads 1", cfg, data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, ", 1 thread\n"), "-threads 1: %s", out);
}

/* The GPU check, planned without a GPU: every step listed with its limit,
 * the limits within the budget (a GPU machine is lent for about 10 minutes
 * a call), and a budget too small for the plan is an error. */
static void t_gpu_check_dry_run(void)
{
    static char out[16384];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "scripts/gpu_check.sh --dry-run --summary %s/gpu_summary.txt", test_tmpdir());
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "dry run: %s", out);
    const char *steps[] = {"build GPU=1 CUDNN=1", "GPU suite: limit", "compute-sanitizer", "cdbnet cfg/vit_tiny.cfg",
                           "PyTorch cfg/resnet18.cfg", "2 ranks on one GPU"};
    for (int i = 0; i < 6; i++) CHECK(strstr(out, steps[i]), "no step '%s': %s", steps[i], out);
    int planned = 0, budget = 0;
    const char *at = strstr(out, "planned limits: ");
    CHECK(at && sscanf(at, "planned limits: %ds of a %ds budget", &planned, &budget) == 2, "%s", out);
    /* within one 600 s call of a session's 15 minutes of device time, with room to start and rerun */
    CHECK(budget <= 420 && planned <= budget, "limits %ds for a %ds budget", planned, budget);
    /* one test per process, synchronous launches: a CUDA error stays in its test and names its launch */
    CHECK(strstr(out, "CUDA_LAUNCH_BLOCKING=1 ./tests/gpu_tests --isolate"), "the suite's isolation: %s", out);
    /* the two ranks need no dataset of this machine */
    CHECK(strstr(out, "on synthetic data") && !strstr(out, "/usr/share/datasets"), "the ranks' data: %s", out);
    snprintf(cmd, sizeof(cmd), "BUDGET=100 scripts/gpu_check.sh --dry-run --summary %s/gpu_summary.txt", test_tmpdir());
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "add up to more than the budget"), "%s", out);
}

/* summary: the layers, the totals and the semantics line, with -set; a bad
 * cfg and a missing argument exit non-zero. */
static void t_summary(void)
{
    char out[16384];
    int rc = run_command("./cdbnet summary cfg/resnet18.cfg -set net.darknet=1", out, sizeof(out));
    CHECK(rc == 0, "exit %d: %s", rc, out);
    CHECK(strstr(out, "total parameters: 11173962") && strstr(out, "forward: 0.5554 G multiply-adds per image") &&
              strstr(out, "semantics: Darknet's (darknet=1)"),
          "summary: %s", out);
    char bad[600], cmd[1024];
    snprintf(bad, sizeof(bad), "%s/summary_bad.cfg", test_tmpdir());
    FILE *fp = fopen(bad, "w");
    fprintf(fp, "[net]\nwidth=4\nheight=4\nchannels=1\n[conv]\nfilterz=2\n[softmax]\n");
    fclose(fp);
    snprintf(cmd, sizeof(cmd), "./cdbnet summary %s", bad);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "summary_bad.cfg:6: [conv] (layer 0) key 'filterz': unknown key"), "bad cfg: exit %d: %s",
          rc, out);
    rc = run_command("./cdbnet summary", out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "usage: cdbnet summary CFG"), "no cfg: exit %d: %s", rc, out);
}

/* compare refuses a seed or a sweep value given twice (a seed counted
 * twice would count its pair twice in the paired tests; "+0.05" and " 0.05"
 * would be one run under two names), before anything trains. */
static void t_compare_duplicates(void)
{
    char out[8192];
    int rc = run_command("./cdbnet compare cfg/smallcnn.cfg -seed-list 1,1,2 -data /nonexistent.data -out /nonexistent-dir/x",
                         out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "seed 1 is given twice"), "exit %d: %s", rc, out);
    rc = run_command("./cdbnet compare cfg/smallcnn.cfg -seeds 1 -sweep 'net.learning_rate=+0.05, 0.05' "
                     "-data /nonexistent.data -out /nonexistent-dir/x",
                     out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "the values '+0.05' and '0.05' are the same"), "exit %d: %s", rc, out);
    rc = run_command("./cdbnet compare cfg/smallcnn.cfg -seeds 1 -sweep 'net.learning_rate=1e-1,0.1' "
                     "-data /nonexistent.data -out /nonexistent-dir/x",
                     out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "are the same"), "1e-1 and 0.1: exit %d: %s", rc, out);
    rc = run_command("./cdbnet compare cfg/smallcnn.cfg -seed-list '' -data /nonexistent.data -out /nonexistent-dir/x", out,
                     sizeof(out));
    CHECK(rc == 2 && strstr(out, "-seed-list names no seed"), "an empty -seed-list: exit %d: %s", rc, out);
    /* the train options compare sets per arm are refused, not ignored */
    rc = run_command("./cdbnet compare cfg/smallcnn.cfg -weights x.weights -data /nonexistent.data -out /nonexistent-dir/x",
                     out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "compare does not take -weights"), "-weights: exit %d: %s", rc, out);
}

/* export keeps what it writes honest: a full disk (here a file-size
 * limit) is an error naming the image, not empty PNGs; a used folder is
 * refused (old images would join the new ones); so is a path its .data
 * file could not be read back from. */
static void t_export_refuses(void)
{
    if (!have_fashion_mnist() || !cdb_image_decoder_available()) {
        printf("  (Fashion-MNIST or an image writer missing: skipped)\n");
        return;
    }
    static char out[16384];
    char dir[512], cmd[2048];
    snprintf(dir, sizeof(dir), "%s/export-full", test_tmpdir());
    snprintf(cmd, sizeof(cmd),
             "sh -c \"trap '' XFSZ; ulimit -f 1; ./cdbnet export cfg/fashion_mnist.data %s -limit 20 -size 64 -rgb\"", dir);
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "cannot write '") && strstr(out, ".png'") && strstr(out, "File too large"),
          "a full disk: exit %d: %s", rc, out);
    snprintf(dir, sizeof(dir), "%s/export-used", test_tmpdir());
    snprintf(cmd, sizeof(cmd), "./cdbnet export cfg/fashion_mnist.data %s -limit 3", dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "a first export: %s", out);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "is not empty"), "into a used folder: exit %d: %s", rc, out);
    snprintf(cmd, sizeof(cmd), "./cdbnet export cfg/fashion_mnist.data '%s/export#hash' -limit 3", test_tmpdir());
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "has a '#'"), "a '#' in the path: exit %d: %s", rc, out);
    snprintf(cmd, sizeof(cmd), "./cdbnet export cfg/fashion_mnist.data %s/export-huge -size 100000", test_tmpdir());
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 2 && strstr(out, "-size 100000: at most 8192"), "-size 100000: exit %d: %s", rc, out);
}

void register_cli_tests(void)
{
    test_add_tagged("cli/export: a full disk, a used folder and an unreadable path are errors", t_export_refuses, TEST_SPAWNS);
    test_add_tagged("cli/compare refuses a seed or a sweep value given twice, no seed, and train options it sets itself", t_compare_duplicates, TEST_SPAWNS);
    test_add_tagged("cli/defaults: all CPUs, early progress, -set length replaces the cfg's", t_defaults, TEST_SPAWNS);
    test_add_tagged("cli/benchmark prints its report", t_benchmark, TEST_SPAWNS);
    test_add_tagged("cli/summary prints the network, its totals and semantics", t_summary, TEST_SPAWNS);
    test_add_tagged("cli/scripts/gpu_check.sh --dry-run: its steps fit its budget", t_gpu_check_dry_run, TEST_SPAWNS);
    test_add_tagged("cli/usage and bad input exit non-zero with clear messages", t_usage_and_errors, TEST_SPAWNS);
    test_add_tagged("cli/train, valid reproduces the accuracy, predict", t_train_then_valid, TEST_SPAWNS);
}
