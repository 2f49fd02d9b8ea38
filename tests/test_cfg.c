/* cfg errors: a table of bad cfgs, each with the message it must produce
 * (file, line, section, layer and key), and the parser's good paths. */
#include <glob.h>

#include "convolutional_layer.h"
#include "layers.h"
#include <stdlib.h>

#include "test.h"

#define NET "[net]\nbatch=2\nwidth=8\nheight=8\nchannels=1\n"
#define END "[connected]\noutput=3\nactivation=linear\n[softmax]\n"

static const struct {
    const char *text;
    const char *message;
} bad_cfgs[] = {
    {NET "[convolutional]\nfilters=abc\nsize=3\n" END, "bad.cfg:7: [convolutional] (layer 0) key 'filters': 'abc' is not an integer"},
    {NET "[convolutional]\nfilters=4\nfilterz=3\n" END, "bad.cfg:8: [convolutional] (layer 0) key 'filterz': unknown key"},
    {NET "channel_dropbak=1\n" END, "bad.cfg:6: [net] key 'channel_dropbak': unknown key"},
    {NET "[convolution]\nfilters=4\n" END, "bad.cfg:6: unknown section [convolution] (layer 0)"},
    {NET "[convolutional]\nfilters=4\nstride=0\n" END, "bad.cfg:8: [convolutional] (layer 0) key 'stride': 0 is out of range"},
    {NET "[convolutional]\nfilters=4\nsize=3\nactivation=relu7\n" END,
     "bad.cfg:9: [convolutional] (layer 0) key 'activation': 'relu7' is not one of"},
    {NET "[convolutional]\nfilters=4\nsize=11\n" END, "bad.cfg:8: [convolutional] (layer 0) key 'size': kernel 11 is larger than the padded input 8x8"},
    {NET "[convolutional]\nfilters=4\ngroups=3\n" END, "key 'groups': input channels 1 are not divisible by groups=3"},
    {NET "[convolutional]\nfilters=4\n[shortcut]\nfrom=-5\n" END, "bad.cfg:9: [shortcut] (layer 1) key 'from': -5 does not name an earlier layer"},
    {NET "[convolutional]\nfilters=4\n[maxpool]\nsize=3\nstride=3\n[shortcut]\nfrom=-2\n" END,
     "bad.cfg:12: [shortcut] (layer 2) key 'from': layer 0 has shape 4x8x8 but the previous layer has 4x3x3: the maps must "
     "be equal or one an integer multiple of the other"},
    {NET "[convolutional]\nfilters=4\n[maxpool]\nsize=2\nstride=2\n[route]\nlayers=-1,-2\n" END,
     "[route] (layer 2) key 'layers': layer 0 is 8x8 but layer 1 is 4x4"},
    {NET "[route]\nlayers=-1,x\n" END, "bad.cfg:7: [route] (layer 0) key 'layers': 'x' is not an integer"},
    {NET "[shortcut]\n" END, "bad.cfg:6: [shortcut] (layer 0): missing key 'from'"},
    {"[net]\nbatch=6\nsubdivisions=4\nwidth=8\nheight=8\nchannels=1\n" END,
     "bad.cfg:3: [net] key 'subdivisions': batch=6 is not divisible by subdivisions=4"},
    {"[net]\nbatch=2\nwidth=8\nchannels=1\n" END, "bad.cfg:1: [net]: [net] needs width, height and channels"},
    {NET "[connected]\noutput=3\n", "bad.cfg:6: the last layer must be [softmax]"},
    {NET "classes=4\n" END, "bad.cfg:6: [net] key 'classes': classes=4 but the network ends with 3 outputs (layer 1 [softmax])"},
    {NET "dropback_policy=random\n" END, "bad.cfg:6: [net] key 'dropback_policy': 'random' is not one of: bernoulli, single"},
    {NET "dropback_channel_rate=1.5\n" END, "bad.cfg:6: [net] key 'dropback_channel_rate': 1.5 is out of range [0, 1]"},
    {NET "dropback_milestones=0.6,0.3\n" END, "key 'dropback_milestones': expected two fractions"},
    {NET "learning_rate=fast\n" END, "bad.cfg:6: [net] key 'learning_rate': 'fast' is not a number"},
    {NET "[convolutional]\nfilters=4\n[avgpool]\n[scale_channels]\nfrom=-3\n" END,
     "bad.cfg:10: [scale_channels] (layer 2) key 'from': -3 does not name an earlier layer"},
    {NET "[convolutional]\nfilters=4\n[scale_channels]\nfrom=-1\n" END,
     "bad.cfg:9: [scale_channels] (layer 1) key 'from': the input (4x8x8) must be one value per channel"},
    {NET "[convolutional]\nfilters=4\n[shuffle]\ngroups=3\n" END,
     "bad.cfg:9: [shuffle] (layer 1) key 'groups': input channels 4 are not divisible by groups=3"},
    {NET "[convolutional]\nfilters=4\n[route]\nlayers=-1\ngroups=2\ngroup_id=2\n" END,
     "bad.cfg:11: [route] (layer 1) key 'group_id': 2 is not below groups=2"},
    {NET "[convolutional]\nfilters=3\n[route]\nlayers=-1\ngroups=2\n" END,
     "bad.cfg:10: [route] (layer 1) key 'groups': layer 0 has 3 channels, not divisible by groups=2"},
    {NET "[upsample]\nstride=2\n" END, "bad.cfg:6: [upsample] (layer 0) is a Darknet layer cdbnet does not implement (upsampling"},
    {NET "[crop]\ncrop_width=4\ncrop_height=4\nangle=7\n" END,
     "bad.cfg:9: [crop] (layer 0) key 'angle': not taken on [crop] (Darknet's CPU crop ignores it); use [net] angle="},
    {NET "mosaic=1\n" END, "bad.cfg:6: [net] key 'mosaic': a Darknet key cdbnet does not implement (Darknet's mosaic"},
    {NET "[convolutional]\nfilters=4\nflipped=1\n" END,
     "bad.cfg:8: [convolutional] (layer 0) key 'flipped': a Darknet key cdbnet does not implement (Darknet's flipped"},
    {NET "[convolutional]\nfilters=4\nactivation=stair\n" END,
     "key 'activation': 'stair' is a Darknet activation cdbnet does not implement"},
    {NET "[connected]\noutput=3\n[softmax]\n[connected]\noutput=2\n[softmax]\n",
     "bad.cfg:8: [softmax] (layer 1) computes the cost: it must be the last layer"},
    {NET "[connected]\noutput=classes\n[softmax]\n", "bad.cfg:7: [connected] (layer 0) key 'output': output=classes needs classes= in [net]"},
    {NET "[convolutional]\nfilters=1\n[convolutional]\nfilters=1\n[shortcut]\nfrom=-2\ndrop_connect=1\n" END,
     "bad.cfg:12: [shortcut] (layer 2) key 'drop_connect': 1 is out of range [0, 0.99]"},
    {NET "[local_avgpool]\nsize=20\npadding=0\n" END, "bad.cfg:7: [local_avgpool] (layer 0) key 'size': window 20 does not fit"},
    {NET "[convolutional]\nfilters=\x1b[2J\n" END, "key 'filters': '\\x1b[2J' is not an integer"},
    {NET "optimizer=adamw\neps=0\n" END, "bad.cfg:7: [net] key 'eps': 0 is out of range"},
    {NET "nan_policy=ignore\n" END, "bad.cfg:6: [net] key 'nan_policy': 'ignore' is not one of: stop, skip_step"},
    {NET "conv_shift=maybe\n" END, "bad.cfg:6: [net] key 'conv_shift': 'maybe' is not one of: off, on, auto"},
    {NET "conv_slice_kb=0\n" END, "bad.cfg:6: [net] key 'conv_slice_kb': 0 is out of range"},
    {NET "policy=steps\nsteps=10,20\nscales=0.1\n" END, "key 'scales': 1 scales given for 2 steps"},
    {NET "policy=constant\nsteps=10,20\n" END, "key 'steps': applies to policy=steps only; this cfg's policy is constant"},
    {NET "policy=poly\ngamma=0.5\n" END, "key 'gamma': applies to policy=exp and sig only; this cfg's policy is poly"},
    {NET "optimizer=adam\n" END, "key 'optimizer': 'adam' is not one of: sgd, adamw"},
    {NET "mean=0.5,0.5\n" END, "key 'mean': 2 values for 1 channels"},
    {NET "[connected]\noutput=3\nchannel_dropback=2\n" END, "bad.cfg:8: [connected] (layer 0) key 'channel_dropback': 2 is out of range [0, 1]"},
    {"[net\nbatch=2\n", "bad.cfg:1: malformed section header"},
    {"batch=2\n[net]\n", "bad.cfg:1: key 'batch' appears before any [section]"},
    {NET "just some words\n" END, "bad.cfg:6: expected 'key=value' or '[section]', got 'just some words'"},
    {"[convolutional]\nfilters=2\n" END, "bad.cfg:1: the first section must be [net]"},
    {"# only a comment\n", "bad.cfg: no sections found"},
    {NET "max_batches=10\nmax_epochs=2\n" END, "key 'max_epochs': give either max_batches or max_epochs, not both"},
    {NET "[softmax]\ngroups=2\n", "key 'groups': 2 is out of range [1, 1]"},
    {"[net]\nbatch=2\nwidth=512\nheight=512\nchannels=1\n[convolutional]\nfilters=10000\nsize=1\n" END,
     "bad.cfg:6: [convolutional] (layer 0): the output (10000 x 512 x 512 per image, batch 2) is too large"},
    {"[net]\nbatch=1\nwidth=65536\nheight=65536\nchannels=3\n" END, "bad.cfg:1: [net]: the input (65536 x 65536 x 3) is too large"},
};

