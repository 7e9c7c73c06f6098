/* test_bound.c: the variational bound of ddpm.c (Ho et al. eq. 5) and its pieces.
 *   - the discretized decoder: probabilities over the 256 values of a pixel sum to 1; the
 *     tanh CDF approximation stays within its known error of the exact one
 *   - every KL term ≥ 0; the KL-weighted training loss equals the bound's L_{t−1} (and L_0)
 *     for the same t, x₀ and noise
 *   - for Gaussian data with the exact optimal denoiser the bound equals its closed form
 *   - the bound from all T terms equals the mean of the unbiased one-t estimate
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "gauss_oracle.h"
#include "../mlp.h"

#define Z_BOUND 5.0            /* statistical checks: 5 standard errors */
#define SUM_TOL 1e-9           /* 256 bin masses summed; each clamped at ≥ 1e-12 */
#define TANH_CDF_MAX_ERR 2e-4  /* the tanh formula's accuracy: max |error| 1.79e-4 at |z| ≈ 2.59 */
#define CDF_TOL 1e-12          /* Φ by erfc against a 16-digit table value: rounding only */
#define CDF_TAIL_TOL 1e-25     /* Φ(−8) ≈ 6.2e-16 to 10 digits: erfc keeps relative precision
                                  in the tail, where 1 − Φ(8) would round to 0 */
#define LOGP_ONE_TOL 1e-12     /* log of a bin mass that is 1 up to rounding (or Φ(−40)) */
#define TERM_TOL 1e-9          /* relative: the KL-weighted loss and the bound's term, two
                                  routes through w_t, c_t and logs of β's */
#define DECODER_TOL 1e-12      /* relative: the decoder's −log p summed by hand vs vlb_terms */

static void test_decoder(void) {
    double mus[4] = { 0.0, -1.0, 0.97, 3.0 }, sigmas[3] = { 1e-3, 0.05, 0.8 };
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++)
            for (int tanh_approx = 0; tanh_approx < 2; tanh_approx++) {
                double sum = 0;
                for (int k = 0; k < 256; k++)
                    sum += exp(discretized_gaussian_log_prob(k / 127.5 - 1.0, mus[a], sigmas[b], tanh_approx));
                CHECK(fabs(sum - 1.0) <= SUM_TOL, "decoder mass sums to %.15f (mu %g sigma %g tanh %d)",
                      sum, mus[a], sigmas[b], tanh_approx);
            }
    double worst = 0;
    for (double z = -8; z <= 8; z += 0.001) worst = fmax(worst, fabs(normal_cdf(z) - normal_cdf_tanh(z)));
    CHECK(worst <= TANH_CDF_MAX_ERR, "tanh CDF approximation: max error %.3g", worst);
    CHECK_CLOSE(normal_cdf(1.959963984540054), 0.975, CDF_TOL, "Phi(1.96) = 0.975");
    CHECK_CLOSE(normal_cdf(-8.0), 6.22096057427178e-16, CDF_TAIL_TOL, "Phi(-8) in the tail");
    /* a pixel value at the mean with σ far below the bin half-width 1/255 takes all the mass */
    double x = 153 / 127.5 - 1.0;
    CHECK(discretized_gaussian_log_prob(x, x, 1e-4, 0) > -LOGP_ONE_TOL, "log P of the bin at the mean ~ 0");
    CHECK(discretized_gaussian_log_prob(-1.0, -5.0, 0.1, 0) > -LOGP_ONE_TOL, "left edge bin is open-ended");
    CHECK(discretized_gaussian_log_prob(1.0, 5.0, 0.1, 0) > -LOGP_ONE_TOL, "right edge bin is open-ended");
}

