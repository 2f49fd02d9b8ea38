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

int cdb_run_log_open(run_log *log, const cdb_network *net, const char *path, const char *arm,
                 const char *const *overrides, int n_overrides, const char *const *class_names, int append)
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
        for (int k = 0; class_names && k < net->classes; k++) fprintf(log->f, "# class %d: %s\n", k, class_names[k]);
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
    log->t_start = log->t_row = cdb_now_seconds();
    log->step_row = log->first_step = net->step;
    log->prev = net->dropback_stats;
    /* the chart beside the log: NAME.csv -> NAME.png, NAME.gp */
    snprintf(log->stem, sizeof(log->stem), "%s", path);
    char *dot = strrchr(log->stem, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    snprintf(log->script, sizeof(log->script), "%s.gp", log->stem);
    snprintf(log->chart, sizeof(log->chart), "%s.png", log->stem);
    if (cdb_gnuplot_available()) {
        log->chart_on = write_script(log, net->cfg_path) == 0;
    } else {
        cdb_gnuplot_missing(log->chart);
    }
    return 0;
}

void cdb_run_log_step(run_log *log, const cdb_network *net, float loss)
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

int cdb_run_log_row(run_log *log, const cdb_network *net, const valid_result *v, double epoch)
{
    if (!log->f) return 0;
    double now = cdb_now_seconds();
    int steps = net->step - log->step_row;
    const dropback_stats *d = &log->interval;
    int last = net->step > 0 ? net->step - 1 : 0;
    fprintf(log->f, "%d,%.4f,%llu,%.6g,%.6g,%.6f,%.6f,%.6g,%.6g,%.4f,%.4f,%.2f,%.1f\n", net->step,
            epoch,
            (unsigned long long)net->seen, log->loss_steps ? log->loss_sum / log->loss_steps : NAN, v->loss, v->top1,
            v->top5, cdb_schedule_learning_rate(&net->train, last), cdb_dropback_layer_rate(&net->dropback, last,
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
        if (cdb_gnuplot_draw(log->script)) {
            printf("chart: gnuplot could not draw %s (the log is kept); no more charts this run\n", log->chart);
            log->chart_on = 0;
        }
    }
    return cdb_run_log_dropback(log, net);
}

/* The channel bins of the heat map: each tensor's channels spread over
 * HEAT_BINS columns, so that tensors of any width share one picture. */
#define HEAT_BINS 32

static FILE *open_temp(const char *path, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) cdb_set_error("cannot write '%s': %s", tmp, strerror(errno));
    return f;
}

/* Close f and move tmp over path: 0, or -1 with the error recorded. */
static int close_temp(FILE *f, const char *tmp, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, path)) {
        cdb_set_error("cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static double channel_drop_rate(const cdb_param *p, int c)
{
    return p->draws ? (double)p->drop_count[c] / (double)p->draws : 0.0;
}

static int write_dropback_csvs(const run_log *log, const cdb_network *net)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s_dropback.csv", log->stem);
    FILE *f = open_temp(path, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "# cdbnet: where ChannelDropBack acted, over the %d steps this process trained (up to step %d)\n",
            net->step - log->first_step, net->step);
    fprintf(f, "layer,type,tensor,mask_channels,takes_part,channel_rate,draws,selected,selected_fraction,"
               "mean_kept_fraction,channel_dropped_min,channel_dropped_mean,channel_dropped_max\n");
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cdb_param *p = &l->params[k];
            if (!p->eligible || !p->drop_count) continue;
            double lo = 1, hi = 0, sum = 0;
            for (int c = 0; c < p->mask_channels; c++) {
                double v = channel_drop_rate(p, c);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                sum += v;
            }
            if (!p->mask_channels) lo = 0;
            fprintf(f, "%d,%s,%s,%d,%d,%.4g,%ld,%ld,%.6f,%.6f,%.6f,%.6f,%.6f\n", i, l->ops->name, p->name,
                    p->mask_channels, p->dropback, p->channel_rate, p->draws, p->times_selected,
                    p->draws ? (double)p->times_selected / p->draws : 0.0,
                    p->times_selected ? p->kept_sum / p->times_selected : 1.0, lo,
                    p->mask_channels ? sum / p->mask_channels : 0.0, hi);
        }
    }
    if (close_temp(f, tmp, path)) return -1;
    snprintf(path, sizeof(path), "%s_channels.csv", log->stem);
    f = open_temp(path, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "layer,tensor,channel,dropped,dropped_fraction\n");
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cdb_param *p = &l->params[k];
            if (!p->dropback || !p->drop_count) continue;
            for (int c = 0; c < p->mask_channels; c++)
                fprintf(f, "%d,%s,%d,%u,%.6f\n", i, p->name, c, p->drop_count[c], channel_drop_rate(p, c));
        }
    }
    return close_temp(f, tmp, path);
}

