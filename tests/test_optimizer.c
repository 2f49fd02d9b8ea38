/* The optimizers against the PyTorch update rules, computed here
 * independently in double precision over several steps. */
#include <stdlib.h>

#include "optimizer.h"
#include "train.h"
#include "test.h"

#define N 7

static cdb_param make_param(float *w, float *g)
{
    cdb_param p;
    memset(&p, 0, sizeof(p));
    p.value = w;
    p.grad = g;
    p.size = N;
    p.decay = 1;
    p.rows = 1;
    p.channels = N;
    p.inner = 1;
    return p;
}

static void run_sgd(int nesterov, float momentum, float decay)
{
    float w[N], g[N], m[N] = {0}, v[N] = {0};
    double ref_w[N], ref_buf[N] = {0};
    fill_normal(w, N, 1, 1.f);
    for (int i = 0; i < N; i++) ref_w[i] = w[i];
    cdb_param p = make_param(w, g);
    cdb_moments s = {m, v};
    train_config cfg = {0};
    cfg.decay_norm_bias = 1; /* decay on every tensor, as the reference */
    cfg.optimizer = OPT_SGD;
    cfg.momentum = momentum;
    cfg.decay = decay;
    cfg.nesterov = nesterov;
    float lr = 0.05f;
    for (int step = 1; step <= 4; step++) {
        fill_normal(g, N, 10 + step, 1.f);
        for (int i = 0; i < N; i++) {
            /* torch.optim.SGD, dampening 0 */
            double d = g[i] + (double)decay * ref_w[i];
            if (momentum != 0) {
                ref_buf[i] = step == 1 ? d : momentum * ref_buf[i] + d;
                d = nesterov ? d + momentum * ref_buf[i] : ref_buf[i];
            }
            ref_w[i] -= lr * d;
        }
        cdb_optimizer_update_param(&p, &s, &cfg, lr, step, NULL, DROPBACK_AXIS_IN);
    }
    for (int i = 0; i < N; i++)
        CHECK(fabs(w[i] - ref_w[i]) <= 1e-5 * fabs(ref_w[i]) + 1e-6, "w[%d] = %.7g, PyTorch rule gives %.7g", i, w[i],
              ref_w[i]);
}

static void t_sgd_plain(void) { run_sgd(0, 0.f, 0.f); }
static void t_sgd_momentum_decay(void) { run_sgd(0, 0.9f, 5e-4f); }
static void t_sgd_nesterov(void) { run_sgd(1, 0.9f, 1e-3f); }

static void t_adamw(void)
{
    float w[N], g[N], m[N] = {0}, v[N] = {0};
    double ref_w[N], ref_m[N] = {0}, ref_v[N] = {0};
    fill_normal(w, N, 2, 1.f);
    for (int i = 0; i < N; i++) ref_w[i] = w[i];
    cdb_param p = make_param(w, g);
    cdb_moments s = {m, v};
    train_config cfg = {0};
    cfg.decay_norm_bias = 1; /* decay on every tensor, as the reference */
    cfg.optimizer = OPT_ADAMW;
    cfg.beta1 = 0.9f;
    cfg.beta2 = 0.999f;
    cfg.eps = 1e-8f;
    cfg.decay = 0.05f;
    float lr = 1e-3f;
    for (int step = 1; step <= 5; step++) {
        fill_normal(g, N, 20 + step, 1.f);
        for (int i = 0; i < N; i++) {
            /* torch.optim.AdamW */
            ref_w[i] *= 1 - (double)lr * cfg.decay;
            ref_m[i] = 0.9 * ref_m[i] + 0.1 * g[i];
            ref_v[i] = 0.999 * ref_v[i] + 0.001 * (double)g[i] * g[i];
            double mhat = ref_m[i] / (1 - pow(0.9, step)), vhat = ref_v[i] / (1 - pow(0.999, step));
            ref_w[i] -= lr * mhat / (sqrt(vhat) + 1e-8);
        }
        cdb_optimizer_update_param(&p, &s, &cfg, lr, step, NULL, DROPBACK_AXIS_IN);
    }
    for (int i = 0; i < N; i++)
        CHECK(fabs(w[i] - ref_w[i]) <= 1e-5 * fabs(ref_w[i]) + 1e-6, "w[%d] = %.7g, PyTorch rule gives %.7g", i, w[i],
              ref_w[i]);
}

