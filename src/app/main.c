/* The cdbnet command line: train, valid, predict, help. Only this file
 * decides to exit the process; the library returns errors. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchmark.h"
#include "compare.h"
#include "data.h"
#include "dist.h"
#include "export.h"
#include "gemm.h"
#include "network.h"
#include "train.h"

#include "images.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

#define MAX_OVERRIDES 64

static const char *usage =
    "usage: cdbnet COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  train CFG [options]            train the network of CFG on the dataset of its .data file\n"
    "  valid CFG WEIGHTS [options]    top-1 (and top-5) accuracy and loss on the validation set\n"
    "  predict CFG WEIGHTS [IMAGE...] [options]\n"
    "                                 class probabilities for image files, or for -index N of the\n"
    "                                 validation set\n"
    "  compare CFG [options]          baseline and ChannelDropBack arms over seeds: the paired\n"
    "                                 difference of their final top-1 with its 95% interval and\n"
    "                                 tests, as a table, CSV, Markdown and a chart\n"
    "  benchmark CFG [options]        training throughput on synthetic data of the cfg's shape, with a\n"
    "                                 per-phase and per-layer profile and the sgemm ceiling\n"
    "  summary CFG [options]          the network's layers, shapes, parameters and forward\n"
    "                                 multiply-adds, without data or training\n"
    "  export DATA DIR [-limit N]     write an IDX or CIFAR dataset as folders of PNG files (one per\n"
    "                                 class) with DIR/dataset.data to train from them\n"
    "  help                           this text\n"
    "\n"
    "options:\n"
    "  -data FILE        .data file to use instead of [net] data=\n"
    "  -weights FILE     (train) start from these weights and continue from their images-seen count\n"
    "                    (with FILE.state, the optimizer state saved beside them: an exact resume)\n"
    "  -clear            (train) with -weights: restart the schedule at step 0\n"
    "  -log FILE         (train) the CSV log, one row per validation (default\n"
    "                    BACKUP/CFGNAME_log.csv, its chart beside it; -log none: no log)\n"
    "  -backup DIR       (train) the backup folder, instead of the .data file's backup=\n"
    "  -seeds N          (compare) seeds 1..N (default 5); -seed-list 3,7,11 names them\n"
    "  -epochs E         (compare) train each arm E epochs (same as -set net.max_epochs=E)\n"
    "  -jobs J           (compare) arms trained at a time (default: one per CPU, threads split)\n"
    "  -out DIR          (compare) where the runs and the report go (default compare/CFGNAME)\n"
    "  -limit N          (export) the first N images of each set only\n"
    "  -size S, -rgb     (export) resample the images to S x S; write grey images as RGB\n"
    "  -jpeg Q           (export) JPEG files of quality Q (1-100) instead of PNG\n"
    "  -report DIR       (compare) rebuild the report of DIR from its finished runs, training nothing\n"
    "  -sweep K=v1,v2    (compare) one dropback arm per value of the -set key K (e.g.\n"
    "                    net.dropback_channel_rate=0.1,0.3,0.5), each against the same baselines\n"
    "  -share-backup     (train) run even when another run trains into the same backup folder\n"
    "                    (by default one run per folder: it holds BACKUP/.cdbnet.lock)\n"
    "  -out FILE         (train) final weights file (default BACKUP/CFGNAME_final.weights)\n"
    "  -seed N           seed of every random stream of the run (same as -set net.seed=N)\n"
    "  -threads N        CPU threads for GEMM and OpenMP loops (default: every CPU this process\n"
    "                    may run on; -threads 1 for one; at most 4 per CPU)\n"
    "  -max-memory MIB   refuse to build a network (buffers, parameters and optimizer state)\n"
    "                    larger than this (default: the memory available when it is built)\n"
    "  -nodropback       turn ChannelDropBack off everywhere (the baseline arm of a comparison)\n"
    "  -set SEC.KEY=VAL  override a cfg value; SEC is 'net' or a layer index as printed,\n"
    "                    e.g. -set net.max_batches=10 -set 3.channel_dropback=0 (repeatable)\n"
    "  -print N          (train) progress line every N steps (default about 20 per epoch)\n"
    "  -index N          (predict) predict item N of the validation set\n"
    "  -top N            (predict) classes to show (default 5); (benchmark) layers in the table (12)\n"
    "  -quiet            (train) no summary or progress lines\n"
    "  -batch N          (benchmark) images per step (default: the cfg's batch)\n"
    "  -steps N          (benchmark) timed steps per repeat (default 10)\n"
    "  -repeats N        (benchmark) repeats; the median is reported (default 5)\n"
    "  -warmup N         (benchmark) untimed steps first (default 3)\n"
    "  -dropback         (benchmark) also time dropback off/on and compute skipping, alternately\n"
    "  -data FILE        (benchmark) train on the batches of FILE's training set instead of synthetic\n"
    "                    data; image files are timed against the same images in memory, alternately\n"
    "  -data-only        (benchmark, with -data) the batches alone: images/s decoded and augmented\n"
    "  -gpu N            (GPU builds) run on CUDA device N (default: device 0 when there is one)\n"
    "  -cpu              (GPU builds) run on the CPU\n"
    "\n"
    "See README.md and docs/ for every cfg section and key.\n";

typedef struct {
    const char *data, *weights, *out, *log, *backup, *seed_list, *report, *sweep;
    int seeds, jobs, epochs, limit, size, rgb, jpeg, data_only;
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    int threads, nodropback, clear, print_every, index, top, top_given, quiet, follower;
    int batch, steps, repeats, warmup, dropback_report, share_backup;
    int gpu_index, force_cpu; /* -gpu N (-1: not given), -cpu */
    char batch_override[64], subdivision_override[64];
    const char *positional[64];
    int n_positional;
    char seed_override[64];
} cli;

