/* The public API of include/cdbnet.h, used the way a C program linking
 * libcdbnet.a would: load a cfg with overrides, train steps, save, load
 * into a second network, predict the same. */
#include <stdlib.h>
#include <unistd.h>

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
    cdb_trainer *ta = a ? cdb_trainer_new(a) : NULL;
    CHECK(a && ta, "load: %s", cdb_last_error());
    CHECK(cdb_network_width(a) == 5 && cdb_network_height(a) == 5 && cdb_network_channels(a) == 1 &&
              cdb_network_classes(a) == 3 && cdb_network_batch(a) == 4,
          "geometry");
    float images[4 * 25];
    int labels[4] = {0, 1, 2, 0};
    fill_normal(images, 4 * 25, 2, 1.f);
    float first = cdb_train_step(ta, images, labels), last = first;
    for (int i = 0; i < 20; i++) last = cdb_train_step(ta, images, labels);
    CHECK(last < first, "training on one batch must lower its loss (%g -> %g)", first, last);
    int bad[4] = {0, 1, 7, 0};
    CHECK(isnan(cdb_train_step(ta, images, bad)) && strstr(cdb_last_error(), "label 7"), "bad label: %s",
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
    cdb_trainer_free(ta);
    cdb_network_free(a);
    cdb_network_free(b);
    CHECK(!cdb_network_load("/nonexistent.cfg", NULL, 0) && strstr(cdb_last_error(), "/nonexistent.cfg"), "missing cfg");
}

/* examples/train_steps.c, built against libcdbnet.so alone (make
 * tests/embed_example): random steps and a prediction, then, with the real
 * Fashion-MNIST, a 3-step run through cdb_train with its progress callback
 * and cdb_evaluate. */
static void t_embedded_program(void)
{
    static char out[16384];
    CHECK(access("tests/embed_example", X_OK) == 0, "tests/embed_example is missing: make tests/embed_example");
    char cmd[1024], data[512] = "";
    if (have_fashion_mnist()) {
        snprintf(data, sizeof(data), "%s/embed.data", test_tmpdir());
        char backup[512];
        snprintf(backup, sizeof(backup), "%s/embed_backup", test_tmpdir());
        CHECK(write_fmnist_test_data(data, backup) == 0, "cannot write %s", data);
        snprintf(cmd, sizeof(cmd), "tests/embed_example cfg/smallcnn.cfg %s %s", data, backup);
    } else {
        snprintf(cmd, sizeof(cmd), "tests/embed_example cfg/smallcnn.cfg");
    }
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0, "%s: exit %d: %s", cmd, rc, out);
    float l1, l2, sum;
    const char *at = strstr(out, "random images, step 1: loss ");
    CHECK(at && sscanf(at, "random images, step 1: loss %f", &l1) == 1 && isfinite(l1), "no first step: %s", out);
    at = strstr(out, "random images, step 2: loss ");
    CHECK(at && sscanf(at, "random images, step 2: loss %f", &l2) == 1 && l2 < l1,
          "the second step on the same images lowers the loss: %s", out);
    at = strstr(out, "predicted: 10 classes, probabilities summing to ");
    CHECK(at && sscanf(at, "predicted: 10 classes, probabilities summing to %f", &sum) == 1 && fabsf(sum - 1) < 1e-3f,
          "prediction: %s", out);
    if (!data[0]) return;
    CHECK(strstr(out, "step 3/3: loss "), "the progress callback saw step 3 of 3: %s", out);
    CHECK(strstr(out, "validation at step 3: top-1 "), "the progress callback saw the validation: %s", out);
    CHECK(strstr(out, "evaluated 10000 images: top-1 "), "cdb_evaluate: %s", out);
}

/* The names of `nm` output lines for `file`, one per line, sorted. */
static int symbols(const char *nm_args, const char *file, char *out, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "nm %s %s | awk 'NF == 3 { print $3 }' | sort -u", nm_args, file);
    return run_command(cmd, out, n);
}

/* libcdbnet.so exports exactly the functions include/cdbnet.h declares;
 * every global symbol of libcdbnet.a starts with cdb_ (C++ ones, of the
 * CUDA files, demangled), so that both link beside any other library. */
static void t_exported_symbols(void)
{
    static char header[16384], so[16384], archive[262144];
    int rc = run_command("grep -o '\\bcdb_[a-z0-9_]*(' include/cdbnet.h | tr -d '(' | sort -u", header, sizeof(header));
    CHECK(rc == 0 && strstr(header, "cdb_network_load\n"), "the header's functions: %s", header);
    CHECK(access("libcdbnet.so", R_OK) == 0, "libcdbnet.so is missing: make libcdbnet.so");
    CHECK(symbols("-D --defined-only", "libcdbnet.so", so, sizeof(so)) == 0, "nm libcdbnet.so: %s", so);
    CHECK(!strcmp(so, header), "libcdbnet.so exports:\n%s\nthe header declares:\n%s", so, header);
    CHECK(symbols("-g -C --defined-only", "libcdbnet.a", archive, sizeof(archive)) == 0, "nm libcdbnet.a: %s", archive);
    int n = 0;
    for (char *save = NULL, *name = strtok_r(archive, "\n", &save); name; name = strtok_r(NULL, "\n", &save), n++) {
        /* AddressSanitizer's twin of each global (SANITIZE=1 builds) */
        if (!strncmp(name, "__odr_asan.", 11)) name += 11;
        CHECK(!strncmp(name, "cdb_", 4) || !strncmp(name, "DW.ref.__gxx_personality", 24),
              "libcdbnet.a exports '%s', which does not start with cdb_", name);
    }
    CHECK(n > 100, "only %d symbols in libcdbnet.a", n);
}

void register_api_tests(void)
{
    test_add("api/load, train, save, load, predict through cdbnet.h", t_public_api);
    test_add_tagged("api/a program on cdbnet.h alone, linked with libcdbnet.so, trains, evaluates and predicts",
                    t_embedded_program, TEST_SPAWNS);
    test_add_tagged("api/libcdbnet.so exports exactly cdbnet.h; every symbol of libcdbnet.a starts with cdb_",
                    t_exported_symbols, TEST_SPAWNS);
}