static void t_no_decay_on_norms_and_biases(void)
{
    cdb_network *net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\ndecay=0.1\ndecay_norm_bias=0\n"
                                     "[convolutional]\nfilters=2\nsize=3\nbatch_normalize=1\nactivation=relu\n"
                                     "[connected]\noutput=3\nactivation=linear\n[softmax]\n");
    cdb_trainer *tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && tr, "build");
    for (int i = 0; i < net->nparams; i++)
        CHECK((cdb_optimizer_decay(net->params[i], &tr->cfg) != 0) == net->params[i]->eligible,
              "param %d (%s): decay %g", i, net->params[i]->name, cdb_optimizer_decay(net->params[i], &tr->cfg));
    cdb_trainer_free(tr);
    cdb_network_free(net);
}

static void t_lr_policies(void)
{
    cdb_network *net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\nlearning_rate=0.1\n"
                                     "policy=steps\nsteps=10,20\nscales=0.5,0.1\nmax_batches=30\nburn_in=4\n"
                                     "[connected]\noutput=3\nactivation=linear\n[softmax]\n");
    cdb_trainer *tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && tr, "build");
    tr->step = 0;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.025f) < 1e-7f, "burn-in step 1 of 4: %g", cdb_trainer_learning_rate(tr));
    tr->step = 9;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.1f) < 1e-7f, "before the first step");
    tr->step = 10;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.05f) < 1e-7f, "after the first step");
    tr->step = 25;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.005f) < 1e-7f, "after the second step");
    tr->cfg.policy = POLICY_COSINE;
    tr->step = 4;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.1f) < 1e-6f, "cosine starts at the full rate after burn-in");
    tr->step = 17;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.05f) < 1e-6f, "cosine halfway: %g", cdb_trainer_learning_rate(tr));
    tr->step = 30;
    CHECK(fabsf(cdb_trainer_learning_rate(tr)) < 1e-6f, "cosine ends at learning_rate_min");
    tr->cfg.policy = POLICY_POLY;
    tr->cfg.power = 2;
    tr->step = 15;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.025f) < 1e-6f, "poly: %g", cdb_trainer_learning_rate(tr));
    cdb_trainer_free(tr);
    cdb_network_free(net);
    /* Steps as fractions of the training length, resolved when the length
     * is known (here by max_epochs: 100 images / batch 2 = 50 steps an
     * epoch, 4 epochs). */
    net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\nlearning_rate=0.1\n"
                        "policy=steps\nsteps=0.3,0.6,0.85\nscales=0.1,0.1,0.1\nmax_epochs=4\n"
                        "[connected]\noutput=3\nactivation=linear\n[softmax]\n");
    tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && tr && tr->cfg.steps_fractional, "fractional steps");
    CHECK(cdb_trainer_resolve_length(tr, 100) == 0 && tr->cfg.max_batches == 200, "length");
    CHECK(tr->cfg.steps[0] == 60 && tr->cfg.steps[1] == 120 && tr->cfg.steps[2] == 170, "steps %d %d %d",
          tr->cfg.steps[0], tr->cfg.steps[1], tr->cfg.steps[2]);
    tr->step = 59;
    float before = cdb_trainer_learning_rate(tr);
    tr->step = 60;
    CHECK(before == 0.1f && fabsf(cdb_trainer_learning_rate(tr) - 0.01f) < 1e-8f, "the first drop at step 60");
    tr->step = 199;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 1e-4f) < 1e-9f, "three drops by the end");
    cdb_trainer_free(tr);
    cdb_network_free(net);
    /* Darknet's policies, with its batch number (step + 1). */
    net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\nlearning_rate=0.1\npolicy=step\nstep=10\n"
                        "scale=0.5\nmax_batches=100\n[connected]\noutput=3\nactivation=linear\n[softmax]\n");
    tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && tr, "policy=step");
    tr->step = 8;
    float lr8 = cdb_trainer_learning_rate(tr);
    tr->step = 9;
    CHECK(lr8 == 0.1f && fabsf(cdb_trainer_learning_rate(tr) - 0.05f) < 1e-8f, "step: %g then %g", lr8,
          cdb_trainer_learning_rate(tr));
    tr->cfg.policy = POLICY_EXP;
    tr->cfg.gamma = 0.9f;
    tr->step = 1;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.1f * 0.81f) < 1e-7f, "exp: %g", cdb_trainer_learning_rate(tr));
    tr->cfg.policy = POLICY_SIG;
    tr->cfg.step = 50;
    tr->step = 49;
    CHECK(fabsf(cdb_trainer_learning_rate(tr) - 0.05f) < 1e-7f, "sig at its midpoint: %g", cdb_trainer_learning_rate(tr));
    cdb_trainer_free(tr);
    cdb_network_free(net);
    /* AlexeyAB's sgdr: cycles of 10, then 20 steps (batch numbers 1-10,
     * 11-30), each a cosine from learning_rate to learning_rate_min */
    net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\nlearning_rate=0.1\npolicy=sgdr\n"
                        "sgdr_cycle=10\nlearning_rate_min=0.001\nmax_batches=100\n[connected]\noutput=3\n[softmax]\n");
    tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && tr && tr->cfg.sgdr_mult == 2, "policy=sgdr");
    const int steps[5] = {0, 4, 9, 10, 29};
    const double want[5] = {0.001 + 0.0495 * (1 + cos(M_PI / 10)), 0.001 + 0.0495, 0.001,
                            0.001 + 0.0495 * (1 + cos(M_PI / 20)), 0.001};
    for (int k = 0; k < 5; k++) {
        tr->step = steps[k];
        CHECK(fabs(cdb_trainer_learning_rate(tr) - want[k]) < 1e-7, "sgdr at step %d: %g, want %g", steps[k],
              cdb_trainer_learning_rate(tr), want[k]);
    }
    cdb_trainer_free(tr);
    cdb_network_free(net);
    net = net_from_text("[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\npolicy=sgdr\n[connected]\noutput=3\n[softmax]\n");
    tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(net && fabsf(tr->cfg.learning_rate_min - 1e-5f) < 1e-12f, "sgdr: Darknet's learning_rate_min 1e-5");
    cdb_trainer_free(tr);
    cdb_network_free(net);
    const char *msg = net_error_from_text("bad.cfg", "[net]\nbatch=2\nwidth=4\nheight=4\nchannels=1\npolicy=steps\n"
                                                     "steps=0.3,100\nscales=0.1,0.1\n[connected]\noutput=3\n[softmax]\n");
    CHECK(msg && strstr(msg, "bad.cfg:7: [net] key 'steps': '0.3' is neither a step number"), "mixed steps: %s", msg);
}

