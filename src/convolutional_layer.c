/* [convolutional]: grouped 2-D convolution (depthwise when groups = c) as
 * im2col + GEMM, then batch norm or bias, then the activation.
 *   input (batch, c, h, w), weights (filters, c/groups, size, size),
 *   output (batch, filters, out_h, out_w). */
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "batchnorm_layer.h"
#include "gemm.h"
#include "im2col.h"
#include "layers.h"

typedef struct {
    int filters, size, stride, pad, groups;
    activation act;
    int batch_normalize;
    cdb_param *weights, *biases;
    batchnorm bn;
    float *preact; /* (batch, outputs): input of the activation */
} conv_priv;

static int is_pointwise(const cdb_layer *l, const conv_priv *p)
{
    return p->size == 1 && p->stride == 1 && p->pad == 0 && l->h == l->out_h && l->w == l->out_w;
}

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    conv_priv *p = l->priv;
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *z = p->act == ACT_LINEAR ? l->output : p->preact;
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + (size_t)b * l->inputs;
        const float *col = in;
        if (!is_pointwise(l, p)) {
            im2col(in, l->c, l->h, l->w, p->size, p->stride, p->pad, net->workspace);
            col = net->workspace;
        }
        for (int g = 0; g < G; g++) {
            gemm(0, 0, F, N, K, 1, p->weights->value + (size_t)g * F * K, K, col + (size_t)g * K * N, N, 0,
                 z + (size_t)b * l->outputs + (size_t)g * F * N, N);
        }
    }
    if (p->batch_normalize) {
        bn_forward(&p->bn, z, z, train);
    } else {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                float *o = z + (size_t)b * l->outputs + (size_t)f * N, bias = p->biases->value[f];
                for (int i = 0; i < N; i++) o[i] += bias;
            }
    }
    if (p->act != ACT_LINEAR) activate_array(p->act, z, l->output, (size_t)l->batch * l->outputs);
}

static void backward(cdb_layer *l, cdb_network *net)
{
    conv_priv *p = l->priv;
    int G = p->groups, F = p->filters / G, K = l->c / G * p->size * p->size, N = l->out_h * l->out_w;
    float *dz = l->delta;
    if (p->act != ACT_LINEAR) gradient_array(p->act, p->preact, dz, dz, (size_t)l->batch * l->outputs);
    if (p->batch_normalize) {
        bn_backward(&p->bn, dz, dz);
    } else {
        for (int b = 0; b < l->batch; b++)
            for (int f = 0; f < p->filters; f++) {
                const float *d = dz + (size_t)b * l->outputs + (size_t)f * N;
                float s = 0;
                for (int i = 0; i < N; i++) s += d[i];
                p->biases->grad[f] += s;
            }
    }
    int pointwise = is_pointwise(l, p);
    for (int b = 0; b < l->batch; b++) {
        const float *in = l->input + (size_t)b * l->inputs;
        const float *d = dz + (size_t)b * l->outputs;
        const float *col = in;
        if (!pointwise) {
            im2col(in, l->c, l->h, l->w, p->size, p->stride, p->pad, net->workspace);
            col = net->workspace;
        }
        for (int g = 0; g < G; g++) {
            /* dW_g += d_g (F,N) . col_g^T (N,K) */
            gemm(0, 1, F, K, N, 1, d + (size_t)g * F * N, N, col + (size_t)g * K * N, N, 1,
                 p->weights->grad + (size_t)g * F * K, K);
        }
        if (!l->input_delta) continue;
        float *in_delta = l->input_delta + (size_t)b * l->inputs;
        for (int g = 0; g < G; g++) {
            /* dcol_g (K,N) = W_g^T (K,F) . d_g (F,N) */
            const float *w = p->weights->value + (size_t)g * F * K;
            if (pointwise) {
                gemm(1, 0, K, N, F, 1, w, K, d + (size_t)g * F * N, N, 1, in_delta + (size_t)g * K * N, N);
            } else {
                gemm(1, 0, K, N, F, 1, w, K, d + (size_t)g * F * N, N, 0, net->workspace + (size_t)g * K * N, N);
            }
        }
        if (!pointwise) col2im(net->workspace, l->c, l->h, l->w, p->size, p->stride, p->pad, in_delta);
    }
}

