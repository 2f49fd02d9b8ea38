/* The training loop and validation used by `cdbnet train` and `cdbnet valid`. */
#ifndef CDB_TRAIN_H
#define CDB_TRAIN_H

#include <signal.h>

#include "data.h"
#include "metrics.h"
#include "network.h"
#include "trainer.h"

typedef struct {
    const char *backup_dir;   /* where periodic and final weights go */
    const char *out_path;     /* final weights file (default backup/NAME_final.weights) */
    int print_every;          /* progress line every N steps; 0 = about 20 per epoch */
    int quiet;                /* no progress lines, only the final summary */
    int share_backup;         /* train even when another run holds the backup folder's lock */
    const char *log_path;     /* the CSV log (default BACKUP/CFGNAME_log.csv); "none": no log */
    const char *arm;          /* for the log's header: "dropback" or "baseline" (default: from the network) */
    const char *const *overrides; /* the -set overrides, for the log's header */
    int n_overrides;
    const char *const *class_names; /* a folder dataset's classes, for the log's header, or NULL */
    int follower;             /* a rank other than 0 of a data-parallel run: trains its shards, writes and prints nothing */
    /* When not NULL and set (by a signal handler of the caller's), the run
     * saves a checkpoint after the step under way and returns -1 with a
     * message saying so. */
    volatile sig_atomic_t *stop;
    /* Called after each step and each validation (include/cdbnet.h); a
     * non-zero return stops the run as `stop` does. */
    cdb_progress_fn progress;
    void *progress_user;
} train_options;

/* The run of `tr` (from its step to max_batches, which the trainer resolves
 * against the training set's size) with validation, checkpoints, logs. */
int cdb_train_network(cdb_trainer *tr, const cdb_dataset *train, const cdb_dataset *valid, const train_options *opt,
                  valid_result *final);
/* Top-1, top-5 and loss of the network on `valid`, normalised as its cfg says. */
int cdb_validate_network(cdb_network *net, const cdb_dataset *valid, valid_result *out);
/* The same, also counting into `confusion` (classes x (classes + 1),
 * zeroed by the caller; metrics.h) and copying each image's outputs into
 * `scores` (images x classes, in the dataset's order), each when not NULL. */
int cdb_validate_confusion(cdb_network *net, const cdb_dataset *valid, valid_result *out, long *confusion,
                           float *scores);

#endif
