#include "train.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "gemm.h"
#include "loader.h"
#include "mixup.h"
#include "dropback_report.h"
#include "runlog.h"
#include "model.h"
#include "schedule.h"

int cdb_validate_network(cdb_network *net, const cdb_dataset *valid, valid_result *out)
{
    return cdb_validate_confusion(net, valid, out, NULL, NULL);
}

int cdb_validate_confusion(cdb_network *net, const cdb_dataset *valid, valid_result *out, long *confusion,
                           float *scores)
{
    int mb = net->mini_batch, K = net->classes;
    float *images = cdb_xcalloc((size_t)mb * net->inputs, sizeof(float));
    int *labels = cdb_xcalloc((size_t)mb, sizeof(int)), *idx = cdb_xcalloc((size_t)mb, sizeof(int));
    input_config in;
    int status = images && labels && idx && !cdb_input_config_of(net, &in) ? 0 : -1;
    long top1 = 0, top5 = 0;
    int nonfinite = 0;
    double loss = 0;
    for (int start = 0; !status && start < valid->n; start += mb) {
        int count = valid->n - start < mb ? valid->n - start : mb;
        for (int i = 0; i < mb; i++) idx[i] = start + (i < count ? i : 0);
        if (cdb_dataset_fill_batch(valid, idx, mb, &in, 0, NULL, images, labels)) {
            status = -1;
            break;
        }
        memcpy(net->input, images, (size_t)mb * net->inputs * sizeof(float));
        cdb_network_forward(net, 0);
        if (cdb_network_pass_failed(net)) {
            status = -1;
            break;
        }
        const float *probs = cdb_network_output(net);
        for (int i = 0; i < count; i++) {
            const float *p = probs + (size_t)i * K;
            float mine = p[labels[i]];
            /* classes ranked at or above the label's: a tie is not a win,
             * and a NaN (of the label or another class) counts against it */
            int above = 0;
            for (int k = 0; k < K; k++) above += k != labels[i] && !(p[k] < mine);
            int finite = 1;
            for (int k = 0; k < K; k++) finite &= isfinite(p[k]) != 0;
            if (!finite) above = K;
            nonfinite += !finite;
            top1 += above == 0;
            top5 += above < 5;
            if (confusion) confusion[(size_t)labels[i] * (K + 1) + cdb_predicted_class(p, K, labels[i])]++;
            if (scores) memcpy(scores + (size_t)(start + i) * K, p, (size_t)K * sizeof(float));
            loss -= log(finite && mine > 1e-30f ? mine : 1e-30f); /* a non-finite output: the worst score */
        }
    }
    out->nonfinite = nonfinite;
    out->count = valid->n;
    out->top1 = (float)top1 / valid->n;
    out->top5 = (float)top5 / valid->n;
    out->loss = (float)(loss / valid->n);
    free(images);
    free(labels);
    free(idx);
    return status;
}

/* A validation of the training loop: top-1 and the rest in v, and the
 * macro F1 of the per-class counts (the log's column). */
static int validate_with_f1(cdb_network *net, const cdb_dataset *valid, valid_result *v, double *f1)
{
    int K = net->classes;
    long *confusion = cdb_xcalloc((size_t)K * (K + 1), sizeof(long));
    if (!confusion) return -1;
    int status = cdb_validate_confusion(net, valid, v, confusion, NULL);
    class_metrics macro, weighted;
    if (!status) {
        cdb_class_metrics(confusion, K, NULL, &macro, &weighted);
        *f1 = macro.f1;
    }
    free(confusion);
    return status;
}

/* ema=1: the moving average's validation (its top-1 into *top1) and, when
 * it is the best so far, its file `best_path` (BACKUP/CFGNAME_best.ema.weights)
 * with BEST.top1 beside it (the top-1 and step, read back by a resumed run). */
