/* cdbnet compare: its statistics against known values, both arms of a seed
 * from the same weights, and the command end to end with a resume. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stats.h"
#include "metrics.h"
#include "test.h"

/* Student's t quantiles from published tables, and the paired tests of two
 * fixed vectors: for 4 degrees of freedom the t CDF has the closed form
 * 1/2 + 3/4 (x - x^3/3), x = t / sqrt(4 + t^2), which gives the p-value of
 * d = 1..5 (t = 4.2426) as 0.0132356; the exact Wilcoxon p-values are
 * 2/32 (all five positive) and 6/32 (1, -2, 3, 4, 5). */
static void t_statistics(void)
{
    CHECK(fabs(cdb_stats_t_quantile(0.975, 4) - 2.776445) < 1e-5, "t(0.975, 4) = %.7f", cdb_stats_t_quantile(0.975, 4));
    CHECK(fabs(cdb_stats_t_quantile(0.995, 10) - 3.169273) < 1e-5, "t(0.995, 10) = %.7f", cdb_stats_t_quantile(0.995, 10));
    CHECK(fabs(cdb_stats_t_quantile(0.95, 1) - 6.313752) < 1e-5, "t(0.95, 1) = %.7f", cdb_stats_t_quantile(0.95, 1));
    CHECK(fabs(cdb_stats_t_cdf(0, 7) - 0.5) < 1e-12 && fabs(cdb_stats_t_cdf(-2.776445, 4) - 0.025) < 1e-6, "t CDF");
    double d[5] = {1, 2, 3, 4, 5};
    paired_test t = cdb_stats_paired(d, 5);
    CHECK(fabs(t.mean - 3) < 1e-12 && fabs(t.sd - sqrt(2.5)) < 1e-12 && fabs(t.t - 4.2426407) < 1e-6, "t %g", t.t);
    CHECK(fabs(t.p_t - 0.0132356) < 1e-6, "paired t-test p %.7f, want 0.0132356", t.p_t);
    double half = 2.776445 * sqrt(2.5) / sqrt(5.0);
    CHECK(fabs(t.ci_low - (3 - half)) < 1e-5 && fabs(t.ci_high - (3 + half)) < 1e-5, "CI [%g, %g]", t.ci_low, t.ci_high);
    CHECK(t.wilcoxon_exact && fabs(t.p_wilcoxon - 2.0 / 32) < 1e-12, "Wilcoxon p %g, want 0.0625", t.p_wilcoxon);
    d[1] = -2;
    t = cdb_stats_paired(d, 5);
    CHECK(t.w_plus == 13 && fabs(t.p_wilcoxon - 6.0 / 32) < 1e-12, "W+ %g, p %g, want 13 and 0.1875", t.w_plus,
          t.p_wilcoxon);
    double one[1] = {0.01};
    t = cdb_stats_paired(one, 1);
    CHECK(isnan(t.ci_low) && isnan(t.p_t), "one pair has no interval");
}

/* Both arms of a seed start from the same bits, and after a step differ
 * only in the tensors whose gradients were masked. */
