/* Nothing lost, nothing wrong reported: non-finite tensors are never saved
 * and stop a diverging run, top-k counts ties and NaN against the
 * prediction, and counts read from files are range-checked. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include <unistd.h>

#include "data.h"
#include "test.h"
#include "train.h"

static const char *linear_net = "[net]\nbatch=4\nwidth=2\nheight=2\nchannels=1\nlearning_rate=0.1\nmomentum=0.9\n"
                                "max_batches=10\n[connected]\noutput=10\nactivation=linear\n[softmax]\n";

static int last_nonfinite;

/* top-1 and top-5 of a linear classifier whose scores are its biases */
static void top_k_of_biases(const float *biases, float *top1, float *top5)
{
    cdb_network *net = net_from_text(linear_net);
    *top1 = *top5 = -1;
    if (!net) return;
    cdb_param *w = &net->layers[0].params[0], *b = &net->layers[0].params[1];
    memset(w->value, 0, w->size * sizeof(float));
    memcpy(b->value, biases, 10 * sizeof(float));
    uint8_t pixels[8 * 4] = {0};
    int labels[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    cdb_dataset d = {"in memory", 8, 1, 2, 2, 10, pixels, labels, NULL, 0, 0, 0, NULL, 0};
    valid_result v;
    cdb_validate_network(net, &d, &v);
    last_nonfinite = v.nonfinite;
    *top1 = v.top1;
    *top5 = v.top5;
    free_net(net);
}

static void t_metrics(void)
{
    float top1, top5, b[10] = {0};
    top_k_of_biases(b, &top1, &top5);
    CHECK(top1 == 0 && top5 == 0, "ten equal scores are a tie, not a win: top-1 %g top-5 %g", top1, top5);
    for (int k = 0; k < 10; k++) b[k] = 1000.f * k; /* softmax gives class 9 all, the rest exactly 0 */
    top_k_of_biases(b, &top1, &top5);
    CHECK(top1 == 0 && top5 == 0, "the label tied at 0 with 8 others is not in the top 5: top-1 %g top-5 %g", top1,
          top5);
    memset(b, 0, sizeof(b));
    b[7] = NAN;
    top_k_of_biases(b, &top1, &top5);
    CHECK(top1 == 0 && top5 == 0, "NaN outputs count as wrong: top-1 %g top-5 %g", top1, top5);
    CHECK(last_nonfinite == 8, "the 8 images with a NaN output are reported, not %d", last_nonfinite);
    memset(b, 0, sizeof(b));
    b[2] = 5;
    b[4] = 6;
    top_k_of_biases(b, &top1, &top5);
    CHECK(top1 == 0 && top5 == 1, "second of ten: top-1 %g top-5 %g", top1, top5);
    b[4] = 0;
    top_k_of_biases(b, &top1, &top5);
    CHECK(top1 == 1 && top5 == 1, "first of ten: top-1 %g top-5 %g", top1, top5);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* A NaN in the weights or the optimizer state is refused by name, and the
 * file saved before stays as it was. */
static void t_nonfinite_never_saved(void)
{
    cdb_network *net = net_from_text(linear_net);
    CHECK(net, "build");
    char path[512], state[600];
    snprintf(path, sizeof(path), "%s/finite.weights", test_tmpdir());
    snprintf(state, sizeof(state), "%s.state", path);
    CHECK(cdb_weights_save(net, path) == 0, "save: %s", cdb_last_error());
    long good = file_size(path);
    cdb_param *b = &net->layers[0].params[1];
    b->value[3] = INFINITY;
    CHECK(cdb_weights_save(net, path) != 0, "weights with an infinity must not be saved");
    CHECK(strstr(cdb_last_error(), "layer 0 [connected] biases (array 0), value 3 is not finite (inf)") &&
              strstr(cdb_last_error(), "the last checkpoint is left as it was"),
          "message: %s", cdb_last_error());
    CHECK(file_size(path) == good, "the good file was replaced");
    b->value[3] = 0;
    CHECK(cdb_weights_load(net, path) == 0, "the good file still loads: %s", cdb_last_error());
    cdb_param *w = &net->layers[0].params[0];
    cdb_moments *wm = &trainer_of(net)->moments[0]; /* network order: layer 0's weights first */
    CHECK(net->params[0] == w, "tensor 0 is layer 0's weights");
    wm->m1 = calloc(w->size, sizeof(float));
    wm->m1[5] = NAN;
    CHECK(cdb_state_save(trainer_of(net), state) != 0 && strstr(cdb_last_error(), "layer 0 [connected] weights, optimizer momentum "
                                                                        "value 5 is not finite"),
          "state with a NaN: %s", cdb_last_error());
    CHECK(access(state, F_OK) != 0, "no state file written");
    free_net(net);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* Counts read from files: a version whose check would overflow, a state of
 * another step than its weights. */
static void t_counts_checked(void)
{
    cdb_network *net = net_from_text(linear_net);
    CHECK(net, "build");
    char path[512], state[600];
    snprintf(path, sizeof(path), "%s/counts.weights", test_tmpdir());
    snprintf(state, sizeof(state), "%s.state", path);
    CHECK(cdb_weights_save(net, path) == 0, "save: %s", cdb_last_error());
    long n = file_size(path);
    unsigned char *bytes = malloc((size_t)n);
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(bytes, 1, (size_t)n, f) == (size_t)n, "read back");
    fclose(f);
    int32_t major = -214748365; /* major * 10 overflows to a small positive number */
    memcpy(bytes, &major, 4);
    char bad[600];
    snprintf(bad, sizeof(bad), "%s.bad", path);
    write_file(bad, bytes, (size_t)n);
    free(bytes);
    CHECK(cdb_weights_load(net, bad) != 0 && strstr(cdb_last_error(), "version -214748365."),
          "a negative major version is refused: %s", cdb_last_error());
    /* the state of step 3 beside weights of step 2 (a save killed between the two files) */
    trainer_of(net)->step = 3;
    CHECK(cdb_state_save(trainer_of(net), state) == 0, "state: %s", cdb_last_error());
    trainer_of(net)->step = 2;
    CHECK(cdb_state_load(trainer_of(net), state) != 0 && strstr(cdb_last_error(), "is of step 3") &&
              strstr(cdb_last_error(), "not one checkpoint"),
          "a state of another step is refused: %s", cdb_last_error());
    trainer_of(net)->step = 3;
    CHECK(cdb_state_load(trainer_of(net), state) == 0, "the matching state loads: %s", cdb_last_error());
    free_net(net);
}


/* A run that diverges stops at the step its weights went non-finite, names
 * the tensor, exits 1 and saves nothing. */
static void t_divergence_stops(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[2048], weights[512];
    snprintf(weights, sizeof(weights), "%s/diverged.weights", test_tmpdir());
    snprintf(cmd, sizeof(cmd),
             "./cdbnet train cfg/smallcnn.cfg -threads 1 -quiet -set net.max_batches=30 -set net.learning_rate=100 "
             "-set net.burn_in=0 -out %s -backup %s/backup-diverged",
             weights, test_tmpdir());
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1, "exit %d: %s", rc, out);
    CHECK(strstr(out, "training diverged at step ") && strstr(out, "is not finite") && strstr(out, "[convolutional]"),
          "the message names the step and the tensor: %s", out);
    CHECK(access(weights, F_OK) != 0, "no weights saved from a diverged run");
}

/* Loaders: a corrupt gzip stream, an over-long label file and a FIFO are
 * errors naming the file (a FIFO must not block). */
static void t_bad_dataset_files(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/corrupt_cifar.bin.gz", test_tmpdir());
    gzFile g = gzopen(path, "wb");
    CHECK(g, "gzopen");
    unsigned char rec[3073];
    uint64_t x = 88172645463325252ull;
    for (int r = 0; r < 256; r++) {
        for (int i = 0; i < 3073; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            rec[i] = (unsigned char)x;
        }
        rec[0] = (unsigned char)(r % 10);
        gzwrite(g, rec, sizeof(rec));
    }
    gzclose(g);
    cdb_dataset d;
    CHECK(cdb_dataset_load_cifar(path, 0, 10, &d) == 0 && d.n == 256, "the intact file loads: %s", cdb_last_error());
    cdb_dataset_clear(&d);
    long n = file_size(path);
    FILE *f = fopen(path, "r+b");
    CHECK(f, "reopen");
    fseek(f, n / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, n / 2, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    CHECK(cdb_dataset_load_cifar(path, 0, 10, &d) != 0, "a corrupt gzip stream was accepted (%d records)", d.n);
    CHECK(strstr(cdb_last_error(), path) && (strstr(cdb_last_error(), "corrupt") || strstr(cdb_last_error(), "truncated")),
          "message: %s", cdb_last_error());

    char images[512], labels[512];
    snprintf(images, sizeof(images), "%s/long-images.idx", test_tmpdir());
    snprintf(labels, sizeof(labels), "%s/long-labels.idx", test_tmpdir());
    const unsigned char ih[16] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2}, lh[8] = {0, 0, 8, 1, 0, 0, 0, 4};
    unsigned char ibuf[16 + 16] = {0}, lbuf[8 + 5] = {0};
    memcpy(ibuf, ih, 16);
    memcpy(lbuf, lh, 8);
    write_file(images, ibuf, sizeof(ibuf));
    write_file(labels, lbuf, 8 + 4);
    CHECK(cdb_dataset_load_idx(images, labels, 10, &d) == 0, "exact files load: %s", cdb_last_error());
    cdb_dataset_clear(&d);
    write_file(labels, lbuf, 8 + 5);
    CHECK(cdb_dataset_load_idx(images, labels, 10, &d) != 0 && strstr(cdb_last_error(), "has data past the 4 labels"),
          "an over-long label file is an error: %s", cdb_last_error());

    char fifo[512];
    snprintf(fifo, sizeof(fifo), "%s/dataset.fifo", test_tmpdir());
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(cdb_dataset_load_idx(fifo, labels, 10, &d) != 0 && strstr(cdb_last_error(), "is not a regular file"),
          "a FIFO is refused: %s", cdb_last_error());
    unlink(fifo);
}

/* Outputs are checked before training starts, naming the target. */
static void t_outputs_checked_first(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[2048], data[512], file[512];
    snprintf(cmd, sizeof(cmd), "./cdbnet train cfg/smallcnn.cfg -quiet -threads 1 -out /nonexistent-dir/x.weights -backup %s/backup-outputs",
             test_tmpdir());
    CHECK(run_command(cmd, out, sizeof(out)) == 1 &&
              strstr(out, "cannot write the final weights file '/nonexistent-dir/x.weights'") && !strstr(out, "trained"),
          "-out in a missing folder: %s", out);
    snprintf(cmd, sizeof(cmd), "./cdbnet train cfg/smallcnn.cfg -quiet -threads 1 -out %s -backup %s/backup-outputs", test_tmpdir(),
             test_tmpdir());
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "exists and is not a regular file") && !strstr(out, "trained"),
          "-out a folder: %s", out);
    snprintf(file, sizeof(file), "%s/not-a-folder", test_tmpdir());
    write_file(file, "x", 1);
    snprintf(data, sizeof(data), "%s/backup-file.data", test_tmpdir());
    CHECK(write_fmnist_test_data(data, file) == 0, "write .data");
    snprintf(cmd, sizeof(cmd), "./cdbnet train cfg/smallcnn.cfg -quiet -threads 1 -data %s", data);
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "exists and is not a folder") && !strstr(out, "trained"),
          "backup= a regular file: %s", out);
}

