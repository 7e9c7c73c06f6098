/* test_data.c: the data module against closed forms, identities and sampling bounds.
 *
 *   1. toy sets: samples match their mixture (shares, means, covariances per component)
 *   2. mixtures: density integrates to 1, score = finite difference of log p, far points
 *   3. forward diffusion of a mixture: ᾱ = 1 identity, ᾱ → 0 gives N(0, I), matches samples
 *   4. the optimal denoiser: K = 1 closed form, x_t = √ᾱ x₀* + √(1−ᾱ) ε*, and a Monte-Carlo
 *      regression check that ε − ε*(x_t) is uncorrelated with functions of x_t
 *   5. standardization and mixture_affine against transformed samples
 *   6. energy distance: 0 for identical sets, hand values, symmetry, sensitivity
 *   7. built-in digits: range, border, determinism, classes tell apart
 *   8. loaders: IDX and CIFAR-10 files written here, read back value by value, and every
 *      broken file refused with -1
 *
 * Statistical checks compare with bounds computed from the sample size: an estimate must
 * lie within Z_BOUND standard errors of the exact value (the standard errors are estimated
 * from the same samples). With a fixed seed every run gives the same numbers.
 */
#include "../data.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------------------------------------
 * Tolerances, each with its reason */

/* 5 standard errors: a correct estimate lands outside with probability 6e-7 per check. */
static const double Z_BOUND = 5.0;
/* Closed-form identities evaluated in double with a few dozen operations. */
static const double EXACT_TOL = 1e-12;
/* Midpoint rule on a grid of step ≤ σ/10 over ±8σ: the quadrature error of a Gaussian is
 * ~exp(−2π² (σ/h)²) and the mass outside ~1e-15, so only summation rounding remains. */
static const double INTEGRAL_TOL = 1e-9;
/* Central difference with step h = 1e-5: truncation h² f'''/6 ~ 1e-9 for hills of std
 * ≥ 0.3, rounding 1e-16 |log p| / h ~ 1e-9 near the hills; relative to max(1, |∇ log p|). */
static const double FD_STEP = 1e-5;
static const double FD_TOL = 1e-6;
/* ᾱ = 1e-14 moves the means by √ᾱ |μ| ≤ 3e-6 and the covariance by 1e-13: log q_t differs
 * from log N(0, I) by at most |x| 3e-6 ~ 1e-5 at the points used. */
static const double NEAR_PRIOR_TOL = 1e-4;
/* x_t rebuilt from the posterior means E[x₀|x_t] and E[ε|x_t]: two sums of posterior-weighted
 * terms of size ~|x| ≤ 30, each rounded: 1e-16 × 30 × a few dozen, with room. */
static const double POSTERIOR_TOL = 1e-10;
/* mean 0 and std 1 of standardized samples, and the round trip back: one subtraction and
 * one division per number, then sums of O(1) numbers. */
static const double STANDARDIZE_TOL = 1e-12;
/* dog and cat are ~6 std apart along the line joining them: the Bayes error is ~1e-5, so a
 * sample is assigned to the hill it came from with probability far above 0.999. */
static const double DOGCAT_ASSIGN_MIN = 0.999;
/* The sample energy distance of two independent sets from one law is ~E‖A−A'‖/na +
 * E‖B−B'‖/nb (the V-statistic's diagonal bias) plus fluctuations of the same order. */
static const double ED_SAME_FACTOR = 10.0;
/* A wrong (linear-Gaussian) denoiser must fail the regression check clearly: its worst
 * z-score must exceed this, or the regression check would have no power. */
static const double WRONG_DENOISER_MIN_Z = 10.0;
/* Nearest class mean must label fresh digits at least this well (chance is 0.1): the
 * random position, size and slant blur the class means, as in MNIST, where this simple
 * classifier reaches about 0.82; classes that looked alike would fall far below. */
static const double DIGIT_ACCURACY_MIN = 0.6;

#define N_SAMPLES 100000

/* ----------------------------------------------------------------------------------------
 * Helpers */

/* Compare the empirical mean and covariance of the 2D points x (n, 2) selected by
 * label == want (or all if label is NULL) with mean and cov, each within Z_BOUND standard
 * errors; the standard errors come from the same points (no Gaussian assumption). */
static void check_moments(const real *x, const int *label, int want, int N,
                          const double mean[2], double cov[2][2], const char *what) {
    double m[2] = {0, 0};
    int n = 0;
    for (int i = 0; i < N; i++) {
        if (label && label[i] != want) continue;
        m[0] += x[2 * i]; m[1] += x[2 * i + 1]; n++;
    }
    CHECK(n > 100, "%s: only %d points", what, n);
    if (n <= 100) return;
    m[0] /= n; m[1] /= n;
    double c[2][2] = {{0, 0}, {0, 0}}, c2[2][2] = {{0, 0}, {0, 0}};
    for (int i = 0; i < N; i++) {
        if (label && label[i] != want) continue;
        double d[2] = {x[2 * i] - m[0], x[2 * i + 1] - m[1]};
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) { c[a][b] += d[a] * d[b]; c2[a][b] += d[a] * d[a] * d[b] * d[b]; }
    }
    char buf[160];
    for (int a = 0; a < 2; a++) {
        double se = sqrt(c[a][a] / n / n);
        snprintf(buf, sizeof buf, "%s: mean[%d] within %.0f SE", what, a, Z_BOUND);
        CHECK_CLOSE(m[a], mean[a], Z_BOUND * se, buf);
    }
    for (int a = 0; a < 2; a++)
        for (int b = a; b < 2; b++) {
            double e = c[a][b] / n;
            double se = sqrt((c2[a][b] / n - e * e) / n);   /* SE of a mean of d_a d_b */
            snprintf(buf, sizeof buf, "%s: cov[%d][%d] within %.0f SE", what, a, b, Z_BOUND);
            CHECK_CLOSE(e, cov[a][b], Z_BOUND * se, buf);
        }
}

