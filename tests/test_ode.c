/* test_ode.c: the probability-flow ODE of ddpm.c and its exact likelihood.
 *   - ε̂ = a x_t + b out (eps_affine) for every parametrization, against the conversions
 *   - the exact Jacobian of the mixture's ε* (data.c) against finite differences, and the
 *     oracle's backward (oracle.c) is its vector-Jacobian product
 *   - the exact 2D divergence (two vector-Jacobian products) against finite differences of
 *     the drift, for the MLP in every parametrization and for the oracle
 *   - Hutchinson's estimate: its mean equals the exact trace within its standard error, and
 *     the likelihood's standard errors are the right size (z-scores of RMS ~ 1)
 *   - DDIM with η = 0 is the Euler method of the ODE, number for number, and of order 1
 *   - 2D Gaussian data with the exact denoiser: the flow map and the likelihood in closed
 *     form; Heun converges at order 2, within a tolerance derived from the step size
 *   - dog/cat with the exact ε*: the ODE NLL of held-out points equals the true mixture NLL
 *     within the step-size tolerance, the ODE sampler reproduces the data (energy distance
 *     within 2x the noise floor), encoding then decoding returns typical points
 * Built with real = double.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../data.h"
#include "../mlp.h"
#include "../oracle.h"

#define AFFINE_TOL 1e-12     /* ε̂ by two routes of a few flops each, in double */
#define SYMMETRY_TOL 1e-12   /* J[0][1] and J[1][0] of ε*: the same sums in another order */
#define NEGLIGIBLE 1e-3      /* "negligible": under a thousandth of the step-size tolerance */
#define FD_H 1e-6            /* central differences of smooth closed forms / the MLP */
#define FD_TOL 1e-6          /* relative: truncation O(h²) ~1e-12, rounding ~1e-16/h = 1e-10 */
#define Z_BOUND 5.0          /* statistical checks: 5 standard errors */
#define EXACT_TOL 1e-10      /* two evaluations of the same double arithmetic in another order */
/* Richardson: with error e(h) ≈ C h^p, e(S) ≈ |L_S − L_{S/2}| / (2^p − 1). The check allows
 * twice that estimate (the constant C is only asymptotically constant). */
#define RICHARDSON_SAFETY 2.0
#define HEUN_ORDER_LO 1.5    /* observed order log2(e(S/2)/e(S)) of a 2nd-order method */
#define HEUN_ORDER_HI 2.6
#define EULER_ORDER_LO 0.7   /* ... of a 1st-order method */
#define EULER_ORDER_HI 1.3
#define ED_FLOOR_FACTOR 2.0  /* the bound: energy distance within 2x the floor */
#define ROUNDTRIP_TOL 1e-3   /* median |decode(encode(x₀)) − x₀| at S = T = 50 (standardized
                                units, data spread 1): measured 1.5e-4 */

static Mixture2D dogcat_standardized(void) {
    Mixture2D mix;
    toy_mixture(TOY_DOGCAT, &mix);
    double mean[2], cov[2][2];
    mixture_moments(&mix, mean, cov);
    double sd[2] = { sqrt(cov[0][0]), sqrt(cov[1][1]) };
    mixture_affine(&mix, mean, sd, &mix);
    return mix;
}

/* ---------------------------------------------------------------------------------------- */
static void test_eps_affine(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    Rng r;
    rng_seed(&r, 3);
    int ts[3] = { 1, 25, 50 };
    for (int p = 0; p < PRED_COUNT; p++)
        for (int k = 0; k < 3; k++) {
            real x[2], out[2], x0[2], eps[2];
            int t = ts[k];
            rng_fill_normal(&r, x, 2);
            rng_fill_normal(&r, out, 2);
            prediction_to_x0_eps(x0, eps, out, (Parametrization)p, x, &s, &t, 1, 2);
            double a, b;
            eps_affine(&a, &b, (Parametrization)p, &s, t);
            for (int d = 0; d < 2; d++)
                CHECK(fabs(eps[d] - (a * x[d] + b * out[d])) <= AFFINE_TOL * fmax(1, fabs(eps[d])),
                      "eps_affine %s t %d: %.15g vs %.15g", parametrization_name((Parametrization)p), t,
                      (double)eps[d], a * x[d] + b * out[d]);
        }
    schedule_free(&s);
}

