/* test_ddpm.c: the diffusion math of ddpm.c.
 *   - the Markov chain q(x_t|x_{t−1}) iterated t times against the closed form q(x_t|x₀)
 *   - the two routes to μ_q (x₀ and ε), the parametrization conversions, μ_θ from each
 *   - every KL-weighted loss against the Gaussian KL computed from the two Gaussians
 *   - the loss gradient w.r.t. the network output, and end to end through the MLP, for
 *     every parametrization × weighting × reverse variance
 *   - sampling with the exact optimal denoiser for Gaussian data (closed form): ancestral
 *     and DDIM reproduce the data's mean and covariance within sampling error
 *   - DDIM with η = 1 and S = T is ancestral sampling; same seed, same bits; the prior KL
 */
#define _POSIX_C_SOURCE 200809L   /* fork, for death.h */
#include <stdlib.h>
#include <string.h>

#include "death.h"
#include "gradcheck.h"
#include "harness.h"
#include "../ddpm.h"
#include "../mlp.h"
#include "gauss_oracle.h"

#define EXACT_TOL 1e-10   /* the same quantity by two algebraic routes, in double */
#define Z_BOUND 5.0       /* statistical checks: within 5 standard errors (p ≈ 6e-7) */
#define KL_ABS_TOL 1e-13  /* a KL of 1e-9 is a difference of O(1) terms: absolute rounding */
#define KL_REL_TOL 1e-8   /* relative: w_t ‖·‖² + D c_t against the Gaussian KL, whose log
                             terms cancel to digits 1e-8 of their size */
#define KL_SAME_TOL 1e-15 /* KL of a Gaussian with itself: log 1 and 0 / σ², one rounding */
#define AMPLIFIED_TOL 1e-8  /* a conversion dividing by √(1−ᾱ_1) ≈ 0.01 (or by √ᾱ_T): double
                               rounding 1e-16 grown by 1e2 to 1e4, with room */
#define FAR_AMPLIFIED_TOL 1e-7  /* relative: x₀ from ε at t = T divides by √ᾱ_T, rounding
                                   grown by up to ~1e5 */
#define SAMPLER_ROUTE_TOL 1e-8  /* two samplers' algebra for the same chain, T steps of
                                   rounding accumulated */
#define CLIP_TOL 1e-12    /* a clipped x̂₀ through μ at t = 1 (coef_x0 = 1): one rounding */

static const int ALL_T[] = { 1, 2, 3, 17, 250, 999, 1000 };
#define N_ALL_T ((int)(sizeof ALL_T / sizeof ALL_T[0]))

/* ---------------------------------------------------------------------------------------
 * Markov chain against closed form */
/* N samples x of x_t started at x₀ against q(x_t|x₀) = N(√ᾱ_t x₀, 1 − ᾱ_t): within Z_BOUND
 * standard errors, √(v/N) for the mean and v √(2/(N−1)) for the variance */
static void check_closed_form_moments(const char *what, const real *x, int N, const Schedule *s,
                                      int t, double x0) {
    double mean = 0, var = 0, v = 1 - s->alpha_bar[t];
    for (int n = 0; n < N; n++) mean += x[n];
    mean /= N;
    for (int n = 0; n < N; n++) var += (x[n] - mean) * (x[n] - mean);
    var /= N - 1;
    CHECK_CLOSE(mean, s->sqrt_alpha_bar[t] * x0, Z_BOUND * sqrt(v / N), what);
    CHECK_CLOSE(var, v, Z_BOUND * v * sqrt(2.0 / (N - 1)), what);
}

