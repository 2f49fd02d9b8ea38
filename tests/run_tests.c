/* CPU test runner: `tests/run_tests [-j N] [--only TAGS] [--skip TAGS]
 * [WORD...] [-WORD...]` runs every test whose name contains one of the
 * WORDs (all by default) and none of the -WORDs, with and without the
 * tags given (slow, spawns, kernels; test.h), N at a time: e.g.
 * `tests/run_tests --skip slow,spawns` under an emulator. */
#include <stdlib.h>

#include "gemm.h"
#include "test.h"

int main(int argc, char **argv)
{
    /* The CPU suite runs on the CPU in every build: the cdbnet commands it
     * runs (and this process) see no CUDA device, even on a GPU machine
     * (tests/gpu_tests compares the GPU with the CPU). */
    setenv("CUDA_VISIBLE_DEVICES", "", 1);
    cdb_set_num_threads(1);
    register_cfg_tests();
    register_shipped_cfg_tests();
    register_gradcheck_tests();
    register_layer_tests();
    register_fastmath_tests();
    register_dropback_tests();
    register_optimizer_tests();
    register_weights_tests();
    register_data_tests();
    register_image_tests();
    register_fixture_tests();
    register_api_tests();
    register_cli_tests();
    register_reliability_tests();
    register_darknet_tests();
    register_zoo_tests();
    register_gpu_network_tests();
    register_compare_tests();
    register_mpi_tests();
    register_e2e_tests();
    return test_run_all(argc - 1, argv + 1);
}