static int need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "cdbnet: option %s needs a value\n%s", argv[i], usage);
        return -1;
    }
    return 0;
}

static int int_value(const char *opt, const char *s, int min, int *out)
{
    if (parse_int_strict(s, out) || *out < min) {
        fprintf(stderr, "cdbnet: %s expects an integer >= %d, got '%s'\n", opt, min, s);
        return -1;
    }
    return 0;
}

static int parse_cli(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof(*c));
    c->threads = 0; /* every available CPU */
    c->index = -1;
    c->top = 5;
    c->steps = 10;
    c->gpu_index = -1;
    c->repeats = 5;
    c->warmup = 3;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0) {
            if (c->n_positional == 64) {
                fprintf(stderr, "cdbnet: too many arguments\n");
                return -1;
            }
            c->positional[c->n_positional++] = a;
            continue;
        }
        int takes_value = !strcmp(a, "-data") || !strcmp(a, "-weights") || !strcmp(a, "-out") || !strcmp(a, "-seed") ||
                          !strcmp(a, "-threads") || !strcmp(a, "-set") || !strcmp(a, "-print") ||
                          !strcmp(a, "-index") || !strcmp(a, "-top") || !strcmp(a, "-batch") ||
                          !strcmp(a, "-steps") || !strcmp(a, "-repeats") || !strcmp(a, "-warmup") ||
                          !strcmp(a, "-gpu") || !strcmp(a, "-max-memory") || !strcmp(a, "-log") ||
                          !strcmp(a, "-backup") || !strcmp(a, "-seeds") || !strcmp(a, "-seed-list") ||
                          !strcmp(a, "-jobs") || !strcmp(a, "-epochs") || !strcmp(a, "-report") ||
                          !strcmp(a, "-sweep") || !strcmp(a, "-limit") || !strcmp(a, "-size") ||
                          !strcmp(a, "-jpeg");
        if (takes_value && need_value(argc, argv, i)) return -1;
        const char *v = takes_value ? argv[++i] : NULL;
        if (!strcmp(a, "-data")) c->data = v;
        else if (!strcmp(a, "-log")) c->log = v;
        else if (!strcmp(a, "-backup")) c->backup = v;
        else if (!strcmp(a, "-seed-list")) c->seed_list = v;
        else if (!strcmp(a, "-report")) c->report = v;
        else if (!strcmp(a, "-sweep")) c->sweep = v;
        else if (!strcmp(a, "-seeds")) {
            if (int_value(a, v, 1, &c->seeds)) return -1;
        } else if (!strcmp(a, "-jobs")) {
            if (int_value(a, v, 1, &c->jobs)) return -1;
        } else if (!strcmp(a, "-limit")) {
            if (int_value(a, v, 1, &c->limit)) return -1;
        } else if (!strcmp(a, "-size")) {
            if (int_value(a, v, 1, &c->size)) return -1;
        } else if (!strcmp(a, "-jpeg")) {
            if (int_value(a, v, 1, &c->jpeg)) return -1;
            if (c->jpeg > 100) {
                fprintf(stderr, "cdbnet: -jpeg expects a quality of 1 to 100, got %d\n", c->jpeg);
                return -1;
            }
        } else if (!strcmp(a, "-epochs")) {
            if (int_value(a, v, 1, &c->epochs)) return -1;
        }
        else if (!strcmp(a, "-weights")) c->weights = v;
        else if (!strcmp(a, "-out")) c->out = v;
        else if (!strcmp(a, "-seed")) {
            int seed;
            if (int_value(a, v, 0, &seed)) return -1;
            snprintf(c->seed_override, sizeof(c->seed_override), "net.seed=%d", seed);
            if (c->n_overrides == MAX_OVERRIDES) return -1;
            c->overrides[c->n_overrides++] = c->seed_override;
        } else if (!strcmp(a, "-threads")) {
            if (int_value(a, v, 1, &c->threads)) return -1;
            if (c->threads > 4 * available_cpus()) {
                fprintf(stderr, "cdbnet: -threads %d is more than 4 threads for each of the %d CPUs this process may "
                        "run on\n", c->threads, available_cpus());
                return -1;
            }
        } else if (!strcmp(a, "-max-memory")) {
            int mib;
            if (int_value(a, v, 1, &mib)) return -1;
            cdb_set_memory_limit((size_t)mib << 20);
        } else if (!strcmp(a, "-set")) {
            if (c->n_overrides == MAX_OVERRIDES) {
                fprintf(stderr, "cdbnet: more than %d -set options\n", MAX_OVERRIDES);
                return -1;
            }
            c->overrides[c->n_overrides++] = v;
        } else if (!strcmp(a, "-print")) {
            if (int_value(a, v, 1, &c->print_every)) return -1;
        } else if (!strcmp(a, "-index")) {
            if (int_value(a, v, 0, &c->index)) return -1;
        } else if (!strcmp(a, "-top")) {
            if (int_value(a, v, 1, &c->top)) return -1;
            c->top_given = 1;
        } else if (!strcmp(a, "-batch")) {
            if (int_value(a, v, 1, &c->batch)) return -1;
        } else if (!strcmp(a, "-steps")) {
            if (int_value(a, v, 1, &c->steps)) return -1;
        } else if (!strcmp(a, "-repeats")) {
            if (int_value(a, v, 1, &c->repeats)) return -1;
        } else if (!strcmp(a, "-warmup")) {
            if (int_value(a, v, 0, &c->warmup)) return -1;
        } else if (!strcmp(a, "-gpu")) {
            if (int_value(a, v, 0, &c->gpu_index)) return -1;
        } else if (!strcmp(a, "-nodropback")) c->nodropback = 1;
        else if (!strcmp(a, "-share-backup")) c->share_backup = 1;
        else if (!strcmp(a, "-rgb")) c->rgb = 1;
        else if (!strcmp(a, "-data-only")) c->data_only = 1;
        else if (!strcmp(a, "-clear")) c->clear = 1;
        else if (!strcmp(a, "-dropback")) c->dropback_report = 1;
        else if (!strcmp(a, "-cpu")) c->force_cpu = 1;
        else if (!strcmp(a, "-quiet")) c->quiet = 1;
        else {
            fprintf(stderr, "cdbnet: unknown option '%s'\n%s", a, usage);
            return -1;
        }
    }
    return 0;
}

