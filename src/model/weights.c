/* Weights files in Darknet's layout (docs/weights.md): int32 major, minor,
 * revision; uint64 images seen; then every layer's arrays in cfg order as
 * float32. Saving goes through a temporary file and a rename, so a killed
 * run never leaves a half-written file under the final name. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "model.h"
#include "network.h"
#include "train_config.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

#define WEIGHTS_MAJOR 0
#define WEIGHTS_MINOR 2
#define WEIGHTS_REVISION 0

static size_t expected_floats(const cdb_network *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++) n += net->layers[i].io_size[k];
    return n;
}

/* The name of array k of layer l in messages: its parameter's name, else
 * what the other arrays in weights files are (batch norm's statistics). */
const char *cdb_layer_array_name(const cdb_layer *l, int k)
{
    for (int p = 0; p < l->nparams; p++)
        if (l->params[p].value == l->io[k]) return l->params[p].name;
    return "rolling statistics";
}

static int first_non_finite(const float *x, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            *at = i;
            return 1;
        }
    return 0;
}

int cdb_network_first_non_finite(const cdb_network *net, int *layer, int *array, size_t *index)
{
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++)
            if (first_non_finite(net->layers[i].io[k], net->layers[i].io_size[k], index)) {
                *layer = i;
                *array = k;
                return 1;
            }
    return 0;
}

/* What a write records beside the network: the images-seen count of the
 * header, the step (for messages) and, for optimizer state, the optimizer. */
typedef struct {
    const cdb_network *net;
    uint64_t seen;
    int step;
    int optimizer;
    const cdb_moments *state; /* optimizer state: one per tensor */
} save_context;

/* Nothing non-finite is ever saved: a weights file or optimizer state with
 * a NaN or infinity could not be loaded again, and writing it would replace
 * the last good checkpoint. */
static int weights_finite(const save_context *sc, const char *path)
{
    const cdb_network *net = sc->net;
    int i, k;
    size_t at;
    if (!cdb_network_first_non_finite(net, &i, &k, &at)) return 0;
    const cdb_layer *l = &net->layers[i];
    cdb_set_error("not saving weights file '%s': at step %d, layer %d [%s] %s (array %d), value %zu is not finite "
                  "(%g); the training diverged (lower learning_rate, add burn_in); the last checkpoint is left as it "
                  "was",
                  path, sc->step, i, l->ops->name, cdb_layer_array_name(l, k), k, at, l->io[k][at]);
    return -1;
}

static int state_finite(const save_context *sc, const char *path)
{
    const cdb_network *net = sc->net;
    size_t at;
    int t = 0; /* the tensor's index in network order */
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int p = 0; p < l->nparams; p++, t++) {
            const cdb_param *q = &l->params[p];
            const float *m[2] = {sc->state[t].m1, sc->state[t].m2};
            for (int j = 0; j < 2; j++)
                if (m[j] && first_non_finite(m[j], q->size, &at)) {
                    cdb_set_error("not saving optimizer state '%s': at step %d, layer %d [%s] %s, optimizer %s value "
                                  "%zu is not finite (%g); the last checkpoint is left as it was",
                                  path, sc->step, i, l->ops->name, q->name,
                                  j ? "second moment" : (sc->optimizer == OPT_ADAMW ? "first moment" : "momentum"),
                                  at, m[j][at]);
                    return -1;
                }
        }
    }
    return 0;
}

/* Write through FILE.tmp.PID, flushed and synced, then renamed over FILE:
 * a run killed while saving leaves the previous FILE intact. */
static int write_atomically(const char *path, const char *kind, int (*finite)(const save_context *, const char *),
                            int (*write)(FILE *, const save_context *), const save_context *sc)
{
#ifdef GPU
    if (cdb_network_sync_to_host((cdb_network *)sc->net)) {
        char why[512];
        snprintf(why, sizeof(why), "%s", cdb_last_error());
        cdb_set_error("%s not written: the device copy cannot be read back: %s", path, why);
        return -1;
    }
#endif
    if (finite(sc, path)) return -1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        cdb_set_error("cannot write %s '%s': %s", kind, tmp, strerror(errno));
        return -1;
    }
    int ok = write(fp, sc);
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        cdb_set_error("cannot write %s '%s': %s", kind, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_weights(FILE *fp, const save_context *sc)
{
    const cdb_network *net = sc->net;
    int32_t header[3] = {WEIGHTS_MAJOR, WEIGHTS_MINOR, WEIGHTS_REVISION};
    uint64_t seen = sc->seen;
    int ok = fwrite(header, sizeof(header), 1, fp) == 1 && fwrite(&seen, sizeof(seen), 1, fp) == 1;
    for (int i = 0; ok && i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; ok && k < l->nio; k++) ok = fwrite(l->io[k], sizeof(float), l->io_size[k], fp) == l->io_size[k];
    }
    return ok;
}

