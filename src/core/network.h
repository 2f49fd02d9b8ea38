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

typedef enum { OPT_SGD, OPT_ADAMW } optimizer_kind;
typedef enum {
    POLICY_CONSTANT,
    POLICY_STEPS,
    POLICY_POLY,
    POLICY_COSINE,
    POLICY_STEP,
    POLICY_EXP,
    POLICY_SIG,
    POLICY_SGDR
} lr_policy;

#define MAX_LR_STEPS 16

typedef struct {
    optimizer_kind optimizer;
    float learning_rate, momentum, decay, beta1, beta2, eps;
    int nesterov;
    int decay_norm_bias;       /* apply weight decay to biases and norm scales too */
    int darknet;               /* darknet=1: Darknet's training semantics (burn_in power, no decay on biases/scales, BN momentum 0.01) */
    lr_policy policy;
    int steps[MAX_LR_STEPS];
    float scales[MAX_LR_STEPS];
    int nsteps;
    float step_fractions[MAX_LR_STEPS]; /* steps= given as fractions of the training length (all in (0, 1)) */
    int steps_fractional;              /* then steps[] = round(fraction * max_batches), set by cdb_schedule_resolve */
    float power, learning_rate_min;
    int step;                  /* policy=step: every `step` steps x scale; policy=sig: the midpoint */
    float scale, gamma;        /* policy=step's factor; policy=exp's and sig's gamma */
    int sgdr_cycle, sgdr_mult; /* policy=sgdr: the first cycle's steps (0: max_batches), each next cycle's factor */
    int burn_in;
    int max_batches, max_epochs;
    int nan_policy;            /* 0 stop: a non-finite loss ends the run; 1 skip_step: the step's update is dropped */
} train_config;

typedef struct {
    int crop_pad;              /* random crop after zero-padding by this many pixels */
    int flip;                  /* random horizontal flip */
    float angle;               /* random rotation by up to this many degrees either way (Darknet's angle=) */
    float hue, saturation, exposure; /* Darknet's colour distortion: hue shift up to +-hue, factors up to x or / the others */
    float mean[4], std[4];     /* per-channel input normalisation of [0,1] pixels */
    int nmean, nstd;
    /* Image files (folder and list datasets, predict): the shorter side
     * resized to image_resize (0: the larger of width and height), then
     * the centre crop; in training with resized_crop=1, torchvision's
     * RandomResizedCrop instead (area scale..1, aspect ratio..1/ratio). */
    int image_resize;
    int resized_crop;
    float resized_crop_scale, resized_crop_ratio;
    /* Darknet's classifier crop of image files in training (min_crop,
     * max_crop, aspect keys, or darknet=1; center=1 turns it off): the
     * shorter side scaled to a random min_crop..max_crop, the aspect
     * stretched by up to `aspect`, a random window of the network's size. */
    int darknet_crop, min_crop, max_crop;
    int darknet_crop_keys;     /* min_crop, max_crop or aspect given (warned about for in-memory datasets) */
    float aspect;
} input_config;

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

struct cdb_network {
    /* The model: layers in order, their trainable tensors, the input shape. */
    cdb_layer *layers;
    int n;
    cdb_param **params;        /* every trainable tensor in network order */
    int nparams;
    int w, h, c, inputs, classes;

    /* Hyper-parameters of [net]: fixed once built (-set changes them before). */
    int batch;                 /* images per optimizer step (all ranks together) */
    int subdivisions;
    int ranks;                 /* processes sharing each step (dist.h; 1 without MPI) */
    int sync_bn;               /* [net] sync_bn=1: batch norm statistics over every rank's images */
    int mini_batch;            /* batch / (subdivisions x ranks): images per forward */
    train_config train;
    input_config input_cfg;
    dropback_config dropback;
    conv_policy conv;
    float label_smoothing;
    float label_smooth_eps;    /* Darknet's form (1 - eps on the label, eps/(classes-1) elsewhere), turned into label_smoothing once classes are known */
    int valid_every, save_every;
    uint64_t seed;
    char *data_path;           /* the .data file named in [net], if any */
    char *cfg_path;