/* Temporary files of killed saves are removed at the next start; those of
 * a live process are left alone. */
static void t_stale_temporaries(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[2048], final[512], dead[600], dead_state[600], live[600];
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* a process that is gone */
    snprintf(final, sizeof(final), "%s/stale.weights", test_tmpdir());
    snprintf(dead, sizeof(dead), "%s.tmp.%ld", final, (long)child);
    snprintf(dead_state, sizeof(dead_state), "%s.state.tmp.%ld", final, (long)child);
    snprintf(live, sizeof(live), "%s.tmp.%ld", final, (long)getpid());
    write_file(dead, "x", 1);
    write_file(dead_state, "x", 1);
    write_file(live, "x", 1);
    snprintf(cmd, sizeof(cmd), "./cdbnet train cfg/smallcnn.cfg -quiet -threads 1 -set net.max_batches=1 -out %s -backup %s/backup-stale",
             final, test_tmpdir());
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "train: %s", out);
    CHECK(access(dead, F_OK) != 0 && access(dead_state, F_OK) != 0, "stale temporaries of pid %ld left behind",
          (long)child);
    CHECK(access(live, F_OK) == 0, "the temporary of a live process was removed");
    unlink(live);
}

/* SIGTERM (or SIGINT) during training: a checkpoint after the step under
 * way, a message saying where, exit 1; the checkpoint loads. */
