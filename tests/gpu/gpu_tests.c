/* GPU suite (make GPU=1 [CUDNN=1] gpu-test; scripts/gpu_check.sh runs it
 * with --isolate, each test in its own process): every layer type's forward
 * output, input gradient and parameter gradients on the GPU against the CPU
 * code on the same random data, then whole training steps of smallcnn and
 * vit_micro with ChannelDropBack selecting every tensor (subdivisions 1 and
 * 2): the masks must be the host's and the weights must agree after 3
 * steps; then save on the device, resume, and one more step. Inference mode
 * too (rolling statistics, dropout off), the masked gradients element by
 * element (dropped exactly 0, kept exactly the gradient / keep), and
 * realistic shapes (a ResNet-18 stage, a ViT-Tiny block at batch 64). The
 * networks are those of gpu_networks.h, which the CPU suite builds.
 *
 * Tolerances: one forward/backward, relative error (max |gpu - cpu| /
 * max |cpu| per array) under 1e-4, with cuBLAS in full FP32 (no TF32) and
 * cuDNN in FMA math (no TF32); only the order of the sums differs. After 3
 * training steps under 1e-3: the sums' order differences compound through
 * the updates and batch-norm statistics. */
#include <stdlib.h>

#include "cdbnet.h"
#include "cuda_utils.h"
#include "dropback.h"
#include "gemm.h"
#include "gpu_networks.h"
#include "test.h"

#define STEP_TOL 1e-4
#define TRAIN_TOL 1e-3

static void set_data(cdb_network *net)
{
    fill_normal(net->input, (size_t)net->mini_batch * net->inputs, 11, 1.f);
    cdb_rng rng = cdb_rng_stream(5, 5, 5);
    for (int b = 0; b < net->mini_batch; b++) {
        float sum = 0, *t = net->truth + (size_t)b * net->classes;
        for (int k = 0; k < net->classes; k++) sum += t[k] = 0.05f + cdb_rng_uniform(&rng);
        for (int k = 0; k < net->classes; k++) t[k] /= sum;
    }
}

