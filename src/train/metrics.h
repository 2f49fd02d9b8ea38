/* What one evaluation of a network on a dataset measured: the training
 * loop's validations, `cdbnet valid`, the log's rows; and the per-class
 * report built from a confusion matrix. */
#ifndef CDB_METRICS_H
#define CDB_METRICS_H

#include <stdio.h>

#include "cdbnet.h"

/* top1, top5, loss, count, nonfinite (include/cdbnet.h) */
typedef cdb_metrics valid_result;

/* A confusion matrix of K classes is K rows (the true class) of K + 1
 * counts: the predicted class, then the images whose output was not
 * finite. The predicted class is the most probable one, a tie with the
 * label broken against the label (so the diagonal counts exactly top-1's
 * hits). */
int cdb_predicted_class(const float *probs, int classes, int label);

/* One class's precision (its hits over the images predicted as it),
 * recall (over its images), F1 (their harmonic mean) and support (its
 * images); a ratio with nothing to divide is 0, as scikit-learn's
 * zero_division=0. */
typedef struct {
    double precision, recall, f1;
    long support, predicted;
} class_metrics;
/* per_class (K entries, may be NULL); the macro average (the unweighted
 * mean over the classes present in the truth or the predictions, as
 * scikit-learn's classification_report) and the average weighted by
 * support. */
void cdb_class_metrics(const long *confusion, int classes, class_metrics *per_class, class_metrics *macro,
                       class_metrics *weighted);

/* Average precision of class k over n images (scores[i * stride + k],
 * labels[i]; the images of label k are its positives), as scikit-learn's
 * average_precision_score: sum over the distinct scores, highest first, of
 * (R_t - R_t-1) P_t. NaN when the class has no image. */
double cdb_average_precision(const float *scores, int n, int stride, const int *labels, int k);
/* Per-class AP and their mean over the classes that have images (mAP), as
 * `cdbnet valid` prints them for a [logistic] (multi-label) output. */
void cdb_print_ap_report(FILE *out, const float *scores, int n, int classes, const int *labels,
                         const char *const *names);

/* The per-class table (class names when `names` is not NULL) and the two
 * averages, as `cdbnet valid` prints them. */
void cdb_print_class_report(FILE *out, const long *confusion, int classes, const char *const *names);
/* PATH.csv: the matrix with a header row and column of class names (or
 * numbers), and, when gnuplot is there, PATH.png, a heat map of each row
 * as fractions of its class (class names on the axes up to 40 classes).
 * `stem` is PATH without the extension. 0, or -1 with the error recorded
 * (the chart failing is only said). */
int cdb_write_confusion(const char *stem, const long *confusion, int classes, const char *const *names,
                        const char *title);

#endif