static void t_signal_saves(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[4096], data[512], log[512], backup[512];
    snprintf(backup, sizeof(backup), "%s/signal-backup", test_tmpdir());
    snprintf(data, sizeof(data), "%s/signal.data", test_tmpdir());
    snprintf(log, sizeof(log), "%s/signal.log", test_tmpdir());
    CHECK(write_fmnist_test_data(data, backup) == 0, "write .data");
    /* signal once the first progress line shows that training runs */
    snprintf(cmd, sizeof(cmd),
             "./cdbnet train cfg/smallcnn.cfg -threads 1 -data %s -set net.max_batches=100000 > %s 2>&1 & p=$!; "
             "i=0; while [ $i -lt 600 ] && ! grep -q '^step ' %s; do sleep 0.05; i=$((i+1)); done; "
             "kill -TERM $p; wait $p; echo \"exit $?\"; cat %s",
             data, log, log, log);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "shell: %s", out);
    char want[1024];
    snprintf(want, sizeof(want), "checkpoint saved to %s/smallcnn_last.weights", backup);
    CHECK(strstr(out, "exit 1") && strstr(out, "interrupted at step ") && strstr(out, want),
          "SIGTERM saves and says where (want '%s'): %s", want, out);
    snprintf(cmd, sizeof(cmd), "./cdbnet valid cfg/smallcnn.cfg %s/smallcnn_last.weights -threads 1 -data %s", backup,
             data);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "top-1"), "the checkpoint loads: %s", out);
}

/* A small, fast network on Fashion-MNIST's 28x28 images that checkpoints
 * every step, for the tests that run cdbnet train in a shell. */
static int write_tiny_cfg(const char *path, int max_batches)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "[net]\nbatch=32\nwidth=28\nheight=28\nchannels=1\nlearning_rate=0.05\nmomentum=0.9\n"
               "max_batches=%d\nsave_every=1\nvalid_every=100000\nseed=4\ncrop_pad=2\nflip=1\n"
               "channel_dropback=1\ndropback_skip=0\ndropback_layer_rate=0.5\ndropback_layer_rate_init=0.5\n"
               "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\nactivation=relu\n"
               "[dropout]\nprobability=0.2\n[avgpool]\n[connected]\noutput=10\nactivation=linear\n[softmax]\n",
            max_batches);
    return fclose(f);
}

/* Crash consistency: a run killed with SIGKILL at many points (saves
 * included: it checkpoints every step) resumes from its last checkpoint to
 * weights bit-identical to the run that was never interrupted. */