static int validate_ema(cdb_trainer *tr, const cdb_dataset *valid, const char *best_path, double *top1, int quiet)
{
    valid_result v;
    if (cdb_trainer_ema_swap(tr, 1)) return -1;
    int status = cdb_validate_network(tr->net, valid, &v);
    int best = !status && v.top1 > tr->best_ema_top1;
    if (best && best_path) status = cdb_weights_write(tr->net, best_path, tr->seen, tr->step);
    if (cdb_trainer_ema_swap(tr, 0)) status = -1;
    if (status) return -1;
    *top1 = v.top1;
    if (best && best_path) {
        tr->best_ema_top1 = v.top1;
        char side[4200], tmp[4210];
        snprintf(side, sizeof(side), "%s.top1", best_path);
        FILE *f = cdb_temp_open(side, tmp, sizeof(tmp));
        if (!f) return -1;
        fprintf(f, "%.6f %d\n", v.top1, tr->step);
        if (cdb_temp_commit(f, tmp, side)) return -1;
    }
    if (!quiet)
        printf("valid  step %d: the moving average (ema): top-1 %.2f%%  loss %.4f%s\n", tr->step, 100 * v.top1, v.loss,
               best && best_path ? "  (best so far: saved)" : "");
    return 0;
}

static void format_duration(double s, char *buf, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

/* Temporary files PATH.tmp.PID (and PATH.state.tmp.PID) that a killed save
 * left behind: removed when their process is gone. */
static void remove_stale_temporaries(const char *path)
{
    char pattern[4200];
    const char *suffix[2] = {"", ".state"};
    for (int k = 0; k < 2; k++) {
        snprintf(pattern, sizeof(pattern), "%s%s.tmp.*", path, suffix[k]);
        glob_t g;
        if (glob(pattern, 0, NULL, &g) != 0) continue;
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *pid_text = strrchr(g.gl_pathv[i], '.') + 1;
            char *end;
            long pid = strtol(pid_text, &end, 10);
            if (*end || pid <= 0 || pid == (long)getpid()) continue;
            if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) remove(g.gl_pathv[i]);
        }
        globfree(&g);
    }
}

/* Before training: a weights file can be written at path (its folder
 * exists and is writable, the path is not a folder), so that a run is not
 * lost at its first save. Probes with the temporary name saves use. */
