/* cdbnet compare CFG: the baseline and ChannelDropBack arms over seeds
 * (or one arm per value of a -sweep), checked before anything trains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "utils.h"

/* Two sweep values name one run when they are equal as text or, both
 * numbers, as numbers ("+0.05" and "0.05", "1e-1" and "0.1"). */
static int same_value(const char *a, const char *b)
{
    if (!strcmp(a, b)) return 1;
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    return ea != a && eb != b && !*ea && !*eb && x == y;
}

/* -sweep SEC.KEY=v1,v2,...: the key and its values (text is the copy they
 * point into). 0, or -1 with the message printed. */
static int parse_sweep(const char *arg, char *text, size_t size, compare_options *o)
{
    snprintf(text, size, "%s", arg);
    char *eq = strchr(text, '='), *dot = strchr(text, '.');
    if (!eq || !dot || dot > eq || eq == text || eq[1] == 0) {
        fprintf(stderr, "cdbnet: -sweep expects SEC.KEY=v1,v2,... (e.g. net.dropback_channel_rate=0.1,0.3,0.5), got "
                        "'%s'\n", arg);
        return -1;
    }
    *eq = 0;
    o->sweep_key = text;
    if (!strcmp(text, "net.seed") || !strcmp(text, "net.channel_dropback")) {
        fprintf(stderr, "cdbnet: -sweep %s: compare chooses %s itself\n", text,
                strcmp(text, "net.seed") ? "which arm has dropback (the baseline has none)" : "the seeds (-seeds)");
        return -1;
    }
    for (char *save = NULL, *t = strtok_r(eq + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_values == COMPARE_MAX_VALUES) {
            fprintf(stderr, "cdbnet: -sweep: at most %d values\n", COMPARE_MAX_VALUES);
            return -1;
        }
        while (*t == ' ' || *t == '\t') t++; /* "0.1, 0.3": the value, not its spaces */
        for (char *end = t + strlen(t); end > t && (end[-1] == ' ' || end[-1] == '\t');) *--end = 0;
        for (int v = 0; v < o->n_values; v++)
            if (same_value(o->sweep_values[v], t)) {
                fprintf(stderr, "cdbnet: -sweep: the values '%s' and '%s' are the same: each value once\n",
                        o->sweep_values[v], t);
                return -1;
            }
        o->sweep_values[o->n_values++] = t;
    }
    if (o->n_values == 0) {
        fprintf(stderr, "cdbnet: -sweep %s: no values\n", arg);
        return -1;
    }
    return 0;
}

/* Before any arm starts: the cfg builds with the -set options, and with
 * each value of the sweep (a typo is reported once, not by every arm). */
static int check_compare_cfgs(const compare_options *o)
{
    const char *set[COMPARE_MAX_ARGS / 2 + 2];
    int n = 0;
    for (int i = 0; i + 1 < o->n_train_args; i++)
        if (!strcmp(o->train_args[i], "-set")) set[n++] = o->train_args[++i];
    for (int v = -1; v < o->n_values; v++) {
        char one[1024];
        if (v >= 0) {
            snprintf(one, sizeof(one), "%s=%s", o->sweep_key, o->sweep_values[v]);
            set[n] = one;
        }
        cdb_network *net = cdb_network_load(o->cfg, set, n + (v >= 0));
        if (!net) {
            if (v >= 0) {
                char why[1024];
                snprintf(why, sizeof(why), "%s", cdb_last_error());
                cdb_set_error("-sweep %s=%s: %s", o->sweep_key, o->sweep_values[v], why);
            }
            return -1;
        }
        cdb_network_free(net);
    }
    return 0;
}