static int fail(void)
{
    if (dist_size() > 1)
        fprintf(stderr, "cdbnet: error (rank %d of %d): %s\n", dist_rank(), dist_size(), cdb_last_error());
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
    int devices = cuda_device_count();
    if (c->gpu_index >= 0) return gpu_init(net, c->gpu_index);
    if (devices > 0 && dist_size() > 1) { /* ranks on one host share its devices in turn */
        const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
        int k = local ? atoi(local) : dist_rank();
        return gpu_init(net, k % devices);
    }
    if (devices > 0) return gpu_init(net, 0);
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

static cdb_network *load_network(const char *cfg_path, const cli *c)
{
    cdb_network *net = cdb_network_load(cfg_path, c->overrides, c->n_overrides);
    if (!net) return NULL;
    if (c->nodropback) dropback_disable(net);
    if (place_network(net, c)) {
        cdb_network_free(net);
        return NULL;
    }
#ifdef GPU
    if (net->gpu && net->sync_bn && net->ranks > 1) {
        cdb_set_error("%s: sync_bn=1 runs on CPU ranks only (the GPU batch norm has no exchange): add -cpu, or drop "
                      "sync_bn",
                      cfg_path);
        cdb_network_free(net);
        return NULL;
    }
#endif
    return net;
}

static int load_data_config(const cdb_network *net, const cli *c, data_config *d)
{
    const char *path = c->data ? c->data : net->data_path;
    if (!path) {
        cdb_set_error("%s: no dataset: give [net] data=FILE.data or -data FILE.data", net->cfg_path);
        return -1;
    }
    if (data_config_load(path, d)) return -1;
    if (c->backup) { /* -backup DIR replaces the .data file's backup= */
        char *dir = xstrdup(c->backup);
        if (!dir) {
            data_config_free(d);
            return -1;
        }
        free(d->backup);
        d->backup = dir;
    }
    return 0;
}

/* SIGINT/SIGTERM during training: the first asks the loop to save a
 * checkpoint after the step under way and stop; a second ends the process
 * at once. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
    signal(sig, SIG_DFL);
}

/* Folder datasets: the validation set's class folders are the training
 * set's (each labels its images by its own folders). */
static int check_same_classes(const cdb_dataset *train, const cdb_dataset *valid)
{
    if (!train->class_names || !valid->class_names) return 0;
    for (int k = 0; k < train->classes; k++)
        if (strcmp(train->class_names[k], valid->class_names[k])) {
            cdb_set_error("class %d is the folder '%s' in '%s' but '%s' in '%s': both sets need the same class folders "
                          "(or a names= file)",
                          k, train->class_names[k], train->name, valid->class_names[k], valid->name);
            return -1;
        }
    return 0;
}

/* The line that says what an image-file dataset is. */
static void print_dataset(const cdb_dataset *train, const cdb_dataset *valid)
{
    if (!train->paths && !train->class_names) return;
    printf("data: %s: %d images, %s: %d images, decoded by %s on %d thread%s%s\n", train->name, train->n, valid->name,
           valid->n, image_decoder_name(), train->workers, train->workers == 1 ? "" : "s",
           train->pixels ? " (cached in memory)" : ", the next batch while this one trains");
    if (train->class_names) {
        printf("classes:");
        for (int k = 0; k < train->classes; k++) printf("%s %d %s", k ? "," : "", k, train->class_names[k]);
        printf("\n");
    }
}

static int cmd_train(const cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet train CFG [options]\n");
        return 2;
    }
    cdb_network *net = load_network(c->positional[0], c);
    if (!net) return fail();
    data_config d;
    cdb_dataset train = {0}, valid = {0};
    int status = 1;
    if (!c->quiet) network_print_summary(net, stdout);
    if (c->weights) {
        if (cdb_weights_load(net, c->weights)) goto done;
        if (c->clear) net->seen = 0;
        if (net->seen / (uint64_t)net->batch > (1u << 30)) {
            cdb_set_error("weights file '%s': its images-seen count %llu is more than 2^30 steps of batch %d "
                          "(use -clear to start the schedule over)",
                          c->weights, (unsigned long long)net->seen, net->batch);
            goto done;
        }
        net->step = (int)(net->seen / (uint64_t)net->batch);
        int which = c->clear ? 0 : cdb_checkpoint_load_state(net, c->weights);
        if (which < 0) goto done;
        if (which > 0 && !c->quiet)
            printf("resuming at step %d with the optimizer state of %s.state%s\n", net->step, c->weights,
                   which == 2 ? ".prev (the run was killed while saving; the weights are those of that state)" : "");
        if (which == 0 && !c->clear && net->step > 0)
            fprintf(stderr, "warning: no optimizer state '%s.state': continuing at step %d with momentum from zero\n",
                    c->weights, net->step);
    }
    if (load_data_config(net, c, &d)) goto done;
    if (dataset_load(&d, "train", &train) || dataset_check_against(&train, net) || dataset_load(&d, "valid", &valid) ||
        dataset_check_against(&valid, net)) {
        data_config_free(&d);
        goto done;
    }
    if (train_resolve_length(net, train.n) || check_same_classes(&train, &valid)) {
        data_config_free(&d);
        goto done;
    }
    if (!c->quiet) print_dataset(&train, &valid);
    if (!train.paths && net->input_cfg.darknet_crop_keys)
        fprintf(stderr, "warning: %s: min_crop, max_crop and aspect crop image files (format=folder or list); the images "
                        "of '%s' are used at their size\n",
                net->cfg_path, train.name);
    if (!c->quiet)
        dropback_print_config(net, c->nodropback ? "off (-nodropback)" : "off unless set per layer", stdout);
    for (int i = 0; i < c->n_overrides && !c->quiet; i++)
        if (!strncmp(c->overrides[i], "net.max_batches=", 16) || !strncmp(c->overrides[i], "net.max_epochs=", 15))
            printf("length: -set %s from the command line replaces the cfg's length\n", c->overrides[i]);
    train_options opt = {.backup_dir = d.backup,
                         .out_path = c->out,
                         .print_every = c->print_every,
                         .quiet = c->quiet,
                         .share_backup = c->share_backup,
                         .log_path = c->log,
                         .overrides = c->overrides,
                         .n_overrides = c->n_overrides,
                         .class_names = (const char *const *)train.class_names,
                         .follower = c->follower,
                         .stop = &stop_requested};
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    status = train_network(net, &train, &valid, &opt, NULL) ? 1 : 0;
    data_config_free(&d);
done:
    dataset_free(&train);
    dataset_free(&valid);
    if (status) fail();
    cdb_network_free(net);
    return status;
}