static double gauss_logpdf_std(const double x[2]) {   /* log N(x; 0, I) */
    return -log(2.0 * PI) - 0.5 * (x[0] * x[0] + x[1] * x[1]);
}

/* dogcat in standardized coordinates (the coordinates the network sees) */
static Mixture2D dogcat_standardized(void) {
    Mixture2D m;
    double mean[2], cov[2][2];
    toy_mixture(TOY_DOGCAT, &m);
    mixture_moments(&m, mean, cov);
    double scale[2] = {sqrt(cov[0][0]), sqrt(cov[1][1])};
    mixture_affine(&m, mean, scale, &m);
    return m;
}

/* ----------------------------------------------------------------------------------------
 * 1. Toy sets */

static void test_names(void) {
    for (int k = 0; k < TOY_COUNT; k++) {
        CHECK(toy_parse(toy_name((ToyKind)k)) == k, "toy_parse(toy_name(%d))", k);
    }
    CHECK(toy_parse("dog") == -1 && toy_parse("") == -1 && toy_parse(NULL) == -1,
          "toy_parse rejects unknown names");
    Mixture2D m;
    CHECK(toy_mixture(TOY_MOONS, &m) == -1 && toy_mixture(TOY_SWISSROLL, &m) == -1,
          "moons and swissroll are not mixtures");
    CHECK(toy_mixture(TOY_DOGCAT, &m) == 0 && m.K == 2 && strcmp(m.label[0], "dog") == 0 &&
          strcmp(m.label[1], "cat") == 0, "dogcat is dog + cat");
    CHECK(m.mu[0][0] == 10.0 && m.mu[0][1] == 20.0 && m.mu[1][0] == 5.0 && m.mu[1][1] == 25.0,
          "dogcat means are the note's (10, 20) and (5, 25)");
}

static void test_toy_sample_matches_mixture(void) {
    real *x = xmalloc(sizeof(real) * 2 * N_SAMPLES, "x");
    int *label = xmalloc(sizeof(int) * N_SAMPLES, "label");
    Rng rng;
    rng_seed(&rng, 1);
    const ToyKind kinds[3] = {TOY_DOGCAT, TOY_RING, TOY_GAUSSIAN};
    for (int t = 0; t < 3; t++) {
        Mixture2D m;
        toy_mixture(kinds[t], &m);
        toy_sample(x, label, N_SAMPLES, kinds[t], &rng);
        int bad = 0, count[MIX_MAX] = {0};
        for (int i = 0; i < N_SAMPLES; i++) {
            if (label[i] < 0 || label[i] >= m.K) bad++;
            else count[label[i]]++;
        }
        CHECK(bad == 0, "%s: %d labels out of range", toy_name(kinds[t]), bad);
        char what[96];
        for (int k = 0; k < m.K; k++) {
            double share = (double)count[k] / N_SAMPLES;
            double se = sqrt(m.w[k] * (1.0 - m.w[k]) / N_SAMPLES);
            snprintf(what, sizeof what, "%s: share of %s", toy_name(kinds[t]), m.label[k]);
            if (m.K > 1) CHECK_CLOSE(share, m.w[k], Z_BOUND * se, what);
            check_moments(x, label, k, N_SAMPLES, m.mu[k], m.cov[k], what);
        }
        double mean[2], cov[2][2];
        mixture_moments(&m, mean, cov);
        snprintf(what, sizeof what, "%s: whole set", toy_name(kinds[t]));
        check_moments(x, NULL, 0, N_SAMPLES, mean, cov, what);
        if (kinds[t] == TOY_DOGCAT) {
            int agree = 0;
            for (int i = 0; i < N_SAMPLES; i++) {
                double p[2] = {x[2 * i], x[2 * i + 1]};
                agree += mixture_component_of(&m, p) == label[i];
            }
            CHECK((double)agree / N_SAMPLES >= DOGCAT_ASSIGN_MIN,
                  "dogcat: component_of agrees with the label for %d of %d", agree, N_SAMPLES);
        }
    }
    /* every set stays inside its picture box; moons split evenly */
    for (int k = 0; k < TOY_COUNT; k++) {
        double lo[2], hi[2];
        toy_view((ToyKind)k, lo, hi);
        toy_sample(x, label, N_SAMPLES, (ToyKind)k, &rng);
        int inside = 0, ones = 0;
        for (int i = 0; i < N_SAMPLES; i++) {
            inside += x[2 * i] >= lo[0] && x[2 * i] <= hi[0] && x[2 * i + 1] >= lo[1] &&
                      x[2 * i + 1] <= hi[1];
            ones += label[i] == 1;
        }
        CHECK(inside >= N_SAMPLES - N_SAMPLES / 1000, "%s: %d of %d samples in toy_view",
              toy_name((ToyKind)k), inside, N_SAMPLES);
        if (k == TOY_MOONS)
            CHECK_CLOSE((double)ones / N_SAMPLES, 0.5, Z_BOUND * sqrt(0.25 / N_SAMPLES),
                        "moons: share of the lower moon");
    }
    /* the same seed gives the same samples */
    real a[20], b[20];
    Rng r1, r2;
    rng_seed(&r1, 7); rng_seed(&r2, 7);
    toy_sample(a, NULL, 10, TOY_SWISSROLL, &r1);
    toy_sample(b, NULL, 10, TOY_SWISSROLL, &r2);
    CHECK(memcmp(a, b, sizeof a) == 0, "toy_sample is deterministic for a seed");
    free(label);
    free(x);
}

/* ----------------------------------------------------------------------------------------
 * 2. Density and score */