int cdb_weights_write(const cdb_network *net, const char *path, uint64_t seen, int step)
{
    save_context sc = {net, seen, step, 0, NULL};
    return write_atomically(path, "weights file", weights_finite, write_weights, &sc);
}

int cdb_weights_save(const cdb_network *net, const char *path)
{
    return cdb_weights_write(net, path, net->images_seen, (int)(net->images_seen / (uint64_t)net->batch));
}

/* Floats of the arrays that pjreddie's Darknet does not write (a [batchnorm]
 * layer's biases: its files have scales, mean and variance only). */
static size_t pjreddie_absent_floats(const cdb_network *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n; i++)
        if (net->layers[i].io_pjreddie_absent) n += net->layers[i].io_size[net->layers[i].io_pjreddie_absent - 1];
    return n;
}

int cdb_weights_load(cdb_network *net, const char *path)
{
    if (cdb_check_regular(path, "weights file")) return -1;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cdb_set_error("cannot open weights file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        cdb_set_error("weights file '%s' is not a regular file", path);
        return -1;
    }
    int32_t header[3];
    if (fread(header, sizeof(header), 1, fp) != 1) {
        fclose(fp);
        cdb_set_error("weights file '%s' is truncated: %lld bytes, shorter than its header", path,
                      (long long)st.st_size);
        return -1;
    }
    /* Darknet's rule: version 0.2 and later count images in 64 bits, older
     * files in 32. A major or minor over 1000 marks Darknet's transposed
     * [connected] weights, which cdbnet does not read. */
    if (header[0] < 0 || header[1] < 0 || header[0] > 1000 || header[1] > 1000) {
        fclose(fp);
        cdb_set_error("weights file '%s': version %d.%d.%d is not supported (a major or minor version over 1000 is "
                      "Darknet's transposed-[connected] layout, which cdbnet does not read; negative ones are not a "
                      "weights file)",
                      path, header[0], header[1], header[2]);
        return -1;
    }
    /* as Darknet: 64 bits from 0.2 on, but 32 again at major or minor 1000 */
    int seen_bytes = (long)header[0] * 10 + header[1] >= 2 && header[0] < 1000 && header[1] < 1000 ? 8 : 4;
    uint64_t seen = 0;
    if (seen_bytes == 8) {
        if (fread(&seen, 8, 1, fp) != 1) seen_bytes = 0;
    } else {
        uint32_t seen32;
        if (fread(&seen32, 4, 1, fp) != 1) seen_bytes = 0;
        seen = seen32;
    }
    if (!seen_bytes) {
        fclose(fp);
        cdb_set_error("weights file '%s' is truncated: %lld bytes, shorter than its header", path,
                      (long long)st.st_size);
        return -1;
    }
    long long header_bytes = 12 + seen_bytes;
    long long expected = header_bytes + (long long)expected_floats(net) * 4;
    long long absent = (long long)pjreddie_absent_floats(net) * 4;
    int pjreddie = absent && (long long)st.st_size == expected - absent;
    if ((long long)st.st_size != expected && !pjreddie) {
        fclose(fp);
        char alt[96] = "";
        if (absent) snprintf(alt, sizeof(alt), " (or %lld in pjreddie's layout, without [batchnorm] biases)", expected - absent);
        cdb_set_error("weights file '%s' has %lld bytes but network '%s' needs %lld%s: %s", path,
                      (long long)st.st_size, net->cfg_path, expected, alt,
                      st.st_size < expected ? "the file is truncated or belongs to a smaller network"
                                            : "the file belongs to a larger network");
        return -1;
    }
    for (int i = 0; i < net->n; i++) {
        cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nio; k++) {
            if (pjreddie && l->io_pjreddie_absent == k + 1) {
                memset(l->io[k], 0, l->io_size[k] * sizeof(float));
                continue;
            }
            if (fread(l->io[k], sizeof(float), l->io_size[k], fp) != l->io_size[k]) {
                fclose(fp);
                cdb_set_error("weights file '%s': read error in layer %d", path, i);
                return -1;
            }
            for (size_t e = 0; e < l->io_size[k]; e++) {
                if (!isfinite(l->io[k][e])) {
                    fclose(fp);
                    cdb_set_error("weights file '%s': layer %d [%s], array %d, value %zu is not finite (%g): the file is "
                                  "corrupt or comes from a diverged run",
                                  path, i, l->ops->name, k, e, l->io[k][e]);
                    return -1;
                }
                if ((l->io_variance >> k & 1u) && l->io[k][e] < 0) {
                    fclose(fp);
                    cdb_set_error("weights file '%s': layer %d [%s], array %d (rolling variance), value %zu is negative "
                                  "(%g): the file is corrupt or belongs to another network",
                                  path, i, l->ops->name, k, e, l->io[k][e]);
                    return -1;
                }
            }
        }
    }
    fclose(fp);
    net->images_seen = seen;