/* -sweep SEC.KEY=v1,v2,...: the key and its values (text is the copy they
 * point into). 0, or -1 with the message printed. */
static int parse_sweep(const char *arg, char *text, size_t size, compare_options *o)
{
    snprintf(text, size, "%s", arg);
    char *eq = strchr(text, '='), *dot = strchr(text, '.');
    if (!eq || !dot || dot > eq || eq == text || eq[1] == 0) {
        fprintf(stderr, "cdbnet: -sweep expects SEC.KEY=v1,v2,... (e.g. net.dropback_channel_rate=0.1,0.3,0.5), got "
                        "'%s'\n", arg);
        return -1;
    }
    *eq = 0;
    o->sweep_key = text;
    if (!strcmp(text, "net.seed") || !strcmp(text, "net.channel_dropback")) {
        fprintf(stderr, "cdbnet: -sweep %s: compare chooses %s itself\n", text,
                strcmp(text, "net.seed") ? "which arm has dropback (the baseline has none)" : "the seeds (-seeds)");
        return -1;
    }
    for (char *save = NULL, *t = strtok_r(eq + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_values == COMPARE_MAX_VALUES) {
            fprintf(stderr, "cdbnet: -sweep: at most %d values\n", COMPARE_MAX_VALUES);
            return -1;
        }
        for (int v = 0; v < o->n_values; v++)
            if (!strcmp(o->sweep_values[v], t)) {
                fprintf(stderr, "cdbnet: -sweep: the value '%s' is given twice\n", t);
                return -1;
            }
        o->sweep_values[o->n_values++] = t;
    }
    if (o->n_values == 0) {
        fprintf(stderr, "cdbnet: -sweep %s: no values\n", arg);
        return -1;
    }
    return 0;
}

