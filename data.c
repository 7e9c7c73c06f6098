/* data.c: toy 2D sets, their mixtures in closed form, built-in digits and file loaders
 * (see data.h for what is and is not here).
 *
 * Reading order: the toy sets (dogcat first), the mixture formulas (density, score,
 * forward diffusion, the optimal denoiser), standardization and the energy distance, the
 * digit font and its renderer, then the IDX and CIFAR-10 loaders.
 * Sizes: N = examples, D = data dimension, K = mixture components, H, W = image height,
 * width. Every mixture formula is in double, whatever `real` is.
 */
#include "data.h"

#include "gz.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* ========================================================================================
 * Toy 2D sets: names */

const char *const TOY_NAMES[TOY_COUNT] = {
    "dogcat", "moons", "ring", "swissroll", "gaussian"
};

const char *toy_name(ToyKind kind) {
    return (kind >= 0 && kind < TOY_COUNT) ? TOY_NAMES[kind] : "unknown";
}

int toy_parse(const char *name) {
    for (int k = 0; k < TOY_COUNT; k++)
        if (name && strcmp(name, TOY_NAMES[k]) == 0) return k;
    return -1;
}


/* ========================================================================================
 * Toy 2D sets: the mixtures behind dogcat, ring and gaussian.
 *
 * dogcat, in the note's coordinates (001, 직관적 이해):
 *   dog  w = 0.55, μ = (10, 20), an elongated hill tilted by 30°: std 1.2 along the
 *        direction (cos 30°, sin 30°) and 0.6 across it, so Σ = R diag(1.2², 0.6²) Rᵀ;
 *   cat  w = 0.45, μ = (5, 25), a round hill, std 0.8 in every direction.
 * The means are √50 ≈ 7.1 apart, about 6 standard deviations of either hill along the
 * line that joins them, so the two hills are clearly separate (under 1 sample in 10⁴ is
 * closer to the other hill) while their shapes differ at a glance. */
#define DOG_WEIGHT 0.55
#define DOG_STD_ALONG 1.2
#define DOG_STD_ACROSS 0.6
#define DOG_ANGLE_DEG 30.0
#define CAT_STD 0.8

/* ring: 8 equal hills on a circle of radius 4, each round with std 0.3. */
#define RING_K 8
#define RING_RADIUS 4.0
#define RING_STD 0.3

static void set_component(Mixture2D *m, int k, const char *label, double w, double mu0,
                          double mu1, double c00, double c01, double c11) {
    m->label[k] = label;
    m->w[k] = w;
    m->mu[k][0] = mu0; m->mu[k][1] = mu1;
    m->cov[k][0][0] = c00; m->cov[k][0][1] = c01;
    m->cov[k][1][0] = c01; m->cov[k][1][1] = c11;
}

int toy_mixture(ToyKind kind, Mixture2D *m) {
    static const char *const ring_labels[RING_K] = {
        "ring0", "ring1", "ring2", "ring3", "ring4", "ring5", "ring6", "ring7"
    };
    memset(m, 0, sizeof *m);
    switch (kind) {
    case TOY_DOGCAT: {
        /* Σ = R diag(a², b²) Rᵀ with R the rotation by the angle θ */
        double th = DOG_ANGLE_DEG * PI / 180.0, c = cos(th), s = sin(th);
        double a2 = DOG_STD_ALONG * DOG_STD_ALONG, b2 = DOG_STD_ACROSS * DOG_STD_ACROSS;
        m->K = 2;
        set_component(m, 0, "dog", DOG_WEIGHT, 10.0, 20.0,
                      a2 * c * c + b2 * s * s, (a2 - b2) * c * s, a2 * s * s + b2 * c * c);
        set_component(m, 1, "cat", 1.0 - DOG_WEIGHT, 5.0, 25.0,
                      CAT_STD * CAT_STD, 0.0, CAT_STD * CAT_STD);
        return 0;
    }
    case TOY_RING:
        m->K = RING_K;
        for (int k = 0; k < RING_K; k++) {
            double th = 2.0 * PI * k / RING_K;
            set_component(m, k, ring_labels[k], 1.0 / RING_K, RING_RADIUS * cos(th),
                          RING_RADIUS * sin(th), RING_STD * RING_STD, 0.0, RING_STD * RING_STD);
        }
        return 0;
    case TOY_GAUSSIAN:
        /* a tilted ellipse: correlation 0.9 / √(1.5 · 1.0) ≈ 0.73 */
        m->K = 1;
        set_component(m, 0, "gaussian", 1.0, 1.0, -1.0, 1.5, 0.9, 1.0);
        return 0;
    default:
        return -1;   /* moons, swissroll: no closed form */
    }
}

/* ========================================================================================
 * Toy 2D sets: sampling */

/* Moons: the upper half circle (cos θ, sin θ) and the lower one (1 − cos θ, 0.5 − sin θ),
 * θ ~ U[0, π], plus N(0, MOONS_NOISE²) per coordinate (the common scikit-learn layout). */
#define MOONS_NOISE 0.08
/* Swiss roll: t ~ U[1.5π, 4.5π], x = (t cos t, t sin t) + N(0, SWISS_NOISE²): a spiral of
 * one and a half turns with radius from 4.7 to 14.1. */
#define SWISS_NOISE 0.4

void toy_sample(real *x, int *label, int N, ToyKind kind, Rng *rng) {
    Mixture2D m;
    if (toy_mixture(kind, &m) == 0) { mixture_sample(&m, x, label, N, rng); return; }
    for (int n = 0; n < N; n++) {
        real *xn = x + 2 * n;   /* seek to x[n, :] */
        int lab = 0;
        if (kind == TOY_MOONS) {
            double th = PI * rng_uniform(rng);
            lab = rng_int(rng, 2);
            double u = lab == 0 ? cos(th) : 1.0 - cos(th);
            double v = lab == 0 ? sin(th) : 0.5 - sin(th);
            xn[0] = (real)(u + MOONS_NOISE * rng_normal(rng));
            xn[1] = (real)(v + MOONS_NOISE * rng_normal(rng));
        } else if (kind == TOY_SWISSROLL) {
            double t = 1.5 * PI * (1.0 + 2.0 * rng_uniform(rng));
            xn[0] = (real)(t * cos(t) + SWISS_NOISE * rng_normal(rng));
            xn[1] = (real)(t * sin(t) + SWISS_NOISE * rng_normal(rng));
        } else {
            die("toy_sample: unknown toy set %d (ToyKind is 0..%d)", (int)kind, TOY_COUNT - 1);
        }
        if (label) label[n] = lab;
    }
}

