/* cells.c: small numeric "cells" for the notebooks, run as `./build/nb_cells NAME` (built by `make test`, `make notebooks` or `make build/nb_cells`).
 *
 * Each cell prints a few numbers that the notebooks quote beside the equations of note 004:
 *   schedules  ᾱ_t of every schedule at T = 50, plotted to out/nb/schedules.svg, and
 *              ᾱ_T of each                                                 (notebook 01)
 *   markov     the Markov chain q(x_t|x_{t−1}) run step by step against the closed form
 *              q(x_t|x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I)                      (notebook 01)
 *   posterior  μ_q by the x₀ route and by the ε route, and x₀ recovered from ε (notebook 02)
 *   weights    the KL weights of the x₀ and ε routes per t, the note's unsquared x₀
 *              coefficient beside the squared one, and how far they are from constant
 *                                                                          (notebook 04)
 *   kl         one KL term computed two ways: from the two Gaussians, and as the weighted
 *              loss w_t ‖x₀ − x̂₀‖² of ddpm_loss                          (notebook 04)
 * and the cells of the derivations (the same numbers are pinned by tests/test_derivations.c):
 *   bayes      the posterior by Bayes' rule on a grid against μ_q, β̃_t     (notebook 02)
 *   jensen     −log p_θ(x₀), −log E_q[w] and E_q[−log w] for 1D Gaussian data (notebook 07)
 *   snr        every KL weight beside its SNR form                         (notebook 04)
 *   reverse    how far from Gaussian the true reverse step is, per β_t     (notebook 02)
 *   variance   the true reverse variance vs β_t, β̃_t; what the sampler returns (notebook 02)
 *   gap        the bound's gap above the true NLL as T grows, both variances (notebook 07)
 *   bands      the steps each schedule spends per band of SNR              (notebook 03)
 *   far        where the sampler starts against where training x_t land     (notebook 05)
 *   slope      one particle of the sampler in score form on dog/cat         (notebook 05)
 * Everything is computed by the library (schedule.c, ddpm.c); this file only prints.
 * Built with real = double. Schedule: cosine, T = 50, as ./toy2d uses by default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli.h"
#include "../ddpm.h"
#include "../plot.h"
#include "../schedule.h"
#include "../tensor.h"
#include "../data.h"
#include "../tests/gauss1d.h"

#define T_TOY 50

static void cell_markov(const Schedule *s) {
    enum { N = 200000 };                     /* chains, all started at the same x₀ */
    const real x0 = 1.5;
    real *x = xmalloc(N * sizeof(real), "x"), *eps = xmalloc(N * sizeof(real), "eps");
    Rng rng;
    rng_seed(&rng, 1);
    for (int n = 0; n < N; n++) x[n] = x0;
    printf("x_0 = %.1f, %d chains, x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (q_step)\n", x0, N);
    printf("%4s %12s %14s %12s %14s\n", "t", "chain mean", "sqrt(abar) x0", "chain var", "1 - abar");
    for (int t = 1; t <= s->T; t++) {
        rng_fill_normal(&rng, eps, N);
        q_step(x, x, eps, s, t, N);
        if (t == 1 || t == 5 || t % 10 == 0) {
            double mean = 0, var = 0;
            for (int n = 0; n < N; n++) mean += x[n] / N;
            for (int n = 0; n < N; n++) var += (x[n] - mean) * (x[n] - mean) / (N - 1);
            printf("%4d %12.5f %14.5f %12.5f %14.5f\n", t, mean, s->sqrt_alpha_bar[t] * x0, var,
                   1.0 - s->alpha_bar[t]);
        }
    }
    free(x);
    free(eps);
}

