/* Data-parallel training (make MPI=1, Open MPI): run with the MPI build
 * ./cdbnet-mpi (make test builds it when Open MPI is installed) under
 * mpirun on this machine. Two ranks hold bit-identical weights and masks;
 * they train the model one process trains (sync_bn=1 against one forward of
 * the whole batch, local statistics against subdivisions); a rank killed
 * mid-run stops the others; a batch the ranks cannot share is refused. */
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "cdbnet.h"

#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun"

static const char *mpi_binary(void)
{
    const char *b = getenv("CDBNET_MPI_BIN");
    return b && *b ? b : "./cdbnet-mpi";
}

/* Whether the test can run: skipped (saying why) when CDBNET_MPI_BIN=none
 * asks for it, or Open MPI or Fashion-MNIST is not installed; failed when
 * Open MPI is installed but the binary is missing (make test builds it). */
static int mpi_ready(void)
{
    if (!strcmp(mpi_binary(), "none")) {
        printf("  (CDBNET_MPI_BIN=none: Open MPI tests skipped)\n");
        return 0;
    }
    if (!have_fashion_mnist() || system("command -v mpirun > /dev/null 2>&1") != 0) {
        printf("  (Open MPI or Fashion-MNIST is not installed: Open MPI tests skipped)\n");
        return 0;
    }
    if (access(mpi_binary(), X_OK) != 0) {
        test_fail(__FILE__, __LINE__, "Open MPI is installed but %s is missing: make cdbnet-mpi (make test builds it)",
                  mpi_binary());
        return 0;
    }
    return 1;
}

/* A small cfg (convolution with batch norm, a linear head), its data file
 * (Fashion-MNIST's test images for both sets). */
static int write_files(const char *cfg, const char *data, const char *extra)
{
    FILE *f = fopen(cfg, "w");
    if (!f) return -1;
    fprintf(f, "[net]\nbatch=16\nwidth=28\nheight=28\nchannels=1\nlearning_rate=0.01\nmomentum=0.9\nmax_batches=8\n"
               "seed=5\nchannel_dropback=1\ndropback_skip=0\ndropback_layer_rate=1\ndropback_layer_rate_init=1\n%s"
               "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nbatch_normalize=1\nactivation=relu\n"
               "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=relu\n"
               "[avgpool]\n[connected]\noutput=10\nactivation=linear\n[softmax]\n",
            extra);
    if (fclose(f)) return -1;
    char backup[600];
    snprintf(backup, sizeof(backup), "%s/unused", test_tmpdir());
    return write_fmnist_test_data(data, backup);
}

/* The largest relative difference over the trainable tensors of two weights
 * files of `cfg` (max |a - b| / max |b| per tensor), or -1. */
static double weights_difference(const char *cfg, const char *a, const char *b)
{
    cdb_network *na = cdb_network_load(cfg, NULL, 0), *nb = cdb_network_load(cfg, NULL, 0);
    double worst = -1;
    if (na && nb && cdb_weights_load(na, a) == 0 && cdb_weights_load(nb, b) == 0) {
        worst = 0;
        for (int i = 0; i < na->nparams; i++) {
            double e = relative_error(na->params[i]->value, nb->params[i]->value, na->params[i]->size);
            worst = e > worst ? e : worst;
        }
    }
    if (na) free_net(na);
    if (nb) free_net(nb);
    return worst;
}