static void t_arms_differ_only_by_masks(void)
{
    const char *text = "[net]\nbatch=4\nwidth=6\nheight=6\nchannels=2\nseed=9\nlearning_rate=0.1\nmomentum=0.9\n"
                       "max_batches=10\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=0.5\n"
                       "dropback_layer_rate_init=0.5\n"
                       "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                       "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                       "[avgpool]\n[connected]\noutput=3\nactivation=linear\n[softmax]\n";
    cdb_network *on = net_from_text(text), *off = net_from_text(text);
    CHECK(on && off, "build");
    cdb_dropback_disable(off);
    for (int i = 0; i < on->nparams; i++)
        CHECK(!memcmp(on->params[i]->value, off->params[i]->value, on->params[i]->size * sizeof(float)),
              "tensor %d starts differently", i);
    float images[4 * 72];
    int labels[4] = {0, 1, 2, 0};
    fill_normal(images, 4 * 72, 2, 1.f);
    int selected = 0;
    for (int step = 0; step < 6 && !selected; step++) {
        cdb_trainer_run_step(trainer_of(on), images, labels);
        cdb_trainer_run_step(trainer_of(off), images, labels);
        for (int i = 0; i < on->nparams; i++) {
            int same = !memcmp(on->params[i]->value, off->params[i]->value, on->params[i]->size * sizeof(float));
            CHECK(same != (cdb_dropback_selected(on->params[i]) && cdb_dropback_keep(on->params[i]) < 1),
                  "step %d tensor %d: %s though %s", step, i, same ? "the same" : "differs",
                  cdb_dropback_selected(on->params[i]) ? "masked" : "not masked");
            selected += cdb_dropback_selected(on->params[i]);
        }
    }
    CHECK(selected > 0, "no tensor was ever selected");
    free_net(on);
    free_net(off);
}

/* The small cfg and .data file of the end-to-end tests (Fashion-MNIST's
 * test images for both sets, a few steps). */
static int write_compare_files(const char *cfg, const char *data)
{
    FILE *f = fopen(cfg, "w");
    if (!f) return -1;
    fprintf(f, "[net]\nbatch=32\nwidth=28\nheight=28\nchannels=1\nlearning_rate=0.05\nmomentum=0.9\nmax_batches=20\n"
               "valid_every=10\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=0.5\n"
               "dropback_layer_rate_init=0.5\n[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\n"
               "batch_normalize=1\nactivation=relu\n[avgpool]\n[connected]\noutput=10\nactivation=linear\n[softmax]\n");
    fclose(f);
    char backup[600];
    snprintf(backup, sizeof(backup), "%s/unused", test_tmpdir());
    return write_fmnist_test_data(data, backup);
}

/* compare.png with gnuplot; without it, the line saying why there is none. */
static void check_chart(const char *dir, const char *out)
{
    char png[600];
    snprintf(png, sizeof(png), "%s/compare.png", dir);
    struct stat st;
    if (test_have_gnuplot())
        CHECK(stat(png, &st) == 0 && st.st_size > 1000 && strstr(out, "chart: "), "no chart %s: %s", png, out);
    else
        CHECK(strstr(out, "gnuplot is not installed") || strstr(out, "charts are off (CDBNET_GNUPLOT=none)"),
              "no word of the missing chart: %s", out);
}

/* compare end to end on a small cfg: 2 seeds, the report, a resume after
 * one arm's log is deleted, and -report rebuilding it. */
static void t_compare_end_to_end(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cfg[512], data[512], dir[512], cmd[4096];
    snprintf(cfg, sizeof(cfg), "%s/cmp.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/cmp.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/cmp", test_tmpdir());
    CHECK(write_compare_files(cfg, data) == 0, "cfg and data");
    snprintf(cmd, sizeof(cmd), "./cdbnet compare %s -seeds 2 -data %s -out %s -jobs 2 -threads 1", cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "compare: %s", out);
    CHECK(strstr(out, "0 already done, 4 to train") && strstr(out, "| 1 |") && strstr(out, "| 2 |") &&
              strstr(out, "95% CI (t)") && strstr(out, "(exact)"),
          "report: %s", out);
    char path[600];
    snprintf(path, sizeof(path), "%s/summary.csv", dir);
    FILE *s = fopen(path, "r");
    CHECK(s, "no %s", path);
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof(line), s)) {
        int seed;
        double b, d, diff;
        if (sscanf(line, "%d,%lf,%lf,%lf", &seed, &b, &d, &diff) == 4) {
            CHECK(b > 0.1 && d > 0.1 && fabs(d - b - diff) < 1e-6, "row: %s", line);
            rows++;
        }
    }
    fclose(s);
    CHECK(rows == 2, "%d rows in summary.csv", rows);
    /* resume: an arm whose log is gone is trained again, the others are kept */
    snprintf(path, sizeof(path), "%s/runs/seed2_dropback.csv", dir);
    CHECK(remove(path) == 0, "remove %s", path);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "3 already done, 1 to train") &&
              strstr(out, "seed 2 dropback: done"),
          "resume: %s", out);
    snprintf(cmd, sizeof(cmd), "./cdbnet compare %s -report %s", cfg, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "| 2 |") && !strstr(out, "to train"),
          "-report: %s", out);
    check_chart(dir, out);
}