void toy_view(ToyKind kind, double lo[2], double hi[2]) {
    Mixture2D m;
    if (toy_mixture(kind, &m) == 0) {
        /* every hill's mean ± 4 standard deviations, then 10% more on each side */
        for (int d = 0; d < 2; d++) { lo[d] = INFINITY; hi[d] = -INFINITY; }
        for (int k = 0; k < m.K; k++)
            for (int d = 0; d < 2; d++) {
                double r = 4.0 * sqrt(m.cov[k][d][d]);
                lo[d] = fmin(lo[d], m.mu[k][d] - r);
                hi[d] = fmax(hi[d], m.mu[k][d] + r);
            }
        for (int d = 0; d < 2; d++) {
            double pad = 0.1 * (hi[d] - lo[d]);
            lo[d] -= pad; hi[d] += pad;
        }
    } else if (kind == TOY_MOONS) {
        lo[0] = -1.5; hi[0] = 2.5; lo[1] = -1.0; hi[1] = 1.5;
    } else {
        lo[0] = -16.0; hi[0] = 16.0; lo[1] = -16.0; hi[1] = 16.0;
    }
}

/* ========================================================================================
 * Gaussian mixtures: one 2D Gaussian
 *   log N(x; μ, Σ) = −log 2π − ½ log det Σ − ½ (x − μ)ᵀ Σ⁻¹ (x − μ)              */

typedef struct {
    double inv[2][2];   /* Σ⁻¹ */
    double logdet;      /* log det Σ */
} Gauss2Cache;

static Gauss2Cache gauss2_prepare(const double cov[2][2]) {
    Gauss2Cache g;
    double a = cov[0][0], b = cov[0][1], c = cov[1][1];
    double det = a * c - b * b;
    if (!(det > 0.0) || !(a > 0.0)) die("mixture: covariance [[%g, %g], [%g, %g]] is not "
                                        "positive definite (check the mixture)", a, b, b, c);
    g.inv[0][0] = c / det; g.inv[0][1] = -b / det;
    g.inv[1][0] = -b / det; g.inv[1][1] = a / det;
    g.logdet = log(det);
    return g;
}

static void check_mixture(const Mixture2D *m) {
    if (m->K < 1 || m->K > MIX_MAX)
        die("mixture: K = %d components, need 1..%d (fill it with toy_mixture)", m->K, MIX_MAX);
}

/* log w_k + log N(x; μ_k, Σ_k) for every k into lw (K); returns the largest. */
static double component_logs(const Mixture2D *m, const double x[2], double *lw,
                             Gauss2Cache *cache) {
    check_mixture(m);
    double best = -INFINITY;
    for (int k = 0; k < m->K; k++) {
        cache[k] = gauss2_prepare(m->cov[k]);
        double d0 = x[0] - m->mu[k][0], d1 = x[1] - m->mu[k][1];
        double q = d0 * (cache[k].inv[0][0] * d0 + cache[k].inv[0][1] * d1)
                 + d1 * (cache[k].inv[1][0] * d0 + cache[k].inv[1][1] * d1);
        lw[k] = log(m->w[k]) - log(2.0 * PI) - 0.5 * cache[k].logdet - 0.5 * q;
        if (lw[k] > best) best = lw[k];
    }
    return best;
}

/* log Σ_k exp(lw_k) = M + log Σ_k exp(lw_k − M), M = max_k lw_k: no exp overflows or
 * underflows to a 0 total, however far x is from every hill. */
static double log_sum_exp(const double *lw, int K, double M) {
    double s = 0.0;
    for (int k = 0; k < K; k++) s += exp(lw[k] - M);
    return M + log(s);
}

/* ========================================================================================
 * Gaussian mixtures: sampling, density, score */

void mixture_sample(const Mixture2D *m, real *x, int *label, int N, Rng *rng) {
    /* Cholesky factor L of each Σ_k (Σ = L Lᵀ), so that μ + L z ~ N(μ, Σ) for z ~ N(0, I) */
    double L[MIX_MAX][3];   /* L00, L10, L11 */
    check_mixture(m);
    for (int k = 0; k < m->K; k++) {
        (void)gauss2_prepare(m->cov[k]);   /* dies if Σ_k is not positive definite */
        L[k][0] = sqrt(m->cov[k][0][0]);
        L[k][1] = m->cov[k][1][0] / L[k][0];
        L[k][2] = sqrt(m->cov[k][1][1] - L[k][1] * L[k][1]);
    }
    for (int n = 0; n < N; n++) {
        /* component k with probability w_k (the last one takes any rounding leftover) */
        double u = rng_uniform(rng), acc = 0.0;
        int k = m->K - 1;
        for (int j = 0; j < m->K - 1; j++) {
            acc += m->w[j];
            if (u < acc) { k = j; break; }
        }
        double z0 = rng_normal(rng), z1 = rng_normal(rng);
        x[2 * n + 0] = (real)(m->mu[k][0] + L[k][0] * z0);
        x[2 * n + 1] = (real)(m->mu[k][1] + L[k][1] * z0 + L[k][2] * z1);
        if (label) label[n] = k;
    }
}

double mixture_logpdf(const Mixture2D *m, const double x[2]) {
    double lw[MIX_MAX];
    Gauss2Cache g[MIX_MAX];
    double M = component_logs(m, x, lw, g);
    return log_sum_exp(lw, m->K, M);
}

/* ∇ log p(x) = Σ_k r_k(x) ∇ log N(x; μ_k, Σ_k) = Σ_k r_k(x) (−Σ_k⁻¹ (x − μ_k)),
 * r_k(x) = w_k N(x; μ_k, Σ_k) / p(x) = exp(lw_k − log p) */
void mixture_score(const Mixture2D *m, const double x[2], double grad[2]) {
    double lw[MIX_MAX];
    Gauss2Cache g[MIX_MAX];
    double logp = log_sum_exp(lw, m->K, component_logs(m, x, lw, g));
    grad[0] = grad[1] = 0.0;
    for (int k = 0; k < m->K; k++) {
        double r = exp(lw[k] - logp);
        double d0 = x[0] - m->mu[k][0], d1 = x[1] - m->mu[k][1];
        grad[0] -= r * (g[k].inv[0][0] * d0 + g[k].inv[0][1] * d1);
        grad[1] -= r * (g[k].inv[1][0] * d0 + g[k].inv[1][1] * d1);
    }
}

int mixture_component_of(const Mixture2D *m, const double x[2]) {
    double lw[MIX_MAX];
    Gauss2Cache g[MIX_MAX];
    component_logs(m, x, lw, g);
    int best = 0;
    for (int k = 1; k < m->K; k++)
        if (lw[k] > lw[best]) best = k;
    return best;
}

/* mean = Σ w_k μ_k;  cov = Σ w_k (Σ_k + μ_k μ_kᵀ) − mean meanᵀ (law of total variance) */
void mixture_moments(const Mixture2D *m, double mean[2], double cov[2][2]) {
    mean[0] = mean[1] = 0.0;
    for (int k = 0; k < m->K; k++)
        for (int i = 0; i < 2; i++) mean[i] += m->w[k] * m->mu[k][i];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double s = 0.0;
            for (int k = 0; k < m->K; k++) {
                double di = m->mu[k][i] - mean[i], dj = m->mu[k][j] - mean[j];
                s += m->w[k] * (m->cov[k][i][j] + di * dj);   /* centred: no cancellation */
            }
            cov[i][j] = s;
        }
}