static void test_logpdf_integrates_to_one(void) {
    const ToyKind kinds[3] = {TOY_DOGCAT, TOY_RING, TOY_GAUSSIAN};
    for (int t = 0; t < 3; t++) {
        Mixture2D m;
        toy_mixture(kinds[t], &m);
        /* box: every hill ± 8 std; step: a tenth of the smallest std */
        double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY}, smin = INFINITY;
        for (int k = 0; k < m.K; k++)
            for (int d = 0; d < 2; d++) {
                double s = sqrt(m.cov[k][d][d]);
                /* the smallest std in any direction is √λ_min of Σ; for these sets ≥ 0.6·s */
                double a = m.cov[k][0][0], b = m.cov[k][0][1], c = m.cov[k][1][1];
                double lmin = 0.5 * (a + c) - sqrt(0.25 * (a - c) * (a - c) + b * b);
                smin = fmin(smin, sqrt(lmin));
                lo[d] = fmin(lo[d], m.mu[k][d] - 8.0 * s);
                hi[d] = fmax(hi[d], m.mu[k][d] + 8.0 * s);
            }
        double h = smin / 10.0;
        int n0 = (int)ceil((hi[0] - lo[0]) / h), n1 = (int)ceil((hi[1] - lo[1]) / h);
        double h0 = (hi[0] - lo[0]) / n0, h1 = (hi[1] - lo[1]) / n1, total = 0.0;
        for (int i = 0; i < n0; i++)
            for (int j = 0; j < n1; j++) {
                double x[2] = {lo[0] + (i + 0.5) * h0, lo[1] + (j + 0.5) * h1};
                total += exp(mixture_logpdf(&m, x));
            }
        char what[64];
        snprintf(what, sizeof what, "%s: ∫ p(x) dx on a %dx%d grid", toy_name(kinds[t]), n0, n1);
        CHECK_CLOSE(total * h0 * h1, 1.0, INTEGRAL_TOL, what);
    }
}

static void test_score_is_gradient_of_logpdf(void) {
    const ToyKind kinds[3] = {TOY_DOGCAT, TOY_RING, TOY_GAUSSIAN};
    const double pts[6][2] = {{10, 20}, {5, 25}, {7.5, 22.5}, {3.1, -0.4}, {0.2, 0.1}, {-2, 30}};
    for (int t = 0; t < 3; t++) {
        Mixture2D m;
        toy_mixture(kinds[t], &m);
        for (int p = 0; p < 6; p++) {
            double g[2];
            mixture_score(&m, pts[p], g);
            for (int d = 0; d < 2; d++) {
                double xp[2] = {pts[p][0], pts[p][1]}, xm[2] = {pts[p][0], pts[p][1]};
                xp[d] += FD_STEP; xm[d] -= FD_STEP;
                double fd = (mixture_logpdf(&m, xp) - mixture_logpdf(&m, xm)) / (2 * FD_STEP);
                char what[80];
                snprintf(what, sizeof what, "%s: score[%d] at (%g, %g) vs finite difference",
                         toy_name(kinds[t]), d, pts[p][0], pts[p][1]);
                CHECK_CLOSE(g[d], fd, FD_TOL * fmax(1.0, fabs(fd)), what);
            }
        }
    }
    /* far from every hill: log-sum-exp keeps everything finite, and the score points home */
    Mixture2D m;
    toy_mixture(TOY_DOGCAT, &m);
    const double far[2] = {1000.0, -1000.0};
    double g[2], lp = mixture_logpdf(&m, far);
    mixture_score(&m, far, g);
    int k = mixture_component_of(&m, far);
    CHECK(isfinite(lp) && lp < -1e5, "logpdf far away is finite and very negative (%g)", lp);
    CHECK(isfinite(g[0]) && isfinite(g[1]) && g[0] < 0 && g[1] > 0,
          "score far away is finite and points back (%g, %g)", g[0], g[1]);
    CHECK(k == 0 || k == 1, "component_of far away is a valid component (%d)", k);
}

/* ----------------------------------------------------------------------------------------
 * 3. Forward diffusion of a mixture */

static void test_mixture_diffuse(void) {
    Mixture2D m, q;
    toy_mixture(TOY_DOGCAT, &m);
    mixture_diffuse(&m, 1.0, &q);
    CHECK(memcmp(&m, &q, sizeof m) == 0, "mixture_diffuse at ᾱ = 1 is the identity");
    mixture_diffuse(&m, 0.0, &q);
    int prior = 1;
    for (int k = 0; k < q.K; k++)
        prior &= q.mu[k][0] == 0.0 && q.mu[k][1] == 0.0 && q.cov[k][0][0] == 1.0 &&
                 q.cov[k][1][1] == 1.0 && q.cov[k][0][1] == 0.0 && q.w[k] == m.w[k];
    CHECK(prior, "mixture_diffuse at ᾱ = 0 is N(0, I) in every component");
    mixture_diffuse(&m, 1e-14, &q);
    const double pts[3][2] = {{0, 0}, {1.5, -0.7}, {-2, 2}};
    for (int p = 0; p < 3; p++)
        CHECK_CLOSE(mixture_logpdf(&q, pts[p]), gauss_logpdf_std(pts[p]), NEAR_PRIOR_TOL,
                    "log q_t at ᾱ = 1e-14 vs log N(0, I)");

    /* samples x_t = √ᾱ x₀ + √(1−ᾱ) ε of standardized dogcat have the diffused moments */
    Mixture2D s = dogcat_standardized();
    const double alpha_bar = 0.3;
    mixture_diffuse(&s, alpha_bar, &q);
    real *x = xmalloc(sizeof(real) * 2 * N_SAMPLES, "x");
    int *label = xmalloc(sizeof(int) * N_SAMPLES, "label");
    Rng rng;
    rng_seed(&rng, 3);
    mixture_sample(&s, x, label, N_SAMPLES, &rng);
    for (int i = 0; i < 2 * N_SAMPLES; i++)
        x[i] = (real)(sqrt(alpha_bar) * x[i] + sqrt(1.0 - alpha_bar) * rng_normal(&rng));
    for (int k = 0; k < q.K; k++)
        check_moments(x, label, k, N_SAMPLES, q.mu[k], q.cov[k], "diffused dogcat component");
    free(label);
    free(x);
}

/* ----------------------------------------------------------------------------------------
 * 4. The optimal denoiser */

