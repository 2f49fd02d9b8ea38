/* cdbnet benchmark (training throughput and its profile), summary (the
 * network's table) and export (a dataset as image folders). */
#include <stdio.h>
#include <string.h>

#include "benchmark.h"
#include "cli.h"
#include "dropback.h"
#include "export.h"
#include "trainer.h"

int cmd_benchmark(cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet benchmark CFG [-batch N] [-steps N] [-repeats N] [-threads N] [-nodropback]\n");
        return 2;
    }
    if (c->batch) {
        if (c->n_overrides + 2 > MAX_OVERRIDES) return 2;
        snprintf(c->batch_override, sizeof(c->batch_override), "net.batch=%d", c->batch);
        snprintf(c->subdivision_override, sizeof(c->subdivision_override), "net.subdivisions=1");
        c->overrides[c->n_overrides++] = c->batch_override;
        c->overrides[c->n_overrides++] = c->subdivision_override;
    }
    cdb_network *net = cli_load_network(c->positional[0], c);
    if (!net) return cli_fail();
    benchmark_options opt = {c->warmup, c->steps, c->repeats, c->top_given ? c->top : 12};
    if (c->data || c->data_only) {
        data_config d = {0};
        int status = -1;
        if (!c->data)
            cdb_set_error("-data-only needs -data FILE.data (the dataset whose batches to time)");
        else if (cli_load_data_config(net, c, &d) == 0)
            status = cdb_run_data_benchmark(net, &d, &opt, c->data_only);
        cdb_data_config_free(&d);
        cdb_network_free(net);
        return status ? cli_fail() : 0;
    }
    int status = cdb_run_benchmark(net, &opt) ? 1 : 0;
    if (!status && c->dropback_report) {
        /* The same cfg four times: off, on, and at rates 1/0.5 without and with compute skipping. */
        int base = c->n_overrides;
        const char *extra[] = {"net.channel_dropback=1", "net.dropback_layer_rate=1", "net.dropback_channel_rate=0.5",
                               "net.dropback_skip_compute=1"};
        if (base + 4 > MAX_OVERRIDES) return 2;
        c->nodropback = 0; /* the report builds its own off arm */
        cdb_network *off = cli_load_network(c->positional[0], c);
        cdb_network *on = cli_load_network(c->positional[0], c);
        for (int i = 0; i < 3; i++) c->overrides[c->n_overrides++] = extra[i];
        cdb_network *mask = cli_load_network(c->positional[0], c);
        c->overrides[c->n_overrides++] = extra[3];
        cdb_network *skip = cli_load_network(c->positional[0], c);
        c->n_overrides = base;
        if (!off || !on || !mask || !skip) {
            status = 1;
        } else {
            cdb_dropback_disable(off);
            status = cdb_run_dropback_report(off, on, mask, skip, &opt) ? 1 : 0;
        }
        cdb_network_free(off);
        cdb_network_free(on);
        cdb_network_free(mask);
        cdb_network_free(skip);
    }
    if (status) cli_fail();
    cdb_network_free(net);
    return status;
}

int cmd_summary(const cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet summary CFG [-set KEY=VALUE ...]\n");
        return 2;
    }
    cdb_network *net = cli_load_network(c->positional[0], c);
    if (!net) return cli_fail();
    cdb_network_print_summary(net, stdout);
    cdb_network_free(net);
    return 0;
}

int cmd_export(const cli *c)
{
    if (c->n_positional != 2) {
        fprintf(stderr, "usage: cdbnet export DATA.data DIR [-limit N] [-size S] [-rgb] [-jpeg QUALITY]\n");
        return 2;
    }
    data_config d;
    if (cdb_data_config_load(c->positional[0], &d)) return cli_fail();
    printf("export %s (%d classes) as %s files under %s\n", c->positional[0], d.classes, c->jpeg ? "JPEG" : "PNG", c->positional[1]);
    export_options opt = {c->limit, c->size, c->rgb, c->jpeg};
    int status = cdb_export_images(&d, c->positional[1], &opt);
    cdb_data_config_free(&d);
    return status ? cli_fail() : 0;
}