static void test_markov_vs_closed_form(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    const int N = 20000, D = 1, steps = 30;
    real x0 = 1.5;
    real *x = xmalloc(N * sizeof(real), "x"), *eps = xmalloc(N * sizeof(real), "eps");
    Rng r;
    rng_seed(&r, 11);
    for (int n = 0; n < N; n++) x[n] = x0;
    for (int t = 1; t <= steps; t++) {          /* x_t = √(1 − β_t) x_{t−1} + √β_t ε */
        rng_fill_normal(&r, eps, N);
        q_step(x, x, eps, &s, t, N * D);
    }
    check_closed_form_moments("Markov chain", x, N, &s, steps, x0);

    /* and q_sample in one go has the same moments */
    int *t = xmalloc(N * sizeof(int), "t");
    real *x0s = xmalloc(N * sizeof(real), "x0");
    for (int n = 0; n < N; n++) { t[n] = steps; x0s[n] = x0; }
    rng_fill_normal(&r, eps, N);
    q_sample(x, x0s, eps, &s, t, N, 1);
    check_closed_form_moments("q_sample", x, N, &s, steps, x0);
    free(x); free(eps); free(t); free(x0s);
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------
 * Two routes to the same quantity */
static void test_routes(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 1000);
    enum { N = N_ALL_T, D = 3 };
    Rng r;
    rng_seed(&r, 12);
    real x0[N * D], eps[N * D], x_t[N * D], a[N * D], b[N * D], c[N * D], v[N * D];
    int t[N];
    for (int n = 0; n < N; n++) t[n] = ALL_T[n];
    rng_fill_normal(&r, x0, N * D);
    rng_fill_normal(&r, eps, N * D);
    q_sample(x_t, x0, eps, &s, t, N, D);

    /* μ_q(x_t, x₀) = μ_q(x_t, ε) when x_t = √ᾱ x₀ + √(1−ᾱ) ε */
    double var[N];
    q_posterior(a, var, x_t, x0, &s, t, N, D);
    q_posterior_mean_eps(b, x_t, eps, &s, t, N, D);
    double worst = 0;
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    CHECK(worst <= EXACT_TOL, "mu_q by the x0 route and the eps route differ by %g", worst);
    CHECK(var[0] == 0.0 && var[1] == s.sigma_q2[2], "posterior variance beta_tilde");

    /* conversions: x₀ → ε → x₀, v round trip, μ round trip */
    predict_eps_from_x0(c, x_t, x0, &s, t, N, D);
    worst = 0;
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(c[i] - eps[i]));
    CHECK(worst <= AMPLIFIED_TOL, "eps from x0 recovers eps: %g", worst);  /* t = 1: 1/√(1−ᾱ_1) ≈ 100 */
    predict_x0_from_eps(c, x_t, eps, &s, t, N, D);
    worst = 0;
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(c[i] - x0[i]) / (1 + fabs(x0[i])));
    CHECK(worst <= FAR_AMPLIFIED_TOL, "x0 from eps recovers x0: %g", worst);  /* t = T: 1/√ᾱ_T is huge */
    v_from_x0_eps(v, x0, eps, &s, t, N, D);
    predict_x0_from_v(c, x_t, v, &s, t, N, D);
    worst = 0;
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(c[i] - x0[i]));
    CHECK(worst <= EXACT_TOL, "x0 from v recovers x0: %g", worst);
    predict_x0_from_mu(c, x_t, a, &s, t, N, D);
    worst = 0;
    for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(c[i] - x0[i]));
    CHECK(worst <= AMPLIFIED_TOL, "x0 from mu_q recovers x0: %g", worst);

    /* μ_θ from ε̂ = μ_θ from the x̂₀ implied by ε̂ = from the implied v̂ = from μ̂ itself */
    real eps_hat[N * D], x0_hat[N * D], v_hat[N * D], mu_eps[N * D], mu_other[N * D];
    rng_fill_normal(&r, eps_hat, N * D);
    p_mean(mu_eps, eps_hat, PRED_EPS, x_t, &s, t, N, D);
    predict_x0_from_eps(x0_hat, x_t, eps_hat, &s, t, N, D);
    v_from_x0_eps(v_hat, x0_hat, eps_hat, &s, t, N, D);
    const real *outs[3] = { x0_hat, v_hat, mu_eps };
    Parametrization ps[3] = { PRED_X0, PRED_V, PRED_MU };
    for (int k = 0; k < 3; k++) {
        p_mean(mu_other, outs[k], ps[k], x_t, &s, t, N, D);
        worst = 0;
        for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(mu_other[i] - mu_eps[i]) / (1 + fabs(mu_eps[i])));
        /* t = T with cosine: x̂₀ = (x_t − √(1−ᾱ)ε̂)/√ᾱ_T amplifies rounding by 1/√ᾱ_T ~ 1e4 */
        CHECK(worst <= AMPLIFIED_TOL, "mu_theta from eps vs from %s: %g", parametrization_name(ps[k]), worst);
    }
    /* prediction_to_x0_eps reads every parametrization back to the same (x̂₀, ε̂) */
    for (int k = 0; k < 3; k++) {
        real x0b[N * D], epsb[N * D];
        prediction_to_x0_eps(x0b, epsb, outs[k], ps[k], x_t, &s, t, N, D);
        worst = 0;
        for (int i = 0; i < N * D; i++)
            worst = fmax(worst, fabs(epsb[i] - eps_hat[i]) / (1 + fabs(eps_hat[i])));
        CHECK(worst <= FAR_AMPLIFIED_TOL, "eps_hat read back from %s: %g", parametrization_name(ps[k]), worst);
    }
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------
 * The KL-weighted loss is the KL between the two Gaussians (t ≥ 2) and the Gaussian
 * decoder's negative log-likelihood at t = 1. */