static void test_eps_star_single_gaussian(void) {
    Mixture2D m;
    toy_mixture(TOY_GAUSSIAN, &m);
    const double abars[4] = {0.0, 0.01, 0.5, 0.99};
    const double pts[3][2] = {{0, 0}, {2.5, -1.0}, {-1.2, 3.3}};
    for (int a = 0; a < 4; a++)
        for (int p = 0; p < 3; p++) {
            double ab = abars[a], sa = sqrt(ab), s1 = sqrt(1.0 - ab);
            /* closed form: ε* = √(1−ᾱ) Σ_t⁻¹ (x_t − √ᾱ μ), Σ_t = ᾱ Σ + (1−ᾱ) I */
            double A = ab * m.cov[0][0][0] + 1 - ab, B = ab * m.cov[0][0][1],
                   C = ab * m.cov[0][1][1] + 1 - ab, det = A * C - B * B;
            double d0 = pts[p][0] - sa * m.mu[0][0], d1 = pts[p][1] - sa * m.mu[0][1];
            double want[2] = {s1 * (C * d0 - B * d1) / det, s1 * (-B * d0 + A * d1) / det};
            double eps[2];
            mixture_eps_star(&m, ab, pts[p], eps);
            for (int d = 0; d < 2; d++)
                CHECK_CLOSE(eps[d], want[d], EXACT_TOL * fmax(1.0, fabs(want[d])),
                            "K = 1: ε* vs √(1−ᾱ) Σ_t⁻¹ (x_t − √ᾱ μ)");
        }
}

static void test_x0_star_identity(void) {
    Mixture2D m = dogcat_standardized();
    double mean[2], cov[2][2];
    mixture_moments(&m, mean, cov);
    const double abars[5] = {0.0, 0.05, 0.5, 0.95, 1.0};
    const double pts[4][2] = {{0, 0}, {1.0, -1.0}, {-0.8, 1.1}, {3.0, 2.0}};
    for (int a = 0; a < 5; a++)
        for (int p = 0; p < 4; p++) {
            double ab = abars[a], eps[2], x0[2];
            mixture_eps_star(&m, ab, pts[p], eps);
            mixture_x0_star(&m, ab, pts[p], x0);
            for (int d = 0; d < 2; d++) {
                /* x_t = √ᾱ E[x₀|x_t] + √(1−ᾱ) E[ε|x_t]: both sides of x_t = √ᾱ x₀ + √(1−ᾱ) ε
                 * averaged over the posterior; two independent routes must agree */
                double back = sqrt(ab) * x0[d] + sqrt(1.0 - ab) * eps[d];
                CHECK_CLOSE(back, pts[p][d], POSTERIOR_TOL, "x_t = √ᾱ x₀* + √(1−ᾱ) ε*");
                if (ab == 0.0) CHECK_CLOSE(x0[d], mean[d], EXACT_TOL, "x₀* at ᾱ = 0 is the data mean");
                if (ab == 1.0) CHECK_CLOSE(x0[d], pts[p][d], EXACT_TOL, "x₀* at ᾱ = 1 is x_t");
            }
        }
}

/* E[ε | x_t] is the regression of ε on x_t, so the residual ε − ε*(x_t) has mean zero times
 * any function g(x_t). Checked for g in {1, x, y, x², y², xy, tanh(2x), tanh(2y)} with
 * Z_BOUND standard errors; a linear-Gaussian denoiser (right for K = 1 only) must fail. */
#define N_FEATURES 8
static void features(const double x[2], double g[N_FEATURES]) {
    g[0] = 1; g[1] = x[0]; g[2] = x[1]; g[3] = x[0] * x[0]; g[4] = x[1] * x[1];
    g[5] = x[0] * x[1]; g[6] = tanh(2 * x[0]); g[7] = tanh(2 * x[1]);
}

/* worst |z| of the residual-feature means; worst_wrong gets the same for the linear fit */
static double regression_worst_z(const Mixture2D *m, double ab, int use_linear, Rng *rng) {
    Mixture2D lin;   /* the moment-matched single Gaussian */
    double mean[2], cov[2][2];
    mixture_moments(m, mean, cov);
    memset(&lin, 0, sizeof lin);
    lin.K = 1; lin.w[0] = 1; lin.label[0] = "linear";
    memcpy(lin.mu[0], mean, sizeof mean);
    memcpy(lin.cov[0], cov, sizeof cov);
    double s[2][N_FEATURES] = {{0}}, s2[2][N_FEATURES] = {{0}};
    for (int i = 0; i < N_SAMPLES; i++) {
        real x0[2];
        mixture_sample(m, x0, NULL, 1, rng);
        double e[2] = {rng_normal(rng), rng_normal(rng)}, xt[2], pred[2], g[N_FEATURES];
        for (int d = 0; d < 2; d++) xt[d] = sqrt(ab) * x0[d] + sqrt(1.0 - ab) * e[d];
        mixture_eps_star(use_linear ? &lin : m, ab, xt, pred);
        features(xt, g);
        for (int d = 0; d < 2; d++)
            for (int f = 0; f < N_FEATURES; f++) {
                double v = (e[d] - pred[d]) * g[f];
                s[d][f] += v; s2[d][f] += v * v;
            }
    }
    double worst = 0.0;
    for (int d = 0; d < 2; d++)
        for (int f = 0; f < N_FEATURES; f++) {
            double mu = s[d][f] / N_SAMPLES, var = s2[d][f] / N_SAMPLES - mu * mu;
            worst = fmax(worst, fabs(mu) / sqrt(var / N_SAMPLES));
        }
    return worst;
}

