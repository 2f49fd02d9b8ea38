/* The public entry points of include/cdbnet.h that need more than the
 * model: threads, devices, datasets, evaluation and whole training runs
 * (model/api.c has the others). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cdbnet.h"
#include "data.h"
#include "dist.h"
#include "dropback.h"
#include "gemm.h"
#include "train.h"
#include "trainer.h"
#include "utils.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

cdb_network *cdb_network_load(const char *cfg_path, const char *const *overrides, int n_overrides)
{
    cfg_file *cfg = cdb_cfg_parse_file(cfg_path);
    if (!cfg) return NULL;
    for (int i = 0; i < n_overrides; i++)
        if (cdb_cfg_override(cfg, overrides[i])) {
            cdb_cfg_free(cfg);
            return NULL;
        }
    cdb_network *net = cdb_network_build(cfg);
    cdb_cfg_free(cfg);
    return net;
}

float cdb_train_step(cdb_trainer *tr, const float *images, const int *labels)
{
    const cdb_network *net = tr->net;
    for (int i = 0; i < net->batch; i++)
        if (labels[i] < 0 || labels[i] >= net->classes) {
            cdb_set_error("label %d of image %d is outside [0, %d)", labels[i], i, net->classes);
            return NAN;
        }
    return cdb_trainer_run_step(tr, images, labels);
}

void cdb_set_threads(int n) { cdb_set_num_threads(n > 0 ? n : cdb_available_cpus()); }

int cdb_gpu_count(void)
{
#ifdef GPU
    return cdb_cuda_device_count();
#else
    return 0;
#endif
}

int cdb_network_to_gpu(cdb_network *net, int device)
{
#ifdef GPU
    return cdb_gpu_init(net, device);
#else
    (void)net;
    cdb_set_error("CUDA device %d: this cdbnet was built without GPU support (make GPU=1 [CUDNN=1])", device);
    return -1;
#endif
}

void cdb_network_dropback_off(cdb_network *net) { cdb_dropback_disable(net); }

cdb_dataset *cdb_dataset_load(const char *data_file, const char *which, const cdb_network *net)
{
    if (strcmp(which, "train") && strcmp(which, "valid")) {
        cdb_set_error("dataset '%s': which set, \"train\" or \"valid\"? (got \"%s\")", data_file, which);
        return NULL;
    }
    data_config d;
    if (cdb_data_config_load(data_file, &d)) return NULL;
    cdb_dataset *set = cdb_xcalloc(1, sizeof(*set));
    int status = set ? cdb_dataset_read(&d, which, set) : -1;
    if (!status) status = cdb_dataset_check_against(set, net);
    cdb_data_config_free(&d);
    if (status) {
        cdb_dataset_free(set);
        return NULL;
    }
    return set;
}

int cdb_dataset_size(const cdb_dataset *d) { return d->n; }

void cdb_dataset_free(cdb_dataset *d)
{
    if (!d) return;
    cdb_dataset_clear(d);
    free(d);
}

int cdb_evaluate(cdb_network *net, const cdb_dataset *d, cdb_metrics *out)
{
    return cdb_validate_network(net, d, out);
}

int cdb_train(cdb_trainer *tr, const cdb_dataset *train, const cdb_dataset *valid, const cdb_train_options *opt,
              cdb_metrics *final)
{
    cdb_train_options defaults = {.quiet = 1};
    if (!opt) opt = &defaults;
    if (cdb_trainer_resolve_length(tr, train->n)) return -1;
    train_options o = {.backup_dir = opt->backup_dir ? opt->backup_dir : "backup",
                       .out_path = opt->out_path,
                       .log_path = opt->log_path,
                       .quiet = opt->quiet,
                       .progress = opt->progress,
                       .progress_user = opt->user};
    return cdb_train_network(tr, train, valid, &o, final);
}
