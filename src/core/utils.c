#define _GNU_SOURCE /* sched_getaffinity */
#include "utils.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static __thread char last_error[2048];

void cdb_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char raw[sizeof(last_error)];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* control bytes (from a file's contents) are shown escaped, not sent to the terminal */
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)raw; *c && o + 5 < sizeof(last_error); c++) {
        if ((*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
            o += (size_t)snprintf(last_error + o, sizeof(last_error) - o, "\\x%02x", *c);
        else
            last_error[o++] = (char)*c;
    }
    last_error[o] = 0;
}

int cdb_check_regular(const char *path, const char *kind)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cdb_set_error("cannot open %s '%s': %s", kind, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        cdb_set_error("%s '%s' is not a regular file (a directory, FIFO or device)", kind, path);
        return -1;
    }
    return 0;
}

const char *cdb_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

static __thread long failed_allocations;
static __thread long allocations_left = -1; /* fault injection for tests: -1 off */

void cdb_fail_allocations_after(long n) { allocations_left = n; }

/* The allocation budget (cdb_budget_begin): bytes allowed and used so far. */
static __thread size_t budget_limit, budget_used;
static __thread int budget_on, budget_exceeded;

void cdb_budget_begin(size_t limit)
{
    budget_on = limit > 0;
    budget_limit = limit;
    budget_used = 0;
    budget_exceeded = 0;
}

size_t cdb_budget_used(void) { return budget_used; }
int cdb_budget_exceeded(void) { return budget_exceeded; }
void cdb_budget_end(void) { budget_on = 0; }

/* whether an allocation of `bytes` would pass the budget (counted when not) */
static int over_budget(size_t bytes)
{
    if (!budget_on) return 0;
    if (bytes > budget_limit - budget_used || budget_used > budget_limit) {
        budget_exceeded = 1;
        /* counted all the same: the total says what was asked for */
        budget_used = bytes > (size_t)-1 - budget_used ? (size_t)-1 : budget_used + bytes;
        return 1;
    }
    budget_used += bytes;
    return 0;
}

static size_t process_limit;
static int limit_from_cgroup; /* the last cdb_memory_limit came from the cgroup */

void cdb_set_memory_limit(size_t bytes) { process_limit = bytes; }

const char *cdb_memory_limit_source(void)
{
    if (process_limit) return "-max-memory";
    return limit_from_cgroup ? "the memory its cgroup leaves now" : "the memory available now";
}

/* A number from a cgroup file: 1 and the value, or 0 ("max", missing). */
static int read_cgroup_number(const char *dir, const char *name, size_t *out)
{
    char path[4200], text[64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(text, sizeof(text), f) != NULL;
    fclose(f);
    if (!ok || !strncmp(text, "max", 3)) return 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text) return 0;
    *out = (size_t)v;
    return 1;
}

/* Where a cgroup hierarchy is mounted, from mountinfo: version 2
 * (fstype cgroup2) or version 1's memory controller (fstype cgroup, with
 * memory among its options). 1 and the mount point and the mount's root,
 * else 0. */
static int cgroup_mount(const char *mountinfo, int version, char *point, char *mroot, size_t n)
{
    FILE *f = fopen(mountinfo, "r");
    if (!f) return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        char root[1024], mount[1024], fstype[64], super[1024] = "";
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %1023s %1023s", root, mount) != 2 ||
            sscanf(dash + 3, "%63s %*s %1023s", fstype, super) < 1)
            continue;
        int memory = 0;
        for (const char *m = strstr(super, "memory"); m; m = strstr(m + 1, "memory"))
            memory |= (m == super || m[-1] == ',') && (m[6] == 0 || m[6] == ',');
        if ((version == 2 && !strcmp(fstype, "cgroup2")) || (version == 1 && !strcmp(fstype, "cgroup") && memory)) {
            snprintf(point, n, "%s", mount);
            snprintf(mroot, n, "%s", root);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

size_t cdb_cgroup_memory_left(const char *self_cgroup, const char *mountinfo)
{
    FILE *f = fopen(self_cgroup, "r");
    if (!f) return 0;
    char line[4096], path[2][4096] = {"", ""};
    int have[2] = {0, 0}; /* [0]: v1 memory, [1]: v2 */
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = *c2 = 0; /* hierarchy id, controllers, path */
        const char *controllers = c1 + 1;
        int v2 = !strcmp(line, "0") && !*controllers, v1 = 0;
        for (const char *m = strstr(controllers, "memory"); m; m = strstr(m + 1, "memory"))
            v1 |= (m == controllers || m[-1] == ',') && (m[6] == 0 || m[6] == ',');
        if (v2 || v1) {
            snprintf(path[v2], sizeof(path[v2]), "%s", c2 + 1);
            have[v2] = 1;
        }
    }
    fclose(f);
    size_t best = 0;
    for (int v2 = 1; v2 >= 0; v2--) {
        char point[1024], mroot[1024];
        if (!have[v2] || !cgroup_mount(mountinfo, v2 ? 2 : 1, point, mroot, sizeof(point))) continue;
        /* the cgroup's path below the mount's root */
        char rel[4096];
        const char *p = path[v2];
        size_t rl = strlen(mroot);
        if (strcmp(mroot, "/") && !strncmp(p, mroot, rl) && (p[rl] == '/' || p[rl] == 0)) p += rl;
        snprintf(rel, sizeof(rel), "%s", *p ? p : "/");
        /* this cgroup's limit and every one above it apply: the least left */
        for (;;) {
            char dir[5200];
            snprintf(dir, sizeof(dir), "%s%s", point, strcmp(rel, "/") ? rel : "");
            size_t limit, used = 0;
            int limited = read_cgroup_number(dir, v2 ? "memory.max" : "memory.limit_in_bytes", &limit);
            if (limited && !v2 && limit >= ((size_t)1 << 62)) limited = 0; /* v1's "no limit": about LONG_MAX */
            if (limited) {
                read_cgroup_number(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &used);
                size_t left = used < limit ? limit - used : 1;
                if (!best || left < best) best = left;
            }
            char *slash = strrchr(rel, '/');
            if (!slash || !strcmp(rel, "/")) break;
            if (slash == rel)
                rel[1] = 0;
            else
                *slash = 0;
        }
    }
    return best;
}