/* -sweep: one dropback arm per value against the same baselines, the
 * value reaching each arm's training, a typo in the key refused before any
 * arm trains, and -report finding the sweep again. */
static void t_compare_sweep(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char cfg[512], data[512], dir[512], cmd[4096];
    snprintf(cfg, sizeof(cfg), "%s/sweep.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/sweep.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/sweep", test_tmpdir());
    CHECK(write_compare_files(cfg, data) == 0, "cfg and data");
    snprintf(cmd, sizeof(cmd), "./cdbnet compare %s -seeds 2 -data %s -out %s -jobs 2 -threads 1 -sweep "
             "net.dropback_chanel_rate=0.2,0.6", cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) != 0 && strstr(out, "dropback_chanel_rate': unknown key") &&
              !strstr(out, "to train"),
          "a typo in the sweep key: %s", out);
    snprintf(cmd, sizeof(cmd), "./cdbnet compare %s -seeds 2 -data %s -out %s -jobs 2 -threads 1 -sweep "
             "net.dropback_channel_rate=0.2,0.6", cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "compare -sweep: %s", out);
    CHECK(strstr(out, "2 seeds x 3 arms, 0 already done, 6 to train") &&
              strstr(out, "## net.dropback_channel_rate=0.2") && strstr(out, "## net.dropback_channel_rate=0.6") &&
              strstr(out, "| 0.2 | ") && strstr(out, "| baseline | "),
          "sweep report: %s", out);
    /* each value reached its arm's training: the dropped fraction in its log */
    for (int v = 0; v < 2; v++) {
        snprintf(cmd, sizeof(cmd), "cat '%s/runs/seed1_dropback_net.dropback_channel_rate=%s.csv'", dir, v ? "0.6" : "0.2");
        CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, v ? "# set: net.dropback_channel_rate=0.6"
                                                                      : "# set: net.dropback_channel_rate=0.2"),
              "the arm's log names its value: %s", out);
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/summary.csv", dir);
    FILE *s = fopen(path, "r");
    CHECK(s, "no %s", path);
    if (!s) return;
    char line[512];
    int rows = 0;
    double base[2][3] = {{0}};
    while (fgets(line, sizeof(line), s)) {
        int seed;
        double b, d, diff;
        char arm[128];
        if (sscanf(line, "%d,%lf,%lf,%lf,%*f,%*f,%*f,%*f,%*f,%127s", &seed, &b, &d, &diff, arm) == 5) {
            int v = !strcmp(arm, "net.dropback_channel_rate=0.6");
            CHECK((v || !strcmp(arm, "net.dropback_channel_rate=0.2")) && (seed == 1 || seed == 2), "row: %s", line);
            CHECK(fabs(d - b - diff) < 1e-6, "row: %s", line);
            base[v][seed] = b;
            rows++;
        }
    }
    fclose(s);
    CHECK(rows == 4, "%d rows in summary.csv", rows);
    CHECK(base[0][1] == base[1][1] && base[0][2] == base[1][2] && base[0][1] > 0,
          "both values are paired with the same baselines");
    snprintf(cmd, sizeof(cmd), "./cdbnet compare %s -report %s", cfg, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "## net.dropback_channel_rate=0.6") &&
              !strstr(out, "to train"),
          "-report of a sweep: %s", out);
    check_chart(dir, out);
}

/* One compare per -out folder: a second one started while the first trains
 * is refused, naming the first's pid, before it touches the first one's
 * arms (it used to remove their logs, and both failed). */
