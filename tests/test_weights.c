/* Weights files: round trip, Darknet layout, truncated and mismatched files
 * rejected with a clear message, atomic save. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

#define CFG                                                                                                   \
    "[net]\nbatch=2\nwidth=6\nheight=6\nchannels=1\nseed=%d\n"                                                \
    "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"                         \
    "[convolutional]\nfilters=2\nsize=1\nactivation=leaky\n"                                                  \
    "[connected]\noutput=4\nactivation=linear\n[softmax]\n"

static cdb_network *seeded(int seed)
{
    char text[1024];
    snprintf(text, sizeof(text), CFG, seed);
    return net_from_text(text);
}

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", test_tmpdir(), name); }

static void t_round_trip(void)
{
    cdb_network *a = seeded(1), *b = seeded(2);
    CHECK(a && b, "build");
    float images[2 * 36];
    int labels[2] = {1, 3};
    fill_normal(images, 72, 3, 1.f);
    cdb_trainer_run_step(trainer_of(a), images, labels); /* moves BN running statistics too */
    char path[512];
    path_in_tmp(path, sizeof(path), "rt.weights");
    CHECK(cdb_weights_save(a, path) == 0, "save: %s", cdb_last_error());
    CHECK(cdb_weights_load(b, path) == 0, "load: %s", cdb_last_error());
    CHECK(b->images_seen == 2, "images seen %llu", (unsigned long long)b->images_seen);
    float pa[8], pb[8];
    cdb_predict(a, images, 2, pa);
    cdb_predict(b, images, 2, pb);
    CHECK(!memcmp(pa, pb, sizeof(pa)), "predictions differ after a round trip");
    struct stat st;
    stat(path, &st);
    /* header 20 bytes; conv+bn: 3 biases, 3 scales, 3 mean, 3 var, 27 weights;
     * conv: 2 biases, 6 weights; connected: 4 biases, 4*72 weights. */
    long floats = 3 * 4 + 27 + 2 + 6 + 4 + 4 * 72;
    CHECK(st.st_size == 20 + 4 * floats, "file size %ld, Darknet layout needs %ld", (long)st.st_size, 20 + 4 * floats);
    FILE *fp = fopen(path, "rb");
    int32_t header[3];
    float first[4];
    CHECK(fread(header, 4, 3, fp) == 3 && fseek(fp, 20, SEEK_SET) == 0 && fread(first, 4, 4, fp) == 4, "read back");
    fclose(fp);
    CHECK(header[0] == 0 && header[1] == 2, "version %d.%d", header[0], header[1]);
    CHECK(first[3] == a->layers[0].params[2].value[0], "BN scales must follow the biases (Darknet order)");
    free_net(a);
    free_net(b);
}

static void t_truncated_and_mismatched(void)
{
    cdb_network *a = seeded(1);
    CHECK(a, "build");
    char path[512], cut[512];
    path_in_tmp(path, sizeof(path), "full.weights");
    path_in_tmp(cut, sizeof(cut), "cut.weights");
    CHECK(cdb_weights_save(a, path) == 0, "save");
    struct stat st;
    stat(path, &st);
    FILE *in = fopen(path, "rb"), *out = fopen(cut, "wb");
    char *buf = malloc((size_t)st.st_size);
    CHECK(fread(buf, 1, (size_t)st.st_size, in) == (size_t)st.st_size, "read");
    fwrite(buf, 1, (size_t)st.st_size - 4, out);
    fclose(in);
    fclose(out);
    CHECK(cdb_weights_load(a, cut) != 0, "a truncated file must be rejected");
    CHECK(strstr(cdb_last_error(), "cut.weights") && strstr(cdb_last_error(), "truncated"), "message: %s",
          cdb_last_error());
    out = fopen(cut, "wb");
    fwrite(buf, 1, 10, out);
    fclose(out);
    CHECK(cdb_weights_load(a, cut) != 0 && strstr(cdb_last_error(), "header"), "short header: %s", cdb_last_error());
    free(buf);
    CHECK(cdb_weights_load(a, "/nonexistent/x.weights") != 0 && strstr(cdb_last_error(), "/nonexistent/x.weights"),
          "missing file named");
    cdb_network *other = net_from_text("[net]\nbatch=2\nwidth=6\nheight=6\nchannels=1\n[connected]\noutput=4\n[softmax]\n");
    CHECK(other, "build other");
    CHECK(cdb_weights_load(other, path) != 0 && strstr(cdb_last_error(), "larger network"), "size mismatch: %s",
          cdb_last_error());
    free_net(other);
    free_net(a);
}