static void t_kill_resume(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cfg[512], data[512], dir[512], cmd[16384];
    snprintf(dir, sizeof(dir), "%s/kill", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/kill.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/kill.data", test_tmpdir());
    CHECK(write_tiny_cfg(cfg, 60) == 0, "write cfg");
    CHECK(write_fmnist_test_data(data, dir) == 0, "write .data");
    /* the uninterrupted run, then runs killed after 0.1 s to 2.2 s, each resumed */
    snprintf(cmd, sizeof(cmd),
             "set -e; rm -rf %s; mkdir -p %s; B='./cdbnet train %s -quiet -threads 1 -data %s';"
             "$B -out %s/ref.weights > /dev/null 2>&1; resumed=0;"
             "for t in 0.1 0.3 0.45 0.6 0.8 1.0 1.3 1.6 2.2; do rm -f %s/kill_last.weights*;"
             "  $B -out %s/k.weights > %s/k.log 2>&1 & p=$!; sleep $t; kill -9 $p 2>/dev/null || true; wait $p 2>/dev/null || true;"
             "  if [ -f %s/kill_last.weights ]; then resumed=$((resumed+1));"
             "    $B -weights %s/kill_last.weights -out %s/k.weights > %s/k.log 2>&1 || { echo \"resume after $t s failed:\"; cat %s/k.log; exit 1; };"
             "  elif [ ! -f %s/k.weights ] || ! cmp -s %s/k.weights %s/ref.weights; then $B -out %s/k.weights > /dev/null 2>&1; fi;"
             "  cmp %s/k.weights %s/ref.weights || { echo \"killed after $t s: the resumed run differs\"; exit 1; };"
             "  rm -f %s/k.weights; done; echo \"resumed $resumed\"",
             dir, dir, cfg, data, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0, "%s", out);
    int resumed = -1;
    const char *at = strstr(out, "resumed ");
    if (at) sscanf(at, "resumed %d", &resumed);
    printf("    %d of 9 killed runs resumed from their checkpoint, each to the uninterrupted run's weights\n", resumed);
    CHECK(resumed >= 3, "only %d kills landed during training: %s", resumed, out);
}

/* The dropback report of a run of `steps` steps: every tensor taking part
 * was drawn each step; its channel rows sum to what its mean kept fraction
 * says was dropped, and no channel was dropped more often than the tensor
 * was selected. */
static void check_dropback_report(const char *report, const char *channels, int steps)
{
    FILE *f = fopen(report, "r");
    CHECK(f, "no dropback report %s", report);
    if (!f) return;
    char line[1024];
    int tensors = 0, header = 0;
    int layer[16], width[16];
    long selected[16];
    double kept[16];
    while (fgets(line, sizeof(line), f) && tensors < 16) {
        if (line[0] == '#') continue;
        if (!header) {
            header = 1;
            const char *want = "layer,type,tensor,mask_channels,takes_part,channel_rate,draws,selected,";
            CHECK(!strncmp(line, want, strlen(want)),
                  "dropback report header: %s", line);
            continue;
        }
        int l, c, part;
        long draws, sel;
        double rate, frac, keep;
        char type[64], name[64];
        if (sscanf(line, "%d,%63[^,],%63[^,],%d,%d,%lf,%ld,%ld,%lf,%lf", &l, type, name, &c, &part, &rate, &draws, &sel,
                   &frac, &keep) != 10)
            continue;
        if (!part) continue;
        CHECK(draws == steps && sel >= 0 && sel <= draws && keep > 0 && keep <= 1, "dropback report row: %s", line);
        layer[tensors] = l;
        width[tensors] = c;
        selected[tensors] = sel;
        kept[tensors] = keep;
        tensors++;
    }
    fclose(f);
    CHECK(tensors >= 1, "no tensor takes part in %s", report);
    f = fopen(channels, "r");
    CHECK(f, "no channel report %s", channels);
    if (!f) return;
    long dropped[16] = {0};
    int rows[16] = {0};
    while (fgets(line, sizeof(line), f)) {
        int l, c;
        long d;
        double frac;
        char name[64];
        if (sscanf(line, "%d,%63[^,],%d,%ld,%lf", &l, name, &c, &d, &frac) != 5) continue;
        for (int t = 0; t < tensors; t++)
            if (layer[t] == l) {
                CHECK(c == rows[t] && d >= 0 && d <= selected[t] && fabs(frac - (double)d / steps) < 1e-5,
                      "channel row: %s", line);
                rows[t]++;
                dropped[t] += d;
            }
    }
    fclose(f);
    for (int t = 0; t < tensors; t++) {
        CHECK(rows[t] == width[t], "layer %d: %d channel rows, %d channels", layer[t], rows[t], width[t]);
        double want = (1 - kept[t]) * selected[t] * width[t];
        CHECK(fabs(dropped[t] - want) < 1e-3 * (want + 1), "layer %d: %ld drops over its channels, the mean kept fraction says %.2f",
              layer[t], dropped[t], want);
    }
}

/* The training log: its header (cfg, seed, arm, -set), one row per
 * validation with the step, accuracy and dropback columns, and the chart
 * when gnuplot is installed (a message and no chart when it is not). */
static void t_training_log(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[4096], data[512], cfg[512], backup[512], log[600], chart[600];
    snprintf(backup, sizeof(backup), "%s/log-backup", test_tmpdir());
    snprintf(data, sizeof(data), "%s/log.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/logged.cfg", test_tmpdir());
    snprintf(log, sizeof(log), "%s/logged_log.csv", backup);
    snprintf(chart, sizeof(chart), "%s/logged_log.png", backup);
    CHECK(write_fmnist_test_data(data, backup) == 0 && write_tiny_cfg(cfg, 1000) == 0, "write .data and cfg");
    for (int arm = 0; arm < 2; arm++) {
        snprintf(cmd, sizeof(cmd),
                 "./cdbnet train %s -threads 1 -data %s -set net.max_batches=12 -set net.valid_every=4 %s 2>&1 && "
                 "cat %s",
                 cfg, data, arm ? "-nodropback" : "", log);
        CHECK(run_command(cmd, out, sizeof(out)) == 0, "train: %s", out);
        CHECK(strstr(out, "# cfg: ") && strstr(out, "# seed: 4") && strstr(out, arm ? "# arm: baseline" : "# arm: dropback") &&
                  strstr(out, "# set: net.max_batches=12") && strstr(out, "# set: net.valid_every=4"),
              "header: %s", out);
        const char *rows = strstr(out, "step,epoch,images_seen,train_loss,valid_loss,top1,top5,learning_rate,");
        CHECK(rows, "no column row: %s", out);
        int steps[3] = {0}, n = 0;
        for (const char *line = strchr(rows, '\n'); line && n < 4; line = strchr(line + 1, '\n')) {
            int step;
            double epoch, top1, sel;
            unsigned long long seen;
            float tl, vl, t5, lr, r;
            if (sscanf(line + 1, "%d,%lf,%llu,%f,%f,%lf,%f,%f,%f,%lf", &step, &epoch, &seen, &tl, &vl, &top1, &t5, &lr,
                       &r, &sel) != 10)
                continue;
            CHECK(n < 3, "more than 3 rows: %s", rows);
            CHECK(seen == (unsigned long long)step * 32 && top1 >= 0 && top1 <= 1 && isfinite(tl) && isfinite(vl),
                  "row %d: %s", n, line + 1);
            CHECK(arm ? sel == 0 : sel > 0, "arm %d: %g tensors selected per step", arm, sel);
            steps[n++] = step;
        }
        CHECK(n == 3 && steps[0] == 4 && steps[1] == 8 && steps[2] == 12, "rows at steps %d %d %d (%d rows): %s",
              steps[0], steps[1], steps[2], n, rows);
        struct stat st;
        int have_gnuplot = test_have_gnuplot();
        if (have_gnuplot)
            CHECK(stat(chart, &st) == 0 && st.st_size > 1000, "gnuplot is installed but there is no chart %s", chart);
        else
            CHECK(strstr(out, "gnuplot is not installed") || strstr(out, "charts are off (CDBNET_GNUPLOT=none)"),
                  "no message about the missing chart: %s", out);
        /* where dropback acted: the dropback arm alone writes it */
        char report[600], channels[600], heat[600];
        snprintf(report, sizeof(report), "%s/logged_log_dropback.csv", backup);
        snprintf(channels, sizeof(channels), "%s/logged_log_channels.csv", backup);
        snprintf(heat, sizeof(heat), "%s/logged_log_dropback.png", backup);
        if (arm) {
            CHECK(stat(report, &st) != 0 && stat(channels, &st) != 0, "the baseline arm wrote a dropback report");
        } else {
            check_dropback_report(report, channels, 12);
            if (have_gnuplot) CHECK(stat(heat, &st) == 0 && st.st_size > 1000, "no heat map %s", heat);
            remove(report);
            remove(channels);
            remove(heat);
        }
    }
}

/* With clip_grad_norm the log gains a column, grad_norm: the mean of the
 * steps' gradient norms before clipping since the row before. */
static void t_training_log_grad_norm(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[4096], data[512], cfg[512], backup[512], log[600];
    snprintf(backup, sizeof(backup), "%s/clip-backup", test_tmpdir());
    snprintf(data, sizeof(data), "%s/clip.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/clipped.cfg", test_tmpdir());
    snprintf(log, sizeof(log), "%s/clipped_log.csv", backup);
    CHECK(write_fmnist_test_data(data, backup) == 0 && write_tiny_cfg(cfg, 1000) == 0, "write .data and cfg");
    snprintf(cmd, sizeof(cmd),
             "./cdbnet train %s -threads 1 -data %s -set net.max_batches=8 -set net.valid_every=4 "
             "-set net.clip_grad_norm=0.01 2>&1 && cat %s",
             cfg, data, log);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "train: %s", out);
    const char *rows = strstr(out, "images_per_second,macro_f1,grad_norm\n");
    CHECK(rows, "no grad_norm column: %s", out);
    int n = 0;
    for (const char *line = strchr(rows, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        int commas = 0;
        for (const char *c = line + 1; *c && *c != '\n'; c++) commas += *c == ',';
        const char *last = line + 1;
        for (int k = 0; k < 13; k++) last = strchr(last, ',') + 1;
        double f1 = atof(last), norm = atof(strchr(last, ',') + 1);
        CHECK(commas == 14 && f1 > 0 && f1 <= 1 && norm > 0.01 && isfinite(norm),
              "row %d: %d columns, macro_f1 %g, grad_norm %g: %s", n, commas + 1, f1, norm, line + 1);
        n++;
    }
    CHECK(n == 2, "%d rows: %s", n, rows);
}

/* One run per backup folder: a second run into a folder a running one
 * holds is refused naming its pid, unless -share-backup. */
/* The backup folder's lock file is never opened through a symbolic link:
 * a planted link would have a run (as root, say) create or truncate a file
 * anywhere. The run is refused, naming the link, and the target is intact. */
static void t_lock_file_link_refused(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[4096], backup[512], data[512], cfg[512], target[512], link[600];
    snprintf(backup, sizeof(backup), "%s/linked-backup", test_tmpdir());
    snprintf(data, sizeof(data), "%s/linked.data", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/linked.cfg", test_tmpdir());
    snprintf(target, sizeof(target), "%s/precious.txt", test_tmpdir());
    snprintf(link, sizeof(link), "%s/.cdbnet.lock", backup);
    CHECK(write_fmnist_test_data(data, backup) == 0 && write_tiny_cfg(cfg, 1) == 0, "write .data and cfg");
    mkdir(backup, 0755);
    write_file(target, "keep me\n", 8);
    CHECK(symlink(target, link) == 0, "symlink");
    snprintf(cmd, sizeof(cmd), "./cdbnet train %s -threads 1 -quiet -data %s", cfg, data);
    int rc = run_command(cmd, out, sizeof(out));
    char kept[32] = "";
    FILE *f = fopen(target, "r");
    if (f) {
        if (!fgets(kept, sizeof(kept), f)) kept[0] = 0;
        fclose(f);
    }
    unlink(link);
    CHECK(rc == 1 && strstr(out, "is a symbolic link") && strstr(out, ".cdbnet.lock"), "exit %d: %s", rc, out);
    CHECK(!strcmp(kept, "keep me\n"), "the link's target was written: '%s'", kept);
}

static void t_backup_locked(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cmd[8192], data[512], log[512], backup[512], cfg[512];
    snprintf(backup, sizeof(backup), "%s/locked-backup", test_tmpdir());
    snprintf(data, sizeof(data), "%s/locked.data", test_tmpdir());
    snprintf(log, sizeof(log), "%s/locked.log", test_tmpdir());
    snprintf(cfg, sizeof(cfg), "%s/locked.cfg", test_tmpdir());
    CHECK(write_fmnist_test_data(data, backup) == 0 && write_tiny_cfg(cfg, 1000000) == 0, "write .data and cfg");
    snprintf(cmd, sizeof(cmd),
             "C='./cdbnet train %s -threads 1 -data %s'; $C -print 1 > %s 2>&1 & p=$!; "
             "i=0; while [ $i -lt 600 ] && ! grep -q '^step ' %s; do sleep 0.05; i=$((i+1)); done; "
             "$C -quiet -set net.max_batches=1 2>&1; echo \"second $? first $p\"; "
             "$C -quiet -set net.max_batches=1 -share-backup -out %s/shared.weights > /dev/null 2>&1; "
             "echo \"shared $?\"; kill -9 $p; wait $p 2>/dev/null; "
             "$C -quiet -set net.max_batches=1 > /dev/null 2>&1; echo \"after $?\"",
             cfg, data, log, log, backup);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "shell: %s", out);
    int pid = 0;
    const char *at = strstr(out, " first ");
    if (at) sscanf(at, " first %d", &pid);
    char want[128];
    snprintf(want, sizeof(want), "another cdbnet run (pid %d) is training into the backup folder", pid);
    CHECK(strstr(out, "second 1") && pid > 0 && strstr(out, want), "the second run (want '%s'): %s", want, out);
    CHECK(strstr(out, "shared 0"), "-share-backup runs anyway: %s", out);
    CHECK(strstr(out, "after 0"), "the lock goes with its process (kill -9): %s", out);
}

/* nan_policy: stop leaves the step undone; skip_step spends it without an
 * update and counts it; the first layer whose output went non-finite is
 * found. */
static void t_nan_policy(void)
{
    const char *head = "[net]\nbatch=4\nwidth=2\nheight=2\nchannels=1\nlearning_rate=0.1\nmomentum=0.9\n"
                       "max_batches=10\n";
    const char *layers = "[connected]\noutput=6\nactivation=linear\n[connected]\noutput=10\nactivation=linear\n[softmax]\n";
    char text[1024];
    float images[16], bad[16];
    int labels[4] = {1, 2, 3, 4};
    fill_normal(images, 16, 3, 1.f);
    memcpy(bad, images, sizeof(bad));
    bad[5] = NAN;
    for (int skip = 0; skip < 2; skip++) {
        snprintf(text, sizeof(text), "%snan_policy=%s\n%s", head, skip ? "skip_step" : "stop", layers);
        cdb_network *net = net_from_text(text);
        CHECK(net, "build");
        cdb_trainer_run_step(trainer_of(net), images, labels);
        float w = net->params[0]->value[0];
        float loss = cdb_trainer_run_step(trainer_of(net), bad, labels);
        CHECK(isnan(loss) && net->params[0]->value[0] == w, "a non-finite step changed the weights");
        CHECK(trainer_of(net)->step_skipped == skip && trainer_of(net)->step == 1 + skip && trainer_of(net)->skipped_steps == skip,
              "%s: skipped %d, step %d, %ld skipped", skip ? "skip_step" : "stop", trainer_of(net)->step_skipped, trainer_of(net)->step,
              trainer_of(net)->skipped_steps);
        CHECK(isfinite(cdb_trainer_run_step(trainer_of(net), images, labels)) && net->params[0]->value[0] != w, "the next step runs");
        free_net(net);
    }
    /* ReLU maps the NaN to 0: the loss is finite, a gradient is not; skip_step skips it too */
    snprintf(text, sizeof(text), "%snan_policy=skip_step\n[connected]\noutput=6\nactivation=relu\n%s", head,
             strstr(layers, "[connected]\noutput=10"));
    cdb_network *relu = net_from_text(text);
    CHECK(relu, "build");
    float w0 = relu->params[0]->value[0];
    CHECK(isnan(cdb_trainer_run_step(trainer_of(relu), bad, labels)) && trainer_of(relu)->step_skipped && relu->params[0]->value[0] == w0,
          "a NaN gradient behind a finite loss was applied");
    free_net(relu);
    snprintf(text, sizeof(text), "%s%s", head, layers);
    cdb_network *net = net_from_text(text);
    CHECK(net, "build");
    net->params[2]->value[7] = INFINITY; /* layer 1's weights */
    memcpy(net->input, images, sizeof(images));
    cdb_network_forward(net, 0);
    size_t at = 0;
    CHECK(cdb_network_first_non_finite_output(net, &at) == 1, "the first non-finite output is layer 1's");
    free_net(net);
}

/* Out of memory at every allocation in turn: building (the cfg reader,
 * [net], each layer type, the network's buffers) and the first training
 * step (the optimizer's state, compute skipping's scratch) each fail with a
 * message, never a crash or exit, and a failed step leaves the weights as
 * they were. */
static const char *oom_cfg =
    "[net]\nbatch=4\nsubdivisions=2\nwidth=8\nheight=8\nchannels=2\nlearning_rate=0.1\nmomentum=0.9\n"
    "optimizer=adamw\nmax_batches=10\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=1\n"
    "dropback_layer_rate_init=1\ndropback_skip_compute=1\n"
    "[convolutional]\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n[dropout]\nprobability=0.2\n[batchnorm]\n"
    "[route]\nlayers=-1\n[shortcut]\nfrom=-2\n"
    "[tokens]\n[cls_token]\n[pos_embed]\n[layernorm]\n[attention]\nheads=2\n[token_pool]\nmode=cls\n"
    "[connected]\noutput=6\nactivation=gelu\n[softmax]\n";

static cdb_network *build_failing_after(long k)
{
    cdb_fail_allocations_after(k);
    cfg_file *cfg = cdb_cfg_parse_string("oom.cfg", oom_cfg);
    cdb_network *net = cfg ? cdb_network_build(cfg) : NULL;
    cdb_fail_allocations_after(-1);
    cdb_cfg_free(cfg);
    return net;
}

static void t_out_of_memory(void)
{
    long k = 0;
    int named_layer = 0;
    cdb_network *net = NULL;
    for (; k < 100000 && !(net = build_failing_after(k)); k++) {
        CHECK(strstr(cdb_last_error(), "out of memory"), "allocation %ld failing: %s", k, cdb_last_error());
        named_layer += strstr(cdb_last_error(), "(layer ") != NULL;
    }
    CHECK(net, "the build never succeeded");
    CHECK(k > 40, "only %ld allocations seen while building", k);
    CHECK(named_layer > 20, "only %d of %ld failures name the layer", named_layer, k);
    float images[4 * 128], *before = NULL;
    int labels[4] = {0, 1, 2, 3};
    fill_normal(images, 4 * 128, 5, 1.f);
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += net->params[i]->size;
    free_net(net);
    before = malloc(total * sizeof(float));
    CHECK(before, "malloc");
    int failures = 0;
    for (long j = 0; j < 1000; j++) {
        cdb_network *n = build_failing_after(-1);
        CHECK(n, "build: %s", cdb_last_error());
        size_t at = 0;
        for (int i = 0; i < n->nparams; i++, at += n->params[i - 1]->size)
            memcpy(before + at, n->params[i]->value, n->params[i]->size * sizeof(float));
        cdb_trainer *t = trainer_of(n);
        cdb_fail_allocations_after(j);
        float loss = cdb_trainer_run_step(t, images, labels);
        cdb_fail_allocations_after(-1);
        if (!t->step_failed) {
            CHECK(isfinite(loss), "loss %g", loss);
            free_net(n);
            break;
        }
        failures++;
        CHECK(isnan(loss) && strstr(cdb_last_error(), "out of memory"), "step, allocation %ld: loss %g, %s", j, loss,
              cdb_last_error());
        at = 0;
        for (int i = 0; i < n->nparams; i++, at += n->params[i - 1]->size)
            CHECK(!memcmp(before + at, n->params[i]->value, n->params[i]->size * sizeof(float)),
                  "a failed step changed tensor %d", i);
        CHECK(t->step == 0 && t->seen == 0, "a failed step counted");
        free_net(n);
    }
    free(before);
    printf("    %ld allocations while building, %d in the first step; each failed in turn\n", k, failures);
    /* the optimizer's state (a few tensors' two moments) and the scratch */
    CHECK(failures > 10, "only %d of the step's allocations failed", failures);
}

/* Memory is bounded before it is taken: a network over the limit is refused
 * naming the layer that asks the most, and an IDX header that claims more
 * images than its file holds costs no more memory than the file. */
static void t_memory_bounded(void)
{
    const char *text = "[net]\nbatch=8\nwidth=32\nheight=32\nchannels=3\n"
                       "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n"
                       "[convolutional]\nfilters=256\nsize=3\npad=1\nactivation=relu\n"
                       "[avgpool]\n[connected]\noutput=10\nactivation=linear\n[softmax]\n";
    cdb_set_memory_limit(4 << 20);
    const char *msg = net_error_from_text("big.cfg", text);
    cdb_set_memory_limit(0);
    CHECK(msg && strstr(msg, "memory limit of 4 MiB") && strstr(msg, "layer 1 [convolutional] at line 11"),
          "message: %s", msg ? msg : "(it built)");
    cdb_network *net = net_from_text(text);
    CHECK(net, "without the limit it builds: %s", cdb_last_error());
    free_net(net);

    char images[512], labels[512];
    snprintf(images, sizeof(images), "%s/huge-header-images.idx", test_tmpdir());
    snprintf(labels, sizeof(labels), "%s/huge-header-labels.idx", test_tmpdir());
    const unsigned char head[] = {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28};
    const unsigned char lhead[] = {0, 0, 8, 1, 0x7f, 0xff, 0xff, 0xff};
    FILE *f = fopen(images, "wb"), *g = fopen(labels, "wb");
    CHECK(f && g, "create");
    fwrite(head, 1, sizeof(head), f);
    for (int i = 0; i < 3 * 784; i++) fputc(i & 0xff, f);
    fwrite(lhead, 1, sizeof(lhead), g);
    for (int i = 0; i < 3; i++) fputc(i, g);
    fclose(f);
    fclose(g);
    cdb_dataset d;
    cdb_budget_begin(64u << 20);
    int rc = cdb_dataset_load_idx(images, labels, 10, &d);
    int exceeded = cdb_budget_exceeded();
    cdb_budget_end();
    CHECK(rc != 0 && strstr(cdb_last_error(), images) && strstr(cdb_last_error(), "truncated"), "rc %d: %s", rc,
          cdb_last_error());
    CHECK(!exceeded, "loading a 2 KiB file claiming 2^31 images took more than 64 MiB");
}

/* A FIFO given as weights or optimizer state is refused at once
 * (opening one blocks until a writer comes). */
static void t_fifo_inputs(void)
{
    static char out[8192];
    char fifo[512], cmd[2048];
    snprintf(fifo, sizeof(fifo), "%s/a-fifo", test_tmpdir());
    remove(fifo);
    snprintf(cmd, sizeof(cmd), "mkfifo %s", fifo);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "mkfifo: %s", out);
    cdb_network *net = net_from_text(linear_net);
    CHECK(net, "build");
    CHECK(cdb_weights_load(net, fifo) != 0 && strstr(cdb_last_error(), "not a regular file"), "weights: %s",
          cdb_last_error());
    CHECK(cdb_state_load(trainer_of(net), fifo) != 0 && strstr(cdb_last_error(), "not a regular file"), "state: %s",
          cdb_last_error());
    free_net(net);
    snprintf(cmd, sizeof(cmd), "timeout 20 ./cdbnet predict cfg/smallcnn.cfg %s %s", fifo, fifo);
    CHECK(run_command(cmd, out, sizeof(out)) == 1 && strstr(out, "not a regular file"), "predict: %s", out);
}