static void t_compare_locked(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char data[512], dir[512], cmd[8192], a_out[600], b_out[600], first_log[600];
    snprintf(data, sizeof(data), "%s/locked.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/locked", test_tmpdir());
    snprintf(a_out, sizeof(a_out), "%s/locked-a.out", test_tmpdir());
    snprintf(b_out, sizeof(b_out), "%s/locked-b.out", test_tmpdir());
    snprintf(first_log, sizeof(first_log), "%s/runs/seed1_baseline.csv", dir);
    char backup[600];
    snprintf(backup, sizeof(backup), "%s/locked-unused", test_tmpdir());
    CHECK(write_fmnist_test_data(data, backup) == 0, "data");
    const char *compare = "./cdbnet compare cfg/smallcnn.cfg -seeds 1 -jobs 1 -threads 1 -set net.max_batches=30";
    snprintf(cmd, sizeof(cmd),
             "%s -data %s -out %s > %s 2>&1 & a=$!; "
             "for i in $(seq 600); do [ -f %s ] && break; sleep 0.05; done; "
             "%s -data %s -out %s > %s 2>&1; b=$?; wait $a; echo \"first $? second $b pid $a\"",
             compare, data, dir, a_out, first_log, compare, data, dir, b_out);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    int first = -1, second = -1;
    long pid = 0;
    CHECK(sscanf(strstr(out, "first ") ? strstr(out, "first ") : "", "first %d second %d pid %ld", &first, &second,
                 &pid) == 3,
          "%s", out);
    static char a[65536], b[65536];
    FILE *f = fopen(b_out, "r");
    size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
    b[n] = 0;
    if (f) fclose(f);
    f = fopen(a_out, "r");
    n = f ? fread(a, 1, sizeof(a) - 1, f) : 0;
    a[n] = 0;
    if (f) fclose(f);
    char want[128];
    snprintf(want, sizeof(want), "another cdbnet compare (pid %ld) is running into", pid);
    CHECK(second != 0 && strstr(b, want), "the second compare (exit %d) is refused naming the first: %s", second, b);
    CHECK(first == 0 && strstr(a, "0 already done, 2 to train"), "the first compare (exit %d) finishes untouched: %s",
          first, a);
    CHECK(access(first_log, R_OK) == 0, "the first compare's log %s is gone", first_log);
}

/* A compare killed with kill -9 takes its arms with it (they save a
 * checkpoint on the SIGTERM their parent's death sends), and the same
 * command continues the interrupted arm from that checkpoint. */
static void t_compare_killed_resumes(void)
{
    if (!have_fashion_mnist()) {
        printf("  (Fashion-MNIST not installed: skipped)\n");
        return;
    }
    static char out[65536];
    char data[512], dir[512], cmd[8192], b_out[600], last[700], backup[600];
    snprintf(data, sizeof(data), "%s/killed.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/killed", test_tmpdir());
    snprintf(b_out, sizeof(b_out), "%s/killed-b.out", test_tmpdir());
    snprintf(last, sizeof(last), "%s/runs/seed1_baseline/smallcnn_last.weights", dir);
    snprintf(backup, sizeof(backup), "%s/killed-unused", test_tmpdir());
    CHECK(write_fmnist_test_data(data, backup) == 0, "data");
    snprintf(cmd, sizeof(cmd),
             "C='./cdbnet compare cfg/smallcnn.cfg -seeds 1 -jobs 1 -threads 1 -set net.max_batches=80 "
             "-set net.save_every=5 -data %s -out %s'; "
             "$C > /dev/null 2>&1 & c=$!; "
             "for i in $(seq 600); do [ -f %s ] && break; sleep 0.05; done; "
             "kill -9 $c; wait $c 2>/dev/null; sleep 1; "
             "if pgrep -f '[-]backup [^ ]*/killed/runs/seed1_baseline' > /dev/null; then echo 'an arm outlived its compare'; "
             "pkill -f '[-]backup [^ ]*/killed/runs/seed1_baseline'; fi; "
             "$C > %s 2>&1; echo \"rerun $?\"",
             data, dir, last, b_out);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    static char b[65536];
    FILE *f = fopen(b_out, "r");
    size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
    b[n] = 0;
    if (f) fclose(f);
    CHECK(!strstr(out, "outlived"), "the arms end with their compare: %s", out);
    CHECK(strstr(out, "rerun 0") && strstr(b, "seed 1 baseline: continues from its checkpoint"),
          "the rerun continues the interrupted arm: %s%s", out, b);
}

