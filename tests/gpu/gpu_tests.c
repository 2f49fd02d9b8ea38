/* GPU suite (make GPU=1 [CUDNN=1] gpu-test): every layer type's forward
 * output, input gradient and parameter gradients on the GPU against the CPU
 * code on the same random data, then whole training steps of smallcnn and
 * vit_micro with ChannelDropBack selecting every tensor: the masks on the
 * device must be the host's, and the weights must agree after 3 steps.
 *
 * Tolerances: one forward/backward, relative error (max |gpu - cpu| /
 * max |cpu| per array) under 1e-4, with cuBLAS in full FP32 (no TF32) and
 * cuDNN in FMA math (no TF32); only the order of the sums differs. After 3
 * training steps under 1e-3: the sums' order differences compound through
 * the updates and batch-norm statistics. */
#include <stdlib.h>

#include "cuda_utils.h"
#include "gemm.h"
#include "test.h"

#define STEP_TOL 1e-4
#define TRAIN_TOL 1e-3

static void set_data(cdb_network *net)
{
    fill_normal(net->input, (size_t)net->mini_batch * net->inputs, 11, 1.f);
    cdb_rng rng = rng_stream(5, 5, 5);
    for (int b = 0; b < net->mini_batch; b++) {
        float sum = 0, *t = net->truth + (size_t)b * net->classes;
        for (int k = 0; k < net->classes; k++) sum += t[k] = 0.05f + rng_uniform(&rng);
        for (int k = 0; k < net->classes; k++) t[k] /= sum;
    }
}

