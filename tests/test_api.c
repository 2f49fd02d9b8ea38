/* The public API of include/cdbnet.h, used the way a C program linking
 * libcdbnet.a would: load a cfg with overrides, train steps, save, load
 * into a second network, predict the same. */
#include <stdlib.h>

#include "cdbnet.h"
#include "test.h"

static void t_public_api(void)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "%s/api.cfg", test_tmpdir());
    FILE *f = fopen(cfg, "w");
    fputs("[net]\nbatch=4\nwidth=5\nheight=5\nchannels=1\nlearning_rate=0.1\nmax_batches=10\n"
          "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
          "[connected]\noutput=3\nactivation=linear\n[softmax]\n",
          f);
    fclose(f);
    const char *overrides[] = {"net.seed=11"};
    cdb_network *a = cdb_network_load(cfg, overrides, 1);
    CHECK(a, "load: %s", cdb_last_error());
    CHECK(cdb_network_width(a) == 5 && cdb_network_height(a) == 5 && cdb_network_channels(a) == 1 &&
              cdb_network_classes(a) == 3 && cdb_network_batch(a) == 4,
          "geometry");
    float images[4 * 25];
    int labels[4] = {0, 1, 2, 0};
    fill_normal(images, 4 * 25, 2, 1.f);
    float first = cdb_train_step(a, images, labels), last = first;
    for (int i = 0; i < 20; i++) last = cdb_train_step(a, images, labels);
    CHECK(last < first, "training on one batch must lower its loss (%g -> %g)", first, last);
    int bad[4] = {0, 1, 7, 0};
    CHECK(isnan(cdb_train_step(a, images, bad)) && strstr(cdb_last_error(), "label 7"), "bad label: %s",
          cdb_last_error());
    char weights[512];
    snprintf(weights, sizeof(weights), "%s/api.weights", test_tmpdir());
    CHECK(cdb_weights_save(a, weights) == 0, "save: %s", cdb_last_error());
    cdb_network *b = cdb_network_load(cfg, NULL, 0);
    CHECK(b && cdb_weights_load(b, weights) == 0, "load weights: %s", cdb_last_error());
    float pa[4 * 3], pb[4 * 3];
    CHECK(cdb_predict(a, images, 4, pa) == 0 && cdb_predict(b, images, 4, pb) == 0, "predict");
    CHECK(!memcmp(pa, pb, sizeof(pa)), "the loaded network predicts differently");
    float sum = pa[0] + pa[1] + pa[2];
    CHECK(fabsf(sum - 1.f) < 1e-5f, "probabilities sum to %g", sum);
    cdb_network_free(a);
    cdb_network_free(b);
    CHECK(!cdb_network_load("/nonexistent.cfg", NULL, 0) && strstr(cdb_last_error(), "/nonexistent.cfg"), "missing cfg");
}

void register_api_tests(void) { test_add("api/load, train, save, load, predict through cdbnet.h", t_public_api); }