static void test_eps_star_regression(void) {
    Mixture2D m = dogcat_standardized();
    Rng rng;
    rng_seed(&rng, 11);
    const double abars[3] = {0.1, 0.5, 0.9};
    for (int a = 0; a < 3; a++) {
        double z = regression_worst_z(&m, abars[a], 0, &rng);
        CHECK(z <= Z_BOUND, "ᾱ = %g: ε − ε*(x_t) correlates with a function of x_t "
              "(worst z = %.2f > %.0f)", abars[a], z, Z_BOUND);
    }
    double zw = regression_worst_z(&m, 0.5, 1, &rng);
    CHECK(zw >= WRONG_DENOISER_MIN_Z, "the regression check has power: a linear denoiser "
          "gives worst z = %.2f, want >= %.0f", zw, WRONG_DENOISER_MIN_Z);
}

/* ----------------------------------------------------------------------------------------
 * 5. Standardization and mixture_affine */

static void test_standardize_and_affine(void) {
    Mixture2D m, ma;
    toy_mixture(TOY_DOGCAT, &m);
    real *x = xmalloc(sizeof(real) * 2 * N_SAMPLES, "x");
    real *y = xmalloc(sizeof(real) * 2 * N_SAMPLES, "y");
    int *label = xmalloc(sizeof(int) * N_SAMPLES, "label");
    Rng rng;
    rng_seed(&rng, 5);
    toy_sample(x, label, N_SAMPLES, TOY_DOGCAT, &rng);
    memcpy(y, x, sizeof(real) * 2 * N_SAMPLES);

    /* data_mean_std estimates the mixture's mean and std */
    double mean[2], std[2], mmean[2], mcov[2][2];
    data_mean_std(x, N_SAMPLES, 2, mean, std);
    mixture_moments(&m, mmean, mcov);
    for (int d = 0; d < 2; d++) {
        CHECK_CLOSE(mean[d], mmean[d], Z_BOUND * sqrt(mcov[d][d] / N_SAMPLES), "data mean");
        /* SE of a sample std ≈ std √((κ − 1) / 4N), κ the kurtosis ≤ 3 for this bimodal set */
        CHECK_CLOSE(std[d], sqrt(mcov[d][d]), Z_BOUND * sqrt(mcov[d][d] * 2.0 / (4.0 * N_SAMPLES)),
                    "data std");
    }

    /* standardized samples: mean 0, std 1; unstandardize restores them */
    standardize(y, N_SAMPLES, 2, mean, std);
    double m2[2], s2[2];
    data_mean_std(y, N_SAMPLES, 2, m2, s2);
    for (int d = 0; d < 2; d++) {
        CHECK_CLOSE(m2[d], 0.0, STANDARDIZE_TOL, "standardized mean is 0");
        CHECK_CLOSE(s2[d], 1.0, STANDARDIZE_TOL, "standardized std is 1");
    }

    /* the affine mixture describes the standardized samples, component by component */
    mixture_affine(&m, mean, std, &ma);
    for (int k = 0; k < 2; k++) check_moments(y, label, k, N_SAMPLES, ma.mu[k], ma.cov[k],
                                              k ? "affine cat" : "affine dog");
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        double p[2] = {x[2 * i], x[2 * i + 1]}, q[2] = {y[2 * i], y[2 * i + 1]};
        same &= mixture_component_of(&m, p) == mixture_component_of(&ma, q);
    }
    CHECK(same, "component_of is unchanged by standardizing");
    /* change of variables: log p'(x') = log p(x) + log(scale_0 scale_1) */
    const double pts[3][2] = {{10, 20}, {6, 24}, {12, 18}};
    for (int p = 0; p < 3; p++) {
        double xp[2] = {(pts[p][0] - mean[0]) / std[0], (pts[p][1] - mean[1]) / std[1]};
        CHECK_CLOSE(mixture_logpdf(&ma, xp), mixture_logpdf(&m, pts[p]) + log(std[0] * std[1]),
                    EXACT_TOL * 100, "log p' = log p + log |scale| (affine change of variables)");
    }

    unstandardize(y, N_SAMPLES, 2, mean, std);
    double worst = 0.0;
    for (int i = 0; i < 2 * N_SAMPLES; i++) worst = fmax(worst, fabs(y[i] - x[i]));
    CHECK(worst <= STANDARDIZE_TOL, "unstandardize(standardize(x)) = x (worst %g)", worst);

    /* a constant coordinate gets std 1 (shift only) */
    real c[6] = {3, 1, 3, 2, 3, 3};
    data_mean_std(c, 3, 2, mean, std);
    CHECK(mean[0] == 3.0 && std[0] == 1.0, "constant coordinate: mean 3, std 1");
    free(label);
    free(y);
    free(x);
}

/* ----------------------------------------------------------------------------------------
 * 6. Energy distance */

static void test_energy_distance(void) {
    /* by hand, D = 1: a = {0, 1}, b = {3}
     *   E|A−B| = (3 + 2)/2 = 2.5, E|A−A'| = (0 + 1 + 1 + 0)/4 = 0.5, E|B−B'| = 0
     *   → 2·2.5 − 0.5 − 0 = 4.5; also 2 ∫ (F_A − F_B)² = 2 (0.5²·1 + 1²·2) = 4.5 */
    real a1[2] = {0, 1}, b1[1] = {3};
    CHECK_CLOSE(energy_distance(a1, 2, b1, 1, 1), 4.5, EXACT_TOL, "energy distance by hand");
    /* D = 2: a = {(0,0)}, b = {(3,4)}: 2·5 − 0 − 0 = 10 */
    real a2[2] = {0, 0}, b2[2] = {3, 4};
    CHECK_CLOSE(energy_distance(a2, 1, b2, 1, 2), 10.0, EXACT_TOL, "energy distance (3,4)");

    enum { n = 1000 };
    real *a = xmalloc(sizeof(real) * 2 * n, "a"), *b = xmalloc(sizeof(real) * 2 * n, "b");
    real *c = xmalloc(sizeof(real) * 2 * n, "c");
    Rng rng;
    rng_seed(&rng, 9);
    rng_fill_normal(&rng, a, 2 * n);
    rng_fill_normal(&rng, b, 2 * n);
    for (int i = 0; i < 2 * n; i++) c[i] = b[i] + (i % 2 == 0 ? 3.0 : 0.0);   /* shift x by 3 */
    double same = energy_distance(a, n, a, n, 2);
    double ab = energy_distance(a, n, b, n, 2), ba = energy_distance(b, n, a, n, 2);
    double shifted = energy_distance(a, n, c, n, 2);
    CHECK_CLOSE(same, 0.0, EXACT_TOL, "energy distance of a set to itself");
    CHECK_CLOSE(ab, ba, EXACT_TOL, "energy distance is symmetric");
    /* E‖A − A'‖ for N(0, I₂) is √π: the bias scale of two independent samples */
    double bias = sqrt(PI) * (1.0 / n + 1.0 / n);
    CHECK(ab >= 0.0 && ab <= ED_SAME_FACTOR * bias,
          "two samples of one law: energy distance %g within %g × bias %g", ab, ED_SAME_FACTOR, bias);
    /* exactly 2 E‖N(δ, 2I)‖ − 2 E‖N(0, 2I)‖ ≈ 2 (3.4 − 1.77) ≈ 3.2 for |δ| = 3 */
    CHECK(shifted > 1.0, "shifted by 3: energy distance %g is large", shifted);
    free(c);
    free(b);
    free(a);
}

