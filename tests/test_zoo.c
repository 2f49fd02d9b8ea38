/* The model zoo (cfg/NAME_cifar.cfg, written by scripts/zoo_cfgs.py) against
 * the paper's reference definitions (kuangliu/pytorch-cifar): parameter
 * counts, forward outputs on the same weights (fixtures written by
 * scripts/zoo_fixtures.py), and one training step and one validation of
 * each through the command line on a small synthetic CIFAR file. */
#include <stdlib.h>
#include <sys/stat.h>

#include "test.h"

static const struct {
    const char *name;
    size_t reference_params;
} zoo[] = {
    /* sum(p.numel() for p in model.parameters()) of the reference models
     * (MobileNetV2(), EfficientNetB0(), ShuffleNetV2(1), DenseNet121(),
     * ResNet50(), PreActResNet18()), 10 classes. EfficientNetB0 counts
     * 3,599,686, of which 1,088 (the first block's expansion convolution
     * and batch norm) its forward pass never uses: the cfg leaves them out. */
    {"mobilenetv2", 2296922},
    {"efficientnet_b0", 3599686 - 1088},
    {"shufflenetv2", 1263854},
    {"densenet121", 6956298},
    {"resnet50", 23520842},
    {"preact_resnet18", 11171146},
};
#define NZOO ((int)(sizeof(zoo) / sizeof(zoo[0])))

static void t_parameter_counts(void)
{
    for (int m = 0; m < NZOO; m++) {
        char path[256];
        snprintf(path, sizeof(path), "cfg/%s_cifar.cfg", zoo[m].name);
        const char *ov[] = {"net.batch=1"};
        cdb_network *net = cdb_network_load(path, ov, 1);
        CHECK(net, "%s: %s", path, cdb_last_error());
        size_t count = 0;
        for (int i = 0; i < net->nparams; i++) count += net->params[i]->size;
        int classes = net->classes;
        cdb_network_free(net);
        CHECK(count == zoo[m].reference_params, "%s: %zu parameters, the reference has %zu", path, count,
              zoo[m].reference_params);
        CHECK(classes == 10, "%s: %d classes", path, classes);
        /* CIFAR-100 by -set: the classifier follows [net] classes. */
        const char *ov100[] = {"net.batch=1", "net.classes=100"};
        net = cdb_network_load(path, ov100, 2);
        CHECK(net && net->classes == 100, "%s with net.classes=100: %s", path, net ? "wrong classes" : cdb_last_error());
        size_t count100 = 0;
        for (int i = 0; i < net->nparams; i++) count100 += net->params[i]->size;
        const cdb_layer *fc = &net->layers[net->n - 2];
        size_t features = (size_t)fc->inputs;
        cdb_network_free(net);
        CHECK(count100 == count + 90 * (features + 1), "%s: CIFAR-100 adds 90 outputs of %zu weights and a bias", path,
              features);
    }
}

/* The README's zoo table: each row's parameters and forward multiply-adds
 * (3 significant digits) are what cdbnet counts. */
static void t_readme_table(void)
{
    FILE *fp = fopen("README.md", "r");
    CHECK(fp, "README.md (run from the repository root)");
    char line[1024];
    int rows = 0;
    while (fgets(line, sizeof(line), fp)) {
        char cfg[256], model[64], params[64];
        double gmacs;
        if (sscanf(line, "| `%255[^`]` | %63[^|] | %63[^ |] | %lf G |", cfg, model, params, &gmacs) != 4) continue;
        if (!strstr(cfg, "_cifar.cfg")) continue;
        size_t listed = 0;
        for (const char *c = params; *c; c++)
            if (*c >= '0' && *c <= '9') listed = listed * 10 + (size_t)(*c - '0');
        const char *ov[] = {"net.batch=1"};
        cdb_network *net = cdb_network_load(cfg, ov, 1);
        if (!net) {
            fclose(fp);
            CHECK(0, "README names %s: %s", cfg, cdb_last_error());
        }
        size_t count = 0, macs = 0;
        for (int i = 0; i < net->nparams; i++) count += net->params[i]->size;
        for (int i = 0; i < net->n; i++) macs += net->layers[i].flops;
        cdb_network_free(net);
        if (count != listed || fabs(gmacs - macs / 1e9) > 0.006 * (macs / 1e9)) {
            fclose(fp);
            CHECK(0, "README: %s has %zu parameters and %.4g G multiply-adds; the table says %zu and %g G", cfg, count,
                  macs / 1e9, listed, gmacs);
        }
        rows++;
    }
    fclose(fp);
    CHECK(rows == NZOO, "the README's zoo table has %d rows, the zoo %d cfgs", rows, NZOO);
}