static void test_kl_equals_loss(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 1000);
    enum { N = N_ALL_T, D = 4 };
    Rng r;
    rng_seed(&r, 13);
    real x0[N * D], eps[N * D], x_t[N * D], out[N * D], target[N * D], mu_q[N * D], mu_th[N * D];
    int t[N];
    for (int n = 0; n < N; n++) t[n] = ALL_T[n];
    rng_fill_normal(&r, x0, N * D);
    rng_fill_normal(&r, eps, N * D);
    q_sample(x_t, x0, eps, &s, t, N, D);
    q_posterior(mu_q, NULL, x_t, x0, &s, t, N, D);
    for (int p = 0; p < PRED_COUNT; p++) {
        for (int var = 0; var < VAR_COUNT; var++) {
            DdpmConfig cfg = { .param = (Parametrization)p,
                               .weighting = LOSS_KL, .var = (ReverseVar)var };
            prediction_target(target, cfg.param, x0, eps, x_t, &s, t, N, D);
            /* a network output near the target, as a trained one would be */
            for (int i = 0; i < N * D; i++) out[i] = target[i] + 0.1 * rng_normal(&r);
            double per[N];
            ddpm_loss(NULL, per, out, target, &cfg, &s, t, N, D);
            p_mean(mu_th, out, cfg.param, x_t, &s, t, N, D);
            int ok = 1;
            for (int n = 0; n < N; n++) {
                double sigma2 = reverse_variance_clipped(&s, cfg.var, t[n]);
                double direct;
                if (t[n] >= 2) {   /* KL(N(μ_q, β̃_t I) ‖ N(μ_θ, σ_t² I)) */
                    direct = gaussian_kl(mu_q + n * D, s.sigma_q2[t[n]], mu_th + n * D, sigma2, D);
                } else {           /* −log N(x₀; μ_θ(x₁, 1), σ_1² I) */
                    double sq = 0;
                    for (int d = 0; d < D; d++) sq += pow(x0[n * D + d] - mu_th[n * D + d], 2);
                    direct = sq / (2 * sigma2) + 0.5 * D * log(2 * PI * sigma2);
                }
                if (fabs(per[n] - direct) > KL_REL_TOL * fabs(direct) + KL_ABS_TOL) {
                    ok = 0;
                    fprintf(stderr, "  %s/%s t=%d: loss %.12g direct %.12g\n",
                            parametrization_name(cfg.param), reverse_var_name(cfg.var), t[n],
                            per[n], direct);
                }
            }
            CHECK(ok, "KL-weighted loss = Gaussian KL for %s, %s", parametrization_name(cfg.param),
                  reverse_var_name(cfg.var));
        }
    }
    /* every KL term ≥ 0 */
    real m1[2] = { 0.3, -1 }, m2[2] = { 0.1, 0.5 };
    CHECK(gaussian_kl(m1, 0.7, m2, 0.2, 2) > 0 && fabs(gaussian_kl(m1, 0.7, m1, 0.7, 2)) < KL_SAME_TOL,
          "Gaussian KL positive, zero for identical Gaussians");
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------
 * Gradients: dL/dout of the loss alone, and end to end through a small MLP. */
