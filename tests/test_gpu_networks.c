/* Every network of the GPU suite (tests/gpu/gpu_networks.h) builds, on the
 * CPU: a cfg mistake there would otherwise be found only on a GPU machine,
 * where time is short. */
#include "gpu_networks.h"
#include <stdlib.h>

#include "test.h"

static void t_layer_cases_build(void)
{
    for (int i = 0; i < GPU_LAYER_CASES; i++) {
        const char *why = net_error_from_text(gpu_layer_cases[i].test, gpu_layer_cases[i].cfg);
        CHECK(!why, "%s: %s", gpu_layer_cases[i].test, why);
    }
}

static void t_masked_cases_build(void)
{
    for (int i = 0; i < GPU_MASKED_CASES; i++) {
        char text[4096];
        CHECK(gpu_masked_cfg(&gpu_masked_cases[i], text, sizeof(text)) == 0, "%s: cfg", gpu_masked_cases[i].test);
        cdb_network *net = net_from_text(text);
        CHECK(net, "%s does not build", gpu_masked_cases[i].test);
        dropback_stats stats = {0};
        int selected = cdb_dropback_begin_step(net, 0, 1, &stats);
        free_net(net);
        CHECK(selected > 0, "%s: no tensor selected", gpu_masked_cases[i].test);
    }
}

static void t_training_cases_build(void)
{
    for (int i = 0; i < GPU_TRAINING_CASES; i++) {
        gpu_training_buf buf;
        const char *overrides[GPU_TRAINING_OVERRIDES];
        gpu_training_overrides(&gpu_training_cases[i], &buf, overrides);
        cdb_network *net = cdb_network_load(gpu_training_cases[i].cfg, overrides, GPU_TRAINING_OVERRIDES);
        CHECK(net, "%s: %s", gpu_training_cases[i].test, cdb_last_error());
        /* a clipping case clips: its first step's norm (the GPU suite's
         * images, on the CPU) is above the bound */
        double clip = gpu_training_cases[i].clip;
        if (clip > 0) {
            float *images = malloc((size_t)net->batch * net->inputs * sizeof(float));
            int *labels = malloc((size_t)net->batch * sizeof(int));
            CHECK(images && labels, "memory");
            fill_normal(images, (size_t)net->batch * net->inputs, 40, 1.f);
            for (int b = 0; b < net->batch; b++) labels[b] = (b * 7) % net->classes;
            float loss = cdb_trainer_run_step(trainer_of(net), images, labels);
            free(images);
            free(labels);
            CHECK(isfinite(loss) && trainer_of(net)->grad_norm > clip, "%s: norm %g, bound %g", gpu_training_cases[i].test,
                  trainer_of(net)->grad_norm, clip);
        }
        free_net(net);
    }
}

void register_gpu_network_tests(void)
{
    test_add("gpu networks/every layer case of the GPU suite builds", t_layer_cases_build);
    test_add("gpu networks/every masked case builds and selects", t_masked_cases_build);
    test_add("gpu networks/every training case builds with its overrides", t_training_cases_build);
}
