/* End to end: cfg/smallcnn.cfg (dropback on, as shipped) trained for a short
 * seeded run on the first 4000 real Fashion-MNIST training images, validated
 * on the first 2000 test images. Chance is 10%; the run must reach 70%
 * top-1 (it reaches about 80% in about 10 s on one core). */
#include <stdlib.h>

#include "data.h"
#include "test.h"
#include "train.h"

#define TRAIN_IMAGES 4000
#define VALID_IMAGES 2000
#define REQUIRED_TOP1 0.70f

static void t_smallcnn_fashion_mnist(void)
{
    CHECK(have_fashion_mnist(), "Fashion-MNIST is not installed: run scripts/install_deps.sh");
    const char *overrides[] = {"net.max_epochs=0", "net.max_batches=125", "net.burn_in=20", "net.seed=7"};
    cdb_network *net = cdb_network_load("cfg/smallcnn.cfg", overrides, 4);
    CHECK(net, "load cfg/smallcnn.cfg: %s", cdb_last_error());
    data_config d;
    CHECK(data_config_load("cfg/fashion_mnist.data", &d) == 0, "%s", cdb_last_error());
    cdb_dataset train, valid;
    CHECK(dataset_load(&d, "train", &train) == 0 && dataset_load(&d, "valid", &valid) == 0, "%s", cdb_last_error());
    CHECK(train.n == 60000 && valid.n == 10000, "Fashion-MNIST sizes %d/%d", train.n, valid.n);
    train.n = TRAIN_IMAGES;
    valid.n = VALID_IMAGES;
    char backup[512];
    snprintf(backup, sizeof(backup), "%s/backup", test_tmpdir());
    train_options opt = {backup, NULL, 0, 1};
    valid_result v;
    int status = train_network(net, &train, &valid, &opt, &v);
    CHECK(status == 0, "training failed: %s", cdb_last_error());
    long selected = 0;
    for (int i = 0; i < net->nparams; i++) selected += net->params[i]->dropback;
    CHECK(selected == 3, "the shipped cfg should have dropback on 3 tensors, has %ld", selected);
    printf("    smallcnn, %d steps on %d images: top-1 %.2f%% on %d test images\n", net->step, TRAIN_IMAGES,
           100 * v.top1, v.count);
    CHECK(v.top1 >= REQUIRED_TOP1, "top-1 %.2f%% is below the required %.0f%%", 100 * v.top1, 100 * REQUIRED_TOP1);
    dataset_free(&train);
    dataset_free(&valid);
    data_config_free(&d);
    cdb_network_free(net);
}

void register_e2e_tests(void) { test_add("e2e/smallcnn learns Fashion-MNIST", t_smallcnn_fashion_mnist); }