#ifdef GPU
    if (cdb_network_sync_to_device(net)) return -1;
#endif
    return 0;
}

/* Optimizer state file: "CDBS", int32 version 1, int32 optimizer, int64 step,
 * int32 number of parameters, then per parameter int64 size, a byte saying
 * whether each moment is present, and the moments as float32. */
#define STATE_MAGIC "CDBS"
#define STATE_VERSION 1

static int write_moment(FILE *fp, const float *m, size_t n)
{
    uint8_t present = m != NULL;
    if (fwrite(&present, 1, 1, fp) != 1) return 0;
    return !present || fwrite(m, sizeof(float), n, fp) == n;
}

static int write_state(FILE *fp, const save_context *sc)
{
    const cdb_network *net = sc->net;
    int32_t version = STATE_VERSION, optimizer = sc->optimizer, nparams = net->nparams;
    int64_t step = sc->step;
    int ok = fwrite(STATE_MAGIC, 4, 1, fp) == 1 && fwrite(&version, 4, 1, fp) == 1 && fwrite(&optimizer, 4, 1, fp) == 1 &&
             fwrite(&step, 8, 1, fp) == 1 && fwrite(&nparams, 4, 1, fp) == 1;
    for (int i = 0; ok && i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        int64_t size = (int64_t)p->size;
        ok = fwrite(&size, 8, 1, fp) == 1 && write_moment(fp, sc->state[i].m1, p->size) &&
             write_moment(fp, sc->state[i].m2, p->size);
    }
    return ok;
}

int cdb_state_write(const cdb_network *net, const cdb_moments *state, const char *path, int optimizer, int step)
{
    save_context sc = {net, 0, step, optimizer, state};
    return write_atomically(path, "optimizer state", state_finite, write_state, &sc);
}

static int read_moment(FILE *fp, float **m, size_t n)
{
    uint8_t present;
    if (fread(&present, 1, 1, fp) != 1 || present > 1) return 0;
    if (!present) return 1;
    if (!*m) *m = cdb_xcalloc(n, sizeof(float));
    return *m && fread(*m, sizeof(float), n, fp) == n;
}

int cdb_state_read(const cdb_network *net, cdb_moments *state, const char *path, int optimizer_expected,
                   int step_expected)
{
    if (cdb_check_regular(path, "optimizer state")) return -1;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cdb_set_error("cannot open optimizer state '%s': %s", path, strerror(errno));
        return -1;
    }
    char magic[4];
    int32_t version, optimizer, nparams;
    int64_t step;
    if (fread(magic, 4, 1, fp) != 1 || memcmp(magic, STATE_MAGIC, 4) || fread(&version, 4, 1, fp) != 1 ||
        version != STATE_VERSION || fread(&optimizer, 4, 1, fp) != 1 || fread(&step, 8, 1, fp) != 1 ||
        fread(&nparams, 4, 1, fp) != 1) {
        fclose(fp);
        cdb_set_error("'%s' is not a cdbnet optimizer state file (or is truncated)", path);
        return -1;
    }
    if (step != (int64_t)step_expected) {
        fclose(fp);
        cdb_set_error("optimizer state '%s' is of step %lld, but its weights file's images-seen count says step %d: "
                      "the two files are not one checkpoint",
                      path, (long long)step, step_expected);
        return -1;
    }
    if (optimizer != (int32_t)optimizer_expected || nparams != net->nparams || step < 0) {
        fclose(fp);
        cdb_set_error("optimizer state '%s' belongs to another network or optimizer (%d tensors, optimizer %d; "
                      "'%s' has %d tensors, optimizer %d)",
                      path, nparams, optimizer, net->cfg_path, net->nparams, optimizer_expected);
        return -1;
    }
    long failed_before = cdb_failed_allocations();
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        int64_t size;
        if (fread(&size, 8, 1, fp) != 1 || size != (int64_t)p->size || !read_moment(fp, &state[i].m1, p->size) ||
            !read_moment(fp, &state[i].m2, p->size)) {
            fclose(fp);
            if (cdb_failed_allocations() > failed_before) {
                char why[256];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("optimizer state '%s', tensor %d: %s", path, i, why);
            } else {
                cdb_set_error("optimizer state '%s' is truncated or does not match tensor %d of '%s'", path, i,
                              net->cfg_path);
            }
            return -1;
        }
    }
    unsigned char extra;
    int trailing = fread(&extra, 1, 1, fp) == 1;
    fclose(fp);
    if (trailing) {
        cdb_set_error("optimizer state '%s' has data past its last tensor", path);
        return -1;
    }
    return 0;
}
