/* The learning-rate schedule (schedule.c). */
#ifndef CDB_SCHEDULE_H
#define CDB_SCHEDULE_H

#include "train_config.h"

/* The learning rate of the step about to run (0-based). */
float cdb_schedule_learning_rate(const train_config *t, int step);

/* Once max_batches is known: steps= given as fractions become steps. */
void cdb_schedule_resolve(train_config *t);

#endif