static int probe_output(const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        cdb_set_error("%s '%s' exists and is not a regular file", what, path);
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        cdb_set_error("cannot write the %s '%s': %s (checked before training)", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    remove(tmp);
    return 0;
}

/* Weights, and the optimizer state beside them (PATH.state). */
static int save_checkpoint(const cdb_trainer *tr, const char *path) { return cdb_checkpoint_save(tr, path); }

static void report_validation(const cdb_trainer *tr, const valid_result *v)
{
    const cdb_network *net = tr->net;
    if (net->classes > 5)
        printf("valid  step %d: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%d images)\n", tr->step, 100 * v->top1,
               100 * v->top5, v->loss, v->count);
    else
        printf("valid  step %d: top-1 %.2f%%  loss %.4f  (%d images)\n", tr->step, 100 * v->top1, v->loss, v->count);
    if (v->nonfinite)
        printf("warning: %d of %d validation images had a non-finite output (counted wrong)\n", v->nonfinite, v->count);
    fflush(stdout);
}


/* After each update: a weight, bias, scale or rolling statistic that went
 * NaN or infinite stops the run there, naming it (ReLU maps NaN to 0, so
 * the loss alone can miss it). GPU runs check their host copies when they
 * save. */
static int check_parameters_finite(cdb_trainer *tr)
{
    cdb_network *net = tr->net;
    int layer, array;
    size_t at;
    if (net->gpu || !cdb_network_first_non_finite(net, &layer, &array, &at)) return 0;
    const cdb_layer *l = &net->layers[layer];
    cdb_set_error("training diverged at step %d: layer %d [%s] %s (array %d), value %zu is not finite (%g) after the "
                  "update (learning rate %g). Lower learning_rate or add burn_in in %s; nothing of this step was saved",
                  tr->step, layer, l->ops->name, cdb_layer_array_name(l, array), array, at, l->io[array][at],
                  cdb_trainer_learning_rate(tr), net->cfg_path);
    return -1;
}

/* Before the regular cadence: lines after 1, 2, 5, 10, 20, 50, ... steps of
 * this run, so that a slow model shows it is moving within seconds. */
static int early_progress(int steps_done, int print_every)
{
    if (steps_done >= print_every) return 0;
    for (long m = 1; m <= steps_done; m *= 10)
        if (steps_done == m || steps_done == 2 * m || steps_done == 5 * m) return 1;
    return 0;
}

/* One run per backup folder: an advisory lock on BACKUP/.cdbnet.lock,
 * held until the run ends (the kernel drops it when the process dies, kill
 * -9 included). The file holds the holder's pid, for the message. Returns
 * the lock's descriptor, or -1 with the error recorded. */
static int lock_backup(const char *dir)
{
    char path[4096], holder[64];
    snprintf(path, sizeof(path), "%s/.cdbnet.lock", dir);
    int fd = cdb_lock_file(path, holder, sizeof(holder));
    if (fd == -2)
        cdb_set_error("another cdbnet run (pid %s) is training into the backup folder '%s' (it holds %s): give this "
                      "run another backup= folder, or -share-backup to run anyway",
                      holder[0] ? holder : "unknown", dir, path);
    return fd < 0 ? -1 : fd;
}

/* Data-parallel runs, at the end: every rank hashes its trainable tensors
 * as its optimizer left them (on a GPU, brought to the host first) and the
 * dropback masks it drew (each channel's drop count), and compares with
 * rank 0's. They agree by construction (one summed gradient, one
 * optimizer, masks from the seed and the step); this says so, or stops. */
static int check_ranks_agree(cdb_network *net, int lead)
{
    uint64_t h[2], mine[2];
    if (cdb_network_state_hash(net, h)) return -1;
    memcpy(mine, h, sizeof(h));
    if (cdb_dist_broadcast(h, sizeof(h))) return -1;
    double differ[2] = {h[0] != mine[0], h[1] != mine[1]};
    if (cdb_dist_sum_doubles(differ, 2)) return -1;
    if (differ[0] || differ[1]) {
        cdb_set_error("the ranks disagree at the end of the run: %g of %d hold other %s than rank 0", 
                      differ[0] ? differ[0] : differ[1], net->ranks,
                      differ[0] ? "trainable tensors" : "dropback masks");
        return -1;
    }
    if (lead)
        printf("ranks: the trainable tensors are bit-identical on all %d ranks (hash %016llx), and so are the "
               "dropback masks they drew (hash %016llx)\n",
               net->ranks, (unsigned long long)h[0], (unsigned long long)h[1]);
    return 0;
}

/* Data-parallel runs, at the start: the ranks compare what they are about
 * to train (rank 0's against each one's): the cfg's text and the -set
 * options, the network's shapes, and the training set (its size, labels
 * and images, or image paths). Ranks that differ would otherwise exchange
 * gradients of other shapes (and wait for each other forever) or train on
 * other data and report agreement; a mismatch stops every rank, naming
 * what differs and which rank. */
static int check_ranks_start(const cdb_network *net, const cdb_dataset *train, const train_options *opt)
{
    uint64_t h[3] = {CDB_HASH_START, CDB_HASH_START, CDB_HASH_START}, mine[3];
    FILE *f = fopen(net->cfg_path, "rb");
    if (f) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) h[0] = cdb_hash_bytes(h[0], buf, n);
        fclose(f);
    }
    for (int i = 0; i < opt->n_overrides; i++) h[0] = cdb_hash_bytes(h[0], opt->overrides[i], strlen(opt->overrides[i]) + 1);
    int shape[4] = {net->nparams, net->batch, net->subdivisions, net->inputs};
    h[1] = cdb_hash_bytes(h[1], shape, sizeof(shape));
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        int dims[4] = {(int)p->size, p->rows, p->channels, p->inner};
        h[1] = cdb_hash_bytes(h[1], dims, sizeof(dims));
    }
    h[2] = cdb_hash_bytes(h[2], &train->n, sizeof(train->n));
    h[2] = cdb_hash_bytes(h[2], train->labels, (size_t)train->n * sizeof(int));
    if (train->pixels)
        h[2] = cdb_hash_bytes(h[2], train->pixels, (size_t)train->n * train->c * train->h * train->w);
    else if (train->paths)
        for (int i = 0; i < train->n; i++) h[2] = cdb_hash_bytes(h[2], train->paths[i], strlen(train->paths[i]) + 1);
    memcpy(mine, h, sizeof(h));
    if (cdb_dist_broadcast(h, sizeof(h))) return -1;
    int rank = cdb_dist_rank();
    /* per part: how many ranks differ, and the sum of their numbers */
    double differ[6];
    for (int k = 0; k < 3; k++) {
        differ[k] = h[k] != mine[k];
        differ[3 + k] = h[k] != mine[k] ? rank : 0;
    }
    if (cdb_dist_sum_doubles(differ, 6)) return -1;
    static const char *const what[3] = {"the cfg's text or the -set options", "the network's shapes",
                                        "the training set (its size, labels or images)"};
    for (int k = 0; k < 3; k++)
        if (differ[k] > 0) {
            char who[64];
            if (differ[k] == 1)
                snprintf(who, sizeof(who), "rank %d", (int)differ[3 + k]);
            else
                snprintf(who, sizeof(who), "%d ranks", (int)differ[k]);
            cdb_set_error("%s of %d differ from rank 0 in %s: every rank must train the same cfg, options and data "
                          "(the same files at the same paths on every host)",
                          who, net->ranks, what[k]);
            return -1;
        }
    return 0;
}