static void forward_backward(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) memset(net->params[i]->grad, 0, net->params[i]->size * sizeof(float));
    if (net->gpu) {
        for (int i = 0; i < net->nparams; i++) gpu_zero(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
        gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
    }
    net->loss = 0;
    network_forward(net, 1);
    network_backward(net);
    if (net->gpu)
        for (int i = 0; i < net->nparams; i++) gpu_pull(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
}

/* One forward and backward of cfg_text on the CPU and on the GPU. */
static void compare_layers(const char *cfg_text)
{
    CHECK(cuda_device_count() > 0, "no CUDA device");
    cdb_network *cpu = net_from_text(cfg_text), *gpu = net_from_text(cfg_text);
    CHECK(cpu && gpu, "build");
    network_enable_input_gradient(cpu);
    network_enable_input_gradient(gpu);
    CHECK(gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    set_data(cpu);
    set_data(gpu);
    forward_backward(cpu);
    forward_backward(gpu);
    double e = relative_error(network_output(gpu), network_output(cpu), (size_t)cpu->mini_batch * cpu->classes);
    CHECK(e < STEP_TOL, "output relative error %.3g", e);
    CHECK(fabs(gpu->loss - cpu->loss) <= STEP_TOL * fabs(cpu->loss), "loss %g vs %g", gpu->loss, cpu->loss);
    e = relative_error(gpu->input_delta, cpu->input_delta, (size_t)cpu->mini_batch * cpu->inputs);
    CHECK(e < STEP_TOL, "input gradient relative error %.3g", e);
    for (int i = 0; i < cpu->nparams; i++) {
        e = relative_error(gpu->params[i]->grad, cpu->params[i]->grad, cpu->params[i]->size);
        CHECK(e < STEP_TOL, "param %d (%s) gradient relative error %.3g", i, cpu->params[i]->name, e);
    }
    /* Batch-norm running statistics and every other weights-file array. */
    network_sync_to_host(gpu);
    for (int l = 0; l < cpu->n; l++)
        for (int k = 0; k < cpu->layers[l].nio; k++) {
            e = relative_error(gpu->layers[l].io[k], cpu->layers[l].io[k], cpu->layers[l].io_size[k]);
            CHECK(e < STEP_TOL, "layer %d array %d relative error %.3g", l, k, e);
        }
    cdb_network_free(cpu);
    cdb_network_free(gpu);
}

#define HEAD "[net]\nbatch=4\nwidth=9\nheight=8\nchannels=3\n"
#define TAIL "[connected]\noutput=5\nactivation=linear\n[softmax]\n"
#define SEQ "[net]\nbatch=3\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=12\nsize=2\nstride=2\nactivation=linear\n[tokens]\n"

#define LAYER_TEST(fn, cfg) \
    static void fn(void) { compare_layers(cfg); }
LAYER_TEST(t_conv, HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=leaky\n" TAIL)
LAYER_TEST(t_conv_stride, HEAD "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=gelu\n" TAIL)
LAYER_TEST(t_conv_bn, HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n" TAIL)
LAYER_TEST(t_conv_groups, HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=3\nactivation=swish\n" TAIL)
LAYER_TEST(t_conv_1x1, HEAD "[convolutional]\nfilters=4\nsize=1\nactivation=mish\n" TAIL)
LAYER_TEST(t_connected, HEAD "[connected]\noutput=7\nactivation=tanh\n" TAIL)
LAYER_TEST(t_connected_bn, HEAD "[connected]\noutput=7\nbatch_normalize=1\nactivation=logistic\n" TAIL)
LAYER_TEST(t_batchnorm, HEAD "[batchnorm]\n" TAIL)
LAYER_TEST(t_maxpool, HEAD "[maxpool]\nsize=2\nstride=2\n" TAIL)
LAYER_TEST(t_maxpool3, HEAD "[maxpool]\nsize=3\nstride=1\n" TAIL)
LAYER_TEST(t_avgpool, HEAD "[avgpool]\n" TAIL)
LAYER_TEST(t_shortcut_route, HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                                  "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
                                  "[shortcut]\nfrom=-2\nactivation=hardswish\n[route]\nlayers=-1,-2\n" TAIL)
LAYER_TEST(t_local_avgpool, HEAD "[local_avgpool]\nsize=3\nstride=2\n" TAIL)
LAYER_TEST(t_scale_channels, HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n[avgpool]\n"
                                  "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[scale_channels]\nfrom=-3\n" TAIL)
LAYER_TEST(t_shuffle_split, HEAD "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[shuffle]\ngroups=3\n"
                                 "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[route]\nlayers=-1,-3\n" TAIL)
LAYER_TEST(t_dropout, HEAD "[dropout]\nprobability=0.4\n" TAIL)
LAYER_TEST(t_activations, HEAD "[connected]\noutput=6\nactivation=relu6\n[connected]\noutput=6\nactivation=leaky\n" TAIL)
LAYER_TEST(t_tokens_cls_pos, SEQ "[cls_token]\n[pos_embed]\n[token_pool]\nmode=cls\n" TAIL)
LAYER_TEST(t_layernorm, SEQ "[layernorm]\n[token_pool]\nmode=mean\n" TAIL)
LAYER_TEST(t_attention, SEQ "[cls_token]\n[attention]\nheads=3\ninit_std=0.2\n[token_pool]\nmode=mean\n" TAIL)
LAYER_TEST(t_block, SEQ "[cls_token]\n[pos_embed]\n[layernorm]\n[attention]\nheads=2\n[shortcut]\nfrom=-3\n[layernorm]\n"
                        "[connected]\noutput=16\nactivation=gelu\n[connected]\noutput=12\nactivation=linear\n"
                        "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" TAIL)

/* Whole training steps: masks drawn on the host, applied on the device. */
static void compare_training(const char *cfg, const char *mode, const char *axis)
{
    CHECK(cuda_device_count() > 0, "no CUDA device");
    char m[64], a[64];
    snprintf(m, sizeof(m), "net.dropback_mode=%s", mode);
    snprintf(a, sizeof(a), "net.dropback_axis=%s", axis);
    const char *overrides[] = {"net.batch=16",           "net.subdivisions=1",        "net.channel_dropback=1",
                               "net.dropback_skip=0",    "net.dropback_layer_rate=1", "net.dropback_layer_rate_init=1",
                               "net.dropback_channel_rate=0.5", m, a};
    cdb_network *cpu = cdb_network_load(cfg, overrides, 9), *gpu = cdb_network_load(cfg, overrides, 9);
    CHECK(cpu && gpu, "load %s: %s", cfg, cdb_last_error());
    CHECK(gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    float *images = malloc((size_t)cpu->batch * cpu->inputs * sizeof(float));
    int *labels = malloc((size_t)cpu->batch * sizeof(int));
    for (int s = 0; s < 3; s++) {
        fill_normal(images, (size_t)cpu->batch * cpu->inputs, 40 + (uint64_t)s, 1.f);
        for (int b = 0; b < cpu->batch; b++) labels[b] = (b * 7 + s) % cpu->classes;
        float lc = network_train_step(cpu, images, labels), lg = network_train_step(gpu, images, labels);
        CHECK(fabsf(lc - lg) <= TRAIN_TOL * fabsf(lc), "step %d loss %g vs %g", s, lc, lg);
        for (int i = 0; i < cpu->nparams; i++) {
            cdb_param *pc = cpu->params[i], *pg = gpu->params[i];
            CHECK(pc->selected == pg->selected && pc->keep == pg->keep, "step %d tensor %d: selection differs", s, i);
            if (!pg->selected) continue;
            CHECK(!memcmp(pc->dropped, pg->dropped, (size_t)pc->mask_channels), "step %d tensor %d: host masks differ", s, i);
            uint8_t *device_mask = malloc((size_t)pg->mask_channels);
            memcpy(device_mask, pg->dropped, (size_t)pg->mask_channels);
            gpu_pull(gpu, pg->dropped, (size_t)pg->mask_channels);
            CHECK(!memcmp(device_mask, pg->dropped, (size_t)pg->mask_channels), "step %d tensor %d: device mask differs", s, i);
            free(device_mask);
        }
    }
    network_sync_to_host(gpu);
    for (int i = 0; i < cpu->nparams; i++) {
        double e = relative_error(gpu->params[i]->value, cpu->params[i]->value, cpu->params[i]->size);
        CHECK(e < TRAIN_TOL, "%s: tensor %d (%s) after 3 steps: relative error %.3g", cfg, i, cpu->params[i]->name, e);
    }
    free(images);
    free(labels);
    cdb_network_free(cpu);
    cdb_network_free(gpu);
}

static void t_train_smallcnn(void) { compare_training("cfg/smallcnn.cfg", "grad", "in"); }
static void t_train_vit_micro(void) { compare_training("cfg/vit_micro.cfg", "grad", "in"); }
static void t_train_strict_out(void) { compare_training("cfg/smallcnn.cfg", "strict", "out"); }
static void t_train_vit_strict(void) { compare_training("cfg/vit_micro.cfg", "strict", "in"); }

int main(int argc, char **argv)
{
    set_num_threads(1);
    test_add("gpu/conv 3x3 leaky", t_conv);
    test_add("gpu/conv stride 2 gelu", t_conv_stride);
    test_add("gpu/conv batch norm", t_conv_bn);
    test_add("gpu/conv groups", t_conv_groups);
    test_add("gpu/conv 1x1", t_conv_1x1);
    test_add("gpu/connected", t_connected);
    test_add("gpu/connected batch norm", t_connected_bn);
    test_add("gpu/batchnorm", t_batchnorm);
    test_add("gpu/maxpool 2/2", t_maxpool);
    test_add("gpu/maxpool 3/1", t_maxpool3);
    test_add("gpu/avgpool", t_avgpool);
    test_add("gpu/shortcut and route", t_shortcut_route);
    test_add("gpu/local_avgpool", t_local_avgpool);
    test_add("gpu/scale_channels", t_scale_channels);
    test_add("gpu/shuffle and route groups", t_shuffle_split);
    test_add("gpu/dropout", t_dropout);
    test_add("gpu/activations", t_activations);
    test_add("gpu/tokens, cls_token, pos_embed", t_tokens_cls_pos);
    test_add("gpu/layernorm", t_layernorm);
    test_add("gpu/attention", t_attention);
    test_add("gpu/encoder block", t_block);
    test_add("gpu/smallcnn 3 training steps with dropback", t_train_smallcnn);
    test_add("gpu/vit_micro 3 training steps with dropback", t_train_vit_micro);
    test_add("gpu/smallcnn strict mode, out axis", t_train_strict_out);
    test_add("gpu/vit_micro strict mode", t_train_vit_strict);
    return test_run_all(argc - 1, argv + 1);
}
