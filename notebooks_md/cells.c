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
    DdpmConfig cfg = { PRED_X0, LOSS_KL, VAR_BETA_TILDE };
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

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s schedules|markov|posterior|weights|kl\n", argv[0]);
        return 2;
    }
    Schedule s;
    if (schedule_build(&s, SCHED_COSINE, T_TOY)) return 1;
    if (strcmp(argv[1], "schedules") == 0) cell_schedules();
    else if (strcmp(argv[1], "markov") == 0) cell_markov(&s);
    else if (strcmp(argv[1], "posterior") == 0) cell_posterior(&s);
    else if (strcmp(argv[1], "weights") == 0) cell_weights(&s);
    else if (strcmp(argv[1], "kl") == 0) cell_kl(&s);
    else { fprintf(stderr, "unknown cell '%s'\n", argv[1]); return 2; }
    schedule_free(&s);
    return 0;
}