/* In a container or a batch job the memory cgroup's limit, not the host's
 * MemAvailable, is what a network may take: read from fixture files laid
 * out as /proc/self/cgroup, /proc/self/mountinfo and the cgroup mounts. */
static void put(const char *dir, const char *name, const char *text)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, text, strlen(text));
}

static void t_cgroup_memory_limit(void)
{
    char root[600], v2[700], job[800], step[900], v1[700], slurm[800], cg[700], mi[700], text[2048];
    snprintf(root, sizeof(root), "%s/cgroupfs", test_tmpdir());
    snprintf(v2, sizeof(v2), "%s/unified", root);
    snprintf(job, sizeof(job), "%s/job", v2);
    snprintf(step, sizeof(step), "%s/step", job);
    snprintf(v1, sizeof(v1), "%s/memory", root);
    snprintf(slurm, sizeof(slurm), "%s/slurm", v1);
    snprintf(cg, sizeof(cg), "%s/self_cgroup", root);
    snprintf(mi, sizeof(mi), "%s/mountinfo", root);
    char cmd[4000];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' '%s'", step, slurm);
    CHECK(system(cmd) == 0, "mkdir");
    /* v2: the job's limit (2 GiB, 0.5 GiB used) binds; the step's is "max" */
    put(job, "memory.max", "2147483648\n");
    put(job, "memory.current", "536870912\n");
    put(step, "memory.max", "max\n");
    put(step, "memory.current", "1048576\n");
    put(root, "self_cgroup", "0::/job/step\n");
    snprintf(text, sizeof(text), "30 22 0:27 / %s rw - cgroup2 cgroup2 rw\n", v2);
    put(root, "mountinfo", text);
    size_t left = cdb_cgroup_memory_left(cg, mi);
    CHECK(left == (size_t)1536 << 20, "v2: %zu bytes left, want 1.5 GiB", left);
    /* v1: the memory controller's own mount, a limit of 1 GiB, 100 MiB used */
    put(slurm, "memory.limit_in_bytes", "1073741824\n");
    put(slurm, "memory.usage_in_bytes", "104857600\n");
    put(root, "self_cgroup", "5:cpu,cpuacct:/slurm\n4:memory:/slurm\n");
    snprintf(text, sizeof(text), "31 30 0:28 / %s rw - cgroup cgroup rw,cpu\n32 30 0:29 / %s rw - cgroup cgroup rw,memory\n",
             root, v1);
    put(root, "mountinfo", text);
    left = cdb_cgroup_memory_left(cg, mi);
    CHECK(left == (size_t)(1073741824 - 104857600), "v1: %zu bytes left", left);
    /* v1 without a limit (a page-rounded LONG_MAX), and no cgroup file: none */
    put(slurm, "memory.limit_in_bytes", "9223372036854771712\n");
    CHECK(cdb_cgroup_memory_left(cg, mi) == 0, "v1 unlimited: %zu", cdb_cgroup_memory_left(cg, mi));
    snprintf(text, sizeof(text), "%s/none", root);
    CHECK(cdb_cgroup_memory_left(text, mi) == 0, "no cgroup file");
}