static void test_mixture_jacobian(void) {
    Mixture2D mix = dogcat_standardized();
    double abars[4] = { 0.001, 0.3, 0.9, 0.999 }, pts[3][2] = { { 0.1, -0.4 }, { 1.2, 0.9 }, { -0.8, 0.2 } };
    double worst = 0;
    for (int a = 0; a < 4; a++)
        for (int p = 0; p < 3; p++) {
            double e[2], J[2][2];
            mixture_eps_star_jacobian(&mix, abars[a], pts[p], e, J);
            double e_ref[2];
            mixture_eps_star(&mix, abars[a], pts[p], e_ref);
            CHECK(fabs(e[0] - e_ref[0]) + fabs(e[1] - e_ref[1]) <= AFFINE_TOL, "eps* agrees with mixture_eps_star");
            for (int j = 0; j < 2; j++) {
                double xp[2] = { pts[p][0], pts[p][1] }, xm[2] = { pts[p][0], pts[p][1] }, ep[2], em[2];
                xp[j] += FD_H;
                xm[j] -= FD_H;
                mixture_eps_star(&mix, abars[a], xp, ep);
                mixture_eps_star(&mix, abars[a], xm, em);
                for (int i = 0; i < 2; i++) {
                    double fd = (ep[i] - em[i]) / (2 * FD_H);
                    worst = fmax(worst, fabs(fd - J[i][j]) / fmax(1.0, fabs(fd)));
                }
            }
            CHECK_CLOSE(J[0][1], J[1][0], SYMMETRY_TOL, "the Jacobian of eps* is symmetric (a Hessian)");
        }
    CHECK(worst <= FD_TOL, "mixture eps* Jacobian vs finite differences: worst %.3g", worst);
}

/* g(x̄) = ε̂(√ᾱ_t x̄, t), the drift, by the forward and the conversions alone */
static void drift_by_forward(real *g, Denoiser *net, Parametrization p, const Schedule *s,
                             const double *xbar, int t, int N) {
    int D = net->D, *tt = xmalloc((size_t)N * sizeof(int), "t");
    real *x = xmalloc((size_t)N * D * sizeof(real), "x"), *out = xmalloc((size_t)N * D * sizeof(real), "out");
    real *x0 = xmalloc((size_t)N * D * sizeof(real), "x0");
    for (int i = 0; i < N * D; i++) x[i] = (real)(s->sqrt_alpha_bar[t] * xbar[i]);
    for (int n = 0; n < N; n++) tt[n] = t;
    net->forward(net->self, out, x, tt, NULL, N);
    prediction_to_x0_eps(x0, g, out, p, x, s, tt, N, D);
    free(tt); free(x); free(out); free(x0);
}

/* div_x̄ g by central differences, one coordinate at a time */
static void divergence_fd(double *div, Denoiser *net, Parametrization p, const Schedule *s,
                          const double *xbar, int t, int N) {
    int D = net->D;
    double *xb = xmalloc((size_t)N * D * sizeof(double), "xbar");
    real *gp = xmalloc((size_t)N * D * sizeof(real), "g+"), *gm = xmalloc((size_t)N * D * sizeof(real), "g-");
    for (int n = 0; n < N; n++) div[n] = 0;
    for (int d = 0; d < D; d++) {
        memcpy(xb, xbar, (size_t)N * D * sizeof(double));
        for (int n = 0; n < N; n++) xb[n * D + d] += FD_H;
        drift_by_forward(gp, net, p, s, xb, t, N);
        for (int n = 0; n < N; n++) xb[n * D + d] -= 2 * FD_H;
        drift_by_forward(gm, net, p, s, xb, t, N);
        for (int n = 0; n < N; n++) div[n] += (gp[n * D + d] - gm[n * D + d]) / (2 * FD_H);
    }
    free(xb); free(gp); free(gm);
}

