/* Checkpoints: a trainer's weights and optimizer state as one unit, and
 * resuming a run from them (the formats are model/weights.c's). */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

#ifdef GPU
/* The moments' host copies from (pull) or to (push) their device twins. */
static int move_moments(const cdb_trainer *tr, int pull)
{
    cdb_network *net = tr->net;
    if (!net->gpu) return 0;
    for (int i = 0; i < net->nparams; i++) {
        size_t bytes = net->params[i]->size * sizeof(float);
        float *m[2] = {tr->moments[i].m1, tr->moments[i].m2};
        for (int k = 0; k < 2; k++)
            if (m[k]) {
                if (pull)
                    cdb_gpu_pull(net, m[k], bytes);
                else
                    cdb_gpu_push(net, m[k], bytes);
            }
    }
    return cdb_gpu_failed() ? -1 : 0;
}
#endif

int cdb_state_save(const cdb_trainer *tr, const char *path)
{
#ifdef GPU
    if (move_moments(tr, 1)) {
        char why[512];
        snprintf(why, sizeof(why), "%s", cdb_last_error());
        cdb_set_error("%s not written: the optimizer state on the device cannot be read back: %s", path, why);
        return -1;
    }
#endif
    return cdb_state_write(tr->net, tr->moments, path, tr->cfg.optimizer, tr->step);
}

int cdb_state_load(cdb_trainer *tr, const char *path)
{
    if (cdb_state_read(tr->net, tr->moments, path, tr->cfg.optimizer, tr->step)) return -1;
#ifdef GPU
    if (move_moments(tr, 0)) return -1;
#endif
    return 0;
}

