/* Layer behaviour beyond gradients: a convolution whose batch is split into
 * several GEMM chunks gives what it gives one image at a time. */
#include <stdlib.h>

#include "fastmath.h"
#include "test.h"

#define CHUNK_CFG "[net]\nbatch=%d\nwidth=64\nheight=64\nchannels=16\n" \
                  "[convolutional]\nfilters=16\nsize=3\npad=1\nactivation=linear\n[avgpool]\n[softmax]\n"

static void t_conv_chunks(void)
{
    char text[512];
    snprintf(text, sizeof(text), CHUNK_CFG, 8);
    cdb_network *all = net_from_text(text);
    snprintf(text, sizeof(text), CHUNK_CFG, 1);
    cdb_network *one = net_from_text(text);
    CHECK(all && one, "build");
    CHECK(all->workspace_floats < (size_t)8 * (16 * 9 + 16) * 64 * 64, "the batch of 8 must be split into chunks");
    network_enable_input_gradient(all);
    network_enable_input_gradient(one);
    size_t per_image = (size_t)all->inputs;
    fill_normal(all->input, 8 * per_image, 3, 1.f);
    for (int b = 0; b < 8; b++) all->truth[b * 16 + b] = 1;
    all->loss = 0;
    network_forward(all, 1);
    network_backward(all);
    cdb_layer *la = &all->layers[0], *lo = &one->layers[0];
    for (int b = 0; b < 8; b++) {
        memcpy(one->input, all->input + b * per_image, per_image * sizeof(float));
        memset(one->truth, 0, 16 * sizeof(float));
        one->truth[b] = 1;
        network_forward(one, 1);
        network_backward(one);
        for (int i = 0; i < lo->outputs; i++)
            CHECK(fabsf(lo->output[i] - la->output[(size_t)b * la->outputs + i]) <= 1e-5f * (1 + fabsf(lo->output[i])),
                  "image %d output %d differs", b, i);
        for (size_t i = 0; i < per_image; i++)
            CHECK(fabsf(one->input_delta[i] - 8 * all->input_delta[b * per_image + i]) <= 1e-5f * (1 + fabsf(one->input_delta[i])),
                  "image %d input gradient %zu: %g vs %g", b, i, one->input_delta[i], 8 * all->input_delta[b * per_image + i]);
    }
    /* The loss is a mean over the batch: the batch-8 gradients are 1/8 of the single-image ones. */
    for (size_t i = 0; i < la->params[0].size; i++)
        CHECK(fabsf(la->params[0].grad[i] * 8 - lo->params[0].grad[i]) <= 1e-4f * (1 + fabsf(lo->params[0].grad[i])),
              "weight gradient %zu: %g vs %g", i, la->params[0].grad[i] * 8, lo->params[0].grad[i]);
    cdb_network_free(all);
    cdb_network_free(one);
}

void register_layer_tests(void) { test_add("layers/convolution chunks equal per-image results", t_conv_chunks); }

/* The vectorised exp and erf keep their documented accuracy. */
static void t_fast_math(void)
{
    double worst_exp = 0, worst_erf = 0;
    for (float x = -87.f; x < 88.f; x += 0.0007f) {
        double ref = exp((double)x);
        worst_exp = fmax(worst_exp, fabs(fast_expf(x) - ref) / ref);
    }
    for (float x = -7.f; x < 7.f; x += 0.00003f) worst_erf = fmax(worst_erf, fabs(fast_erff(x) - erf((double)x)));
    CHECK(worst_exp < 2e-7, "fast_expf relative error %.3g", worst_exp);
    CHECK(worst_erf < 4e-7, "fast_erff absolute error %.3g", worst_erf);
    CHECK(fast_erff(0.f) == 0.f && fast_expf(-200.f) >= 0.f && fast_expf(-200.f) < 1e-37f, "edge values");
}

void register_fastmath_tests(void) { test_add("layers/fast exp and erf accuracy", t_fast_math); }
