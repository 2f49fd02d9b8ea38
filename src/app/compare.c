#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runlog.h"
#include "stats.h"
#include "train.h"
#include "utils.h"

static const char *const arm_names[2] = {"baseline", "dropback"};

#define MAX_ROWS 4096

/* What the report reads from one arm's CSV log. */
typedef struct {
    int rows;
    double epoch[MAX_ROWS], top1[MAX_ROWS];
    double final_top1, best_top1, seconds;
} arm_log;

static void run_path(char *buf, size_t n, const compare_options *o, int seed, int arm, const char *ext)
{
    snprintf(buf, n, "%s/runs/seed%d_%s%s", o->dir, seed, arm_names[arm], ext);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Start one arm's `cdbnet train`, its output into runs/seedS_ARM.out. */
static pid_t start_arm(const compare_options *o, int seed, int arm)
{
    char weights[4200], log[4200], backup[4200], out[4200], seed_text[32], threads[32];
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
    for (int i = 0; i < o->n_train_args; i++) argv[n++] = o->train_args[i];
    argv[n] = NULL;
    remove(log); /* a fresh run: an unfinished arm's rows go */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
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
    int todo[2 * COMPARE_MAX_SEEDS][2], n = 0, done = 0;
    for (int s = 0; s < o->n_seeds; s++)
        for (int arm = 0; arm < 2; arm++) {
            char w[4200], l[4200];
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
    printf("compare %s: %d seeds x 2 arms, %d already done, %d to train, %d at a time with %d thread%s each\n", o->cfg,
           o->n_seeds, done, n, o->jobs, o->threads, o->threads == 1 ? "" : "s");
    fflush(stdout);
    pid_t running[2 * COMPARE_MAX_SEEDS];
    int which[2 * COMPARE_MAX_SEEDS], active = 0, next = 0, failed = -1, finished = 0;
    double t0 = now_seconds();
    while (next < n || active > 0) {
        while (failed < 0 && next < n && active < o->jobs) {
            pid_t pid = start_arm(o, todo[next][0], todo[next][1]);
            if (pid < 0) return -1;
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
                printf("  seed %d %s: %s (%d of %d, %.0fs)\n", todo[k][0], arm_names[todo[k][1]],
                       ok ? "done" : "FAILED", finished, n, now_seconds() - t0);
                fflush(stdout);
                if (!ok && failed < 0) failed = k;
                break;
            }
    }
    if (failed >= 0) {
        char out[4200];
        run_path(out, sizeof(out), o, todo[failed][0], todo[failed][1], ".out");
        cdb_set_error("the %s arm of seed %d failed: its output is in %s (rerun the same command to continue)",
                      arm_names[todo[failed][1]], todo[failed][0], out);
        return -1;
    }
    return 0;
}

static int read_log(const char *path, arm_log *a)
{
    memset(a, 0, sizeof(*a));
    FILE *f = fopen(path, "r");
    if (!f) {
        cdb_set_error("cannot read the log '%s': %s (has that arm run?)", path, strerror(errno));
        return -1;
    }
    char line[1024];
    a->best_top1 = -1;
    while (fgets(line, sizeof(line), f)) {
        int step;
        double epoch, loss, vloss, top1, seconds;
        unsigned long long seen;
        if (line[0] == '#' || sscanf(line, "%d,%lf,%llu,%lf,%lf,%lf", &step, &epoch, &seen, &loss, &vloss, &top1) != 6)
            continue;
        const char *c = line;
        for (int k = 0; k < 11 && c; k++) c = strchr(c + 1, ',');
        seconds = c ? atof(c + 1) : 0;
        if (a->rows < MAX_ROWS) {
            a->epoch[a->rows] = epoch;
            a->top1[a->rows] = top1;
            a->rows++;
        }
        a->final_top1 = top1;
        if (top1 > a->best_top1) a->best_top1 = top1;
        a->seconds = seconds;
    }
    fclose(f);
    if (a->rows == 0) {
        cdb_set_error("the log '%s' has no rows (the arm did not finish: rerun to train it)", path);
        return -1;
    }
    return 0;
}

static void draw(const compare_options *o, arm_log (*arms)[2], const double *diff)
{
    if (!gnuplot_available()) {
        printf("chart: gnuplot is not installed, so there is no %s/compare.png (apt-get install gnuplot-nox)\n", o->dir);
        return;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/curves.dat", o->dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "# epoch, then per arm (baseline, dropback) the mean, min and max valid top-1 over seeds\n");
    int rows = arms[0][0].rows;
    for (int s = 0; s < o->n_seeds; s++)
        for (int a = 0; a < 2; a++) rows = arms[s][a].rows < rows ? arms[s][a].rows : rows;
    for (int r = 0; r < rows; r++) {
        fprintf(f, "%g", arms[0][0].epoch[r]);
        for (int a = 0; a < 2; a++) {
            double sum = 0, lo = 1e9, hi = -1e9;
            for (int s = 0; s < o->n_seeds; s++) {
                double v = 100 * arms[s][a].top1[r];
                sum += v;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            fprintf(f, " %g %g %g", sum / o->n_seeds, lo, hi);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(path, sizeof(path), "%s/differences.dat", o->dir);
    f = fopen(path, "w");
    if (!f) return;
    for (int s = 0; s < o->n_seeds; s++) fprintf(f, "%d %g\n", o->seeds[s], 100 * diff[s]);
    fclose(f);
    snprintf(path, sizeof(path), "%s/compare.gp", o->dir);
    f = fopen(path, "w");
    if (!f) return;
    fprintf(f,
            "set terminal pngcairo size 900,700 noenhanced\nset output '%s/compare.png'\n"
            "set multiplot layout 2,1 title '%s: %d seeds'\nset grid\nset xlabel 'epoch'\n"
            "set ylabel 'valid top-1 (%%)'\nset key bottom right\n"
            "plot '%s/curves.dat' using 1:3:4 with filledcurves fs transparent solid 0.2 lc 1 title 'baseline min-max', "
            "'' using 1:2 with linespoints lc 1 title 'baseline mean', "
            "'' using 1:6:7 with filledcurves fs transparent solid 0.2 lc 2 title 'dropback min-max', "
            "'' using 1:5 with linespoints lc 2 title 'dropback mean'\n"
            "set xlabel 'seed'\nset ylabel 'final top-1, dropback - baseline (points)'\nset key top right\n"
            "set offsets 0.5, 0.5, 0.2, 0.2\nset xtics 1\n"
            "plot '%s/differences.dat' using 1:2 with impulses lw 3 title 'paired difference', 0 notitle lc 0\n"
            "unset multiplot\n",
            o->dir, o->cfg, o->n_seeds, o->dir, o->dir);
    fclose(f);
    char cmd[8600];
    snprintf(cmd, sizeof(cmd), "gnuplot '%s' > /dev/null 2>&1", path);
    if (system(cmd) == 0)
        printf("chart: %s/compare.png\n", o->dir);
    else
        printf("chart: gnuplot could not draw %s/compare.png\n", o->dir);
}

static int report(const compare_options *o)
{
    static arm_log arms[COMPARE_MAX_SEEDS][2];
    double diff[COMPARE_MAX_SEEDS], best_diff[COMPARE_MAX_SEEDS], top[2][COMPARE_MAX_SEEDS];
    for (int s = 0; s < o->n_seeds; s++)
        for (int a = 0; a < 2; a++) {
            char path[4200];
            run_path(path, sizeof(path), o, o->seeds[s], a, ".csv");
            if (read_log(path, &arms[s][a])) return -1;
        }
    for (int s = 0; s < o->n_seeds; s++) {
        diff[s] = arms[s][1].final_top1 - arms[s][0].final_top1;
        best_diff[s] = arms[s][1].best_top1 - arms[s][0].best_top1;
        for (int a = 0; a < 2; a++) top[a][s] = arms[s][a].final_top1;
    }
    paired_test t = stats_paired(diff, o->n_seeds), tb = stats_paired(best_diff, o->n_seeds);
    char path[4200];
    snprintf(path, sizeof(path), "%s/summary.csv", o->dir);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/summary.md", o->dir);
    FILE *md = fopen(path, "w");
    if (!csv || !md) {
        if (csv) fclose(csv);
        if (md) fclose(md);
        cdb_set_error("cannot write the report in '%s': %s", o->dir, strerror(errno));
        return -1;
    }
    fprintf(csv, "seed,baseline_top1,dropback_top1,difference,baseline_best_top1,dropback_best_top1,best_difference,"
                 "baseline_seconds,dropback_seconds\n");
    FILE *outs[2] = {md, stdout};
    for (int k = 0; k < 2; k++) {
        FILE *f = outs[k];
        fprintf(f, "# cdbnet compare: %s, %d seeds\n\n", o->cfg, o->n_seeds);
        fprintf(f, "| seed | baseline top-1 | dropback top-1 | difference | best: baseline | best: dropback | "
                   "seconds: baseline | seconds: dropback |\n|---|---|---|---|---|---|---|---|\n");
        for (int s = 0; s < o->n_seeds; s++)
            fprintf(f, "| %d | %.2f%% | %.2f%% | %+.2f | %.2f%% | %.2f%% | %.0f | %.0f |\n", o->seeds[s],
                    100 * arms[s][0].final_top1, 100 * arms[s][1].final_top1, 100 * diff[s], 100 * arms[s][0].best_top1,
                    100 * arms[s][1].best_top1, arms[s][0].seconds, arms[s][1].seconds);
        fprintf(f, "\nbaseline: mean %.2f%%, sd %.2f; dropback: mean %.2f%%, sd %.2f (final valid top-1)\n\n",
                100 * stats_mean(top[0], o->n_seeds), 100 * stats_sd(top[0], o->n_seeds),
                100 * stats_mean(top[1], o->n_seeds), 100 * stats_sd(top[1], o->n_seeds));
        fprintf(f, "| dropback - baseline (points) | mean | 95%% CI (t) | paired t-test p | Wilcoxon signed-rank p |\n"
                   "|---|---|---|---|---|\n");
        const paired_test *ts[2] = {&t, &tb};
        const char *what[2] = {"final top-1", "best top-1"};
        for (int i = 0; i < 2; i++) {
            char ci[64] = "n/a (one seed)", pt[32] = "n/a", pw[48];
            if (!isnan(ts[i]->ci_low)) snprintf(ci, sizeof(ci), "[%+.2f, %+.2f]", 100 * ts[i]->ci_low, 100 * ts[i]->ci_high);
            if (!isnan(ts[i]->p_t)) snprintf(pt, sizeof(pt), "%.3g", ts[i]->p_t);
            snprintf(pw, sizeof(pw), "%.3g%s", ts[i]->p_wilcoxon, ts[i]->wilcoxon_exact ? " (exact)" : " (normal approx.)");
            fprintf(f, "| %s | %+.2f | %s | %s | %s |\n", what[i], 100 * ts[i]->mean, ci, pt, pw);
        }
        int contains_zero = !isnan(t.ci_low) && t.ci_low <= 0 && t.ci_high >= 0;
        fprintf(f, "\n%s\n",
                o->n_seeds < 2 ? "One seed cannot separate the difference from seed noise: give -seeds 5 or more."
                : contains_zero
                    ? "The 95% confidence interval of the final difference contains 0: at this budget the difference "
                      "is not distinguishable from seed noise."
                    : "The 95% confidence interval of the final difference excludes 0.");
    }
    for (int s = 0; s < o->n_seeds; s++)
        fprintf(csv, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f,%.1f\n", o->seeds[s], arms[s][0].final_top1,
                arms[s][1].final_top1, diff[s], arms[s][0].best_top1, arms[s][1].best_top1, best_diff[s],
                arms[s][0].seconds, arms[s][1].seconds);
    fclose(csv);
    fclose(md);
    printf("report: %s/summary.md, %s/summary.csv\n", o->dir, o->dir);
    draw(o, arms, diff);
    return 0;
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
        int seed;
        if (sscanf(name, "seed%d_baseline.csv", &seed) == 1) o->seeds[o->n_seeds++] = seed;
    }
    globfree(&g);
    qsort(o->seeds, (size_t)o->n_seeds, sizeof(int), by_value);
    return o->n_seeds ? 0 : -1;
}

int run_compare(const compare_options *given)
{
    compare_options copy = *given, *o = &copy;
    if (o->n_seeds == 0 && find_seeds(o)) return -1;
    char runs[4200];
    snprintf(runs, sizeof(runs), "%s/runs", o->dir);
    if (!o->report_only && (make_dir(o->dir) || make_dir(runs) || run_arms(o))) return -1;
    return report(o);
}
