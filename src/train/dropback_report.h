/* Where ChannelDropBack acted, as a run reports it (dropback_report.c):
 * every line and file of the reporting in one place. */
#ifndef CDB_DROPBACK_REPORT_H
#define CDB_DROPBACK_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "network.h"
#include "trainer.h"

/* The configuration line of `cdbnet train`; off_reason when it is off. */
void cdb_dropback_print_config(const cdb_trainer *tr, const char *off_reason, FILE *out);
/* Tensors selected per step, and the mean dropped fraction of a
 * selection, over the steps `s` counted. */
double cdb_dropback_selected_per_step(const dropback_stats *s);
double cdb_dropback_dropped_fraction(const dropback_stats *s);
/* The progress line's part: "dropback sel 0.08 drop 0.29". */
void cdb_dropback_progress_text(const dropback_stats *s, char *buf, size_t n);
/* The end of an epoch: its line, then the network's counters start over. */
void cdb_dropback_report_epoch(cdb_trainer *tr, int epoch);
/* Add to `interval` what the network's counters (`now`) drew since `prev`
 * (the counters at the last call, updated), across their resets. */
void cdb_dropback_stats_accumulate(dropback_stats *interval, dropback_stats *prev, const dropback_stats *now);
/* When some tensor takes part: STEM_dropback.csv (one row per eligible
 * tensor), STEM_channels.csv (one row per channel) and, with chart_on,
 * the heat map STEM_dropback.png (tensors by channel bins), over the steps
 * since first_step. Each file is replaced whole (a killed run keeps the
 * last complete one). 0, or -1 with the error recorded. */
int cdb_dropback_report_files(const cdb_trainer *tr, const char *stem, int first_step, int chart_on);

#endif