/* The KL-weighted loss of ddpm_loss (what training minimizes) equals the bound's terms */
static void test_loss_is_bound_term(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    enum { N = 6, D = 2 };
    Rng r;
    rng_seed(&r, 31);
    MlpConfig mc = mlp_default_config(D, N);
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&mlp);
    real x0[N * D], eps[N * D], x_t[N * D], out[N * D], target[N * D];
    int t[N] = { 1, 2, 3, 40, 99, 100 };
    rng_fill_normal(&r, x0, N * D);
    rng_fill_normal(&r, eps, N * D);
    q_sample(x_t, x0, eps, &s, t, N, D);
    mlp_forward(&mlp, out, x_t, t, NULL, N);
    for (int p = 0; p < PRED_COUNT; p++)
        for (int v = 0; v < VAR_COUNT; v++) {
            DdpmConfig cfg = { .param = (Parametrization)p,
                               .weighting = LOSS_KL, .var = (ReverseVar)v };
            double loss[N], term[N];
            prediction_target(target, cfg.param, x0, eps, x_t, &s, t, N, D);
            ddpm_loss(NULL, loss, out, target, &cfg, &s, t, N, D);
            vlb_terms(term, &net, x0, eps, t, N, &cfg, &s, DECODER_GAUSSIAN);
            int ok = 1, nonneg = 1;
            for (int n = 0; n < N; n++) {
                ok &= fabs(loss[n] - term[n]) <= TERM_TOL * fmax(1.0, fabs(term[n]));
                if (t[n] >= 2) nonneg &= term[n] >= 0;
            }
            CHECK(ok, "KL-weighted loss = bound term for %s/%s", parametrization_name(cfg.param),
                  reverse_var_name(cfg.var));
            CHECK(nonneg, "every KL term >= 0 for %s/%s", parametrization_name(cfg.param),
                  reverse_var_name(cfg.var));
        }
    mlp_free(&mlp);
    params_free(&ps);
    schedule_free(&s);
}

/* Expected bound for x₀ ~ N(m, Σ) with the oracle (the same for every parametrization):
 *   E[L_T]     = ½ Σ_d (ᾱ_T E[x₀_d²] + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T))
 *   E[L_{t−1}] = coef_x0(t)² tr Cov[x₀|x_t] / (2σ_t²) + D c_t          (t ≥ 2)
 *   E[L_0]     = tr Cov[x₀|x₁] / (2σ_1²) + (D/2) log(2π σ_1²)
 * since μ_q − μ_θ = coef_x0 (x₀ − E[x₀|x_t]) and coef_x0(1) = 1. */
static double closed_form_bound(const Oracle *o, ReverseVar var) {
    const Schedule *s = o->s;
    double abar_T = s->alpha_bar[s->T], L = 0;
    for (int d = 0; d < 2; d++)
        L += 0.5 * (abar_T * (o->m[d] * o->m[d] + o->S[d][d]) + (1 - abar_T) - 1 - log(1 - abar_T));
    for (int t = 1; t <= s->T; t++) {
        double sigma2 = reverse_variance_clipped(s, var, t), tr = oracle_posterior_trace(o, s->alpha_bar[t]);
        if (t >= 2) L += s->coef_x0[t] * s->coef_x0[t] * tr / (2 * sigma2) + 2 * loss_const_kl(s, var, t);
        else L += tr / (2 * sigma2) + log(2 * PI * sigma2);
    }
    return L;
}