/* Subdivisions accumulate to the same gradient as one big forward (batch
 * norm excluded: its statistics are per forward by design). */
static void t_subdivisions_accumulate(void)
{
    const char *layers = "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
                         "[connected]\noutput=4\nactivation=linear\n[softmax]\n";
    char a_cfg[512], b_cfg[512];
    snprintf(a_cfg, sizeof(a_cfg), "[net]\nbatch=8\nsubdivisions=1\nwidth=5\nheight=5\nchannels=1\nmomentum=0.9\n%s", layers);
    snprintf(b_cfg, sizeof(b_cfg), "[net]\nbatch=8\nsubdivisions=4\nwidth=5\nheight=5\nchannels=1\nmomentum=0.9\n%s", layers);
    cdb_network *a = net_from_text(a_cfg), *b = net_from_text(b_cfg);
    cdb_trainer *ta = a ? cdb_trainer_new(a) : NULL, *tb = b ? cdb_trainer_new(b) : NULL;
    CHECK(ta && tb, "build");
    float images[8 * 25];
    int labels[8];
    fill_normal(images, 8 * 25, 4, 1.f);
    for (int i = 0; i < 8; i++) labels[i] = i % 4;
    float la = cdb_trainer_run_step(ta, images, labels), lb = cdb_trainer_run_step(tb, images, labels);
    CHECK(fabsf(la - lb) < 1e-5f, "losses %g vs %g", la, lb);
    for (int i = 0; i < a->nparams; i++)
        for (size_t e = 0; e < a->params[i]->size; e++)
            CHECK(fabsf(a->params[i]->grad[e] - b->params[i]->grad[e]) < 1e-5f, "grad %d[%zu]", i, e);
    cdb_trainer_free(ta);
    cdb_trainer_free(tb);
    cdb_network_free(a);
    cdb_network_free(b);
}