/* ----------------------------------------------------------------------------------------
 * 7. Built-in digits */

static void test_digits(int H, int W) {
    enum { n = 400 };
    int D = H * W;
    real *x = xmalloc(sizeof(real) * n * D, "digits"), *y = xmalloc(sizeof(real) * n * D, "y");
    int *label = xmalloc(sizeof(int) * n, "labels"), count[10] = {0};
    Rng rng, rng2;
    rng_seed(&rng, 21);
    rng_seed(&rng2, 21);
    digits_sample(x, label, n, H, W, &rng);
    digits_sample(y, NULL, n, H, W, &rng2);
    CHECK(memcmp(x, y, sizeof(real) * n * D) == 0, "%dx%d digits are deterministic", H, W);
    rng_seed(&rng2, 22);
    digits_sample(y, NULL, n, H, W, &rng2);
    CHECK(memcmp(x, y, sizeof(real) * n * D) != 0, "%dx%d digits change with the seed", H, W);

    int out_of_range = 0, border_ink = 0, bad_label = 0;
    double ink = 0.0;
    for (int i = 0; i < n; i++) {
        if (label[i] < 0 || label[i] > 9) { bad_label++; continue; }
        count[label[i]]++;
        const real *xi = x + (size_t)i * D;   /* seek to x[i, 0, :, :] */
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++) {
                real v = xi[r * W + c];
                out_of_range += !(v >= -1.0 && v <= 1.0);
                if ((r == 0 || c == 0 || r == H - 1 || c == W - 1) && v != -1.0) border_ink++;
                ink += (v + 1.0) / 2.0;
            }
    }
    ink /= (double)n * D;
    CHECK(bad_label == 0, "%dx%d: %d labels outside 0..9", H, W, bad_label);
    CHECK(out_of_range == 0, "%dx%d: %d values outside [-1, 1]", H, W, out_of_range);
    CHECK(border_ink == 0, "%dx%d: %d border pixels with ink (digits must fit)", H, W, border_ink);
    CHECK(ink > 0.05 && ink < 0.5, "%dx%d: ink covers %.3f of the image", H, W, ink);
    int all = 1;
    for (int k = 0; k < 10; k++) all &= count[k] > 0;
    CHECK(all, "%dx%d: every digit appears in %d samples", H, W, n);

    /* classes differ: the nearest class mean (from x) labels fresh digits (y) correctly */
    double *mean = xcalloc((size_t)10 * D, sizeof(double), "class means");
    for (int i = 0; i < n; i++)
        for (int p = 0; p < D; p++) mean[(size_t)label[i] * D + p] += x[(size_t)i * D + p] / count[label[i]];
    int ylabel[n], correct = 0;
    rng_seed(&rng2, 23);
    digits_sample(y, ylabel, n, H, W, &rng2);
    for (int i = 0; i < n; i++) {
        int best = -1;
        double best_d = INFINITY;
        for (int k = 0; k < 10; k++) {
            double d = 0.0;
            for (int p = 0; p < D; p++) {
                double e = y[(size_t)i * D + p] - mean[(size_t)k * D + p];
                d += e * e;
            }
            if (d < best_d) { best_d = d; best = k; }
        }
        correct += best == ylabel[i];
    }
    CHECK((double)correct / n >= DIGIT_ACCURACY_MIN,
          "%dx%d: nearest class mean labels %d of %d fresh digits correctly", H, W, correct, n);
    free(mean);
    free(label);
    free(y);
    free(x);
}

/* ----------------------------------------------------------------------------------------
 * 8. Loaders */

static char tmp_dir_prefix[128];

static void make_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s_%s", tmp_dir_prefix, name);
}

static void write_file(const char *path, const unsigned char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) die("test_data: cannot write %s", path);
    if (n && fwrite(bytes, 1, n, f) != n) die("test_data: short write to %s", path);
    fclose(f);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int idx_pixel(int i) { return i == 0 ? 0 : i == 1 ? 255 : (i * 53 + 7) % 256; }