static void test_gaussian_bound(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    Oracle o = { &s, PRED_EPS, { 0.5, -0.3 }, { { 0.6, 0.25 }, { 0.25, 0.4 } } };
    Denoiser net = oracle_denoiser(&o);
    enum { N = 4000 };
    real *x0 = xmalloc((size_t)N * 2 * sizeof(real), "x0");
    double *total = xmalloc((size_t)N * sizeof(double), "totals"), terms[101];
    Rng r;
    rng_seed(&r, 32);
    /* x₀ ~ N(m, Σ) through the Cholesky factor of Σ */
    double l00 = sqrt(o.S[0][0]), l10 = o.S[1][0] / l00, l11 = sqrt(o.S[1][1] - l10 * l10);
    for (int n = 0; n < N; n++) {
        double z0 = rng_normal(&r), z1 = rng_normal(&r);
        x0[2 * n] = (real)(o.m[0] + l00 * z0);
        x0[2 * n + 1] = (real)(o.m[1] + l10 * z0 + l11 * z1);
    }
    for (int p = 0; p < PRED_COUNT; p += 1)
        for (int v = 0; v < VAR_COUNT; v++) {
            o.p = (Parametrization)p;
            DdpmConfig cfg = { .param = o.p, .weighting = LOSS_KL, .var = (ReverseVar)v };
            double all = vlb_all_terms(terms, total, &net, x0, N, &cfg, &s, DECODER_GAUSSIAN, &r);
            double sq = 0;
            for (int n = 0; n < N; n++) sq += (total[n] - all) * (total[n] - all);
            double se_all = sqrt(sq / (N - 1) / N), expect = closed_form_bound(&o, cfg.var);
            CHECK(fabs(all - expect) <= Z_BOUND * se_all, "%s/%s: bound %.5f vs closed form %.5f (5 SE %.5f)",
                  parametrization_name(o.p), reverse_var_name(cfg.var), all, expect, Z_BOUND * se_all);
            int nonneg = 1;
            for (int t = 2; t <= s.T; t++) nonneg &= terms[t] >= 0;
            CHECK(nonneg && terms[0] >= 0, "every KL term of the bound >= 0");
            double se_est, est = vlb_estimate(&se_est, &net, x0, N, &cfg, &s, DECODER_GAUSSIAN, &r);
            CHECK(fabs(est - all) <= Z_BOUND * sqrt(se_est * se_est + se_all * se_all),
                  "%s/%s: one-t estimate %.4f +- %.4f vs all terms %.4f", parametrization_name(o.p),
                  reverse_var_name(cfg.var), est, se_est, all);
        }
    /* the bound is ≥ the true NLL: E[−log N(x₀; m, Σ)] = ½ (log det(2πΣ) + 2) */
    double det = o.S[0][0] * o.S[1][1] - o.S[0][1] * o.S[1][0];
    double nll = 0.5 * (log(4 * PI * PI * det) + 2);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_KL, .var = VAR_BETA_TILDE };
    o.p = PRED_EPS;
    double bound = closed_form_bound(&o, cfg.var);
    CHECK(bound >= nll, "bound %.4f >= true NLL %.4f", bound, nll);
    printf("Gaussian data, T = 100: true NLL %.4f nats, bound with the exact denoiser %.4f nats\n", nll, bound);
    /* more steps tighten the bound for both fixed variances; only sigma_t^2 = beta closes the
     * gap (with beta_tilde it tends to 0.442 nats per dimension: test_derivations.c,
     * test_bound_gap_limit; notebook 07 §2) */
    double prev[2] = { INFINITY, INFINITY };
    for (int T = 50; T <= 3200; T *= 4) {
        Schedule s2;
        schedule_build(&s2, SCHED_LINEAR, T);
        o.s = &s2;
        double b[2] = { closed_form_bound(&o, VAR_BETA_TILDE), closed_form_bound(&o, VAR_BETA) };
        printf("  T = %4d: bound with sigma_t^2 = beta_tilde %.4f, = beta %.4f nats\n", T, b[0], b[1]);
        for (int v = 0; v < 2; v++) {
            CHECK(b[v] >= nll && b[v] < prev[v], "T = %d, %s: bound %.4f should be >= NLL and below %.4f",
                  T, reverse_var_name((ReverseVar)v), b[v], prev[v]);
            prev[v] = b[v];
        }
        schedule_free(&s2);
    }
    o.s = &s;
    free(x0);
    free(total);
    schedule_free(&s);
}

/* The discretized decoder inside vlb_terms (t = 1) against a hand sum over pixels with the
 * clipped σ_1² = β̃_2, and the same for the tanh variant; the two must differ. */