typedef struct {
    DdpmConfig cfg; const Schedule *s; int *t; int N, D;
    real *out, *target, *x_t;
    Mlp *mlp;   /* NULL: the loss alone, out is the variable */
} LossCtx;

static double loss_only(void *p) {
    LossCtx *c = p;
    return ddpm_loss(NULL, NULL, c->out, c->target, &c->cfg, c->s, c->t, c->N, c->D);
}

static double loss_through_mlp(void *p) {
    LossCtx *c = p;
    mlp_forward(c->mlp, c->out, c->x_t, c->t, NULL, c->N);
    return ddpm_loss(NULL, NULL, c->out, c->target, &c->cfg, c->s, c->t, c->N, c->D);
}

static void test_loss_gradients(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    enum { N = 4, D = 2 };
    Rng r;
    rng_seed(&r, 14);
    real x0[N * D], eps[N * D], x_t[N * D], out[N * D], target[N * D], dout[N * D], dx[N * D];
    int t[N] = { 1, 2, 50, 100 };
    rng_fill_normal(&r, x0, N * D);
    rng_fill_normal(&r, eps, N * D);
    q_sample(x_t, x0, eps, &s, t, N, D);

    /* small, so every parameter can be checked */
    MlpConfig mc = { .D = D, .emb_dim = 8, .hidden = 16, .layers = 2, .max_batch = N };
    for (int p = 0; p < PRED_COUNT; p++)
        for (int w = 0; w < LOSS_COUNT; w++)
            for (int var = 0; var < VAR_COUNT; var++) {
                if (w == LOSS_SIMPLE && var == VAR_BETA) continue;  /* simple ignores σ_t² */
                DdpmConfig cfg = { .param = (Parametrization)p,
                                   .weighting = (LossWeighting)w, .var = (ReverseVar)var };
                char name[96];
                snprintf(name, sizeof name, "%s/%s/%s", parametrization_name(cfg.param),
                         loss_weighting_name(cfg.weighting), reverse_var_name(cfg.var));
                prediction_target(target, cfg.param, x0, eps, x_t, &s, t, N, D);
                LossCtx c = { cfg, &s, t, N, D, out, target, x_t, NULL };
                /* the loss alone w.r.t. the network output */
                rng_fill_normal(&r, out, N * D);
                ddpm_loss(dout, NULL, out, target, &cfg, &s, t, N, D);
                gradcheck(name, out, dout, N * D, loss_only, &c, 0);

                /* end to end: loss(MLP(x_t, t)) w.r.t. every parameter and the input */
                Mlp mlp;
                ParamSet ps;
                params_init(&ps);
                mlp_init(&mlp, &mc, &ps, &r);
                c.mlp = &mlp;
                mlp_forward(&mlp, out, x_t, t, NULL, N);
                ddpm_loss(dout, NULL, out, target, &cfg, &s, t, N, D);
                params_zero_grad(&ps);
                memset(dx, 0, sizeof dx);
                mlp_backward(&mlp, dx, dout, N);
                char pname[128];
                snprintf(pname, sizeof pname, "%s through MLP: all params", name);
                gradcheck(pname, ps.w, ps.g, ps.total, loss_through_mlp, &c, 0);
                snprintf(pname, sizeof pname, "%s through MLP: x_t", name);
                gradcheck(pname, x_t, dx, N * D, loss_through_mlp, &c, 0);
                mlp_free(&mlp);
                params_free(&ps);
            }
    schedule_free(&s);
}

