/* test_frechet.c: the Jacobi eigen-solver on matrices with known eigenvalues, and the
 * Fréchet distance on Gaussians with closed-form answers.
 *
 *   1. Jacobi: a diagonal matrix, the 2x2 closed form, the tridiagonal (−1, 2, −1) matrix
 *      (λ_k = 2 − 2 cos(kπ/(n+1))), Q diag(d) Qᵀ for a random orthogonal Q with repeated
 *      and zero eigenvalues; A v = λ v and VᵀV = I every time
 *   2. FD: 1D (μ₁ − μ₂)² + (σ₁ − σ₂)²; diagonal covariances Σ (√a − √b)²; Σ₂ = c Σ₁ gives
 *      (1 − √c)² Tr Σ₁; any 2x2 pair by Tr √M = √(Tr Σ₁Σ₂ + 2 √(det Σ₁ det Σ₂));
 *      symmetry on random full covariances; FD(x, x) = 0 on a feature set; the mean term
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../frechet.h"
#include "harness.h"

/* Jacobi stops when the off-diagonal part is 1e-15 of the matrix; eigenvalues are then
 * right to a few ulps of the largest: 1e-12 relative to the norm leaves room for n = 40. */
#define TOL_EIG 1e-12
/* FD sums D terms of size ~ Tr Σ and cancels them: 1e-10 relative to Tr Σ. */
#define TOL_FD 1e-10
/* FD of a shifted copy: the covariance terms cancel to TOL_FD of Tr Σ, beside |shift|² = 9. */
#define TOL_SHIFT 1e-9
/* a mean and a covariance entry by feature_stats and by the two-pass loops here: the same
 * sums in another order. */
#define TOL_STATS 1e-12

