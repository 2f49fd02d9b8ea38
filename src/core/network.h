/* The network: a plain array of layers run in order (Darknet's design), the
 * training hyper-parameters of [net], and the buffers shared by layers. */
#ifndef CDB_NETWORK_H
#define CDB_NETWORK_H

#include <stdint.h>

#include "cdbnet.h"
#include "cfg.h"
#include "dropback.h"
#include "param.h"
#include "utils.h"

typedef struct cdb_layer cdb_layer;

/* What a layer type accepts as input: an image (c, h, w), a token sequence
 * (tokens, features), or either. */
enum { LAYER_TAKES_IMAGE = 1, LAYER_TAKES_SEQUENCE = 2, LAYER_TAKES_ANY = 3 };

/* A layer type, as its file under src/layers/ exports it (one
 * `const layer_ops name_layer_ops`, listed in src/layers/layer_list.h). */
typedef struct layer_ops {
    const char *name;          /* the cfg section, e.g. "convolutional" */
    const char *alias;         /* Darknet's short name ("conv"), or NULL */
    int takes;                 /* LAYER_TAKES_* */
    int loss;                  /* computes the cost: the network's last layer */
    /* Reads the section's keys, checks them against the input shape already
     * in l and fills in the rest of l: 0, or -1 with the error recorded in r. */
    int (*make)(cdb_layer *l, cfg_reader *r, cdb_network *net);
    void (*forward)(cdb_layer *l, cdb_network *net, int train);
    void (*backward)(cdb_layer *l, cdb_network *net);
    /* GPU builds: the same on the device twins (NULL where the type has no
     * CUDA code: the layer then runs on the CPU inside a GPU run). */
    void (*forward_gpu)(cdb_layer *l, cdb_network *net, int train);
    void (*backward_gpu)(cdb_layer *l, cdb_network *net);
} layer_ops;

#define LAYER_MAX_PARAMS 4
#define LAYER_MAX_IO 6

struct cdb_layer {
    const layer_ops *ops;      /* the layer's type */
    int index;
    int batch;                 /* images per forward pass (batch / subdivisions) */
    int c, h, w;               /* input shape */
    int out_c, out_h, out_w;   /* output shape */
    /* Token sequences (vision transformers): when tokens > 0 the input is
     * (batch, tokens, c) with h = tokens and w = 1, each token's c features
     * contiguous; likewise out_tokens for the output. 0 means an image. */
    int tokens, out_tokens;
    int inputs, outputs;       /* c*h*w and out_c*out_h*out_w */
    float *input;              /* (batch, inputs): the previous layer's output */
    float *input_delta;        /* (batch, inputs): where backward adds dLoss/dinput; NULL for layer 0 */
    float *output;             /* (batch, outputs) */
    float *delta;              /* (batch, outputs): dLoss/doutput, accumulated by consumers */

    cdb_param params[LAYER_MAX_PARAMS + 1]; /* the last: a spare, where one too many goes (a build error) */
    int nparams;
    /* Arrays in weights-file order (see docs/weights.md). */
    float *io[LAYER_MAX_IO + 1];
    size_t io_size[LAYER_MAX_IO + 1];
    int nio;
    int io_pjreddie_absent;    /* 1 + the index of an array pjreddie's Darknet does not write ([batchnorm] biases), or 0 */
    unsigned io_variance;      /* bit k: array k is a variance (never negative in a file that loads) */

    char description[96];      /* for the network summary */
    size_t workspace_floats;   /* scratch this layer needs from net->workspace */
    size_t flops;              /* forward multiply-adds per image */

    void (*destroy)(cdb_layer *l); /* frees priv (set by make once priv exists) */
    void *priv;                /* what is particular to the layer type */

    /* GPU builds: what the layer's kernels keep on the device twins of the
     * arrays above (descriptors, chosen algorithms; see cuda_utils.h),
     * freed by destroy_gpu. */
    void (*destroy_gpu)(cdb_layer *l);
    void *gpu_state;
};

/* Batch norm's running-statistics momentum: PyTorch's, and Darknet's
 * (darknet=1). */
#define BN_MOMENTUM 0.1f
#define BN_MOMENTUM_DARKNET 0.01f

/* How convolutions are computed on the CPU, per network: [net] keys
 * conv_direct, conv_winograd, conv_depthwise, conv_shift, conv_slice_kb (docs/cfg.md), or
 * set through this struct. Every choice computes the same convolution up to
 * rounding (tests compare them); nothing else picks an algorithm. */
typedef enum { CONV_SHIFT_OFF, CONV_SHIFT_ON, CONV_SHIFT_AUTO } conv_shift_mode;
typedef struct {
    int direct;                /* the direct kernels where the shape allows (default 1) */
    int winograd;              /* Winograd F(2x2, 3x3) on the direct path where it applies (default 1) */
    conv_shift_mode shift;     /* shifted GEMMs: auto (default) = with one thread only */
    size_t slice_bytes;        /* direct kernels: a group's weight bytes per pass (default 320 KiB) */
    int deterministic;         /* cuDNN (GPU): only algorithms that give the same bits every run (default 0) */
    int depthwise;             /* depthwise layers plane by plane instead of im2col (default 1) */
} conv_policy;

