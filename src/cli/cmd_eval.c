/* cdbnet valid CFG WEIGHTS (accuracy and loss on the validation set) and
 * cdbnet predict CFG WEIGHTS IMAGE... (class probabilities). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "cli.h"
#include "data.h"
#include "model.h"
#include "train.h"
#include "utils.h"

int cmd_valid(const cli *c)
{
    if (c->n_positional != 2) {
        fprintf(stderr, "usage: cdbnet valid CFG WEIGHTS [options]\n");
        return 2;
    }
    cdb_network *net = cli_load_network(c->positional[0], c);
    if (!net) return cli_fail();
    data_config d;
    cdb_dataset valid = {0};
    int status = 1, K = cdb_network_classes(net);
    char **names = NULL, backup[4096] = "";
    long *confusion = NULL;
    float *scores = NULL;
    if (cdb_weights_load(net, c->positional[1]) || cli_load_data_config(net, c, &d)) goto done;
    if (cdb_dataset_read(&d, "valid", &valid) || cdb_dataset_check_against(&valid, net)) {
        cdb_data_config_free(&d);
        goto done;
    }
    /* the class names: a folder dataset's, or the names= file's */
    if (!valid.class_names && d.names && !(names = cdb_data_load_names(d.names, K))) {
        cdb_data_config_free(&d);
        goto done;
    }
    snprintf(backup, sizeof(backup), "%s", d.backup);
    cdb_data_config_free(&d);
    confusion = cdb_xcalloc((size_t)K * (K + 1), sizeof(long));
    /* [logistic] (multi-label): every image's outputs, for the average precisions */
    int multi_label = !strcmp(cdb_network_output_type(net), "logistic");
    if (multi_label && !(scores = cdb_xcalloc((size_t)valid.n * K, sizeof(float)))) goto done;
    valid_result v;
    if (!confusion || cdb_validate_confusion(net, &valid, &v, confusion, scores)) goto done;
    printf("%s on %s: top-1 %.2f%%", c->positional[1], valid.name, 100 * v.top1);
    if (K > 5) printf("  top-5 %.2f%%", 100 * v.top5);
    printf("  loss %.4f  (%d images)\n", v.loss, v.count);
    if (v.nonfinite)
        printf("warning: %d of %d images had a non-finite output (counted wrong): the weights may have diverged\n",
               v.nonfinite, v.count);
    const char *const *shown = (const char *const *)(valid.class_names ? valid.class_names : names);
    if (multi_label)
        cdb_print_ap_report(stdout, scores, valid.n, K, valid.labels, shown);
    else
        cdb_print_class_report(stdout, confusion, K, shown);
    /* the matrix beside the run's other files: BACKUP/CFGNAME_confusion.csv (.png) */
    char base[256], stem[4400];
    cdb_cfg_basename(cdb_network_cfg_path(net), base, sizeof(base));
    snprintf(stem, sizeof(stem), "%s/%s_confusion", backup, base);
    if (cdb_make_dir(backup) || cdb_write_confusion(stem, confusion, K, shown, c->positional[1])) goto done;
    printf("confusion matrix: %s.csv%s\n", stem, cdb_gnuplot_available() ? " (heat map: .png)" : "");
    status = 0;
done:
    free(confusion);
    free(scores);
    if (names) cdb_data_free_names(names, K);
    cdb_dataset_clear(&valid);
    if (status) cli_fail();
    cdb_network_free(net);
    return status;
}

/* 0, or -1 with the error recorded when an output is not finite */
static int print_top(const float *probs, int classes, int top, const char *label, char **names)
{
    for (int k = 0; k < classes; k++)
        if (!isfinite(probs[k])) {
            cdb_set_error("%s: the network's output for class %d is not finite (%g): the weights may have diverged",
                          label, k, probs[k]);
            return -1;
        }
    printf("%s:\n", label);
    int shown[64] = {0};
    if (top > classes) top = classes;
    if (top > 64) top = 64;
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int k = 0; k < classes; k++) {
            int used = 0;
            for (int s = 0; s < t; s++) used |= shown[s] == k;
            if (!used && (best < 0 || probs[k] > probs[best])) best = k;
        }
        shown[t] = best;
        printf("  class %3d  %6.2f%%  %s\n", best, 100 * probs[best], names ? names[best] : "");
    }
    return 0;
}

int cmd_predict(const cli *c)
{
    if (c->n_positional < 2 || (c->n_positional == 2 && c->index < 0)) {
        fprintf(stderr, "usage: cdbnet predict CFG WEIGHTS IMAGE... | -index N [options]\n");
        return 2;
    }
    cdb_network *net = cli_load_network(c->positional[0], c);
    if (!net) return cli_fail();
    int status = 1;
    int classes = cdb_network_classes(net);
    float *image = cdb_xcalloc((size_t)cdb_network_inputs(net), sizeof(float));
    float *probs = cdb_xcalloc((size_t)classes, sizeof(float));
    char **names = NULL;
    data_config d = {0};
    if (!image || !probs) goto done;
    int want_data = c->data || cdb_network_data_path(net);
    int have_data = want_data && cli_load_data_config(net, c, &d) == 0;
    if (!have_data && want_data) goto done;
    if (have_data && d.names && !(names = cdb_data_load_names(d.names, classes))) goto done;
    if (cdb_weights_load(net, c->positional[1])) goto done;
    if (c->index >= 0) {
        cdb_dataset valid = {0};
        if (!have_data) {
            cdb_set_error("-index needs a dataset: give [net] data= or -data");
            goto done;
        }
        int bad = cdb_dataset_read(&d, "valid", &valid) || cdb_dataset_check_against(&valid, net);
        if (!bad && c->index >= valid.n) {
            cdb_set_error("-index %d: the validation set has %d items", c->index, valid.n);
            bad = 1;
        }
        if (bad) {
            cdb_dataset_clear(&valid);
            goto done;
        }
        int label;
        if (cdb_dataset_input(&valid, c->index, net, image, &label) || cdb_predict(net, image, 1, probs)) {
            cdb_dataset_clear(&valid);
            goto done;
        }
        char title[128];
        snprintf(title, sizeof(title), "item %d of %s (label %d)", c->index, valid.name, label);
        int bad_output = print_top(probs, classes, c->top, title, names);
        cdb_dataset_clear(&valid);
        if (bad_output) goto done;
    }
    for (int i = 2; i < c->n_positional; i++) {
        if (cdb_image_file_input(net, c->positional[i], image) || cdb_predict(net, image, 1, probs)) goto done;
        if (print_top(probs, classes, c->top, c->positional[i], names)) goto done;
    }
    status = 0;
done:
    free(image);
    free(probs);
    cdb_data_free_names(names, classes);
    cdb_data_config_free(&d);
    if (status) cli_fail();
    cdb_network_free(net);
    return status;
}
