/* Charts drawn by gnuplot (chart.h): the training log's, the dropback heat
 * map, compare's. */
#include "chart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

/* CDBNET_GNUPLOT: the gnuplot program (default: gnuplot on PATH), or none
 * for no charts. */
static const char *gnuplot_program(void)
{
    const char *g = getenv("CDBNET_GNUPLOT");
    return g && *g ? g : "gnuplot";
}

int cdb_gnuplot_available(void)
{
    static int known = -1;
    if (known < 0) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "command -v '%s' > /dev/null 2>&1", gnuplot_program());
        known = strcmp(gnuplot_program(), "none") != 0 && system(cmd) == 0;
    }
    return known;
}

void cdb_gnuplot_missing(const char *what)
{
    if (!strcmp(gnuplot_program(), "none"))
        printf("chart: charts are off (CDBNET_GNUPLOT=none), so there is no %s\n", what);
    else
        printf("chart: gnuplot is not installed, so there is no %s (apt-get install gnuplot-nox, or "
               "scripts/install_deps.sh); the logs are written all the same\n",
               what);
}

int cdb_gnuplot_draw(const char *script)
{
    char cmd[8600];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' > /dev/null 2>&1", gnuplot_program(), script);
    return system(cmd) == 0 ? 0 : -1;
}

/* The chart's script: train and valid loss, and valid top-1, against steps. */