static void t_atomic_save(void)
{
    cdb_network *a = seeded(1);
    CHECK(a, "build");
    char path[512];
    path_in_tmp(path, sizeof(path), "atomic.weights");
    CHECK(cdb_weights_save(a, path) == 0 && cdb_weights_save(a, path) == 0, "save twice");
    DIR *d = opendir(test_tmpdir());
    struct dirent *e;
    int temps = 0;
    while ((e = readdir(d))) temps += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    CHECK(temps == 0, "temporary files left behind");
    CHECK(cdb_weights_save(a, "/nonexistent-dir/w.weights") != 0 && strstr(cdb_last_error(), "/nonexistent-dir"),
          "unwritable path reported: %s", cdb_last_error());
    free_net(a);
}

/* Weights of a (copy of a) network, as one array */
static int same_weights(const cdb_network *a, const cdb_network *b)
{
    for (int i = 0; i < a->nparams; i++)
        if (memcmp(a->params[i]->value, b->params[i]->value, a->params[i]->size * sizeof(float))) return 0;
    return 1;
}

/* A checkpoint is one unit: killed between writing the new state and the
 * new weights, the old weights still find their own state (FILE.state.prev);
 * the pair written completely loads FILE.state. */
static void t_checkpoint_pair(void)
{
    const char *text = "[net]\nbatch=2\nwidth=6\nheight=6\nchannels=1\nmomentum=0.9\nlearning_rate=0.1\n"
                       "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n";
    cdb_network *a = net_from_text(text), *b = net_from_text(text);
    CHECK(a && b, "build");
    float images[2 * 36];
    int labels[2] = {1, 3};
    fill_normal(images, 2 * 36, 3, 1.f);
    char path[512], state[600], prev[608];
    path_in_tmp(path, sizeof(path), "pair.weights");
    snprintf(state, sizeof(state), "%s.state", path);
    snprintf(prev, sizeof(prev), "%s.prev", state);
    remove(state);
    remove(prev);
    cdb_trainer_run_step(trainer_of(a), images, labels);
    CHECK(cdb_checkpoint_save(trainer_of(a), path) == 0, "save: %s", cdb_last_error());
    CHECK(access(state, F_OK) == 0 && access(prev, F_OK) != 0, "the first save writes FILE.state only");
    /* the next save, killed after its state and before its weights */
    cdb_trainer_run_step(trainer_of(a), images, labels);
    CHECK(rename(state, prev) == 0 && cdb_state_save(trainer_of(a), state) == 0, "the first half of a save");
    CHECK(cdb_weights_load(b, path) == 0, "load: %s", cdb_last_error());
    trainer_of(b)->step = (int)(b->images_seen / (uint64_t)b->batch);
    CHECK(trainer_of(b)->step == 1, "the weights on disk are those of step 1, not %d", trainer_of(b)->step);
    int which = cdb_checkpoint_load_state(trainer_of(b), path);
    CHECK(which == 2, "the old weights should pair with FILE.state.prev (got %d: %s)", which, cdb_last_error());
    /* continuing from there gives the run that was not interrupted */
    cdb_trainer_run_step(trainer_of(b), images, labels);
    CHECK(same_weights(a, b), "resumed from the kept pair, step 2 differs from the uninterrupted run");
    /* a complete save: FILE.state */
    CHECK(cdb_checkpoint_save(trainer_of(a), path) == 0, "save: %s", cdb_last_error());
    cdb_network *c = net_from_text(text);
    CHECK(c && cdb_weights_load(c, path) == 0, "load");
    trainer_of(c)->step = (int)(c->images_seen / (uint64_t)c->batch);
    CHECK(cdb_checkpoint_load_state(trainer_of(c), path) == 1, "a complete pair loads FILE.state: %s", cdb_last_error());
    /* a state of neither step is an error naming both files */
    remove(prev);
    CHECK(rename(state, prev) == 0 && cdb_state_save(trainer_of(b), state) == 0, "two states of other steps");
    trainer_of(c)->step = 7;
    CHECK(cdb_checkpoint_load_state(trainer_of(c), path) == -1 && strstr(cdb_last_error(), state) && strstr(cdb_last_error(), prev),
          "message: %s", cdb_last_error());
    free_net(a);
    free_net(b);
    free_net(c);
}

