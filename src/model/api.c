/* The public entry points of include/cdbnet.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "network.h"

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

int cdb_network_width(const cdb_network *net) { return net->w; }
int cdb_network_height(const cdb_network *net) { return net->h; }
int cdb_network_channels(const cdb_network *net) { return net->c; }
int cdb_network_classes(const cdb_network *net) { return net->classes; }
int cdb_network_batch(const cdb_network *net) { return net->batch; }
int cdb_network_inputs(const cdb_network *net) { return net->inputs; }
const char *cdb_network_cfg_path(const cdb_network *net) { return net->cfg_path; }
const char *cdb_network_data_path(const cdb_network *net) { return net->data_path; }

float cdb_train_step(cdb_network *net, const float *images, const int *labels)
{
    for (int i = 0; i < net->batch; i++)
        if (labels[i] < 0 || labels[i] >= net->classes) {
            cdb_set_error("label %d of image %d is outside [0, %d)", labels[i], i, net->classes);
            return NAN;
        }
    return cdb_network_train_step(net, images, labels);
}

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