static void test_discrete_decoder_term(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    CHECK(reverse_variance_clipped(&s, VAR_BETA_TILDE, 1) == s.sigma_q2[2],
          "sigma_1^2 with beta_tilde is beta_tilde_2 exactly");
    CHECK(reverse_variance_clipped(&s, VAR_BETA, 1) == s.beta[1], "sigma_1^2 with beta is beta_1");
    enum { N = 3, D = 2 };
    Oracle o = { &s, PRED_EPS, { 0.2, -0.4 }, { { 0.3, 0.1 }, { 0.1, 0.2 } } };
    Denoiser net = oracle_denoiser(&o);
    real x0[N * D] = { -1.0, 1.0, 0.2 * 127.5 / 127.5, 17 / 127.5 - 1, 1.0 - 2 / 127.5, -0.5 + 0.5 / 127.5 };
    real eps[N * D], x_t[N * D], out[N * D], mu[N * D];
    int t[N] = { 1, 1, 1 };
    Rng r;
    rng_seed(&r, 51);
    rng_fill_normal(&r, eps, N * D);
    for (int v = 0; v < VAR_COUNT; v++) {
        DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_KL, .var = (ReverseVar)v };
        double exact[N], tanh_v[N];
        vlb_terms(exact, &net, x0, eps, t, N, &cfg, &s, DECODER_DISCRETE);
        vlb_terms(tanh_v, &net, x0, eps, t, N, &cfg, &s, DECODER_DISCRETE_TANH);
        q_sample(x_t, x0, eps, &s, t, N, D);
        oracle_forward(&o, out, x_t, t, NULL, N);
        p_mean(mu, out, PRED_EPS, x_t, &s, t, N, D);
        double sigma = sqrt(reverse_variance_clipped(&s, cfg.var, 1));
        int ok = 1, differ = 0;
        for (int n = 0; n < N; n++) {
            double want = 0, want_tanh = 0;
            for (int d = 0; d < D; d++) {
                want -= discretized_gaussian_log_prob(x0[n * D + d], mu[n * D + d], sigma, 0);
                want_tanh -= discretized_gaussian_log_prob(x0[n * D + d], mu[n * D + d], sigma, 1);
            }
            ok &= fabs(exact[n] - want) <= DECODER_TOL * fmax(1, fabs(want)) &&
                  fabs(tanh_v[n] - want_tanh) <= DECODER_TOL * fmax(1, fabs(want_tanh));
            differ |= exact[n] != tanh_v[n];
        }
        CHECK(ok && differ, "L_0 with the discretized decoder = hand sum (%s), exact and tanh differ",
              reverse_var_name(cfg.var));
    }
    schedule_free(&s);
}

/* The one-t estimate with enough power to see a wrong factor: with T = 5 the terms are
 * tame, so with N = 100000 its standard error is a small fraction of the bound, and a
 * factor (T − 1)/T = 0.8 or a t drawn from 1..T−1 would be many standard errors off. */
static void test_estimate_power(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 5);
    Oracle o = { &s, PRED_EPS, { 0.5, -0.3 }, { { 0.6, 0.25 }, { 0.25, 0.4 } } };
    Denoiser net = oracle_denoiser(&o);
    enum { N = 100000 };
    real *x0 = xmalloc((size_t)N * 2 * sizeof(real), "x0");
    double *total = xmalloc((size_t)N * sizeof(double), "totals"), terms[6];
    Rng r;
    rng_seed(&r, 52);
    rng_fill_normal(&r, x0, (size_t)N * 2);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_KL, .var = VAR_BETA };
    double all = vlb_all_terms(terms, total, &net, x0, N, &cfg, &s, DECODER_GAUSSIAN, &r);
    double sq = 0;
    for (int n = 0; n < N; n++) sq += (total[n] - all) * (total[n] - all);
    double se_all = sqrt(sq / (N - 1) / N);
    double se_est, est = vlb_estimate(&se_est, &net, x0, N, &cfg, &s, DECODER_GAUSSIAN, &r);
    double tol = Z_BOUND * sqrt(se_est * se_est + se_all * se_all);
    CHECK(fabs(est - all) <= tol, "T = 5: one-t estimate %.4f vs all terms %.4f (5 SE %.4f)", est, all, tol);
    CHECK(tol < 0.2 * fabs(all - terms[0]) / 5, "the check can see one term missing: 5 SE %.4f", tol);
    free(x0);
    free(total);
    schedule_free(&s);
}

int main(void) {
    test_decoder();
    test_discrete_decoder_term();
    test_estimate_power();
    test_loss_is_bound_term();
    test_gaussian_bound();
    return test_summary("test_bound");
}