static double max_abs(const double *a, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Check A V = V Λ and VᵀV = I for the original a0 (n, n); returns the worst error. */
static double check_decomposition(const double *a0, int n, const double *lam,
                                  const double *v) {
    double worst = 0, scale = fmax(max_abs(a0, n * n), 1e-300);
    for (int k = 0; k < n; k++)
        for (int i = 0; i < n; i++) {
            double av = 0;
            for (int j = 0; j < n; j++) av += a0[i * n + j] * v[j * n + k];
            worst = fmax(worst, fabs(av - lam[k] * v[i * n + k]) / scale);
        }
    for (int k = 0; k < n; k++)
        for (int l = 0; l < n; l++) {
            double dot = 0;
            for (int i = 0; i < n; i++) dot += v[i * n + k] * v[i * n + l];
            worst = fmax(worst, fabs(dot - (k == l)));
        }
    return worst;
}

/* Solve a copy of a0 and compare with the sorted `want` eigenvalues. */
static void check_eigen(const double *a0, int n, const double *want, const char *what) {
    double *a = malloc(sizeof(double) * n * n), *v = malloc(sizeof(double) * n * n);
    double *lam = malloc(sizeof(double) * n);
    memcpy(a, a0, sizeof(double) * n * n);
    int sweeps = jacobi_eigen(a, n, lam, v);
    CHECK(sweeps >= 0 && sweeps < 20, "%s: %d sweeps", what, sweeps);
    double scale = fmax(max_abs(want, n), 1.0), err = 0;
    for (int k = 0; k < n; k++) err = fmax(err, fabs(lam[k] - want[k]) / scale);
    CHECK(err <= TOL_EIG, "%s: eigenvalues off by %.3g (relative)", what, err);
    double dec = check_decomposition(a0, n, lam, v);
    CHECK(dec <= TOL_EIG, "%s: A v = λ v, VᵀV = I off by %.3g", what, dec);
    free(lam); free(v); free(a);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* q (n, n) = a random orthogonal matrix: Gram-Schmidt of Gaussian columns. */
static void random_orthogonal(double *q, int n, Rng *rng) {
    for (int i = 0; i < n * n; i++) q[i] = rng_normal(rng);
    for (int k = 0; k < n; k++) {
        for (int pass = 0; pass < 2; pass++)          /* twice, for orthogonality to 1e-16 */
            for (int l = 0; l < k; l++) {
                double dot = 0;
                for (int i = 0; i < n; i++) dot += q[i * n + k] * q[i * n + l];
                for (int i = 0; i < n; i++) q[i * n + k] -= dot * q[i * n + l];
            }
        double norm = 0;
        for (int i = 0; i < n; i++) norm += q[i * n + k] * q[i * n + k];
        for (int i = 0; i < n; i++) q[i * n + k] /= sqrt(norm);
    }
}

/* a (n, n) = Q diag(d) Qᵀ */
static void compose(double *a, const double *q, const double *d, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += q[i * n + k] * d[k] * q[j * n + k];
            a[i * n + j] = s;
        }
}

static void test_jacobi(void) {
    double diag[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2}, want3[3] = {-1, 2, 3};
    check_eigen(diag, 3, want3, "diagonal");
    /* 2x2 [[a, b], [b, c]]: λ = (a + c)/2 ± √(((a − c)/2)² + b²) */
    double a2[4] = {2, 1.5, 1.5, -0.5};
    double mid = 0.75, rad = sqrt(1.25 * 1.25 + 1.5 * 1.5), want2[2] = {mid - rad, mid + rad};
    check_eigen(a2, 2, want2, "2x2 closed form");
    /* tridiagonal (−1, 2, −1), n = 12 */
    enum { NT = 12 };
    double tri[NT * NT] = {0}, wantt[NT];
    for (int i = 0; i < NT; i++) {
        tri[i * NT + i] = 2;
        if (i + 1 < NT) tri[i * NT + i + 1] = tri[(i + 1) * NT + i] = -1;
        wantt[i] = 2 - 2 * cos((i + 1) * PI / (NT + 1));
    }
    qsort(wantt, NT, sizeof(double), cmp_double);
    check_eigen(tri, NT, wantt, "tridiagonal 2 - 2cos(k pi/(n+1))");
    /* Q diag(d) Qᵀ with repeated and zero eigenvalues, n = 40 */
    enum { NQ = 40 };
    Rng rng;
    rng_seed(&rng, 3);
    double *q = malloc(sizeof(double) * NQ * NQ), *a = malloc(sizeof(double) * NQ * NQ);
    double d[NQ];
    for (int k = 0; k < NQ; k++) d[k] = k < 5 ? 0.0 : k < 10 ? 2.5 : rng_normal(&rng) * 10;
    random_orthogonal(q, NQ, &rng);
    compose(a, q, d, NQ);
    qsort(d, NQ, sizeof(double), cmp_double);
    check_eigen(a, NQ, d, "Q diag(d) Q^T, n = 40, repeated and zero eigenvalues");
    /* the 1x1 case and an already diagonal matrix take 0 sweeps */
    double one = 4.0, l1;
    CHECK(jacobi_eigen(&one, 1, &l1, NULL) == 0 && l1 == 4.0, "1x1");
    free(a); free(q);
}

/* ---------------------------------------------------------------------------------------- */

static void test_fd_closed_forms(void) {
    /* 1D: FD = (μ₁ − μ₂)² + (σ₁ − σ₂)² */
    double m1 = 0.3, m2 = -1.1, v1 = 4.0, v2 = 0.25;
    CHECK_REL(frechet_distance(&m1, &v1, &m2, &v2, 1), 1.4 * 1.4 + 1.5 * 1.5, TOL_FD, "1D");
    /* diagonal: Σ_d (√a_d − √b_d)² plus the mean term */
    enum { D = 6 };
    double mu1[D] = {0}, mu2[D] = {0}, c1[D * D] = {0}, c2[D * D] = {0}, want = 0;
    for (int d = 0; d < D; d++) {
        c1[d * D + d] = 1.0 + d;
        c2[d * D + d] = 0.5 + 2.0 * d;
        mu2[d] = 0.1 * d;
        want += pow(sqrt(1.0 + d) - sqrt(0.5 + 2.0 * d), 2) + 0.01 * d * d;
    }
    CHECK_REL(frechet_distance(mu1, c1, mu2, c2, D), want, TOL_FD, "diagonal covariances");
    /* Σ₂ = c Σ₁ for a full Σ₁: (1 − √c)² Tr Σ₁ */
    Rng rng;
    rng_seed(&rng, 11);
    double q[D * D], lam[D], full[D * D], scaled[D * D];
    random_orthogonal(q, D, &rng);
    double tr = 0;
    for (int d = 0; d < D; d++) { lam[d] = 0.2 + d * d; tr += lam[d]; }
    compose(full, q, lam, D);
    for (int i = 0; i < D * D; i++) scaled[i] = 2.25 * full[i];
    CHECK_REL(frechet_distance(mu1, full, mu1, scaled, D), 0.25 * tr, TOL_FD,
              "cov2 = 2.25 cov1: (1 - 1.5)^2 Tr cov1");
    /* any 2x2 pair: Tr √M = √(Tr Σ₁Σ₂ + 2 √(det Σ₁ det Σ₂)) (for a 2x2 PSD M,
     * Tr √M = √(Tr M + 2 √det M), and M has the eigenvalues of Σ₁Σ₂) */
    double s1[4] = {2.0, 0.7, 0.7, 1.0}, s2[4] = {0.5, -0.3, -0.3, 3.0};
    double z[2] = {0, 0}, w[2] = {1, -2};
    double trp = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    double want2 = 5.0 + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2 * sqrt(trp + 2 * sqrt(det1 * det2));
    CHECK_REL(frechet_distance(z, s1, w, s2, 2), want2, TOL_FD, "2x2 closed form");
    /* symmetry on random full covariances */
    double g1[D * D], g2[D * D], l2[D];
    for (int d = 0; d < D; d++) l2[d] = 0.1 + rng_uniform(&rng) * 3;
    random_orthogonal(q, D, &rng);
    compose(g1, q, l2, D);
    for (int d = 0; d < D; d++) l2[d] = 0.1 + rng_uniform(&rng) * 3;
    random_orthogonal(q, D, &rng);
    compose(g2, q, l2, D);
    double f12 = frechet_distance(mu1, g1, mu2, g2, D), f21 = frechet_distance(mu2, g2, mu1, g1, D);
    CHECK_REL(f12, f21, TOL_FD, "FD(a, b) = FD(b, a)");
    CHECK(f12 > 0.1, "FD of different Gaussians is positive: %g", f12);
    /* a singular covariance (rank 1) against itself: 0, negative rounding clipped */
    double r1[4] = {1, 2, 2, 4};
    CHECK_CLOSE(frechet_distance(z, r1, z, r1, 2), 0.0, TOL_FD * 5, "singular cov, FD = 0");
}

static void test_fd_sets(void) {
    enum { N = 500, D = 8 };
    Rng rng;
    rng_seed(&rng, 5);
    real *x = malloc(sizeof(real) * N * D), *y = malloc(sizeof(real) * N * D);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) {
            x[i * D + d] = (real)(rng_normal(&rng) * (1 + d) + (d == 1 ? x[i * D] : 0));
            y[i * D + d] = x[i * D + d] + (real)(d == 2 ? 3.0 : 0.0);   /* shifted copy */
        }
    double tr = 0, mu[D], cov[D * D];
    feature_stats(mu, cov, x, N, D);
    for (int d = 0; d < D; d++) tr += cov[d * D + d];
    CHECK_CLOSE(frechet_distance_sets(x, N, x, N, D), 0.0, TOL_FD * tr, "FD(x, x) = 0");
    CHECK_REL(frechet_distance_sets(x, N, y, N, D), 9.0, TOL_SHIFT, "a shifted copy: FD = |shift|^2");
    /* feature_stats against the two-pass formulas for one entry */
    double m0 = 0, c01 = 0, m1 = 0;
    for (int i = 0; i < N; i++) { m0 += x[i * D]; m1 += x[i * D + 1]; }
    m0 /= N; m1 /= N;
    for (int i = 0; i < N; i++) c01 += (x[i * D] - m0) * (x[i * D + 1] - m1);
    CHECK_REL(cov[1], c01 / (N - 1), TOL_STATS, "cov[0][1] with 1/(N-1)");
    CHECK_REL(mu[1], m1, TOL_STATS, "mean[1]");
    free(y); free(x);
}

int main(void) {
    test_jacobi();
    test_fd_closed_forms();
    test_fd_sets();
    return test_summary("test_frechet");
}
