/* GPU suite (make GPU=1 [CUDNN=1] gpu-test): every layer type's forward
 * output, input gradient and parameter gradients on the GPU against the CPU
 * code on the same random data, then whole training steps of smallcnn and
 * vit_micro with ChannelDropBack selecting every tensor (subdivisions 1 and
 * 2): the masks must be the host's and the weights must agree after 3
 * steps; then save on the device, resume, and one more step. Inference mode
 * too (rolling statistics, dropout off), the masked gradients element by
 * element (dropped exactly 0, kept exactly the gradient / keep), and
 * realistic shapes (a ResNet-18 stage, a ViT-Tiny block at batch 64).
 *
 * Tolerances: one forward/backward, relative error (max |gpu - cpu| /
 * max |cpu| per array) under 1e-4, with cuBLAS in full FP32 (no TF32) and
 * cuDNN in FMA math (no TF32); only the order of the sums differs. After 3
 * training steps under 1e-3: the sums' order differences compound through
 * the updates and batch-norm statistics. */
#include <stdlib.h>

#include "cdbnet.h"
#include "cuda_utils.h"
#include "dropback.h"
#include "gemm.h"
#include "test.h"

#define STEP_TOL 1e-4
#define TRAIN_TOL 1e-3

static void set_data(cdb_network *net)
{
    fill_normal(net->input, (size_t)net->mini_batch * net->inputs, 11, 1.f);
    cdb_rng rng = cdb_rng_stream(5, 5, 5);
    for (int b = 0; b < net->mini_batch; b++) {
        float sum = 0, *t = net->truth + (size_t)b * net->classes;
        for (int k = 0; k < net->classes; k++) sum += t[k] = 0.05f + cdb_rng_uniform(&rng);
        for (int k = 0; k < net->classes; k++) t[k] /= sum;
    }
}

