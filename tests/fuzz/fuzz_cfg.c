/* The cfg reader and the network build on arbitrary text: every input
 * either builds a network or fails with a message; none crashes, leaks or
 * trips a sanitizer. Also -set overrides and one training step of what
 * builds. */
#include <string.h>

#include "cfg.h"
#include "fuzz_common.h"
#include "network.h"
#include "trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_limits();
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    cfg_file *cfg = cdb_cfg_parse_string("fuzz.cfg", text);
    free(text);
    if (!cfg) return 0;
    cdb_cfg_override(cfg, "net.batch=2");
    cdb_cfg_override(cfg, "net.subdivisions=1");
    cdb_network *net = cdb_network_build(cfg);
    cdb_cfg_free(cfg);
    if (!net) return 0;
    /* one step of whatever built, when it is small */
    if ((size_t)net->batch * net->inputs <= (1u << 16)) {
        float *images = calloc((size_t)net->batch * net->inputs, sizeof(float));
        int *labels = calloc((size_t)net->batch, sizeof(int));
        cdb_trainer *tr = images && labels ? cdb_trainer_new(net) : NULL;
        if (tr) {
            for (size_t i = 0; i < (size_t)net->batch * net->inputs; i++) images[i] = (float)(i % 7) - 3.f;
            cdb_trainer_run_step(tr, images, labels);
        }
        cdb_trainer_free(tr);
        free(images);
        free(labels);
    }
    cdb_network_free(net);
    return 0;
}
