/* Charts: gnuplot runs the scripts the logs, the dropback report and
 * compare write beside their data (docs/commands.md). */
#ifndef CDB_CHART_H
#define CDB_CHART_H

/* gnuplot found (asked once per process): the charts are drawn. The
 * program is CDBNET_GNUPLOT when set (none: no charts), else gnuplot on
 * PATH. */
int cdb_gnuplot_available(void);
/* The line a run prints once when there are no charts: what is missing. */
void cdb_gnuplot_missing(const char *what);
/* Run gnuplot on a script: 0, or -1 when it failed. */
int cdb_gnuplot_draw(const char *script);

#endif
