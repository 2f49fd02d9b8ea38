#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chart.h"
#include "runlog.h"
#include "stats.h"
#include "train.h"
#include "utils.h"

#define MAX_ROWS 4096
#define MAX_ARMS (1 + COMPARE_MAX_VALUES)

/* What the report reads from one arm's CSV log. */
typedef struct {
    int rows;
    double epoch[MAX_ROWS], top1[MAX_ROWS];
    double final_top1, best_top1, seconds;
} arm_log;

/* Arm 0 is the baseline; arms 1..dropback_arms(o) the dropback arms, one
 * per value of a sweep. */
static int dropback_arms(const compare_options *o) { return o->n_values ? o->n_values : 1; }

/* The file name of an arm: baseline, dropback, or dropback_KEY=VALUE
 * (characters other than letters, digits and . _ = - become _). */
static void arm_name(char *buf, size_t n, const compare_options *o, int arm)
{
    if (arm == 0 || o->n_values == 0) {
        snprintf(buf, n, "%s", arm == 0 ? "baseline" : "dropback");
        return;
    }
    snprintf(buf, n, "dropback_%s=%s", o->sweep_key, o->sweep_values[arm - 1]);
    for (char *c = buf; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("._=-", *c)))
            *c = '_';
}

/* How the report names an arm: baseline, dropback, or KEY=VALUE. */
static void arm_label(char *buf, size_t n, const compare_options *o, int arm)
{
    if (arm == 0 || o->n_values == 0)
        snprintf(buf, n, "%s", arm == 0 ? "baseline" : "dropback");
    else
        snprintf(buf, n, "%s=%s", o->sweep_key, o->sweep_values[arm - 1]);
}