static void t_bad_cfg_table(void)
{
    int n = (int)(sizeof(bad_cfgs) / sizeof(bad_cfgs[0]));
    for (int i = 0; i < n; i++) {
        const char *msg = net_error_from_text("bad.cfg", bad_cfgs[i].text);
        CHECK(msg, "case %d built without error; expected \"%s\"", i, bad_cfgs[i].message);
        CHECK(strstr(msg, bad_cfgs[i].message), "case %d: message \"%s\" does not contain \"%s\"", i, msg,
              bad_cfgs[i].message);
    }
}

static void t_comments_aliases_and_darknet_keys(void)
{
    cdb_network *net = net_from_text("# a comment\n[net]\nbatch=2 ; trailing comment\nwidth=8\nheight=8\nchannels=1\n"
                                     "hue=.1\nangle=7\n\n  [conv]  \nfilters = 4\nsize=3\npad=1\nactivation=silu\n"
                                     "[max]\nsize=2\n[conn]\noutput=3\nactivation=linear\n[soft]\n");
    CHECK(net, "a Darknet-flavoured cfg should build");
    /* [max] size=2 alone: Darknet's stride 1, output (8 + 1 - 2) / 1 + 1. */
    CHECK(net->n == 4 && !strcmp(net->layers[0].ops->name, "convolutional") && net->layers[1].out_w == 8, "layers");
    CHECK(net->layers[0].params[0].size == 4 * 9, "conv weights");
    cdb_network_free(net);
}

