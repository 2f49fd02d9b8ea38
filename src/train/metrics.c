/* Per-class metrics: the confusion matrix's report, CSV and heat map. */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "utils.h"

int cdb_predicted_class(const float *probs, int classes, int label)
{
    int best = -1;
    for (int k = 0; k < classes; k++) {
        if (!isfinite(probs[k])) return classes;
        /* strictly greater takes over; an equal one takes over the label */
        if (best < 0 || probs[k] > probs[best] || (probs[k] == probs[best] && best == label)) best = k;
    }
    return best;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* The width of a report's first column: the longest class name (at most 40), at least `least`. */
static int name_width(const char *const *names, int classes, int least)
{
    int width = least;
    for (int k = 0; names && k < classes; k++) {
        int len = (int)strlen(names[k]);
        width = len > width ? (len < 40 ? len : 40) : width;
    }
    return width;
}

/* class k's name for a CSV cell or a gnuplot label (quotes and commas out), or its number */
static void class_label(char *dst, size_t n, const char *const *names, int k)
{
    if (!names) {
        snprintf(dst, n, "%d", k);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; names[k][i] && j + 1 < n; i++)
        dst[j++] = names[k][i] == ',' || names[k][i] == '"' || names[k][i] == '\'' ? '_' : names[k][i];
    dst[j] = 0;
}

/* qsort on (score, index) pairs: the highest score first */
typedef struct {
    float score;
    int index;
} ranked;
static int by_score_desc(const void *a, const void *b)
{
    float x = ((const ranked *)a)->score, y = ((const ranked *)b)->score;
    if (x != y) return x > y ? -1 : 1;
    return ((const ranked *)a)->index - ((const ranked *)b)->index;
}

double cdb_average_precision(const float *scores, int n, int stride, const int *labels, int k)
{
    ranked *r = cdb_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(ranked));
    if (!r) return NAN;
    long positives = 0;
    for (int i = 0; i < n; i++) {
        float s = scores[(size_t)i * stride + k];
        r[i].score = isfinite(s) ? s : -INFINITY; /* a non-finite score ranks last */
        r[i].index = i;
        positives += labels[i] == k;
    }
    if (!positives) {
        free(r);
        return NAN;
    }
    qsort(r, (size_t)n, sizeof(ranked), by_score_desc);
    double ap = 0, last_recall = 0;
    long tp = 0, fp = 0;
    for (int i = 0; i < n; i++) {
        if (labels[r[i].index] == k)
            tp++;
        else
            fp++;
        if (i + 1 < n && r[i + 1].score == r[i].score) continue; /* one threshold per distinct score */
        double recall = (double)tp / positives, precision = (double)tp / (tp + fp);
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    free(r);
    return ap;
}

void cdb_print_ap_report(FILE *out, const float *scores, int n, int classes, const int *labels,
                         const char *const *names)
{
    int width = name_width(names, classes, 5);
    fprintf(out, "%-*s %9s %9s\n", width, "class", "AP", "images");
    double sum = 0;
    int counted = 0;
    for (int k = 0; k < classes; k++) {
        double ap = cdb_average_precision(scores, n, classes, labels, k);
        long support = 0;
        for (int i = 0; i < n; i++) support += labels[i] == k;
        char number[16];
        snprintf(number, sizeof(number), "%d", k);
        if (isnan(ap))
            fprintf(out, "%-*.*s %9s %9ld\n", width, width, names ? names[k] : number, "-", support);
        else
            fprintf(out, "%-*.*s %9.4f %9ld\n", width, width, names ? names[k] : number, ap, support);
        if (!isnan(ap)) {
            sum += ap;
            counted++;
        }
    }
    fprintf(out, "mAP %.4f over the %d classes with images\n", counted ? sum / counted : 0.0, counted);
}

void cdb_class_metrics(const long *confusion, int classes, class_metrics *per_class, class_metrics *macro,
                       class_metrics *weighted)
{
    int K = classes, present = 0;
    long total = 0;
    memset(macro, 0, sizeof(*macro));
    memset(weighted, 0, sizeof(*weighted));
    for (int k = 0; k < K; k++) {
        class_metrics m = {0, 0, 0, 0, 0};
        for (int j = 0; j <= K; j++) m.support += confusion[(size_t)k * (K + 1) + j];
        for (int i = 0; i < K; i++) m.predicted += confusion[(size_t)i * (K + 1) + k];
        long hits = confusion[(size_t)k * (K + 1) + k];
        m.precision = ratio((double)hits, (double)m.predicted);
        m.recall = ratio((double)hits, (double)m.support);
        m.f1 = ratio(2 * m.precision * m.recall, m.precision + m.recall);
        if (per_class) per_class[k] = m;
        if (m.support || m.predicted) {
            present++;
            macro->precision += m.precision;
            macro->recall += m.recall;
            macro->f1 += m.f1;
        }
        weighted->precision += m.precision * m.support;
        weighted->recall += m.recall * m.support;
        weighted->f1 += m.f1 * m.support;
        total += m.support;
        macro->support += m.support;
        macro->predicted += m.predicted;
    }
    macro->precision = ratio(macro->precision, present);
    macro->recall = ratio(macro->recall, present);
    macro->f1 = ratio(macro->f1, present);
    weighted->precision = ratio(weighted->precision, (double)total);
    weighted->recall = ratio(weighted->recall, (double)total);
    weighted->f1 = ratio(weighted->f1, (double)total);
    weighted->support = macro->support;
    weighted->predicted = macro->predicted;
}

void cdb_print_class_report(FILE *out, const long *confusion, int classes, const char *const *names)
{
    class_metrics *m = cdb_xcalloc((size_t)classes, sizeof(class_metrics)), macro, weighted;
    if (!m) return;
    cdb_class_metrics(confusion, classes, m, &macro, &weighted);
    int width = name_width(names, classes, 12); /* "weighted avg" */
    fprintf(out, "%-*s %9s %9s %9s %9s\n", width, "class", "precision", "recall", "f1", "support");
    for (int k = 0; k < classes; k++) {
        char number[16];
        snprintf(number, sizeof(number), "%d", k);
        fprintf(out, "%-*.*s %9.4f %9.4f %9.4f %9ld\n", width, width, names ? names[k] : number, m[k].precision,
                m[k].recall, m[k].f1, m[k].support);
    }
    fprintf(out, "%-*s %9.4f %9.4f %9.4f %9ld\n", width, "macro avg", macro.precision, macro.recall, macro.f1,
            macro.support);
    fprintf(out, "%-*s %9.4f %9.4f %9.4f %9ld\n", width, "weighted avg", weighted.precision, weighted.recall,
            weighted.f1, weighted.support);
    free(m);
}

int cdb_write_confusion(const char *stem, const long *confusion, int classes, const char *const *names,
                        const char *title)
{
    int K = classes;
    char path[4200], tmp[4210], name[128];
    snprintf(path, sizeof(path), "%s.csv", stem);
    FILE *f = cdb_temp_open(path, tmp, sizeof(tmp));
    if (!f) return -1;
    fprintf(f, "true/predicted");
    for (int k = 0; k < K; k++) {
        class_label(name, sizeof(name), names, k);
        fprintf(f, ",%s", name);
    }
    fprintf(f, ",not_finite\n");
    for (int i = 0; i < K; i++) {
        class_label(name, sizeof(name), names, i);
        fprintf(f, "%s", name);
        for (int j = 0; j <= K; j++) fprintf(f, ",%ld", confusion[(size_t)i * (K + 1) + j]);
        fprintf(f, "\n");
    }
    if (cdb_temp_commit(f, tmp, path)) return -1;
    if (!cdb_gnuplot_available()) return 0;
    /* the heat map: each row as fractions of its class's images */
    char data[4200], script[4200], png[4200];
    snprintf(data, sizeof(data), "%s_heat.dat", stem);
    snprintf(script, sizeof(script), "%s.gp", stem);
    snprintf(png, sizeof(png), "%s.png", stem);
    f = cdb_temp_open(data, tmp, sizeof(tmp));
    if (!f) return -1;
    for (int i = 0; i < K; i++) {
        long row = 0;
        for (int j = 0; j <= K; j++) row += confusion[(size_t)i * (K + 1) + j];
        for (int j = 0; j < K; j++)
            fprintf(f, "%d %d %.6f\n", j, i, row ? (double)confusion[(size_t)i * (K + 1) + j] / row : 0.0);
        fprintf(f, "\n");
    }
    if (cdb_temp_commit(f, tmp, data)) return -1;
    f = cdb_temp_open(script, tmp, sizeof(tmp));
    if (!f) return -1;
    int side = K <= 40 ? 300 + 18 * K : 900;
    fprintf(f, "set terminal pngcairo size %d,%d\nset output '%s'\nset title '%s'\nset xlabel 'predicted'\n"
               "set ylabel 'true'\nset yrange [%d.5:-0.5]\nset xrange [-0.5:%d.5]\nset cbrange [0:1]\n"
               "set cblabel 'fraction of the true class'\n"
               "set palette defined (0 'white', 1 '#fdd49e', 2 '#fc8d59', 3 '#b30000')\n",
            side + 100, side, png, title, K - 1, K - 1);
    if (K <= 40) {
        for (int axis = 0; axis < 2; axis++) {
            fprintf(f, axis ? "set ytics (" : "set xtics rotate by 60 right (");
            for (int k = 0; k < K; k++) {
                class_label(name, sizeof(name), names, k);
                fprintf(f, "%s'%s' %d", k ? ", " : "", name, k);
            }
            fprintf(f, ")\n");
        }
    }
    fprintf(f, "plot '%s' using 1:2:3 with image notitle\n", data);
    if (cdb_temp_commit(f, tmp, script)) return -1;
    if (cdb_gnuplot_draw(script)) printf("chart: gnuplot could not draw %s\n", png);
    return 0;
}