/* Before any arm starts: the cfg builds with the -set options, and with
 * each value of the sweep (a typo is reported once, not by every arm). */
static int check_compare_cfgs(const compare_options *o)
{
    const char *set[COMPARE_MAX_ARGS / 2 + 2];
    int n = 0;
    for (int i = 0; i + 1 < o->n_train_args; i++)
        if (!strcmp(o->train_args[i], "-set")) set[n++] = o->train_args[++i];
    for (int v = -1; v < o->n_values; v++) {
        char one[1024];
        if (v >= 0) {
            snprintf(one, sizeof(one), "%s=%s", o->sweep_key, o->sweep_values[v]);
            set[n] = one;
        }
        cdb_network *net = cdb_network_load(o->cfg, set, n + (v >= 0));
        if (!net) {
            if (v >= 0) {
                char why[1024];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("-sweep %s=%s: %s", o->sweep_key, o->sweep_values[v], why);
            }
            return -1;
        }
        cdb_network_free(net);
    }
    return 0;
}

static int cmd_compare(const cli *c, const char *self)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet compare CFG [-seeds N | -seed-list 1,2,3] [-epochs E] [-jobs J] [-threads T]\n"
                        "                      [-data FILE] [-set SEC.KEY=VAL ...] [-sweep SEC.KEY=v1,v2,...]\n"
                        "                      [-out DIR] [-report DIR]\n");
        return 2;
    }
    static compare_options o;
    memset(&o, 0, sizeof(o));
    o.self = self;
    o.cfg = c->positional[0];
    char dir[4096], base[256];
    cfg_basename(o.cfg, base, sizeof(base));
    snprintf(dir, sizeof(dir), "compare/%s", base);
    o.dir = c->report ? c->report : (c->out ? c->out : dir);
    o.report_only = c->report != NULL;
    if (c->seed_list) {
        char list[1024];
        snprintf(list, sizeof(list), "%s", c->seed_list);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int v;
            if (parse_int_strict(t, &v) || v < 0 || o.n_seeds == COMPARE_MAX_SEEDS) {
                fprintf(stderr, "cdbnet: -seed-list expects up to %d seeds >= 0 separated by commas, got '%s'\n",
                        COMPARE_MAX_SEEDS, c->seed_list);
                return 2;
            }
            o.seeds[o.n_seeds++] = v;
        }
    } else if (!o.report_only || c->seeds) {
        int n = c->seeds ? c->seeds : 5;
        if (n > COMPARE_MAX_SEEDS) {
            fprintf(stderr, "cdbnet: -seeds %d: at most %d\n", n, COMPARE_MAX_SEEDS);
            return 2;
        }
        for (int i = 0; i < n; i++) o.seeds[o.n_seeds++] = i + 1;
    }
    static char sweep[4096];
    if (c->sweep && parse_sweep(c->sweep, sweep, sizeof(sweep), &o)) return 2;
    int variants = o.n_values ? o.n_values : 1;
    int cpus = available_cpus(), arms = (1 + variants) * (o.n_seeds ? o.n_seeds : 1);
    o.jobs = c->jobs ? c->jobs : (arms < cpus ? arms : cpus);
    o.threads = c->threads ? c->threads : (cpus / o.jobs > 0 ? cpus / o.jobs : 1);
    static char epochs[64];
    if (c->data) {
        o.train_args[o.n_train_args++] = "-data";
        o.train_args[o.n_train_args++] = c->data;
    }
    for (int i = 0; i < c->n_overrides && o.n_train_args + 2 < COMPARE_MAX_ARGS; i++) {
        if (!strncmp(c->overrides[i], "net.seed=", 9)) {
            fprintf(stderr, "cdbnet: compare chooses the seeds (-seeds, -seed-list), not -seed\n");
            return 2;
        }
        o.train_args[o.n_train_args++] = "-set";
        o.train_args[o.n_train_args++] = c->overrides[i];
    }
    if (c->epochs) {
        snprintf(epochs, sizeof(epochs), "net.max_epochs=%d", c->epochs);
        o.train_args[o.n_train_args++] = "-set";
        o.train_args[o.n_train_args++] = epochs;
    }
    if (!o.report_only && check_compare_cfgs(&o)) return fail();
    if (run_compare(&o)) return fail();
    return 0;
}

