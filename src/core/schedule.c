/* The learning-rate schedule of [net]: linear burn-in (Darknet's
 * (step/burn_in)^power with darknet=1), then constant, steps, poly, cosine
 * or Darknet's step, exp, sig and sgdr
 * (docs/cfg.md). */
#include "schedule.h"

#include <math.h>

void cdb_schedule_resolve(train_config *t)
{
    if (!t->steps_fractional) return;
    for (int i = 0; i < t->nsteps; i++) t->steps[i] = (int)lround((double)t->step_fractions[i] * t->max_batches);
}

float cdb_schedule_learning_rate(const train_config *t, int step)
{
    if (t->burn_in > 0 && step < t->burn_in) {
        /* Darknet counts the batch being applied from 1 (its images-seen
         * count already includes it). */
        if (t->darknet) return (float)(t->learning_rate * pow((double)(step + 1) / t->burn_in, t->power));
        return t->learning_rate * (float)(step + 1) / (float)t->burn_in;
    }
    float lr = t->learning_rate;
    switch (t->policy) {
    case POLICY_CONSTANT: return lr;
    /* Darknet's, with its batch number (step + 1: the update being applied) */
    case POLICY_STEP: return (float)(lr * pow(t->scale, (step + 1) / t->step));
    case POLICY_EXP: return (float)(lr * pow(t->gamma, step + 1));
    case POLICY_SIG: return (float)(lr / (1.0 + exp(t->gamma * (double)(step + 1 - t->step))));
    case POLICY_STEPS:
        for (int i = 0; i < t->nsteps && step >= t->steps[i]; i++) lr *= t->scales[i];
        return lr;
    case POLICY_POLY: {
        double progress = (double)step / t->max_batches;
        return (float)(lr * pow(1.0 - (progress > 1 ? 1 : progress), t->power));
    }
    case POLICY_SGDR: {
        /* AlexeyAB's: cosine cycles from lr down to learning_rate_min,
         * each sgdr_mult times the last, restarting at lr; its batch
         * number is step + 1 */
        long start = 0, cycle = t->sgdr_cycle ? t->sgdr_cycle : t->max_batches, batch = step + 1;
        if (cycle < 1) cycle = 1;
        while (start + cycle < batch) {
            start += cycle;
            cycle *= t->sgdr_mult;
        }
        return (float)(t->learning_rate_min +
                       0.5 * (lr - t->learning_rate_min) * (1.0 + cos((double)(batch - start) * M_PI / cycle)));
    }
    case POLICY_COSINE: {
        int span = t->max_batches - t->burn_in;
        double progress = span > 0 ? (double)(step - t->burn_in) / span : 1.0;
        if (progress > 1) progress = 1;
        return (float)(t->learning_rate_min + 0.5 * (lr - t->learning_rate_min) * (1 + cos(M_PI * progress)));
    }
    }
    return lr;
}
