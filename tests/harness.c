/* The test harness shared by tests/run_tests and tests/gpu_tests: tests
 * registered with their tags, selected by words and tags, run one after
 * the other or, with -j N, each in its own process, N at a time (the
 * results printed in registration order as they come in). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MAX_TESTS 512

static struct {
    const char *name;
    test_fn fn;
    test_fn_arg fn_arg; /* or this, with arg */
    const void *arg;
    unsigned tags;
} tests[MAX_TESTS];
static test_fn after_each_hook, teardown_hook;
static int n_tests;
static int current_failed;

static const struct {
    const char *name;
    unsigned tag;
} tag_names[] = {{"slow", TEST_SLOW}, {"spawns", TEST_SPAWNS}, {"kernels", TEST_KERNELS}};
#define N_TAGS ((int)(sizeof(tag_names) / sizeof(tag_names[0])))

void test_add_tagged(const char *name, test_fn fn, unsigned tags)
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    tests[n_tests].tags = tags;
    n_tests++;
}

void test_add(const char *name, test_fn fn) { test_add_tagged(name, fn, 0); }

void test_add_arg(const char *name, test_fn_arg fn, const void *arg, unsigned tags)
{
    test_add_tagged(name, NULL, tags);
    tests[n_tests - 1].fn_arg = fn;
    tests[n_tests - 1].arg = arg;
}

void test_set_hooks(test_fn after_each, test_fn teardown)
{
    after_each_hook = after_each;
    teardown_hook = teardown;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    current_failed = 1;
    va_list ap;
    va_start(ap, fmt);
    printf("    %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

int test_failed(void) { return current_failed; }

/* words: a test runs when its name contains one of the plain words (or
 * there are none) and none of the words given as -WORD */
static int selected(const char *name, int nwords, char **words)
{
    int includes = 0, included = 0;
    for (int w = 0; w < nwords; w++) {
        if (words[w][0] == '-') {
            if (strstr(name, words[w] + 1)) return 0;
        } else {
            includes++;
            included |= strstr(name, words[w]) != NULL;
        }
    }
    return !includes || included;
}

/* "slow,spawns" -> the tags; -1 for an unknown name */
static int parse_tags(const char *list, unsigned *out)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", list);
    *out = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int k = 0; k < N_TAGS; k++)
            if (!strcmp(t, tag_names[k].name)) {
                *out |= tag_names[k].tag;
                found = 1;
            }
        if (!found) {
            fprintf(stderr, "run_tests: unknown tag '%s' (slow, spawns, kernels)\n", t);
            return -1;
        }
    }
    return 0;
}

static void usage(const char *self)
{
    fprintf(stderr,
            "usage: %s [-j N] [--isolate] [--only TAGS] [--skip TAGS] [--list] [WORD...] [-WORD...]\n"
            "  runs the tests whose names contain a WORD (all without one) and no -WORD;\n"
            "  -j N         N tests at a time, each in its own process\n"
            "  --isolate    each test in its own process, one at a time (a crash or a device error stays in its test)\n"
            "  --only TAGS  only the tests with one of these tags (comma-separated: slow, spawns, kernels)\n"
            "  --skip TAGS  not the tests with one of these tags\n"
            "  --list       print the selected tests and their tags, run nothing\n",
            self);
}

/* Runs test i here: 1 when it failed. */
static int run_one(int i)
{
    current_failed = 0;
    double t0 = cdb_now_seconds();
    if (tests[i].fn_arg)
        tests[i].fn_arg(tests[i].arg);
    else
        tests[i].fn();
    if (after_each_hook) after_each_hook();
    double dt = cdb_now_seconds() - t0;
    printf("%s %s (%.2fs)\n", current_failed ? "FAIL" : "ok  ", tests[i].name, dt);
    fflush(stdout);
    return current_failed;
}

typedef struct {
    pid_t pid;
    FILE *out;     /* what the test printed (a temporary file) */
    int done, failed;
} job;