/* compare -report reads only whole, sane logs: a row cut short, a top-1
 * that is not a fraction (NaN, 7.5, -1, 1e308), a negative wall time, a
 * step that goes back, or a header naming the other arm is refused, naming
 * the file and line, instead of entering the paired tests. */
/* A log as a run writes it; `grad_norm`: the column of a run with clip_grad_norm. */
static void write_log_columns(const char *path, const char *arm, int grad_norm, const char *rows)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "# cdbnet training log\n# cfg: cfg/smallcnn.cfg\n# seed: 1\n# arm: %s\n"
               "step,epoch,images_seen,train_loss,valid_loss,top1,top5,learning_rate,dropback_layer_rate,"
               "selected_per_step,dropped_fraction,wall_seconds,images_per_second%s\n%s",
            arm, grad_norm ? ",grad_norm" : "", rows);
    fclose(f);
}

static void write_log(const char *path, const char *arm, const char *rows) { write_log_columns(path, arm, 0, rows); }

static void t_report_refuses_corrupt_logs(void)
{
    char dir[512], runs[600], base[700], drop[700], cmd[1400];
    static char out[16384];
    snprintf(dir, sizeof(dir), "%s/corrupt", test_tmpdir());
    snprintf(runs, sizeof(runs), "%s/runs", dir);
    mkdir(dir, 0755);
    mkdir(runs, 0755);
    snprintf(base, sizeof(base), "%s/seed1_baseline.csv", runs);
    snprintf(drop, sizeof(drop), "%s/seed1_dropback.csv", runs);
    snprintf(cmd, sizeof(cmd), "./cdbnet compare cfg/smallcnn.cfg -report %s", dir);
    const char *good = "10,1.0,640,0.9,0.8,0.7100,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n"
                       "20,2.0,1280,0.7,0.6,0.7500,0.9700,0.04,0.03,0.1,0.3,25.0,51.2\n";
    write_log(base, "baseline", good);
    write_log(drop, "dropback", good);
    int rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0 && strstr(out, "| 1 |"), "sane logs: exit %d: %s", rc, out);
    const struct {
        const char *rows, *arm, *want;
    } bad[] = {
        {"10,1.0,640,0.9,0.8,0.7100,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n20,2.0,1280,0.7,0.6,0.2", "dropback",
         "cut short"},
        {"10,1.0,640,0.9,0.8,nan,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n", "dropback", "not finite"},
        {"10,1.0,640,0.9,0.8,7.5,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n", "dropback", "not a fraction"},
        {"10,1.0,640,0.9,0.8,-1,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n", "dropback", "not a fraction"},
        {"10,1.0,640,0.9,0.8,1e308,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n", "dropback", "not a fraction"},
        {"10,1.0,640,0.9,0.8,0.71,0.9500,0.05,0.03,0.1,0.3,-4,51.2\n", "dropback", "wall time is negative"},
        {"20,1.0,640,0.9,0.8,0.71,0.9500,0.05,0.03,0.1,0.3,4,51.2\n10,1.0,640,0.9,0.8,0.71,0.9500,0.05,0.03,0.1,0.3,4,51.2\n",
         "dropback", "not after the row before"},
        {"10,1.0,640,0.9,0.8,0.7100,0.9500,0.05,0.03,0.1,0.3,12.5,51.2\n", "baseline", "names the baseline arm"},
    };
    for (int k = 0; k < (int)(sizeof(bad) / sizeof(bad[0])); k++) {
        write_log(drop, bad[k].arm, bad[k].rows);
        rc = run_command(cmd, out, sizeof(out));
        CHECK(rc == 1 && strstr(out, "seed1_dropback.csv:") && strstr(out, bad[k].want),
              "case %d (want '%s'): exit %d: %s", k, bad[k].want, rc, out);
    }
    /* a run with clip_grad_norm logs a 14th column, grad_norm: read by its header */
    write_log_columns(drop, "dropback", 1,
                      "10,1.0,640,0.9,0.8,0.7100,0.9500,0.05,0.03,0.1,0.3,12.5,51.2,3.75\n"
                      "20,2.0,1280,0.7,0.6,0.7500,0.9700,0.04,0.03,0.1,0.3,25.0,51.2,2.5\n");
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 0 && strstr(out, "| 1 |"), "a log with grad_norm: exit %d: %s", rc, out);
    write_log_columns(drop, "dropback", 1, good);
    rc = run_command(cmd, out, sizeof(out));
    CHECK(rc == 1 && strstr(out, "seed1_dropback.csv:6: fewer columns than its header"),
          "13 columns under a header of 14: exit %d: %s", rc, out);
}