static void test_divergence_exact_vs_fd(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    enum { N = 4, D = 2 };
    Rng r;
    rng_seed(&r, 11);
    MlpConfig mc = mlp_default_config(D, N);
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    double xbar[N * D], div[N], ref[N];
    for (int i = 0; i < N * D; i++) xbar[i] = rng_normal(&r);
    int ts[3] = { 1, 20, 49 };
    OdeConfig oc = { 50, ODE_HEUN, 1, 0 };
    double worst = 0;
    for (int p = 0; p < PRED_COUNT; p++)
        for (int k = 0; k < 3; k++) {
            DdpmConfig cfg = { .param = (Parametrization)p,
                               .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
            ode_divergence(div, NULL, &net, xbar, NULL, ts[k], N, &cfg, &s, &oc, NULL);
            divergence_fd(ref, &net, (Parametrization)p, &s, xbar, ts[k], N);
            for (int n = 0; n < N; n++) worst = fmax(worst, fabs(div[n] - ref[n]) / fmax(1, fabs(ref[n])));
        }
    CHECK(worst <= FD_TOL, "MLP: exact divergence vs finite differences, every parametrization: %.3g", worst);
    double gnorm = params_grad_norm(&ps);
    CHECK(gnorm == 0.0, "the divergence leaves the parameter gradients zeroed (norm %g)", gnorm);
    mlp_free(&mlp);
    params_free(&ps);

    /* the oracle: its backward is the exact Jacobian of ε* */
    Mixture2D mix = dogcat_standardized();
    for (int p = 0; p < PRED_COUNT; p++) {
        MixtureOracle o;
        mixture_oracle_init(&o, &mix, &s, (Parametrization)p, N);
        Denoiser on = mixture_oracle_denoiser(&o);
        DdpmConfig cfg = { .param = (Parametrization)p,
                           .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
        worst = 0;
        for (int k = 0; k < 3; k++) {
            ode_divergence(div, NULL, &on, xbar, NULL, ts[k], N, &cfg, &s, &oc, NULL);
            divergence_fd(ref, &on, (Parametrization)p, &s, xbar, ts[k], N);
            for (int n = 0; n < N; n++) worst = fmax(worst, fabs(div[n] - ref[n]) / fmax(1, fabs(ref[n])));
        }
        CHECK(worst <= FD_TOL, "oracle (%s): exact divergence vs finite differences: %.3g",
              parametrization_name((Parametrization)p), worst);
        mixture_oracle_free(&o);
    }
    schedule_free(&s);
}

/* Hutchinson on a 6-dimensional MLP, where the trace has 6 terms and the estimate varies */
static void test_hutchinson(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    enum { N = 3, D = 6, PROBES = 2000 };
    Rng r;
    rng_seed(&r, 12);
    MlpConfig mc = mlp_default_config(D, 40);
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    double xbar[N * D], exact[N], est[N], var[N];
    for (int i = 0; i < N * D; i++) xbar[i] = rng_normal(&r);
    OdeConfig exact_oc = { 50, ODE_HEUN, 1, 0 }, hutch_oc = { 50, ODE_HEUN, 0, PROBES };
    ode_divergence(exact, NULL, &net, xbar, NULL, 10, N, &cfg, &s, &exact_oc, NULL);
    ode_divergence(est, var, &net, xbar, NULL, 10, N, &cfg, &s, &hutch_oc, &r);
    for (int n = 0; n < N; n++) {
        double se = sqrt(var[n]);
        CHECK(se > 0 && fabs(est[n] - exact[n]) <= Z_BOUND * se,
              "Hutchinson %.6f vs exact trace %.6f (se %.3g)", est[n], exact[n], se);
    }

    /* the whole likelihood: Hutchinson with 4 probes against the exact trace, per example,
     * and the standard errors neither too small nor too large: RMS of the z-scores ~ 1 */
    enum { M = 40 };
    real x0[M * D];
    double lp_exact[M], lp_h[M], se[M];
    rng_fill_normal(&r, x0, M * D);
    OdeConfig e2 = { 10, ODE_HEUN, 1, 0 }, h2 = { 10, ODE_HEUN, 0, 4 };
    ode_log_likelihood(lp_exact, NULL, NULL, &net, x0, NULL, M, &cfg, &s, &e2, NULL);
    ode_log_likelihood(lp_h, se, NULL, &net, x0, NULL, M, &cfg, &s, &h2, &r);
    double z2 = 0;
    int within = 1;
    for (int n = 0; n < M; n++) {
        double z = (lp_h[n] - lp_exact[n]) / se[n];
        z2 += z * z / M;
        if (fabs(z) > Z_BOUND) within = 0;
    }
    CHECK(within, "every Hutchinson likelihood within %g standard errors of the exact one", Z_BOUND);
    /* mean of z² over 40 examples: ~χ²_40/40 ∈ [0.45, 1.75] with probability > 0.999 */
    CHECK(z2 > 0.45 && z2 < 1.75, "Hutchinson likelihood: mean z^2 = %.3f (expect ~1)", z2);
    mlp_free(&mlp);
    params_free(&ps);
    schedule_free(&s);
}

/* Hutchinson number for number (mutation testing found its variance formula unpinned: a
 * biased s² over M instead of M − 1 stays inside the z-score bounds above). With the
 * mixture oracle the Jacobian J_ε of ε* is known in closed form, and every
 * parametrization's divergence is √ᾱ_t tr J_ε, so replaying the probes from a copy of the
 * generator (z_i = ±1 by the top bit of rng_u64, example by example, probe by probe) gives
 * q_m = zᵀ J_ε z, and the estimate must be √ᾱ_t mean(q), its variance ᾱ_t s²/M with the
 * unbiased s² = Σ (q_m − mean)² / (M − 1). */
static void test_hutchinson_by_hand(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    enum { N = 3, D = 2, M = 3 };
    Mixture2D mix = dogcat_standardized();
    double xbar[N * D] = { 0.3, -0.7, 1.1, 0.4, -0.2, 0.9 }, div[N], var[N];
    int ts[2] = { 7, 33 };
    double worst_div = 0, worst_var = 0;
    for (int p = 0; p < PRED_COUNT; p++)
        for (int k = 0; k < 2; k++) {
            int t = ts[k];
            MixtureOracle o;
            mixture_oracle_init(&o, &mix, &s, (Parametrization)p, N);
            Denoiser on = mixture_oracle_denoiser(&o);
            DdpmConfig cfg = { .param = (Parametrization)p, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
            OdeConfig oc = { 50, ODE_HEUN, 0, M };
            Rng r, replay;
            rng_seed(&r, 100 + 10 * p + k);
            replay = r;
            ode_divergence(div, var, &on, xbar, NULL, t, N, &cfg, &s, &oc, &r);
            double q[M][N], sa = s.sqrt_alpha_bar[t];
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double z[D], xt[D] = { sa * xbar[n * D], sa * xbar[n * D + 1] }, e[D], J[D][D];
                    for (int d = 0; d < D; d++) z[d] = (rng_u64(&replay) >> 63) ? 1 : -1;
                    mixture_eps_star_jacobian(&mix, s.alpha_bar[t], xt, e, J);
                    q[m][n] = 0;
                    for (int i = 0; i < D; i++)
                        for (int j = 0; j < D; j++) q[m][n] += z[i] * J[i][j] * z[j];
                }
            for (int n = 0; n < N; n++) {
                double mean = 0, ss = 0;
                for (int m = 0; m < M; m++) mean += q[m][n] / M;
                for (int m = 0; m < M; m++) ss += (q[m][n] - mean) * (q[m][n] - mean);
                double want_div = sa * mean, want_var = s.alpha_bar[t] * ss / (M - 1) / M;
                worst_div = fmax(worst_div, fabs(div[n] - want_div) / fmax(1, fabs(want_div)));
                worst_var = fmax(worst_var, fabs(var[n] - want_var) / fmax(1e-3, fabs(want_var)));
            }
            mixture_oracle_free(&o);
        }
    CHECK(worst_div <= EXACT_TOL, "Hutchinson by hand: the estimate is sqrt(abar) mean(z^T J z), every parametrization: %.3g", worst_div);
    CHECK(worst_var <= EXACT_TOL, "Hutchinson by hand: its variance is abar s^2 / M, s^2 over M - 1: %.3g", worst_var);
    schedule_free(&s);
}

/* The likelihood's quadrature on a step with an end at σ = 0, by two routes (mutation
 * testing found its sign pinned only by a notebook's printed numbers). With S = 1 the one
 * step runs from t = 0 to T; the drift at t = 0 is exactly 0, so Heun's predictor stays at
 * x̄ = x₀ and its trapezoid in σ is ∫ div dσ ≈ ½ σ_T (0 + div(x₀, T)); Euler's left point
 * gives 0. So, with x_T as ode_log_likelihood returns it,
 *   Heun:  log p = log N(x_T; 0, I) + (D/2) log ᾱ_T + ½ σ_T div(x₀, T)   (ode_divergence)
 *   Euler: log p = log N(x_T; 0, I) + (D/2) log ᾱ_T. */
static void test_first_step_quadrature(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    enum { N = 4, D = 2 };
    Mixture2D mix = dogcat_standardized();
    MixtureOracle o;
    mixture_oracle_init(&o, &mix, &s, PRED_EPS, N);
    Denoiser on = mixture_oracle_denoiser(&o);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    real x0[N * D] = { 0.2, -0.5, 1.0, 0.8, -1.2, 0.1, 0.0, 0.0 }, xT[N * D];
    double xbar[N * D], div[N], lp[N];
    for (int i = 0; i < N * D; i++) xbar[i] = x0[i];
    for (int k = 0; k < 2; k++) {
        OdeConfig oc = { 1, k == 0 ? ODE_HEUN : ODE_EULER, 1, 0 };
        ode_log_likelihood(lp, NULL, xT, &on, x0, NULL, N, &cfg, &s, &oc, NULL);
        ode_divergence(div, NULL, &on, xbar, NULL, s.T, N, &cfg, &s, &oc, NULL);
        double worst = 0;
        for (int n = 0; n < N; n++) {
            double sq = xT[n * D] * xT[n * D] + xT[n * D + 1] * xT[n * D + 1];
            double want = -0.5 * sq - 0.5 * D * log(2 * PI) + 0.5 * D * log(s.alpha_bar[s.T])
                        + (k == 0 ? 0.5 * ode_sigma(&s, s.T) * div[n] : 0.0);
            worst = fmax(worst, fabs(lp[n] - want) / fmax(1, fabs(want)));
        }
        CHECK(worst <= EXACT_TOL, "S = 1 (%s): log p = log N(x_T) + D/2 log abar_T %s: %.3g",
              ode_solver_name(oc.solver), k == 0 ? "+ sigma_T/2 div(x0, T)" : "(no divergence term)", worst);
        CHECK(k == 1 || fabs(0.5 * ode_sigma(&s, s.T) * div[0]) > 1e-3, "the divergence term is not negligible");
    }
    mixture_oracle_free(&o);
    schedule_free(&s);
}

/* DDIM with η = 0 is the ODE's Euler method: the same numbers from the same x_T */
static void test_ddim_is_euler(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    enum { N = 16, D = 2 };
    Rng r;
    rng_seed(&r, 13);
    MlpConfig mc = mlp_default_config(D, N);
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    int Ss[3] = { 50, 10, 7 };
    for (int p = 0; p < PRED_COUNT; p++)
        for (int k = 0; k < 3; k++) {
            DdpmConfig cfg = { .param = (Parametrization)p,
                               .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
            real a[N * D], b[N * D];
            Rng ra, rb;
            rng_seed(&ra, 100 + k);
            rng_seed(&rb, 100 + k);
            ddim_sample_loop(&net, a, NULL, &cfg, &s, N, Ss[k], 0.0, 0, &ra, NULL, NULL);
            OdeConfig oc = { Ss[k], ODE_EULER, 1, 0 };
            ode_sample_loop(&net, b, NULL, &cfg, &s, N, &oc, &rb, NULL, NULL);
            double worst = 0;
            for (int i = 0; i < N * D; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1, fabs(a[i])));
            CHECK(worst <= EXACT_TOL, "DDIM eta = 0 equals Euler on the ODE (%s, S = %d): %.3g",
                  parametrization_name((Parametrization)p), Ss[k], worst);
        }
    mlp_free(&mlp);
    params_free(&ps);
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------- *
 * Gaussian data x₀ ~ N(m, Σ), Σ = U diag(λ) Uᵀ: x̄_σ = x₀ + σ ε ~ N(m, Σ + σ² I), and the
 * ODE dx̄/dσ = E[ε | x̄] = σ (Σ + σ² I)⁻¹ (x̄ − m) is solved along each eigenvector:
 *   x̄(σ) − m = U diag(√((λ_i + σ²)/λ_i)) Uᵀ (x₀ − m),
 * and ∫ div = ∫ σ Σ_i 1/(λ_i + σ²) dσ = ½ Σ_i log((λ_i + σ_T²)/λ_i). So the model's exact
 *   log p(x₀) = log N(√ᾱ_T x̄_T; 0, I) + (D/2) log ᾱ_T + ½ Σ_i log((λ_i + σ_T²)/λ_i). */
typedef struct { double m[2], U[2][2], lam[2]; } Gauss2;

static Gauss2 gauss2_make(const Mixture2D *g) {
    Gauss2 G;
    double a = g->cov[0][0][0], b = g->cov[0][0][1], d = g->cov[0][1][1];
    double tr = a + d, disc = sqrt((a - d) * (a - d) / 4 + b * b);
    G.lam[0] = tr / 2 + disc;
    G.lam[1] = tr / 2 - disc;
    double th = 0.5 * atan2(2 * b, a - d);   /* eigenvector of λ_0: (cos θ, sin θ) */
    G.U[0][0] = cos(th); G.U[1][0] = sin(th);
    G.U[0][1] = -sin(th); G.U[1][1] = cos(th);
    G.m[0] = g->mu[0][0];
    G.m[1] = g->mu[0][1];
    return G;
}

static double gauss2_flow(const Gauss2 *G, const Schedule *s, const real *x0, double xT[2]) {
    double sig = ode_sigma(s, s->T), y[2], c[2];
    for (int i = 0; i < 2; i++)   /* c = Uᵀ (x₀ − m) */
        c[i] = G->U[0][i] * (x0[0] - G->m[0]) + G->U[1][i] * (x0[1] - G->m[1]);
    for (int i = 0; i < 2; i++) c[i] *= sqrt((G->lam[i] + sig * sig) / G->lam[i]);
    double logdet = 0, sq = 0;
    for (int i = 0; i < 2; i++) {
        y[i] = G->m[i] + G->U[i][0] * c[0] + G->U[i][1] * c[1];
        xT[i] = s->sqrt_alpha_bar[s->T] * y[i];
        sq += xT[i] * xT[i];
        logdet += 0.5 * log((G->lam[i] + sig * sig) / G->lam[i]);
    }
    return -0.5 * sq - log(2 * PI) + log(s->alpha_bar[s->T]) + logdet;
}

/* mean |L_S − exact| over the points, and the mean encoding error |x_T − exact| */
static void gauss_errors(double *e_lp, double *e_x, double *mean_lp, Denoiser *net,
                         const Schedule *s, const Gauss2 *G, const real *x0, int N, int S,
                         OdeSolver solver) {
    double *lp = xmalloc((size_t)N * sizeof(double), "lp");
    real *xT = xmalloc((size_t)N * 2 * sizeof(real), "xT");
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    OdeConfig oc = { S, solver, 1, 0 };
    ode_log_likelihood(lp, NULL, xT, net, x0, NULL, N, &cfg, s, &oc, NULL);
    *e_lp = *e_x = *mean_lp = 0;
    for (int n = 0; n < N; n++) {
        double xe[2], lpe = gauss2_flow(G, s, x0 + 2 * n, xe);
        *e_lp += fabs(lp[n] - lpe) / N;
        *mean_lp += lp[n] / N;
        *e_x += hypot(xT[2 * n] - xe[0], xT[2 * n + 1] - xe[1]) / N;
    }
    free(lp); free(xT);
}

static void test_gaussian_exact(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 200);
    Mixture2D g = { .K = 1, .w = { 1.0 }, .mu = { { 0.3, -0.2 } },
                    .cov = { { { 0.5, 0.3 }, { 0.3, 0.4 } } }, .label = { "gauss" } };
    Gauss2 G = gauss2_make(&g);
    enum { N = 50 };
    MixtureOracle o;
    mixture_oracle_init(&o, &g, &s, PRED_EPS, N);
    Denoiser net = mixture_oracle_denoiser(&o);
    Rng r;
    rng_seed(&r, 14);
    real x0[N * 2];
    mixture_sample(&g, x0, NULL, N, &r);
    double e1, x1, m1, e2, x2, m2, e4, x4, m4;
    gauss_errors(&e1, &x1, &m1, &net, &s, &G, x0, N, 25, ODE_HEUN);
    gauss_errors(&e2, &x2, &m2, &net, &s, &G, x0, N, 50, ODE_HEUN);
    gauss_errors(&e4, &x4, &m4, &net, &s, &G, x0, N, 100, ODE_HEUN);
    double p_lp = log2(e2 / e4), p_x = log2(x2 / x4);
    printf("  gaussian, Heun: |log p error| S=25 %.3g, 50 %.3g, 100 %.3g (order %.2f); "
           "|x_T error| %.3g %.3g %.3g (order %.2f)\n", e1, e2, e4, p_lp, x1, x2, x4, p_x);
    CHECK(p_lp > HEUN_ORDER_LO && p_lp < HEUN_ORDER_HI, "Heun's likelihood converges at order 2: %.2f", p_lp);
    CHECK(p_x > HEUN_ORDER_LO && p_x < HEUN_ORDER_HI, "Heun's encoding converges at order 2: %.2f", p_x);
    CHECK(e4 <= RICHARDSON_SAFETY * fabs(m4 - m2) / 3.0,
          "Heun S = 100: log p error %.3g within the step-size tolerance %.3g", e4,
          RICHARDSON_SAFETY * fabs(m4 - m2) / 3.0);
    gauss_errors(&e2, &x2, &m2, &net, &s, &G, x0, N, 50, ODE_EULER);
    gauss_errors(&e4, &x4, &m4, &net, &s, &G, x0, N, 100, ODE_EULER);
    p_lp = log2(e2 / e4);
    p_x = log2(x2 / x4);
    printf("  gaussian, Euler (= DDIM): |log p error| S=50 %.3g, 100 %.3g (order %.2f); "
           "|x_T error| order %.2f\n", e2, e4, p_lp, p_x);
    CHECK(p_lp > EULER_ORDER_LO && p_lp < EULER_ORDER_HI, "Euler's likelihood converges at order 1: %.2f", p_lp);
    CHECK(p_x > EULER_ORDER_LO && p_x < EULER_ORDER_HI, "Euler's (DDIM's) path converges at order 1: %.2f", p_x);
    mixture_oracle_free(&o);
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------- *
 * Dog/cat with the exact ε*, on the program's schedule (cosine, T = 50). The model's prior
 * is N(0, I) where the data's flow ends in q_T = mixture_diffuse(mix, ᾱ_T); adding
 * log q_T(x_T) − log N(x_T; 0, I) at the encoded x_T makes the ODE's answer the data's
 * density exactly, up to the solver's error. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_dogcat_oracle(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    Mixture2D mix = dogcat_standardized(), qT;
    mixture_diffuse(&mix, s.alpha_bar[s.T], &qT);
    enum { N = 200, NS = 1000, REPEATS = 3 };
    MixtureOracle o;
    mixture_oracle_init(&o, &mix, &s, PRED_EPS, NS);
    Denoiser net = mixture_oracle_denoiser(&o);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    Rng r;
    rng_seed(&r, 15);
    real x0[N * 2], xT[N * 2];
    double lp[N], mean[2] = { 0, 0 }, truth = 0, mismatch = 0;
    mixture_sample(&mix, x0, NULL, N, &r);
    for (int n = 0; n < N; n++) {
        double x[2] = { x0[2 * n], x0[2 * n + 1] };
        truth += mixture_logpdf(&mix, x) / N;
    }
    int Ss[2] = { 25, 50 };
    for (int k = 0; k < 2; k++) {
        OdeConfig oc = { Ss[k], ODE_HEUN, 1, 0 };
        ode_log_likelihood(lp, NULL, xT, &net, x0, NULL, N, &cfg, &s, &oc, NULL);
        mismatch = 0;
        for (int n = 0; n < N; n++) {
            double x[2] = { xT[2 * n], xT[2 * n + 1] };
            mean[k] += lp[n] / N;
            mismatch += (mixture_logpdf(&qT, x) - (-0.5 * (x[0] * x[0] + x[1] * x[1]) - log(2 * PI))) / N;
        }
    }
    double err = fabs(mean[1] + mismatch - truth), tol = RICHARDSON_SAFETY * fabs(mean[1] - mean[0]) / 3.0;
    printf("  dog/cat, exact eps*: ODE NLL S=25 %.5f, S=50 %.5f, prior mismatch %.2g, true NLL %.5f nats\n",
           -mean[0], -mean[1], mismatch, -truth);
    CHECK(err <= tol, "ODE log p (S = 50) %.5f vs true %.5f: error %.3g within the step-size tolerance %.3g",
          mean[1] + mismatch, truth, err, tol);
    CHECK(fabs(mismatch) < NEGLIGIBLE * tol, "the prior mismatch (%.2g) is negligible at cosine's alpha_bar_T", mismatch);

    /* encode → decode: typical points come back; the median error falls with S */
    double med[2];
    for (int k = 0; k < 2; k++) {
        OdeConfig oc = { Ss[k], ODE_HEUN, 1, 0 };
        real x[N * 2];
        double e[N];
        memcpy(x, x0, sizeof x);
        ode_encode(&net, x, NULL, &cfg, &s, N, &oc);
        ode_decode(&net, x, NULL, &cfg, &s, N, &oc, NULL, NULL);
        for (int n = 0; n < N; n++) e[n] = hypot(x[2 * n] - x0[2 * n], x[2 * n + 1] - x0[2 * n + 1]);
        qsort(e, N, sizeof(double), cmp_double);
        med[k] = e[N / 2];
    }
    printf("  dog/cat: encode -> decode median error S=25 %.3g, S=50 %.3g\n", med[0], med[1]);
    CHECK(med[1] <= ROUNDTRIP_TOL, "encode then decode (S = 50): median error %.3g <= %g", med[1], ROUNDTRIP_TOL);
    CHECK(med[1] <= med[0] / 2.5, "the round trip's error falls at order > 1.3 with S: %.3g -> %.3g", med[0], med[1]);

    /* the ODE sampler reproduces the data: energy distance vs the floor of two data sets */
    real *gen = xmalloc((size_t)NS * 2 * sizeof(real), "generated"), *data = xmalloc((size_t)NS * 2 * sizeof(real), "data");
    real *data2 = xmalloc((size_t)NS * 2 * sizeof(real), "data");
    double ed = 0, floor = 0;
    OdeConfig oc = { 50, ODE_HEUN, 1, 0 };
    for (int k = 0; k < REPEATS; k++) {
        ode_sample_loop(&net, gen, NULL, &cfg, &s, NS, &oc, &r, NULL, NULL);
        mixture_sample(&mix, data, NULL, NS, &r);
        mixture_sample(&mix, data2, NULL, NS, &r);
        ed += energy_distance(gen, NS, data, NS, 2) / REPEATS;
        floor += energy_distance(data2, NS, data, NS, 2) / REPEATS;
    }
    printf("  dog/cat: ODE sampler energy distance %.3g, floor %.3g (ratio %.2f)\n", ed, floor, ed / floor);
    CHECK(ed <= ED_FLOOR_FACTOR * floor, "ODE sampler: energy distance %.3g within %gx the floor %.3g",
          ed, ED_FLOOR_FACTOR, floor);
    free(gen); free(data); free(data2);
    mixture_oracle_free(&o);
    schedule_free(&s);
}

/* the MLP with learned_var = 1 outputs 2 D numbers, and its backward takes 2 D */
static void test_mlp_learned_var_shape(void) {
    enum { N = 3, D = 2 };
    Rng r;
    rng_seed(&r, 16);
    MlpConfig mc = mlp_default_config(D, N);
    mc.learned_var = 1;
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    CHECK(net.learned_var == 1 && ps.p[ps.count - 2].shape[1] == 2 * D,
          "learned_var: the last layer has 2 D = %d outputs", 2 * D);
    mlp_free(&mlp);
    params_free(&ps);
}

int main(void) {
    test_eps_affine();
    test_mixture_jacobian();
    test_divergence_exact_vs_fd();
    test_hutchinson();
    test_hutchinson_by_hand();
    test_first_step_quadrature();
    test_ddim_is_euler();
    test_gaussian_exact();
    test_dogcat_oracle();
    test_mlp_learned_var_shape();
    return test_summary("test_ode");
}