static void test_idx(void) {
    enum { N = 3, R = 4, C = 5, BYTES = 16 + N * R * C };
    unsigned char buf[BYTES + 1];
    put_be32(buf, 0x00000803); put_be32(buf + 4, N); put_be32(buf + 8, R); put_be32(buf + 12, C);
    for (int i = 0; i < N * R * C; i++) buf[16 + i] = (unsigned char)idx_pixel(i);
    char path[256], bad[256];
    make_path(path, sizeof path, "images.idx");
    write_file(path, buf, BYTES);

    real *x = NULL;
    int n = 0, h = 0, w = 0;
    CHECK(load_idx_images(path, &x, &n, &h, &w, 0) == 0 && x, "load a valid IDX images file");
    if (x) {
        CHECK(n == N && h == R && w == C, "IDX sizes %d %d %d", n, h, w);
        int wrong = 0;
        for (int i = 0; i < N * R * C; i++) wrong += x[i] != (real)(idx_pixel(i) / 127.5 - 1.0);
        CHECK(wrong == 0, "IDX: %d pixel values differ from k/127.5 - 1", wrong);
        CHECK(x[0] == -1.0 && x[1] == 1.0, "IDX: 0 -> -1 and 255 -> +1");
        data_free(x);
    }
    x = NULL;
    CHECK(load_idx_images(path, &x, &n, &h, &w, 2) == 0 && n == 2, "IDX max_n = 2 loads 2");
    if (x) {
        CHECK(x[2 * R * C - 1] == (real)(idx_pixel(2 * R * C - 1) / 127.5 - 1.0), "IDX max_n: last value");
        data_free(x);
    }

    /* labels */
    unsigned char lab[8 + N] = {0, 0, 8, 1};
    put_be32(lab + 4, N);
    lab[8] = 7; lab[9] = 0; lab[10] = 9;
    char lpath[256];
    make_path(lpath, sizeof lpath, "labels.idx");
    write_file(lpath, lab, sizeof lab);
    int *l = NULL;
    CHECK(load_idx_labels(lpath, &l, &n, 0) == 0 && l && n == N, "load a valid IDX labels file");
    if (l) {
        CHECK(l[0] == 7 && l[1] == 0 && l[2] == 9, "IDX labels 7 0 9");
        data_free(l);
    }

    /* broken files: each must give -1 and leave the outputs alone */
    fprintf(stderr, "test_data: the following error lines are expected:\n");
    x = NULL;
    make_path(bad, sizeof bad, "bad.idx");
    write_file(bad, buf, BYTES - 1);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "truncated IDX refused");
    buf[BYTES] = 0;
    write_file(bad, buf, BYTES + 1);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX with extra bytes refused");
    write_file(bad, buf, 10);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX shorter than its header refused");
    write_file(bad, buf, 0);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "empty file refused");
    unsigned char mod[BYTES];
    memcpy(mod, buf, BYTES);
    put_be32(mod, 0x00000804);
    write_file(bad, mod, BYTES);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX wrong magic refused");
    CHECK(load_idx_images(lpath, &x, &n, &h, &w, 0) == -1 && !x, "labels file as images refused");
    CHECK(load_idx_labels(path, &l, &n, 0) == -1, "images file as labels refused");
    memcpy(mod, buf, BYTES);
    put_be32(mod + 8, 0);
    write_file(bad, mod, BYTES);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX with 0 rows refused");
    memcpy(mod, buf, BYTES);
    put_be32(mod + 4, 0xFFFFFFFFu);   /* 4 billion images claimed: truncated, not allocated */
    write_file(bad, mod, BYTES);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX claiming 2^32 images refused");
    memcpy(mod, buf, BYTES);
    put_be32(mod + 8, 100000);
    write_file(bad, mod, BYTES);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "IDX with 100000 rows refused");
    memcpy(mod, buf, BYTES);
    mod[0] = 0x1f; mod[1] = 0x8b;
    write_file(bad, mod, BYTES);
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "damaged gzip IDX refused");
    CHECK(load_idx_labels(bad, &l, &n, 0) == -1, "damaged gzip IDX labels refused");
    make_path(bad, sizeof bad, "does_not_exist.idx");
    CHECK(load_idx_images(bad, &x, &n, &h, &w, 0) == -1 && !x, "missing IDX file refused");
    CHECK(load_idx_images("/", &x, &n, &h, &w, 0) == -1 && !x, "a directory refused");
    remove(path);
    remove(lpath);
    make_path(bad, sizeof bad, "bad.idx");
    remove(bad);
}

/* Gzipped files made by the gzip program, the labels found beside the images by name,
 * their count checked against the images'. */
static void test_gzip_and_labels(void) {
    enum { N = 4, R = 3, C = 2, BYTES = 16 + N * R * C };
    unsigned char img[BYTES], lab[8 + N] = {0, 0, 8, 1};
    put_be32(img, 0x00000803); put_be32(img + 4, N); put_be32(img + 8, R); put_be32(img + 12, C);
    for (int i = 0; i < N * R * C; i++) img[16 + i] = (unsigned char)idx_pixel(i);
    put_be32(lab + 4, N);
    for (int i = 0; i < N; i++) lab[8 + i] = (unsigned char)(9 - 2 * i);
    char ipath[256], lpath[256], found[256], cmd[800];
    make_path(ipath, sizeof ipath, "train-images-idx3-ubyte");
    make_path(lpath, sizeof lpath, "train-labels-idx1-ubyte");
    CHECK(idx_labels_path(ipath, found, sizeof found) == 0 && strcmp(found, lpath) == 0,
          "idx_labels_path: %s", found);
    CHECK(idx_labels_path("dir-images-idx3-ubyte/x.bin", found, sizeof found) == -1,
          "idx_labels_path looks at the file name only");
    write_file(ipath, img, BYTES);
    write_file(lpath, lab, sizeof lab);

    ImageSet set;
    CHECK(image_set_load(&set, ipath, 0) == 0 && set.label && set.N == N && set.C == 1 &&
          set.H == R && set.W == C && set.classes == 10, "plain IDX set with labels beside");
    if (set.label) CHECK(set.label[0] == 9 && set.label[3] == 3, "labels 9 .. 3");
    image_set_free(&set);

    snprintf(cmd, sizeof cmd, "gzip -f -n '%s' '%s'", ipath, lpath);   /* replaces both */
    if (system(cmd) != 0) { CHECK(0, "gzip failed: %s", cmd); return; }
    strcat(ipath, ".gz");
    strcat(lpath, ".gz");
    real *x = NULL;
    int n = 0, h = 0, w = 0;
    CHECK(load_idx_images(ipath, &x, &n, &h, &w, 0) == 0 && n == N && h == R && w == C,
          "gzipped IDX images load");
    if (x) {
        int wrong = 0;
        for (int i = 0; i < N * R * C; i++) wrong += x[i] != (real)(idx_pixel(i) / 127.5 - 1.0);
        CHECK(wrong == 0, "gzipped IDX: %d pixel values differ", wrong);
        data_free(x);
    }
    CHECK(image_set_load(&set, ipath, 2) == 0 && set.N == 2 && set.label &&
          set.label[1] == 7, "gzipped set, max_n 2, labels from the .gz beside");
    image_set_free(&set);

    fprintf(stderr, "test_data: the following error lines are expected:\n");
    put_be32(lab + 4, N - 1);                  /* one label fewer than the images */
    make_path(lpath, sizeof lpath, "train-labels-idx1-ubyte.gz");
    remove(lpath);
    make_path(lpath, sizeof lpath, "train-labels-idx1-ubyte");
    write_file(lpath, lab, sizeof lab - 1);    /* plain, found after the .gz is not there */
    CHECK(image_set_load(&set, ipath, 0) == -1 && !set.x && !set.label,
          "labels with a different count refused");
    CHECK(image_set_load(&set, lpath, 0) == -1 && !set.x, "a labels file as a set refused");
    remove(lpath);
    CHECK(image_set_load(&set, ipath, 0) == 0 && !set.label && set.classes == 0,
          "no labels beside: an unlabelled set");
    image_set_free(&set);

    size_t gz_n = 0;                           /* damage the gzip file's CRC */
    FILE *f = fopen(ipath, "rb");
    unsigned char gz[512];
    if (f) { gz_n = fread(gz, 1, sizeof gz, f); fclose(f); }
    CHECK(gz_n > 20 && gz_n < sizeof gz, "gzipped IDX read back");
    gz[gz_n - 6] ^= 1;
    write_file(ipath, gz, gz_n);
    CHECK(load_idx_images(ipath, &x, &n, &h, &w, 0) == -1, "gzipped IDX with a bad CRC refused");
    write_file(ipath, gz, gz_n / 2);
    CHECK(load_idx_images(ipath, &x, &n, &h, &w, 0) == -1, "truncated gzipped IDX refused");
    remove(ipath);
}

