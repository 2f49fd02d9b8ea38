/* The public entry points of include/cdbnet.h on the model alone (train/train_api.c has the others). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "network.h"

int cdb_network_width(const cdb_network *net) { return net->w; }
int cdb_network_height(const cdb_network *net) { return net->h; }
int cdb_network_channels(const cdb_network *net) { return net->c; }
int cdb_network_classes(const cdb_network *net) { return net->classes; }
int cdb_network_batch(const cdb_network *net) { return net->batch; }
int cdb_network_inputs(const cdb_network *net) { return net->inputs; }
const char *cdb_network_cfg_path(const cdb_network *net) { return net->cfg_path; }
const char *cdb_network_data_path(const cdb_network *net) { return net->data_path; }
const char *cdb_network_output_type(const cdb_network *net) { return net->layers[net->n - 1].ops->name; }
uint64_t cdb_network_seed(const cdb_network *net) { return net->seed; }

int cdb_predict(cdb_network *net, const float *images, int n, float *probs)
{
    int mb = net->mini_batch;
    for (int start = 0; start < n; start += mb) {
        int count = n - start < mb ? n - start : mb;
        memset(net->input, 0, (size_t)mb * net->inputs * sizeof(float));
        memcpy(net->input, images + (size_t)start * net->inputs, (size_t)count * net->inputs * sizeof(float));
        net->pass_failed = 0;
        cdb_network_forward(net, 0);
        if (cdb_network_pass_failed(net)) { /* out of memory inside a layer, a CUDA error: the outputs are stale */
            char why[1024];
            snprintf(why, sizeof(why), "%s", cdb_last_error());
            cdb_set_error("prediction of images %d..%d failed: %s", start, start + count - 1, why);
            return -1;
        }
        memcpy(probs + (size_t)start * net->classes, cdb_network_output(net),
               (size_t)count * net->classes * sizeof(float));
    }
    return 0;
}