static int cmd_valid(const cli *c)
{
    if (c->n_positional != 2) {
        fprintf(stderr, "usage: cdbnet valid CFG WEIGHTS [options]\n");
        return 2;
    }
    cdb_network *net = load_network(c->positional[0], c);
    if (!net) return fail();
    data_config d;
    cdb_dataset valid = {0};
    int status = 1;
    if (cdb_weights_load(net, c->positional[1]) || load_data_config(net, c, &d)) goto done;
    if (dataset_load(&d, "valid", &valid) || dataset_check_against(&valid, net)) {
        data_config_free(&d);
        goto done;
    }
    data_config_free(&d);
    valid_result v;
    if (validate_network(net, &valid, &v)) goto done;
    printf("%s on %s: top-1 %.2f%%", c->positional[1], valid.name, 100 * v.top1);
    if (net->classes > 5) printf("  top-5 %.2f%%", 100 * v.top5);
    printf("  loss %.4f  (%d images)\n", v.loss, v.count);
    if (v.nonfinite)
        printf("warning: %d of %d images had a non-finite output (counted wrong): the weights may have diverged\n",
               v.nonfinite, v.count);
    status = 0;
done:
    dataset_free(&valid);
    if (status) fail();
    cdb_network_free(net);
    return status;
}

/* benchmark -data FILE: the training set's first images, read as the run
 * reads them and, for image files, also from memory (cache=1). */
static int benchmark_data(cdb_network *net, const cli *c, const benchmark_options *opt)
{
    data_config d;
    cdb_dataset files = {0}, memory = {0};
    if (!c->data) {
        cdb_set_error("-data-only needs -data FILE.data (the dataset whose batches to time)");
        return -1;
    }
    if (load_data_config(net, c, &d)) return -1;
    int status = -1;
    long need = (long)(opt->warmup + 1 + (long)opt->steps * opt->repeats) * net->batch;
    int image_files = d.format == DATA_FOLDER || d.format == DATA_LIST;
    cdb_dataset *first = image_files ? &files : &memory;
    if (image_files && (net->input_cfg.resized_crop || net->input_cfg.darknet_crop)) {
        cdb_set_error("the in-memory arm keeps pre-processed images, so it cannot time random crops: benchmark with "
                      "-set net.resized_crop=0 (or -set net.center=1 for Darknet's crop)");
        goto done;
    }
    d.cache = 0;
    if (dataset_load(&d, "train", first)) goto done;
    if (first->n > need) dataset_truncate(first, (int)need);
    if (dataset_check_against(first, net)) goto done;
    if (first->n < net->batch) {
        cdb_set_error("the training set '%s' has %d images, fewer than a batch of %d", first->name, first->n,
                      net->batch);
        goto done;
    }
    if (image_files) { /* the same images, decoded once into memory */
        if (dataset_load(&d, "train", &memory)) goto done;
        if (memory.n > need) dataset_truncate(&memory, (int)need);
        memory.cache = 1;
        if (dataset_check_against(&memory, net)) goto done;
    }
    status = run_data_benchmark(net, image_files ? &files : NULL, &memory, opt, c->data_only);
done:
    dataset_free(&files);
    dataset_free(&memory);
    data_config_free(&d);
    return status;
}

