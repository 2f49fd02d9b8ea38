/* End to end: a shipped cfg (dropback on, as shipped) trained for a short
 * seeded run on the first 4000 real Fashion-MNIST training images and
 * validated on the first 2000 test images. Chance is 10%: smallcnn must
 * reach 70% top-1 after 125 steps (it reaches about 80%, in about 10 s on
 * one core) and vit_micro 50% after 250 steps (it reaches about 63%). */
#include <stdlib.h>

#include "data.h"
#include "export.h"
#include "images.h"
#include "test.h"
#include "train.h"

#define TRAIN_IMAGES 4000
#define VALID_IMAGES 2000

static void learns(const char *cfg, int steps, float required_top1, int dropback_tensors)
{
    CHECK(have_fashion_mnist(), "Fashion-MNIST is not installed: run scripts/install_deps.sh");
    char max_batches[64];
    snprintf(max_batches, sizeof(max_batches), "net.max_batches=%d", steps);
    const char *overrides[] = {"net.max_epochs=0", max_batches, "net.burn_in=20", "net.seed=7"};
    cdb_network *net = cdb_network_load(cfg, overrides, 4);
    CHECK(net, "load %s: %s", cfg, cdb_last_error());
    data_config d;
    CHECK(cdb_data_config_load("cfg/fashion_mnist.data", &d) == 0, "%s", cdb_last_error());
    cdb_dataset train, valid;
    CHECK(cdb_dataset_read(&d, "train", &train) == 0 && cdb_dataset_read(&d, "valid", &valid) == 0, "%s", cdb_last_error());
    CHECK(train.n == 60000 && valid.n == 10000, "Fashion-MNIST sizes %d/%d", train.n, valid.n);
    train.n = TRAIN_IMAGES;
    valid.n = VALID_IMAGES;
    char backup[512];
    snprintf(backup, sizeof(backup), "%s/backup", test_tmpdir());
    train_options opt = {.backup_dir = backup, .quiet = 1};
    valid_result v;
    int status = cdb_train_network(trainer_of(net), &train, &valid, &opt, &v);
    CHECK(status == 0, "training failed: %s", cdb_last_error());
    int selected = 0;
    for (int i = 0; i < net->nparams; i++) selected += cdb_dropback_takes_part(net->params[i]);
    CHECK(selected == dropback_tensors, "the shipped cfg should have dropback on %d tensors, has %d", dropback_tensors,
          selected);
    printf("    %s, %d steps on %d images: top-1 %.2f%% on %d test images\n", cfg, trainer_of(net)->step, TRAIN_IMAGES, 100 * v.top1,
           v.count);
    CHECK(v.top1 >= required_top1, "top-1 %.2f%% is below the required %.0f%%", 100 * v.top1, 100 * required_top1);
    cdb_dataset_clear(&train);
    cdb_dataset_clear(&valid);
    cdb_data_config_free(&d);
    free_net(net);
}

static void t_smallcnn(void) { learns("cfg/smallcnn.cfg", 125, 0.70f, 3); }
/* vit_micro: the patch embedding, 4 blocks x (qkv, proj, fc1, fc2) and the head. */
static void t_vit_micro(void) { learns("cfg/vit_micro.cfg", 250, 0.50f, 18); }

/* The folder form of the same images (cdbnet export's PNG files) trains
 * smallcnn as well as the IDX files: the same 4000 training and 4000 test
 * images, 250 steps each; only the order and the augmentation streams
 * differ (a folder dataset lists its files by class, and each image of a
 * batch of image files has its own stream), so the accuracies agree within
 * seed noise, not to the bit. */
static void t_folder_as_idx(void)
{
    CHECK(have_fashion_mnist(), "Fashion-MNIST is not installed: run scripts/install_deps.sh");
    if (!cdb_image_decoder_available()) {
        printf("  (built without an image decoder: skipped)\n");
        return;
    }
    enum { N = 4000, STEPS = 250 };
    char dir[512], folder_data[600], backup[600];
    snprintf(dir, sizeof(dir), "%s/fmnist-folder", test_tmpdir());
    snprintf(folder_data, sizeof(folder_data), "%s/dataset.data", dir);
    snprintf(backup, sizeof(backup), "%s/folder-backup", test_tmpdir());
    data_config idx;
    CHECK(cdb_data_config_load("cfg/fashion_mnist.data", &idx) == 0, "%s", cdb_last_error());
    export_options ex = {.limit = N};
    CHECK(cdb_export_images(&idx, dir, &ex) == 0, "export: %s", cdb_last_error());
    float top1[2];
    for (int form = 0; form < 2; form++) {
        const char *overrides[] = {"net.max_epochs=0", "net.max_batches=250", "net.burn_in=20", "net.seed=7"};
        cdb_network *net = cdb_network_load("cfg/smallcnn.cfg", overrides, 4);
        CHECK(net, "%s", cdb_last_error());
        data_config folder;
        CHECK(form == 0 || cdb_data_config_load(folder_data, &folder) == 0, "%s", cdb_last_error());
        const data_config *d = form ? &folder : &idx;
        cdb_dataset train, valid;
        CHECK(cdb_dataset_read(d, "train", &train) == 0 && cdb_dataset_read(d, "valid", &valid) == 0, "%s", cdb_last_error());
        CHECK(cdb_dataset_check_against(&train, net) == 0 && cdb_dataset_check_against(&valid, net) == 0, "%s",
              cdb_last_error());
        if (!form) {
            train.n = N;
            valid.n = N;
        }
        CHECK(train.n == N && valid.n == N, "%d and %d images", train.n, valid.n);
        train_options opt = {.backup_dir = backup, .quiet = 1, .log_path = "none"};
        valid_result v;
        CHECK(cdb_train_network(trainer_of(net), &train, &valid, &opt, &v) == 0, "training failed: %s", cdb_last_error());
        top1[form] = v.top1;
        cdb_dataset_clear(&train);
        cdb_dataset_clear(&valid);
        if (form) cdb_data_config_free(&folder);
        free_net(net);
    }
    cdb_data_config_free(&idx);
    printf("    smallcnn, %d steps on the first %d images: top-1 %.2f%% from IDX, %.2f%% from PNG folders\n", STEPS, N,
           100 * top1[0], 100 * top1[1]);
    CHECK(top1[0] > 0.7f && fabsf(top1[1] - top1[0]) < 0.03f, "IDX %.2f%%, folder %.2f%%: more than 3 points apart",
          100 * top1[0], 100 * top1[1]);
}

void register_e2e_tests(void)
{
    test_add_tagged("e2e/smallcnn learns as well from PNG folders as from IDX", t_folder_as_idx, TEST_SLOW);
    test_add_tagged("e2e/smallcnn learns Fashion-MNIST", t_smallcnn, TEST_SLOW);
    test_add_tagged("e2e/vit_micro learns Fashion-MNIST", t_vit_micro, TEST_SLOW);
}
