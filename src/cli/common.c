/* What the commands share: the error line, loading a network onto its
 * device, finding the dataset. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dist.h"
#include "dropback.h"
#include "utils.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

int cli_fail(void)
{
    if (cdb_dist_size() > 1)
        fprintf(stderr, "cdbnet: error (rank %d of %d): %s\n", cdb_dist_rank(), cdb_dist_size(), cdb_last_error());
    else
        fprintf(stderr, "cdbnet: error: %s\n", cdb_last_error());
    return 1;
}

/* GPU builds run on a CUDA device unless -cpu is given: device N with
 * -gpu N (an error when there is none), else device 0 when there is one. */
static int place_network(cdb_network *net, const cli *c)
{
#ifdef GPU
    if (c->force_cpu) return 0;
    int devices = cdb_cuda_device_count();
    if (c->gpu_index >= 0) return cdb_gpu_init(net, c->gpu_index);
    if (devices > 0 && cdb_dist_size() > 1) { /* ranks on one host share its devices in turn */
        const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
        int k = local ? atoi(local) : cdb_dist_rank();
        return cdb_gpu_init(net, k % devices);
    }
    if (devices > 0) return cdb_gpu_init(net, 0);
    static int told;
    if (!told++) fprintf(stderr, "cdbnet: GPU build, but no CUDA device was found: running on the CPU\n");
    return 0;
#else
    if (c->gpu_index >= 0) {
        cdb_set_error("-gpu %d: this cdbnet was built without GPU support (make GPU=1 [CUDNN=1])", c->gpu_index);
        return -1;
    }
    (void)net;
    return 0;
#endif
}

cdb_network *cli_load_network(const char *cfg_path, const cli *c)
{
    cdb_network *net = cdb_network_load(cfg_path, c->overrides, c->n_overrides);
    if (!net) return NULL;
    if (c->nodropback) cdb_dropback_disable(net);
    if (place_network(net, c)) {
        cdb_network_free(net);
        return NULL;
    }
    return net;
}

int cli_load_data_config(const cdb_network *net, const cli *c, data_config *d)
{
    const char *path = c->data ? c->data : cdb_network_data_path(net);
    if (!path) {
        cdb_set_error("%s: no dataset: give [net] data=FILE.data or -data FILE.data", cdb_network_cfg_path(net));
        return -1;
    }
    if (cdb_data_config_load(path, d)) return -1;
    if (c->backup) { /* -backup DIR replaces the .data file's backup= */
        char *dir = cdb_xstrdup(c->backup);
        if (!dir) {
            cdb_data_config_free(d);
            return -1;
        }
        free(d->backup);
        d->backup = dir;
    }
    return 0;
}
