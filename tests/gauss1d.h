/* gauss1d.h: one-dimensional Gaussian data, where every step of the derivations has a
 * closed form. Used by tests/test_derivations.c and by the notebooks' cells
 * (notebooks_md/cells.c), so that a number quoted in a notebook and the check that pins it
 * come from the same lines.
 *
 * Data x₀ ~ N(m, v0). Under the forward process (notebook 01, §4)
 *   x_t ~ N(√ᾱ_t m, V_t),  V_t = ᾱ_t v0 + (1 − ᾱ_t),
 * and the exact optimal denoiser is the conditional mean (notebook 05, §3)
 *   ε*(x_t) = E[ε | x_t] = √(1 − ᾱ_t) (x_t − √ᾱ_t m) / V_t,
 *   Var[x₀ | x_t] = v0 (1 − ᾱ_t) / V_t.
 * Everything here is in nats per dimension (D = 1).
 */
#ifndef GAUSS1D_H
#define GAUSS1D_H

#include <math.h>

#include "../ddpm.h"

typedef struct { const Schedule *s; double m, v0; } Gauss1D;

static inline double g1_marginal_var(const Gauss1D *g, int t) {
    double ab = g->s->alpha_bar[t];
    return ab * g->v0 + (1 - ab);
}

/* the Denoiser's forward: out = ε*(x_t) for every example (D = 1) */
static inline void g1_forward(void *self, real *out, const real *x, const int *t, const int *y, int N) {
    (void)y;   /* unconditional */
    const Gauss1D *g = self;
    for (int n = 0; n < N; n++) {
        double ab = g->s->alpha_bar[t[n]];
        out[n] = (real)(sqrt(1 - ab) * (x[n] - sqrt(ab) * g->m) / g1_marginal_var(g, t[n]));
    }
}

static inline Denoiser g1_denoiser(Gauss1D *g) {
    return (Denoiser){ .self = g, .D = 1, .max_batch = 1 << 20, .forward = g1_forward };
}

/* μ_θ(x_t, t) = A_t x_t + B_t with the exact ε*: read off the library's p_mean at x = 0, 1 */
static inline void g1_mean_line(Gauss1D *g, int t, double *A, double *B) {
    real x[2] = { 0, 1 }, out[2], mu[2];
    int tt[2] = { t, t };
    g1_forward(g, out, x, tt, NULL, 2);
    p_mean(mu, out, PRED_EPS, x, g->s, tt, 2, 1);
    *B = mu[0];
    *A = mu[1] - mu[0];
}

/* The variance of what the sampler returns (x_T ~ N(0, 1), then x_{t−1} = μ_θ + σ_t z with
 * z = 0 at t = 1), exactly: U_T = 1, U_{t−1} = A_t² U_t + σ_t². */
static inline double g1_sampler_var(Gauss1D *g, ReverseVar var) {
    const Schedule *s = g->s;
    double U = 1;
    for (int t = s->T; t >= 1; t--) {
        double A, B;
        g1_mean_line(g, t, &A, &B);
        U = A * A * U + (t > 1 ? reverse_variance(s, var, t) : 0.0);
    }
    return U;
}

/* The true reverse step's variance Var[x_{t−1} | x_t] = β_t V_{t−1} / V_t (notebook 02 §2) */
static inline double g1_reverse_var(const Gauss1D *g, int t) {
    return g->s->beta[t] * g1_marginal_var(g, t - 1) / g1_marginal_var(g, t);
}

/* The expected bound E[L] per dimension with the exact denoiser, in closed form:
 *   L_T     = ½ (ᾱ_T (m² + v0) + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T))
 *   L_{t−1} = coef_x0(t)² Var[x₀|x_t] / (2σ_t²) + c_t         (t ≥ 2; c_t = loss_const_kl)
 *   L_0     = Var[x₀|x₁] / (2σ_1²) + ½ log(2π σ_1²)            (coef_x0(1) = 1)
 * because μ_q − μ_θ = coef_x0 (x₀ − E[x₀|x_t]). */
