/* The CPU paths of [convolutional] besides im2col (convolutional_layer.c),
 * one file each, as the network's conv_policy (network.h) allows:
 *   convolutional_shift.c   'same' stride-1 layers by shifted GEMMs (output
 *                           and input gradient; no im2col copies)
 *   convolutional_direct.c  the direct and Winograd kernels (conv_direct.h)
 *                           for the output, input and weight gradients
 *   convolutional_depthwise.c  depthwise layers (groups = channels =
 *                           filters), plane by plane, all three passes
 * Each says whether a layer takes it (shape and policy), the workspace it
 * needs, and runs it. */
#ifndef CDB_CONVOLUTIONAL_PATHS_H
#define CDB_CONVOLUTIONAL_PATHS_H

#include "convolutional_layer.h"

int cdb_conv_shift_shape(const cdb_layer *l, const conv_priv *p);
int cdb_conv_uses_shift(const cdb_layer *l, const conv_priv *p, const cdb_network *net);
size_t cdb_conv_shift_workspace(const cdb_layer *l, const conv_priv *p);
/* output (backward 0: dst = conv(src)) or input gradient (1: dst += conv^T(src)) */
void cdb_conv_shift_pass(cdb_layer *l, cdb_network *net, int backward, const float *src, float *dst);

int cdb_conv_direct_shape(const cdb_layer *l, const conv_priv *p);
int cdb_conv_uses_direct(const cdb_layer *l, const conv_priv *p, const cdb_network *net);
int cdb_conv_uses_direct_backward(const cdb_layer *l, const conv_priv *p, const cdb_network *net);
int cdb_conv_uses_winograd(const cdb_layer *l, const conv_priv *p, const cdb_network *net);
size_t cdb_conv_direct_per_image(const cdb_layer *l, const conv_priv *p);
size_t cdb_conv_direct_workspace(const cdb_layer *l, const conv_priv *p);
/* z (batch, outputs) = conv(input) */
void cdb_conv_forward_direct(cdb_layer *l, cdb_network *net, float *z);
/* the weight gradient and, where there is one, the input gradient, from dz */
void cdb_conv_backward_direct(cdb_layer *l, cdb_network *net, const float *dz);

int cdb_conv_depthwise_shape(const cdb_layer *l, const conv_priv *p);
int cdb_conv_uses_depthwise(const cdb_layer *l, const conv_priv *p, const cdb_network *net);
/* z (batch, outputs) = conv(input); needs no workspace */
void cdb_conv_forward_depthwise(cdb_layer *l, cdb_network *net, float *z);
/* the weight gradient and, where there is one, the input gradient, from dz */
void cdb_conv_backward_depthwise(cdb_layer *l, cdb_network *net, const float *dz);

#endif
