/* The networks of the GPU suite (tests/gpu/gpu_tests.c), in one place so
 * that the CPU suite builds every one of them (tests/test_gpu_networks.c):
 * a cfg that does not build fails in CI, not on the GPU machine. */
#ifndef CDB_GPU_NETWORKS_H
#define CDB_GPU_NETWORKS_H

#include <stdio.h>
#include <string.h>

#define GPU_HEAD "[net]\nbatch=4\nwidth=9\nheight=8\nchannels=3\nconv_deterministic=1\n"
#define GPU_TAIL "[connected]\noutput=5\nactivation=linear\n[softmax]\n"
#define GPU_SEQ "[net]\nbatch=3\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=12\nsize=2\nstride=2\nactivation=linear\n[tokens]\n"

/* One forward and backward on the CPU and the GPU (compare_layers); the
 * last two are realistic shapes: a ResNet-18 stage (64 channels of 16x16,
 * batch 16, batch norm; its input a 1x1 convolution, so that the shortcut
 * has a layer to take) and a ViT-Tiny-width block at batch 64. */
typedef struct {
    const char *test, *cfg;
} gpu_layer_case;
static const gpu_layer_case gpu_layer_cases[] = {
    {"gpu/conv 3x3 leaky",
     GPU_HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=leaky\n" GPU_TAIL},
    {"gpu/conv stride 2 gelu",
     GPU_HEAD "[convolutional]\nfilters=6\nsize=3\nstride=2\npad=1\nactivation=gelu\n" GPU_TAIL},
    {"gpu/conv batch norm",
     GPU_HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n" GPU_TAIL},
    {"gpu/conv groups",
     GPU_HEAD "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=3\nactivation=swish\n" GPU_TAIL},
    {"gpu/conv 1x1",
     GPU_HEAD "[convolutional]\nfilters=4\nsize=1\nactivation=mish\n" GPU_TAIL},
    {"gpu/connected",
     GPU_HEAD "[connected]\noutput=7\nactivation=tanh\n" GPU_TAIL},
    {"gpu/connected batch norm",
     GPU_HEAD "[connected]\noutput=7\nbatch_normalize=1\nactivation=logistic\n" GPU_TAIL},
    {"gpu/batchnorm",
     GPU_HEAD "[batchnorm]\n[batchnorm]\nactivation=relu\n" GPU_TAIL},
    {"gpu/maxpool 2/2",
     GPU_HEAD "[maxpool]\nsize=2\nstride=2\n" GPU_TAIL},
    {"gpu/maxpool 3/1",
     GPU_HEAD "[maxpool]\nsize=3\nstride=1\n" GPU_TAIL},
    {"gpu/avgpool",
     GPU_HEAD "[avgpool]\n" GPU_TAIL},
    {"gpu/shortcut and route",
     GPU_HEAD "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
     "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=linear\n"
     "[shortcut]\nfrom=-2\nactivation=hardswish\n[route]\nlayers=-1,-2\n" GPU_TAIL},
    {"gpu/local_avgpool",
     GPU_HEAD "[local_avgpool]\nsize=3\nstride=2\n" GPU_TAIL},
    {"gpu/scale_channels",
     GPU_HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear\n[avgpool]\n"
     "[convolutional]\nfilters=4\nsize=1\nactivation=logistic\n[scale_channels]\nfrom=-3\n" GPU_TAIL},
    {"gpu/shuffle and route groups",
     GPU_HEAD "[convolutional]\nfilters=6\nsize=1\nactivation=linear\n[shuffle]\ngroups=3\n"
     "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[route]\nlayers=-1,-3\n" GPU_TAIL},
    {"gpu/dropout",
     GPU_HEAD "[dropout]\nprobability=0.4\n" GPU_TAIL},
    {"gpu/activation layer (elu, plse)",
     GPU_HEAD "[activation]\nactivation=elu\n[activation]\nactivation=plse\n" GPU_TAIL},
    {"gpu/shortcut across shapes",
     "[net]\nbatch=4\nwidth=8\nheight=8\nchannels=3\nconv_deterministic=1\n[convolutional]\nfilters=6\nsize=3\npad=1\nactivation=linear\n"
     "[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\nactivation=linear\n"
     "[shortcut]\nfrom=-2\nactivation=swish\n[route]\nlayers=-3\n[shortcut]\nfrom=-2\n" GPU_TAIL},
    {"gpu/cost after softmax",
     GPU_HEAD "[connected]\noutput=5\nactivation=linear\n[softmax]\n[cost]\nscale=0.5\n"},
    {"gpu/softmax temperature with cost",
     GPU_HEAD "[connected]\noutput=5\nactivation=linear\n[softmax]\ntemperature=0.5\n[cost]\n"},
    {"gpu/logistic cost (on the CPU in a GPU run)",
     GPU_HEAD "[connected]\noutput=5\nactivation=linear\n[logistic]\n"},
    {"gpu/convolution with dilation (im2col or cuDNN)",
     GPU_HEAD "[convolutional]\nfilters=4\nsize=3\npad=1\ndilation=2\nactivation=leaky\n" GPU_TAIL},
    {"gpu/shortcut drop_connect, conv bias=0",
     GPU_HEAD "[batchnorm]\nactivation=relu\n[convolutional]\nfilters=3\nsize=3\npad=1\nbias=0\nactivation=linear\n"
     "[shortcut]\nfrom=-2\ndrop_connect=0.5\n" GPU_TAIL},
    {"gpu/activations",
     GPU_HEAD "[connected]\noutput=6\nactivation=relu6\n[connected]\noutput=6\nactivation=leaky\n" GPU_TAIL},
    {"gpu/tokens, cls_token, pos_embed",
     GPU_SEQ "[cls_token]\n[pos_embed]\n[token_pool]\nmode=cls\n" GPU_TAIL},
    {"gpu/layernorm",
     GPU_SEQ "[layernorm]\n[token_pool]\nmode=mean\n" GPU_TAIL},
    {"gpu/attention",
     GPU_SEQ "[cls_token]\n[attention]\nheads=3\ninit_std=0.2\n[token_pool]\nmode=mean\n" GPU_TAIL},
    {"gpu/encoder block",
     GPU_SEQ "[cls_token]\n[pos_embed]\n[layernorm]\n[attention]\nheads=2\n[shortcut]\nfrom=-3\n[layernorm]\n"
     "[connected]\noutput=16\nactivation=gelu\n[connected]\noutput=12\nactivation=linear\n"
     "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" GPU_TAIL},
    {"gpu/a ResNet-18 stage",
     "[net]\nbatch=16\nwidth=16\nheight=16\nchannels=64\n"
     "[convolutional]\nfilters=64\nsize=1\nactivation=relu\n"
     "[convolutional]\nfilters=64\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
     "[convolutional]\nfilters=64\nsize=3\npad=1\nbatch_normalize=1\nactivation=linear\n"
     "[shortcut]\nfrom=-3\nactivation=relu\n" GPU_TAIL},
    {"gpu/a ViT-Tiny block at batch 64",
     "[net]\nbatch=64\nwidth=16\nheight=16\nchannels=3\n"
     "[convolutional]\nfilters=192\nsize=4\nstride=4\nactivation=linear\n[tokens]\n[cls_token]\n"
     "[pos_embed]\n[layernorm]\neps=1e-6\n[attention]\nheads=3\n[shortcut]\nfrom=-3\n[layernorm]\n"
     "eps=1e-6\n[connected]\noutput=768\nactivation=gelu\n[connected]\noutput=192\nactivation=linear\n"
     "[shortcut]\nfrom=-4\n[layernorm]\n[token_pool]\nmode=cls\n" GPU_TAIL},
};
#define GPU_LAYER_CASES ((int)(sizeof(gpu_layer_cases) / sizeof(gpu_layer_cases[0])))

/* The masked gradients element by element (compare_masked): each network
 * with every tensor selected at channel rate 0.5 on the given axis. */
typedef struct {
    const char *test, *cfg, *axis;
} gpu_masked_case;
static const gpu_masked_case gpu_masked_cases[] = {
    {"gpu/masked gradients, conv, in axis", GPU_HEAD "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n" GPU_TAIL, "in"},
    {"gpu/masked gradients, conv, out axis", GPU_HEAD "[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=relu\n" GPU_TAIL, "out"},
    {"gpu/masked gradients, attention and gelu",
     GPU_SEQ "[attention]\nheads=3\n[connected]\noutput=12\nactivation=gelu\n[token_pool]\nmode=mean\n" GPU_TAIL, "in"},
};
#define GPU_MASKED_CASES ((int)(sizeof(gpu_masked_cases) / sizeof(gpu_masked_cases[0])))

/* A masked case's cfg: its [net] section with the keys that select every
 * tensor. 0, or -1 when it does not fit or has no layer. */
static inline int gpu_masked_cfg(const gpu_masked_case *c, char *out, size_t n)
{
    const char *net_end = strstr(c->cfg, "\n[");
    if (!net_end) return -1;
    int len = snprintf(out, n,
                       "%.*s\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=1\n"
                       "dropback_layer_rate_init=1\ndropback_channel_rate=0.5\ndropback_axis=%s%s",
                       (int)(net_end - c->cfg), c->cfg, c->axis, net_end);
    return len > 0 && (size_t)len < n ? 0 : -1;
}

/* Whole training steps of a shipped cfg (compare_training), every tensor
 * selected; `extra`: one more -set override (a training key under test);
 * `clip`: the clip_grad_norm it sets (0 for none; the bound of the
 * clipping case is below the steps' gradient norms, so each step clips). */
typedef struct {
    const char *test, *cfg, *mode, *axis;
    int subdivisions;
    const char *extra;
    double clip;
} gpu_training_case;
static const gpu_training_case gpu_training_cases[] = {
    {"gpu/smallcnn 3 training steps with dropback", "cfg/smallcnn.cfg", "grad", "in", 1, "net.clip_grad_norm=0", 0},
    {"gpu/vit_micro 3 training steps with dropback", "cfg/vit_micro.cfg", "grad", "in", 2, "net.clip_grad_norm=0", 0},
    {"gpu/smallcnn strict mode, out axis", "cfg/smallcnn.cfg", "strict", "out", 2, "net.clip_grad_norm=0", 0},
    {"gpu/vit_micro strict mode", "cfg/vit_micro.cfg", "strict", "in", 1, "net.clip_grad_norm=0", 0},
    {"gpu/smallcnn with clip_grad_norm", "cfg/smallcnn.cfg", "grad", "in", 1, "net.clip_grad_norm=0.01", 0.01},
    {"gpu/smallcnn with class_weights, 2 subdivisions", "cfg/smallcnn.cfg", "grad", "in", 2,
     "net.class_weights=0.5,1,2,1,1,1,3,1,1,0.25", 0},
    {"gpu/vit_micro with ema", "cfg/vit_micro.cfg", "grad", "in", 1, "net.ema=1", 0},
};
#define GPU_TRAINING_CASES ((int)(sizeof(gpu_training_cases) / sizeof(gpu_training_cases[0])))

/* A training case's -set overrides (11 of them, pointing into buf). */
#define GPU_TRAINING_OVERRIDES 11
typedef struct {
    char mode[64], axis[64], subdivisions[64];
} gpu_training_buf;
static inline void gpu_training_overrides(const gpu_training_case *c, gpu_training_buf *buf, const char **out)
{
    snprintf(buf->mode, sizeof(buf->mode), "net.dropback_mode=%s", c->mode);
    snprintf(buf->axis, sizeof(buf->axis), "net.dropback_axis=%s", c->axis);
    snprintf(buf->subdivisions, sizeof(buf->subdivisions), "net.subdivisions=%d", c->subdivisions);
    const char *o[GPU_TRAINING_OVERRIDES] = {"net.batch=16", buf->subdivisions, "net.channel_dropback=1",
                                             "net.dropback_skip=0", "net.dropback_layer_rate=1",
                                             "net.dropback_layer_rate_init=1", "net.dropback_channel_rate=0.5",
                                             buf->mode, buf->axis, "net.conv_deterministic=1", c->extra};
    memcpy(out, o, sizeof(o));
}

#endif