    /* Buffers of a pass, shared by the layers. */
    float *input;              /* (mini_batch, inputs) */
    float *truth;              /* (mini_batch, classes): target distribution */
    float *input_delta;        /* (mini_batch, inputs): dLoss/dinput, only after cdb_network_enable_input_gradient */
    float *workspace;          /* shared scratch (im2col, the direct kernels) */
    size_t workspace_floats;
    float *skip_scratch;       /* weight-gradient GEMM workspace; compute skipping: compacted operands */
    size_t skip_scratch_floats;

    /* Run state: what a checkpoint records (seen, step) and what a pass sets. */
    uint64_t seen;             /* images trained on */
    int step;                  /* optimizer steps done */
    int subdivision;           /* the subdivision being run (for dropout streams) */
    double loss;               /* summed cost of the last forward */
    int pass_failed;           /* set by code inside a pass that could not do its work (out of memory) */
    int step_failed;           /* the last cdb_network_train_step failed (see cdb_last_error) */
    int step_skipped;          /* nan_policy=skip_step: the last step's loss or gradient was not finite, its update dropped */
    long skipped_steps;        /* how many steps were skipped so far */
    dropback_stats dropback_stats; /* counted by each draw; the training loop resets and prints them */
    float *dist_buffer;        /* data-parallel runs: the packed gradients of the all-reduce */
    int summing_gradients;     /* this step's backward starts the sum over the ranks (cdb_dist_begin_gradients) */
    size_t dist_floats_sent;   /* floats the last step's sum moved (dropped channels left out) */
    size_t dist_buffer_size;

    /* Profiling (cdbnet benchmark): when `profile` is set, seconds spent are
     * added here. forward_seconds and backward_seconds have one entry per layer. */
    int profile;
    double *forward_seconds, *backward_seconds;
    double update_seconds, dropback_seconds;
    double comm_seconds;       /* data-parallel runs: the gradient sum over the ranks */

    /* GPU builds: set when the network runs on a CUDA device (cdb_gpu_init). */
    int gpu;
    struct gpu_context *gpu_ctx;
    float *losses;             /* (mini_batch): per-image loss, filled by the GPU softmax */
};

/* Build from a parsed cfg (parser.c). */
struct cfg_file;
cdb_network *cdb_network_build(struct cfg_file *cfg);
void cdb_network_forward(cdb_network *net, int train);
/* Per-layer and per-phase timing for `cdbnet benchmark`. */
int cdb_network_enable_profiling(cdb_network *net); /* 0, or -1 out of memory */
void cdb_network_reset_profile(cdb_network *net);
void cdb_network_backward(cdb_network *net);
float cdb_network_learning_rate(const cdb_network *net);
/* Also compute the gradient with respect to the network input. */
int cdb_network_enable_input_gradient(cdb_network *net); /* 0, or -1 out of memory */
/* Run one optimizer step; images (batch, inputs), labels (batch). Returns
 * the mean loss, or NaN with the weights untouched: when the loss is not
 * finite, or when the step failed (step_failed set, the error recorded:
 * out of memory, a CUDA error). */
float cdb_network_train_step(cdb_network *net, const float *images, const int *labels);
/* The first layer whose output (of the last forward) holds a NaN or an
 * infinity: its index and the element, or -1. */
int cdb_network_first_non_finite_output(cdb_network *net, size_t *index);
/* Whether a failure was recorded during the passes now under way (a
 * layer's scratch could not be allocated, a CUDA error). */
int cdb_network_pass_failed(cdb_network *net);
void cdb_network_print_summary(const cdb_network *net, FILE *out);
/* Output of the last layer for the current mini-batch. */
const float *cdb_network_output(const cdb_network *net);
/* The first NaN or infinity in the weights-file arrays (weights, biases,
 * scales, rolling statistics), on the host copies: 1 and where, or 0. */
int cdb_network_first_non_finite(const cdb_network *net, int *layer, int *array, size_t *index);
/* Hashes of the trainable tensors as the last update left them (brought to
 * the host first when the network is on a GPU) and of the dropback masks
 * drawn so far (each tensor's selections and per-channel drop counts):
 * what the ranks of a data-parallel run compare at its end. 0, or -1 after
 * a device error. */
int cdb_network_state_hash(cdb_network *net, uint64_t hash[2]);
/* "weights", "biases", ... or "rolling statistics": array k of l's weights-file arrays */
const char *cdb_layer_array_name(const cdb_layer *l, int k);


#endif
