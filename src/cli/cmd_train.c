/* cdbnet train CFG: a training run, from the cfg's dataset, until its
 * length or a signal (which saves a checkpoint first). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dropback_report.h"
#include "checkpoint.h"
#include "images.h"
#include "model.h"
#include "train.h"

/* SIGINT/SIGTERM during training: the first asks the loop to save a
 * checkpoint after the step under way and stop; a second ends the process
 * at once. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    stop_requested = 1;
    signal(sig, SIG_DFL);
}

/* Folder datasets: the validation set's class folders are the training
 * set's (each labels its images by its own folders). */
static int check_same_classes(const cdb_dataset *train, const cdb_dataset *valid)
{
    if (!train->class_names || !valid->class_names) return 0;
    for (int k = 0; k < train->classes; k++)
        if (strcmp(train->class_names[k], valid->class_names[k])) {
            cdb_set_error("class %d is the folder '%s' in '%s' but '%s' in '%s': both sets need the same class folders "
                          "(or a names= file)",
                          k, train->class_names[k], train->name, valid->class_names[k], valid->name);
            return -1;
        }
    return 0;
}

/* The line that says what an image-file dataset is. */
static void print_dataset(const cdb_dataset *train, const cdb_dataset *valid)
{
    if (!train->paths && !train->class_names) return;
    printf("data: %s: %d images, %s: %d images, decoded by %s on %d thread%s%s\n", train->name, train->n, valid->name,
           valid->n, cdb_image_decoder_name(), train->workers, train->workers == 1 ? "" : "s",
           train->pixels ? " (cached in memory)" : ", the next batch while this one trains");
    if (train->class_names) {
        printf("classes:");
        for (int k = 0; k < train->classes; k++) printf("%s %d %s", k ? "," : "", k, train->class_names[k]);
        printf("\n");
    }
}

int cmd_train(const cli *c)
{
    if (c->n_positional != 1) {
        fprintf(stderr, "usage: cdbnet train CFG [options]\n");
        return 2;
    }
    cdb_network *net = cli_load_network(c->positional[0], c);
    if (!net) return cli_fail();
    data_config d;
    cdb_dataset train = {0}, valid = {0};
    int status = 1;
    cdb_trainer *tr = cdb_trainer_new(net);
    if (!tr) goto done;
    if (!c->quiet) cdb_network_print_summary(net, stdout);
    if (c->weights && cdb_trainer_resume(tr, c->weights, c->clear, c->quiet)) goto done;
    if (cli_load_data_config(net, c, &d)) goto done;
    /* -train-subset N (or the .data file's train_subset=): a stratified sample drawn from the run's seed */
    int subset = c->train_subset ? atoi(c->train_subset) : d.train_subset;
    if (cdb_dataset_read(&d, "train", &train)) {
        cdb_data_config_free(&d);
        goto done;
    }
    int all = train.n;
    if ((subset && cdb_dataset_subset(&train, subset, cdb_network_seed(net))) || cdb_dataset_check_against(&train, net) ||
        cdb_dataset_read(&d, "valid", &valid) || cdb_dataset_check_against(&valid, net)) {
        cdb_data_config_free(&d);
        goto done;
    }
    if (subset && !c->quiet)
        printf("training subset: %d of the %d images of %s, stratified by class, drawn from seed %llu\n", train.n, all,
               train.name, (unsigned long long)cdb_network_seed(net));
    if (cdb_trainer_resolve_length(tr, train.n) || check_same_classes(&train, &valid)) {
        cdb_data_config_free(&d);
        goto done;
    }
    if (!c->quiet) print_dataset(&train, &valid);
    cdb_dataset_warn_unused_keys(&train, net);
    if (!c->quiet)
        cdb_dropback_print_config(tr, c->nodropback ? "off (-nodropback)" : "off unless set per layer", stdout);
    for (int i = 0; i < c->n_overrides && !c->quiet; i++)
        if (!strncmp(c->overrides[i], "net.max_batches=", 16) || !strncmp(c->overrides[i], "net.max_epochs=", 15))
            printf("length: -set %s from the command line replaces the cfg's length\n", c->overrides[i]);
    train_options opt = {.backup_dir = d.backup,
                         .out_path = c->out,
                         .print_every = c->print_every,
                         .quiet = c->quiet,
                         .share_backup = c->share_backup,
                         .log_path = c->log,
                         .overrides = c->overrides,
                         .n_overrides = c->n_overrides,
                         .class_names = (const char *const *)train.class_names,
                         .follower = c->follower,
                         .stop = &stop_requested};
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    status = cdb_train_network(tr, &train, &valid, &opt, NULL) ? 1 : 0;
    cdb_data_config_free(&d);
done:
    cdb_dataset_clear(&train);
    cdb_dataset_clear(&valid);
    if (status) cli_fail();
    cdb_trainer_free(tr);
    cdb_network_free(net);
    return status;
}