/* The hash both sides use to fill tensors (scripts/zoo_fixtures.py). */
static uint32_t lowbias32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static void hashed(uint32_t tensor, float *out, size_t n, float offset, float scale)
{
    uint32_t base = tensor * 0x9e3779b1u;
    for (size_t j = 0; j < n; j++) {
        uint32_t h = lowbias32(base + (uint32_t)j * 0x85ebca77u);
        float v = (float)((int32_t)(h >> 8) - (1 << 23)) / (float)(1 << 23);
        out[j] = offset + scale * v;
    }
}

#define INPUT_TENSOR 100000u

static void check_forward(const char *name)
{
    char cfg_path[256], bin_path[256];
    snprintf(cfg_path, sizeof(cfg_path), "cfg/%s_cifar.cfg", name);
    snprintf(bin_path, sizeof(bin_path), "tests/fixtures/zoo_%s.bin", name);
    FILE *fp = fopen(bin_path, "rb");
    CHECK(fp, "cannot read %s (run from the repository root)", bin_path);
    /* "CDBF", count, then per array: name length, name, count, floats. */
    float *arrays[3] = {NULL, NULL, NULL};
    int64_t sizes[3] = {0, 0, 0};
    char magic[4];
    int32_t count = 0;
    int ok = fread(magic, 4, 1, fp) == 1 && !memcmp(magic, "CDBF", 4) && fread(&count, 4, 1, fp) == 1 && count == 3;
    for (int a = 0; ok && a < 3; a++) {
        int32_t len;
        char nm[32];
        ok = fread(&len, 4, 1, fp) == 1 && len > 0 && len < 32 && fread(nm, 1, (size_t)len, fp) == (size_t)len &&
             fread(&sizes[a], 8, 1, fp) == 1 && sizes[a] > 0 && sizes[a] < (1 << 20);
        if (ok) {
            arrays[a] = malloc((size_t)sizes[a] * sizeof(float));
            ok = fread(arrays[a], sizeof(float), (size_t)sizes[a], fp) == (size_t)sizes[a];
        }
    }
    fclose(fp);
    const float *offsets = arrays[0], *scales = arrays[1], *logits = arrays[2];
    const char *ov[] = {"net.batch=2"};
    cdb_network *net = ok ? cdb_network_load(cfg_path, ov, 1) : NULL;
    if (!ok || !net) {
        for (int a = 0; a < 3; a++) free(arrays[a]);
        CHECK(0, "%s: %s", bin_path, ok ? cdb_last_error() : "malformed fixture");
    }
    uint32_t tensor = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++, tensor++)
            if (tensor < (uint32_t)sizes[0])
                hashed(tensor, net->layers[i].io[k], net->layers[i].io_size[k], offsets[tensor], scales[tensor]);
    int tensors_match = tensor == (uint32_t)sizes[0] && sizes[1] == sizes[0] && sizes[2] == 2 * net->classes;
    double e = 1;
    if (tensors_match) {
        hashed(INPUT_TENSOR, net->input, (size_t)2 * net->inputs, 0.f, 1.f);
        cdb_network_forward(net, 0);
        e = relative_error(net->layers[net->n - 2].output, logits, (size_t)sizes[2]);
    }
    for (int a = 0; a < 3; a++) free(arrays[a]);
    cdb_network_free(net);
    CHECK(tensors_match, "%s: the network has %u weights-file tensors, the fixture %lld", name, tensor,
          (long long)sizes[0]);
    CHECK(e < 1e-4, "%s: logits relative error %.3g against the reference definition", name, e);
}

