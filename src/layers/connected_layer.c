/* [connected]: a fully connected (linear) map, then batch norm or bias, then
 * the activation. On an image: input (batch, inputs) flattened, weights
 * (outputs, inputs), output (batch, outputs). On a token sequence it acts on
 * every token: input (batch, tokens, in), weights (outputs, in), output
 * (batch, tokens, outputs), as one GEMM over batch * tokens rows. */
#include <stdlib.h>
#include <string.h>

#include "activations.h"
#include "batchnorm_layer.h"
#include "gemm.h"
#include "layers.h"
#include "connected_layer.h"

static void forward(cdb_layer *l, cdb_network *net, int train)
{
    (void)net;
    connected_priv *p = l->priv;
    int B = p->rows, I = p->in, O = p->out;
    /* GELU is applied in place and keeps its derivative in act_cache for
     * the backward pass; the other activations keep their input there. */
    int gelu = p->act == ACT_GELU && !p->batch_normalize;
    float *z = p->act == ACT_LINEAR || gelu ? l->output : p->act_cache;
    if (p->batch_normalize) {
        cdb_gemm(0, 1, B, O, I, 1, l->input, I, p->weights->value, I, 0, z, O);
        cdb_bn_forward(&p->bn, z, z, train);
        if (p->act != ACT_LINEAR) cdb_activate_array(p->act, z, l->output, (size_t)B * O);
        return;
    }
    cdb_broadcast_rows(z, p->biases->value, B, O);
    cdb_gemm(0, 1, B, O, I, 1, l->input, I, p->weights->value, I, 1, z, O);
    if (gelu) {
        cdb_gelu_forward_grad(z, z, p->act_cache, (size_t)B * O);
    } else if (p->act != ACT_LINEAR) {
        cdb_activate_array(p->act, z, l->output, (size_t)B * O);
    }
}

/* GELU's backward from the derivative kept by forward, fused with the bias
 * gradient. Each thread sweeps all rows over its own range of columns, so
 * every bias sums its rows in order whatever the thread count (one thread:
 * one sequential pass). */
static void gelu_bias_backward(connected_priv *p, float *dz, int B, int O)
{
    const float *g = p->act_cache;
    float *db = p->biases->grad;
    int parts = cdb_get_num_threads();
    parts = parts < 1 ? 1 : (parts > O ? O : parts);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < parts; t++) {
        int o0 = (int)((long)O * t / parts), o1 = (int)((long)O * (t + 1) / parts);
        for (int b = 0; b < B; b++) {
            float *restrict d = dz + (size_t)b * O;
            const float *restrict gr = g + (size_t)b * O;
#pragma omp simd
            for (int o = o0; o < o1; o++) {
                d[o] *= gr[o];
                db[o] += d[o];
            }
        }
    }
}

static void backward(cdb_layer *l, cdb_network *net)
{
    connected_priv *p = l->priv;
    int B = p->rows, I = p->in, O = p->out;
    float *dz = l->delta;
    if (p->act == ACT_GELU && !p->batch_normalize) {
        gelu_bias_backward(p, dz, B, O);
    } else {
        if (p->act != ACT_LINEAR) cdb_gradient_array(p->act, p->act_cache, dz, dz, (size_t)B * O);
        if (p->batch_normalize) {
            cdb_bn_backward(&p->bn, dz, dz);
        } else {
            for (int b = 0; b < B; b++)
                for (int o = 0; o < O; o++) p->biases->grad[o] += dz[(size_t)b * O + o];
        }
    }
    cdb_dropback_weight_grad(net, p->weights, 0, 1, 0, O, I, B, dz, O, l->input, I, p->weights->grad, I);
    if (l->input_delta) cdb_gemm(0, 0, B, I, O, 1, dz, O, p->weights->value, I, 1, l->input_delta, I);
}

static void destroy(cdb_layer *l)
{
    connected_priv *p = l->priv;
    if (p->batch_normalize) cdb_bn_free(&p->bn);
    free(p->act_cache);
}

static int make(cdb_layer *l, cfg_reader *r, cdb_network *net)
{
    connected_priv *p = cdb_layer_priv(l, sizeof(connected_priv), destroy);
    if (!p) return -1;
    /* output=classes: [net] classes (so that -set net.classes=100 retargets
     * a classifier cfg). */
    int outputs;
    if (cdb_cfg_has(r, "output") && !strcmp(cdb_cfg_str(r, "output", ""), "classes")) {
        if (!net->classes) {
            cdb_cfg_fail(r, "output", "output=classes needs classes= in [net]");
            return -1;
        }
        outputs = net->classes;
    } else {
        outputs = cdb_cfg_int(r, "output", 1, 1, 1 << 24);
    }
    p->batch_normalize = cdb_cfg_int(r, "batch_normalize", 0, 0, 1);
    p->act = cdb_layer_read_activation(r, ACT_LOGISTIC);
    float init_std = cdb_cfg_float(r, "init_std", 0.f, 0.f, 10.f);
    if (r->failed) return -1;
    if (l->tokens && p->batch_normalize) {
        cdb_cfg_fail(r, "batch_normalize", "not supported on a token sequence (use [layernorm])");
        return -1;
    }
    p->out = outputs;
    if (l->tokens) {
        p->rows = l->batch * l->tokens;
        p->in = l->c;
        cdb_layer_set_sequence_output(l, l->tokens, outputs);
    } else {
        p->rows = l->batch;
        p->in = l->c * l->h * l->w;
        l->out_c = outputs;
        l->out_h = l->out_w = 1;
    }
    if (cdb_layer_alloc_output(l, r)) return -1;
    p->weights = cdb_layer_add_param(l, "weights", (size_t)outputs * p->in, 1, outputs, p->in, 1);
    cdb_dropback_read_layer_keys(r, p->weights);
    if (cdb_cfg_check_unused(r)) return -1;
    cdb_init_weights(p->weights->value, p->weights->size, p->in, init_std, net->seed, l->index);
    if (p->batch_normalize) {
        if (cdb_bn_init(&p->bn, l, net, outputs, 1, l->batch)) return -1;
        p->biases = p->bn.biases;
    } else {
        p->biases = cdb_layer_add_param(l, "biases", (size_t)outputs, 0, 0, 0, 0);
    }
    cdb_layer_add_io(l, p->biases->value, (size_t)outputs);
    cdb_layer_add_io(l, p->weights->value, p->weights->size);
    if (p->batch_normalize) {
        cdb_layer_add_io(l, p->bn.scales->value, (size_t)outputs);
        cdb_layer_add_io(l, p->bn.rolling_mean, (size_t)outputs);
        cdb_layer_add_io_variance(l, p->bn.rolling_variance, (size_t)outputs);
    }
    if (p->act != ACT_LINEAR) p->act_cache = cdb_xcalloc((size_t)p->rows * outputs, sizeof(float));
    l->flops = (size_t)outputs * p->in * (l->tokens ? l->tokens : 1);
    snprintf(l->description, sizeof(l->description), "%d -> %d%s%s %s", p->in, outputs,
             l->tokens ? " per token" : "", p->batch_normalize ? " bn" : "", cdb_activation_name(p->act));
    return 0;
}

LAYER_OPS(connected, "conn", LAYER_TAKES_ANY, 0);