size_t cdb_memory_limit(void)
{
    limit_from_cgroup = 0;
    if (process_limit) return process_limit;
    /* MemAvailable: what the kernel can give without swapping */
    FILE *f = fopen("/proc/meminfo", "r");
    size_t kb = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
        fclose(f);
    }
    size_t available = kb * 1024;
    /* in a container or a batch job, the cgroup's limit is what counts */
    size_t left = cdb_cgroup_memory_left("/proc/self/cgroup", "/proc/self/mountinfo");
    if (left && (!available || left < available)) {
        limit_from_cgroup = 1;
        return left;
    }
    return available;
}

/* whether the injected fault is due now */
static int injected_failure(void)
{
    if (allocations_left < 0) return 0;
    if (allocations_left == 0) return 1;
    allocations_left--;
    return 0;
}

/* Out of memory: recorded (the first failure's size names it) and counted,
 * never fatal; the caller returns its error. */
static void *out_of_memory(size_t bytes)
{
    if (!failed_allocations++)
        cdb_set_error("out of memory allocating %zu bytes (a smaller batch or network may fit)", bytes);
    return NULL;
}

long cdb_failed_allocations(void) { return failed_allocations; }
void cdb_reset_failed_allocations(void) { failed_allocations = 0; }

void *cdb_xcalloc(size_t count, size_t size)
{
    if (count == 0 || size == 0) count = size = 1;
    if (count > (size_t)-1 / size) return out_of_memory((size_t)-1);
    if (over_budget(count * size)) return out_of_memory(count * size);
    void *p = injected_failure() ? NULL : calloc(count, size);
    return p ? p : out_of_memory(count * size);
}

void *cdb_xmalloc(size_t size)
{
    if (over_budget(size)) return out_of_memory(size);
    void *p = injected_failure() ? NULL : malloc(size ? size : 1);
    return p ? p : out_of_memory(size);
}

void *cdb_xrealloc(void *ptr, size_t size)
{
    if (over_budget(size)) return out_of_memory(size);
    void *p = injected_failure() ? NULL : realloc(ptr, size ? size : 1);
    return p ? p : out_of_memory(size); /* ptr stays valid, as with realloc */
}

char *cdb_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cdb_xmalloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

cdb_rng cdb_rng_stream(uint64_t seed, uint64_t purpose, uint64_t counter)
{
    uint64_t x = seed;
    uint64_t a = splitmix64(&x);
    x = a ^ (purpose * 0xD1B54A32D192ED03ULL);
    uint64_t b = splitmix64(&x);
    x = b ^ (counter * 0x8CB92BA72F3D8DD7ULL);
    cdb_rng r = {splitmix64(&x)};
    return r;
}

uint64_t cdb_rng_next(cdb_rng *r) { return splitmix64(&r->state); }

float cdb_rng_uniform(cdb_rng *r) { return (float)(cdb_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float cdb_rng_normal(cdb_rng *r)
{
    /* Box-Muller; u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(cdb_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(cdb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

int cdb_rng_int(cdb_rng *r, int n) { return (int)((cdb_rng_next(r) >> 33) % (uint64_t)n); }

double cdb_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cdb_parse_int_strict(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

int cdb_parse_float_strict(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == s || *end || errno || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cdb_available_cpus(void)
{
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cdb_make_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) == 0) return 0;
    if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    if (errno == EEXIST) cdb_set_error("'%s' exists and is not a folder", dir);
    else cdb_set_error("cannot create the folder '%s': %s", dir, strerror(errno));
    return -1;
}

void cdb_cfg_basename(const char *cfg_path, char *buf, size_t n)
{
    const char *base = strrchr(cfg_path, '/');
    base = base ? base + 1 : cfg_path;
    snprintf(buf, n, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot) *dot = 0;
}

FILE *cdb_temp_open(const char *path, char *tmp, size_t n)
{
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) cdb_set_error("cannot write '%s': %s", tmp, strerror(errno));
    return f;
}

/* Close f and move tmp over path: 0, or -1 with the error recorded. */
int cdb_temp_commit(FILE *f, const char *tmp, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) || bad || rename(tmp, path)) {
        cdb_set_error("cannot write '%s': %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

int cdb_lock_file(const char *path, char *holder, size_t n)
{
    if (n) holder[0] = 0;
    /* never through a symlink: a planted link would have us create or
     * truncate a file elsewhere */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        if (errno == ELOOP)
            cdb_set_error("the lock file '%s' is a symbolic link: remove it (cdbnet makes its own)", path);
        else
            cdb_set_error("cannot open the lock file '%s': %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        if (n) {
            ssize_t got = pread(fd, holder, n - 1, 0);
            holder[got > 0 ? got : 0] = 0;
            holder[strcspn(holder, "\n")] = 0;
        }
        close(fd);
        return -2;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* the pid is only for another process's message: not worth failing for */
    }
    return fd;
}

uint64_t cdb_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}
