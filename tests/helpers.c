#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

cdb_network *net_from_text(const char *text)
{
    cfg_file *cfg = cdb_cfg_parse_string("test.cfg", text);
    if (!cfg) {
        printf("    cfg error: %s\n", cdb_last_error());
        return NULL;
    }
    cdb_network *net = cdb_network_build(cfg);
    cdb_cfg_free(cfg);
    if (!net) printf("    build error: %s\n", cdb_last_error());
    return net;
}

/* The trainers of trainer_of, each with its network. */
static struct {
    cdb_network *net;
    cdb_trainer *tr;
} trainers[256];

cdb_trainer *trainer_of(cdb_network *net)
{
    int free_slot = -1;
    for (int i = 0; i < (int)(sizeof(trainers) / sizeof(trainers[0])); i++) {
        if (trainers[i].net == net) return trainers[i].tr;
        if (!trainers[i].net && free_slot < 0) free_slot = i;
    }
    cdb_trainer *tr = cdb_trainer_new(net);
    if (!tr) {
        printf("    trainer error: %s\n", cdb_last_error());
        abort();
    }
    if (free_slot < 0) {
        printf("    too many networks with trainers at once\n");
        abort();
    }
    trainers[free_slot].net = net;
    trainers[free_slot].tr = tr;
    return tr;
}

void free_net(cdb_network *net)
{
    for (int i = 0; i < (int)(sizeof(trainers) / sizeof(trainers[0])); i++)
        if (trainers[i].net == net && net) {
            cdb_trainer_free(trainers[i].tr);
            trainers[i].net = NULL;
            trainers[i].tr = NULL;
        }
    cdb_network_free(net);
}

const char *net_error_from_text(const char *name, const char *text)
{
    static char msg[2048];
    cfg_file *cfg = cdb_cfg_parse_string(name, text);
    if (!cfg) {
        snprintf(msg, sizeof(msg), "%s", cdb_last_error());
        return msg;
    }
    cdb_network *net = cdb_network_build(cfg);
    cdb_cfg_free(cfg);
    if (net) {
        cdb_network_free(net);
        return NULL;
    }
    snprintf(msg, sizeof(msg), "%s", cdb_last_error());
    return msg;
}

double relative_error(const float *a, const float *ref, size_t n)
{
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < n; i++) {
        /* a NaN or infinity on either side fails every comparison (fmax
         * would drop a NaN and score it 0) */
        if (!isfinite(a[i]) || !isfinite(ref[i])) return INFINITY;
        double d = fabs((double)a[i] - ref[i]), r = fabs((double)ref[i]);
        if (d > max_diff) max_diff = d;
        if (r > max_ref) max_ref = r;
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

void fill_normal(float *x, size_t n, uint64_t seed, float scale)
{
    cdb_rng r = cdb_rng_stream(seed, 99, 0);
    for (size_t i = 0; i < n; i++) x[i] = scale * cdb_rng_normal(&r);
}

const char *test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/cdbnet-tests-%ld", (long)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

int have_fashion_mnist(void)
{
    return access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0;
}

int test_have_gnuplot(void)
{
    const char *g = getenv("CDBNET_GNUPLOT");
    if (g && !strcmp(g, "none")) return 0;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "command -v '%s' > /dev/null 2>&1", g && *g ? g : "gnuplot");
    return system(cmd) == 0;
}

int run_command(const char *cmd, char *out, size_t n)
{
    char full[4200];
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A .data file of Fashion-MNIST's 10,000 test images (for training and
 * validation, so that loading is quick) with the given backup folder. */
int write_fmnist_test_data(const char *path, const char *backup)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "classes=10\ntrain=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
               "train_labels=/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\n"
               "valid=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
               "valid_labels=/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz\nbackup=%s\n",
            backup);
    return fclose(f);
}