static int cmd_benchmark(cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet benchmark CFG [-batch N] [-steps N] [-repeats N] [-threads N] [-nodropback]\n");
        return 2;
    }
    if (c->batch) {
        if (c->n_overrides + 2 > MAX_OVERRIDES) return 2;
        snprintf(c->batch_override, sizeof(c->batch_override), "net.batch=%d", c->batch);
        snprintf(c->subdivision_override, sizeof(c->subdivision_override), "net.subdivisions=1");
        c->overrides[c->n_overrides++] = c->batch_override;
        c->overrides[c->n_overrides++] = c->subdivision_override;
    }
    cdb_network *net = load_network(c->positional[0], c);
    if (!net) return fail();
    benchmark_options opt = {c->warmup, c->steps, c->repeats, c->top_given ? c->top : 12};
    if (c->data || c->data_only) {
        int status = benchmark_data(net, c, &opt);
        cdb_network_free(net);
        return status ? fail() : 0;
    }
    int status = run_benchmark(net, &opt) ? 1 : 0;
    if (!status && c->dropback_report) {
        /* The same cfg four times: off, on, and at rates 1/0.5 without and with compute skipping. */
        int base = c->n_overrides;
        const char *extra[] = {"net.channel_dropback=1", "net.dropback_layer_rate=1", "net.dropback_channel_rate=0.5",
                               "net.dropback_skip_compute=1"};
        if (base + 4 > MAX_OVERRIDES) return 2;
        c->nodropback = 0; /* the report builds its own off arm */
        cdb_network *off = load_network(c->positional[0], c);
        cdb_network *on = load_network(c->positional[0], c);
        for (int i = 0; i < 3; i++) c->overrides[c->n_overrides++] = extra[i];
        cdb_network *mask = load_network(c->positional[0], c);
        c->overrides[c->n_overrides++] = extra[3];
        cdb_network *skip = load_network(c->positional[0], c);
        c->n_overrides = base;
        if (!off || !on || !mask || !skip) {
            status = 1;
        } else {
            dropback_disable(off);
            status = run_dropback_report(off, on, mask, skip, &opt) ? 1 : 0;
        }
        cdb_network_free(off);
        cdb_network_free(on);
        cdb_network_free(mask);
        cdb_network_free(skip);
    }
    if (status) fail();
    cdb_network_free(net);
    return status;
}

/* 0, or -1 with the error recorded when an output is not finite */
static int print_top(const float *probs, int classes, int top, const char *label, char **names)
{
    for (int k = 0; k < classes; k++)
        if (!isfinite(probs[k])) {
            cdb_set_error("%s: the network's output for class %d is not finite (%g): the weights may have diverged",
                          label, k, probs[k]);
            return -1;
        }
    printf("%s:\n", label);
    int shown[64] = {0};
    if (top > classes) top = classes;
    if (top > 64) top = 64;
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int k = 0; k < classes; k++) {
            int used = 0;
            for (int s = 0; s < t; s++) used |= shown[s] == k;
            if (!used && (best < 0 || probs[k] > probs[best])) best = k;
        }
        shown[t] = best;
        printf("  class %3d  %6.2f%%  %s\n", best, 100 * probs[best], names ? names[best] : "");
    }
    return 0;
}

/* An image file as the validation set's images are read (images.h): the
 * network's channels, the shorter side to image_resize, the centre crop,
 * then normalised. */
static int load_image(const cdb_network *net, const char *path, float *out)
{
    byte_image im;
    if (image_decode(path, net->c == 1 ? 1 : 3, &im)) return -1;
    uint8_t *bytes = xcalloc((size_t)net->inputs, 1), *chw = bytes;
    uint8_t *rgb = net->c > 3 ? xcalloc((size_t)3 * net->h * net->w, 1) : NULL;
    if (!bytes || (net->c > 3 && !rgb)) {
        free(bytes);
        image_free(&im);
        return -1;
    }
    if (rgb) chw = rgb;
    image_resample(&im, image_center_box(im.w, im.h, net->input_cfg.image_resize, net->w, net->h), net->w, net->h, chw);
    if (rgb) memcpy(bytes, rgb, (size_t)3 * net->h * net->w); /* the other channels 0 */
    augment_params none = {0, 0, 0, 0.f, 0.f, 1.f, 1.f};
    augment_image(bytes, net->c, net->h, net->w, &net->input_cfg, &none, out);
    free(rgb);
    free(bytes);
    image_free(&im);
    return 0;
}