/* Darknet's reading of a file's header and statistics: a major (or minor)
 * version of 1000 counts images in 32 bits, as Darknet reads it; a
 * negative rolling variance is refused, naming the layer. */
static void t_version_1000_and_negative_variance(void)
{
    const char *cfg = "[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\n"
                      "[convolutional]\nfilters=2\nsize=1\nbatch_normalize=1\nactivation=relu\n"
                      "[connected]\noutput=2\nactivation=linear\n[softmax]\n";
    cdb_network *net = net_from_text(cfg);
    CHECK(net, "build");
    net->images_seen = 1234;
    char path[512], v1000[600], negative[600];
    snprintf(path, sizeof(path), "%s/v02.weights", test_tmpdir());
    snprintf(v1000, sizeof(v1000), "%s/v1000.weights", test_tmpdir());
    snprintf(negative, sizeof(negative), "%s/negvar.weights", test_tmpdir());
    CHECK(cdb_weights_save(net, path) == 0, "save: %s", cdb_last_error());
    FILE *f = fopen(path, "rb");
    CHECK(f, "open");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CHECK(n > 20 && n < sizeof(buf), "%zu bytes", n);
    /* version 1000.0.0: the same arrays after a 4-byte images-seen count */
    int32_t header[3] = {1000, 0, 0};
    uint32_t seen32 = 1234;
    f = fopen(v1000, "wb");
    CHECK(f, "open");
    fwrite(header, sizeof(header), 1, f);
    fwrite(&seen32, 4, 1, f);
    fwrite(buf + 20, 1, n - 20, f);
    fclose(f);
    cdb_network *b = net_from_text(cfg);
    CHECK(b, "build");
    CHECK(cdb_weights_load(b, v1000) == 0 && b->images_seen == 1234, "version 1000 (seen %llu): %s",
          (unsigned long long)b->images_seen, cdb_last_error());
    /* conv with batch norm: biases, scales, rolling mean, rolling variance (each 2 floats), weights */
    float minus = -1.f;
    memcpy(buf + 20 + 6 * sizeof(float), &minus, sizeof(float));
    f = fopen(negative, "wb");
    CHECK(f, "open");
    fwrite(buf, 1, n, f);
    fclose(f);
    CHECK(cdb_weights_load(b, negative) != 0 && strstr(cdb_last_error(), "rolling variance") &&
              strstr(cdb_last_error(), "negative") && strstr(cdb_last_error(), "layer 0"),
          "a negative variance: %s", cdb_last_error());
    free_net(b);
    free_net(net);
}

void register_weights_tests(void)
{
    test_add("weights/a checkpoint is one unit: weights pair with their own state", t_checkpoint_pair);
    test_add("weights/round trip in Darknet layout", t_round_trip);
    test_add("weights/truncated, short and mismatched files rejected", t_truncated_and_mismatched);
    test_add("weights/save is atomic", t_atomic_save);
    test_add("weights/version 1000 counts images in 32 bits; a negative rolling variance is refused",
             t_version_1000_and_negative_variance);
}
