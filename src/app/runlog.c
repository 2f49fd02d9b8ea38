#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dropback.h"
#include "schedule.h"

#define COLUMNS                                                                                                  \
    "step,epoch,images_seen,train_loss,valid_loss,top1,top5,learning_rate,dropback_layer_rate,selected_per_step," \
    "dropped_fraction,wall_seconds,images_per_second"

int gnuplot_available(void)
{
    static int known = -1;
    if (known < 0) known = system("command -v gnuplot > /dev/null 2>&1") == 0;
    return known;
}

/* The chart's script: train and valid loss, and valid top-1, against steps. */
static int write_script(run_log *log, const char *title)
{
    FILE *f = fopen(log->script, "w");
    if (!f) return -1;
    fprintf(f,
            "# drawn by cdbnet train from %s at each validation\n"
            "set terminal pngcairo size 900,640 noenhanced\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set datafile commentschars '#'\n"
            "set key autotitle columnhead\n"
            "set multiplot layout 2,1 title '%s'\n"
            "set xlabel 'step'\n"
            "set ylabel 'loss'\n"
            "set grid\n"
            "plot '%s' using 1:4 with linespoints title 'train loss (mean since the last row)', "
            "'' using 1:5 with linespoints title 'valid loss'\n"
            "set ylabel 'valid top-1 (%%)'\n"
            "plot '%s' using 1:($6*100) with linespoints title 'valid top-1'\n"
            "unset multiplot\n",
            log->path, log->chart, title, log->path, log->path);
    return fclose(f);
}

int run_log_open(run_log *log, const cdb_network *net, const char *path, const char *arm,
                 const char *const *overrides, int n_overrides, int append)
{
    memset(log, 0, sizeof(*log));
    snprintf(log->path, sizeof(log->path), "%s", path);
    FILE *existing = append ? fopen(path, "r") : NULL;
    int had_rows = existing != NULL;
    if (existing) fclose(existing);
    log->f = fopen(path, append ? "a" : "w");
    if (!log->f) {
        cdb_set_error("cannot write the training log '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!had_rows) {
        fprintf(log->f, "# cdbnet training log\n# cfg: %s\n# seed: %llu\n# arm: %s\n", net->cfg_path,
                (unsigned long long)net->seed, arm);
        for (int i = 0; i < n_overrides; i++) fprintf(log->f, "# set: %s\n", overrides[i]);
        fprintf(log->f, "%s\n", COLUMNS);
    } else {
        fprintf(log->f, "# resumed at step %d\n", net->step);
    }
    if (fflush(log->f)) {
        cdb_set_error("cannot write the training log '%s': %s", path, strerror(errno));
        fclose(log->f);
        log->f = NULL;
        return -1;
    }
    log->t_start = log->t_row = now_seconds();
    log->step_row = net->step;
    log->prev = net->dropback_stats;
    /* the chart beside the log: NAME.csv -> NAME.png, NAME.gp */
    snprintf(log->chart, sizeof(log->chart), "%s", path);
    char *dot = strrchr(log->chart, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    snprintf(log->script, sizeof(log->script), "%s.gp", log->chart);
    strncat(log->chart, ".png", sizeof(log->chart) - strlen(log->chart) - 1);
    if (gnuplot_available()) {
        log->chart_on = write_script(log, net->cfg_path) == 0;
    } else {
        printf("chart: gnuplot is not installed, so there is no %s (apt-get install gnuplot-nox, or "
               "scripts/install_deps.sh); the log is written all the same\n",
               log->chart);
    }
    return 0;
}

void run_log_step(run_log *log, const cdb_network *net, float loss)
{
    if (!log->f) return;
    if (isfinite(loss)) {
        log->loss_sum += loss;
        log->loss_steps++;
    }
    /* the network's counters are reset at each epoch's report: add what
     * this step drew */
    const dropback_stats *s = &net->dropback_stats;
    dropback_stats d = *s;
    if (s->steps >= log->prev.steps) {
        d.steps -= log->prev.steps;
        d.selected -= log->prev.selected;
        d.dropped_fraction -= log->prev.dropped_fraction;
        d.expected_selected -= log->prev.expected_selected;
    }
    log->interval.steps += d.steps;
    log->interval.selected += d.selected;
    log->interval.dropped_fraction += d.dropped_fraction;
    log->interval.expected_selected += d.expected_selected;
    log->prev = *s;
}

int run_log_row(run_log *log, const cdb_network *net, const valid_result *v, double epoch)
{
    if (!log->f) return 0;
    double now = now_seconds();
    int steps = net->step - log->step_row;
    const dropback_stats *d = &log->interval;
    int last = net->step > 0 ? net->step - 1 : 0;
    fprintf(log->f, "%d,%.4f,%llu,%.6g,%.6g,%.6f,%.6f,%.6g,%.6g,%.4f,%.4f,%.2f,%.1f\n", net->step,
            epoch,
            (unsigned long long)net->seen, log->loss_steps ? log->loss_sum / log->loss_steps : NAN, v->loss, v->top1,
            v->top5, schedule_learning_rate(&net->train, last), dropback_layer_rate(&net->dropback, last,
                                                                                     net->train.max_batches),
            d->steps ? (double)d->selected / d->steps : 0.0, d->selected ? d->dropped_fraction / d->selected : 0.0,
            now - log->t_start, steps > 0 && now > log->t_row ? steps * (double)net->batch / (now - log->t_row) : 0.0);
    if (fflush(log->f) || ferror(log->f)) {
        cdb_set_error("cannot write the training log '%s': %s", log->path, strerror(errno));
        return -1;
    }
    log->t_row = now;
    log->step_row = net->step;
    log->loss_sum = 0;
    log->loss_steps = 0;
    memset(&log->interval, 0, sizeof(log->interval));
    if (log->chart_on) {
        char cmd[8400];
        snprintf(cmd, sizeof(cmd), "gnuplot '%s' > /dev/null 2>&1", log->script);
        if (system(cmd) != 0) {
            printf("chart: gnuplot could not draw %s (the log is kept); no more charts this run\n", log->chart);
            log->chart_on = 0;
        }
    }
    return 0;
}

void run_log_close(run_log *log)
{
    if (log->f) fclose(log->f);
    log->f = NULL;
}