static void t_forward_mobilenetv2(void) { check_forward("mobilenetv2"); }
static void t_forward_efficientnet_b0(void) { check_forward("efficientnet_b0"); }
static void t_forward_shufflenetv2(void) { check_forward("shufflenetv2"); }
static void t_forward_densenet121(void) { check_forward("densenet121"); }
static void t_forward_resnet50(void) { check_forward("resnet50"); }
static void t_forward_preact_resnet18(void) { check_forward("preact_resnet18"); }

/* A CIFAR-10 binary file of n records: label byte, then 3x32x32 pixels. */
static void write_cifar(const char *path, int n, int seed)
{
    FILE *fp = fopen(path, "wb");
    for (int i = 0; i < n; i++) {
        uint8_t rec[1 + 3072];
        rec[0] = (uint8_t)((i + seed) % 10);
        for (int j = 1; j < (int)sizeof(rec); j++) rec[j] = (uint8_t)(lowbias32((uint32_t)(seed * 100000 + i * 4096 + j)) >> 24);
        fwrite(rec, sizeof(rec), 1, fp);
    }
    fclose(fp);
}

static void t_train_step_and_valid(void)
{
    char dir[512], data[600], train[600], valid[600], cmd[4096], out[16384];
    snprintf(dir, sizeof(dir), "%s/zoo", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(train, sizeof(train), "%s/train.bin", dir);
    snprintf(valid, sizeof(valid), "%s/test.bin", dir);
    snprintf(data, sizeof(data), "%s/cifar.data", dir);
    write_cifar(train, 8, 1);
    write_cifar(valid, 4, 2);
    FILE *fp = fopen(data, "w");
    fprintf(fp, "classes=10\nformat=cifar10\ntrain=%s\nvalid=%s\n", train, valid);
    fclose(fp);
    for (int m = 0; m < NZOO; m++) {
        const char *name = zoo[m].name;
        snprintf(cmd, sizeof(cmd),
                 "./cdbnet train cfg/%s_cifar.cfg -data %s -set net.batch=4 -set net.max_batches=1 -backup %s "
                 "-log none -threads 2 -quiet && ./cdbnet valid cfg/%s_cifar.cfg %s/%s_cifar_final.weights -data %s "
                 "-set net.batch=4 -threads 2",
                 name, data, dir, name, dir, name, data);
        int rc = run_command(cmd, out, sizeof(out));
        CHECK(rc == 0, "%s: exit %d: %s", name, rc, out);
        CHECK(strstr(out, "top-1") && strstr(out, "4 images"), "%s: no validation result: %s", name, out);
    }
}

void register_zoo_tests(void)
{
    test_add_tagged("zoo/parameter counts equal the reference definitions", t_parameter_counts, TEST_KERNELS);
    test_add_tagged("zoo/the README's table has each cfg's parameters and multiply-adds", t_readme_table, TEST_KERNELS);
    test_add_tagged("zoo/MobileNetV2 forward equals the reference", t_forward_mobilenetv2, TEST_KERNELS);
    test_add_tagged("zoo/EfficientNet-B0 forward equals the reference", t_forward_efficientnet_b0, TEST_KERNELS);
    test_add_tagged("zoo/ShuffleNetV2 forward equals the reference", t_forward_shufflenetv2, TEST_KERNELS);
    test_add_tagged("zoo/DenseNet-121 forward equals the reference", t_forward_densenet121, TEST_KERNELS | TEST_SLOW);
    test_add_tagged("zoo/ResNet-50 forward equals the reference", t_forward_resnet50, TEST_KERNELS | TEST_SLOW);
    test_add_tagged("zoo/PreAct-ResNet-18 forward equals the reference", t_forward_preact_resnet18, TEST_KERNELS);
    test_add_tagged("zoo/each cfg trains a step and validates (CLI)", t_train_step_and_valid, TEST_KERNELS | TEST_SPAWNS | TEST_SLOW);
}
