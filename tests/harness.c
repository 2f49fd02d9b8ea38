/* The test harness shared by tests/run_tests and tests/gpu_tests. */
#include <stdarg.h>
#include <stdlib.h>

#include "test.h"

#define MAX_TESTS 512

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int n_tests;
static int current_failed;

void test_add(const char *name, test_fn fn)
{
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
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

int test_run_all(int nwords, char **words)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, nwords, words)) continue;
        current_failed = 0;
        double t0 = cdb_now_seconds();
        tests[i].fn();
        double dt = cdb_now_seconds() - t0;
        printf("%s %s (%.2fs)\n", current_failed ? "FAIL" : "ok  ", tests[i].name, dt);
        fflush(stdout);
        if (current_failed)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