/* nan_policy=skip_step gives up after this many skipped steps in a row */
#define MAX_CONSECUTIVE_SKIPS 100

static int train_locked(cdb_trainer *tr, const cdb_dataset *train, const cdb_dataset *valid, const train_options *opt,
                        valid_result *final, run_log *log)
{
    cdb_network *net = tr->net;
    input_config in;
    if (cdb_input_config_of(net, &in)) return -1;
    if (net->ranks > 1 && check_ranks_start(net, train, opt)) return -1;
    if (cdb_trainer_resolve_length(tr, train->n)) return -1;
    if (train->n < net->batch) {
        cdb_set_error("training set '%s' has %d images, fewer than [net] batch=%d of %s", train->name, train->n,
                      net->batch, net->cfg_path);
        return -1;
    }
    char base[256], last_path[4096], final_path[4096];
    cdb_cfg_basename(net->cfg_path, base, sizeof(base));
    snprintf(last_path, sizeof(last_path), "%s/%s_last.weights", opt->backup_dir, base);
    if (opt->out_path)
        snprintf(final_path, sizeof(final_path), "%s", opt->out_path);
    else
        snprintf(final_path, sizeof(final_path), "%s/%s_final.weights", opt->backup_dir, base);

    /* ema=1: the best validated average, and (a resumed run) the top-1 it had */
    char best_ema_path[4200];
    snprintf(best_ema_path, sizeof(best_ema_path), "%s/%s_best.ema.weights", opt->backup_dir, base);
    if (tr->ema && tr->step > 0) {
        char side[4300];
        snprintf(side, sizeof(side), "%s.top1", best_ema_path);
        FILE *f = fopen(side, "r");
        double best;
        if (f && fscanf(f, "%lf", &best) == 1 && best >= 0 && best <= 1) tr->best_ema_top1 = best;
        if (f) fclose(f);
    }
    int lead = !opt->follower; /* on several ranks, rank 0 alone writes, validates and prints */
    if (lead) {
        remove_stale_temporaries(final_path);
        remove_stale_temporaries(last_path);
        if (probe_output(final_path, "final weights file") || probe_output(last_path, "checkpoint")) return -1;
    }
    int steps_per_epoch = train->n / net->batch;
    int max = tr->cfg.max_batches;
    int print_every = opt->print_every ? opt->print_every : (steps_per_epoch >= 20 ? steps_per_epoch / 20 : 1);
    /* image files: the next batch is decoded while this one trains; on
     * several ranks each takes its shard of every batch */
    int prefetch = train->paths != NULL, share = net->batch / net->ranks, shard = cdb_dist_rank() * share;
    /* mixup and cutmix mix the whole step's batch (image i with image
     * batch-1-i): on several ranks each loads all of it, mixes it, and
     * trains its own slice, so that the ranks see the one-process batch */
    int mixing = cdb_mix_active(&in);
    int load_from = mixing ? 0 : shard, load_count = mixing ? net->batch : share;
    int *partners = mixing ? cdb_xcalloc((size_t)share, sizeof(int)) : NULL;
    batch_loader loader;
    float *images = prefetch ? NULL : cdb_xcalloc((size_t)load_count * net->inputs, sizeof(float));
    int *labels = prefetch ? NULL : cdb_xcalloc((size_t)load_count, sizeof(int));
    int *order = prefetch ? NULL : cdb_xcalloc((size_t)train->n, sizeof(int));
    int order_epoch = -1, status = (prefetch || (images && labels && order)) && (!mixing || partners) ? 0 : -1;
    if (prefetch && !status)
        status = cdb_loader_start(&loader, train, &in, net->seed, net->batch, load_from, load_count, tr->step, max);
    double avg_loss = -1, t_start = cdb_now_seconds(), t_window = t_start;
    int window_steps = 0, start_step = tr->step, consecutive_skips = 0;
    memset(&tr->dropback_stats, 0, sizeof(tr->dropback_stats));
    if (!opt->quiet)
        printf("training %s: %d steps of %d images (%d per forward), %d steps per epoch of %d images; gemm: %s, %d thread%s\n",
           net->cfg_path, max, net->batch, net->mini_batch, steps_per_epoch, train->n, cdb_gemm_backend(),
           cdb_get_num_threads(), cdb_get_num_threads() == 1 ? "" : "s");
    if (!opt->quiet && net->ranks > 1)
        printf("data-parallel: %d ranks, %d images of each step apiece (%d per forward), gradients summed over the "
               "ranks before each update\n",
               net->ranks, share, net->mini_batch);
    fflush(stdout);
    while (!status && tr->step < max) {
        if (prefetch ? cdb_loader_next(&loader, tr->step, &images, &labels)
                     : cdb_loader_fill_step(train, &in, net->seed, net->batch, load_from, load_count, tr->step, order,
                                        &order_epoch, images, labels)) {
            char why[2048];
            snprintf(why, sizeof(why), "%s", cdb_last_error());
            cdb_set_error("the batch of step %d: %s", tr->step + 1, why);
            status = -1;
            break;
        }
        float lr = cdb_trainer_learning_rate(tr);
        float loss;
        if (mixing) {
            mix_params mp;
            cdb_mix_draw(&in, net->seed, tr->step, tr->step / steps_per_epoch, net->h, net->w, &mp);
            cdb_mix_apply(&mp, images, net->batch, net->c, net->h, net->w);
            for (int i = 0; i < share; i++) partners[i] = labels[net->batch - 1 - (shard + i)];
            loss = cdb_trainer_run_step_mix(tr, images + (size_t)shard * net->inputs, labels + shard, partners, mp.lam);
        } else {
            loss = cdb_trainer_run_step(tr, images, labels);
        }
        if (tr->step_failed) {
            char why[1024];
            snprintf(why, sizeof(why), "%s", cdb_last_error());
            cdb_set_error("step %d failed, its weights not applied: %s", tr->step + 1, why);
            status = -1;
            break;
        }
        cdb_run_log_step(log, tr, loss);
        if (tr->step_skipped) {
            consecutive_skips++;
            if (!opt->quiet || consecutive_skips == 1)
                printf("step %d skipped: its loss or a gradient is not finite (nan_policy=skip_step); %ld skipped so "
                       "far\n", tr->step, tr->skipped_steps);
            if (consecutive_skips >= MAX_CONSECUTIVE_SKIPS) {
                cdb_set_error("%d steps in a row skipped (to step %d) with a non-finite loss or gradient: the run has "
                              "diverged. Lower learning_rate or add burn_in in %s",
                              consecutive_skips, tr->step, net->cfg_path);
                status = -1;
                break;
            }
        } else {
            consecutive_skips = 0;
        }
        if (isnan(loss) && !tr->step_skipped) {
            size_t at = 0;
            int layer = cdb_network_first_non_finite_output(net, &at);
            char where[256] = "";
            if (layer >= 0)
                snprintf(where, sizeof(where), "; the first layer whose output is not finite is %d [%s] (element %zu)",
                         layer, net->layers[layer].ops->name, at);
            cdb_set_error("the loss is not finite at step %d (learning rate %g)%s; the weights of that step were not "
                          "applied. Lower learning_rate or add burn_in in %s (or nan_policy=skip_step to skip such "
                          "steps)",
                          tr->step + 1, lr, where, net->cfg_path);
            status = -1;
            break;
        }
        if (check_parameters_finite(tr)) {
            status = -1;
            break;
        }
        if (!tr->step_skipped) avg_loss = avg_loss < 0 ? loss : 0.95 * avg_loss + 0.05 * loss;
        window_steps++;
        int stop = opt->stop && *opt->stop;
        if (opt->progress) {
            cdb_progress p = {tr->step, max, (double)tr->step / steps_per_epoch, loss, lr, NULL};
            stop |= opt->progress(&p, opt->progress_user) != 0;
        }
        if (net->ranks > 1) { /* every rank stops after the same step */
            double any = stop;
            if (cdb_dist_sum_doubles(&any, 1)) {
                status = -1;
                break;
            }
            stop = any > 0;
        }
        if (stop && !lead) {
            cdb_set_error("interrupted at step %d of %d (rank 0 saved the checkpoint)", tr->step, max);
            status = -1;
            break;
        }
        if (stop) {
            if (save_checkpoint(tr, last_path) == 0)
                cdb_set_error("interrupted at step %d of %d: checkpoint saved to %s (continue with -weights %s)",
                              tr->step, max, last_path, last_path);
            status = -1;
            break;
        }
        int done_epoch = tr->step % steps_per_epoch == 0;
        if (!opt->quiet && (tr->step % print_every == 0 || tr->step == max ||
                            (!opt->print_every && early_progress(tr->step - start_step, print_every)))) {
            double now = cdb_now_seconds();
            double ips = window_steps * net->batch / (now - t_window);
            double per_step = (now - t_start) / (tr->step - start_step);
            char eta[32];
            format_duration(per_step * (max - tr->step), eta, sizeof(eta));
            char db[64];
            cdb_dropback_progress_text(&tr->dropback_stats, db, sizeof(db));
            printf("step %6d/%d  epoch %6.2f  loss %.4f  avg %.4f  lr %.5f  %s  %7.1f img/s  ETA %s\n", tr->step, max,
                   (double)tr->step / steps_per_epoch, loss, avg_loss, lr, db, ips, eta);
            fflush(stdout);
            t_window = now;
            window_steps = 0;
        }
        if (done_epoch && !opt->quiet) cdb_dropback_report_epoch(tr, tr->step / steps_per_epoch);
        int validate = tr->cfg.valid_every ? tr->step % tr->cfg.valid_every == 0 : done_epoch;
        /* the checkpoint first: whatever validation meets (an unreadable
         * image, a full disk for the log), the epoch's training is saved */
        if (lead && (validate || (tr->cfg.save_every && tr->step % tr->cfg.save_every == 0)) && tr->step < max) {
            if (save_checkpoint(tr, last_path)) {
                status = -1;
                break;
            }
        }
        if (validate && tr->step < max && valid && lead) {
            valid_result v;
            double f1 = 0;
            double ema_top1 = NAN;
            int bad = validate_with_f1(net, valid, &v, &f1);
            if (!bad && !opt->quiet) report_validation(tr, &v);
            if (!bad && tr->ema) bad = validate_ema(tr, valid, best_ema_path, &ema_top1, opt->quiet);
            if (bad) {
                char why[2048];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("validation at step %d: %s (the checkpoint of step %d is saved: %s)", tr->step, why,
                              tr->step, last_path);
                status = -1;
                break;
            }
            if (opt->progress) {
                cdb_progress p = {tr->step, max, (double)tr->step / steps_per_epoch, loss, lr, &v};
                opt->progress(&p, opt->progress_user);
            }
            if (cdb_run_log_row(log, tr, &v, f1, ema_top1, (double)tr->step / steps_per_epoch)) {
                status = -1;
                break;
            }
        }
    }
    if (prefetch) {
        if (!status && !opt->quiet && tr->step > start_step)
            printf("loader: the steps waited %.1f s in all for their batches (%d decoding threads)\n",
                   loader.wait_seconds, train->workers);
        cdb_loader_stop(&loader);
    } else {
        free(images);
        free(labels);
        free(order);
    }
    free(partners);
    if (status) return status;
    if (net->ranks > 1 && check_ranks_agree(net, lead)) return -1;
    if (!lead) return 0;
    char took[32];
    format_duration(cdb_now_seconds() - t_start, took, sizeof(took));
    if (tr->dropback_stats.steps && !opt->quiet) cdb_dropback_report_epoch(tr, (tr->step + steps_per_epoch - 1) / steps_per_epoch);
    printf("trained %d steps in %s\n", tr->step - start_step, took);
    if (valid) {
        valid_result v;
        double f1 = 0, ema_top1 = NAN;
        int bad = validate_with_f1(net, valid, &v, &f1);
        if (!bad) report_validation(tr, &v);
        if (!bad && tr->ema) bad = validate_ema(tr, valid, best_ema_path, &ema_top1, 0);
        if (bad) {
            char why[2048];
            snprintf(why, sizeof(why), "%s", cdb_last_error());
            cdb_set_error("validation at step %d (the end of the run): %s", tr->step, why);
            if (save_checkpoint(tr, final_path) == 0)
                cdb_set_error("validation at step %d (the end of the run): %s (the final weights are saved: %s)",
                              tr->step, why, final_path);
            return -1;
        }
        if (opt->progress) {
            cdb_progress p = {tr->step, max, (double)tr->step / steps_per_epoch, NAN, cdb_trainer_learning_rate(tr), &v};
            opt->progress(&p, opt->progress_user);
        }
        if (cdb_run_log_row(log, tr, &v, f1, ema_top1, (double)tr->step / steps_per_epoch)) return -1;
        if (final) *final = v;
    }
    if (save_checkpoint(tr, final_path)) return -1;
    printf("saved weights to %s\n", final_path);
    if (tr->ema) {
        char ema[4200];
        cdb_ema_path(final_path, ema, sizeof(ema));
        printf("saved the moving average to %s (the best validated one: %s)\n", ema, best_ema_path);
    }
    return 0;
}