/* ========================================================================================
 * Gaussian mixtures: changes of coordinates and the forward process */

void mixture_affine(const Mixture2D *in, const double shift[2], const double scale[2],
                    Mixture2D *out) {
    if (out != in) *out = *in;
    for (int k = 0; k < in->K; k++) {
        for (int i = 0; i < 2; i++) out->mu[k][i] = (in->mu[k][i] - shift[i]) / scale[i];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) out->cov[k][i][j] = in->cov[k][i][j] / (scale[i] * scale[j]);
    }
}

/* q_t(x_t) = Σ_k w_k N(x_t; √ᾱ μ_k, ᾱ Σ_k + (1 − ᾱ) I):
 * if x₀ ~ N(μ_k, Σ_k) and ε ~ N(0, I) independent, then x_t = √ᾱ x₀ + √(1−ᾱ) ε is Gaussian
 * with mean √ᾱ μ_k and covariance (√ᾱ)² Σ_k + (√(1−ᾱ))² I. */
void mixture_diffuse(const Mixture2D *in, double alpha_bar, Mixture2D *out) {
    if (!(alpha_bar >= 0.0 && alpha_bar <= 1.0))
        die("mixture_diffuse: alpha_bar = %g is outside [0, 1]", alpha_bar);
    double sa = sqrt(alpha_bar);
    if (out != in) *out = *in;
    for (int k = 0; k < in->K; k++) {
        for (int i = 0; i < 2; i++) out->mu[k][i] = sa * in->mu[k][i];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                out->cov[k][i][j] = alpha_bar * in->cov[k][i][j] + (i == j ? 1.0 - alpha_bar : 0.0);
    }
}

/* ========================================================================================
 * Gaussian mixtures: the optimal denoiser
 *
 * For x_t = √ᾱ x₀ + √(1−ᾱ) ε, Tweedie's formula (Robbins 1956, Efron 2011) gives
 *   E[√ᾱ x₀ | x_t] = x_t + (1 − ᾱ) ∇ log q_t(x_t),
 * and since ε = (x_t − √ᾱ x₀) / √(1−ᾱ),
 *   E[ε | x_t] = −√(1−ᾱ) ∇ log q_t(x_t)
 * (the denoising score matching identity of Vincent 2011). A network trained with the
 * note's L_simple = E‖ε − ε_θ(x_t, t)‖² converges to this function, so the tests and the
 * story can compare a trained ε_θ with the answer it should reach. */

void mixture_eps_star(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                      double eps[2]) {
    Mixture2D qt;
    double score[2];
    mixture_diffuse(m0, alpha_bar, &qt);
    mixture_score(&qt, x_t, score);
    double s1 = sqrt(1.0 - alpha_bar);
    eps[0] = -s1 * score[0];
    eps[1] = -s1 * score[1];
}

/* J[i][j] = ∂ε*_i / ∂x_t[j] = −√(1−ᾱ) ∇² log q_t(x_t), the Hessian of a mixture's
 * log-density being
 *   ∇² log q = Σ_k r_k (s_k s_kᵀ − Σ_t,k⁻¹) − s sᵀ,   s_k = −Σ_t,k⁻¹ (x_t − √ᾱ μ_k),
 *   s = Σ_k r_k s_k = ∇ log q  (differentiate s = Σ_k r_k s_k, with ∇r_k = r_k (s_k − s)). */
void mixture_eps_star_jacobian(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                               double eps[2], double J[2][2]) {
    Mixture2D qt;
    mixture_diffuse(m0, alpha_bar, &qt);
    double lw[MIX_MAX], sk[MIX_MAX][2], r[MIX_MAX], s[2] = { 0.0, 0.0 };
    Gauss2Cache g[MIX_MAX];   /* g[k].inv = Σ_t,k⁻¹ */
    double logq = log_sum_exp(lw, qt.K, component_logs(&qt, x_t, lw, g));
    for (int k = 0; k < qt.K; k++) {
        double d0 = x_t[0] - qt.mu[k][0], d1 = x_t[1] - qt.mu[k][1];
        r[k] = exp(lw[k] - logq);
        sk[k][0] = -(g[k].inv[0][0] * d0 + g[k].inv[0][1] * d1);
        sk[k][1] = -(g[k].inv[1][0] * d0 + g[k].inv[1][1] * d1);
        s[0] += r[k] * sk[k][0];
        s[1] += r[k] * sk[k][1];
    }
    double s1 = sqrt(1.0 - alpha_bar);
    for (int i = 0; i < 2; i++) {
        eps[i] = -s1 * s[i];
        for (int j = 0; j < 2; j++) {
            double hess = -s[i] * s[j];
            for (int k = 0; k < qt.K; k++) hess += r[k] * (sk[k][i] * sk[k][j] - g[k].inv[i][j]);
            J[i][j] = -s1 * hess;
        }
    }
}

/* E[x₀ | x_t] = Σ_k r_k(x_t) E[x₀ | x_t, k], r_k the responsibilities under q_t, and for
 * one Gaussian component (x₀, x_t) are jointly Gaussian with Cov(x₀, x_t) = √ᾱ Σ_k, so
 *   E[x₀ | x_t, k] = μ_k + √ᾱ Σ_k Σ_t,k⁻¹ (x_t − √ᾱ μ_k),   Σ_t,k = ᾱ Σ_k + (1 − ᾱ) I. */
void mixture_x0_star(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                     double x0[2]) {
    Mixture2D qt;
    mixture_diffuse(m0, alpha_bar, &qt);
    double lw[MIX_MAX];
    Gauss2Cache g[MIX_MAX];   /* g[k].inv = Σ_t,k⁻¹ */
    double logq = log_sum_exp(lw, qt.K, component_logs(&qt, x_t, lw, g));
    double sa = sqrt(alpha_bar);
    x0[0] = x0[1] = 0.0;
    for (int k = 0; k < m0->K; k++) {
        double r = exp(lw[k] - logq);
        double d0 = x_t[0] - qt.mu[k][0], d1 = x_t[1] - qt.mu[k][1];   /* x_t − √ᾱ μ_k */
        double v0 = g[k].inv[0][0] * d0 + g[k].inv[0][1] * d1;          /* Σ_t,k⁻¹ (…) */
        double v1 = g[k].inv[1][0] * d0 + g[k].inv[1][1] * d1;
        const double (*S)[2] = m0->cov[k];
        x0[0] += r * (m0->mu[k][0] + sa * (S[0][0] * v0 + S[0][1] * v1));
        x0[1] += r * (m0->mu[k][1] + sa * (S[1][0] * v0 + S[1][1] * v1));
    }
}

