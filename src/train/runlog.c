#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "dropback_report.h"
#include "schedule.h"

#define COLUMNS                                                                                                  \
    "step,epoch,images_seen,train_loss,valid_loss,top1,top5,learning_rate,dropback_layer_rate,selected_per_step," \
    "dropped_fraction,wall_seconds,images_per_second"

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

int cdb_run_log_open(run_log *log, const cdb_trainer *tr, const char *path, const char *arm,
                 const char *const *overrides, int n_overrides, const char *const *class_names, int append)
{
    const cdb_network *net = tr->net;
    memset(log, 0, sizeof(*log));
    snprintf(log->path, sizeof(log->path), "%s", path);
    FILE *existing = append ? fopen(path, "r") : NULL;
    int had_rows = existing != NULL;
    /* a log continued keeps its columns: grad_norm when its header has it */
    log->grad_norm_column = !had_rows && tr->cfg.clip_grad_norm > 0;
    log->f1_column = !had_rows;
    log->ema_column = !had_rows && tr->cfg.ema;
    if (existing) {
        char line[1024];
        while (fgets(line, sizeof(line), existing))
            if (!strncmp(line, "step,", 5)) {
                log->grad_norm_column = strstr(line, ",grad_norm") != NULL;
                log->f1_column = strstr(line, ",macro_f1") != NULL;
                log->ema_column = strstr(line, ",ema_top1") != NULL;
            }
        fclose(existing);
    }
    log->f = fopen(path, append ? "a" : "w");
    if (!log->f) {
        cdb_set_error("cannot write the training log '%s': %s", path, strerror(errno));
        return -1;
    }
    if (!had_rows) {
        fprintf(log->f, "# cdbnet training log\n# cfg: %s\n# seed: %llu\n# arm: %s\n", net->cfg_path,
                (unsigned long long)net->seed, arm);
        for (int i = 0; i < n_overrides; i++) fprintf(log->f, "# set: %s\n", overrides[i]);
        for (int k = 0; class_names && k < net->classes; k++) fprintf(log->f, "# class %d: %s\n", k, class_names[k]);
        fprintf(log->f, "%s,macro_f1%s%s\n", COLUMNS, log->grad_norm_column ? ",grad_norm" : "",
                log->ema_column ? ",ema_top1" : "");
    } else {
        fprintf(log->f, "# resumed at step %d\n", tr->step);
    }
    if (fflush(log->f)) {
        cdb_set_error("cannot write the training log '%s': %s", path, strerror(errno));
        fclose(log->f);
        log->f = NULL;
        return -1;
    }
    log->t_start = log->t_row = cdb_now_seconds();
    log->step_row = log->first_step = tr->step;
    log->prev = tr->dropback_stats;
    /* the chart beside the log: NAME.csv -> NAME.png, NAME.gp */
    snprintf(log->stem, sizeof(log->stem), "%s", path);
    char *dot = strrchr(log->stem, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    snprintf(log->script, sizeof(log->script), "%s.gp", log->stem);
    snprintf(log->chart, sizeof(log->chart), "%s.png", log->stem);
    if (cdb_gnuplot_available()) {
        log->chart_on = write_script(log, net->cfg_path) == 0;
        if (!log->chart_on)
            fprintf(stderr, "warning: cannot write the chart's script '%s' (%s): no chart this run; the log is kept\n",
                    log->script, strerror(errno));
    } else {
        cdb_gnuplot_missing(log->chart);
    }
    return 0;
}

void cdb_run_log_step(run_log *log, const cdb_trainer *tr, float loss)
{
    if (!log->f) return;
    if (isfinite(loss)) {
        log->loss_sum += loss;
        log->loss_steps++;
    }
    cdb_dropback_stats_accumulate(&log->interval, &log->prev, &tr->dropback_stats);
    if (isfinite(loss) && tr->cfg.clip_grad_norm > 0) {
        log->norm_sum += tr->grad_norm;
        log->norm_steps++;
    }
}

int cdb_run_log_row(run_log *log, const cdb_trainer *tr, const valid_result *v, double macro_f1, double ema_top1,
                    double epoch)
{
    const cdb_network *net = tr->net;
    if (!log->f) return 0;
    double now = cdb_now_seconds();
    int steps = tr->step - log->step_row;
    const dropback_stats *d = &log->interval;
    int last = tr->step > 0 ? tr->step - 1 : 0;
    fprintf(log->f, "%d,%.4f,%llu,%.6g,%.6g,%.6f,%.6f,%.6g,%.6g,%.4f,%.4f,%.2f,%.1f", tr->step,
            epoch,
            (unsigned long long)tr->seen, log->loss_steps ? log->loss_sum / log->loss_steps : NAN, v->loss, v->top1,
            v->top5, cdb_schedule_learning_rate(&tr->cfg, last), cdb_dropback_layer_rate(&net->dropback, last,
                                                                                     tr->cfg.max_batches),
            cdb_dropback_selected_per_step(d), cdb_dropback_dropped_fraction(d),
            now - log->t_start, steps > 0 && now > log->t_row ? steps * (double)net->batch / (now - log->t_row) : 0.0);
    if (log->f1_column) fprintf(log->f, ",%.6f", macro_f1);
    /* the mean pre-clipping norm of the steps since the last row (0 when none counted) */
    if (log->grad_norm_column) fprintf(log->f, ",%.6g", log->norm_steps ? log->norm_sum / log->norm_steps : 0.0);
    /* the moving average's top-1 (0 in a log begun with ema=1 and continued without) */
    if (log->ema_column) fprintf(log->f, ",%.6f", isfinite(ema_top1) ? ema_top1 : 0.0);
    fprintf(log->f, "\n");
    if (fflush(log->f) || ferror(log->f)) {
        cdb_set_error("cannot write the training log '%s': %s", log->path, strerror(errno));
        return -1;
    }
    log->t_row = now;
    log->step_row = tr->step;
    log->loss_sum = 0;
    log->loss_steps = 0;
    log->norm_sum = 0;
    log->norm_steps = 0;
    memset(&log->interval, 0, sizeof(log->interval));
    if (log->chart_on) {
        if (cdb_gnuplot_draw(log->script)) {
            printf("chart: gnuplot could not draw %s (the log is kept); no more charts this run\n", log->chart);
            log->chart_on = 0;
        }
    }
    /* the side files inform, the rows and the checkpoints are the run:
     * one that cannot be written is warned of once and left off */
    if (!log->dropback_report_off && cdb_dropback_report_files(tr, log->stem, log->first_step, log->chart_on)) {
        fprintf(stderr, "warning: %s: the dropback report beside the log (%s_dropback.csv, %s_channels.csv, the heat "
                        "map) is not written for the rest of this run, which goes on\n",
                cdb_last_error(), log->stem, log->stem);
        log->dropback_report_off = 1;
    }
    return 0;
}


void cdb_run_log_close(run_log *log)
{
    if (log->f) fclose(log->f);
    log->f = NULL;
}