int cdb_train_network(cdb_trainer *tr, const cdb_dataset *train, const cdb_dataset *valid, const train_options *opt,
                  valid_result *final)
{
    cdb_network *net = tr->net;
    int lock = -1;
    run_log log = {0};
    if (opt->follower) return train_locked(tr, train, valid, opt, final, &log);
    if (cdb_make_dir(opt->backup_dir)) return -1;
    if (!opt->share_backup && (lock = lock_backup(opt->backup_dir)) < 0) return -1;
    int status = 0;
    if (!opt->log_path || strcmp(opt->log_path, "none")) {
        char path[4096], base[256];
        cdb_cfg_basename(net->cfg_path, base, sizeof(base));
        if (opt->log_path)
            snprintf(path, sizeof(path), "%s", opt->log_path);
        else
            snprintf(path, sizeof(path), "%s/%s_log.csv", opt->backup_dir, base);
        int takes_part = 0;
        for (int i = 0; i < net->nparams; i++) takes_part |= cdb_dropback_takes_part(net->params[i]);
        const char *arm = opt->arm ? opt->arm : (takes_part ? "dropback" : "baseline");
        status = cdb_run_log_open(&log, tr, path, arm, opt->overrides, opt->n_overrides, opt->class_names,
                              tr->step > 0);
        if (!status && !opt->quiet) printf("log: %s\n", path);
    }
    if (!status) status = train_locked(tr, train, valid, opt, final, &log);
    cdb_run_log_close(&log);
    if (lock >= 0) close(lock);
    return status;
}