static void cell_schedules(void) {
    static double ts[T_TOY + 1], abar[SCHED_COUNT][T_TOY + 1];
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = "alphabar_t of each schedule, T = 50 (t = 0 is the data)";
    p.xlabel = "t";
    p.ylabel = "alphabar_t";
    printf("%-16s %10s %10s %12s\n", "schedule", "beta_1", "beta_T", "alphabar_T");
    for (int k = 0; k < SCHED_COUNT; k++) {
        Schedule s;
        if (schedule_build(&s, (ScheduleKind)k, T_TOY)) exit(1);
        for (int t = 0; t <= T_TOY; t++) { ts[t] = t; abar[k][t] = s.alpha_bar[t]; }
        p.series[p.nseries++] = (SvgSeries){ schedule_name((ScheduleKind)k), T_TOY + 1, ts, abar[k] };
        printf("%-16s %10.4g %10.4g %12.4g\n", schedule_name((ScheduleKind)k), s.beta[1], s.beta[T_TOY],
               s.alpha_bar[T_TOY]);
        schedule_free(&s);
    }
    make_folder("out/nb");   /* a fresh clone has no out/ yet */
    if (svg_lineplot("out/nb/schedules.svg", &p)) exit(1);
    printf("wrote out/nb/schedules.svg\n");
}

static void cell_posterior(const Schedule *s) {
    const int ts[4] = { 1, 2, 25, 50 };
    Rng rng;
    rng_seed(&rng, 2);
    real x0[2] = { 0.8, -1.2 };              /* one point (D = 2), standardized coordinates */
    printf("x_0 = (%.2f, %.2f); for each t one eps, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps\n",
           x0[0], x0[1]);
    printf("%4s %22s %22s %22s %12s\n", "t", "mu_q (x0 route)", "mu_q (eps route)",
           "x0 from eps", "sigma_q2(t)");
    for (int i = 0; i < 4; i++) {
        int t = ts[i];
        real eps[2], x_t[2], mu_a[2], mu_b[2], x0_back[2];
        double var;
        rng_fill_normal(&rng, eps, 2);
        q_sample(x_t, x0, eps, s, &t, 1, 2);
        q_posterior(mu_a, &var, x_t, x0, s, &t, 1, 2);         /* x₀ route */
        q_posterior_mean_eps(mu_b, x_t, eps, s, &t, 1, 2);     /* ε route */
        predict_x0_from_eps(x0_back, x_t, eps, s, &t, 1, 2);   /* x₀ = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t */
        printf("%4d   (%8.5f, %8.5f)   (%8.5f, %8.5f)   (%8.5f, %8.5f) %12.6f\n", t, mu_a[0],
               mu_a[1], mu_b[0], mu_b[1], x0_back[0], x0_back[1], var);
    }
}

static void cell_weights(const Schedule *s) {
    printf("KL weights w_t with sigma_t^2 = sigma_q2(t) (beta_tilde; t = 1 uses the clipped "
           "beta_tilde_2)\n");
    printf("%4s %12s %12s %14s %12s %12s\n", "t", "w_eps", "w_x0", "note's x0 w", "w_x0/w_eps",
           "SNR_t");
    double lo = 1e300, hi = 0;
    for (int t = 1; t <= s->T; t++) {
        double w_eps = loss_weight_kl(s, PRED_EPS, VAR_BETA_TILDE, t);
        double w_x0 = loss_weight_kl(s, PRED_X0, VAR_BETA_TILDE, t);
        /* the note prints ½ (1/σ_q²) · coef_x0 without the square */
        double note = 0.5 / reverse_variance_clipped(s, VAR_BETA_TILDE, t) * s->coef_x0[t];
        if (t >= 2) { lo = w_eps < lo ? w_eps : lo; hi = w_eps > hi ? w_eps : hi; }
        if (t <= 3 || t % 10 == 0)
            printf("%4d %12.5g %12.5g %14.5g %12.5g %12.5g\n", t, w_eps, w_x0, note, w_x0 / w_eps,
                   s->snr[t]);
    }
    printf("w_eps over t = 2..%d ranges from %.4g to %.4g (a factor %.0f): not a constant\n",
           s->T, lo, hi, hi / lo);
}

