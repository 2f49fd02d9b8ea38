/* Where ChannelDropBack acted, as a run reports it: the configuration line,
 * the progress line's part, the end-of-epoch line, the log's columns, and
 * the per-tensor CSV files and heat map (docs/commands.md, "Where dropback
 * acted"). The numbers come from the verbs of dropback.h. */
#include "dropback_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "utils.h"

/* Where the files go: STEM_*.csv, STEM_dropback.png; the steps before
 * first_step were another process's. */
typedef struct {
    const char *stem;
    int first_step, chart_on;
    int step;                  /* the trainer's steps done */
} report_where;

void cdb_dropback_print_config(const cdb_trainer *tr, const char *off_reason, FILE *out)
{
    const cdb_network *net = tr->net;
    const dropback_config *db = &net->dropback;
    int tensors = 0;
    for (int i = 0; i < net->nparams; i++) tensors += cdb_dropback_takes_part(net->params[i]);
    fprintf(out, "dropback: %s; layer rate %.3g -> %.3g -> %.3g at %.0f%%/%.0f%% of %d steps, channel rate %.3g, "
                 "skip %d, %d tensors take part, policy %s, mode %s, axis %s\n",
            db->enabled && net->nparams ? "on" : off_reason, db->layer_rate_init, db->layer_rate / 2, db->layer_rate,
            100 * db->milestones[0], 100 * db->milestones[1], tr->cfg.max_batches, db->channel_rate, db->skip,
            tensors, db->policy == DROPBACK_POLICY_SINGLE ? "single" : "bernoulli",
            db->mode == DROPBACK_MODE_STRICT ? "strict" : "grad", db->axis == DROPBACK_AXIS_OUT ? "out" : "in");
}

double cdb_dropback_selected_per_step(const dropback_stats *s) { return s->steps ? (double)s->selected / s->steps : 0.0; }

double cdb_dropback_dropped_fraction(const dropback_stats *s)
{
    return s->selected ? s->dropped_fraction / s->selected : 0.0;
}

void cdb_dropback_progress_text(const dropback_stats *s, char *buf, size_t n)
{
    snprintf(buf, n, "dropback sel %.2f drop %.2f", cdb_dropback_selected_per_step(s), cdb_dropback_dropped_fraction(s));
}

void cdb_dropback_report_epoch(cdb_trainer *tr, int epoch)
{
    const cdb_network *net = tr->net;
    dropback_stats *s = &tr->dropback_stats;
    if (s->steps == 0) return;
    float r = cdb_dropback_layer_rate(&net->dropback, tr->step - 1, tr->cfg.max_batches);
    printf("dropback epoch %d: %.3f tensors selected per step (expected %.3f), mean dropped fraction %.3f over %ld "
           "selections (channel rate %.2f); layer rate now %.3f\n",
           epoch, (double)s->selected / s->steps, s->expected_selected / s->steps,
           s->selected ? s->dropped_fraction / s->selected : 0.0, s->selected, net->dropback.channel_rate, r);
    memset(s, 0, sizeof(*s));
}

void cdb_dropback_stats_accumulate(dropback_stats *interval, dropback_stats *prev, const dropback_stats *now)
{
    /* the network's counters are reset at each epoch's report: add what
     * was drawn since the last call */
    dropback_stats d = *now;
    if (now->steps >= prev->steps) {
        d.steps -= prev->steps;
        d.selected -= prev->selected;
        d.dropped_fraction -= prev->dropped_fraction;
        d.expected_selected -= prev->expected_selected;
    }
    interval->steps += d.steps;
    interval->selected += d.selected;
    interval->dropped_fraction += d.dropped_fraction;
    interval->expected_selected += d.expected_selected;
    *prev = *now;
}

/* The channel bins of the heat map: each tensor's channels spread over
 * HEAT_BINS columns, so that tensors of any width share one picture. */
#define HEAT_BINS 32
static double channel_drop_rate(const dropback_tensor_stats *st, int c)
{
    return st->draws ? (double)st->drop_count[c] / (double)st->draws : 0.0;
}

