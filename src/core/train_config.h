/* What the trainer is told by [net]: the optimizer, the learning-rate
 * schedule, the run's length and cadence, the targets' label smoothing and
 * what a non-finite loss does. The trainer (src/train/trainer.c) reads these
 * keys; the optimizer and the schedule (core) compute with them. */
#ifndef CDB_TRAIN_CONFIG_H
#define CDB_TRAIN_CONFIG_H

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
    int decay_norm_bias;       /* apply weight decay to biases and norm scales too (else only to dropback-eligible tensors) */
    int darknet;               /* darknet=1: Darknet's training semantics (burn_in power, no decay on biases/scales) */
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
    float label_smoothing;     /* PyTorch's: 1 - eps + eps/K on the label, eps/K elsewhere */
    float label_smooth_eps;    /* Darknet's form (1 - eps on the label, eps/(classes-1) elsewhere), turned into label_smoothing once classes are known */
    int valid_every, save_every; /* steps between validations and between checkpoints (0: each epoch, and with validation) */
    int ema;                   /* ema=1: an exponential moving average of the weights (timm's ModelEmaV3) */
    float ema_decay;           /* its decay (timm train.py's default 0.9998) */
    int ema_warmup;            /* ema_warmup=1: ModelEmaV3's warm-up, decay = min(ema_decay, 1 - (1 + s)^(-2/3)) */
    float clip_grad_norm;      /* > 0: the gradients scaled down so that their global L2 norm is at most this (PyTorch's clip_grad_norm_) */
} train_config;

#endif
