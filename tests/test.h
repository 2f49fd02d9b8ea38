/* A minimal test harness: tests register themselves in run_tests.c, CHECK
 * records a failure with file:line and returns from the test. The runner
 * ends with "N passed, N failed". */
#ifndef CDB_TEST_H
#define CDB_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "checkpoint.h"
#include "model.h"
#include "network.h"
#include "trainer.h"

typedef void (*test_fn)(void);
/* What a test is, for choosing which to run (run_tests --only/--skip):
 * slow (seconds or more, too slow under an emulator), spawns (runs
 * ./cdbnet or another program), kernels (its results depend on the
 * arithmetic kernels: what a build with other kernels must run again). */
enum { TEST_SLOW = 1, TEST_SPAWNS = 2, TEST_KERNELS = 4 };
void test_add(const char *name, test_fn fn); /* no tags */
void test_add_tagged(const char *name, test_fn fn, unsigned tags);
/* A test that is a function of one case (a row of a table). */
typedef void (*test_fn_arg)(const void *arg);
void test_add_arg(const char *name, test_fn_arg fn, const void *arg, unsigned tags);
/* after_each runs after every test in the process that ran it (and may
 * fail it with test_fail); teardown once in each process that ran tests,
 * before it exits. Either may be NULL. */
void test_set_hooks(test_fn after_each, test_fn teardown);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int test_failed(void);
/* The runner's command line: runs the tests whose names contain one of the
 * plain words (all when there are none) and none of the -WORD ones, with
 * the tags of --only and without those of --skip, -j N at a time; prints
 * "N passed, N failed" and returns the exit status. */
int test_run_all(int argc, char **argv);

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);   \
            return;                                       \
        }                                                 \
    } while (0)

/* Helpers (helpers.c). */
/* Build a network from cfg text; fails the test (returns NULL) on error. */
cdb_network *net_from_text(const char *text);
/* The trainer of a network (made at the first call, from its cfg's
 * training keys); free_net frees both. Aborts when it cannot be made. */
cdb_trainer *trainer_of(cdb_network *net);
void free_net(cdb_network *net);
/* Build, expecting failure; returns the error message (static buffer) or NULL if it built. */
const char *net_error_from_text(const char *name, const char *text);
/* max |a - ref| / max |ref| over n values (max |a - ref| when ref is all 0);
 * +inf when either holds a NaN or an infinity. */
double relative_error(const float *a, const float *ref, size_t n);
/* Fill with N(0, scale) from a fixed stream. */
void fill_normal(float *x, size_t n, uint64_t seed, float scale);
/* Directory for temporary files of this test run. */
const char *test_tmpdir(void);
/* Run a shell command; its output (stdout and stderr) into out, its exit
 * code returned (-1 when it did not exit). */
int run_command(const char *cmd, char *out, size_t n);
/* Whether the real Fashion-MNIST files are installed. */
int have_fashion_mnist(void);
/* A .data file of Fashion-MNIST's 10,000 test images as both sets, with
 * the given backup folder: 0, or -1. */
int write_fmnist_test_data(const char *path, const char *backup);
/* The charts are drawn: gnuplot found, and CDBNET_GNUPLOT is not none. */
int test_have_gnuplot(void);

/* Test registration, one function per file. */
void register_cfg_tests(void);
void register_shipped_cfg_tests(void);
void register_gradcheck_tests(void);
void register_dropback_tests(void);
void register_optimizer_tests(void);
void register_weights_tests(void);
void register_data_tests(void);
void register_e2e_tests(void);
void register_api_tests(void);
void register_layer_tests(void);
void register_image_tests(void);
void register_mpi_tests(void);
void register_fastmath_tests(void);
void register_fixture_tests(void);
void register_compare_tests(void);
void register_cli_tests(void);
void register_reliability_tests(void);
void register_darknet_tests(void);
void register_zoo_tests(void);
void register_gpu_network_tests(void);

#endif