static int write_dropback_csvs(const report_where *log, const cdb_network *net)
{
    char path[4200], tmp[4210];
    snprintf(path, sizeof(path), "%s_dropback.csv", log->stem);
    FILE *f = cdb_temp_open(path, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "# cdbnet: where ChannelDropBack acted, over the %d steps this process trained (up to step %d)\n",
            log->step - log->first_step, log->step);
    fprintf(f, "layer,type,tensor,mask_channels,takes_part,channel_rate,draws,selected,selected_fraction,"
               "mean_kept_fraction,channel_dropped_min,channel_dropped_mean,channel_dropped_max\n");
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cdb_param *p = &l->params[k];
            dropback_tensor_stats st;
            if (!p->eligible || !cdb_dropback_tensor_stats(p, &st)) continue;
            double lo = 1, hi = 0, sum = 0;
            for (int c = 0; c < st.mask_channels; c++) {
                double v = channel_drop_rate(&st, c);
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                sum += v;
            }
            if (!st.mask_channels) lo = 0;
            fprintf(f, "%d,%s,%s,%d,%d,%.4g,%ld,%ld,%.6f,%.6f,%.6f,%.6f,%.6f\n", i, l->ops->name, p->name,
                    st.mask_channels, st.takes_part, st.channel_rate, st.draws, st.selected,
                    st.draws ? (double)st.selected / st.draws : 0.0, st.selected ? st.kept_sum / st.selected : 1.0,
                    lo, st.mask_channels ? sum / st.mask_channels : 0.0, hi);
        }
    }
    if (cdb_temp_commit(f, tmp, path)) return -1;
    snprintf(path, sizeof(path), "%s_channels.csv", log->stem);
    f = cdb_temp_open(path, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "layer,tensor,channel,dropped,dropped_fraction\n");
    for (int i = 0; i < net->n; i++) {
        const cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) {
            const cdb_param *p = &l->params[k];
            dropback_tensor_stats st;
            if (!cdb_dropback_tensor_stats(p, &st) || !st.takes_part) continue;
            for (int c = 0; c < st.mask_channels; c++)
                fprintf(f, "%d,%s,%d,%u,%.6f\n", i, p->name, c, st.drop_count[c], channel_drop_rate(&st, c));
        }
    }
    return cdb_temp_commit(f, tmp, path);
}

/* The heat map: one row per tensor that takes part, HEAT_BINS columns,
 * each the mean over its channels of the fraction of steps that dropped
 * the channel (a tensor narrower than the bins repeats its channels). */
static int draw_heat_map(const report_where *log, const cdb_network *net)
{
    char data[4200], script[4200], png[4200], tmp[4210];
    snprintf(data, sizeof(data), "%s_dropback_heat.dat", log->stem);
    snprintf(script, sizeof(script), "%s_dropback.gp", log->stem);
    snprintf(png, sizeof(png), "%s_dropback.png", log->stem);
    FILE *f = cdb_temp_open(data, tmp, sizeof(tmp));
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
            dropback_tensor_stats st;
            if (!cdb_dropback_tensor_stats(p, &st) || !st.takes_part || st.mask_channels <= 0) continue;
            for (int b = 0; b < HEAT_BINS; b++) {
                int c0 = (int)((long)b * st.mask_channels / HEAT_BINS);
                int c1 = (int)((long)(b + 1) * st.mask_channels / HEAT_BINS);
                if (c1 <= c0) c1 = c0 + 1;
                double sum = 0;
                for (int c = c0; c < c1; c++) sum += channel_drop_rate(&st, c);
                fprintf(f, "%d %d %.6f\n", b, rows, sum / (c1 - c0));
            }
            fprintf(f, "\n");
            if (used < labels_size)
                used += (size_t)snprintf(labels + used, labels_size - used, "%s\"layer %d %.16s %.10s\" %d", rows ? ", " : "",
                                     i, l->ops->name, p->name, rows);
            rows++;
        }
    }
    int status = cdb_temp_commit(f, tmp, data);
    if (status || rows == 0 || !log->chart_on) {
        free(labels);
        return status;
    }
    f = cdb_temp_open(script, tmp, sizeof(tmp));
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
            data, 240 + 24 * rows, png, net->cfg_path, log->step - log->first_step, HEAT_BINS, labels, rows - 1,
            HEAT_BINS - 1, data);
    free(labels);
    if (cdb_temp_commit(f, tmp, script)) return -1;
    if (cdb_gnuplot_draw(script)) printf("chart: gnuplot could not draw %s\n", png);
    return 0;
}

int cdb_dropback_report_files(const cdb_trainer *tr, const char *stem, int first_step, int chart_on)
{
    const cdb_network *net = tr->net;
    int any = 0;
    for (int i = 0; i < net->nparams; i++) {
        dropback_tensor_stats st;
        any |= cdb_dropback_tensor_stats(net->params[i], &st) && st.takes_part;
    }
    if (!any) return 0;
    report_where where = {stem, first_step, chart_on, tr->step};
    if (write_dropback_csvs(&where, net) || draw_heat_map(&where, net)) return -1;
    return 0;
}
