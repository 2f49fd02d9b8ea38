#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double cdb_stats_mean(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return n ? s / n : NAN;
}

double cdb_stats_sd(const double *x, int n)
{
    if (n < 2) return 0;
    double m = cdb_stats_mean(x, n), s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (n - 1));
}

/* the continued fraction of the regularized incomplete beta (Lentz) */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = fabs(d) < tiny ? tiny : d;
    d = 1 / d;
    double h = d;
    for (int m = 1; m < 500; m++) {
        double m2 = 2.0 * m, aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1) < 1e-15) break;
    }
    return h;
}

/* I_x(a, b) */
static double incomplete_beta(double a, double b, double x)
{
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x));
    if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
    return 1 - front * beta_cf(b, a, 1 - x) / b;
}

double cdb_stats_t_cdf(double t, double df)
{
    double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t)); /* P(T > |t|) */
    return t >= 0 ? 1 - tail : tail;
}

double cdb_stats_t_quantile(double p, double df)
{
    double lo = -1e3, hi = 1e3;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (cdb_stats_t_cdf(mid, df) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int by_abs(const void *a, const void *b)
{
    double x = fabs(*(const double *)a), y = fabs(*(const double *)b);
    return x < y ? -1 : (x > y ? 1 : 0);
}

paired_test cdb_stats_paired(const double *d, int n)
{
    paired_test r;
    memset(&r, 0, sizeof(r));
    r.n = n;
    r.mean = cdb_stats_mean(d, n);
    r.sd = cdb_stats_sd(d, n);
    r.t = r.p_t = r.ci_low = r.ci_high = NAN;
    if (n >= 2) {
        double se = r.sd / sqrt((double)n), q = cdb_stats_t_quantile(0.975, n - 1);
        r.ci_low = r.mean - q * se;
        r.ci_high = r.mean + q * se;
        if (r.sd > 0) {
            r.t = r.mean / se;
            r.p_t = 2 * (1 - cdb_stats_t_cdf(fabs(r.t), n - 1));
        }
    }
    /* Wilcoxon: zero differences dropped, tied magnitudes given their mean rank */
    double *x = malloc((size_t)(n ? n : 1) * sizeof(double)), *rank = malloc((size_t)(n ? n : 1) * sizeof(double));
    int m = 0;
    if (!x || !rank) {
        free(x);
        free(rank);
        r.p_wilcoxon = NAN;
        return r;
    }
    for (int i = 0; i < n; i++)
        if (d[i] != 0) x[m++] = d[i];
    qsort(x, (size_t)m, sizeof(double), by_abs);
    for (int i = 0; i < m;) {
        int j = i;
        while (j + 1 < m && fabs(x[j + 1]) == fabs(x[i])) j++;
        for (int k = i; k <= j; k++) rank[k] = 0.5 * (i + j) + 1;
        i = j + 1;
    }
    double w = 0, total = m * (m + 1) / 2.0;
    for (int i = 0; i < m; i++)
        if (x[i] > 0) w += rank[i];
    r.w_plus = w;
    double centre = total / 2, dev = fabs(w - centre);
    if (m == 0) {
        r.p_wilcoxon = 1;
        r.wilcoxon_exact = 1;
    } else if (m <= 20) {
        /* every sign pattern: P(|W - centre| >= |w - centre|) */
        long count = 0, all = 1L << m;
        for (long s = 0; s < all; s++) {
            double ws = 0;
            for (int i = 0; i < m; i++)
                if (s >> i & 1) ws += rank[i];
            count += fabs(ws - centre) >= dev - 1e-9;
        }
        r.p_wilcoxon = (double)count / (double)all;
        r.wilcoxon_exact = 1;
    } else {
        double var = m * (m + 1) * (2.0 * m + 1) / 24;
        double z = (dev - 0.5) / sqrt(var);
        r.p_wilcoxon = z <= 0 ? 1 : erfc(z / sqrt(2.0));
    }
    free(x);
    free(rank);
    return r;
}
