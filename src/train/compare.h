/* `cdbnet compare`: paired baseline and ChannelDropBack arms over seeds,
 * the paired difference with its uncertainty, as a table, CSV, Markdown and
 * a chart. Each arm is a `cdbnet train` of its own (same cfg and seed: the
 * same initial weights, data order and augmentation; only the masks differ),
 * J at a time; a rerun skips arms that finished; `-report` rebuilds the
 * report from finished runs; -sweep trains one dropback arm per value of a
 * key, each paired with the same baseline. */
#ifndef CDB_COMPARE_H
#define CDB_COMPARE_H

#define COMPARE_MAX_SEEDS 64
#define COMPARE_MAX_ARGS 80
#define COMPARE_MAX_VALUES 16

typedef struct {
    const char *self;                 /* this executable, to run the arms */
    const char *cfg;
    const char *dir;                  /* runs and report */
    int seeds[COMPARE_MAX_SEEDS], n_seeds; /* none with report_only: those in DIR/runs */
    int jobs, threads;                /* arms at a time, threads each */
    const char *train_args[COMPARE_MAX_ARGS]; /* passed to every arm (-data, -set ...) */
    int n_train_args;
    int report_only;
    /* -sweep KEY=v1,v2,...: one dropback arm per value (-set KEY=v), each
     * against the same baseline seeds; n_values 0: one dropback arm, the
     * cfg as it is. */
    const char *sweep_key;
    const char *sweep_values[COMPARE_MAX_VALUES];
    int n_values;
} compare_options;

/* 0, or -1 with the error recorded (an arm that failed names its output file). */
int cdb_run_compare(const compare_options *o);

#endif