/* Test i in a child process, its output into a temporary file. */
static int start_job(int i, job *j)
{
    fflush(stdout);
    j->out = tmpfile();
    if (!j->out) return -1;
    j->pid = fork();
    if (j->pid < 0) return -1;
    if (j->pid == 0) {
        dup2(fileno(j->out), STDOUT_FILENO);
        dup2(fileno(j->out), STDERR_FILENO);
        int failed = run_one(i);
        if (teardown_hook) teardown_hook();
        fflush(stdout);
        _exit(failed);
    }
    return 0;
}

/* Print a finished job's output; a child that did not exit 0 or 1 failed
 * by a crash (the signal said). */
static void finish_job(int i, job *j, int status)
{
    j->done = 1;
    j->failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rewind(j->out);
    char buf[4096];
    size_t n;
    int printed = 0;
    while ((n = fread(buf, 1, sizeof(buf), j->out)) > 0) {
        fwrite(buf, 1, n, stdout);
        printed = 1;
    }
    fclose(j->out);
    if (WIFSIGNALED(status))
        printf("FAIL %s (killed by signal %d%s)\n", tests[i].name, WTERMSIG(status), printed ? "" : ", no output");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        printf("FAIL %s (exit status %d)\n", tests[i].name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    fflush(stdout);
}

static int run_parallel(const int *which, int n, int jobs, int *failed)
{
    job *js = calloc((size_t)n, sizeof(job));
    if (!js) return -1;
    int next = 0, running = 0, shown = 0;
    while (shown < n) {
        while (running < jobs && next < n) {
            if (start_job(which[next], &js[next])) {
                perror("run_tests: fork");
                free(js);
                return -1;
            }
            next++;
            running++;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            perror("run_tests: wait");
            free(js);
            return -1;
        }
        for (int k = 0; k < next; k++)
            if (js[k].pid == pid && !js[k].done) {
                finish_job(which[k], &js[k], status);
                running--;
            }
        /* in registration order: each test's lines once it and all before it are done */
        while (shown < next && js[shown].done) *failed += js[shown++].failed;
    }
    free(js);
    return 0;
}

int test_run_all(int argc, char **argv)
{
    int jobs = 1, list = 0, nwords = 0, isolate = 0;
    unsigned only = 0, skip = 0;
    char **words = calloc((size_t)argc + 1, sizeof(char *));
    for (int a = 0; a < argc; a++) {
        if (!strcmp(argv[a], "-j") && a + 1 < argc) {
            jobs = atoi(argv[++a]);
            if (jobs < 1) jobs = 1;
        } else if ((!strcmp(argv[a], "--only") || !strcmp(argv[a], "--skip")) && a + 1 < argc) {
            if (parse_tags(argv[a + 1], argv[a][2] == 'o' ? &only : &skip)) return 2;
            a++;
        } else if (!strcmp(argv[a], "--list")) {
            list = 1;
        } else if (!strcmp(argv[a], "--isolate")) {
            isolate = 1;
        } else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
            usage("run_tests");
            return 0;
        } else {
            words[nwords++] = argv[a];
        }
    }
    int *which = calloc((size_t)n_tests + 1, sizeof(int)), n = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, nwords, words)) continue;
        if (only && !(tests[i].tags & only)) continue;
        if (tests[i].tags & skip) continue;
        which[n++] = i;
    }
    free(words);
    if (list) {
        for (int k = 0; k < n; k++) {
            printf("%s", tests[which[k]].name);
            for (int t = 0; t < N_TAGS; t++)
                if (tests[which[k]].tags & tag_names[t].tag) printf("  [%s]", tag_names[t].name);
            printf("\n");
        }
        free(which);
        return 0;
    }
    int failed = 0;
    if ((jobs > 1 && n > 1) || isolate) {
        if (run_parallel(which, n, jobs, &failed)) return 2;
    } else {
        for (int k = 0; k < n; k++) failed += run_one(which[k]);
        if (teardown_hook) teardown_hook();
    }
    free(which);
    printf("%d passed, %d failed\n", n - failed, failed);
    return failed ? 1 : 0;
}
