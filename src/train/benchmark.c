#include "benchmark.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv_direct.h"
#include "convolutional_layer.h"
#include "gemm.h"
#include "images.h"
#include "loader.h"
#include "trainer.h"

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double cdb_sgemm_gflops(int n, int repeats)
{
    float *a = cdb_xmalloc((size_t)n * n * sizeof(float)), *b = cdb_xmalloc((size_t)n * n * sizeof(float)),
          *c = cdb_xcalloc((size_t)n * n, sizeof(float));
    double *rates = cdb_xcalloc((size_t)repeats, sizeof(double));
    if (!a || !b || !c || !rates) {
        free(a);
        free(b);
        free(c);
        free(rates);
        return 0; /* reported as unmeasured */
    }
    cdb_rng r = cdb_rng_stream(1, 0, 0);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = cdb_rng_uniform(&r) - 0.5f;
        b[i] = cdb_rng_uniform(&r) - 0.5f;
    }
    cdb_gemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n); /* warm-up */
    for (int k = 0; k < repeats; k++) {
        double t0 = cdb_now_seconds();
        cdb_gemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
        rates[k] = 2.0 * n * n * (double)n / (cdb_now_seconds() - t0) / 1e9;
    }
    double m = median(rates, repeats);
    free(rates);
    free(a);
    free(b);
    free(c);
    return m;
}

typedef struct {
    int index;
    double seconds;
} layer_time;