static void run_path(char *buf, size_t n, const compare_options *o, int seed, int arm, const char *ext)
{
    char name[512];
    arm_name(name, sizeof(name), o, arm);
    snprintf(buf, n, "%s/runs/seed%d_%s%s", o->dir, seed, name, ext);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Start one arm's `cdbnet train`, its output into runs/seedS_ARM.out. */
static pid_t start_arm(const compare_options *o, int seed, int arm)
{
    char weights[4800], log[4800], backup[4800], out[4800], seed_text[32], threads[32], sweep[1024];
    run_path(weights, sizeof(weights), o, seed, arm, ".weights");
    run_path(log, sizeof(log), o, seed, arm, ".csv");
    run_path(backup, sizeof(backup), o, seed, arm, "");
    run_path(out, sizeof(out), o, seed, arm, ".out");
    snprintf(seed_text, sizeof(seed_text), "%d", seed);
    snprintf(threads, sizeof(threads), "%d", o->threads);
    const char *argv[COMPARE_MAX_ARGS + 24];
    int n = 0;
    argv[n++] = o->self;
    argv[n++] = "train";
    argv[n++] = o->cfg;
    argv[n++] = "-quiet";
    argv[n++] = "-seed";
    argv[n++] = seed_text;
    argv[n++] = "-threads";
    argv[n++] = threads;
    argv[n++] = "-out";
    argv[n++] = weights;
    argv[n++] = "-log";
    argv[n++] = log;
    argv[n++] = "-backup";
    argv[n++] = backup;
    if (arm == 0) argv[n++] = "-nodropback";
    /* an arm that was interrupted (its compare killed, the machine
     * restarted) continues from its checkpoint, its log kept */
    char base[256], last[5100];
    cdb_cfg_basename(o->cfg, base, sizeof(base));
    snprintf(last, sizeof(last), "%s/%s_last.weights", backup, base);
    int resume = file_exists(last) && file_exists(log);
    if (resume) {
        argv[n++] = "-weights";
        argv[n++] = last;
    }
    for (int i = 0; i < o->n_train_args; i++) argv[n++] = o->train_args[i];
    if (arm > 0 && o->n_values) { /* last, so that it wins over a -set of the same key */
        snprintf(sweep, sizeof(sweep), "%s=%s", o->sweep_key, o->sweep_values[arm - 1]);
        argv[n++] = "-set";
        argv[n++] = sweep;
    }
    argv[n] = NULL;
    if (resume) {
        char label[512];
        arm_label(label, sizeof(label), o, arm);
        printf("  seed %d %s: continues from its checkpoint %s\n", seed, label, last);
    } else {
        remove(log); /* a fresh run: rows of an arm that never saved a checkpoint go */
    }
    fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* the arm ends with its compare, however that ends (kill -9
         * included): SIGTERM, on which it saves a checkpoint */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(o->self, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) cdb_set_error("cannot start an arm: %s", strerror(errno));
    return pid;
}

/* Train every arm that has not finished, o->jobs at a time. */
static int run_arms(const compare_options *o)
{
    int arms = 1 + dropback_arms(o);
    int (*todo)[2] = cdb_xcalloc((size_t)(arms * o->n_seeds), sizeof(*todo));
    pid_t *running = cdb_xcalloc((size_t)(arms * o->n_seeds), sizeof(pid_t));
    int *which = cdb_xcalloc((size_t)(arms * o->n_seeds), sizeof(int));
    if (!todo || !running || !which) {
        free(todo);
        free(running);
        free(which);
        return -1;
    }
    int n = 0, done = 0;
    for (int s = 0; s < o->n_seeds; s++)
        for (int arm = 0; arm < arms; arm++) {
            char w[4800], l[4800];
            run_path(w, sizeof(w), o, o->seeds[s], arm, ".weights");
            run_path(l, sizeof(l), o, o->seeds[s], arm, ".csv");
            if (file_exists(w) && file_exists(l)) {
                done++;
                continue;
            }
            todo[n][0] = o->seeds[s];
            todo[n][1] = arm;
            n++;
        }
    printf("compare %s: %d seeds x %d arms, %d already done, %d to train, %d at a time with %d thread%s each\n", o->cfg,
           o->n_seeds, arms, done, n, o->jobs, o->threads, o->threads == 1 ? "" : "s");
    fflush(stdout);
    int active = 0, next = 0, failed = -1, finished = 0, start_failed = 0;
    double t0 = cdb_now_seconds();
    while (next < n || active > 0) {
        while (failed < 0 && !start_failed && next < n && active < o->jobs) {
            pid_t pid = start_arm(o, todo[next][0], todo[next][1]);
            if (pid < 0) {
                start_failed = 1; /* the error is recorded; the running arms finish */
                break;
            }
            running[active] = pid;
            which[active] = next;
            active++;
            next++;
        }
        if (active == 0) break;
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) break;
        for (int i = 0; i < active; i++)
            if (running[i] == pid) {
                int k = which[i];
                running[i] = running[active - 1];
                which[i] = which[active - 1];
                active--;
                finished++;
                int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                char label[512];
                arm_label(label, sizeof(label), o, todo[k][1]);
                printf("  seed %d %s: %s (%d of %d, %.0fs)\n", todo[k][0], label, ok ? "done" : "FAILED", finished, n,
                       cdb_now_seconds() - t0);
                fflush(stdout);
                if (!ok && failed < 0) failed = k;
                break;
            }
    }
    int status = start_failed ? -1 : 0;
    if (failed >= 0) {
        char out[4800], label[512];
        run_path(out, sizeof(out), o, todo[failed][0], todo[failed][1], ".out");
        arm_label(label, sizeof(label), o, todo[failed][1]);
        cdb_set_error("the %s arm of seed %d failed: its output is in %s (rerun the same command to continue)", label,
                      todo[failed][0], out);
        status = -1;
    }
    free(todo);
    free(running);
    free(which);
    return status;
}

/* One row of a training log, checked: the `columns` columns of its header
 * (13, and macro_f1 and grad_norm in newer logs), each a finite number, top-1 and top-5
 * fractions in [0, 1], the wall time not negative, the line whole. NULL,
 * or what is wrong with it. */