static inline double g1_bound(const Gauss1D *g, ReverseVar var) {
    const Schedule *s = g->s;
    double abT = s->alpha_bar[s->T];
    double L = 0.5 * (abT * (g->m * g->m + g->v0) + (1 - abT) - 1 - log(1 - abT));
    for (int t = 1; t <= s->T; t++) {
        double sigma2 = reverse_variance_clipped(s, var, t);
        double post = g->v0 * (1 - s->alpha_bar[t]) / g1_marginal_var(g, t);
        L += s->coef_x0[t] * s->coef_x0[t] * post / (2 * sigma2) + loss_const_kl(s, var, t);
    }
    return L;
}

/* −E[log N(x₀; m, v0)] = ½ log(2π e v0), the true NLL per dimension */
static inline double g1_nll(const Gauss1D *g) {
    return 0.5 * log(2 * PI * g->v0) + 0.5;
}

static inline double g1_log_normal(double x, double mean, double var);

/* Bayes' rule on a grid: q(x_{t−1}|x_t, x₀) ∝ q(x_t|x_{t−1}) q(x_{t−1}|x₀), normalized by its
 * sum over 200001 points of [−6, 6]; writes its mean and variance. */
static inline void g1_posterior_grid(const Schedule *s, int t, double xt, double x0, double *mean, double *var) {
    enum { G = 200001 };
    const double lo = -6, h = 12.0 / (G - 1);
    double z = 0, m1 = 0, m2 = 0;
    for (int i = 0; i < G; i++) {
        double x = lo + i * h;
        double w = exp(g1_log_normal(xt, sqrt(s->alpha[t]) * x, s->beta[t]) +
                       g1_log_normal(x, s->sqrt_alpha_bar[t - 1] * x0, 1 - s->alpha_bar[t - 1]));
        z += w; m1 += w * x; m2 += w * x * x;
    }
    *mean = m1 / z;
    *var = m2 / z - *mean * *mean;
}

/* Jensen's step, by Monte Carlo, for one x₀ and T ≤ 16: w = p_θ(x_{0:T}) / q(x_{1:T}|x₀) over
 * N chains x_{1:T} ~ q(·|x₀). p_θ is linear-Gaussian with the exact denoiser (x_T ~ N(0, 1),
 * x_{t−1} = A_t x_t + B_t + σ_t z, the decoder's σ_1² clipped as in vlb_terms), so its
 * marginal p_θ(x₀) = N(x₀; M, V) is exact. Returns −log p_θ(x₀), the mean of w (which
 * estimates p_θ(x₀)) and the mean of −log w (which estimates the bound), with their
 * standard errors. */
typedef struct { double nll, mean_w, se_w, mean_neg_logw, se_neg_logw; } G1Jensen;

static inline G1Jensen g1_jensen(Gauss1D *g, ReverseVar var, double x0, int N, Rng *r) {
    const Schedule *s = g->s;
    double A[17], B[17], M = 0, V = 1;            /* p_θ's marginal of x_t, from t = T down */
    for (int t = s->T; t >= 1; t--) {
        g1_mean_line(g, t, &A[t], &B[t]);
        M = A[t] * M + B[t];
        V = A[t] * A[t] * V + reverse_variance_clipped(s, var, t);   /* t = 1: the decoder */
    }
    double sw = 0, sw2 = 0, sl = 0, sl2 = 0;
    for (int n = 0; n < N; n++) {
        double x[17];
        x[0] = x0;
        for (int t = 1; t <= s->T; t++) x[t] = sqrt(s->alpha[t]) * x[t - 1] + sqrt(s->beta[t]) * rng_normal(r);
        double logw = g1_log_normal(x[s->T], 0, 1);   /* log p(x_T) */
        for (int t = s->T; t >= 1; t--)               /* + log p_θ(x_{t−1}|x_t) − log q(x_t|x_{t−1}) */
            logw += g1_log_normal(x[t - 1], A[t] * x[t] + B[t], reverse_variance_clipped(s, var, t)) -
                    g1_log_normal(x[t], sqrt(s->alpha[t]) * x[t - 1], s->beta[t]);
        double w = exp(logw);
        sw += w; sw2 += w * w; sl -= logw; sl2 += logw * logw;
    }
    G1Jensen j;
    j.nll = -g1_log_normal(x0, M, V);
    j.mean_w = sw / N;
    j.se_w = sqrt((sw2 / N - j.mean_w * j.mean_w) / (N - 1));
    j.mean_neg_logw = sl / N;
    j.se_neg_logw = sqrt((sl2 / N - j.mean_neg_logw * j.mean_neg_logw) / (N - 1));
    return j;
}

