/* A program on cdbnet's public header alone: build a network from a cfg,
 * train it a few steps on random images, predict, and, given a .data file,
 * train a short run with a progress callback and evaluate it.
 *
 *   cc train_steps.c -Iinclude -L. -lcdbnet -Wl,-rpath,'$ORIGIN' -o train_steps
 *   ./train_steps cfg/smallcnn.cfg [cfg/fashion_mnist.data]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cdbnet.h"

static int on_progress(const cdb_progress *p, void *user)
{
    (void)user;
    if (p->validation)
        printf("validation at step %d: top-1 %.2f%%, loss %.4f\n", p->step, 100 * p->validation->top1,
               p->validation->loss);
    else
        printf("step %d/%d: loss %.4f\n", p->step, p->max_steps, p->loss);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CFG [DATA]\n", argv[0]);
        return 2;
    }
    cdb_set_threads(1);
    const char *overrides[] = {"net.max_batches=3", "net.batch=8", "net.subdivisions=1"};
    cdb_network *net = cdb_network_load(argv[1], overrides, 3);
    if (!net) {
        fprintf(stderr, "error: %s\n", cdb_last_error());
        return 1;
    }
    cdb_trainer *tr = cdb_trainer_new(net);
    int batch = cdb_network_batch(net), inputs = cdb_network_inputs(net), classes = cdb_network_classes(net);
    float *images = malloc(sizeof(float) * batch * inputs), *probs = malloc(sizeof(float) * classes);
    int *labels = malloc(sizeof(int) * batch);
    int status = 1;
    if (!tr) goto fail;
    if (!images || !probs || !labels) goto done;
    srand(1);
    for (int i = 0; i < batch * inputs; i++) images[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int i = 0; i < batch; i++) labels[i] = i % classes;
    for (int step = 1; step <= 2; step++) {
        float loss = cdb_train_step(tr, images, labels);
        if (isnan(loss)) goto fail;
        printf("random images, step %d: loss %.4f\n", step, loss);
    }
    if (cdb_predict(net, images, 1, probs)) goto fail;
    float sum = 0;
    for (int k = 0; k < classes; k++) sum += probs[k];
    printf("predicted: %d classes, probabilities summing to %.4f\n", classes, sum);
    if (argc > 2) {
        cdb_dataset *train = cdb_dataset_load(argv[2], "train", net);
        cdb_dataset *valid = train ? cdb_dataset_load(argv[2], "valid", net) : NULL;
        cdb_train_options opt = {.backup_dir = argc > 3 ? argv[3] : "backup", .log_path = "none", .quiet = 1,
                                 .progress = on_progress};
        cdb_metrics m;
        int bad = !valid || cdb_train(tr, train, valid, &opt, &m) || cdb_evaluate(net, valid, &m);
        if (!bad) printf("evaluated %d images: top-1 %.2f%%, top-5 %.2f%%\n", m.count, 100 * m.top1, 100 * m.top5);
        cdb_dataset_free(train);
        cdb_dataset_free(valid);
        if (bad) goto fail;
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "error: %s\n", cdb_last_error());
done:
    free(images);
    free(probs);
    free(labels);
    cdb_trainer_free(tr);
    cdb_network_free(net);
    return status;
}
