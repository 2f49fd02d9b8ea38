/* Batch normalisation over (batch, channels, spatial) data, as PyTorch's
 * BatchNorm (eps 1e-5, running-statistics momentum 0.1, unbiased running
 * variance). Used by [batchnorm] and by batch_normalize=1 in
 * [convolutional] and [connected]. */
#ifndef CDB_BATCHNORM_LAYER_H
#define CDB_BATCHNORM_LAYER_H

#include "activations.h"
#include "network.h"

typedef struct {
    int channels, spatial, batch;
    cdb_param *scales, *biases;       /* gamma, beta: (channels) */
    float *rolling_mean, *rolling_variance; /* (channels) */
    float *mean, *variance;           /* this batch: (channels) */
    float *x_hat;                     /* (batch, channels, spatial) */
    float momentum;                   /* running statistics: BN_MOMENTUM, or Darknet's 0.01 with darknet=1 */
    int ranks;                        /* sync_bn=1 on several ranks: the statistics of all ranks' images, else 1 */
    double *sync_sums;                /* (2 channels) the sums exchanged when ranks > 1 */
} batchnorm;

#define BN_EPS 1e-5f

/* Adds the biases (beta) and scales (gamma) params to l; the momentum
 * follows the net's semantics (darknet=1: Darknet's). */
int cdb_bn_init(batchnorm *bn, cdb_layer *l, const cdb_network *net, int channels, int spatial, int batch); /* -1: out of memory */

/* What the standalone [batchnorm] layer keeps: its batch norm and the
 * optional activation after it. */
typedef struct {
    batchnorm bn;
    activation act;
    float *preact; /* (batch, outputs): the activation's input, when there is one */
} bn_layer_priv;
void cdb_bn_free(batchnorm *bn);
/* y = gamma * normalise(x) + beta; y may equal x. */
void cdb_bn_forward(batchnorm *bn, const float *x, float *y, int train);
/* Adds to the gamma/beta gradients; dx = dL/dx (dx may equal dy). */
void cdb_bn_backward(batchnorm *bn, const float *dy, float *dx);

#ifdef GPU
/* The same on device pointers x, y, dy, dx (batchnorm_layer_kernels.cu). */
void cdb_bn_forward_gpu(batchnorm *bn, cdb_network *net, const float *x, float *y, int train);
void cdb_bn_backward_gpu(batchnorm *bn, cdb_network *net, const float *dy, float *dx);
#endif

#endif