/* sample mean and covariance of (N, 2) points */
static void moments(const real *x, int N, double mean[2], double cov[2][2]) {
    mean[0] = mean[1] = 0;
    for (int n = 0; n < N; n++) { mean[0] += x[2 * n]; mean[1] += x[2 * n + 1]; }
    mean[0] /= N; mean[1] /= N;
    memset(cov, 0, 4 * sizeof(double));
    for (int n = 0; n < N; n++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                cov[i][j] += (x[2 * n + i] - mean[i]) * (x[2 * n + j] - mean[j]);
    for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) cov[i][j] /= N - 1;
}

/* within Z_BOUND standard errors: SE(mean_i) = √(Σ_ii/N), SE(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²)/N) */
static int moments_match(const char *what, const real *x, int N, const Oracle *o) {
    double mean[2], cov[2][2];
    moments(x, N, mean, cov);
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        double se = sqrt(o->S[i][i] / N);
        if (fabs(mean[i] - o->m[i]) > Z_BOUND * se) {
            ok = 0;
            fprintf(stderr, "  %s: mean[%d] %.5f vs %.5f (5 SE = %.5f)\n", what, i, mean[i], o->m[i], Z_BOUND * se);
        }
        for (int j = 0; j < 2; j++) {
            double se_c = sqrt((o->S[i][i] * o->S[j][j] + o->S[i][j] * o->S[i][j]) / N);
            if (fabs(cov[i][j] - o->S[i][j]) > Z_BOUND * se_c) {
                ok = 0;
                fprintf(stderr, "  %s: cov[%d][%d] %.5f vs %.5f (5 SE = %.5f)\n", what, i, j,
                        cov[i][j], o->S[i][j], Z_BOUND * se_c);
            }
        }
    }
    return ok;
}

/* Exact output covariance of ancestral sampling with the oracle (the chain is linear
 * Gaussian): x_{t−1} = A_t x_t + b_t + σ_t z with A_t = (I − c_t K_t)/√α_t,
 * K_t = √(1−ᾱ_t) Σ_t⁻¹, c_t = β_t/√(1−ᾱ_t); Cov' = A Cov Aᵀ + σ_t² I. Returns the trace. */
static double ancestral_output_trace(const Oracle *o, ReverseVar var) {
    const Schedule *s = o->s;
    double C[2][2] = { { 1, 0 }, { 0, 1 } };   /* x_T ~ N(0, I) */
    for (int t = s->T; t >= 1; t--) {
        double ab = s->alpha_bar[t];
        double a = ab * o->S[0][0] + (1 - ab), b = ab * o->S[0][1], d = ab * o->S[1][1] + (1 - ab);
        double det = a * d - b * b, k = sqrt(1 - ab) * s->coef_eps[t];
        double Ki[2][2] = { { d / det, -b / det }, { -b / det, a / det } };   /* Σ_t⁻¹ */
        double A[2][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) A[i][j] = ((i == j) - k * Ki[i][j]) / s->sqrt_alpha[t];
        double AC[2][2] = { { 0 } }, N2[2][2] = { { 0 } };
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) for (int l = 0; l < 2; l++)
            AC[i][j] += A[i][l] * C[l][j];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) for (int l = 0; l < 2; l++)
            N2[i][j] += AC[i][l] * A[j][l];
        double sig2 = t > 1 ? reverse_variance(s, var, t) : 0.0;
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) C[i][j] = N2[i][j] + (i == j) * sig2;
    }
    return C[0][0] + C[1][1];
}

/* Training a denoiser without parameters (a closed-form oracle: no backward, no ParamSet)
 * is a mistake the step names in one line, instead of calling a NULL backward. */
typedef struct { Denoiser *net; const Schedule *s; } TrainCall;
static void train_call(void *p) {
    TrainCall *c = p;
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    real x0[4 * 2] = { 0 };
    TrainWork w;
    train_work_init(&w, 4, 2);
    Rng r;
    rng_seed(&r, 3);
    ddpm_train_step(c->net, x0, NULL, 4, &cfg, c->s, &r, &w);
    train_work_free(&w);
}

