/* cdbnet's main: the arguments read into a `cli` (cli.h), then one
 * command: train, valid, predict, compare, benchmark, summary, export or
 * help. A data-parallel run (mpirun) starts and ends its ranks here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"
#include "gemm.h"
#include "utils.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

const char *cli_usage =
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
    "  -train-subset N   (train, compare) train on a stratified N images of the training set, drawn from the seed\n"
    "  -log FILE         (train) the CSV log, one row per validation (default\n"
    "                    BACKUP/CFGNAME_log.csv, its chart beside it; -log none: no log)\n"
    "  -backup DIR       (train) the backup folder, instead of the .data file's backup=\n"
    "  -seeds N          (compare) seeds 1..N (default 5); -seed-list 3,7,11 names them\n"
    "  -epochs E         (compare) train each arm E epochs (same as -set net.max_epochs=E)\n"
    "  -jobs J           (compare) arms trained at a time (default: one per CPU, threads split)\n"
    "  -out DIR          (compare) where the runs and the report go (default compare/CFGNAME)\n"
    "  -limit N          (export) the first N images of each set only\n"
    "  -size S, -rgb     (export) resample the images to S x S (S at most 8192); write grey images as RGB\n"
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
    "See docs/commands.md for the commands and options, docs/cfg.md for every cfg section and key.\n";

static int need_value(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "cdbnet: option %s needs a value\n%s", argv[i], cli_usage);
        return -1;
    }
    return 0;
}

static int int_value(const char *opt, const char *s, int min, int *out)
{
    if (cdb_parse_int_strict(s, out) || *out < min) {
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
                          !strcmp(a, "-jpeg") || !strcmp(a, "-train-subset");
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
            if (c->size > 8192) { /* the images of a dataset, not posters: 8192 x 8192 RGB is 192 MiB a buffer */
                fprintf(stderr, "cdbnet: -size %d: at most 8192\n", c->size);
                return -1;
            }
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
            if (c->threads > 4 * cdb_available_cpus()) {
                fprintf(stderr, "cdbnet: -threads %d is more than 4 threads for each of the %d CPUs this process may "
                        "run on\n", c->threads, cdb_available_cpus());
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
        } else if (!strcmp(a, "-train-subset")) {
            int n;
            if (int_value(a, v, 1, &n)) return -1;
            c->train_subset = v;
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
            fprintf(stderr, "cdbnet: unknown option '%s'\n%s", a, cli_usage);
            return -1;
        }
    }
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
        if (cdb_dist_rank() == 0) fputs(cli_usage, stdout);
        return argc < 2 ? 2 : 0;
    }
    cli c;
    if (parse_cli(argc, argv, &c)) return 2;
    if (cdb_dist_size() > 1 && strcmp(argv[1], "train") && strcmp(argv[1], "benchmark")) {
        if (cdb_dist_rank() == 0)
            fprintf(stderr, "cdbnet: only train and benchmark run on several ranks (mpirun -np %d): run %s in one "
                            "process\n",
                    cdb_dist_size(), argv[1]);
        return 2;
    }
    if (cdb_dist_rank() > 0) { /* rank 0 prints, validates and writes */
        c.quiet = 1;
        c.follower = 1;
        if (!strcmp(argv[1], "benchmark") && !freopen("/dev/null", "w", stdout)) return 1;
    }
    cdb_set_num_threads(c.threads ? c.threads : cdb_available_cpus());
#ifdef GPU
    if (!c.force_cpu && cdb_cuda_device_count() > 0) {
        char cuda[256];
        cdb_cuda_describe(cuda, sizeof(cuda));
        fprintf(stderr, "cdbnet: %s, %d CUDA device(s)\n", cuda, cdb_cuda_device_count());
    }
#endif
    if (!strcmp(argv[1], "train")) return cmd_train(&c);
    if (!strcmp(argv[1], "valid")) return cmd_valid(&c);
    if (!strcmp(argv[1], "predict")) return cmd_predict(&c);
    if (!strcmp(argv[1], "benchmark")) return cmd_benchmark(&c);
    if (!strcmp(argv[1], "summary")) return cmd_summary(&c);
    if (!strcmp(argv[1], "compare")) return cmd_compare(&c, self_path(argv[0]));
    if (!strcmp(argv[1], "export")) return cmd_export(&c);
    fprintf(stderr, "cdbnet: unknown command '%s'\n%s", argv[1], cli_usage);
    return 2;
}

int main(int argc, char **argv)
{
    if (cdb_dist_init(&argc, &argv)) {
        fprintf(stderr, "cdbnet: error: %s\n", cdb_last_error());
        return 1;
    }
    int status = run(argc, argv);
    /* a rank that failed alone would leave the others waiting in the next
     * exchange: it stops them all */
    if (status && cdb_dist_size() > 1) {
        fprintf(stderr, "cdbnet: rank %d of %d stops the run (exit status %d)\n", cdb_dist_rank(), cdb_dist_size(), status);
        fflush(stderr);
        cdb_dist_abort(status);
    }
    cdb_dist_finalize();
    return status;
}