static void cell_kl(const Schedule *s) {
    int t = 10;
    Rng rng;
    rng_seed(&rng, 3);
    real x0[2] = { 0.8, -1.2 }, eps[2], x_t[2], x0_hat[2], mu_q[2], mu_th[2];
    rng_fill_normal(&rng, eps, 2);
    q_sample(x_t, x0, eps, s, &t, 1, 2);
    x0_hat[0] = x0[0] + 0.1;                 /* a guess x̂₀ that is a little off */
    x0_hat[1] = x0[1] - 0.2;
    q_posterior(mu_q, NULL, x_t, x0, s, &t, 1, 2);       /* μ_q(x_t, x₀) */
    p_mean(mu_th, x0_hat, PRED_X0, x_t, s, &t, 1, 2);    /* μ_θ(x_t, t) from x̂₀ */
    double kl = gaussian_kl(mu_q, s->sigma_q2[t], mu_th, s->sigma_q2[t], 2);
    DdpmConfig cfg = { .param = PRED_X0, .weighting = LOSS_KL, .var = VAR_BETA_TILDE };
    double loss = ddpm_loss(NULL, NULL, x0_hat, x0, &cfg, s, &t, 1, 2);
    double sq = (x0[0] - x0_hat[0]) * (x0[0] - x0_hat[0]) + (x0[1] - x0_hat[1]) * (x0[1] - x0_hat[1]);
    double c = s->coef_x0[t], inv2 = 0.5 / s->sigma_q2[t];
    printf("t = %d, ||x0 - x0_hat||^2 = %.4f\n", t, sq);
    printf("KL(q(x_{t-1}|x_t,x0) || p_theta(x_{t-1}|x_t)) from the two Gaussians: %.6f nats\n", kl);
    printf("ddpm_loss, x0 route, KL weighting:                                  %.6f nats\n", loss);
    printf("1/(2 sigma_q2) * coef_x0^2 * ||x0 - x0_hat||^2  (squared):          %.6f nats\n", inv2 * c * c * sq);
    printf("1/(2 sigma_q2) * coef_x0   * ||x0 - x0_hat||^2  (as printed in 004): %.6f nats\n", inv2 * c * sq);
    printf("1/sigma_q2 * ||mu_theta - mu_q||^2  (004's loss, without the 1/2):  %.6f nats\n",
           2 * kl);
}

/* ---- the derivations' cells (tests/test_derivations.c pins the same numbers) ---------- */

/* 02 §3: Bayes' rule on a grid of x_{t−1} against the completed square */
static void cell_bayes(const Schedule *s) {
    const int ts[3] = { 2, 10, 40 };
    const double xts[3] = { 0.9, -0.4, 1.6 }, x0 = 0.7;
    printf("x_0 = %.1f; q(x_{t-1}|x_t,x_0) ~ q(x_t|x_{t-1}) q(x_{t-1}|x_0) summed on 200001 grid points\n", x0);
    printf("%4s %6s %14s %14s %14s %14s\n", "t", "x_t", "grid mean", "mu_q", "grid variance", "beta_tilde_t");
    for (int k = 0; k < 3; k++) {
        double mean, var;
        g1_posterior_grid(s, ts[k], xts[k], x0, &mean, &var);
        real xt = (real)xts[k], x0r = (real)x0, mu;
        double v;
        q_posterior(&mu, &v, &xt, &x0r, s, &ts[k], 1, 1);
        printf("%4d %6.2f %14.10f %14.10f %14.10f %14.10f\n", ts[k], xts[k], mean, mu, var, v);
    }
}

/* 07 §1: Jensen's step for 1D Gaussian data, T = 4, the exact denoiser */
static void cell_jensen(void) {
    Schedule s;
    if (schedule_build(&s, SCHED_COSINE, 4)) exit(1);
    Gauss1D g = { &s, 0.3, 0.5 };
    printf("data N(0.3, 0.5), x_0 = 0.8, cosine T = 4, exact denoiser; w = p_theta(x_{0:T}) / q(x_{1:T}|x_0)"
           " over 200000 chains\n");
    printf("%-12s %18s %20s %20s\n", "sigma_t^2", "-log p_theta(x_0)", "-log mean(w)", "mean(-log w) = L");
    for (int v = 0; v < VAR_COUNT; v++) {
        Rng r;
        rng_seed(&r, 72 + v);
        G1Jensen j = g1_jensen(&g, (ReverseVar)v, 0.8, 200000, &r);
        printf("%-12s %18.4f %13.4f +- %.4f %13.4f +- %.4f\n", reverse_var_name((ReverseVar)v), j.nll,
               -log(j.mean_w), j.se_w / j.mean_w, j.mean_neg_logw, j.se_neg_logw);
    }
    schedule_free(&s);
}