/* ========================================================================================
 * Standardization */

void data_mean_std(const real *x, int N, int D, double *mean, double *std) {
    for (int d = 0; d < D; d++) {
        double s = 0.0;
        for (int n = 0; n < N; n++) s += x[(size_t)n * D + d];
        mean[d] = N > 0 ? s / N : 0.0;
        double v = 0.0;   /* two passes: Σ (x − mean)² does not cancel like Σx² − N mean² */
        for (int n = 0; n < N; n++) {
            double e = x[(size_t)n * D + d] - mean[d];
            v += e * e;
        }
        std[d] = N > 0 ? sqrt(v / N) : 0.0;
        if (!(std[d] > 0.0)) std[d] = 1.0;   /* constant coordinate: shift only */
    }
}

void standardize(real *x, int N, int D, const double *mean, const double *std) {
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) {
            real *v = &x[(size_t)n * D + d];
            *v = (real)((*v - mean[d]) / std[d]);
        }
}

void unstandardize(real *x, int N, int D, const double *mean, const double *std) {
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) {
            real *v = &x[(size_t)n * D + d];
            *v = (real)(*v * std[d] + mean[d]);
        }
}

/* ========================================================================================
 * Energy distance, V-statistic form:
 *   E(A, B) = 2/(na nb) Σ_ij ‖a_i − b_j‖ − 1/na² Σ_ij ‖a_i − a_j‖ − 1/nb² Σ_ij ‖b_i − b_j‖ */

static double dist(const real *u, const real *v, int D) {
    double s = 0.0;
    for (int d = 0; d < D; d++) {
        double e = (double)u[d] - (double)v[d];
        s += e * e;
    }
    return sqrt(s);
}

/* Σ_{i,j} ‖a_i − a_j‖ over all ordered pairs = 2 Σ_{i<j} */
static double sum_within(const real *a, int n, int D) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) s += dist(a + (size_t)i * D, a + (size_t)j * D, D);
    return 2.0 * s;
}

double energy_distance(const real *a, int na, const real *b, int nb, int D) {
    if (na <= 0 || nb <= 0) die("energy_distance: empty point set (na = %d, nb = %d)", na, nb);
    double ab = 0.0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) ab += dist(a + (size_t)i * D, b + (size_t)j * D, D);
    double e_ab = ab / ((double)na * nb);
    double e_aa = sum_within(a, na, D) / ((double)na * na);
    double e_bb = sum_within(b, nb, D) / ((double)nb * nb);
    return 2.0 * e_ab - e_aa - e_bb;
}

/* ========================================================================================
 * Built-in digits: a 5x7 bitmap font, drawn as strokes.
 *
 * Each glyph is 7 rows of 5 cells ('#' = ink). The renderer joins every pair of inked
 * cells that touch side by side, and every diagonal pair whose two shared side cells are
 * both blank (so corners are cut round instead of filled), then draws those segments as
 * round-capped strokes: pixels near a segment are ink, with a one-pixel anti-aliased edge. */

#define GLYPH_W 5
#define GLYPH_H 7