static void test_train_oracle(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    Oracle o = { &s, PRED_EPS, { 1.0, -0.5 }, { { 0.5, 0.2 }, { 0.2, 0.3 } } };
    Denoiser net = oracle_denoiser(&o);
    TrainCall call = { &net, &s };
    check_dies("ddpm_train_step on an oracle", train_call, &call,
               "ddpm_train_step: this denoiser has no parameters to train");
    schedule_free(&s);
}

static void test_sampling_gaussian(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 1000);
    Oracle o = { &s, PRED_EPS, { 1.0, -0.5 }, { { 0.5, 0.2 }, { 0.2, 0.3 } } };
    Denoiser net = oracle_denoiser(&o);
    const int N = 20000;
    real *x = xmalloc((size_t)N * 2 * sizeof(real), "samples");
    Rng r;

    /* the two fixed variances bracket the truth (Ho et al. §3.2: β̃_t and β_t are the two
     * extremes): for this Σ (eigenvalues 0.63 and 0.17, below 1) the sampler's exact output
     * covariance is smaller with β̃, larger with β. This is the check that pins the variance:
     * the Monte Carlo moments below are too coarse (5 SE = 0.025) to see the 0.006 apart. */
    double tr_data = o.S[0][0] + o.S[1][1];
    double tr_tilde = ancestral_output_trace(&o, VAR_BETA_TILDE);
    double tr_beta = ancestral_output_trace(&o, VAR_BETA);
    fprintf(stderr, "  exact output trace: beta_tilde %.6f, data %.6f, beta %.6f\n", tr_tilde, tr_data, tr_beta);
    CHECK(tr_tilde < tr_data && tr_data < tr_beta,
          "exact output traces bracket the data: beta_tilde %.6f < data %.6f < beta %.6f",
          tr_tilde, tr_data, tr_beta);

    for (int p = 0; p < PRED_COUNT; p++) {
        o.p = (Parametrization)p;
        for (int var = 0; var < VAR_COUNT; var++) {
            DdpmConfig cfg = { .param = o.p, .weighting = LOSS_SIMPLE, .var = (ReverseVar)var };
            rng_seed(&r, 100 + p);
            p_sample_loop(&net, x, NULL, &cfg, &s, N, 0, &r, NULL, NULL);
            char what[64];
            snprintf(what, sizeof what, "ancestral %s %s", parametrization_name(o.p), reverse_var_name(cfg.var));
            CHECK(moments_match(what, x, N, &o), "%s reproduces the data moments", what);
        }
    }
    o.p = PRED_EPS;
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    /* deterministic DDIM contracts the spread a little at every skipped step (for Σ = I
     * by cos²(Δθ), √ᾱ = cos θ): 100 steps stay within sampling error, 20 would not */
    double etas[2] = { 0.0, 0.0 };
    int steps[2] = { 100, 1000 };
    for (int k = 0; k < 2; k++) {
        rng_seed(&r, 200 + k);
        ddim_sample_loop(&net, x, NULL, &cfg, &s, N, steps[k], etas[k], 0, &r, NULL, NULL);
        char what[64];
        snprintf(what, sizeof what, "DDIM eta=%g S=%d", etas[k], steps[k]);
        CHECK(moments_match(what, x, N, &o), "%s reproduces the data moments", what);
    }
    free(x);

    /* DDIM with η = 1 and S = T is ancestral sampling with σ_t² = β̃_t, draw for draw */
    enum { M = 64 };
    real xa[M * 2], xb[M * 2];
    rng_seed(&r, 7);
    p_sample_loop(&net, xa, NULL, &cfg, &s, M, 0, &r, NULL, NULL);
    rng_seed(&r, 7);
    ddim_sample_loop(&net, xb, NULL, &cfg, &s, M, s.T, 1.0, 0, &r, NULL, NULL);
    double worst = 0;
    for (int i = 0; i < M * 2; i++) worst = fmax(worst, fabs(xa[i] - xb[i]));
    CHECK(worst < SAMPLER_ROUTE_TOL, "DDIM(eta=1, S=T) = ancestral(beta_tilde): max diff %g", worst);

    /* no noise at t = 1 (004's algorithm): with σ_1² = β_1 > 0 two seeds must still agree */
    DdpmConfig big = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA };
    real xs[2][M * 2];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < M * 2; i++) xs[k][i] = (real)(0.1 * i - 3.0);
        rng_seed(&r, 1000 + k);
        p_sample(&net, xs[k], NULL, NULL, &big, &s, 1, M, 0, &r);
    }
    CHECK(memcmp(xs[0], xs[1], sizeof xs[0]) == 0, "p_sample at t = 1 adds no noise");
    for (int k = 0; k < 2; k++) {            /* ... while at t = 2 it does */
        for (int i = 0; i < M * 2; i++) xs[k][i] = (real)(0.1 * i - 3.0);
        rng_seed(&r, 1000 + k);
        p_sample(&net, xs[k], NULL, NULL, &big, &s, 2, M, 0, &r);
    }
    CHECK(memcmp(xs[0], xs[1], sizeof xs[0]) != 0, "p_sample at t = 2 adds noise");
    schedule_free(&s);
}