/* 04 §2–3: every weight in SNR form */
static void cell_snr(const Schedule *s) {
    printf("sigma_t^2 = beta_tilde; SNR_t = abar_t / (1 - abar_t)\n");
    printf("%4s %11s %16s %11s %18s %11s %13s\n", "t", "w_x0", "(SNR_{t-1}-SNR_t)/2", "w_eps",
           "w_x0 / SNR_t", "w_v", "abar_t w_eps");
    const int ts[7] = { 2, 10, 25, 40, 48, 49, 50 };
    for (int k = 0; k < 7; k++) {
        int t = ts[k];
        double half = 0.5 * (s->snr[t - 1] - s->snr[t]);
        double we = loss_weight_kl(s, PRED_EPS, VAR_BETA_TILDE, t);
        printf("%4d %11.5g %16.5g %11.5g %18.5g %11.5g %13.5g\n", t, loss_weight_kl(s, PRED_X0, VAR_BETA_TILDE, t),
               half, we, half / s->snr[t], loss_weight_kl(s, PRED_V, VAR_BETA_TILDE, t), s->alpha_bar[t] * we);
    }
    double sum[PRED_COUNT] = { 0 }, top[PRED_COUNT] = { 0 };
    for (int p = 0; p < PRED_COUNT; p++)
        for (int t = 2; t <= s->T; t++) {
            double w = loss_weight_kl(s, (Parametrization)p, VAR_BETA_TILDE, t);
            sum[p] += w;
            top[p] = w > top[p] ? w : top[p];
        }
    printf("t = 2..%d: share of the sum of weights carried by the largest single t:", s->T);
    for (int p = 0; p < PRED_COUNT; p++)
        printf(" %s %.0f%%%s", parametrization_name((Parametrization)p), 100 * top[p] / sum[p], p + 1 < PRED_COUNT ? "," : "\n");
    printf("alpha_T = %.4g, SNR_{T-1}/SNR_T = %.1f, so w_eps(T) = (SNR_{T-1}/SNR_T - 1)/2 = %.2f\n", s->alpha[s->T],
           s->snr[s->T - 1] / s->snr[s->T], 0.5 * (s->snr[s->T - 1] / s->snr[s->T] - 1));
}

/* 02 §2: how far from Gaussian the true reverse step is, as β shrinks */
static void cell_reverse(void) {
    printf("1D two hills 0.55 N(-1, 0.1) + 0.45 N(1.2, 0.1) as q_{t-1}; KL(q(x_{t-1}|x_t) || Gaussian with its"
           " mean and variance), nats\n");
    printf("%10s %14s %14s %14s\n", "beta_t", "x_t = -1.0", "x_t = 0.1", "x_t = 0.6");
    for (double b = 0.4; b > 1e-3; b /= 4)
        printf("%10.5f %14.3e %14.3e %14.3e\n", b, two_hill_reverse_kl(b, -1.0), two_hill_reverse_kl(b, 0.1),
               two_hill_reverse_kl(b, 0.6));
}