static const char *const DIGIT_FONT[10][GLYPH_H] = {
    { ".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###." },  /* 0 */
    { "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###." },  /* 1 */
    { ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####" },  /* 2 */
    { "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###." },  /* 3 */
    { "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#." },  /* 4 */
    { "#####", "#....", "####.", "....#", "....#", "#...#", ".###." },  /* 5 */
    { "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###." },  /* 6 */
    { "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..." },  /* 7 */
    { ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###." },  /* 8 */
    { ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.." },  /* 9 */
};

/* A glyph's strokes as segments between cell centres (u = column, v = row). */
#define MAX_SEGMENTS (GLYPH_W * GLYPH_H * 4)
typedef struct { double u0, v0, u1, v1; } Segment;

static int glyph_ink(int digit, int row, int col) {
    if (row < 0 || row >= GLYPH_H || col < 0 || col >= GLYPH_W) return 0;
    return DIGIT_FONT[digit][row][col] == '#';
}

static int glyph_segments(int digit, Segment *seg) {
    int n = 0;
    for (int r = 0; r < GLYPH_H; r++)
        for (int c = 0; c < GLYPH_W; c++) {
            if (!glyph_ink(digit, r, c)) continue;
            int joined = 0;
            /* right and down neighbours (each side pair once) */
            if (glyph_ink(digit, r, c + 1)) { seg[n++] = (Segment){c, r, c + 1, r}; joined = 1; }
            if (glyph_ink(digit, r + 1, c)) { seg[n++] = (Segment){c, r, c, r + 1}; joined = 1; }
            /* diagonals down-right and down-left, only where no side path exists */
            if (glyph_ink(digit, r + 1, c + 1) && !glyph_ink(digit, r, c + 1) &&
                !glyph_ink(digit, r + 1, c)) { seg[n++] = (Segment){c, r, c + 1, r + 1}; joined = 1; }
            if (glyph_ink(digit, r + 1, c - 1) && !glyph_ink(digit, r, c - 1) &&
                !glyph_ink(digit, r + 1, c)) { seg[n++] = (Segment){c, r, c - 1, r + 1}; joined = 1; }
            if (!joined) seg[n++] = (Segment){c, r, c, r};   /* a dot (or a joined end) */
        }
    return n;
}

/* distance from point p to the segment s, all in pixels */
static double segment_distance(double px, double py, const Segment *s) {
    double dx = s->u1 - s->u0, dy = s->v1 - s->v0;
    double len2 = dx * dx + dy * dy;
    double t = len2 > 0.0 ? ((px - s->u0) * dx + (py - s->v0) * dy) / len2 : 0.0;
    t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
    double ex = px - (s->u0 + t * dx), ey = py - (s->v0 + t * dy);
    return sqrt(ex * ex + ey * ey);
}

/* The random look of one digit, in pixels of an H x W image (28 x 28 as the reference):
 *   height   HEIGHT_LO..HEIGHT_HI of H from the top of the strokes to the bottom,
 *   width    ASPECT_LO..ASPECT_HI times the font's own 5:7 proportion,
 *   slant    horizontal shift of SLANT_LO..SLANT_HI per unit of height (italic),
 *   stroke   half-width STROKE_LO..STROKE_HI pixels at 28 x 28, scaled with the image,
 *   position the centre moved by up to ±JITTER of the image size (MNIST centres its
 *            digits too), always keeping the strokes MARGIN pixels inside the border. */
#define HEIGHT_LO 0.60
#define HEIGHT_HI 0.80
#define ASPECT_LO 0.85
#define ASPECT_HI 1.20
#define SLANT_LO (-0.10)
#define SLANT_HI 0.25
#define STROKE_LO 1.0
#define STROKE_HI 1.6
#define JITTER 0.08
#define STROKE_MIN 0.55   /* below ~0.5 px half-width a stroke fades to gray at 16x16 */
#define MARGIN 1.05       /* blank pixels at the border: a hair over 1, so that rounding
                             cannot put a trace of ink into the outermost ring */

static double uniform_in(Rng *rng, double lo, double hi) { return lo + (hi - lo) * rng_uniform(rng); }

void digit_render(real *x, int digit, int H, int W, Rng *rng) {
    if (digit < 0 || digit > 9) die("digit_render: digit %d is not in 0..9", digit);
    if (H < 8 || W < 8 || H > 256 || W > 256)
        die("digit_render: image size %dx%d is outside 8..256 (try 16x16 or 28x28)", H, W);
    int side = H < W ? H : W;
    double r = uniform_in(rng, STROKE_LO, STROKE_HI) * side / 28.0;   /* stroke half-width */
    if (r < STROKE_MIN) r = STROKE_MIN;
    double height = fmin(uniform_in(rng, HEIGHT_LO, HEIGHT_HI) * H, H - 2.0 * MARGIN);
    double sy = (height - 2.0 * r) / (GLYPH_H - 1);              /* pixels per font row */
    double sx = sy * uniform_in(rng, ASPECT_LO, ASPECT_HI);      /* pixels per font column */
    double slant = uniform_in(rng, SLANT_LO, SLANT_HI);
    /* the strokes' horizontal extent, with the slant; shrink sx if it does not fit */
    double extent_x = (GLYPH_W - 1) * sx + fabs(slant) * (GLYPH_H - 1) * sy + 2.0 * r;
    if (extent_x > W - 2.0 * MARGIN) {
        sx -= (extent_x - (W - 2.0 * MARGIN)) / (GLYPH_W - 1);
        extent_x = W - 2.0 * MARGIN;
    }
    double extent_y = (GLYPH_H - 1) * sy + 2.0 * r;
    /* centre of the glyph box: the image centre moved by up to JITTER of the image size,
     * and never so far that the box enters the margin */
    double cx = 0.5 * W + uniform_in(rng, -JITTER, JITTER) * W;
    double cy = 0.5 * H + uniform_in(rng, -JITTER, JITTER) * H;
    cx = fmin(fmax(cx, MARGIN + 0.5 * extent_x), W - MARGIN - 0.5 * extent_x);
    cy = fmin(fmax(cy, MARGIN + 0.5 * extent_y), H - MARGIN - 0.5 * extent_y);

    /* font cell (u, v) -> pixel: v runs down; the slant moves the top (v < 3) right */
    Segment seg[MAX_SEGMENTS];
    int ns = glyph_segments(digit, seg);
    double u_mid = 0.5 * (GLYPH_W - 1), v_mid = 0.5 * (GLYPH_H - 1);
    for (int i = 0; i < ns; i++) {
        Segment f = seg[i];
        seg[i].u0 = cx + sx * (f.u0 - u_mid) - slant * sy * (f.v0 - v_mid);
        seg[i].v0 = cy + sy * (f.v0 - v_mid);
        seg[i].u1 = cx + sx * (f.u1 - u_mid) - slant * sy * (f.v1 - v_mid);
        seg[i].v1 = cy + sy * (f.v1 - v_mid);
    }
    /* ink = 1 within r of a stroke, 0 beyond r + 1, linear in between; value = 2 ink − 1 */
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            double px = j + 0.5, py = i + 0.5, d = INFINITY;   /* pixel centre */
            for (int k = 0; k < ns; k++) d = fmin(d, segment_distance(px, py, &seg[k]));
            double ink = r + 0.5 - d;
            ink = ink < 0.0 ? 0.0 : (ink > 1.0 ? 1.0 : ink);
            x[(size_t)i * W + j] = (real)(2.0 * ink - 1.0);
        }
}

void digits_sample(real *x, int *label, int N, int H, int W, Rng *rng) {
    for (int n = 0; n < N; n++) {
        int digit = rng_int(rng, 10);
        digit_render(x + (size_t)n * H * W, digit, H, W, rng);   /* seek to x[n, 0, :, :] */
        if (label) label[n] = digit;
    }
}

/* ========================================================================================
 * Loaders: shared pieces. Every failure is one line "error: <file>: <problem>; <fix>". */

/* Largest number of values a loader will allocate (2^28 = 2 GB as double, 1 GB as float);
 * the full MNIST training set is 47 million. Files (after gunzip) are read whole. */
#define LOAD_MAX_VALUES ((uint64_t)1 << 28)
#define LOAD_MAX_BYTES ((size_t)1 << 30)

static int load_error(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: %s: ", path);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return -1;
}

/* The bytes of a data file as read: a gzip file (magic 1f 8b) is decompressed (gz.c), a
 * tar archive is refused. Takes raw (malloc'ed, n bytes): it becomes *bytes or is freed.
 * 0, or -1 after one line. */
static int decode_data_bytes(const char *path, unsigned char *raw, size_t n,
                             unsigned char **bytes, size_t *size) {
    if (gz_is_gzip(raw, n)) {
        unsigned char *plain;
        size_t plain_n;
        char err[GZ_ERR_MAX];
        int rc = gunzip_memory(raw, n, LOAD_MAX_BYTES, &plain, &plain_n, err);
        free(raw);
        if (rc != 0)
            return load_error(path, "gzip data is damaged: %s; download the file again", err);
        raw = plain;
        n = plain_n;
    }
    if (n >= 262 && memcmp(raw + 257, "ustar", 5) == 0) {
        free(raw);
        return load_error(path, "is a tar archive; extract it first with `tar xf %s` and pass "
                          "one of its files", path);
    }
    *bytes = raw;
    *size = n;
    return 0;
}

/* A copy of a file already in memory, decoded as read_data_file does. */
static int decode_memory(const char *name, const unsigned char *mem, size_t n,
                         unsigned char **bytes, size_t *size) {
    if (n > LOAD_MAX_BYTES)
        return load_error(name, "is %zu bytes, more than the %zu a loader reads", n,
                          LOAD_MAX_BYTES);
    unsigned char *raw = xmalloc(n ? n : 1, "data file");
    if (n) memcpy(raw, mem, n);
    return decode_data_bytes(name, raw, n, bytes, size);
}

/* Read the whole file at `path` into *bytes (*size bytes, malloc'ed); a gzip file (magic
 * 1f 8b) is decompressed on the way (gz.c), a tar archive is refused. `example` names the
 * file the user should have (for the hint). 0, or -1 after one line. */
static int read_data_file(const char *path, unsigned char **bytes, size_t *size,
                          const char *example) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return load_error(path, "cannot open (%s); check the path, e.g. %s", strerror(errno),
                          example);
    errno = 0;
    if (fgetc(f) == EOF && ferror(f)) {       /* a folder opens, but cannot be read */
        int e = errno;
        fclose(f);
        return load_error(path, "cannot read (%s); pass a file such as %s",
                          e ? strerror(e) : "read error", example);
    }
    long end = -1;
    if (fseek(f, 0, SEEK_END) == 0) end = ftell(f);
    if (end < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return load_error(path, "cannot determine the file size (not a regular file?); pass "
                          "a file such as %s", example);
    }
    if ((uint64_t)end > LOAD_MAX_BYTES) {
        fclose(f);
        return load_error(path, "is %lld bytes, more than the %zu a loader reads; pass a "
                          "smaller file such as %s", (long long)end, LOAD_MAX_BYTES, example);
    }
    size_t n = (size_t)end;
    unsigned char *raw = xmalloc(n ? n : 1, "data file");
    if (fread(raw, 1, n, f) != n) {
        fclose(f);
        free(raw);
        return load_error(path, "cannot read (%s); pass a regular file such as %s",
                          errno ? strerror(errno) : "short read", example);
    }
    fclose(f);
    return decode_data_bytes(path, raw, n, bytes, size);
}

static uint32_t read_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A pixel byte k in 0..255 to [−1, 1]: k / 127.5 − 1 (0 -> −1, 255 -> +1). */
static real pixel_value(unsigned char k) { return (real)(k / 127.5 - 1.0); }

void data_free(void *p) { free(p); }

/* ========================================================================================
 * Loaders: IDX (LeCun's MNIST format, also Fashion-MNIST), plain or gzipped.
 *   bytes 0-3  magic 0x00000803 (0, 0, type 0x08 = unsigned byte, 3 dimensions)
 *   then       N, rows, cols, each a big-endian 32-bit number
 *   then       N·rows·cols pixel bytes, image after image, row-major
 * Labels: magic 0x00000801, N, then N bytes. */

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_IMAGES_EXAMPLE "train-images-idx3-ubyte.gz"
#define IDX_LABELS_EXAMPLE "train-labels-idx1-ubyte.gz"

/* Read the magic and the `ndim` sizes of an IDX header from the file's `size` bytes;
 * 0 or -1 after a message. */
static int read_idx_header(const unsigned char *head, size_t size, const char *path,
                           uint32_t want_magic, int ndim, uint32_t *dims) {
    size_t need = 4 + 4 * (size_t)ndim;
    const char *what = want_magic == IDX_IMAGES_MAGIC ? "images" : "labels";
    uint32_t magic = size >= 4 ? read_be32(head) : want_magic;   /* the magic first, if any */
    if (magic == want_magic && size < need)
        return load_error(path, "too short for an IDX %s header (%zu bytes, need %zu); the "
                          "file is truncated or empty, download it again", what, size, need);
    if (magic != want_magic) {
        if (magic == IDX_LABELS_MAGIC || magic == IDX_IMAGES_MAGIC)
            return load_error(path, "is an IDX %s file (magic 0x%08x), not %s; pass the "
                              "matching %s-idx file", magic == IDX_LABELS_MAGIC ? "labels"
                              : "images", magic, what, what);
        return load_error(path, "wrong magic number 0x%08x (IDX %s start with 0x%08x); this "
                          "is not an IDX %s file such as %s", magic, what, want_magic, what,
                          want_magic == IDX_IMAGES_MAGIC ? IDX_IMAGES_EXAMPLE
                                                         : IDX_LABELS_EXAMPLE);
    }
    for (int i = 0; i < ndim; i++) dims[i] = read_be32(head + 4 + 4 * i);
    return 0;
}

/* Check that the file holds exactly header + payload bytes. */
static int check_idx_size(const char *path, uint64_t size, uint64_t header, uint64_t payload,
                          const char *declared) {
    if (size < header + payload)
        return load_error(path, "truncated: the header declares %s = %llu bytes of data but "
                          "the file has %llu; download it again", declared,
                          (unsigned long long)payload, (unsigned long long)(size - header));
    if (size > header + payload)
        return load_error(path, "has %llu bytes after the %s its header declares; the header "
                          "or the file is damaged, download it again",
                          (unsigned long long)(size - header - payload), declared);
    return 0;
}

/* Parse the IDX images in the file's bytes; *declared = the count in the header. */
static int parse_idx_images(const unsigned char *file, size_t size, const char *path,
                            real **out, int *N, int *H, int *W, int max_n, uint64_t *declared_n) {
    uint32_t dims[3] = {0, 0, 0};
    if (read_idx_header(file, size, path, IDX_IMAGES_MAGIC, 3, dims) != 0) return -1;
    uint64_t n = dims[0], rows = dims[1], cols = dims[2];
    char declared[96];
    snprintf(declared, sizeof declared, "%llu images of %llux%llu", (unsigned long long)n,
             (unsigned long long)rows, (unsigned long long)cols);
    if (n == 0 || rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE)
        return load_error(path, "the header declares %s; need at least one image and sides "
                          "in 1..%d, the file is damaged or not an image set", declared,
                          IDX_MAX_SIDE);
    if (check_idx_size(path, size, 16, n * rows * cols, declared) != 0) return -1;
    uint64_t n_load = (max_n > 0 && (uint64_t)max_n < n) ? (uint64_t)max_n : n;
    if (n_load > INT_MAX || n_load * rows * cols > LOAD_MAX_VALUES)
        return load_error(path, "too large to load: %s (limit %llu values); pass max_n to "
                          "load fewer images", declared, (unsigned long long)LOAD_MAX_VALUES);
    size_t values = (size_t)(n_load * rows * cols);
    real *x = xmalloc(values * sizeof(real), "IDX images");
    const unsigned char *pixels = file + 16;
    for (size_t i = 0; i < values; i++) x[i] = pixel_value(pixels[i]);
    *out = x; *N = (int)n_load; *H = (int)rows; *W = (int)cols;
    *declared_n = n;
    return 0;
}

int load_idx_images(const char *path, real **out, int *N, int *H, int *W, int max_n) {
    unsigned char *file;
    size_t size;
    uint64_t declared;
    if (read_data_file(path, &file, &size, IDX_IMAGES_EXAMPLE) != 0) return -1;
    int rc = parse_idx_images(file, size, path, out, N, H, W, max_n, &declared);
    free(file);
    return rc;
}

static int parse_idx_labels(const unsigned char *file, size_t size, const char *path,
                            int **labels, int *N, int max_n) {
    uint32_t dims[1] = {0};
    if (read_idx_header(file, size, path, IDX_LABELS_MAGIC, 1, dims) != 0) return -1;
    uint64_t n = dims[0];
    char declared[64];
    snprintf(declared, sizeof declared, "%llu labels", (unsigned long long)n);
    if (n == 0)
        return load_error(path, "the header declares 0 labels; the file is damaged, download "
                          "it again");
    if (check_idx_size(path, size, 8, n, declared) != 0) return -1;
    uint64_t n_load = (max_n > 0 && (uint64_t)max_n < n) ? (uint64_t)max_n : n;
    int *lab = xmalloc((size_t)n_load * sizeof(int), "IDX labels");
    for (uint64_t i = 0; i < n_load; i++) lab[i] = file[8 + i];
    *labels = lab; *N = (int)n_load;
    return 0;
}

int load_idx_labels(const char *path, int **labels, int *N, int max_n) {
    unsigned char *file;
    size_t size;
    if (read_data_file(path, &file, &size, IDX_LABELS_EXAMPLE) != 0) return -1;
    int rc = parse_idx_labels(file, size, path, labels, N, max_n);
    free(file);
    return rc;
}

/* ========================================================================================
 * Loaders: CIFAR-10 binary version (cifar-10-binary.tar.gz, files data_batch_1.bin ...
 * test_batch.bin): no header, records of 1 label byte (0..9) + 3072 pixel bytes, the
 * 32x32 red plane, then green, then blue, each row-major. A gzipped batch is read too. */

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)   /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)              /* 3073 */
#define CIFAR_EXAMPLE "cifar-10-batches-bin/data_batch_1.bin"

