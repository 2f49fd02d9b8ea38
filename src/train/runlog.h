/* The training log: a CSV with one row per validation, flushed per row (a
 * killed run keeps its rows), and a chart of it drawn by gnuplot when it is
 * installed (docs/cfg.md, "Training logs"). */
#ifndef CDB_RUNLOG_H
#define CDB_RUNLOG_H

#include <stdio.h>

#include "network.h"
#include "trainer.h"
#include "metrics.h"

typedef struct {
    FILE *f;
    char path[4096], chart[4104], script[4108];
    char stem[4096];              /* the log's path without .csv: the other files are STEM_*.csv, STEM_*.png */
    int chart_on;                 /* gnuplot found: the chart is redrawn at each row */
    double t_start, t_row;        /* wall clock at the start and at the last row */
    int step_row;                 /* step of the last row */
    int first_step;               /* the step this process started at */
    double loss_sum;              /* training losses since the last row */
    int loss_steps;
    int f1_column;                /* the log has the column macro_f1 (its header: logs begun before it had not) */
    int grad_norm_column;         /* the log has the column grad_norm (clip_grad_norm > 0 when it was begun) */
    int ema_column;               /* the log has the column ema_top1 (ema=1 when it was begun) */
    double norm_sum;              /* pre-clipping gradient norms since the last row */
    int norm_steps;
    dropback_stats prev, interval; /* the network's counters at the last step; their sum since the last row */
    int dropback_report_off;      /* a file of the dropback report could not be written: no more this run */
} run_log;

/* Opens (append: adds to an existing log, as a resumed run does) and
 * writes the header: the cfg, seed, arm, -set overrides, the class of each
 * label of a folder dataset (class_names, or NULL) and the columns.
 * 0, or -1 with the error recorded. */
int cdb_run_log_open(run_log *log, const cdb_trainer *tr, const char *path, const char *arm,
                 const char *const *overrides, int n_overrides, const char *const *class_names, int append);
/* After each step: its loss (NaN for a skipped step, not counted). */
void cdb_run_log_step(run_log *log, const cdb_trainer *tr, float loss);
/* One row for a validation; redraws the chart and rewrites the dropback
 * report (STEM_dropback.csv, STEM_channels.csv and the heat map
 * STEM_dropback.png). 0, or -1 when the row could not be written (a chart
 * or a report file that cannot be written is warned of once, then left
 * off). */
int cdb_run_log_row(run_log *log, const cdb_trainer *tr, const valid_result *v, double macro_f1, double ema_top1,
                    double epoch);
void cdb_run_log_close(run_log *log);
#endif