/* The optimizer's state is a trainer's: a second trainer on a network that
 * another has trained starts with zero momentum, exactly as a trainer on
 * a fresh network holding the same weights. */
static void t_trainer_owns_momentum(void)
{
    const char *text = "[net]\nbatch=4\nwidth=5\nheight=5\nchannels=1\nmomentum=0.9\nlearning_rate=0.1\n"
                       "[convolutional]\nfilters=3\nsize=3\npad=1\nactivation=relu\n"
                       "[connected]\noutput=4\nactivation=linear\n[softmax]\n";
    cdb_network *a = net_from_text(text), *b = net_from_text(text);
    CHECK(a && b, "build");
    float images[4 * 25];
    int labels[4] = {0, 1, 2, 3};
    fill_normal(images, 4 * 25, 8, 1.f);
    cdb_trainer *first = cdb_trainer_new(a);
    CHECK(first, "%s", cdb_last_error());
    for (int s = 0; s < 3; s++) CHECK(isfinite(cdb_trainer_run_step(first, images, labels)), "step %d", s);
    int moving = 0;
    for (size_t e = 0; e < a->params[0]->size; e++) moving += first->moments[0].m1[e] != 0;
    CHECK(moving > 0, "the first trainer's momentum is zero");
    for (int i = 0; i < a->nparams; i++) memcpy(b->params[i]->value, a->params[i]->value, a->params[i]->size * sizeof(float));
    cdb_trainer *second = cdb_trainer_new(a), *fresh = cdb_trainer_new(b);
    CHECK(second && fresh && !second->moments[0].m1, "a new trainer holds no state before its first step");
    CHECK(cdb_trainer_run_step(second, images, labels) == cdb_trainer_run_step(fresh, images, labels), "losses differ");
    for (int i = 0; i < a->nparams; i++)
        CHECK(!memcmp(a->params[i]->value, b->params[i]->value, a->params[i]->size * sizeof(float)),
              "tensor %d: the second trainer's step used the first one's momentum", i);
    cdb_trainer_free(first);
    cdb_trainer_free(second);
    cdb_trainer_free(fresh);
    cdb_network_free(a);
    cdb_network_free(b);
}

/* clip_grad_norm: the global L2 norm of the gradients before clipping,
 * every gradient scaled by max_norm / (norm + 1e-6) when that is below 1
 * (PyTorch's clip_grad_norm_), before ChannelDropBack's masks: with
 * dropback on, the norm is still that of the unmasked gradient. */
