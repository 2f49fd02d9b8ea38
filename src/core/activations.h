/* Element-wise activations. Gradients are computed from the pre-activation
 * input x (not from the output, as Darknet does), which every activation here
 * supports, GELU/swish/mish included. */
#ifndef CDB_ACTIVATIONS_H
#define CDB_ACTIVATIONS_H

#include <stddef.h>

typedef enum {
    ACT_LINEAR,
    ACT_RELU,
    ACT_LEAKY,
    ACT_RELU6,
    ACT_LOGISTIC,
    ACT_TANH,
    ACT_GELU,
    ACT_SWISH,
    ACT_MISH,
    ACT_HARDSWISH,
    /* Darknet's (AlexeyAB's definitions) */
    ACT_ELU,
    ACT_SELU,
    ACT_RAMP,
    ACT_HARDTAN,
    ACT_LHTAN,
    ACT_PLSE,
    ACT_LOGGY,
    ACT_RELIE,
    ACT_REVLEAKY,
    ACT_HARD_MISH,
    ACT_COUNT
} activation;

/* NULL-terminated names in enum order, for cdb_cfg_choice; "silu" is accepted as
 * an alias of swish by cdb_activation_from_name. */
extern const char *const cdb_activation_names[];
int cdb_activation_from_name(const char *name, activation *out);
const char *cdb_activation_name(activation a);

/* y = gelu(x) and g = gelu'(x) in one pass, sharing one exponential; y may
 * be x. */
void cdb_gelu_forward_grad(const float *x, float *y, float *g, size_t n);
/* y = f(x) (y may equal x). */
void cdb_activate_array(activation a, const float *x, float *y, size_t n);
/* dx = dy * f'(x) (dx may equal dy). */
void cdb_gradient_array(activation a, const float *x, const float *dy, float *dx, size_t n);

#endif
