/* The weights and optimizer-state loaders on corrupted files: a valid pair
 * of a small network (convolution with batch norm, connected, AdamW state)
 * is edited as the input says: its first byte picks the file, the next
 * four a length to cut it to, then (offset, byte) pairs overwrite it. Every
 * edit loads or fails with a message. */
#include <string.h>

#include "cdbnet.h"
#include "cfg.h"
#include "fuzz_common.h"
#include "network.h"
#include "trainer.h"

static const char *net_text = "[net]\nbatch=2\nwidth=6\nheight=6\nchannels=2\noptimizer=adamw\n"
                              "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                              "[connected]\noutput=3\nactivation=linear\n[softmax]\n";
static uint8_t *valid[2];
static size_t valid_size[2];
static cdb_network *net;
static cdb_trainer *trainer;

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    return buf;
}

static int setup(void)
{
    fuzz_limits();
    cfg_file *cfg = cdb_cfg_parse_string("fuzz.cfg", net_text);
    net = cfg ? cdb_network_build(cfg) : NULL;
    cdb_cfg_free(cfg);
    trainer = net ? cdb_trainer_new(net) : NULL;
    if (!trainer) return -1;
    float images[2 * 72] = {0};
    int labels[2] = {0, 2};
    for (int i = 0; i < 144; i++) images[i] = (float)(i % 5) - 2.f;
    cdb_trainer_run_step(trainer, images, labels);
    const char *w = fuzz_path(".weights"), *s = fuzz_path(".state");
    if (cdb_weights_save(net, w) || cdb_state_save(trainer, s)) return -1;
    valid[0] = slurp(w, &valid_size[0]);
    valid[1] = slurp(s, &valid_size[1]);
    remove(w);
    remove(s);
    return valid[0] && valid[1] ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) ready = setup() == 0 ? 1 : -1;
    if (ready < 0 || size < 5) return 0;
    int which = data[0] & 1;
    size_t cut = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16 | (size_t)data[4] << 24;
    size_t n = valid_size[which];
    if (cut < n) n = cut;
    uint8_t *file = malloc(n ? n : 1);
    if (!file) return 0;
    memcpy(file, valid[which], n);
    for (size_t i = 5; i + 2 < size && n; i += 3) file[((size_t)data[i] | (size_t)data[i + 1] << 8) % n] = data[i + 2];
    const char *path = fuzz_path(which ? ".state" : ".weights");
    if (fuzz_write(path, file, n) == 0) {
        if (which) {
            trainer->step = 1; /* the step of the valid pair */
            cdb_state_load(trainer, path);
        } else {
            cdb_weights_load(net, path);
        }
    }
    free(file);
    remove(path);
    return 0;
}