static void t_clip_grad_norm(void)
{
    const char *layers = "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                         "[connected]\noutput=3\nactivation=linear\n[softmax]\n";
    const char *head = "[net]\nbatch=4\nwidth=5\nheight=5\nchannels=1\nlearning_rate=0.1\nseed=5\nmax_batches=4\n";
    const char *always = "channel_dropback=1\ndropback_layer_rate=1\ndropback_layer_rate_init=1\ndropback_skip=0\n";
    char text[4][1024];
    snprintf(text[0], sizeof(text[0]), "%s%s", head, layers);                            /* no clipping */
    snprintf(text[1], sizeof(text[1]), "%sclip_grad_norm=0.05\n%s", head, layers);       /* clips */
    snprintf(text[2], sizeof(text[2]), "%sclip_grad_norm=0.05\n%s%s", head, always, layers); /* clips, then masks */
    snprintf(text[3], sizeof(text[3]), "%sclip_grad_norm=1000\n%s", head, layers);       /* within the bound */
    cdb_network *net[4];
    cdb_trainer *tr[4];
    for (int v = 0; v < 4; v++) {
        net[v] = net_from_text(text[v]);
        tr[v] = net[v] ? cdb_trainer_new(net[v]) : NULL;
        CHECK(tr[v], "build %d: %s", v, cdb_last_error());
        CHECK(v == 0 || tr[v]->cfg.clip_grad_norm > 0, "clip_grad_norm read");
    }
    float images[4 * 25];
    int labels[4] = {0, 1, 2, 0};
    fill_normal(images, 4 * 25, 12, 1.f);
    for (int v = 0; v < 4; v++) CHECK(isfinite(cdb_trainer_run_step(tr[v], images, labels)), "step %d", v);
    /* the unclipped, unmasked gradient of the plain network */
    double sum = 0;
    for (int i = 0; i < net[0]->nparams; i++) {
        double t = 0;
        for (size_t k = 0; k < net[0]->params[i]->size; k++) t += (double)net[0]->params[i]->grad[k] * net[0]->params[i]->grad[k];
        sum += t;
    }
    double norm = sqrt(sum);
    float coef = (float)(0.05 / (norm + 1e-6));
    CHECK(coef < 1.f && norm > 0.1, "the test needs a gradient norm above 0.05: %g", norm);
    CHECK(tr[0]->grad_norm == 0, "no clipping, no norm: %g", tr[0]->grad_norm);
    for (int v = 1; v < 4; v++) CHECK(tr[v]->grad_norm == norm, "variant %d: norm %.9g, want %.9g", v, tr[v]->grad_norm, norm);
    int dropped = 0;
    for (int i = 0; i < net[0]->nparams; i++)
        for (size_t k = 0; k < net[0]->params[i]->size; k++) {
            float g = net[0]->params[i]->grad[k];
            CHECK(net[1]->params[i]->grad[k] == g * coef, "tensor %d [%zu]: %g, want %g x %g", i, k,
                  net[1]->params[i]->grad[k], g, coef);
            CHECK(net[3]->params[i]->grad[k] == g, "tensor %d [%zu]: scaled though within the bound", i, k);
            dropped += net[2]->params[i]->grad[k] == 0 && g != 0;
        }
    CHECK(dropped > 0, "the masks dropped nothing after clipping");
    for (int v = 0; v < 4; v++) {
        cdb_trainer_free(tr[v]);
        cdb_network_free(net[v]);
    }
    snprintf(text[0], sizeof(text[0]), "%sclip_grad_norm=-1\n%s", head, layers);
    const char *msg = net_error_from_text("clip.cfg", text[0]);
    CHECK(msg && strstr(msg, "clip.cfg:9: [net] key 'clip_grad_norm'"), "a negative bound: %s", msg ? msg : "built");
}

/* class_weights: PyTorch's CrossEntropyLoss(weight=w, label_smoothing=e),
 * mean reduction: sum_i sum_c w_c t_ic (-log p_ic) / sum_i w_{y_i} with
 * t = (1 - e) one-hot + e / K; its gradient with respect to the logits,
 * (S_i p_ic - w_c t_ic) / D, checked against the closed form and
 * numerically. */