static int parse_cifar10(const unsigned char *file, size_t size, const char *path,
                         real **out, int **labels, int *N, int max_n) {
    if (size == 0 || size % CIFAR_RECORD != 0) {
        if (size > 0 && size % (CIFAR_RECORD + 1) == 0)
            return load_error(path, "has records of 3074 bytes (CIFAR-100, two label bytes); "
                              "only CIFAR-10 binary files such as %s are supported",
                              CIFAR_EXAMPLE);
        return load_error(path, "size %zu is not a positive multiple of the 3073-byte "
                          "CIFAR-10 record; the file is truncated or not a CIFAR-10 binary "
                          "batch (use the binary version, e.g. %s)", size, CIFAR_EXAMPLE);
    }
    uint64_t n = size / CIFAR_RECORD;
    uint64_t n_load = (max_n > 0 && (uint64_t)max_n < n) ? (uint64_t)max_n : n;
    if (n_load > INT_MAX || n_load * CIFAR_PIXELS > LOAD_MAX_VALUES)
        return load_error(path, "too large to load: %llu images (limit %llu values); pass "
                          "max_n to load fewer", (unsigned long long)n,
                          (unsigned long long)LOAD_MAX_VALUES);
    for (uint64_t i = 0; i < n_load; i++) {
        int label = file[i * CIFAR_RECORD];
        if (label > 9)
            return load_error(path, "record %llu has label %d, not 0..9; this is not a "
                              "CIFAR-10 binary batch such as %s", (unsigned long long)i,
                              label, CIFAR_EXAMPLE);
    }
    real *x = xmalloc((size_t)n_load * CIFAR_PIXELS * sizeof(real), "CIFAR-10 images");
    int *lab = xmalloc((size_t)n_load * sizeof(int), "CIFAR-10 labels");
    for (uint64_t i = 0; i < n_load; i++) {
        const unsigned char *rec = file + i * CIFAR_RECORD;   /* seek to record i */
        lab[i] = rec[0];
        real *xi = x + (size_t)i * CIFAR_PIXELS;               /* seek to x[i, 0, :, :] */
        for (int p = 0; p < CIFAR_PIXELS; p++) xi[p] = pixel_value(rec[1 + p]);
    }
    *out = x; *labels = lab; *N = (int)n_load;
    return 0;
}