static void t_two_ranks(void)
{
    if (!mpi_ready()) return;
    static char out[65536];
    char cfg[512], sync_cfg[512], data[512], cmd[8192], dir[512];
    snprintf(cfg, sizeof(cfg), "%s/mpi.cfg", test_tmpdir());
    snprintf(sync_cfg, sizeof(sync_cfg), "%s/mpi_sync.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/mpi.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/mpi", test_tmpdir());
    CHECK(write_files(sync_cfg, data, "sync_bn=1\n") == 0 && write_files(cfg, data, "") == 0, "files");
    mkdir(dir, 0755);
    /* sync_bn=1 on 2 ranks of 8 images against one process of 16 */
    snprintf(cmd, sizeof(cmd),
             MPIRUN " -np 2 %s train %s -data %s -backup %s/a -threads 1 -quiet -log none 2>&1 && "
                    "./cdbnet train %s -data %s -backup %s/b -threads 1 -quiet -log none 2>&1",
             mpi_binary(), sync_cfg, data, dir, sync_cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    CHECK(strstr(out, "ranks: the trainable tensors are bit-identical on all 2 ranks") &&
              strstr(out, "and so are the dropback masks they drew"),
          "the ranks' check: %s", out);
    char a[700], b[700];
    snprintf(a, sizeof(a), "%s/a/mpi_sync_final.weights", dir);
    snprintf(b, sizeof(b), "%s/b/mpi_sync_final.weights", dir);
    double d = weights_difference(sync_cfg, a, b);
    printf("    sync_bn=1, 2 ranks against 1 process, 8 steps: largest relative difference %.2g\n", d);
    CHECK(d >= 0 && d < 1e-5, "sync_bn: 2 ranks and 1 process differ by %g", d);
    /* a resume with another number of ranks: 4 steps on 2 ranks, then 4
     * more in one process from that file, against 8 on 2 ranks (dropback
     * off here: its schedule depends on the run's length) */
    snprintf(cmd, sizeof(cmd),
             MPIRUN " -np 2 %s train %s -data %s -backup %s/f -threads 1 -quiet -log none -nodropback 2>&1 && "
             MPIRUN " -np 2 %s train %s -data %s -backup %s/g -threads 1 -quiet -log none -nodropback "
                    "-set net.max_batches=4 2>&1 && "
                    "./cdbnet train %s -data %s -backup %s/h -threads 1 -quiet -log none -nodropback "
                    "-weights %s/g/mpi_sync_final.weights 2>&1",
             mpi_binary(), sync_cfg, data, dir, mpi_binary(), sync_cfg, data, dir, sync_cfg, data, dir, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0 && strstr(out, "trained 4 steps"), "%s", out);
    snprintf(a, sizeof(a), "%s/f/mpi_sync_final.weights", dir);
    snprintf(b, sizeof(b), "%s/h/mpi_sync_final.weights", dir);
    d = weights_difference(sync_cfg, a, b);
    printf("    4 steps on 2 ranks resumed for 4 in 1 process, against 8 on 2 ranks: largest relative difference %.2g\n", d);
    CHECK(d >= 0 && d < 1e-5, "the resume differs by %g", d);
    /* local statistics on 2 ranks = subdivisions=2 in one process */
    snprintf(cmd, sizeof(cmd),
             MPIRUN " -np 2 %s train %s -data %s -backup %s/c -threads 1 -quiet -log none 2>&1 && "
                    "./cdbnet train %s -data %s -backup %s/d -threads 1 -quiet -log none -set net.subdivisions=2 2>&1",
             mpi_binary(), cfg, data, dir, cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    snprintf(a, sizeof(a), "%s/c/mpi_final.weights", dir);
    snprintf(b, sizeof(b), "%s/d/mpi_final.weights", dir);
    d = weights_difference(cfg, a, b);
    printf("    local batch norm, 2 ranks against subdivisions=2: largest relative difference %.2g\n", d);
    CHECK(d >= 0 && d < 1e-5, "local statistics: 2 ranks and subdivisions=2 differ by %g", d);
    /* the same with class weights (their denominator is the whole batch's,
     * over the ranks), clipping (of the summed gradient) and mixup and
     * cutmix (of the whole batch: each rank its slice) */
    snprintf(cmd, sizeof(cmd),
             MPIRUN " -np 2 %s train %s -data %s -backup %s/i -threads 1 -quiet -log none -set net.clip_grad_norm=0.05 "
                    "-set net.class_weights=0.5,1,2,1,1,1,3,1,1,0.25 -set net.mixup_alpha=0.4 -set net.cutmix_alpha=1 2>&1 && "
                    "./cdbnet train %s -data %s -backup %s/j -threads 1 -quiet -log none -set net.subdivisions=2 "
                    "-set net.clip_grad_norm=0.05 -set net.class_weights=0.5,1,2,1,1,1,3,1,1,0.25 -set net.mixup_alpha=0.4 "
                    "-set net.cutmix_alpha=1 2>&1",
             mpi_binary(), cfg, data, dir, cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    snprintf(a, sizeof(a), "%s/i/mpi_final.weights", dir);
    snprintf(b, sizeof(b), "%s/j/mpi_final.weights", dir);
    d = weights_difference(cfg, a, b);
    printf("    class weights, clipping, mixup and cutmix, 2 ranks against subdivisions=2: largest relative difference "
           "%.2g\n", d);
    CHECK(d >= 0 && d < 1e-5, "class weights, clipping and mixing: 2 ranks and subdivisions=2 differ by %g", d);
    /* benchmark under mpirun: the sum's time and size; with every tensor
     * selected, the dropped channels stay out of it */
    snprintf(cmd, sizeof(cmd), MPIRUN " -np 2 %s benchmark %s -steps 2 -repeats 1 -warmup 1 -threads 1 2>&1",
             mpi_binary(), cfg);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    double ms = -1, sent = -1, all = -1;
    const char *at = strstr(out, "the gradient sum over the ranks took ");
    CHECK(at && sscanf(at, "the gradient sum over the ranks took %lf ms per step (in 'backward' and 'other'), %lf MB of "
                           "gradients reduced and broadcast in the last step (%lf MB",
                       &ms, &sent, &all) == 3,
          "%s", out);
    CHECK(ms >= 0 && sent > 0 && sent < all, "the sum moved %g of %g MB: %s", sent, all, out);
    /* a batch the ranks cannot share equally */
    snprintf(cmd, sizeof(cmd), MPIRUN " -np 2 %s train %s -data %s -backup %s/e -threads 1 -set net.batch=15 2>&1",
             mpi_binary(), cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) != 0 && strstr(out, "batch=15 is not divisible by subdivisions=1 x 2 ranks"),
          "%s", out);
}

/* A rank killed mid-run: the other stops with a message within seconds. */
static void t_rank_killed(void)
{
    if (!mpi_ready()) return;
    static char out[65536];
    char cfg[512], data[512], cmd[8192], dir[512];
    snprintf(cfg, sizeof(cfg), "%s/mpi_kill.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/mpi_kill.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/mpi_kill", test_tmpdir());
    CHECK(write_files(cfg, data, "") == 0, "files");
    snprintf(cmd, sizeof(cmd),
             "(" MPIRUN " -np 2 %s train %s -data %s -backup %s -threads 1 -print 1 -set net.max_batches=100000 "
             "> %s.log 2>&1; echo \"exit $?\" >> %s.log) & "
             "i=0; while [ $i -lt 400 ] && ! grep -q '^step ' %s.log 2>/dev/null; do sleep 0.05; i=$((i+1)); done; "
             "victim=$(pgrep -f '^%s train %s' | tail -1); kill -9 $victim; t0=$(date +%%s); "
             "while ! grep -q '^exit ' %s.log; do sleep 0.1; if [ $(( $(date +%%s) - t0 )) -gt 30 ]; then "
             "pkill -9 -f '^%s train %s'; echo timeout; break; fi; done; echo \"took $(( $(date +%%s) - t0 ))\"; "
             "cat %s.log | tail -5",
             mpi_binary(), cfg, data, dir, dir, dir, dir, mpi_binary(), cfg, dir, mpi_binary(), cfg, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    int took = -1;
    const char *t = strstr(out, "took ");
    if (t) sscanf(t, "took %d", &took);
    printf("    a rank killed: mpirun ended %d s later\n", took);
    CHECK(!strstr(out, "timeout") && strstr(out, "exit ") && !strstr(out, "exit 0") && took >= 0 && took <= 15,
          "a killed rank: %s", out);
}

/* The ranks' end-of-run check hashes what the last update produced: the
 * hash follows every step (it would not if it read copies the steps leave
 * behind, as a GPU's host copies are), two networks trained alike hash
 * alike, and the masks drawn are part of it. */
static void t_state_hash_follows_the_steps(void)
{
    const char *cfg = "[net]\nbatch=4\nwidth=6\nheight=6\nchannels=1\nlearning_rate=0.1\nmomentum=0.9\n"
                      "channel_dropback=1\ndropback_skip=0\ndropback_layer_rate=1\ndropback_layer_rate_init=1\n"
                      "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                      "[connected]\noutput=3\nactivation=linear\n[softmax]\n";
    cdb_network *a = net_from_text(cfg), *b = net_from_text(cfg);
    CHECK(a && b, "build");
    float images[4 * 36];
    int labels[4] = {0, 1, 2, 1};
    fill_normal(images, 4 * 36, 3, 1.f);
    uint64_t h0[2], h1[2], h2[2], hb[2];
    CHECK(cdb_network_state_hash(a, h0) == 0, "hash");
    cdb_trainer_run_step(trainer_of(a), images, labels);
    CHECK(cdb_network_state_hash(a, h1) == 0, "hash");
    CHECK(h1[0] != h0[0], "the tensors' hash did not change with a step");
    CHECK(h1[1] != h0[1], "the masks' hash did not change with a draw");
    cdb_trainer_run_step(trainer_of(a), images, labels);
    CHECK(cdb_network_state_hash(a, h2) == 0 && h2[0] != h1[0], "the tensors' hash did not change with a second step");
    cdb_trainer_run_step(trainer_of(b), images, labels);
    cdb_trainer_run_step(trainer_of(b), images, labels);
    CHECK(cdb_network_state_hash(b, hb) == 0 && !memcmp(hb, h2, sizeof(hb)), "two networks trained alike hash differently");
    b->params[0]->value[0] += 1.f;
    CHECK(cdb_network_state_hash(b, hb) == 0 && hb[0] != h2[0], "a changed weight does not change the hash");
    free_net(a);
    free_net(b);
}

/* Ranks that would train different things (another -set on one host,
 * another dataset) are stopped at the start, naming what differs and the
 * rank: they used to wait for each other forever, or report agreement
 * after training on other data. */
static void t_ranks_that_differ(void)
{
    if (!mpi_ready()) return;
    static char out[65536];
    char cfg[512], data[512], cmd[8192], dir[512];
    snprintf(cfg, sizeof(cfg), "%s/mpi_differ.cfg", test_tmpdir());
    snprintf(data, sizeof(data), "%s/mpi_differ.data", test_tmpdir());
    snprintf(dir, sizeof(dir), "%s/mpi_differ", test_tmpdir());
    CHECK(write_files(cfg, data, "") == 0, "files");
    mkdir(dir, 0755);
    snprintf(cmd, sizeof(cmd),
             "timeout 60 env " MPIRUN " -np 1 %s train %s -data %s -backup %s -threads 1 -quiet -log none : "
             "-np 1 %s train %s -data %s -backup %s -threads 1 -quiet -log none -set 0.filters=16 2>&1; echo \"exit $?\"",
             mpi_binary(), cfg, data, dir, mpi_binary(), cfg, data, dir);
    CHECK(run_command(cmd, out, sizeof(out)) == 0, "%s", out);
    CHECK(!strstr(out, "exit 0") && !strstr(out, "exit 124") && strstr(out, "rank 1 of 2 differ from rank 0") &&
              strstr(out, "the cfg's text or the -set options"),
          "a rank with another -set: %s", out);
}

void register_mpi_tests(void)
{
    test_add("mpi/the ranks' end-of-run hash is of what the last step produced", t_state_hash_follows_the_steps);
    test_add_tagged("mpi/2 ranks: identical on every rank, equal to one process", t_two_ranks, TEST_SPAWNS | TEST_SLOW);
    test_add_tagged("mpi/a rank killed mid-run stops the others", t_rank_killed, TEST_SPAWNS | TEST_SLOW);
    test_add_tagged("mpi/ranks that would train different things are stopped at the start, naming the rank",
                    t_ranks_that_differ, TEST_SPAWNS);
}