static void t_override(void)
{
    cfg_file *cfg = cdb_cfg_parse_string("o.cfg", NET "[convolutional]\nfilters=4\n" END);
    CHECK(cfg, "parse");
    CHECK(cdb_cfg_override(cfg, "net.batch=4") == 0, "net override");
    CHECK(cdb_cfg_override(cfg, "0.filters=6") == 0, "layer override");
    CHECK(cdb_cfg_override(cfg, "0.channel_dropback=0") == 0, "new key");
    CHECK(cdb_cfg_override(cfg, "7.filters=6") != 0 && strstr(cdb_last_error(), "no section '7'"), "bad index: %s",
          cdb_last_error());
    CHECK(cdb_cfg_override(cfg, "filters=6") != 0, "missing section");
    cdb_network *net = cdb_network_build(cfg);
    CHECK(net, "build after overrides: %s", cdb_last_error());
    CHECK(net->batch == 4 && net->layers[0].out_c == 6, "override values applied");
    CHECK(cdb_dropback_override(&net->layers[0].params[0]) == 0, "per-layer dropback override applied");
    cdb_network_free(net);
    CHECK(cdb_cfg_override(cfg, "0.filterz=6") == 0, "unknown key is accepted by override");
    net = cdb_network_build(cfg);
    CHECK(!net && strstr(cdb_last_error(), "o.cfg: [convolutional] (layer 0) (set on the command line) key 'filterz'"),
          "unknown key from -set must be named: %s", cdb_last_error());
    cdb_cfg_free(cfg);
}

/* The registry: each name it lists finds a type of that name with its CPU
 * code, aliases find their type, and the unknown-section message lists
 * every type. */
