/* Small helpers shared by the whole library: error reporting, checked
 * allocation (never fatal), a seeded random stream and a wall clock. */
#ifndef CDB_UTILS_H
#define CDB_UTILS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Library functions report failure by returning a non-zero status (or NULL)
 * after recording a message with cdb_set_error(); the command-line front end
 * prints cdb_last_error() and decides whether to exit. */
void cdb_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cdb_last_error(void);
/* Before opening a file to read: 0, or -1 with "cannot open KIND 'path'"
 * or "... is not a regular file" recorded (a FIFO would block the open). */
int cdb_check_regular(const char *path, const char *kind);

/* Allocation that never exits: on out-of-memory it returns NULL, records
 * the error (cdb_last_error) and counts the failure, so that a caller which
 * builds many buffers (a layer's make) may check once, with
 * cdb_failed_allocations(), before it writes into any of them. xrealloc
 * leaves ptr valid when it fails. */
#define CDB_CHECK_RESULT __attribute__((warn_unused_result))
void *cdb_xcalloc(size_t count, size_t size) CDB_CHECK_RESULT;
void *cdb_xmalloc(size_t size) CDB_CHECK_RESULT;
void *cdb_xrealloc(void *ptr, size_t size) CDB_CHECK_RESULT;
char *cdb_xstrdup(const char *s) CDB_CHECK_RESULT;
/* Failed allocations of this thread since the last reset. */
long cdb_failed_allocations(void);
void cdb_reset_failed_allocations(void);
/* A budget for what one operation may allocate (a network build): between
 * begin and end, this thread's allocations fail (as out of memory) once
 * their total would pass `limit` bytes (0: no limit), and
 * cdb_budget_exceeded() says so. */
void cdb_budget_begin(size_t limit);
size_t cdb_budget_used(void);
int cdb_budget_exceeded(void);
void cdb_budget_end(void);
/* The memory a network may take: set (-max-memory), else the kernel's
 * MemAvailable or what the process's memory cgroup leaves, whichever is
 * less, else 0 (unknown: no limit). */
void cdb_set_memory_limit(size_t bytes);
size_t cdb_memory_limit(void);
const char *cdb_memory_limit_source(void); /* "-max-memory", "the memory available now" or "... its cgroup leaves now" */
/* What the memory cgroups of this process leave it (the least, over its
 * cgroup and those above it, of limit minus use; cgroup v2 and v1's memory
 * controller), from `self_cgroup` (/proc/self/cgroup) and the mounts of
 * `mountinfo` (/proc/self/mountinfo); 0 when no limit applies. */
size_t cdb_cgroup_memory_left(const char *self_cgroup, const char *mountinfo);
/* Tests: the allocations of this thread after the next n fail (n < 0: none). */
void cdb_fail_allocations_after(long n);

/* Random streams. Every random choice in a run comes from an explicit
 * stream derived from the run's seed, so runs repeat exactly. */
typedef struct {
    uint64_t state;
} cdb_rng;

enum {
    RNG_STREAM_INIT = 1,     /* weight initialisation */
    RNG_STREAM_SHUFFLE = 2,  /* per-epoch order of the training set */
    RNG_STREAM_AUGMENT = 3,  /* per-step augmentation */
    RNG_STREAM_DROPBACK = 4, /* per-step ChannelDropBack masks */
    RNG_STREAM_DROPOUT = 5,  /* per-step dropout masks */
    RNG_STREAM_MIX = 6,      /* per-step mixup / cutmix */
    RNG_STREAM_SUBSET = 7    /* the training subset (train_subset=) */
};

/* A stream for (seed, purpose, counter): e.g. the dropback masks of step 17
 * come from cdb_rng_stream(seed, RNG_STREAM_DROPBACK, 17). Deriving the stream
 * from the step number makes a resumed run draw exactly what the
 * uninterrupted run would have drawn. */
cdb_rng cdb_rng_stream(uint64_t seed, uint64_t purpose, uint64_t counter);
uint64_t cdb_rng_next(cdb_rng *r);
float cdb_rng_uniform(cdb_rng *r);              /* [0, 1) */
float cdb_rng_normal(cdb_rng *r);               /* N(0, 1) */
int cdb_rng_int(cdb_rng *r, int n);             /* uniform in [0, n) */

double cdb_now_seconds(void);
/* CPUs this process may run on (its affinity mask; at least 1). */
int cdb_available_cpus(void);

/* Parse helpers that reject trailing junk (unlike atoi/atof). */
int cdb_parse_int_strict(const char *s, int *out);
int cdb_parse_float_strict(const char *s, float *out);

/* Create a folder unless it exists: 0, or -1 with the error recorded. */
int cdb_make_dir(const char *dir);
/* The cfg's file name without its folder and extension ("smallcnn"). */
void cdb_cfg_basename(const char *cfg_path, char *buf, size_t n);

/* A file written whole or not at all: cdb_temp_open opens PATH.tmp (its
 * name into tmp), cdb_temp_commit closes it and renames it over path. NULL
 * or -1 with the error recorded. */
FILE *cdb_temp_open(const char *path, char *tmp, size_t n);
int cdb_temp_commit(FILE *f, const char *tmp, const char *path);

/* An advisory lock on the file `path` (created, never through a symbolic
 * link), held until its descriptor is closed or the process ends (kill -9
 * included); the file holds this process's pid. The descriptor; -2 when
 * another process holds it (its pid, as the file says, into holder); -1
 * with the error recorded. */
int cdb_lock_file(const char *path, char *holder, size_t n);

/* FNV-1a over n bytes, continuing from h (start: CDB_HASH_START). */
#define CDB_HASH_START 1469598103934665603ull
uint64_t cdb_hash_bytes(uint64_t h, const void *data, size_t n);

#endif