/* 02 §2: the true reverse variance against the two fixed choices, and what the sampler returns */
static void cell_variance(const Schedule *s) {
    printf("Gaussian data of variance v0, cosine T = 50, t = 10: beta_t = %.5f, beta_tilde_t = %.5f\n",
           s->beta[10], s->sigma_q2[10]);
    printf("%6s %24s %30s %26s\n", "v0", "Var[x_{t-1}|x_t] / beta_t", "sampler variance, beta_tilde",
           "sampler variance, beta");
    const double v0s[5] = { 0.0, 0.5, 1.0, 1.85, 2.0 };
    for (int k = 0; k < 5; k++) {
        Gauss1D g = { s, 0.0, v0s[k] };
        printf("%6.2f %24.4f %30.4f %26.4f\n", v0s[k], g1_reverse_var(&g, 10) / s->beta[10],
               g1_sampler_var(&g, VAR_BETA_TILDE), g1_sampler_var(&g, VAR_BETA));
    }
    Mixture2D m;
    toy_mixture(TOY_DOGCAT, &m);
    double mean[2], cov[2][2], sd[2];
    mixture_moments(&m, mean, cov);
    for (int d = 0; d < 2; d++) sd[d] = sqrt(cov[d][d]);
    double a = cov[0][0] / (sd[0] * sd[0]), b = cov[0][1] / (sd[0] * sd[1]), c = cov[1][1] / (sd[1] * sd[1]);
    double mid = 0.5 * (a + c), rad = sqrt(0.25 * (a - c) * (a - c) + b * b);
    printf("dog/cat, standardized: covariance eigenvalues %.3f and %.3f\n", mid + rad, mid - rad);
}

/* 07 §2: the gap of the bound above the true NLL as T grows */
static void cell_gap(void) {
    printf("Gaussian data N(0, 0.5), exact denoiser, linear schedule; gap = bound - true NLL, nats per dimension\n");
    printf("%8s %18s %14s\n", "T", "beta_tilde", "beta");
    for (int T = 50; T <= 204800; T *= 4) {
        Schedule s;
        if (schedule_build(&s, SCHED_LINEAR, T)) exit(1);
        Gauss1D g = { &s, 0.0, 0.5 };
        printf("%8d %18.4f %14.4f\n", T, g1_bound(&g, VAR_BETA_TILDE) - g1_nll(&g), g1_bound(&g, VAR_BETA) - g1_nll(&g));
        schedule_free(&s);
    }
    printf("limit with beta_tilde: (1 + gamma - ln 2) / 2 = %.4f (gamma = 0.5772, Euler's constant)\n",
           0.5 * (1 + 0.57721566490153286 - log(2.0)));
}

/* 03 §3: how many of the T = 50 steps each schedule spends in each band of SNR */
static void cell_bands(void) {
    printf("steps t = 1..50 by SNR_t = abar_t / (1 - abar_t)\n");
    printf("%-16s %12s %14s %12s\n", "schedule", "SNR < 0.1", "0.1 <= SNR <= 10", "SNR > 10");
    for (int k = 0; k < SCHED_COUNT; k++) {
        Schedule s;
        if (schedule_build(&s, (ScheduleKind)k, T_TOY)) exit(1);
        int lo = 0, mid = 0, hi = 0;
        for (int t = 1; t <= T_TOY; t++) {
            if (s.snr[t] < 0.1) lo++;
            else if (s.snr[t] <= 10) mid++;
            else hi++;
        }
        printf("%-16s %12d %14d %12d\n", schedule_name((ScheduleKind)k), lo, mid, hi);
        schedule_free(&s);
    }
}

/* 05 §4: where the sampler starts against where training examples x_t land */
static void cell_far(const Schedule *s) {
    Mixture2D m;
    double mean[2], sd[2];
    dogcat_standardized_exact(&m, mean, sd);
    enum { N = 20000 };
    Rng r;
    rng_seed(&r, 5);
    static double z[N][2];
    for (int n = 0; n < N; n++) { z[n][0] = rng_normal(&r); z[n][1] = rng_normal(&r); }
    printf("%d start points z ~ N(0, I) (standardized coordinates); q_t = the diffused dog/cat landscape\n", N);
    printf("%4s %12s %34s\n", "t", "alphabar_t", "share of z where q_t(z) < 1e-3");
    const int ts[8] = { 0, 1, 5, 10, 20, 30, 40, 50 };
    for (int k = 0; k < 8; k++)
        printf("%4d %12.4g %33.1f%%\n", ts[k], s->alpha_bar[ts[k]],
               100.0 * empty_share(&m, s->alpha_bar[ts[k]], (const double (*)[2])z, N, 1e-3));
}

