/* [convolutional] on the direct and Winograd kernels of conv_direct.h (one
 * of its CPU paths, chosen by the network's conv_policy), with compute
 * skipping's lists from the dropback module: see convolutional_paths.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convolutional_paths.h"
#include "conv_direct.h"
#include "dropback.h"
#include "layers.h"

/* Direct convolution (conv_direct.h) for layers without groups whose input
 * channels are a multiple of 16 and filters a multiple of 32 (every build
 * has the kernels, at its vector width). The backward pass takes it too when pad < size and the input
 * channels are a multiple of 32 (or there is no input gradient); otherwise
 * it keeps im2col. */
int cdb_conv_direct_shape(const cdb_layer *l, const conv_priv *p)
{
    return p->groups == 1 && p->dilation == 1 && l->c % 16 == 0 && p->filters % 32 == 0;
}

int cdb_conv_uses_direct(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return net->conv.direct && cdb_conv_direct_shape(l, p);
}

static int direct_data_shape(const cdb_layer *l, const conv_priv *p)
{
    return p->pad < p->size && l->c % 32 == 0;
}

int cdb_conv_uses_direct_backward(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return cdb_conv_uses_direct(l, p, net) && (!l->input_delta || direct_data_shape(l, p));
}

/* Winograd F(2x2, 3x3) (conv_direct.h) for the output, the weight gradient
 * and, where the backward pass is direct, the input gradient of 3x3
 * stride-1 pad-1 layers with an even image size. */
int cdb_conv_uses_winograd(const cdb_layer *l, const conv_priv *p, const cdb_network *net)
{
    return net->conv.winograd && cdb_conv_uses_direct(l, p, net) && p->size == 3 && p->stride == 1 && p->pad == 1 &&
           l->h % 2 == 0 && l->w % 2 == 0;
}

int cdb_convolutional_uses_winograd(const cdb_layer *l, const cdb_network *net) { return cdb_conv_uses_winograd(l, l->priv, net); }

int cdb_convolutional_uses_direct(const cdb_layer *l, const cdb_network *net, int backward)
{
    return backward ? cdb_conv_uses_direct_backward(l, l->priv, net) : cdb_conv_uses_direct(l, l->priv, net);
}

/* Workspace of the direct path, each part 64-byte aligned: blocked weights,
 * transposed weights, weight gradient, then for a chunk of images the
 * blocked inputs, the blocked (padded) output gradients and the blocked
 * outputs or input gradients. */
typedef struct {
    float *wb, *wbt, *dwb, *xb, *dyb, *out, *u, *du, *scratch;
} direct_buffers;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* padding of the blocked output gradient (none where the input gradient
 * does not take the kernels) */
static int direct_grad_pad(const conv_priv *p)
{
    int q = cd_grad_pad(p->size, p->stride, p->pad);
    return q > 0 ? q : 0;
}

size_t cdb_conv_direct_per_image(const cdb_layer *l, const conv_priv *p)
{
    int q = direct_grad_pad(p);
    size_t in = (size_t)l->c * (l->h + 2 * p->pad) * (l->w + 2 * p->pad);
    size_t grad = (size_t)p->filters * (l->out_h + 2 * q) * (l->out_w + 2 * q);
    size_t out = (size_t)l->outputs > (size_t)l->inputs ? (size_t)l->outputs : (size_t)l->inputs;
    return round16(in) + round16(grad) + round16(out);
}

/* Winograd's transformed weights and transformed images, where it applies */
static size_t winograd_floats(const cdb_layer *l, const conv_priv *p)
{
    if (!(p->size == 3 && p->stride == 1 && p->pad == 1 && l->h % 2 == 0 && l->w % 2 == 0)) return 0;
    return 2 * round16((size_t)16 * p->filters * l->c) +
           round16(cd_winograd_scratch(p->direct_chunk, l->c, p->filters, l->h, l->w));
}

size_t cdb_conv_direct_workspace(const cdb_layer *l, const conv_priv *p)
{
    size_t w = round16((size_t)p->filters * l->c * p->size * p->size);
    return 16 + 3 * w + cdb_conv_direct_per_image(l, p) * p->direct_chunk + winograd_floats(l, p);
}

static direct_buffers direct_layout(const cdb_layer *l, const conv_priv *p, float *workspace, int count)
{
    direct_buffers b;
    size_t w = round16((size_t)p->filters * l->c * p->size * p->size);
    float *base = (float *)(((uintptr_t)workspace + 63) & ~(uintptr_t)63);
    int q = direct_grad_pad(p);
    b.wb = base;
    b.wbt = b.wb + w;
    b.dwb = b.wbt + w;
    b.xb = b.dwb + w;
    b.dyb = b.xb + round16((size_t)count * l->c * (l->h + 2 * p->pad) * (l->w + 2 * p->pad));
    b.out = b.dyb + round16((size_t)count * p->filters * (l->out_h + 2 * q) * (l->out_w + 2 * q));
    /* Winograd's parts after a full chunk's, so that they do not move */
    b.u = b.xb + cdb_conv_direct_per_image(l, p) * p->direct_chunk;
    b.du = b.u + round16((size_t)16 * p->filters * l->c);
    b.scratch = b.du + round16((size_t)16 * p->filters * l->c);
    return b;
}