static int by_time_desc(const void *a, const void *b)
{
    double x = ((const layer_time *)a)->seconds, y = ((const layer_time *)b)->seconds;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* Synthetic images and labels of the network's shape. */
static int synthetic_batch(const cdb_network *net, float **images, int **labels)
{
    size_t n_in = (size_t)net->batch * net->inputs;
    *images = cdb_xmalloc(n_in * sizeof(float));
    *labels = cdb_xmalloc((size_t)net->batch * sizeof(int));
    if (!*images || !*labels) {
        free(*images);
        free(*labels);
        return -1;
    }
    cdb_rng r = cdb_rng_stream(net->seed, 77, 0);
    for (size_t i = 0; i < n_in; i++) (*images)[i] = cdb_rng_normal(&r);
    for (int b = 0; b < net->batch; b++) (*labels)[b] = cdb_rng_int(&r, net->classes);
    return 0;
}

/* A trainer for the timed steps: with `final_rate`, a run of one step, so
 * that dropback is at its final rate, as after the last milestone; no
 * burn-in. NULL with the error recorded. */
static cdb_trainer *bench_trainer(cdb_network *net, int final_rate)
{
    cdb_trainer *tr = cdb_trainer_new(net);
    if (!tr) return NULL;
    if (final_rate) tr->cfg.max_batches = 1;
    tr->cfg.burn_in = 0;
    return tr;
}

static double sum_seconds(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}

int cdb_run_dropback_report(cdb_network *off, cdb_network *on, cdb_network *mask, cdb_network *skip,
                        const benchmark_options *opt)
{
    cdb_network *nets[4] = {off, on, mask, skip};
    cdb_trainer *trs[4] = {NULL, NULL, NULL, NULL};
    float *images;
    int *labels;
    if (synthetic_batch(off, &images, &labels)) return -1;
    double *step_ms = cdb_xcalloc((size_t)4 * opt->repeats, sizeof(double));
    double *backward_ms = cdb_xcalloc((size_t)4 * opt->repeats, sizeof(double));
    int status = step_ms && backward_ms ? 0 : -1;
    for (int v = 0; !status && v < 4; v++) {
        trs[v] = bench_trainer(nets[v], 1);
        if (!trs[v]) {
            status = -1;
            break;
        }
        for (int s = 0; s < opt->warmup; s++) cdb_trainer_run_step(trs[v], images, labels);
        status = cdb_trainer_enable_profiling(trs[v]);
    }
    for (int k = 0; !status && k < opt->repeats; k++)
        for (int v = 0; !status && v < 4; v++) {
            cdb_trainer_reset_profile(trs[v]);
            double t0 = cdb_now_seconds();
            for (int s = 0; s < opt->steps && !status; s++) {
                cdb_trainer_run_step(trs[v], images, labels);
                if (trs[v]->step_failed) status = -1;
            }
            step_ms[v * opt->repeats + k] = 1e3 * (cdb_now_seconds() - t0) / opt->steps;
            backward_ms[v * opt->repeats + k] = 1e3 * sum_seconds(trs[v]->backward_seconds, nets[v]->n) / opt->steps;
        }
    for (int v = 0; v < 4; v++) cdb_trainer_free(trs[v]);
    if (status) {
        free(step_ms);
        free(backward_ms);
        free(images);
        free(labels);
        return -1;
    }
    double med_step[4], med_bwd[4];
    for (int v = 0; v < 4; v++) {
        med_step[v] = median(step_ms + v * opt->repeats, opt->repeats);
        med_bwd[v] = median(backward_ms + v * opt->repeats, opt->repeats);
    }
    printf("dropback cost, medians of %d alternating repeats of %d steps:\n", opt->repeats, opt->steps);
    printf("  off %.2f ms/step, on at layer rate %.2f: %.2f ms/step (%+.1f%%)\n", med_step[0], on->dropback.layer_rate,
           med_step[1], 100 * (med_step[1] / med_step[0] - 1));
    printf("  layer rate 1, channel rate 0.5: backward %.2f ms/step computing then masking, %.2f ms/step skipping "
           "dropped channels (%.1f%% saved; steps %.2f vs %.2f ms)\n",
           med_bwd[2], med_bwd[3], 100 * (1 - med_bwd[3] / med_bwd[2]), med_step[2], med_step[3]);
    free(step_ms);
    free(backward_ms);
    free(images);
    free(labels);
    return 0;
}

int cdb_run_benchmark(cdb_network *net, const benchmark_options *opt)
{
    float *images;
    int *labels;
    if (synthetic_batch(net, &images, &labels)) return -1;
    double *rates = cdb_xcalloc((size_t)opt->repeats, sizeof(double));
    layer_time *order = cdb_xcalloc((size_t)net->n, sizeof(layer_time));
    cdb_trainer *tr = rates && order ? bench_trainer(net, 1) : NULL;
    if (!tr || cdb_trainer_enable_profiling(tr)) {
        cdb_trainer_free(tr);
        free(images);
        free(labels);
        free(rates);
        free(order);
        return -1;
    }
    for (int s = 0; s < opt->warmup; s++) cdb_trainer_run_step(tr, images, labels);
    cdb_trainer_reset_profile(tr); /* the warm-up steps are not timed */
    double total_seconds = 0;
    clock_t cpu0 = clock();
    for (int k = 0; k < opt->repeats; k++) {
        double t0 = cdb_now_seconds();
        for (int s = 0; s < opt->steps; s++) {
            float loss = cdb_trainer_run_step(tr, images, labels);
            if (loss != loss) {
                if (!tr->step_failed) cdb_set_error("benchmark: the loss became NaN at step %d", tr->step);
                cdb_trainer_free(tr);
                free(images);
                free(labels);
                free(rates);
                free(order);
                return -1;
            }
        }
        double dt = cdb_now_seconds() - t0;
        total_seconds += dt;
        rates[k] = (double)opt->steps * net->batch / dt;
    }
    /* process CPU time over wall time: how many cores the timed steps kept busy */
    double cores_busy = (double)(clock() - cpu0) / CLOCKS_PER_SEC / total_seconds;
    double steps_total = (double)opt->steps * opt->repeats;
    double lo = rates[0], hi = rates[0];
    for (int k = 1; k < opt->repeats; k++) {
        lo = rates[k] < lo ? rates[k] : lo;
        hi = rates[k] > hi ? rates[k] : hi;
    }
    double med = median(rates, opt->repeats);

    double fwd = 0, bwd = 0;
    size_t flops = 0;
    for (int i = 0; i < net->n; i++) {
        fwd += tr->forward_seconds[i];
        bwd += tr->backward_seconds[i];
        flops += net->layers[i].flops;
    }
    /* Training: forward, input gradient and weight gradient, 2 FLOPs per multiply-add. */
    double train_flops = 6.0 * (double)flops;
    double gemm_rate = net->gpu ? 0 : cdb_sgemm_gflops(1024, 5);
    double achieved = train_flops * med / 1e9;

    int dropback_tensors = 0;
    for (int i = 0; i < net->nparams; i++) dropback_tensors += cdb_dropback_takes_part(net->params[i]);
    if (net->gpu)
        printf("benchmark %s: batch %d, on the GPU, dropback %s\n", net->cfg_path, net->batch,
               dropback_tensors ? "on (final layer rate)" : "off");
    else
        printf("benchmark %s: batch %d, %d threads, gemm %s, dropback %s\n", net->cfg_path, net->batch,
               cdb_get_num_threads(), cdb_gemm_backend(), dropback_tensors ? "on (final layer rate)" : "off");
    if (!net->gpu) {
        int direct = 0, wino = 0, shift = 0, depthwise = 0, other = 0;
        for (int i = 0; i < net->n; i++) {
            if (strcmp(net->layers[i].ops->name, "convolutional")) continue;
            if (cdb_convolutional_uses_depthwise(&net->layers[i], net)) depthwise++;
            else if (cdb_convolutional_uses_winograd(&net->layers[i], net)) wino++;
            else if (cdb_convolutional_uses_direct(&net->layers[i], net, 0)) direct++;
            else if (cdb_convolutional_uses_shift(&net->layers[i], net)) shift++;
            else other++;
        }
        printf("kernels: %s (%d floats a vector); convolutions: %d depthwise, %d Winograd, %d direct, %d shifted GEMM, "
               "%d im2col; weight gradients: fixed-order GEMM\n",
               cdb_cd_kernels_isa(), (int)(cdb_cd_kernels_vector_bytes() / sizeof(float)), depthwise, wino, direct, shift,
               other);
    }
    printf("images/s: median %.1f over %d repeats of %d steps (min %.1f, max %.1f, spread %.1f%%)\n", med,
           opt->repeats, opt->steps, lo, hi, 100 * (hi - lo) / med);
    printf("cpu: %.2f cores busy on average while timed\n", cores_busy);
    printf("ms per step: total %.2f = forward %.2f + backward %.2f + update %.2f + dropback %.2f (+ other %.2f)\n",
           1e3 * total_seconds / steps_total, 1e3 * fwd / steps_total, 1e3 * bwd / steps_total,
           1e3 * tr->update_seconds / steps_total, 1e3 * tr->dropback_seconds / steps_total,
           1e3 * (total_seconds - fwd - bwd - tr->update_seconds - tr->dropback_seconds) / steps_total);
    if (net->ranks > 1) {
        size_t floats = 0;
        for (int i = 0; i < net->nparams; i++) floats += net->params[i]->size;
        size_t sent = tr->dist.floats_sent ? tr->dist.floats_sent : floats;
        printf("data-parallel: %d ranks, %d images each per step; the gradient sum over the ranks took %.2f ms per "
               "step (in 'backward' and 'other'), %.3g MB of gradients reduced and broadcast in the last step (%.3g MB "
               "in all: ChannelDropBack's dropped channels stay out)\n",
               net->ranks, net->batch / net->ranks, 1e3 * tr->comm_seconds / steps_total, sent * 4.0 / 1e6,
               floats * 4.0 / 1e6);
    }
    if (net->gpu || gemm_rate <= 0)
        printf("training FLOPs per image: %.3f GFLOP; achieved %.1f GFLOP/s\n", train_flops / 1e9, achieved);
    else
        printf("training FLOPs per image: %.3f GFLOP; achieved %.1f GFLOP/s; sgemm 1024^3 in this run: %.1f GFLOP/s "
               "(%.0f%% of it)\n",
               train_flops / 1e9, achieved, gemm_rate, 100 * achieved / gemm_rate);

    for (int i = 0; i < net->n; i++) {
        order[i].index = i;
        order[i].seconds = tr->forward_seconds[i] + tr->backward_seconds[i];
    }
    qsort(order, (size_t)net->n, sizeof(layer_time), by_time_desc);
    int top = opt->top < net->n ? opt->top : net->n;
    printf("%5s %-14s %-34s %10s %10s %7s %9s\n", "layer", "type", "details", "fwd ms", "bwd ms", "share", "GFLOP/s");
    for (int k = 0; k < top; k++) {
        const cdb_layer *l = &net->layers[order[k].index];
        double f = tr->forward_seconds[order[k].index], b = tr->backward_seconds[order[k].index];
        double rate = l->flops && (f + b) > 0 ? 6.0 * l->flops * net->batch * steps_total / (f + b) / 1e9 : 0;
        printf("%5d %-14s %-34s %10.3f %10.3f %6.1f%% %9.1f\n", l->index, l->ops->name, l->description,
               1e3 * f / steps_total, 1e3 * b / steps_total, 100 * (f + b) / (fwd + bwd), rate);
    }
    cdb_trainer_free(tr);
    free(order);
    free(rates);
    free(images);
    free(labels);
    return 0;
}

/* One arm of the data benchmark: `steps` steps (trained, or with
 * data_only the batches alone) from step `first`; images/s. Image files
 * come through a fresh prefetching loader, whose first batch is waited
 * for, as a run's first step waits. */
static double data_arm(cdb_trainer *tr, const input_config *in, const cdb_dataset *d, int first, int steps,
                       int data_only, double *waited)
{
    cdb_network *net = tr->net;
    batch_loader loader;
    int prefetch = d->paths != NULL && !data_only, status = 0, order_epoch = -1;
    float *images = NULL;
    int *labels = NULL, *order = NULL;
    float *own_images = cdb_xcalloc((size_t)net->batch * net->inputs, sizeof(float));
    int *own_labels = cdb_xcalloc((size_t)net->batch, sizeof(int));
    order = cdb_xcalloc((size_t)d->n, sizeof(int));
    if (!own_images || !own_labels || !order) status = -1;
    double t0 = cdb_now_seconds();
    if (!status && prefetch) status = cdb_loader_start(&loader, d, in, net->seed, net->batch, 0, net->batch, first,
                                                 first + steps);
    for (int s = first; !status && s < first + steps; s++) {
        if (prefetch) {
            status = cdb_loader_next(&loader, s, &images, &labels);
        } else {
            images = own_images;
            labels = own_labels;
            status = cdb_loader_fill_step(d, in, net->seed, net->batch, 0, net->batch, s, order, &order_epoch, images,
                                      labels);
        }
        if (!status && !data_only) {
            cdb_trainer_run_step(tr, images, labels);
            if (tr->step_failed) status = -1;
        }
    }
    double seconds = cdb_now_seconds() - t0;
    if (prefetch) {
        *waited += loader.wait_seconds;
        cdb_loader_stop(&loader);
    }
    free(own_images);
    free(own_labels);
    free(order);
    return status ? -1 : steps * (double)net->batch / seconds;
}

static int time_data_arms(cdb_network *net, const cdb_dataset *files, const cdb_dataset *memory,
                          const benchmark_options *opt, int data_only)
{
    const cdb_dataset *arms[2] = {files, memory};
    const char *names[2] = {"image files, decoded while training", "the same images in memory"};
    if (data_only) names[0] = "image files, decoded";
    double *rates = cdb_xcalloc((size_t)2 * opt->repeats, sizeof(double)), waited = 0;
    input_config in;
    cdb_trainer *tr = rates && !cdb_input_config_of(net, &in) ? bench_trainer(net, 0) : NULL;
    if (!tr) {
        free(rates);
        return -1;
    }
    printf("data benchmark: %s, batch %d, %d steps x %d repeats per arm, alternately%s\n", net->cfg_path, net->batch,
           opt->steps, opt->repeats, data_only ? ", the batches alone (no training)" : "");
    if (files) printf("  %s: %d images, %d decoding threads (%s)\n", files->name, files->n, files->workers,
                      cdb_image_decoder_name());
    int step = 0, status = 0;
    for (int a = 0; a < 2 && !status; a++) /* warm-up: untimed */
        if (arms[a] && opt->warmup && data_arm(tr, &in, arms[a], step, opt->warmup, data_only, &waited) < 0) status = -1;
    step += opt->warmup;
    waited = 0;
    for (int k = 0; k < opt->repeats && !status; k++)
        for (int a = 0; a < 2 && !status; a++) {
            if (!arms[a]) continue;
            double r = data_arm(tr, &in, arms[a], step, opt->steps, data_only, &waited);
            if (r < 0) status = -1;
            rates[a * opt->repeats + k] = r;
            step += opt->steps;
        }
    if (!status) {
        double med[2] = {0, 0};
        for (int a = 0; a < 2; a++) {
            if (!arms[a]) continue;
            printf("  %-40s", names[a]);
            for (int k = 0; k < opt->repeats; k++) printf(" %8.1f", rates[a * opt->repeats + k]);
            med[a] = median(rates + a * opt->repeats, opt->repeats);
            printf("  median %.1f images/s\n", med[a]);
        }
        if (files && memory)
            printf("  image files / in memory: %.3f (the ratio of the medians)\n", med[0] / med[1]);
        if (files && memory && !data_only)
            printf("  the steps waited %.2f s in all for decoded batches, over %d timed steps\n", waited,
                   opt->steps * opt->repeats);
    }
    cdb_trainer_free(tr);
    free(rates);
    return status;
}

int cdb_run_data_benchmark(cdb_network *net, data_config *d, const benchmark_options *opt, int data_only)
{
    cdb_dataset files = {0}, memory = {0};
    int status = -1;
    long need = (long)(opt->warmup + 1 + (long)opt->steps * opt->repeats) * net->batch;
    int image_files = d->format == DATA_FOLDER || d->format == DATA_LIST;
    cdb_dataset *first = image_files ? &files : &memory;
    input_config in;
    if (cdb_input_config_of(net, &in)) return -1;
    if (image_files && (in.resized_crop || in.darknet_crop)) {
        cdb_set_error("the in-memory arm keeps pre-processed images, so it cannot time random crops: benchmark with "
                      "-set net.resized_crop=0 (or -set net.center=1 for Darknet's crop)");
        goto done;
    }
    d->cache = 0;
    if (cdb_dataset_read(d, "train", first)) goto done;
    if (first->n > need) cdb_dataset_truncate(first, (int)need);
    if (cdb_dataset_check_against(first, net)) goto done;
    if (first->n < net->batch) {
        cdb_set_error("the training set '%s' has %d images, fewer than a batch of %d", first->name, first->n,
                      net->batch);
        goto done;
    }
    if (image_files) { /* the same images, decoded once into memory */
        if (cdb_dataset_read(d, "train", &memory)) goto done;
        if (memory.n > need) cdb_dataset_truncate(&memory, (int)need);
        memory.cache = 1;
        if (cdb_dataset_check_against(&memory, net)) goto done;
    }
    status = time_data_arms(net, image_files ? &files : NULL, &memory, opt, data_only);
done:
    cdb_dataset_clear(&files);
    cdb_dataset_clear(&memory);
    return status;
}
