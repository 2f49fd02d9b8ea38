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
    network_train_step(a, images, labels); /* moves BN running statistics too */
    char path[512];
    path_in_tmp(path, sizeof(path), "rt.weights");
    CHECK(cdb_weights_save(a, path) == 0, "save: %s", cdb_last_error());
    CHECK(cdb_weights_load(b, path) == 0, "load: %s", cdb_last_error());
    CHECK(b->seen == 2, "images seen %llu", (unsigned long long)b->seen);
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
    cdb_network_free(a);
    cdb_network_free(b);
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
    cdb_network_free(other);
    cdb_network_free(a);
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
    cdb_network_free(a);
}

void register_weights_tests(void)
{
    test_add("weights/round trip in Darknet layout", t_round_trip);
    test_add("weights/truncated, short and mismatched files rejected", t_truncated_and_mismatched);
    test_add("weights/save is atomic", t_atomic_save);
}