/* a SampleTrace that keeps x after the first step (t = T/2 for S = 2) */
typedef struct { real *first; int got; } FirstStep;
static void capture_first_step(void *ctx, int t, const real *x, const real *x0_hat, int N, int D) {
    (void)x0_hat;
    FirstStep *seen = ctx;
    if (t == 50 && !seen->got) {
        memcpy(seen->first, x, (size_t)N * D * sizeof(real));
        seen->got = 1;
    }
}

/* Clipping x̂₀ to [−1, 1] (Ho et al.'s code; --clip-x0): data far outside [−1, 1] so that
 * the oracle's x̂₀ is clipped. At t = 1, μ_q(x₁, x̂₀) = x̂₀ (coef_x0 = 1, coef_xt = 0), so
 * p_sample returns clip(x̂₀) itself; one DDIM step re-derives ε̂ from the clipped x̂₀. */
static void test_clip_x0(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    Oracle o = { &s, PRED_EPS, { 3.0, -3.0 }, { { 0.5, 0.0 }, { 0.0, 0.5 } } };
    Denoiser net = oracle_denoiser(&o);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    enum { M = 16 };
    Rng r;
    rng_seed(&r, 41);
    real x[M * 2], x_in[M * 2], eps1[M * 2], x0_hat[M * 2];
    int t1[M];
    for (int i = 0; i < M * 2; i++) x_in[i] = (real)(o.m[i % 2] + 0.7 * rng_normal(&r));
    for (int n = 0; n < M; n++) t1[n] = 1;
    oracle_forward(&o, eps1, x_in, t1, NULL, M);          /* the unclipped x̂₀, independently */
    predict_x0_from_eps(x0_hat, x_in, eps1, &s, t1, M, 2);
    memcpy(x, x_in, sizeof x);
    p_sample(&net, x, NULL, NULL, &cfg, &s, 1, M, 1, &r);
    int ok = 1, outside = 0;
    for (int i = 0; i < M * 2; i++) {
        double want = x0_hat[i] < -1 ? -1 : (x0_hat[i] > 1 ? 1 : x0_hat[i]);
        ok &= fabs(x[i] - want) < CLIP_TOL;
        outside += fabs(x0_hat[i]) > 1;
    }
    CHECK(outside > M && ok, "p_sample with clip_x0 at t = 1 returns clip(x0_hat) (%d of %d clipped)",
          outside, M * 2);

    /* DDIM, η = 0, S = 2: τ = 100 → 50 → 0. The first step, by hand:
     *   x̂₀ = clip(x̂₀(x_T)), ε̂ = (x_T − √ᾱ_T x̂₀)/√(1 − ᾱ_T), x_50 = √ᾱ_50 x̂₀ + √(1 − ᾱ_50) ε̂ */
    real first[M * 2];
    FirstStep seen = { first, 0 };
    rng_seed(&r, 42);
    real xT[M * 2];
    Rng copy = r;
    rng_fill_normal(&copy, xT, M * 2);          /* the x_T the sampler will draw */
    ddim_sample_loop(&net, x, NULL, &cfg, &s, M, 2, 0.0, 1, &r, capture_first_step, &seen);
    int tT[M];
    for (int n = 0; n < M; n++) tT[n] = s.T;
    real out[M * 2], x0c[M * 2];
    oracle_forward(&o, out, xT, tT, NULL, M);
    predict_x0_from_eps(x0c, xT, out, &s, tT, M, 2);
    double worst = 0;
    for (int i = 0; i < M * 2; i++) {
        double c = x0c[i] < -1 ? -1 : (x0c[i] > 1 ? 1 : x0c[i]);
        double e = (xT[i] - s.sqrt_alpha_bar[s.T] * c) / s.sqrt_one_minus_alpha_bar[s.T];
        double want = s.sqrt_alpha_bar[50] * c + s.sqrt_one_minus_alpha_bar[50] * e;
        worst = fmax(worst, fabs(first[i] - want));
    }
    CHECK(seen.got && worst < EXACT_TOL, "DDIM with clip_x0: first step by hand, max diff %g", worst);
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------
 * Determinism, the prior term, a training step */
static void test_determinism_and_prior(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 50);
    MlpConfig mc = mlp_default_config(2, 64);
    Mlp mlp; ParamSet ps; Rng r;
    params_init(&ps);
    rng_seed(&r, 5);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    real a[64 * 2], b[64 * 2];
    rng_seed(&r, 9);
    p_sample_loop(&net, a, NULL, &cfg, &s, 64, 0, &r, NULL, NULL);
    rng_seed(&r, 9);
    p_sample_loop(&net, b, NULL, &cfg, &s, 64, 0, &r, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, bit-identical samples");

    /* a few training steps on a fixed batch lower its loss (the step's sign is right) */
    real x0[64 * 2];
    rng_fill_normal(&r, x0, 128);
    TrainWork w;
    train_work_init(&w, 64, 2);
    AdamConfig adam = adam_default(1e-3);
    Rng rs; rng_seed(&rs, 1);
    Rng probe = rs;
    double before = ddpm_train_step(&net, x0, NULL, 64, &cfg, &s, &probe, &w);
    for (int i = 0; i < 50; i++) {
        Rng same = rs;     /* the same t and ε every step: a fixed objective */
        ddpm_train_step(&net, x0, NULL, 64, &cfg, &s, &same, &w);
        adam_step(&ps, &adam);
    }
    probe = rs;
    double after = ddpm_train_step(&net, x0, NULL, 64, &cfg, &s, &probe, &w);
    CHECK(after < 0.5 * before, "50 Adam steps on a fixed batch halve its loss: %g -> %g", before, after);
    train_work_free(&w);

    /* L_T = KL(N(√ᾱ_T x₀, (1 − ᾱ_T) I) ‖ N(0, I)) */
    real x0p[3] = { 0.5, -2, 1 }, m[3], zero[3] = { 0, 0, 0 };
    for (int d = 0; d < 3; d++) m[d] = s.sqrt_alpha_bar[s.T] * x0p[d];
    CHECK_REL(prior_kl(x0p, &s, 3), gaussian_kl(m, 1 - s.alpha_bar[s.T], zero, 1.0, 3), EXACT_TOL,
              "prior KL closed form");
    mlp_free(&mlp);
    params_free(&ps);
    schedule_free(&s);
}

int main(void) {
    test_markov_vs_closed_form();
    test_routes();
    test_kl_equals_loss();
    test_loss_gradients();
    test_sampling_gaussian();
    test_clip_x0();
    test_determinism_and_prior();
    test_train_oracle();
    return test_summary("test_ddpm");
}