static void destroy(cdb_layer *l)
{
    conv_priv *p = l->priv;
    if (p->batch_normalize) bn_free(&p->bn);
    free(p->preact);
    free(p);
}

int convolutional_layer_make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    conv_priv *p = xcalloc(1, sizeof(conv_priv));
    l->priv = p;
    l->destroy = destroy;
    p->filters = cfg_int(r, "filters", 1, 1, 1 << 20);
    p->size = cfg_int(r, "size", 1, 1, 1024);
    p->stride = cfg_int(r, "stride", 1, 1, 1024);
    int pad_flag = cfg_int(r, "pad", 0, 0, 1);
    p->pad = cfg_int(r, "padding", pad_flag ? p->size / 2 : 0, 0, 1024);
    p->groups = cfg_int(r, "groups", 1, 1, 1 << 20);
    p->batch_normalize = cfg_int(r, "batch_normalize", 0, 0, 1);
    p->act = layer_read_activation(r, ACT_LOGISTIC);
    if (r->failed) return -1;
    if (l->c % p->groups) {
        cfg_fail(r, "groups", "input channels %d are not divisible by groups=%d", l->c, p->groups);
        return -1;
    }
    if (p->filters % p->groups) {
        cfg_fail(r, "groups", "filters=%d is not divisible by groups=%d", p->filters, p->groups);
        return -1;
    }
    if (l->h + 2 * p->pad < p->size || l->w + 2 * p->pad < p->size) {
        cfg_fail(r, "size", "kernel %d is larger than the padded input %dx%d", p->size, l->h + 2 * p->pad,
                 l->w + 2 * p->pad);
        return -1;
    }
    l->out_c = p->filters;
    l->out_h = (l->h + 2 * p->pad - p->size) / p->stride + 1;
    l->out_w = (l->w + 2 * p->pad - p->size) / p->stride + 1;
    layer_alloc_output(l);
    int per_group = l->c / p->groups, kk = p->size * p->size;
    size_t nweights = (size_t)p->filters * per_group * kk;
    p->weights = layer_add_param(l, "weights", nweights, 1, p->filters, per_group, kk);
    layer_read_dropback_keys(l, r, p->weights);
    if (cfg_check_unused(r)) return -1;
    init_weights_uniform(p->weights->value, nweights, per_group * kk, net->seed, l->index);
    if (p->batch_normalize) {
        bn_init(&p->bn, l, p->filters, l->out_h * l->out_w, l->batch);
        p->biases = p->bn.biases;
        layer_add_io(l, p->bn.biases->value, (size_t)p->filters);
        layer_add_io(l, p->bn.scales->value, (size_t)p->filters);
        layer_add_io(l, p->bn.rolling_mean, (size_t)p->filters);
        layer_add_io(l, p->bn.rolling_variance, (size_t)p->filters);
    } else {
        p->biases = layer_add_param(l, "biases", (size_t)p->filters, 0, 0, 0, 0);
        layer_add_io(l, p->biases->value, (size_t)p->filters);
    }
    layer_add_io(l, p->weights->value, nweights);
    if (p->act != ACT_LINEAR) p->preact = xcalloc((size_t)l->batch * l->outputs, sizeof(float));
    l->workspace_floats = is_pointwise(l, p) ? 0 : (size_t)l->c * kk * l->out_h * l->out_w;
    l->flops = (size_t)p->filters * per_group * kk * l->out_h * l->out_w;
    l->forward = forward;
    l->backward = backward;
    snprintf(l->description, sizeof(l->description), "%d %dx%d/%d pad %d%s%s %s", p->filters, p->size,
             p->size, p->stride, p->pad, p->groups > 1 ? " grouped" : "", p->batch_normalize ? " bn" : "",
             activation_name(p->act));
    return 0;
}