void cdb_conv_forward_direct(cdb_layer *l, cdb_network *net, float *z)
{
    conv_priv *p = l->priv;
    int C = l->c, F = p->filters, k = p->size, wino = cdb_conv_uses_winograd(l, p, net);
    for (int first = 0; first < l->batch; first += p->direct_chunk) {
        int count = l->batch - first < p->direct_chunk ? l->batch - first : p->direct_chunk;
        direct_buffers b = direct_layout(l, p, net->workspace, count);
        if (!first && wino) cdb_cd_winograd_pack_weights(p->weights->value, F, C, 0, b.u);
        if (!first && !wino) cdb_cd_pack_weights(p->weights->value, F, C, k, b.wb);
        cdb_cd_pack_input(l->input + (size_t)first * l->inputs, l->inputs, count, C, l->h, l->w, p->pad, b.xb);
        if (wino)
            cdb_cd_winograd(b.xb, count, C, l->h, l->w, b.u, F, b.scratch, b.out, net->conv.slice_bytes);
        else
            cdb_cd_forward(b.xb, count, C, l->h + 2 * p->pad, l->w + 2 * p->pad, b.wb, F, k, p->stride, l->out_h,
                       l->out_w, b.out, net->conv.slice_bytes);
        cdb_cd_unpack(b.out, count, F, l->out_h * l->out_w, z + (size_t)first * l->outputs, l->outputs, 0);
    }
}

/* weight gradient and, where there is one, input gradient */
void cdb_conv_backward_direct(cdb_layer *l, cdb_network *net, const float *dz)
{
    conv_priv *p = l->priv;
    int C = l->c, F = p->filters, k = p->size, data = l->input_delta != NULL;
    int q = data ? direct_grad_pad(p) : 0, gh = l->out_h + 2 * q, gw = l->out_w + 2 * q;
    direct_buffers b = direct_layout(l, p, net->workspace, p->direct_chunk);
    /* compute skipping (dropback_skip_compute): dropped input channels are not
     * computed; of dropped filters, only whole groups of 32 */
    const uint8_t *skip_c, *skip_f;
    cdb_dropback_skip_lists(&net->dropback, p->weights, &skip_c, &skip_f);
    memset(b.dwb, 0, (size_t)F * C * k * k * sizeof(float));
    int wino = cdb_conv_uses_winograd(l, p, net);
    if (wino) memset(b.du, 0, (size_t)16 * F * C * sizeof(float));
    if (data && wino) cdb_cd_winograd_pack_weights(p->weights->value, F, C, 1, b.u);
    if (data && !wino) cdb_cd_pack_weights_grad(p->weights->value, F, C, k, p->stride, b.wbt);
    for (int first = 0; first < l->batch; first += p->direct_chunk) {
        int count = l->batch - first < p->direct_chunk ? l->batch - first : p->direct_chunk;
        b = direct_layout(l, p, net->workspace, count);
        cdb_cd_pack_input(l->input + (size_t)first * l->inputs, l->inputs, count, C, l->h, l->w, p->pad, b.xb);
        cdb_cd_pack_input(dz + (size_t)first * l->outputs, l->outputs, count, F, l->out_h, l->out_w, q, b.dyb);
        if (data && wino) {
            cdb_cd_winograd(b.dyb, count, F, l->out_h, l->out_w, b.u, C, b.scratch, b.out, net->conv.slice_bytes);
            cdb_cd_unpack(b.out, count, C, l->h * l->w, l->input_delta + (size_t)first * l->inputs, l->inputs, 1);
        } else if (data) {
            cdb_cd_input_grad(b.dyb, count, F, l->out_h, l->out_w, b.wbt, C, l->h, l->w, k, p->stride, p->pad, b.out,
                          net->conv.slice_bytes);
            cdb_cd_unpack(b.out, count, C, l->h * l->w, l->input_delta + (size_t)first * l->inputs, l->inputs, 1);
        }
        const float *dy = b.dyb + ((size_t)q * gw + q) * 16;
        if (wino)
            cdb_cd_winograd_weight_grad(b.xb, count, C, l->h, l->w, dy, (size_t)F * gh * gw, (size_t)gh * gw * 16, gw, F,
                                    skip_c, skip_f, b.scratch, b.du);
        else
            cdb_cd_weight_grad(b.xb, count, C, l->h + 2 * p->pad, l->w + 2 * p->pad, dy, (size_t)F * gh * gw,
                           (size_t)gh * gw * 16, gw, F, k, p->stride, l->out_h, l->out_w, skip_c, skip_f, b.dwb);
    }
    if (wino) cdb_cd_winograd_weight_grad_finish(b.du, F, C, b.dwb);
    cdb_cd_add_weight_grad(b.dwb, F, C, k, p->weights->grad);
}