int load_cifar10(const char *path, real **out, int **labels, int *N, int max_n) {
    unsigned char *file;
    size_t size;
    if (read_data_file(path, &file, &size, CIFAR_EXAMPLE) != 0) return -1;
    int rc = parse_cifar10(file, size, path, out, labels, N, max_n);
    free(file);
    return rc;
}

/* The three loaders on a file already in memory (the fuzz targets' entry points). */
int load_idx_images_mem(const unsigned char *mem, size_t n, const char *name, real **out,
                        int *N, int *H, int *W, int max_n) {
    unsigned char *file;
    size_t size;
    uint64_t declared;
    if (decode_memory(name, mem, n, &file, &size) != 0) return -1;
    int rc = parse_idx_images(file, size, name, out, N, H, W, max_n, &declared);
    free(file);
    return rc;
}

int load_idx_labels_mem(const unsigned char *mem, size_t n, const char *name, int **labels,
                        int *N, int max_n) {
    unsigned char *file;
    size_t size;
    if (decode_memory(name, mem, n, &file, &size) != 0) return -1;
    int rc = parse_idx_labels(file, size, name, labels, N, max_n);
    free(file);
    return rc;
}

int load_cifar10_mem(const unsigned char *mem, size_t n, const char *name, real **out,
                     int **labels, int *N, int max_n) {
    unsigned char *file;
    size_t size;
    if (decode_memory(name, mem, n, &file, &size) != 0) return -1;
    int rc = parse_cifar10(file, size, name, out, labels, N, max_n);
    free(file);
    return rc;
}

/* ========================================================================================
 * Labelled image sets: any of the above, with its labels and class names */

static const char *const DIGIT_NAMES[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
static const char *const FASHION_NAMES[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
static const char *const CIFAR_NAMES[10] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

#define IDX_IMAGES_PART "-images-idx3-ubyte"
#define IDX_LABELS_PART "-labels-idx1-ubyte"

int idx_labels_path(const char *images_path, char *out, size_t out_size) {
    const char *base = strrchr(images_path, '/');
    base = base ? base + 1 : images_path;
    const char *part = strstr(base, IDX_IMAGES_PART);
    size_t len = strlen(images_path);
    if (!part || len + 1 > out_size) return -1;
    size_t at = (size_t)(part - images_path);
    memcpy(out, images_path, len + 1);
    memcpy(out + at, IDX_LABELS_PART, strlen(IDX_LABELS_PART));   /* same length */
    return 0;
}

/* 1 if `s` contains `word`, ignoring ASCII case. */
static int contains_nocase(const char *s, const char *word) {
    size_t n = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && (s[i] | 32) == (word[i] | 32)) i++;
        if (i == n) return 1;
    }
    return 0;
}

/* The labels beside an IDX images file, if the file is there: same count as the images
 * (as declared in both headers), every label 0..9. Absent labels are not an error. */