/* ----------------------------------------------------------------------------------------
 * A 1D data set with two hills (a 1D dog/cat): 0.55 N(−1, 0.1) + 0.45 N(1.2, 0.1). */
#define TWO_HILL_W 0.55
#define TWO_HILL_M1 (-1.0)
#define TWO_HILL_M2 1.2
#define TWO_HILL_V 0.1

static inline double g1_log_normal(double x, double mean, double var) {
    return -0.5 * log(2 * PI * var) - (x - mean) * (x - mean) / (2 * var);
}

static inline double two_hill_pdf(double x) {
    return TWO_HILL_W * exp(g1_log_normal(x, TWO_HILL_M1, TWO_HILL_V)) +
           (1 - TWO_HILL_W) * exp(g1_log_normal(x, TWO_HILL_M2, TWO_HILL_V));
}

/* One reverse step of size β from x_t, with the two hills as q_{t−1}: the true
 * q(x_{t−1}|x_t) ∝ N(x_t; √(1 − β) x_{t−1}, β) q_{t−1}(x_{t−1}) (Bayes) on a grid, and its
 * KL from the Gaussian with the same mean and variance, in nats: how far from Gaussian
 * the reverse step is. */
static inline double two_hill_reverse_kl(double beta, double xt) {
    enum { G = 40001 };
    static double p[G];
    const double lo = -5, h = 10.0 / (G - 1);
    double z = 0, s1 = 0, s2 = 0;
    for (int i = 0; i < G; i++) {
        double x = lo + i * h;
        p[i] = exp(g1_log_normal(xt, sqrt(1 - beta) * x, beta)) * two_hill_pdf(x);
        z += p[i] * h;
    }
    for (int i = 0; i < G; i++) {
        double x = lo + i * h;
        p[i] /= z;
        s1 += p[i] * x * h;
        s2 += p[i] * x * x * h;
    }
    double var = s2 - s1 * s1, kl = 0;
    for (int i = 0; i < G; i++)
        if (p[i] > 1e-300) kl += p[i] * (log(p[i]) - g1_log_normal(lo + i * h, s1, var)) * h;
    return kl;
}

/* ----------------------------------------------------------------------------------------
 * Two helpers for the 2D dog/cat landscape (data.h), shared the same way. */
#include "../data.h"

/* dog/cat in standardized coordinates, by the mixture's exact mean and standard deviation */
static inline void dogcat_standardized_exact(Mixture2D *m, double mean[2], double sd[2]) {
    Mixture2D note;
    toy_mixture(TOY_DOGCAT, &note);
    double cov[2][2];
    mixture_moments(&note, mean, cov);
    for (int d = 0; d < 2; d++) sd[d] = sqrt(cov[d][d]);
    mixture_affine(&note, mean, sd, m);
}

/* The share of the N points z (N, 2) where the landscape q_t = mixture_diffuse(m, ᾱ) has
 * density below `floor`: where training examples x_t ~ q_t (almost) never land. */
static inline double empty_share(const Mixture2D *m, double alpha_bar, const double (*z)[2], int N,
                                 double floor) {
    Mixture2D q;
    mixture_diffuse(m, alpha_bar, &q);
    int empty = 0;
    for (int n = 0; n < N; n++) empty += mixture_logpdf(&q, z[n]) < log(floor);
    return (double)empty / N;
}

#endif