/* The per-class metrics on a hand-computed case: 4 classes, class 2
 * predicted but never true, class 3 neither (left out of the macro
 * average), two ties with the label (broken against it) and a non-finite
 * output (counted against its class's recall). */
static void t_class_metrics(void)
{
    const float probs[6][4] = {{0.6f, 0.3f, 0.1f, 0}, {0.4f, 0.4f, 0.2f, 0}, {0.3f, 0.3f, 0.4f, 0},
                               {0.2f, 0.7f, 0.1f, 0}, {0.5f, 0.5f, 0, 0},    {NAN, 0.5f, 0.5f, 0}};
    const int labels[6] = {0, 0, 0, 1, 1, 1}, want_pred[6] = {0, 1, 2, 1, 0, 4};
    long confusion[4 * 5] = {0};
    for (int i = 0; i < 6; i++) {
        int p = cdb_predicted_class(probs[i], 4, labels[i]);
        CHECK(p == want_pred[i], "image %d: predicted %d, want %d", i, p, want_pred[i]);
        confusion[labels[i] * 5 + p]++;
    }
    class_metrics m[4], macro, weighted;
    cdb_class_metrics(confusion, 4, m, &macro, &weighted);
    const double want[4][3] = {{0.5, 1.0 / 3, 0.4}, {0.5, 1.0 / 3, 0.4}, {0, 0, 0}, {0, 0, 0}};
    const long support[4] = {3, 3, 0, 0}, predicted[4] = {2, 2, 1, 0};
    for (int k = 0; k < 4; k++)
        CHECK(fabs(m[k].precision - want[k][0]) < 1e-12 && fabs(m[k].recall - want[k][1]) < 1e-12 &&
                  fabs(m[k].f1 - want[k][2]) < 1e-12 && m[k].support == support[k] && m[k].predicted == predicted[k],
              "class %d: %g %g %g %ld %ld", k, m[k].precision, m[k].recall, m[k].f1, m[k].support, m[k].predicted);
    CHECK(fabs(macro.precision - 1.0 / 3) < 1e-12 && fabs(macro.recall - 2.0 / 9) < 1e-12 &&
              fabs(macro.f1 - 0.8 / 3) < 1e-12 && macro.support == 6,
          "macro: %g %g %g (over the 3 classes present)", macro.precision, macro.recall, macro.f1);
    CHECK(fabs(weighted.precision - 0.5) < 1e-12 && fabs(weighted.recall - 1.0 / 3) < 1e-12 &&
              fabs(weighted.f1 - 0.4) < 1e-12,
          "weighted: %g %g %g", weighted.precision, weighted.recall, weighted.f1);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    const char *names[4] = {"cat", "dog", "eel", "fox"};
    cdb_print_class_report(out, confusion, 4, names);
    fclose(out);
    CHECK(strstr(text, "dog") && strstr(text, "0.5000    0.3333    0.4000         3") && strstr(text, "macro avg") &&
              strstr(text, "0.3333    0.2222    0.2667         6"),
          "the report: %s", text);
    free(text);
}

