/* The transformer layers against PyTorch: fixtures written by
 * scripts/make_fixtures.py (float64 reference) hold the weights, an input
 * batch and PyTorch's softmax output, loss, input gradient and parameter
 * gradients. cdbnet's float32 results must agree to a relative error
 * (max |ours - ref| / max |ref| per array) under 1e-4. */
#include <stdlib.h>

#include "test.h"

#define FIXTURE_TOL 1e-4

typedef struct {
    char name[32];
    long n;
    float *data;
} fixture_array;

typedef struct {
    fixture_array arrays[16];
    int n;
} fixture;

static int fixture_load(const char *path, fixture *f)
{
    memset(f, 0, sizeof(*f));
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    char magic[4];
    int32_t count;
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "CDBF", 4) || fread(&count, 4, 1, fp) != 1 || count > 16) {
        fclose(fp);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        int32_t len;
        int64_t n;
        fixture_array *a = &f->arrays[i];
        if (fread(&len, 4, 1, fp) != 1 || len <= 0 || len >= 32 || fread(a->name, 1, (size_t)len, fp) != (size_t)len ||
            fread(&n, 8, 1, fp) != 1 || n < 0 || n > (1 << 26)) {
            fclose(fp);
            return -1;
        }
        a->n = (long)n;
        a->data = malloc((size_t)n * sizeof(float) + 1);
        if (fread(a->data, sizeof(float), (size_t)n, fp) != (size_t)n) {
            fclose(fp);
            return -1;
        }
        f->n++;
    }
    fclose(fp);
    return 0;
}

static void fixture_free(fixture *f)
{
    for (int i = 0; i < f->n; i++) free(f->arrays[i].data);
}

static const fixture_array *get(const fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->arrays[i].name, name)) return &f->arrays[i];
    return NULL;
}

static const cdb_param *param_of(const cdb_network *net, const float *value)
{
    for (int i = 0; i < net->nparams; i++)
        if (net->params[i]->value == value) return net->params[i];
    return NULL;
}

static void check_fixture(const char *name)
{
    char cfg_path[256], bin_path[256];
    snprintf(cfg_path, sizeof(cfg_path), "tests/fixtures/%s.cfg", name);
    snprintf(bin_path, sizeof(bin_path), "tests/fixtures/%s.bin", name);
    fixture f;
    CHECK(fixture_load(bin_path, &f) == 0, "cannot read %s (run from the repository root)", bin_path);
    const fixture_array *weights = get(&f, "weights"), *input = get(&f, "input"), *labels = get(&f, "labels"),
                        *probs = get(&f, "probs"), *loss = get(&f, "loss"), *input_grad = get(&f, "input_grad"),
                        *grads = get(&f, "grads");
    CHECK(weights && input && labels && probs && loss && input_grad && grads, "%s: missing arrays", bin_path);
    cdb_network *net = cdb_network_load(cfg_path, NULL, 0);
    CHECK(net, "%s: %s", cfg_path, cdb_last_error());
    cdb_network_enable_input_gradient(net);
    long offset = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++) {
            long n = (long)net->layers[i].io_size[k];
            CHECK(offset + n <= weights->n, "fixture has fewer weights than the network");
            memcpy(net->layers[i].io[k], weights->data + offset, (size_t)n * sizeof(float));
            offset += n;
        }
    CHECK(offset == weights->n, "fixture has %ld weights, network %ld", weights->n, offset);
    CHECK(input->n == (long)net->batch * net->inputs && labels->n == net->batch, "input shape");
    memcpy(net->input, input->data, (size_t)input->n * sizeof(float));
    memset(net->truth, 0, (size_t)net->batch * net->classes * sizeof(float));
    for (int b = 0; b < net->batch; b++) net->truth[(size_t)b * net->classes + (int)labels->data[b]] = 1;
    for (int i = 0; i < net->nparams; i++) memset(net->params[i]->grad, 0, net->params[i]->size * sizeof(float));
    net->loss = 0;
    cdb_network_forward(net, 1);
    cdb_network_backward(net);
    double e;
    e = relative_error(cdb_network_output(net), probs->data, (size_t)probs->n);
    CHECK(e < FIXTURE_TOL, "%s: softmax output relative error %.3g", name, e);
    float our_loss = (float)(net->loss / net->batch);
    e = relative_error(&our_loss, loss->data, 1);
    CHECK(e < FIXTURE_TOL, "%s: loss %.7g vs PyTorch %.7g", name, our_loss, loss->data[0]);
    e = relative_error(net->input_delta, input_grad->data, (size_t)input_grad->n);
    CHECK(e < FIXTURE_TOL, "%s: input gradient relative error %.3g", name, e);
    offset = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++) {
            const cdb_param *p = param_of(net, net->layers[i].io[k]);
            CHECK(p, "%s: layer %d array %d is not a parameter", name, i, k);
            e = relative_error(p->grad, grads->data + offset, p->size);
            CHECK(e < FIXTURE_TOL, "%s: layer %d [%s] %s gradient relative error %.3g", name, i,
                  net->layers[i].ops->name, p->name, e);
            offset += (long)p->size;
        }
    cdb_network_free(net);
    fixture_free(&f);
}

static void t_layernorm(void) { check_fixture("layernorm"); }
static void t_attention(void) { check_fixture("attention"); }
static void t_encoder_block(void) { check_fixture("encoder_block"); }
static void t_vit(void) { check_fixture("vit_2block"); }

void register_fixture_tests(void)
{
    test_add_tagged("pytorch/layernorm forward and backward", t_layernorm, TEST_KERNELS);
    test_add_tagged("pytorch/attention forward and backward", t_attention, TEST_KERNELS);
    test_add_tagged("pytorch/encoder block forward and backward", t_encoder_block, TEST_KERNELS);
    test_add_tagged("pytorch/2-block ViT forward and backward", t_vit, TEST_KERNELS);
}