/* 05 §3: one particle of the sampler in score form, x_{t−1} = (x_t + β_t s)/√α_t + σ_t z,
 * with the exact score s = ∇ log q_t of the dog/cat landscape */
static void cell_slope(const Schedule *s) {
    Mixture2D m;
    double mean[2], sd[2];
    dogcat_standardized_exact(&m, mean, sd);
    Rng r;
    rng_seed(&r, 11);
    double x[2] = { rng_normal(&r), rng_normal(&r) };
    printf("one particle, cosine T = 50, sigma_t^2 = beta_tilde; positions, slopes and steps in the note's coordinates\n");
    printf("%4s %18s %22s %22s %10s\n", "t", "x_t", "slope grad log q_t", "mean step mu - x_t", "P(dog|x_t)");
    for (int t = s->T; t >= 1; t--) {
        Mixture2D q;
        double score[2], drift[2], nx[2];
        mixture_diffuse(&m, s->alpha_bar[t], &q);
        mixture_score(&q, x, score);
        for (int d = 0; d < 2; d++) {
            nx[d] = (x[d] + s->beta[t] * score[d]) / s->sqrt_alpha[t];   /* μ_θ in score form */
            drift[d] = nx[d] - x[d];
            if (t > 1) nx[d] += sqrt(s->sigma_q2[t]) * rng_normal(&r);   /* + σ_t z, z = 0 at t = 1 */
        }
        Mixture2D dog = q;                                  /* the dog hill alone, weight 1 */
        dog.K = 1;
        dog.w[0] = 1;
        double p_dog = q.w[0] * exp(mixture_logpdf(&dog, x) - mixture_logpdf(&q, x));   /* responsibility */
        if (t == 50 || t == 40 || t == 30 || t == 20 || t == 10 || t == 5 || t == 2 || t == 1)
            printf("%4d   (%6.2f, %6.2f)   (%8.3f, %8.3f)   (%8.3f, %8.3f) %10.3f\n", t, mean[0] + sd[0] * x[0],
                   mean[1] + sd[1] * x[1], score[0] / sd[0], score[1] / sd[1], sd[0] * drift[0], sd[1] * drift[1],
                   p_dog);
        x[0] = nx[0];
        x[1] = nx[1];
    }
    printf("   0   (%6.2f, %6.2f)\n", mean[0] + sd[0] * x[0], mean[1] + sd[1] * x[1]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s schedules|markov|posterior|weights|kl|bayes|jensen|snr|reverse|variance|gap|bands|far|slope\n", argv[0]);
        return 2;
    }
    Schedule s;
    if (schedule_build(&s, SCHED_COSINE, T_TOY)) return 1;
    if (strcmp(argv[1], "schedules") == 0) cell_schedules();
    else if (strcmp(argv[1], "markov") == 0) cell_markov(&s);
    else if (strcmp(argv[1], "posterior") == 0) cell_posterior(&s);
    else if (strcmp(argv[1], "weights") == 0) cell_weights(&s);
    else if (strcmp(argv[1], "kl") == 0) cell_kl(&s);
    else if (strcmp(argv[1], "bayes") == 0) cell_bayes(&s);
    else if (strcmp(argv[1], "jensen") == 0) cell_jensen();
    else if (strcmp(argv[1], "snr") == 0) cell_snr(&s);
    else if (strcmp(argv[1], "reverse") == 0) cell_reverse();
    else if (strcmp(argv[1], "variance") == 0) cell_variance(&s);
    else if (strcmp(argv[1], "gap") == 0) cell_gap();
    else if (strcmp(argv[1], "bands") == 0) cell_bands();
    else if (strcmp(argv[1], "far") == 0) cell_far(&s);
    else if (strcmp(argv[1], "slope") == 0) cell_slope(&s);
    else { fprintf(stderr, "unknown cell '%s'\n", argv[1]); return 2; }
    schedule_free(&s);
    return 0;
}