/* Make the renames in path's folder durable. */
static void sync_folder(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Before a save: the file there kept as FILE.prev (what a resume falls
 * back on when the run is killed before the save's last file). */
static int keep_previous(const char *file, const char *what)
{
    char prev[4300];
    snprintf(prev, sizeof(prev), "%s.prev", file);
    if (access(file, F_OK) == 0 && rename(file, prev)) {
        cdb_set_error("cannot keep the previous %s '%s' as '%s': %s", what, file, prev, strerror(errno));
        return -1;
    }
    return 0;
}

/* ema=1: the average as FILE.ema.weights (the previous one kept as
 * FILE.ema.weights.prev, as the state), with the weights' images-seen
 * count, so that a resume finds the one of its weights. */
static int save_ema(const cdb_trainer *tr, const char *path)
{
    char ema[4200];
    cdb_ema_path(path, ema, sizeof(ema));
    if (keep_previous(ema, "moving average")) return -1;
    cdb_trainer *t = (cdb_trainer *)tr; /* the arrays are swapped and put back */
    if (cdb_trainer_ema_swap(t, 1)) return -1;
    int status = cdb_weights_write(tr->net, ema, tr->seen, tr->step);
    if (cdb_trainer_ema_swap(t, 0)) status = -1;
    return status;
}

/* The average from `path` when its images-seen count is `seen`: 1; 0 when
 * the file is absent or of another count (the average untouched); -1
 * when it cannot be read (recorded). */
static int load_ema(cdb_trainer *tr, const char *path, uint64_t seen)
{
    if (access(path, F_OK) != 0) return 0;
    cdb_network *net = tr->net;
    uint64_t keep = net->images_seen;
    for (int a = 0; a < tr->n_ema; a++) memcpy(tr->ema[a].raw, tr->ema[a].weights, tr->ema[a].n * sizeof(float));
    int status = cdb_weights_load(net, path);
    int match = !status && net->images_seen == seen;
    for (int a = 0; a < tr->n_ema; a++) {
        cdb_ema_array *e = &tr->ema[a];
        if (match) memcpy(e->avg, e->weights, e->n * sizeof(float));
        memcpy(e->weights, e->raw, e->n * sizeof(float));
    }
    net->images_seen = keep;
#ifdef GPU
    if (net->gpu && cdb_network_sync_to_device(net)) return -1;
#endif
    return status ? -1 : match;
}

int cdb_checkpoint_save(const cdb_trainer *tr, const char *path)
{
    if (tr->ema && save_ema(tr, path)) return -1;
    char state[4200];
    snprintf(state, sizeof(state), "%s.state", path);
    if (keep_previous(state, "optimizer state")) return -1;
    if (cdb_state_save(tr, state) || cdb_weights_write(tr->net, path, tr->seen, tr->step)) return -1;
    sync_folder(path);
    return 0;
}

int cdb_checkpoint_load_state(cdb_trainer *tr, const char *path)
{
    char state[4200], prev[4208], first[1024] = "";
    snprintf(state, sizeof(state), "%s.state", path);
    snprintf(prev, sizeof(prev), "%s.prev", state);
    int have_state = access(state, F_OK) == 0, have_prev = access(prev, F_OK) == 0;
    if (have_state) {
        if (cdb_state_load(tr, state) == 0) return 1;
        snprintf(first, sizeof(first), "%s", cdb_last_error());
    }
    if (have_prev) {
        if (cdb_state_load(tr, prev) == 0) return 2;
        if (first[0]) {
            char second[1024];
            snprintf(second, sizeof(second), "%s", cdb_last_error());
            cdb_set_error("%s; and %s", first, second);
        }
        return -1;
    }
    if (have_state) {
        cdb_set_error("%s", first);
        return -1;
    }
    return 0;
}

int cdb_trainer_resume(cdb_trainer *tr, const char *weights, int clear, int quiet)
{
    cdb_network *net = tr->net;
    if (cdb_weights_load(net, weights)) return -1;
    uint64_t seen = clear ? 0 : net->images_seen;
    if (seen / (uint64_t)net->batch > (1u << 30)) {
        cdb_set_error("weights file '%s': its images-seen count %llu is more than 2^30 steps of batch %d "
                      "(use -clear to start the schedule over)",
                      weights, (unsigned long long)seen, net->batch);
        return -1;
    }
    tr->seen = net->images_seen = seen;
    tr->step = (int)(seen / (uint64_t)net->batch);
    int which = clear ? 0 : cdb_checkpoint_load_state(tr, weights);
    if (which < 0) return -1;
    if (which > 0 && !quiet)
        printf("resuming at step %d with the optimizer state of %s.state%s\n", tr->step, weights,
               which == 2 ? ".prev (the run was killed while saving; the weights are those of that state)" : "");
    if (which == 0 && !clear && tr->step > 0)
        fprintf(stderr, "warning: no optimizer state '%s.state': continuing at step %d with momentum from zero\n",
                weights, tr->step);
    if (tr->ema) { /* the average saved with these weights (of their images-seen count) */
        char ema[4200], prev[4220];
        cdb_ema_path(weights, ema, sizeof(ema));
        snprintf(prev, sizeof(prev), "%s.prev", ema);
        int got = clear ? 0 : load_ema(tr, ema, net->images_seen);
        if (got == 0 && !clear) got = load_ema(tr, prev, net->images_seen);
        if (got < 0) return -1;
        if (got == 0) { /* none: it starts from the weights */
            for (int a = 0; a < tr->n_ema; a++)
                memcpy(tr->ema[a].avg, tr->ema[a].weights, tr->ema[a].n * sizeof(float));
            if (!clear && tr->step > 0)
                fprintf(stderr, "warning: no moving average of these weights ('%s'): it starts from them\n", ema);
        } else if (!quiet) {
            printf("resuming the moving average of the weights from %s\n", ema);
        }
#ifdef GPU
        for (int a = 0; net->gpu && a < tr->n_ema; a++) cdb_gpu_push(net, tr->ema[a].avg, tr->ema[a].n * sizeof(float));
        if (net->gpu && cdb_gpu_failed()) return -1;
#endif
    }
    return 0;
}