static int load_idx_companion_labels(ImageSet *set, const char *path, uint64_t declared_n) {
    char lpath[4096], other[4096];
    if (idx_labels_path(path, lpath, sizeof lpath) != 0) return 0;
    /* the same compression first, then the other: x.gz <-> x */
    size_t len = strlen(lpath);
    int gz = len > 3 && strcmp(lpath + len - 3, ".gz") == 0;
    if (gz) { memcpy(other, lpath, len - 3); other[len - 3] = 0; }
    else if (snprintf(other, sizeof other, "%s.gz", lpath) >= (int)sizeof other) other[0] = 0;
    const char *use = NULL;
    FILE *f;
    if ((f = fopen(lpath, "rb"))) { fclose(f); use = lpath; }
    else if (other[0] && (f = fopen(other, "rb"))) { fclose(f); use = other; }
    if (!use) return 0;
    int *label, n_label;
    if (load_idx_labels(use, &label, &n_label, 0) != 0) return -1;
    if ((uint64_t)n_label != declared_n) {
        free(label);
        return load_error(use, "has %d labels but %s has %llu images; the two files do not "
                          "belong together, pass matching files", n_label, path,
                          (unsigned long long)declared_n);
    }
    for (int i = 0; i < n_label; i++)
        if (label[i] > 9) {
            free(label);
            return load_error(use, "label %d of image %d is not a class 0..9; the file is "
                              "damaged, download it again", label[i], i);
        }
    set->label = label;   /* the first set->N of them belong to the loaded images */
    set->classes = 10;
    return 0;
}

int image_set_load(ImageSet *set, const char *path, int max_n) {
    memset(set, 0, sizeof *set);
    unsigned char *file;
    size_t size;
    if (read_data_file(path, &file, &size, IDX_IMAGES_EXAMPLE " or " CIFAR_EXAMPLE) != 0)
        return -1;
    int rc;
    if (size >= 4 && read_be32(file) == IDX_IMAGES_MAGIC) {
        uint64_t declared;
        rc = parse_idx_images(file, size, path, &set->x, &set->N, &set->H, &set->W, max_n,
                              &declared);
        free(file);
        set->C = 1;
        set->class_name = contains_nocase(path, "fashion") ? FASHION_NAMES : DIGIT_NAMES;
        if (rc == 0 && load_idx_companion_labels(set, path, declared) != 0) rc = -1;
    } else if (size >= 4 && read_be32(file) == IDX_LABELS_MAGIC) {
        free(file);
        rc = load_error(path, "is an IDX labels file; pass the images file (e.g. %s), the "
                        "labels beside it are found by name", IDX_IMAGES_EXAMPLE);
    } else {
        rc = parse_cifar10(file, size, path, &set->x, &set->label, &set->N, max_n);
        free(file);
        set->C = 3; set->H = CIFAR_SIDE; set->W = CIFAR_SIDE;
        set->classes = 10;
        set->class_name = CIFAR_NAMES;
    }
    if (rc != 0) { image_set_free(set); return -1; }
    return 0;
}

void image_set_digits(ImageSet *set, int N, int H, int W, Rng *rng) {
    memset(set, 0, sizeof *set);
    set->x = xmalloc((size_t)N * H * W * sizeof(real), "digit images");
    set->label = xmalloc((size_t)N * sizeof(int), "digit labels");
    digits_sample(set->x, set->label, N, H, W, rng);
    set->N = N; set->C = 1; set->H = H; set->W = W;
    set->classes = 10;
    set->class_name = DIGIT_NAMES;
}

void image_set_free(ImageSet *set) {
    free(set->x);
    free(set->label);
    memset(set, 0, sizeof *set);
}

/* ========================================================================================
 * Gaussian mixtures, class-conditional: one component is one class
 *
 * For the mixture q(x₀) = Σ_k w_k q(x₀|k), the class c picks a component, so
 * q(x_t | c) = N(x_t; √ᾱ μ_c, ᾱ Σ_c + (1 − ᾱ) I) in closed form, and the optimal
 * conditional denoiser is Tweedie's formula applied to that one Gaussian. */

void mixture_component(const Mixture2D *m, int k, Mixture2D *out) {
    check_mixture(m);
    if (k < 0 || k >= m->K) die("mixture_component: k = %d, the mixture has %d", k, m->K);
    Mixture2D one;
    memset(&one, 0, sizeof one);
    one.K = 1;
    one.w[0] = 1.0;
    memcpy(one.mu[0], m->mu[k], sizeof one.mu[0]);
    memcpy(one.cov[0], m->cov[k], sizeof one.cov[0]);
    one.label[0] = m->label[k];
    *out = one;
}

/* r_k(x) = exp(lw_k − log p(x)) */
double mixture_posterior(const Mixture2D *m, const double x[2], int k) {
    double lw[MIX_MAX];
    Gauss2Cache g[MIX_MAX];
    double logp = log_sum_exp(lw, m->K, component_logs(m, x, lw, g));
    if (k < 0 || k >= m->K) die("mixture_posterior: k = %d, the mixture has %d", k, m->K);
    return exp(lw[k] - logp);
}

void mixture_eps_star_cond(const Mixture2D *m0, double alpha_bar, const double x_t[2], int c,
                           double eps[2]) {
    if (c == m0->K) {                          /* ∅: the unconditional ε* */
        mixture_eps_star(m0, alpha_bar, x_t, eps);
        return;
    }
    Mixture2D one;
    mixture_component(m0, c, &one);            /* q(x₀ | c), then diffused inside */
    mixture_eps_star(&one, alpha_bar, x_t, eps);
}

/* ε̃ = ε*_c + w (ε*_c − ε*_∅): since ε* = −√(1−ᾱ) ∇ log q_t, this is
 * −√(1−ᾱ) ∇ [(1 + w) log q_t(x|c) − w log q_t(x)] */
void mixture_eps_guided(const Mixture2D *m0, double alpha_bar, const double x_t[2], int c,
                        double w, double eps[2]) {
    double ec[2], en[2];
    mixture_eps_star_cond(m0, alpha_bar, x_t, c, ec);
    mixture_eps_star_cond(m0, alpha_bar, x_t, m0->K, en);
    for (int i = 0; i < 2; i++) eps[i] = ec[i] + w * (ec[i] - en[i]);
}

/* p_w(x₀) ∝ q(x₀|c) (q(x₀|c)/q(x₀))^w = q(x₀|c) (P(c|x₀)/w_c)^w ∝ q(x₀|c) P(c|x₀)^w:
 * propose x₀ ~ q(·|c), accept with probability P(c|x₀)^w. */
double tilted_sample(const Mixture2D *m, int c, double w, real *x, int N, Rng *rng) {
    if (!(w >= 0.0)) die("tilted_sample: w = %g, the rejection sampler needs w >= 0", w);
    Mixture2D one;
    mixture_component(m, c, &one);
    long tries = 0;
    for (int n = 0; n < N; ) {
        real p[2];
        mixture_sample(&one, p, NULL, 1, rng);
        double xd[2] = { p[0], p[1] };
        tries++;
        if (rng_uniform(rng) < pow(mixture_posterior(m, xd, c), w)) {
            x[2 * n] = p[0];
            x[2 * n + 1] = p[1];
            n++;
        }
    }
    return tries ? (double)N / (double)tries : 1.0;
}
