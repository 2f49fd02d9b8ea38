/* What one evaluation of a network on a dataset measured: the training
 * loop's validations, `cdbnet valid`, the log's rows. */
#ifndef CDB_METRICS_H
#define CDB_METRICS_H

#include "cdbnet.h"

/* top1, top5, loss, count, nonfinite (include/cdbnet.h) */
typedef cdb_metrics valid_result;

#endif