/* Average precision as scikit-learn's average_precision_score: its
 * documented example (y = 0 0 1 1, scores 0.1 0.4 0.35 0.8: 0.8333), a tie
 * between a positive and a negative (one threshold), a class without
 * images (NaN, left out of the mAP). */
static void t_average_precision(void)
{
    /* class 1's scores are sklearn's; class 0's their complement */
    const float scores[4][2] = {{0.9f, 0.1f}, {0.6f, 0.4f}, {0.65f, 0.35f}, {0.2f, 0.8f}};
    const int labels[4] = {0, 0, 1, 1};
    double ap = cdb_average_precision(&scores[0][0], 4, 2, labels, 1);
    CHECK(fabs(ap - 0.8333333333) < 1e-9, "sklearn's example: %.10g, want 0.8333", ap);
    /* positives 0.9 and 0.5, a negative tied at 0.5: P = 1 at R = 0.5, then 2/3 at R = 1 */
    const float tied[3][2] = {{0, 0.9f}, {0, 0.5f}, {0, 0.5f}};
    const int tied_labels[3] = {1, 1, 0};
    ap = cdb_average_precision(&tied[0][0], 3, 2, tied_labels, 1);
    CHECK(fabs(ap - (0.5 * 1 + 0.5 * 2.0 / 3)) < 1e-9, "a tie: %.10g", ap);
    const int no_zero[3] = {1, 1, 1};
    ap = cdb_average_precision(&tied[0][0], 3, 2, no_zero, 0);
    CHECK(isnan(ap), "a class without images: %g", ap);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cdb_print_ap_report(out, &scores[0][0], 4, 2, labels, NULL);
    fclose(out);
    /* class 0: ranked 0.9 (+), 0.65 (-), 0.6 (+), 0.2 (-): P 1 at R 0.5, 2/3 at R 1 */
    double ap0 = cdb_average_precision(&scores[0][0], 4, 2, labels, 0);
    CHECK(fabs(ap0 - (0.5 + 0.5 * 2.0 / 3)) < 1e-9, "class 0: %.10g", ap0);
    char want[64];
    snprintf(want, sizeof(want), "mAP %.4f over the 2 classes", (ap0 + 0.8333333333) / 2);
    CHECK(strstr(text, want), "want '%s' in: %s", want, text);
    free(text);
}

void register_compare_tests(void)
{
    test_add_tagged("compare/-report refuses corrupt logs, naming file and line", t_report_refuses_corrupt_logs,
                    TEST_SPAWNS);
    test_add_tagged("compare/killed, its arms end too; the rerun continues them from their checkpoints",
                    t_compare_killed_resumes, TEST_SPAWNS | TEST_SLOW);
    test_add_tagged("compare/one compare per -out folder: a second is refused, the first untouched", t_compare_locked,
                    TEST_SPAWNS | TEST_SLOW);
    test_add("compare/t-test, interval and Wilcoxon against known values", t_statistics);
    test_add("metrics/per-class precision, recall and F1 with a tie and an empty class", t_class_metrics);
    test_add("metrics/average precision as scikit-learn's", t_average_precision);
    test_add("compare/both arms start from the same weights and differ only where masked", t_arms_differ_only_by_masks);
    test_add_tagged("compare/two seeds end to end, resume and -report", t_compare_end_to_end, TEST_SPAWNS);
    test_add_tagged("compare/-sweep: one arm per value against the same baselines", t_compare_sweep, TEST_SPAWNS);
}