#define LOG_MAX_COLUMNS 16
static const char *parse_row(char *line, double *v, int columns)
{
    size_t len = strlen(line);
    if (len == 0 || line[len - 1] != '\n') return "the row is cut short (no end of line)";
    line[len - 1] = 0;
    int n = 0;
    char *p = line;
    for (;;) {
        char *end;
        if (n == columns) return columns == 13 ? "more than 13 columns" : "more columns than its header";
        v[n] = strtod(p, &end);
        if (end == p || (*end != ',' && *end != 0)) return "a column is not a number";
        if (!isfinite(v[n])) return "a column is not finite";
        n++;
        if (*end == 0) break;
        p = end + 1;
    }
    if (n != columns)
        return columns == 13 ? "fewer than 13 columns (the row is cut short)" : "fewer columns than its header (the row is cut short)";
    if (v[5] < 0 || v[5] > 1 || v[6] < 0 || v[6] > 1) return "top-1 or top-5 is not a fraction in [0, 1]";
    if (v[11] < 0) return "the wall time is negative";
    return NULL;
}

/* An arm's log, every row checked (a corrupt one would enter the paired
 * tests as a wrong top-1): `arm` ("baseline" or "dropback"), when not NULL,
 * must be the arm its header names. 0, or -1 with the error naming the
 * file and line. */
static int read_log(const char *path, const char *arm, arm_log *a)
{
    memset(a, 0, sizeof(*a));
    FILE *f = fopen(path, "r");
    if (!f) {
        cdb_set_error("cannot read the log '%s': %s (has that arm run?)", path, strerror(errno));
        return -1;
    }
    char line[1024];
    a->best_top1 = -1;
    int number = 0, last_step = -1, columns = 13;
    const char *bad = NULL;
    while (!bad && fgets(line, sizeof(line), f)) {
        number++;
        if (line[0] == '#') {
            char named[64];
            if (arm && sscanf(line, "# arm: %63s", named) == 1 && strcmp(named, arm)) {
                cdb_set_error("%s:%d: the log's header names the %s arm, but this is the %s arm's log", path, number,
                              named, arm);
                fclose(f);
                return -1;
            }
            continue;
        }
        if (!strncmp(line, "step,", 5)) { /* the header of the columns: 13, 14 with macro_f1, 15 with grad_norm too */
            columns = 1;
            for (const char *c = line; *c; c++) columns += *c == ',';
            if (columns < 13 || columns > LOG_MAX_COLUMNS) {
                bad = "its header has another number of columns than a cdbnet log";
                break;
            }
            continue;
        }
        double v[LOG_MAX_COLUMNS];
        bad = parse_row(line, v, columns);
        if (!bad && (int)v[0] <= last_step) bad = "its step is not after the row before";
        if (bad) break;
        last_step = (int)v[0];
        if (a->rows < MAX_ROWS) {
            a->epoch[a->rows] = v[1];
            a->top1[a->rows] = v[5];
            a->rows++;
        }
        a->final_top1 = v[5];
        if (v[5] > a->best_top1) a->best_top1 = v[5];
        a->seconds = v[11];
    }
    fclose(f);
    if (bad) {
        cdb_set_error("%s:%d: %s: the report uses no run whose log is corrupt (rerun the arm: delete this log and run "
                      "the same compare)",
                      path, number, bad);
        return -1;
    }
    if (a->rows == 0) {
        cdb_set_error("the log '%s' has no rows (the arm did not finish: rerun to train it)", path);
        return -1;
    }
    return 0;
}

/* The runs of one report: logs[s * arms + a] for seed s, arm a. */
typedef struct {
    const compare_options *o;
    int arms;
    arm_log *logs;
} runs;

static const arm_log *run_of(const runs *r, int s, int a) { return &r->logs[(size_t)s * r->arms + a]; }

static FILE *open_in(const compare_options *o, const char *name, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", o->dir, name);
    return fopen(path, "w");
}

