/* What a layer's _kernels.cu includes first: the CUDA helpers and the layer
 * interface, with C linkage for the GPU twins that its layer_ops names. */
#ifndef CDB_LAYER_KERNELS_CUH
#define CDB_LAYER_KERNELS_CUH

#include "cuda_common.cuh"
extern "C" {
#include "layers.h"
}

#endif
