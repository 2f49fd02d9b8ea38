/* The cdbnet command line: what its files share. main.c reads the
 * arguments and runs one command; each cmd_*.c is a command or a group of
 * them, on the library's headers (no file here looks inside a network).
 * Only the command line exits the process; the library returns errors. */
#ifndef CDB_CLI_H
#define CDB_CLI_H

#include "cdbnet.h"
#include "dataset.h"

#define MAX_OVERRIDES 64

typedef struct {
    const char *data, *weights, *out, *log, *backup, *seed_list, *report, *sweep;
    int seeds, jobs, epochs, limit, size, rgb, jpeg, data_only;
    const char *train_subset;  /* -train-subset N, as given (train checks it; compare passes it on) */
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

/* The usage text of `cdbnet help`. */
extern const char *cli_usage;

/* Prints "cdbnet: error: " and cdb_last_error() (naming the rank in a
 * data-parallel run); returns 1, the exit status. */
int cli_fail(void);
/* The network of cfg_path with the -set overrides, -nodropback, and on the
 * device of -gpu/-cpu: NULL with the error recorded. */
cdb_network *cli_load_network(const char *cfg_path, const cli *c);
/* The .data file of -data, else the cfg's data=; -backup replaces its
 * backup=. 0, or -1 with the error recorded. */
int cli_load_data_config(const cdb_network *net, const cli *c, data_config *d);

int cmd_train(const cli *c);
int cmd_compare(const cli *c, const char *self);
int cmd_valid(const cli *c);
int cmd_predict(const cli *c);
int cmd_benchmark(cli *c);
int cmd_summary(const cli *c);
int cmd_export(const cli *c);

#endif