static void draw(const runs *r, const double *diff, const paired_test *tests)
{
    const compare_options *o = r->o;
    if (!cdb_gnuplot_available()) {
        char png[4200];
        snprintf(png, sizeof(png), "%s/compare.png", o->dir);
        cdb_gnuplot_missing(png);
        return;
    }
    char path[4200];
    FILE *f = open_in(o, "curves.dat", path, sizeof(path));
    if (!f) return;
    fprintf(f, "# epoch, then per arm (baseline, then the dropback arms) the mean, min and max valid top-1 over seeds\n");
    int rows = run_of(r, 0, 0)->rows;
    for (int s = 0; s < o->n_seeds; s++)
        for (int a = 0; a < r->arms; a++) rows = run_of(r, s, a)->rows < rows ? run_of(r, s, a)->rows : rows;
    for (int row = 0; row < rows; row++) {
        fprintf(f, "%g", run_of(r, 0, 0)->epoch[row]);
        for (int a = 0; a < r->arms; a++) {
            double sum = 0, lo = 1e9, hi = -1e9;
            for (int s = 0; s < o->n_seeds; s++) {
                double v = 100 * run_of(r, s, a)->top1[row];
                sum += v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            fprintf(f, " %g %g %g", sum / o->n_seeds, lo, hi);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    /* per dropback arm: its index, then each seed's paired difference; the
     * mean and its interval */
    f = open_in(o, "differences.dat", path, sizeof(path));
    if (!f) return;
    fprintf(f, "# seed, then per dropback arm its final top-1 minus the baseline's (points)\n");
    for (int s = 0; s < o->n_seeds; s++) {
        fprintf(f, "%d", o->seeds[s]);
        for (int v = 0; v < r->arms - 1; v++) fprintf(f, " %g", 100 * diff[(size_t)v * o->n_seeds + s]);
        fprintf(f, "\n");
    }
    fclose(f);
    f = open_in(o, "intervals.dat", path, sizeof(path));
    if (!f) return;
    fprintf(f, "# dropback arm, mean paired difference, 95%% interval low, high (points); the label\n");
    for (int v = 0; v < r->arms - 1; v++) {
        const paired_test *t = &tests[v];
        fprintf(f, "%d %g %g %g \"%s\"\n", v, 100 * t->mean, isnan(t->ci_low) ? 100 * t->mean : 100 * t->ci_low,
                isnan(t->ci_high) ? 100 * t->mean : 100 * t->ci_high, o->n_values ? o->sweep_values[v] : "dropback");
    }
    fclose(f);
    f = open_in(o, "compare.gp", path, sizeof(path));
    if (!f) return;
    fprintf(f,
            "set terminal pngcairo size 900,700 noenhanced\nset output '%s/compare.png'\n"
            "set multiplot layout 2,1 title '%s: %d seeds'\nset grid\nset xlabel 'epoch'\n"
            "set ylabel 'valid top-1 (%%)'\nset key bottom right\n",
            o->dir, o->cfg, o->n_seeds);
    fprintf(f, "plot '%s/curves.dat' using 1:3:4 with filledcurves fs transparent solid 0.2 lc 1 title 'baseline min-max', "
               "'' using 1:2 with linespoints lc 1 title 'baseline mean'",
            o->dir);
    for (int a = 1; a < r->arms; a++) {
        char label[512];
        arm_label(label, sizeof(label), o, a);
        if (o->n_values == 0)
            fprintf(f, ", '' using 1:%d:%d with filledcurves fs transparent solid 0.2 lc %d title '%s min-max'", 3 * a + 3,
                    3 * a + 4, a + 1, label);
        fprintf(f, ", '' using 1:%d with linespoints lc %d title '%s mean'", 3 * a + 2, a + 1, label);
    }
    fprintf(f, "\n");
    if (o->n_values == 0) {
        fprintf(f,
                "set xlabel 'seed'\nset ylabel 'final top-1, dropback - baseline (points)'\nset key top right\n"
                "set offsets 0.5, 0.5, 0.2, 0.2\nset xtics 1\n"
                "plot '%s/differences.dat' using 1:2 with impulses lw 3 title 'paired difference', 0 notitle lc 0\n",
                o->dir);
    } else {
        fprintf(f,
                "set xlabel '%s'\nset ylabel 'final top-1 minus baseline (points)'\nset key top right\n"
                "set offsets 0.5, 0.5, 0.2, 0.2\n"
                "plot '%s/intervals.dat' using 1:2:3:4:xtic(5) with yerrorbars lw 2 pt 7 lc 2 "
                "title 'mean paired difference, 95%% interval'",
                o->sweep_key, o->dir);
        for (int v = 0; v < r->arms - 1; v++)
            fprintf(f, ", '%s/differences.dat' using (%d):%d with points pt 6 lc 1 %s", o->dir, v, v + 2,
                    v == 0 ? "title 'one seed'" : "notitle");
        fprintf(f, ", 0 notitle lc 0\n");
    }
    fprintf(f, "unset multiplot\n");
    fclose(f);
    if (cdb_gnuplot_draw(path) == 0)
        printf("chart: %s/compare.png\n", o->dir);
    else
        printf("chart: gnuplot could not draw %s/compare.png\n", o->dir);
}

/* The table and tests of one dropback arm against the baseline. */
static void report_arm(FILE *f, const runs *r, int a, const double *diff, const paired_test *t, const paired_test *tb)
{
    const compare_options *o = r->o;
    char label[512];
    arm_label(label, sizeof(label), o, a);
    double top[2][COMPARE_MAX_SEEDS];
    for (int s = 0; s < o->n_seeds; s++) {
        top[0][s] = run_of(r, s, 0)->final_top1;
        top[1][s] = run_of(r, s, a)->final_top1;
    }
    if (o->n_values) fprintf(f, "## %s\n\n", label);
    fprintf(f, "| seed | baseline top-1 | %s top-1 | difference | best: baseline | best: %s | "
               "seconds: baseline | seconds: %s |\n|---|---|---|---|---|---|---|---|\n",
            label, label, label);
    for (int s = 0; s < o->n_seeds; s++)
        fprintf(f, "| %d | %.2f%% | %.2f%% | %+.2f | %.2f%% | %.2f%% | %.0f | %.0f |\n", o->seeds[s],
                100 * run_of(r, s, 0)->final_top1, 100 * run_of(r, s, a)->final_top1, 100 * diff[s],
                100 * run_of(r, s, 0)->best_top1, 100 * run_of(r, s, a)->best_top1, run_of(r, s, 0)->seconds,
                run_of(r, s, a)->seconds);
    fprintf(f, "\nbaseline: mean %.2f%%, sd %.2f; %s: mean %.2f%%, sd %.2f (final valid top-1)\n\n",
            100 * cdb_stats_mean(top[0], o->n_seeds), 100 * cdb_stats_sd(top[0], o->n_seeds), label,
            100 * cdb_stats_mean(top[1], o->n_seeds), 100 * cdb_stats_sd(top[1], o->n_seeds));
    fprintf(f, "| %s - baseline (points) | mean | 95%% CI (t) | paired t-test p | Wilcoxon signed-rank p |\n"
               "|---|---|---|---|---|\n",
            label);
    const paired_test *ts[2] = {t, tb};
    const char *what[2] = {"final top-1", "best top-1"};
    for (int i = 0; i < 2; i++) {
        char ci[64] = "n/a (one seed)", pt[32] = "n/a", pw[48];
        if (!isnan(ts[i]->ci_low)) snprintf(ci, sizeof(ci), "[%+.2f, %+.2f]", 100 * ts[i]->ci_low, 100 * ts[i]->ci_high);
        if (!isnan(ts[i]->p_t)) snprintf(pt, sizeof(pt), "%.3g", ts[i]->p_t);
        snprintf(pw, sizeof(pw), "%.3g%s", ts[i]->p_wilcoxon, ts[i]->wilcoxon_exact ? " (exact)" : " (normal approx.)");
        fprintf(f, "| %s | %+.2f | %s | %s | %s |\n", what[i], 100 * ts[i]->mean, ci, pt, pw);
    }
    int contains_zero = !isnan(t->ci_low) && t->ci_low <= 0 && t->ci_high >= 0;
    fprintf(f, "\n%s\n\n",
            o->n_seeds < 2 ? "One seed cannot separate the difference from seed noise: give -seeds 5 or more."
            : contains_zero ? "The 95% confidence interval of the final difference contains 0: at this budget the "
                              "difference is not distinguishable from seed noise."
                            : "The 95% confidence interval of the final difference excludes 0.");
}

static int report(const compare_options *o)
{
    runs r = {o, 1 + dropback_arms(o), NULL};
    int variants = r.arms - 1, status = -1;
    r.logs = cdb_xcalloc((size_t)o->n_seeds * r.arms, sizeof(arm_log));
    double *diff = cdb_xcalloc((size_t)variants * o->n_seeds, sizeof(double));
    double *best_diff = cdb_xcalloc((size_t)variants * o->n_seeds, sizeof(double));
    paired_test *t = cdb_xcalloc((size_t)variants, sizeof(paired_test)), *tb = cdb_xcalloc((size_t)variants, sizeof(paired_test));
    FILE *csv = NULL, *md = NULL;
    if (!r.logs || !diff || !best_diff || !t || !tb) goto done;
    for (int s = 0; s < o->n_seeds; s++)
        for (int a = 0; a < r.arms; a++) {
            char path[4800];
            run_path(path, sizeof(path), o, o->seeds[s], a, ".csv");
            /* a sweep's value may turn dropback off (its log then says baseline) */
            const char *arm = a == 0 ? "baseline" : (o->n_values ? NULL : "dropback");
            if (read_log(path, arm, &r.logs[(size_t)s * r.arms + a])) goto done;
        }
    for (int v = 0; v < variants; v++) {
        for (int s = 0; s < o->n_seeds; s++) {
            diff[(size_t)v * o->n_seeds + s] = run_of(&r, s, v + 1)->final_top1 - run_of(&r, s, 0)->final_top1;
            best_diff[(size_t)v * o->n_seeds + s] = run_of(&r, s, v + 1)->best_top1 - run_of(&r, s, 0)->best_top1;
        }
        t[v] = cdb_stats_paired(diff + (size_t)v * o->n_seeds, o->n_seeds);
        tb[v] = cdb_stats_paired(best_diff + (size_t)v * o->n_seeds, o->n_seeds);
    }
    char path[4200];
    csv = open_in(o, "summary.csv", path, sizeof(path));
    md = open_in(o, "summary.md", path, sizeof(path));
    if (!csv || !md) {
        cdb_set_error("cannot write the report in '%s': %s", o->dir, strerror(errno));
        goto done;
    }
    fprintf(csv, "seed,baseline_top1,dropback_top1,difference,baseline_best_top1,dropback_best_top1,best_difference,"
                 "baseline_seconds,dropback_seconds,arm\n");
    FILE *outs[2] = {md, stdout};
    for (int k = 0; k < 2; k++) {
        FILE *f = outs[k];
        fprintf(f, "# cdbnet compare: %s, %d seeds", o->cfg, o->n_seeds);
        if (o->n_values) fprintf(f, ", sweep of %s over %d values", o->sweep_key, o->n_values);
        fprintf(f, "\n\n");
        if (o->n_values) {
            fprintf(f, "| %s | mean final top-1 | minus baseline (points) | 95%% CI (t) | paired t-test p | "
                       "Wilcoxon p |\n|---|---|---|---|---|---|\n",
                    o->sweep_key);
            for (int v = 0; v < variants; v++) {
                double top[COMPARE_MAX_SEEDS];
                for (int s = 0; s < o->n_seeds; s++) top[s] = run_of(&r, s, v + 1)->final_top1;
                char ci[64] = "n/a", pt[32] = "n/a";
                if (!isnan(t[v].ci_low)) snprintf(ci, sizeof(ci), "[%+.2f, %+.2f]", 100 * t[v].ci_low, 100 * t[v].ci_high);
                if (!isnan(t[v].p_t)) snprintf(pt, sizeof(pt), "%.3g", t[v].p_t);
                fprintf(f, "| %s | %.2f%% | %+.2f | %s | %s | %.3g |\n", o->sweep_values[v],
                        100 * cdb_stats_mean(top, o->n_seeds), 100 * t[v].mean, ci, pt, t[v].p_wilcoxon);
            }
            double base[COMPARE_MAX_SEEDS];
            for (int s = 0; s < o->n_seeds; s++) base[s] = run_of(&r, s, 0)->final_top1;
            fprintf(f, "| baseline | %.2f%% | | | | |\n\n", 100 * cdb_stats_mean(base, o->n_seeds));
        }
        for (int v = 0; v < variants; v++) report_arm(f, &r, v + 1, diff + (size_t)v * o->n_seeds, &t[v], &tb[v]);
    }
    for (int v = 0; v < variants; v++) {
        char label[512];
        arm_label(label, sizeof(label), o, v + 1);
        for (int s = 0; s < o->n_seeds; s++) {
            const arm_log *b = run_of(&r, s, 0), *d = run_of(&r, s, v + 1);
            fprintf(csv, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f,%.1f,%s\n", o->seeds[s], b->final_top1, d->final_top1,
                    diff[(size_t)v * o->n_seeds + s], b->best_top1, d->best_top1,
                    best_diff[(size_t)v * o->n_seeds + s], b->seconds, d->seconds, label);
        }
    }
    printf("report: %s/summary.md, %s/summary.csv\n", o->dir, o->dir);
    draw(&r, diff, t);
    status = 0;
done:
    if (csv && fclose(csv) && !status) status = -1;
    if (md && fclose(md) && !status) status = -1;
    free(r.logs);
    free(diff);
    free(best_diff);
    free(t);
    free(tb);
    return status;
}

static int by_value(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* -report without seeds: those whose baseline log is in DIR/runs */
static int find_seeds(compare_options *o)
{
    char pattern[4200];
    snprintf(pattern, sizeof(pattern), "%s/runs/seed*_baseline.csv", o->dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        cdb_set_error("no finished runs in '%s/runs' (seedN_baseline.csv)", o->dir);
        return -1;
    }
    for (size_t i = 0; i < g.gl_pathc && o->n_seeds < COMPARE_MAX_SEEDS; i++) {
        const char *name = strrchr(g.gl_pathv[i], '/') + 1;
        int seed, end = 0;
        if (sscanf(name, "seed%d_baseline.csv%n", &seed, &end) == 1 && name[end] == 0) o->seeds[o->n_seeds++] = seed;
    }
    globfree(&g);
    qsort(o->seeds, (size_t)o->n_seeds, sizeof(int), by_value);
    return o->n_seeds ? 0 : -1;
}

/* DIR/sweep.txt: the sweep a run of compare trained (its key, then one
 * value per line), so that -report finds its arms. Removed for a run
 * without a sweep. */
static int save_sweep(const compare_options *o)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/sweep.txt", o->dir);
    if (o->n_values == 0) {
        remove(path);
        return 0;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        cdb_set_error("cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\n", o->sweep_key);
    for (int v = 0; v < o->n_values; v++) fprintf(f, "%s\n", o->sweep_values[v]);
    if (fclose(f)) {
        cdb_set_error("cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int load_sweep(compare_options *o, char (*text)[256])
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/sweep.txt", o->dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* no sweep */
    int n = 0;
    while (n <= COMPARE_MAX_VALUES && fgets(text[n], 256, f)) {
        text[n][strcspn(text[n], "\r\n")] = 0;
        if (text[n][0]) n++;
    }
    fclose(f);
    if (n < 2) {
        cdb_set_error("'%s' names no sweep (a key, then one value per line)", path);
        return -1;
    }
    o->sweep_key = text[0];
    o->n_values = n - 1;
    for (int v = 0; v < o->n_values; v++) o->sweep_values[v] = text[v + 1];
    return 0;
}

int cdb_run_compare(const compare_options *given)
{
    compare_options copy = *given, *o = &copy;
    static char sweep_text[COMPARE_MAX_VALUES + 1][256];
    if (o->report_only && o->n_values == 0 && load_sweep(o, sweep_text)) return -1;
    if (o->n_seeds == 0 && find_seeds(o)) return -1;
    char runs_dir[4200];
    snprintf(runs_dir, sizeof(runs_dir), "%s/runs", o->dir);
    if (o->report_only) return report(o);
    /* one compare per folder, before it touches anything there (a second
     * one would start over the first one's arms and remove their logs) */
    char lock_path[4200], holder[64];
    snprintf(lock_path, sizeof(lock_path), "%s/.cdbnet-compare.lock", o->dir);
    if (cdb_make_dir(o->dir)) return -1;
    int lock = cdb_lock_file(lock_path, holder, sizeof(holder));
    if (lock == -2)
        cdb_set_error("another cdbnet compare (pid %s) is running into '%s' (it holds %s): wait for it to end, or "
                      "give this one another -out folder",
                      holder[0] ? holder : "unknown", o->dir, lock_path);
    if (lock < 0) return -1;
    int status = cdb_make_dir(runs_dir) || save_sweep(o) || run_arms(o) ? -1 : report(o);
    close(lock);
    return status;
}