/* The heat map: one row per tensor that takes part, HEAT_BINS columns,
 * each the mean over its channels of the fraction of steps that dropped
 * the channel (a tensor narrower than the bins repeats its channels). */
static int draw_heat_map(const run_log *log, const cdb_network *net)
{
    char data[4200], script[4200], png[4200], tmp[4210];
    snprintf(data, sizeof(data), "%s_dropback_heat.dat", log->stem);
    snprintf(script, sizeof(script), "%s_dropback.gp", log->stem);
    snprintf(png, sizeof(png), "%s_dropback.png", log->stem);
    FILE *f = open_temp(data, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "# bin (0..%d), row, fraction of steps that dropped the channels of the bin\n", HEAT_BINS - 1);
    int rows = 0;
    size_t labels_size = 64;
    for (int i = 0; i < net->n; i++) labels_size += (size_t)net->layers[i].nparams * 80;
    char *labels = cdb_xcalloc(labels_size, 1);
    if (!labels) {
        fclose(f);
        remove(tmp);
        return -1;
    }
    size_t used = 0;
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cdb_param *p = &l->params[k];
            if (!p->dropback || !p->drop_count || p->mask_channels <= 0) continue;
            for (int b = 0; b < HEAT_BINS; b++) {
                int c0 = (int)((long)b * p->mask_channels / HEAT_BINS);
                int c1 = (int)((long)(b + 1) * p->mask_channels / HEAT_BINS);
                if (c1 <= c0) c1 = c0 + 1;
                double sum = 0;
                for (int c = c0; c < c1; c++) sum += channel_drop_rate(p, c);
                fprintf(f, "%d %d %.6f\n", b, rows, sum / (c1 - c0));
            }
            fprintf(f, "\n");
            if (used < labels_size)
                used += (size_t)snprintf(labels + used, labels_size - used, "%s\"layer %d %.16s %.10s\" %d", rows ? ", " : "",
                                     i, l->ops->name, p->name, rows);
            rows++;
        }
    }
    int status = close_temp(f, tmp, data);
    if (status || rows == 0 || !log->chart_on) {
        free(labels);
        return status;
    }
    f = open_temp(script, tmp, sizeof(tmp));
    if (!f) {
        free(labels);
        return -1;
    }
    fprintf(f,
            "# drawn by cdbnet train from %s at each validation\n"
            "set terminal pngcairo size 960,%d noenhanced\n"
            "set output '%s'\n"
            "set title \"ChannelDropBack: fraction of steps that dropped each channel\\n%s, %d steps\"\n"
            "set xlabel 'channel bin (each tensor''s channels in %d equal bins)'\n"
            "set ylabel 'layer, type, tensor'\n"
            "set ytics (%s)\n"
            "set yrange [%d.5:-0.5]\n"
            "set xrange [-0.5:%d.5]\n"
            "set cblabel 'dropped fraction of steps'\n"
            "set cbrange [0:*]\n"
            "set palette defined (0 'white', 1 '#fdd49e', 2 '#fc8d59', 3 '#b30000')\n"
            "plot '%s' using 1:2:3 with image notitle\n",
            data, 240 + 24 * rows, png, net->cfg_path, net->step - log->first_step, HEAT_BINS, labels, rows - 1,
            HEAT_BINS - 1, data);
    free(labels);
    if (close_temp(f, tmp, script)) return -1;
    if (cdb_gnuplot_draw(script)) printf("chart: gnuplot could not draw %s\n", png);
    return 0;
}

int cdb_run_log_dropback(run_log *log, const cdb_network *net)
{
    int any = 0;
    for (int i = 0; i < net->nparams; i++) any |= net->params[i]->dropback && net->params[i]->drop_count;
    if (!any) return 0;
    if (write_dropback_csvs(log, net) || draw_heat_map(log, net)) return -1;
    return 0;
}

void cdb_run_log_close(run_log *log)
{
    if (log->f) fclose(log->f);
    log->f = NULL;
}