/* What a pass is told by whoever runs it: a trainer (src/train/trainer.h)
 * sets these before each forward and backward of a step; a network run on
 * its own (prediction, evaluation, tests) leaves them zero. */
typedef struct {
    int step;                  /* optimizer steps done before this pass (the streams of dropout) */
    int subdivision;           /* the subdivision of the step's batch being run */
    /* When set: the seconds of each layer's forward and backward are added
     * here (one entry per layer; profiling, `cdbnet benchmark`). */
    double *forward_seconds, *backward_seconds;
    /* When set: called after each layer's backward, last layer first (the
     * data-parallel gradient sum starts a layer's exchange there). */
    void (*layer_done)(void *ctx, int layer);
    void *ctx;
    /* When set: (mini_batch) factors on each image's loss and its gradient
     * (class weights: the loss layer's targets are then the weighted ones,
     * normalised). */
    const float *sample_scale;
} cdb_pass_context;

/* The model: what describes and computes it. Training (the step, the
 * optimizer and schedule, the counters, ChannelDropBack's statistics, the
 * gradient sum over the ranks, profiling) is the trainer's
 * (src/train/trainer.h); the input pipeline's settings are the data
 * module's (input_config, src/data/augment.h). */
struct cdb_network {
    /* The layers in order, their trainable tensors, the input shape. */
    cdb_layer *layers;
    int n;
    cdb_param **params;        /* every trainable tensor in network order */
    int nparams;
    int w, h, c, inputs, classes;

    /* The model's keys of [net]: fixed once built (-set changes them before). */
    int batch;                 /* images per optimizer step (all ranks together) */
    int subdivisions;
    int ranks;                 /* processes sharing each step (dist.h; 1 without MPI): each forward is a share of theirs */
    int sync_bn;               /* [net] sync_bn=1: batch norm statistics over every rank's images */
    int mini_batch;            /* batch / (subdivisions x ranks): images per forward */
    int darknet;               /* darknet=1: Darknet's batch norm momentum (the trainer and the data read the key too) */
    dropback_config dropback;  /* which tensors' gradients ChannelDropBack masks, and how (dropback.h) */
    conv_policy conv;
    uint64_t seed;             /* initialisation, dropout and ChannelDropBack streams */
    uint64_t images_seen;      /* images the weights were trained on (a weights file's header; a trainer's steps add theirs) */
    char *data_path;           /* the .data file named in [net], if any */
    char *cfg_path;
    /* The [net] section as the cfg and -set gave it (a copy): what the
     * trainer and the data pipeline read their keys from. */
    struct cfg_file *settings;

    /* Buffers of a pass, shared by the layers. */
    float *input;              /* (mini_batch, inputs) */
    float *truth;              /* (mini_batch, classes): target distribution */
    float *input_delta;        /* (mini_batch, inputs): dLoss/dinput, only after cdb_network_enable_input_gradient */
    float *workspace;          /* shared scratch (im2col, the direct kernels) */
    size_t workspace_floats;
    float *skip_scratch;       /* weight-gradient GEMM workspace; compute skipping: compacted operands */
    size_t skip_scratch_floats;

    /* A pass: what its runner says, and what it leaves. */
    cdb_pass_context pass;
    double loss;               /* summed cost of the last forward */
    int pass_failed;           /* set by code inside a pass that could not do its work (out of memory) */

    /* GPU builds: set when the network runs on a CUDA device (cdb_gpu_init). */
    int gpu;
    struct gpu_context *gpu_ctx;
    float *losses;             /* (mini_batch): per-image loss, filled by the GPU softmax */
};

void cdb_network_forward(cdb_network *net, int train);
/* Zeroes every layer's output gradient, then runs the layers' backward
 * passes, last to first (with net->pass's timing and hook). */
void cdb_network_backward(cdb_network *net);
/* Also compute the gradient with respect to the network input. */
int cdb_network_enable_input_gradient(cdb_network *net); /* 0, or -1 out of memory */
/* The first layer whose output (of the last forward) holds a NaN or an
 * infinity: its index and the element, or -1. */
int cdb_network_first_non_finite_output(cdb_network *net, size_t *index);
/* Whether a failure was recorded during the passes now under way (a
 * layer's scratch could not be allocated, a CUDA error). */
int cdb_network_pass_failed(cdb_network *net);
/* Output of the last layer for the current mini-batch. */
const float *cdb_network_output(const cdb_network *net);
/* Hashes of the trainable tensors as the last update left them (brought to
 * the host first when the network is on a GPU) and of the dropback masks
 * drawn so far (each tensor's selections and per-channel drop counts):
 * what the ranks of a data-parallel run compare at its end. 0, or -1 after
 * a device error. */
int cdb_network_state_hash(cdb_network *net, uint64_t hash[2]);


#endif