static void t_class_weights(void)
{
    const char *text = "[net]\nbatch=4\nsubdivisions=2\nwidth=2\nheight=2\nchannels=1\nlearning_rate=0\nmomentum=0\n"
                       "decay=0\nlabel_smoothing=0.1\nclass_weights=0.5, 2, 1\n"
                       "[connected]\noutput=3\nactivation=linear\n[softmax]\n";
    cdb_network *net = net_from_text(text);
    cdb_trainer *tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(tr && tr->class_weights && tr->class_weights[1] == 2.f, "build: %s", cdb_last_error());
    float images[4 * 4];
    int labels[4] = {0, 1, 2, 1};
    fill_normal(images, 16, 21, 1.f);
    const float w[3] = {0.5f, 2.f, 1.f};
    const double eps = 0.1;
    /* the logits, from the connected layer's weights and biases */
    cdb_layer *fc = &net->layers[0];
    const float *W = fc->params[0].name[0] == 'w' ? fc->params[0].value : fc->params[1].value;
    const float *B = fc->params[0].name[0] == 'w' ? fc->params[1].value : fc->params[0].value;
    double want = 0, D = 0, g_want[4][3];
    for (int i = 0; i < 4; i++) D += w[labels[i]];
    for (int i = 0; i < 4; i++) {
        double z[3], m = -1e30, sum = 0, p[3], t[3], S = 0;
        for (int c = 0; c < 3; c++) {
            z[c] = B[c];
            for (int k = 0; k < 4; k++) z[c] += (double)W[c * 4 + k] * images[i * 4 + k];
            m = z[c] > m ? z[c] : m;
        }
        for (int c = 0; c < 3; c++) sum += exp(z[c] - m);
        for (int c = 0; c < 3; c++) {
            p[c] = exp(z[c] - m) / sum;
            t[c] = (c == labels[i] ? 1 - eps : 0) + eps / 3;
            S += w[c] * t[c];
            want += w[c] * t[c] * -log(p[c]) / D;
        }
        for (int c = 0; c < 3; c++) g_want[i][c] = (S * p[c] - w[c] * t[c]) / D;
    }
    /* the gradient of the loss with respect to the weights, from the logits' */
    double gw_want[3 * 4] = {0};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 4; k++) gw_want[c * 4 + k] += g_want[i][c] * images[i * 4 + k];
    float loss = cdb_trainer_run_step(tr, images, labels);
    CHECK(fabs(loss - want) <= 1e-5 * fabs(want), "loss %.7g, PyTorch's weighted mean gives %.7g", loss, want);
    cdb_param *pw = fc->params[0].name[0] == 'w' ? &fc->params[0] : &fc->params[1];
    float grad[12];
    memcpy(grad, pw->grad, sizeof(grad));
    for (int k = 0; k < 12; k++)
        CHECK(fabs(grad[k] - gw_want[k]) <= 1e-5 * (fabs(gw_want[k]) + 1e-3), "dL/dW[%d] %.7g, closed form %.7g", k,
              grad[k], gw_want[k]);
    /* numerically: the loss of the next steps (learning rate 0: the weights stay) */
    for (int k = 0; k < 12; k += 5) {
        float keep = pw->value[k], h = 1e-2f;
        pw->value[k] = keep + h;
        double up = cdb_trainer_run_step(tr, images, labels);
        pw->value[k] = keep - h;
        double down = cdb_trainer_run_step(tr, images, labels);
        pw->value[k] = keep;
        double numeric = (up - down) / (2 * h);
        CHECK(fabs(numeric - grad[k]) <= 2e-3 * (fabs(grad[k]) + 1e-2), "dL/dW[%d]: %.6g numerically, %.6g", k, numeric,
              grad[k]);
    }
    cdb_trainer_free(tr);
    cdb_network_free(net);
    /* bad values, named */
    const char *head = "[net]\nbatch=2\nwidth=2\nheight=2\nchannels=1\n";
    const struct {
        const char *key, *layers, *want;
    } bad[] = {
        {"class_weights=1,2", "[connected]\noutput=3\n[softmax]\n", "2 weights for 3 classes"},
        {"class_weights=1,-2,1", "[connected]\noutput=3\n[softmax]\n", "class 1 is -2: each must be finite and not negative"},
        {"class_weights=0,0,0", "[connected]\noutput=3\n[softmax]\n", "every weight is 0"},
        {"class_weights=no_such_weights.txt", "[connected]\noutput=3\n[softmax]\n", "cannot open 'no_such_weights.txt'"},
        {"class_weights=1,1,1", "[connected]\noutput=3\n[logistic]\n", "ends with [softmax], not [logistic]"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char cfg[512];
        snprintf(cfg, sizeof(cfg), "%s%s\n%s", head, bad[k].key, bad[k].layers);
        const char *msg = net_error_from_text("cw.cfg", cfg);
        CHECK(msg && strstr(msg, "cw.cfg:6: [net] key 'class_weights'") && strstr(msg, bad[k].want), "case %zu: %s", k,
              msg ? msg : "built");
    }
    /* from a file, one per line */
    char path[512], cfg[1024];
    snprintf(path, sizeof(path), "%s/weights.txt", test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK(f, "write");
    fputs("# one per class\n0.5\n\n2\n1\n", f);
    fclose(f);
    snprintf(cfg, sizeof(cfg), "%sclass_weights=%s\n[connected]\noutput=3\n[softmax]\n", head, path);
    net = net_from_text(cfg);
    tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(tr && tr->class_weights[0] == 0.5f && tr->class_weights[1] == 2.f && tr->class_weights[2] == 1.f,
          "from a file: %s", cdb_last_error());
    cdb_trainer_free(tr);
    cdb_network_free(net);
    f = fopen(path, "w");
    CHECK(f, "write");
    fputs("0.5\ntwo\n1\n", f);
    fclose(f);
    const char *msg = net_error_from_text("cw.cfg", cfg);
    CHECK(msg && strstr(msg, "key 'class_weights'") && strstr(msg, "line 2: 'two' is not a number"), "%s",
          msg ? msg : "built");
}

/* ema=1 as timm's ModelEmaV3 (update after each optimizer step with
 * step = the number of updates): the first update copies the weights,
 * then ema = decay ema + (1 - decay) w over every weights-file array
 * (batch-norm statistics too); the warm-up's decay 1 - (1 + s - 1)^(-2/3)
 * capped at ema_decay. */
static void t_ema(void)
{
    const char *text = "[net]\nbatch=4\nwidth=5\nheight=5\nchannels=1\nlearning_rate=0.1\nmomentum=0.9\n"
                       "ema=1\nema_decay=0.9\n"
                       "[convolutional]\nfilters=3\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
                       "[connected]\noutput=3\nactivation=linear\n[softmax]\n";
    cdb_network *net = net_from_text(text);
    cdb_trainer *tr = net ? cdb_trainer_new(net) : NULL;
    CHECK(tr && tr->ema && tr->n_ema > 4, "build: %s", cdb_last_error());
    float images[4 * 25];
    int labels[4] = {0, 1, 2, 0};
    fill_normal(images, 100, 31, 1.f);
    /* the expected average, in double, array by array */
    size_t total = 0;
    for (int i = 0; i < net->n; i++)
        for (int k = 0; k < net->layers[i].nio; k++) total += net->layers[i].io_size[k];
    double *want = calloc(total, sizeof(double));
    CHECK(want, "memory");
    for (int step = 1; step <= 4; step++) {
        CHECK(isfinite(cdb_trainer_run_step(tr, images, labels)), "step %d", step);
        double d = step == 1 ? 0 : (double)0.9f; /* ema_decay is read as a float */
        CHECK(cdb_ema_decay(&tr->cfg, step) == d, "decay at step %d: %g", step, cdb_ema_decay(&tr->cfg, step));
        size_t at = 0;
        int a = 0;
        for (int i = 0; i < net->n; i++)
            for (int k = 0; k < net->layers[i].nio; k++, a++)
                for (size_t e = 0; e < net->layers[i].io_size[k]; e++, at++) {
                    double w = net->layers[i].io[k][e];
                    want[at] = d * want[at] + (1 - d) * w;
                    float got = tr->ema[a].avg[e];
                    if (step == 1)
                        CHECK(got == net->layers[i].io[k][e], "step 1: not a copy (layer %d array %d [%zu])", i, k, e);
                    else
                        CHECK(fabs(got - want[at]) <= 1e-6 * (fabs(want[at]) + 1e-3),
                              "step %d, layer %d array %d [%zu]: %.8g, want %.8g", step, i, k, e, got, want[at]);
                }
    }
    free(want);
    /* the average is what validation and saving swap in, and the raw weights come back */
    float w0 = net->layers[0].io[0][0], e0 = tr->ema[0].avg[0];
    CHECK(w0 != e0, "the average equals the weights");
    CHECK(cdb_trainer_ema_swap(tr, 1) == 0 && net->layers[0].io[0][0] == e0 && cdb_trainer_ema_swap(tr, 0) == 0 &&
              net->layers[0].io[0][0] == w0,
          "swap in and back");
    tr->cfg.ema_warmup = 1;
    CHECK(cdb_ema_decay(&tr->cfg, 1) == 0 && fabs(cdb_ema_decay(&tr->cfg, 2) - (1 - pow(2, -2.0 / 3))) < 1e-12 &&
              fabs(cdb_ema_decay(&tr->cfg, 11) - (1 - pow(11, -2.0 / 3))) < 1e-12,
          "warm-up: %g %g", cdb_ema_decay(&tr->cfg, 2), cdb_ema_decay(&tr->cfg, 11));
    CHECK(cdb_ema_decay(&tr->cfg, 100) == (double)0.9f, "the warm-up is capped at ema_decay: %g",
          cdb_ema_decay(&tr->cfg, 100));
    cdb_trainer_free(tr);
    cdb_network_free(net);
    const char *head = "[net]\nbatch=2\nwidth=2\nheight=2\nchannels=1\n";
    const struct {
        const char *keys, *want;
    } bad[] = {{"ema=1\nema_decay=1\n", "key 'ema_decay': must be in (0, 1)"},
               {"ema=1\nema_decay=-0.5\n", "key 'ema_decay'"},
               {"ema_decay=0.99\n", "key 'ema_decay': applies with ema=1 only"},
               {"ema=2\n", "key 'ema'"}};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char cfg[512];
        snprintf(cfg, sizeof(cfg), "%s%s[connected]\noutput=3\n[softmax]\n", head, bad[k].keys);
        const char *msg = net_error_from_text("ema.cfg", cfg);
        CHECK(msg && strstr(msg, "ema.cfg:") && strstr(msg, bad[k].want), "case %zu: %s", k, msg ? msg : "built");
    }
}