static void forward_backward(cdb_network *net)
{
    for (int i = 0; i < net->nparams; i++) memset(net->params[i]->grad, 0, net->params[i]->size * sizeof(float));
    if (net->gpu) {
        for (int i = 0; i < net->nparams; i++) cdb_gpu_zero(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
        cdb_gpu_push(net, net->truth, (size_t)net->mini_batch * net->classes * sizeof(float));
    }
    net->loss = 0;
    cdb_network_forward(net, 1);
    cdb_network_backward(net);
    if (net->gpu)
        for (int i = 0; i < net->nparams; i++) cdb_gpu_pull(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
}

/* One forward and backward of cfg_text on the CPU and on the GPU. */
static void compare_layers(const void *arg)
{
    const char *cfg_text = arg;
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    cdb_network *cpu = net_from_text(cfg_text), *gpu = net_from_text(cfg_text);
    CHECK(cpu && gpu, "build");
    cdb_network_enable_input_gradient(cpu);
    cdb_network_enable_input_gradient(gpu);
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    set_data(cpu);
    set_data(gpu);
    forward_backward(cpu);
    forward_backward(gpu);
    double e = relative_error(cdb_network_output(gpu), cdb_network_output(cpu), (size_t)cpu->mini_batch * cpu->classes);
    CHECK(e < STEP_TOL, "output relative error %.3g", e);
    CHECK(fabs(gpu->loss - cpu->loss) <= STEP_TOL * fabs(cpu->loss), "loss %g vs %g", gpu->loss, cpu->loss);
    e = relative_error(gpu->input_delta, cpu->input_delta, (size_t)cpu->mini_batch * cpu->inputs);
    CHECK(e < STEP_TOL, "input gradient relative error %.3g", e);
    for (int i = 0; i < cpu->nparams; i++) {
        e = relative_error(gpu->params[i]->grad, cpu->params[i]->grad, cpu->params[i]->size);
        CHECK(e < STEP_TOL, "param %d (%s) gradient relative error %.3g", i, cpu->params[i]->name, e);
    }
    /* Inference mode: batch norm on its rolling statistics, dropout off. */
    cdb_network_forward(cpu, 0);
    cdb_network_forward(gpu, 0);
    e = relative_error(cdb_network_output(gpu), cdb_network_output(cpu), (size_t)cpu->mini_batch * cpu->classes);
    CHECK(e < STEP_TOL, "inference output relative error %.3g", e);
    /* Batch-norm running statistics and every other weights-file array. */
    CHECK(cdb_network_sync_to_host(gpu) == 0, "sync: %s", cdb_last_error());
    for (int l = 0; l < cpu->n; l++)
        for (int k = 0; k < cpu->layers[l].nio; k++) {
            e = relative_error(gpu->layers[l].io[k], cpu->layers[l].io[k], cpu->layers[l].io_size[k]);
            CHECK(e < STEP_TOL, "layer %d array %d relative error %.3g", l, k, e);
        }
    free_net(cpu);
    free_net(gpu);
}

/* The masked gradients themselves: after one forward and backward on the
 * device, the device mask leaves every dropped channel exactly 0 and every
 * kept element exactly the unmasked gradient / keep, and agrees with the
 * CPU's masked gradient. */
static void compare_masked(const void *arg)
{
    const gpu_masked_case *c = arg;
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    char head[4096];
    CHECK(gpu_masked_cfg(c, head, sizeof(head)) == 0, "cfg");
    cdb_network *cpu = net_from_text(head), *gpu = net_from_text(head);
    CHECK(cpu && gpu, "build");
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    set_data(cpu);
    set_data(gpu);
    dropback_stats stats = {0};
    CHECK(cdb_dropback_begin_step(cpu, 0, 1, &stats) > 0 && cdb_dropback_begin_step(gpu, 0, 1, &stats) > 0,
          "no tensor selected");
    forward_backward(cpu);
    forward_backward(gpu); /* pulls the unmasked device gradients */
    float **unmasked = calloc((size_t)gpu->nparams, sizeof(float *));
    for (int i = 0; i < gpu->nparams; i++) {
        unmasked[i] = malloc(gpu->params[i]->size * sizeof(float));
        memcpy(unmasked[i], gpu->params[i]->grad, gpu->params[i]->size * sizeof(float));
    }
    cdb_dropback_apply_masks(cpu);
    cdb_dropback_apply_masks(gpu);
    int masked = 0;
    for (int i = 0; i < gpu->nparams; i++) {
        cdb_param *pg = gpu->params[i], *pc = cpu->params[i];
        cdb_gpu_pull(gpu, pg->grad, pg->size * sizeof(float));
        CHECK(cdb_dropback_selected(pg) == cdb_dropback_selected(pc) && (!cdb_dropback_selected(pg) || !memcmp(cdb_dropback_mask(pg), cdb_dropback_mask(pc), (size_t)cdb_dropback_mask_channels(pg))),
              "tensor %d: masks differ", i);
        for (size_t k = 0; cdb_dropback_selected(pg) && k < pg->size; k++) {
            int dropped = cdb_dropback_mask(pg)[dropback_channel_of(pg, gpu->dropback.axis, k)];
            float want = dropped ? 0.f : unmasked[i][k] / cdb_dropback_keep(pg);
            CHECK(isfinite(pg->grad[k]) && memcmp(&pg->grad[k], &want, sizeof(float)) == 0,
                  "tensor %d element %zu (%s): %g, want %g", i, k, dropped ? "dropped" : "kept", pg->grad[k], want);
        }
        masked += cdb_dropback_selected(pg);
        double e = relative_error(pg->grad, pc->grad, pc->size);
        CHECK(e < STEP_TOL, "tensor %d masked gradient relative error %.3g against the CPU", i, e);
    }
    CHECK(masked > 0, "nothing masked");
    for (int i = 0; i < gpu->nparams; i++) free(unmasked[i]);
    free(unmasked);
    free_net(cpu);
    free_net(gpu);
}

/* Whole training steps: masks drawn on the host, applied on the device. */
static void compare_training(const void *arg)
{
    const gpu_training_case *c = arg;
    const char *cfg = c->cfg;
    CHECK(cdb_cuda_device_count() > 0, "no CUDA device");
    gpu_training_buf buf;
    const char *overrides[GPU_TRAINING_OVERRIDES];
    gpu_training_overrides(c, &buf, overrides);
    cdb_network *cpu = cdb_network_load(cfg, overrides, GPU_TRAINING_OVERRIDES),
                *gpu = cdb_network_load(cfg, overrides, GPU_TRAINING_OVERRIDES);
    CHECK(cpu && gpu, "load %s: %s", cfg, cdb_last_error());
    CHECK(cdb_gpu_init(gpu, 0) == 0, "gpu_init: %s", cdb_last_error());
    float *images = malloc((size_t)cpu->batch * cpu->inputs * sizeof(float));
    int *labels = malloc((size_t)cpu->batch * sizeof(int));
    for (int s = 0; s < 3; s++) {
        fill_normal(images, (size_t)cpu->batch * cpu->inputs, 40 + (uint64_t)s, 1.f);
        for (int b = 0; b < cpu->batch; b++) labels[b] = (b * 7 + s) % cpu->classes;
        float lc = cdb_trainer_run_step(trainer_of(cpu), images, labels), lg = cdb_trainer_run_step(trainer_of(gpu), images, labels);
        CHECK(fabsf(lc - lg) <= TRAIN_TOL * fabsf(lc), "step %d loss %g vs %g", s, lc, lg);
        double clip = c->clip, nc = trainer_of(cpu)->grad_norm, ng = trainer_of(gpu)->grad_norm;
        CHECK(clip == 0 || (nc > clip && fabs(ng - nc) <= TRAIN_TOL * nc),
              "step %d: gradient norm before clipping %g on the GPU, %g on the CPU (bound %g)", s, ng, nc, clip);
        for (int i = 0; i < cpu->nparams; i++) {
            cdb_param *pc = cpu->params[i], *pg = gpu->params[i];
            CHECK(cdb_dropback_selected(pc) == cdb_dropback_selected(pg) && cdb_dropback_keep(pc) == cdb_dropback_keep(pg), "step %d tensor %d: selection differs", s, i);
            if (!cdb_dropback_selected(pg)) continue;
            CHECK(!memcmp(cdb_dropback_mask(pc), cdb_dropback_mask(pg), (size_t)cdb_dropback_mask_channels(pc)), "step %d tensor %d: host masks differ", s, i);
        }
    }
    CHECK(cdb_network_sync_to_host(gpu) == 0, "sync: %s", cdb_last_error());
    for (int i = 0; i < cpu->nparams; i++) {
        double e = relative_error(gpu->params[i]->value, cpu->params[i]->value, cpu->params[i]->size);
        CHECK(e < TRAIN_TOL, "%s: tensor %d (%s) after 3 steps: relative error %.3g", cfg, i, cpu->params[i]->name, e);
    }
    /* ema=1: the device's moving average against the CPU's */
    cdb_trainer *tc = trainer_of(cpu), *tg = trainer_of(gpu);
    for (int a = 0; tc->ema && a < tc->n_ema; a++) {
        cdb_gpu_pull(gpu, tg->ema[a].avg, tg->ema[a].n * sizeof(float));
        double e = relative_error(tg->ema[a].avg, tc->ema[a].avg, tc->ema[a].n);
        CHECK(e < TRAIN_TOL, "%s: the moving average of weights-file array %d: relative error %.3g", cfg, a, e);
    }
    /* Save from the device, load into a fresh network, resume on the device:
     * the file holds the device's values, and one more step of the resumed
     * network matches one more of the original (its optimizer state went up). */
    char path[512];
    snprintf(path, sizeof(path), "%s/gpu-resume.weights", test_tmpdir());
    CHECK(cdb_checkpoint_save(trainer_of(gpu), path) == 0, "save: %s", cdb_last_error());
    cdb_network *again = cdb_network_load(cfg, overrides, GPU_TRAINING_OVERRIDES);
    CHECK(again && cdb_weights_load(again, path) == 0, "load: %s", cdb_last_error());
    trainer_of(again)->step = (int)(again->images_seen / (uint64_t)again->batch);
    CHECK(cdb_checkpoint_load_state(trainer_of(again), path) == 1, "state: %s", cdb_last_error());
    for (int i = 0; i < gpu->nparams; i++)
        CHECK(!memcmp(again->params[i]->value, gpu->params[i]->value, gpu->params[i]->size * sizeof(float)),
              "tensor %d: the saved file is not the device's values", i);
    CHECK(cdb_gpu_init(again, 0) == 0, "gpu_init: %s", cdb_last_error());
    fill_normal(images, (size_t)cpu->batch * cpu->inputs, 77, 1.f);
    cdb_trainer_run_step(trainer_of(gpu), images, labels);
    cdb_trainer_run_step(trainer_of(again), images, labels);
    CHECK(cdb_network_sync_to_host(gpu) == 0 && cdb_network_sync_to_host(again) == 0, "sync: %s", cdb_last_error());
    for (int i = 0; i < gpu->nparams; i++) {
        double e = relative_error(again->params[i]->value, gpu->params[i]->value, gpu->params[i]->size);
        CHECK(e < STEP_TOL, "tensor %d one step after the resume: relative error %.3g", i, e);
    }
    free_net(again);
    free(images);
    free(labels);
    free_net(cpu);
    free_net(gpu);
}

/* After each test: a CUDA error it left is its failure, with the error's
 * text (the suite runs each test in its own process under --isolate, so
 * that one error does not poison the tests after it). */
static void check_cuda_error(void)
{
    if (cdb_gpu_failed()) test_fail(__FILE__, __LINE__, "CUDA error: %s", cdb_last_error());
}

int main(int argc, char **argv)
{
    cdb_set_num_threads(1);
    for (int i = 0; i < GPU_LAYER_CASES; i++)
        test_add_arg(gpu_layer_cases[i].test, compare_layers, gpu_layer_cases[i].cfg, 0);
    for (int i = 0; i < GPU_MASKED_CASES; i++) test_add_arg(gpu_masked_cases[i].test, compare_masked, &gpu_masked_cases[i], 0);
    for (int i = 0; i < GPU_TRAINING_CASES; i++)
        test_add_arg(gpu_training_cases[i].test, compare_training, &gpu_training_cases[i], TEST_SLOW);
    test_set_hooks(check_cuda_error, cdb_gpu_device_reset);
    return test_run_all(argc - 1, argv + 1);
}