static int cmd_predict(const cli *c)
{
    if (c->n_positional < 2 || (c->n_positional == 2 && c->index < 0)) {
        fprintf(stderr, "usage: cdbnet predict CFG WEIGHTS IMAGE... | -index N [options]\n");
        return 2;
    }
    cdb_network *net = load_network(c->positional[0], c);
    if (!net) return fail();
    int status = 1;
    float *image = xcalloc((size_t)net->inputs, sizeof(float));
    float *probs = xcalloc((size_t)net->classes, sizeof(float));
    char **names = NULL;
    data_config d = {0};
    if (!image || !probs) goto done;
    int have_data = (c->data || net->data_path) && load_data_config(net, c, &d) == 0;
    if (!have_data && (c->data || net->data_path)) goto done;
    if (have_data && d.names && !(names = data_load_names(d.names, net->classes))) goto done;
    if (cdb_weights_load(net, c->positional[1])) goto done;
    if (c->index >= 0) {
        cdb_dataset valid = {0};
        if (!have_data) {
            cdb_set_error("-index needs a dataset: give [net] data= or -data");
            goto done;
        }
        int bad = dataset_load(&d, "valid", &valid) || dataset_check_against(&valid, net);
        if (!bad && c->index >= valid.n) {
            cdb_set_error("-index %d: the validation set has %d items", c->index, valid.n);
            bad = 1;
        }
        if (bad) {
            dataset_free(&valid);
            goto done;
        }
        int label;
        if (dataset_fill_batch(&valid, &c->index, 1, &net->input_cfg, 0, NULL, image, &label)) {
            dataset_free(&valid);
            goto done;
        }
        cdb_predict(net, image, 1, probs);
        char title[128];
        snprintf(title, sizeof(title), "item %d of %s (label %d)", c->index, valid.name, label);
        int bad_output = print_top(probs, net->classes, c->top, title, names);
        dataset_free(&valid);
        if (bad_output) goto done;
    }
    for (int i = 2; i < c->n_positional; i++) {
        if (load_image(net, c->positional[i], image)) goto done;
        cdb_predict(net, image, 1, probs);
        if (print_top(probs, net->classes, c->top, c->positional[i], names)) goto done;
    }
    status = 0;
done:
    free(image);
    free(probs);
    data_free_names(names, net->classes);
    data_config_free(&d);
    if (status) fail();
    cdb_network_free(net);
    return status;
}

static int cmd_export(const cli *c)
{
    if (c->n_positional != 2) {
        fprintf(stderr, "usage: cdbnet export DATA.data DIR [-limit N] [-size S] [-rgb] [-jpeg QUALITY]\n");
        return 2;
    }
    data_config d;
    if (data_config_load(c->positional[0], &d)) return fail();
    printf("export %s (%d classes) as %s files under %s\n", c->positional[0], d.classes, c->jpeg ? "JPEG" : "PNG", c->positional[1]);
    export_options opt = {c->limit, c->size, c->rgb, c->jpeg};
    int status = export_images(&d, c->positional[1], &opt);
    data_config_free(&d);
    return status ? fail() : 0;
}

static int cmd_summary(const cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet summary CFG [-set KEY=VALUE ...]\n");
        return 2;
    }
    cdb_network *net = load_network(c->positional[0], c);
    if (!net) return fail();
    network_print_summary(net, stdout);
    cdb_network_free(net);
    return 0;
}

/* This executable, for compare's arms: /proc/self/exe where there is one. */
static const char *self_path(const char *argv0)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n > 0) {
        path[n] = 0;
        return path;
    }
    return argv0;
}

static int run(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        if (dist_rank() == 0) fputs(usage, stdout);
        return argc < 2 ? 2 : 0;
    }
    cli c;
    if (parse_cli(argc, argv, &c)) return 2;
    if (dist_size() > 1 && strcmp(argv[1], "train") && strcmp(argv[1], "benchmark")) {
        if (dist_rank() == 0)
            fprintf(stderr, "cdbnet: only train and benchmark run on several ranks (mpirun -np %d): run %s in one "
                            "process\n",
                    dist_size(), argv[1]);
        return 2;
    }
    if (dist_rank() > 0) { /* rank 0 prints, validates and writes */
        c.quiet = 1;
        c.follower = 1;
        if (!strcmp(argv[1], "benchmark") && !freopen("/dev/null", "w", stdout)) return 1;
    }
    set_num_threads(c.threads ? c.threads : available_cpus());
#ifdef GPU
    if (!c.force_cpu && cuda_device_count() > 0) {
        char cuda[256];
        cuda_describe(cuda, sizeof(cuda));
        fprintf(stderr, "cdbnet: %s, %d CUDA device(s)\n", cuda, cuda_device_count());
    }
#endif
    if (!strcmp(argv[1], "train")) return cmd_train(&c);
    if (!strcmp(argv[1], "valid")) return cmd_valid(&c);
    if (!strcmp(argv[1], "predict")) return cmd_predict(&c);
    if (!strcmp(argv[1], "benchmark")) return cmd_benchmark(&c);
    if (!strcmp(argv[1], "summary")) return cmd_summary(&c);
    if (!strcmp(argv[1], "compare")) return cmd_compare(&c, self_path(argv[0]));
    if (!strcmp(argv[1], "export")) return cmd_export(&c);
    fprintf(stderr, "cdbnet: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}

int main(int argc, char **argv)
{
    if (dist_init(&argc, &argv)) {
        fprintf(stderr, "cdbnet: error: %s\n", cdb_last_error());
        return 1;
    }
    int status = run(argc, argv);
    /* a rank that failed alone would leave the others waiting in the next
     * exchange: it stops them all */
    if (status && dist_size() > 1) {
        fprintf(stderr, "cdbnet: rank %d of %d stops the run (exit status %d)\n", dist_rank(), dist_size(), status);
        fflush(stderr);
        dist_abort(status);
    }
    dist_finalize();
    return status;
}