static void t_layer_registry(void)
{
    char names[1024];
    snprintf(names, sizeof(names), "%s", cdb_layer_type_names());
    int count = 0;
    for (char *save = NULL, *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
        const layer_ops *ops = cdb_layer_ops_find(name);
        CHECK(ops && !strcmp(ops->name, name), "'%s' is listed but not found", name);
        CHECK(ops->make && ops->forward && ops->backward && ops->takes, "[%s] lacks its CPU code", name);
        if (ops->alias) CHECK(cdb_layer_ops_find(ops->alias) == ops, "alias %s of [%s]", ops->alias, name);
        count++;
    }
    CHECK(count >= 15, "only %d layer types listed", count);
    CHECK(!cdb_layer_ops_find("convolution"), "a misspelt section is found");
    const char *msg = net_error_from_text("bad.cfg", NET "[convolution]\nfilters=4\n" END);
    CHECK(msg && strstr(msg, cdb_layer_type_names()), "the message does not list the types: %s", msg ? msg : "(built)");
}

/* The convolution policy comes from [net]: defaults, and each key taken. */
static void t_conv_policy_keys(void)
{
    cdb_network *d = net_from_text(NET END);
    CHECK(d, "build");
    CHECK(d->conv.direct == 1 && d->conv.winograd == 1 && d->conv.shift == CONV_SHIFT_AUTO &&
              d->conv.slice_bytes == 320 << 10,
          "defaults");
    cdb_network_free(d);
    const char *text = "[net]\nbatch=2\nwidth=8\nheight=8\nchannels=32\nconv_direct=0\nconv_winograd=0\n"
                       "conv_shift=on\nconv_slice_kb=64\n[convolutional]\nfilters=32\nsize=3\npad=1\n" END;
    cdb_network *n = net_from_text(text);
    CHECK(n, "build");
    CHECK(!n->conv.direct && !n->conv.winograd && n->conv.shift == CONV_SHIFT_ON && n->conv.slice_bytes == 64 << 10,
          "keys not taken");
    CHECK(!cdb_convolutional_uses_direct(&n->layers[0], n, 0), "conv_direct=0 still takes the direct kernels");
    n->conv.direct = 1;
    CHECK(cdb_convolutional_uses_direct(&n->layers[0], n, 0), "a 32-channel 3x3 layer should take the direct kernels");
    cdb_network_free(n);
}

/* A huge value is cut in messages: its first 60 bytes and its length. */
static void t_long_values_cut(void)
{
    size_t n = 200000;
    char *text = malloc(n + 256);
    CHECK(text, "malloc");
    int at = snprintf(text, 256, "[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\nmomentum=");
    memset(text + at, '9', n);
    snprintf(text + at + n, 128, "x\n[connected]\noutput=2\n[softmax]\n");
    const char *why = net_error_from_text("long.cfg", text);
    free(text);
    CHECK(why && strstr(why, "... (200001 bytes)' is not a number") && strlen(why) < 400, "%.300s", why ? why : "built");
}

void register_cfg_tests(void)
{
    test_add("cfg/a huge value is cut in messages", t_long_values_cut);
    test_add("cfg/the convolution policy keys", t_conv_policy_keys);
    test_add("cfg/the layer registry finds every type it lists", t_layer_registry);
    test_add("cfg/bad cfgs give file, line, section and key", t_bad_cfg_table);
    test_add("cfg/comments, aliases, ignored Darknet keys", t_comments_aliases_and_darknet_keys);
    test_add("cfg/-set overrides", t_override);
}

/* Every cfg we ship parses and builds. */
static void t_shipped_cfgs_build(void)
{
    glob_t g;
    CHECK(glob("cfg/*.cfg", 0, NULL, &g) == 0 && g.gl_pathc >= 2, "no cfg/*.cfg found (run from the repository root)");
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *small[] = {"net.batch=2", "net.subdivisions=1"}; /* keep the big ones small */
        cdb_network *net = cdb_network_load(g.gl_pathv[i], small, 2);
        CHECK(net, "%s: %s", g.gl_pathv[i], cdb_last_error());
        CHECK(net->data_path, "%s names no .data file", g.gl_pathv[i]);
        cdb_network_free(net);
    }
    globfree(&g);
}

void register_shipped_cfg_tests(void) { test_add_tagged("cfg/every shipped cfg builds", t_shipped_cfgs_build, TEST_SLOW); }