void register_reliability_tests(void)
{
    test_add_tagged("reliability/a FIFO as weights or state is refused (library and predict)", t_fifo_inputs, TEST_SPAWNS);
    test_add("reliability/memory bounded before it is taken", t_memory_bounded);
    test_add("reliability/the memory cgroup's limit is read (v1 and v2, the least of the hierarchy)", t_cgroup_memory_limit);
    test_add_tagged("reliability/kill -9 at any point resumes bit-identically", t_kill_resume, TEST_SPAWNS | TEST_SLOW);
    test_add_tagged("reliability/the backup lock is never opened through a symbolic link", t_lock_file_link_refused,
                    TEST_SPAWNS);
    test_add_tagged("reliability/one run per backup folder", t_backup_locked, TEST_SPAWNS);
    test_add_tagged("reliability/the training log and its chart", t_training_log, TEST_SPAWNS);
    test_add_tagged("reliability/clip_grad_norm: the log's grad_norm column", t_training_log_grad_norm, TEST_SPAWNS);
    test_add("reliability/nan_policy stop and skip_step; the first non-finite layer named", t_nan_policy);
    test_add("reliability/out of memory at each allocation: an error, never a crash", t_out_of_memory);
    test_add_tagged("reliability/SIGTERM saves a checkpoint and says so", t_signal_saves, TEST_SPAWNS);
    test_add_tagged("reliability/stale temporary files removed at start", t_stale_temporaries, TEST_SPAWNS);
    test_add_tagged("reliability/output paths checked before training", t_outputs_checked_first, TEST_SPAWNS);
    test_add("reliability/corrupt gzip, over-long labels, FIFO datasets refused", t_bad_dataset_files);
    test_add("reliability/top-k: ties and NaN count against the prediction", t_metrics);
    test_add("reliability/non-finite weights and state are never saved", t_nonfinite_never_saved);
    test_add("reliability/version and state step range-checked", t_counts_checked);
    test_add_tagged("reliability/a diverging run stops naming the tensor", t_divergence_stops, TEST_SPAWNS);
}