void register_optimizer_tests(void)
{
    test_add_tagged("optimizer/sgd plain", t_sgd_plain, TEST_KERNELS);
    test_add_tagged("optimizer/sgd momentum + decay as PyTorch", t_sgd_momentum_decay, TEST_KERNELS);
    test_add_tagged("optimizer/sgd nesterov as PyTorch", t_sgd_nesterov, TEST_KERNELS);
    test_add_tagged("optimizer/adamw as PyTorch", t_adamw, TEST_KERNELS);
    test_add_tagged("optimizer/decay_norm_bias=0 skips biases and norms", t_no_decay_on_norms_and_biases, TEST_KERNELS);
    test_add_tagged("optimizer/learning rate policies and burn-in", t_lr_policies, TEST_KERNELS);
    test_add_tagged("optimizer/subdivisions accumulate the full-batch gradient", t_subdivisions_accumulate, TEST_KERNELS);
    test_add_tagged("optimizer/a new trainer starts with its own momentum", t_trainer_owns_momentum, TEST_KERNELS);
    test_add_tagged("optimizer/clip_grad_norm: PyTorch's rule, before the masks", t_clip_grad_norm, TEST_KERNELS);
    test_add_tagged("optimizer/class_weights: PyTorch's weighted cross-entropy and its gradient", t_class_weights,
                    TEST_KERNELS);
    test_add_tagged("optimizer/ema: timm's ModelEmaV3 update and warm-up", t_ema, TEST_KERNELS);
}