static void forward_backward(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) memset(net->params[i]->grad, 0, net->params[i]->size * sizeof(float));
    if (net->gpu) {
        for (int i = 0; i < net->nparams; i++) cdb_gpu_zero(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
        cdb_gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
    }
    net->loss = 0;
    cdb_network_forward(net, 1);
    cdb_network_backward(net);
    if (net->gpu)
        for (int i = 0; i < net->nparams; i++) cdb_gpu_pull(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
}

/* One forward and backward of cfg_text on the CPU and on the GPU. */
static void compare_layers(const char *cfg_text)
{
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    cdb_network *cpu = net_from_text(cfg_text), *gpu = net_from_text(cfg_text);
    CHECK(cpu && gpu, "build");
    cdb_network_enable_input_gradient(cpu);
    cdb_network_enable_input_gradient(gpu);
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    set_data(cpu);
    set_data(gpu);
    forward_backward(cpu);
    forward_backward(gpu);
    double e = relative_error(cdb_network_output(gpu), cdb_network_output(cpu), (size_t)cpu->mini_batch * cpu->classes);
    CHECK(e < STEP_TOL, "output relative error %.3g", e);
    CHECK(fabs(gpu->loss - cpu->loss) <= STEP_TOL * fabs(cpu->loss), "loss %g vs %g", gpu->loss, cpu->loss);
    e = relative_error(gpu->input_delta, cpu->input_delta, (size_t)cpu->mini_batch * cpu->inputs);
    CHECK(e < STEP_TOL, "input gradient relative error %.3g", e);
    for (int i = 0; i < cpu->nparams; i++) {
        e = relative_error(gpu->params[i]->grad, cpu->params[i]->grad, cpu->params[i]->size);
        CHECK(e < STEP_TOL, "param %d (%s) gradient relative error %.3g", i, cpu->params[i]->name, e);
    }
    /* Inference mode: batch norm on its rolling statistics, dropout off. */
    cdb_network_forward(cpu, 0);
    cdb_network_forward(gpu, 0);
    e = relative_error(cdb_network_output(gpu), cdb_network_output(cpu), (size_t)cpu->mini_batch * cpu->classes);
    CHECK(e < STEP_TOL, "inference output relative error %.3g", e);
    /* Batch-norm running statistics and every other weights-file array. */
    CHECK(cdb_network_sync_to_host(gpu) == 0, "sync: %s", cdb_last_error());
    for (int l = 0; l < cpu->n; l++)
        for (int k = 0; k < cpu->layers[l].nio; k++) {
            e = relative_error(gpu->layers[l].io[k], cpu->layers[l].io[k], cpu->layers[l].io_size[k]);
            CHECK(e < STEP_TOL, "layer %d array %d relative error %.3g", l, k, e);
        }
    cdb_network_free(cpu);
    cdb_network_free(gpu);
}

#define HEAD "[net]\nbatch=4\nwidth=9\nheight=8\nchannels=3\nconv_deterministic=1\n"
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
LAYER_TEST(t_batchnorm, HEAD "[batchnorm]\n[batchnorm]\nactivation=relu\n" TAIL)
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
LAYER_TEST(t_activation_layer, HEAD "[activation]\nactivation=elu\n[activation]\nactivation=plse\n" TAIL)
LAYER_TEST(t_shortcut_shapes, "[net]\nbatch=4\nwidth=8\nheight=8\nchannels=3\nconv_deterministic=1\n[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=linear\n"
                                   "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=linear\n"
                                   "[shortcut]\nfrom=-2\nactivation=swish\n[route]\nlayers=-3\n[shortcut]\nfrom=-2\n" TAIL)
LAYER_TEST(t_cost, HEAD "[connected]\noutput=5\nactivation=linear\n[softmax]\n[cost]\nscale=0.5\n")
LAYER_TEST(t_temperature, HEAD "[connected]\noutput=5\nactivation=linear\n[softmax]\ntemperature=0.5\n[cost]\n")
LAYER_TEST(t_logistic, HEAD "[connected]\noutput=5\nactivation=linear\n[logistic]\n")
LAYER_TEST(t_dilation, HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=2\nactivation=leaky\n" TAIL)
LAYER_TEST(t_drop_connect_nobias, HEAD "[batchnorm]\nactivation=relu\n[convolutional]\nfilters=3\nsize=3\npad=1\nbias=0\nactivation=linear\n"
                                       "[shortcut]\nfrom=-2\ndrop_connect=0.5\n" TAIL)
LAYER_TEST(t_activations, HEAD "[connected]\noutput=6\nactivation=relu6\n[connected]\noutput=6\nactivation=leaky\n" TAIL)
LAYER_TEST(t_tokens_cls_pos, SEQ "[cls_token]\n[pos_embed]\n[token_pool]\nmode=cls\n" TAIL)
LAYER_TEST(t_layernorm, SEQ "[layernorm]\n[token_pool]\nmode=mean\n" TAIL)
LAYER_TEST(t_attention, SEQ "[cls_token]\n[attention]\nheads=3\ninit_std=0.2\n[token_pool]\nmode=mean\n" TAIL)
LAYER_TEST(t_block, SEQ "[cls_token]\n[pos_embed]\n[layernorm]\n[attention]\nheads=2\n[shortcut]\nfrom=-3\n[layernorm]\n"
                        "[connected]\noutput=16\nactivation=gelu\n[connected]\noutput=12\nactivation=linear\n"
                        "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" TAIL)

/* The masked gradients themselves: after one forward and backward on the
 * device, the device mask leaves every dropped channel exactly 0 and every
 * kept element exactly the unmasked gradient / keep, and agrees with the
 * CPU's masked gradient. */
static void compare_masked(const char *cfg_text, const char *axis)
{
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    char text[4096];
    snprintf(text, sizeof(text), "%s", cfg_text);
    char *net_end = strstr(text, "\n[") ;
    CHECK(net_end, "cfg");
    char head[4096];
    snprintf(head, sizeof(head), "%.*s\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=1\n"
                                 "dropback_layer_rate_init=1\ndropback_channel_rate=0.5\ndropback_axis=%s%s",
             (int)(net_end - text), text, axis, net_end);
    cdb_network *cpu = net_from_text(head), *gpu = net_from_text(head);
    CHECK(cpu && gpu, "build");
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    set_data(cpu);
    set_data(gpu);
    CHECK(cdb_dropback_begin_step(cpu) > 0 && cdb_dropback_begin_step(gpu) > 0, "no tensor selected");
    forward_backward(cpu);
    forward_backward(gpu); /* pulls the unmasked device gradients */
    float **unmasked = calloc((size_t)gpu->nparams, sizeof(float *));
    for (int i = 0; i < gpu->nparams; i++) {
        unmasked[i] = malloc(gpu->params[i]->size * sizeof(float));
        memcpy(unmasked[i], gpu->params[i]->grad, gpu->params[i]->size * sizeof(float));
    }
    cdb_dropback_apply_masks(cpu);
    cdb_dropback_apply_masks(gpu);
    int masked = 0;
    for (int i = 0; i < gpu->nparams; i++) {
        cdb_param *pg = gpu->params[i], *pc = cpu->params[i];
        cdb_gpu_pull(gpu, pg->grad, pg->size * sizeof(float));
        CHECK(pg->selected == pc->selected && (!pg->selected || !memcmp(pg->dropped, pc->dropped, (size_t)pg->mask_channels)),
              "tensor %d: masks differ", i);
        for (size_t k = 0; pg->selected && k < pg->size; k++) {
            int dropped = pg->dropped[dropback_channel_of(pg, gpu->dropback.axis, k)];
            float want = dropped ? 0.f : unmasked[i][k] / pg->keep;
            CHECK(isfinite(pg->grad[k]) && memcmp(&pg->grad[k], &want, sizeof(float)) == 0,
                  "tensor %d element %zu (%s): %g, want %g", i, k, dropped ? "dropped" : "kept", pg->grad[k], want);
        }
        masked += pg->selected;
        double e = relative_error(pg->grad, pc->grad, pc->size);
        CHECK(e < STEP_TOL, "tensor %d masked gradient relative error %.3g against the CPU", i, e);
    }
    CHECK(masked > 0, "nothing masked");
    for (int i = 0; i < gpu->nparams; i++) free(unmasked[i]);
    free(unmasked);
    cdb_network_free(cpu);
    cdb_network_free(gpu);
}

static void t_masked_conv_in(void) { compare_masked(HEAD "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n" TAIL, "in"); }
static void t_masked_conv_out(void) { compare_masked(HEAD "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n" TAIL, "out"); }
static void t_masked_vit(void) { compare_masked(SEQ "[attention]\nheads=3\n[connected]\noutput=12\nactivation=gelu\n[token_pool]\nmode=mean\n" TAIL, "in"); }

/* Realistic shapes: a ResNet-18 stage (64 channels of 16x16, batch 16,
 * batch norm) and a ViT-Tiny-width block at batch 64 (192 features). */
LAYER_TEST(t_resnet_stage, "[net]\nbatch=16\nwidth=16\nheight=16\nchannels=64\n"
                           "[convolutional]\nfilters=64\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                           "[convolutional]\nfilters=64\nsize=3\npad=1\nbatch_normalize=1\nactivation=linear\n"
                           "[shortcut]\nfrom=-3\nactivation=relu\n" TAIL)
LAYER_TEST(t_vit_block, "[net]\nbatch=64\nwidth=16\nheight=16\nchannels=3\n"
                        "[convolutional]\nfilters=192\nsize=4\nstride=4\nactivation=linear\n[tokens]\n[cls_token]\n"
                        "[pos_embed]\n[layernorm]\neps=1e-6\n[attention]\nheads=3\n[shortcut]\nfrom=-3\n[layernorm]\n"
                        "eps=1e-6\n[connected]\noutput=768\nactivation=gelu\n[connected]\noutput=192\nactivation=linear\n"
                        "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" TAIL)

/* Whole training steps: masks drawn on the host, applied on the device. */
static void compare_training(const char *cfg, const char *mode, const char *axis, int subdivisions)
{
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    char m[64], a[64], sub[64];
    snprintf(m, sizeof(m), "net.dropback_mode=%s", mode);
    snprintf(a, sizeof(a), "net.dropback_axis=%s", axis);
    snprintf(sub, sizeof(sub), "net.subdivisions=%d", subdivisions);
    const char *overrides[] = {"net.batch=16",           sub,                         "net.channel_dropback=1",
                               "net.dropback_skip=0",    "net.dropback_layer_rate=1", "net.dropback_layer_rate_init=1",
                               "net.dropback_channel_rate=0.5", m, a, "net.conv_deterministic=1"};
    cdb_network *cpu = cdb_network_load(cfg, overrides, 10), *gpu = cdb_network_load(cfg, overrides, 10);
    CHECK(cpu && gpu, "load %s: %s", cfg, cdb_last_error());
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    float *images = malloc((size_t)cpu->batch * cpu->inputs * sizeof(float));
    int *labels = malloc((size_t)cpu->batch * sizeof(int));
    for (int s = 0; s < 3; s++) {
        fill_normal(images, (size_t)cpu->batch * cpu->inputs, 40 + (uint64_t)s, 1.f);
        for (int b = 0; b < cpu->batch; b++) labels[b] = (b * 7 + s) % cpu->classes;
        float lc = cdb_network_train_step(cpu, images, labels), lg = cdb_network_train_step(gpu, images, labels);
        CHECK(fabsf(lc - lg) <= TRAIN_TOL * fabsf(lc), "step %d loss %g vs %g", s, lc, lg);
        for (int i = 0; i < cpu->nparams; i++) {
            cdb_param *pc = cpu->params[i], *pg = gpu->params[i];
            CHECK(pc->selected == pg->selected && pc->keep == pg->keep, "step %d tensor %d: selection differs", s, i);
            if (!pg->selected) continue;
            CHECK(!memcmp(pc->dropped, pg->dropped, (size_t)pc->mask_channels), "step %d tensor %d: host masks differ", s, i);
        }
    }
    CHECK(cdb_network_sync_to_host(gpu) == 0, "sync: %s", cdb_last_error());
    for (int i = 0; i < cpu->nparams; i++) {
        double e = relative_error(gpu->params[i]->value, cpu->params[i]->value, cpu->params[i]->size);
        CHECK(e < TRAIN_TOL, "%s: tensor %d (%s) after 3 steps: relative error %.3g", cfg, i, cpu->params[i]->name, e);
    }
    /* Save from the device, load into a fresh network, resume on the device:
     * the file holds the device's values, and one more step of the resumed
     * network matches one more of the original (its optimizer state went up). */
    char path[512];
    snprintf(path, sizeof(path), "%s/gpu-resume.weights", test_tmpdir());
    CHECK(cdb_checkpoint_save(gpu, path) == 0, "save: %s", cdb_last_error());
    cdb_network *again = cdb_network_load(cfg, overrides, 10);
    CHECK(again && cdb_weights_load(again, path) == 0, "load: %s", cdb_last_error());
    again->step = (int)(again->seen / (uint64_t)again->batch);
    CHECK(cdb_checkpoint_load_state(again, path) == 1, "state: %s", cdb_last_error());
    for (int i = 0; i < gpu->nparams; i++)
        CHECK(!memcmp(again->params[i]->value, gpu->params[i]->value, gpu->params[i]->size * sizeof(float)),
              "tensor %d: the saved file is not the device's values", i);
    CHECK(cdb_gpu_init(again, 0) == 0, "gpu_init: %s", cdb_last_error());
    fill_normal(images, (size_t)cpu->batch * cpu->inputs, 77, 1.f);
    cdb_network_train_step(gpu, images, labels);
    cdb_network_train_step(again, images, labels);
    CHECK(cdb_network_sync_to_host(gpu) == 0 && cdb_network_sync_to_host(again) == 0, "sync: %s", cdb_last_error());
    for (int i = 0; i < gpu->nparams; i++) {
        double e = relative_error(again->params[i]->value, gpu->params[i]->value, gpu->params[i]->size);
        CHECK(e < STEP_TOL, "tensor %d one step after the resume: relative error %.3g", i, e);
    }
    cdb_network_free(again);
    free(images);
    free(labels);
    cdb_network_free(cpu);
    cdb_network_free(gpu);
}

static void t_train_smallcnn(void) { compare_training("cfg/smallcnn.cfg", "grad", "in", 1); }
static void t_train_vit_micro(void) { compare_training("cfg/vit_micro.cfg", "grad", "in", 2); }
static void t_train_strict_out(void) { compare_training("cfg/smallcnn.cfg", "strict", "out", 2); }
static void t_train_vit_strict(void) { compare_training("cfg/vit_micro.cfg", "strict", "in", 1); }

int main(int argc, char **argv)
{
    cdb_set_num_threads(1);
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
    test_add("gpu/masked gradients, conv, in axis", t_masked_conv_in);
    test_add("gpu/masked gradients, conv, out axis", t_masked_conv_out);
    test_add("gpu/masked gradients, attention and gelu", t_masked_vit);
    test_add("gpu/a ResNet-18 stage", t_resnet_stage);
    test_add("gpu/a ViT-Tiny block at batch 64", t_vit_block);
    test_add("gpu/scale_channels", t_scale_channels);
    test_add("gpu/shuffle and route groups", t_shuffle_split);
    test_add("gpu/dropout", t_dropout);
    test_add("gpu/activation layer (elu, plse)", t_activation_layer);
    test_add("gpu/cost after softmax", t_cost);
    test_add("gpu/softmax temperature with cost", t_temperature);
    test_add("gpu/logistic cost (on the CPU in a GPU run)", t_logistic);
    test_add("gpu/convolution with dilation (im2col or cuDNN)", t_dilation);
    test_add("gpu/shortcut across shapes", t_shortcut_shapes);
    test_add("gpu/shortcut drop_connect, conv bias=0", t_drop_connect_nobias);
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