static void test_cifar(void) {
    enum { N = 2, REC = 3073 };
    unsigned char *buf = xcalloc(N * REC + REC, 1, "cifar bytes");
    const int labels[N] = {3, 9};
    for (int i = 0; i < N; i++) {
        buf[i * REC] = (unsigned char)labels[i];
        for (int p = 0; p < 3072; p++) buf[i * REC + 1 + p] = (unsigned char)((p * 7 + i * 101) % 256);
    }
    char path[256], bad[256];
    make_path(path, sizeof path, "cifar.bin");
    write_file(path, buf, N * REC);
    real *x = NULL;
    int *l = NULL, n = 0;
    CHECK(load_cifar10(path, &x, &l, &n, 0) == 0 && x && l && n == N, "load a valid CIFAR-10 file");
    if (x && l) {
        int wrong = 0;
        for (int i = 0; i < N; i++)
            for (int p = 0; p < 3072; p++)
                wrong += x[i * 3072 + p] != (real)(buf[i * REC + 1 + p] / 127.5 - 1.0);
        CHECK(wrong == 0, "CIFAR: %d pixel values differ", wrong);
        CHECK(l[0] == 3 && l[1] == 9, "CIFAR labels 3 9");
        /* channel-major: x[1, c=2 (blue), row 5, col 7] is byte 1 + 2·1024 + 5·32 + 7 */
        CHECK(x[1 * 3072 + 2 * 1024 + 5 * 32 + 7] ==
              (real)(buf[REC + 1 + 2 * 1024 + 5 * 32 + 7] / 127.5 - 1.0), "CIFAR (N, 3, 32, 32) layout");
        data_free(x);
        data_free(l);
    }
    x = NULL; l = NULL;
    CHECK(load_cifar10(path, &x, &l, &n, 1) == 0 && n == 1 && l && l[0] == 3, "CIFAR max_n = 1");
    data_free(x);
    data_free(l);

    fprintf(stderr, "test_data: the following error lines are expected:\n");
    x = NULL; l = NULL;
    make_path(bad, sizeof bad, "bad.bin");
    write_file(bad, buf, N * REC - 1);
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "truncated CIFAR refused");
    write_file(bad, buf, 0);
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "empty CIFAR refused");
    write_file(bad, buf, 3074);
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "CIFAR-100 record size refused");
    buf[REC] = 10;
    write_file(bad, buf, N * REC);
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "CIFAR label 10 refused");
    buf[0] = 0x1f; buf[1] = 0x8b;
    write_file(bad, buf, N * REC);
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "damaged gzip CIFAR refused");
    make_path(bad, sizeof bad, "does_not_exist.bin");
    CHECK(load_cifar10(bad, &x, &l, &n, 0) == -1 && !x && !l, "missing CIFAR file refused");
    remove(path);
    make_path(bad, sizeof bad, "bad.bin");
    remove(bad);
    free(buf);
}

/* ---------------------------------------------------------------------------------------- */

int main(void) {
    /* temporary files: a name unique per run (time, clock and a stack address) */
    int here;
    unsigned long nonce = (unsigned long)time(NULL) ^ ((unsigned long)clock() << 16) ^
                          (unsigned long)(uintptr_t)&here;
    snprintf(tmp_dir_prefix, sizeof tmp_dir_prefix, "/tmp/ddpm_test_data_%lx", nonce);

    test_names();
    test_toy_sample_matches_mixture();
    test_logpdf_integrates_to_one();
    test_score_is_gradient_of_logpdf();
    test_mixture_diffuse();
    test_eps_star_single_gaussian();
    test_x0_star_identity();
    test_eps_star_regression();
    test_standardize_and_affine();
    test_energy_distance();
    test_digits(28, 28);
    test_digits(16, 16);
    test_digits(20, 32);
    test_idx();
    test_cifar();
    test_gzip_and_labels();
    return test_summary("test_data");
}
