/* The GPU twin of dropback.c: the mask on a gradient's device copy, element
 * for element as the CPU (shared_math.h). The mask itself is drawn on the
 * host from the run's dropback stream and pushed up. */
#include "cuda_common.cuh"
#include "shared_math.h"

static __global__ void mask_gradient_kernel(float *grad, size_t n, const uint8_t *dropped, int channels, int inner,
                                     int axis_out, float keep)
{
    FOR_EACH(i, n) grad[i] = dropback_masked(grad[i], dropped[tensor_channel_of(i, channels, inner, axis_out)], keep);
}

extern "C" void cdb_dropback_mask_gradient_gpu(cdb_network *net, const cdb_param *p)
{
    const uint8_t *mask = cdb_dropback_mask(p);
    size_t channels = (size_t)cdb_dropback_mask_channels(p);
    if (!mask) return;
    cdb_gpu_push(net, mask, channels);
    const uint8_t *dropped = (const uint8_t *)cdb_gpu_twin(net, mask, channels);
    mask_gradient_kernel<<<grid_for(p->size), THREADS>>>(GPU_F(net, p->grad, p->size), p->size, dropped, p->channels,
                                                         p->inner, net->dropback.axis == DROPBACK_AXIS_OUT,
                                                         cdb_dropback_keep(p));
    LAUNCH_CHECK(mask_gradient_kernel);
}
