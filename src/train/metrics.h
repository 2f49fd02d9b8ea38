/* What one evaluation of a network on a dataset measured: the training
 * loop's validations, `cdbnet valid`, the log's rows. */
#ifndef CDB_METRICS_H
#define CDB_METRICS_H

typedef struct {
    float top1, top5, loss;
    int count;
    int nonfinite; /* images whose output held a NaN or an infinity (counted wrong) */
} valid_result;

#endif