int cmd_compare(const cli *c, const char *self)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet compare CFG [-seeds N | -seed-list 1,2,3] [-epochs E] [-jobs J] [-threads T]\n"
                        "                      [-data FILE] [-set SEC.KEY=VAL ...] [-sweep SEC.KEY=v1,v2,...]\n"
                        "                      [-out DIR] [-report DIR]\n");
        return 2;
    }
    /* the train options compare decides itself, per arm: refused, not ignored */
    const struct {
        int given;
        const char *option, *why;
    } own[] = {
        {c->weights != NULL, "-weights", "each arm starts from the cfg's initialisation of its seed"},
        {c->clear, "-clear", "each arm starts from the cfg's initialisation of its seed"},
        {c->log != NULL, "-log", "each arm's log is DIR/runs/seedS_ARM.csv"},
        {c->backup != NULL, "-backup", "each arm's backup folder is DIR/runs/seedS_ARM"},
        {c->share_backup, "-share-backup", "each arm has a backup folder of its own"},
        {c->print_every != 0, "-print", "the arms train quietly; their output is DIR/runs/seedS_ARM.out"},
    };
    for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
        if (own[k].given) {
            fprintf(stderr, "cdbnet: compare does not take %s: %s\n", own[k].option, own[k].why);
            return 2;
        }
    static compare_options o;
    memset(&o, 0, sizeof(o));
    o.self = self;
    o.cfg = c->positional[0];
    char dir[4096], base[256];
    cdb_cfg_basename(o.cfg, base, sizeof(base));
    snprintf(dir, sizeof(dir), "compare/%s", base);
    o.dir = c->report ? c->report : (c->out ? c->out : dir);
    o.report_only = c->report != NULL;
    if (c->seed_list) {
        char list[1024];
        snprintf(list, sizeof(list), "%s", c->seed_list);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int v;
            if (cdb_parse_int_strict(t, &v) || v < 0 || o.n_seeds == COMPARE_MAX_SEEDS) {
                fprintf(stderr, "cdbnet: -seed-list expects up to %d seeds >= 0 separated by commas, got '%s'\n",
                        COMPARE_MAX_SEEDS, c->seed_list);
                return 2;
            }
            for (int k = 0; k < o.n_seeds; k++)
                if (o.seeds[k] == v) {
                    fprintf(stderr, "cdbnet: -seed-list: seed %d is given twice (a seed counted twice would count its "
                                    "pair twice in the tests)\n", v);
                    return 2;
                }
            o.seeds[o.n_seeds++] = v;
        }
        if (o.n_seeds == 0) {
            fprintf(stderr, "cdbnet: -seed-list names no seed (e.g. -seed-list 3,7,11)\n");
            return 2;
        }
    } else if (!o.report_only || c->seeds) {
        int n = c->seeds ? c->seeds : 5;
        if (n > COMPARE_MAX_SEEDS) {
            fprintf(stderr, "cdbnet: -seeds %d: at most %d\n", n, COMPARE_MAX_SEEDS);
            return 2;
        }
        for (int i = 0; i < n; i++) o.seeds[o.n_seeds++] = i + 1;
    }
    static char sweep[4096];
    if (c->sweep && parse_sweep(c->sweep, sweep, sizeof(sweep), &o)) return 2;
    int variants = o.n_values ? o.n_values : 1;
    int cpus = cdb_available_cpus(), arms = (1 + variants) * (o.n_seeds ? o.n_seeds : 1);
    o.jobs = c->jobs ? c->jobs : (arms < cpus ? arms : cpus);
    o.threads = c->threads ? c->threads : (cpus / o.jobs > 0 ? cpus / o.jobs : 1);
    static char epochs[64];
    if (c->data) {
        o.train_args[o.n_train_args++] = "-data";
        o.train_args[o.n_train_args++] = c->data;
    }
    for (int i = 0; i < c->n_overrides && o.n_train_args + 2 < COMPARE_MAX_ARGS; i++) {
        if (!strncmp(c->overrides[i], "net.seed=", 9)) {
            fprintf(stderr, "cdbnet: compare chooses the seeds (-seeds, -seed-list), not -seed\n");
            return 2;
        }
        o.train_args[o.n_train_args++] = "-set";
        o.train_args[o.n_train_args++] = c->overrides[i];
    }
    if (c->train_subset) { /* every arm of a seed trains the same subset (drawn from that seed) */
        o.train_args[o.n_train_args++] = "-train-subset";
        o.train_args[o.n_train_args++] = c->train_subset;
    }
    if (c->epochs) {
        snprintf(epochs, sizeof(epochs), "net.max_epochs=%d", c->epochs);
        o.train_args[o.n_train_args++] = "-set";
        o.train_args[o.n_train_args++] = epochs;
    }
    if (!o.report_only && check_compare_cfgs(&o)) return cli_fail();
    if (cdb_run_compare(&o)) return cli_fail();
    return 0;
}
