/* The statistics of `cdbnet compare`: Student's t distribution, the paired
 * t-test with its confidence interval, and the Wilcoxon signed-rank test
 * (exact for up to 20 pairs). */
#ifndef CDB_STATS_H
#define CDB_STATS_H

double cdb_stats_mean(const double *x, int n);
/* sample standard deviation (n - 1); 0 for n < 2 */
double cdb_stats_sd(const double *x, int n);
/* P(T <= t) for Student's t with df degrees of freedom */
double cdb_stats_t_cdf(double t, double df);
/* the t with P(T <= t) = p (0 < p < 1) */
double cdb_stats_t_quantile(double p, double df);

typedef struct {
    int n;
    double mean, sd;           /* of the differences */
    double ci_low, ci_high;    /* 95% confidence interval of the mean difference (t) */
    double t, p_t;             /* paired t statistic and its two-sided p-value (NaN when sd = 0 or n < 2) */
    double w_plus, p_wilcoxon; /* signed-rank statistic of the positive differences, two-sided p-value */
    int wilcoxon_exact;        /* the p-value is exact (n <= 20 non-zero differences) */
} paired_test;

/* The paired tests of the differences d[i] = b[i] - a[i]. */
paired_test cdb_stats_paired(const double *d, int n);

#endif
