/* test_schedule.c: every schedule pinned at its endpoints in closed form, the derived
 * tables against independent recomputation and identities, and the KL-derived weights. */
#include <stdlib.h>

#include "harness.h"
#include "../schedule.h"
#include "../tensor.h"   /* PI */

#define EXACT_TOL 1e-12     /* the same double arithmetic done twice: rounding only */
#define PRODUCT_TOL 1e-10   /* relative: a product of 1000 factors, each rounded once */
#define PUBLISHED_TOL 1e-3  /* relative: ᾱ_T ≈ 4.036e-5 is quoted to 4 digits */
#define BAYES_TOL 1e-9      /* relative: 1/β̃_t against α_t/β_t + 1/(1 − ᾱ_{t−1}): 1 − ᾱ and
                               1 − α_t lose digits to cancellation when ᾱ, α_t are near 1 */
#define DIFFERENCE_TOL 1e-9 /* relative: β = 1 − ᾱ_t/ᾱ_{t−1} (or a ratio of β's) cancels
                               digits when the ratio is near 1 (β_1 ~ 1e-4) */


/* identities every schedule must satisfy */
static void check_tables(const Schedule *s) {
    const char *name = schedule_name(s->kind);
    int T = s->T, ok_beta = 1, ok_prod = 1, ok_snr = 1, ok_mean = 1, ok_bayes = 1;
    double prod = 1.0;
    for (int t = 1; t <= T; t++) {
        ok_beta &= s->beta[t] > 0 && s->beta[t] <= 0.999;
        prod *= 1.0 - s->beta[t];                       /* ᾱ_t = Π_{s≤t} (1 − β_s) */
        ok_prod &= rel_err(prod, s->alpha_bar[t]) <= PRODUCT_TOL;
        if (t > 1) ok_snr &= s->snr[t] < s->snr[t - 1];
        /* posterior mean of x_t = √ᾱ_t x₀ (ε = 0) is √ᾱ_{t−1} x₀:
         *   coef_xt √ᾱ_t + coef_x0 = √ᾱ_{t−1} */
        ok_mean &= fabs(s->coef_xt[t] * s->sqrt_alpha_bar[t] + s->coef_x0[t]
                        - sqrt(s->alpha_bar_prev[t])) <= EXACT_TOL;
        /* Bayes for Gaussians: 1/β̃_t = α_t/β_t + 1/(1 − ᾱ_{t−1})  (t ≥ 2) */
        if (t > 1)
            ok_bayes &= rel_err(1.0 / s->sigma_q2[t],
                                s->alpha[t] / s->beta[t] + 1.0 / (1.0 - s->alpha_bar_prev[t]))
                        <= BAYES_TOL;
    }
    CHECK(ok_beta, "%s: every beta in (0, 0.999]", name);
    CHECK(ok_prod, "%s: alpha_bar = prod alpha", name);
    CHECK(ok_snr, "%s: SNR strictly decreasing", name);
    CHECK(ok_mean, "%s: coef_xt sqrt(abar_t) + coef_x0 = sqrt(abar_{t-1})", name);
    CHECK(ok_bayes, "%s: 1/beta_tilde = alpha/beta + 1/(1 - abar_prev)", name);
    CHECK(s->sigma_q2[1] == 0.0, "%s: beta_tilde_1 = 0 exactly (no noise at the last step)", name);
    CHECK(s->alpha_bar[0] == 1.0 && s->beta[0] == 0.0, "%s: t = 0 is the data", name);
    CHECK(isfinite(s->log_sigma_q2_clipped[1]) &&
          s->log_sigma_q2_clipped[1] == log(s->sigma_q2[2]),
          "%s: clipped log variance at t = 1 uses beta_tilde_2", name);
}

static void test_linear(void) {
    Schedule s;
    CHECK(schedule_build(&s, SCHED_LINEAR, 1000) == 0, "linear T = 1000 builds");
    CHECK_CLOSE(s.beta[1], 1e-4, EXACT_TOL, "linear beta_1");
    CHECK_CLOSE(s.beta[1000], 0.02, EXACT_TOL, "linear beta_T");
    CHECK_CLOSE(s.beta[500], 1e-4 + 499.0 / 999.0 * (0.02 - 1e-4), EXACT_TOL, "linear beta_500");
    CHECK_REL(s.alpha_bar[1000], 4.036e-5, PUBLISHED_TOL, "linear alpha_bar_T");
    check_tables(&s);
    schedule_free(&s);

    /* T = 50 (the toy's default): scaled by 1000/50 = 20, β from 0.002 to 0.4 */
    CHECK(schedule_build(&s, SCHED_LINEAR, 50) == 0, "linear T = 50 builds");
    CHECK_CLOSE(s.beta[1], 0.002, EXACT_TOL, "linear T=50 beta_1");
    CHECK_CLOSE(s.beta[50], 0.4, EXACT_TOL, "linear T=50 beta_T");
    CHECK(s.alpha_bar[50] < 1e-4, "scaled linear keeps alpha_bar_T small for T = 50: %g",
          s.alpha_bar[50]);
    check_tables(&s);
    schedule_free(&s);

    /* what goes wrong without the scaling: Σβ ≈ 50 · 0.01 = 0.5, so ᾱ_T ≈ e^{−0.5} */
    CHECK(schedule_build(&s, SCHED_LINEAR_UNSCALED, 50) == 0, "unscaled T = 50 builds");
    CHECK(s.alpha_bar[50] > 0.5, "unscaled linear at T = 50 leaves alpha_bar_T = %g: the data "
          "is far from N(0, I)", s.alpha_bar[50]);
    schedule_free(&s);

    /* too few steps for the scaled linear schedule: a clear error, not a silent clip */
    fprintf(stderr, "(an error line about T = 10 is expected next)\n");
    CHECK(schedule_build(&s, SCHED_LINEAR, 10) == -1, "linear T = 10 must be refused");
    CHECK(schedule_build(&s, SCHED_COSINE, 0) == -1, "T = 0 must be refused");
}

static void test_cosine(void) {
    Schedule s;
    int T = 1000;
    CHECK(schedule_build(&s, SCHED_COSINE, T) == 0, "cosine builds");
    CHECK(s.beta[T] == 0.999, "cosine last beta clipped to 0.999: %g", s.beta[T]);
    /* while no β is clipped, ᾱ_t telescopes to f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) π/2) */
    double f0 = pow(cos(0.008 / 1.008 * PI / 2), 2);
    for (int t = 1; t < T; t += 111) {
        double ft = pow(cos(((double)t / T + 0.008) / 1.008 * PI / 2), 2);
        CHECK_REL(s.alpha_bar[t], ft / f0, PRODUCT_TOL, "cosine alpha_bar_t = f(t)/f(0)");
    }
    double ft1 = pow(cos((1.0 / T + 0.008) / 1.008 * PI / 2), 2);
    CHECK_REL(s.beta[1], 1 - ft1 / f0, DIFFERENCE_TOL, "cosine beta_1 = 1 - f(1)/f(0)");
    check_tables(&s);
    schedule_free(&s);
    /* cosine needs no scaling: small T is fine */
    CHECK(schedule_build(&s, SCHED_COSINE, 10) == 0, "cosine T = 10 builds");
    check_tables(&s);
    schedule_free(&s);
}

static void test_other_schedules(void) {
    int T = 200;
    double b1 = 1e-4 * 1000.0 / T, bT = 0.02 * 1000.0 / T;
    Schedule s;

    CHECK(schedule_build(&s, SCHED_EXPONENTIAL, T) == 0, "exponential builds");
    CHECK_REL(s.beta[1], b1, EXACT_TOL, "exponential beta_1");
    CHECK_REL(s.beta[T], bT, EXACT_TOL, "exponential beta_T");
    CHECK_REL(s.beta[2] / s.beta[1], s.beta[T] / s.beta[T - 1], DIFFERENCE_TOL, "exponential: constant ratio");
    check_tables(&s);
    schedule_free(&s);

    CHECK(schedule_build(&s, SCHED_QUADRATIC, T) == 0, "quadratic builds");
    CHECK_REL(s.beta[1], b1, EXACT_TOL, "quadratic beta_1");
    CHECK_REL(s.beta[T], bT, EXACT_TOL, "quadratic beta_T");
    /* √β is linear in t: √β_{mid} is the mean of the ends when T − 1 is even */
    int mid = (T + 1) / 2;
    double u = (double)(mid - 1) / (T - 1);
    CHECK_REL(sqrt(s.beta[mid]), sqrt(b1) + u * (sqrt(bT) - sqrt(b1)), EXACT_TOL, "quadratic: sqrt(beta) linear");
    check_tables(&s);
    schedule_free(&s);

    CHECK(schedule_build(&s, SCHED_SIGMOID, T) == 0, "sigmoid builds");
    double sig_lo = 1.0 / (1.0 + exp(6.0)), sig_hi = 1.0 / (1.0 + exp(-6.0));
    CHECK_REL(s.beta[1], b1 + (bT - b1) * sig_lo, EXACT_TOL, "sigmoid beta_1");
    CHECK_REL(s.beta[T], b1 + (bT - b1) * sig_hi, EXACT_TOL, "sigmoid beta_T");
    check_tables(&s);
    schedule_free(&s);

    for (int k = 0; k < SCHED_COUNT; k++) {          /* names round trip */
        ScheduleKind back;
        CHECK(schedule_parse(schedule_name((ScheduleKind)k), &back) == 0 && back == (ScheduleKind)k,
              "schedule name round trip %d", k);
    }
    ScheduleKind dummy;
    CHECK(schedule_parse("quadratik", &dummy) == -1, "unknown schedule name refused");
}

/* The KL weights against their closed forms written another way (Ho et al. eq. 12 for ε
 * with σ_t² = β_t: β_t² / (2 σ_t² α_t (1 − ᾱ_t)) = β_t / (2 α_t (1 − ᾱ_t))). The KL
 * identity itself (weight · ‖·‖² + const = the Gaussian KL) is tested in test_ddpm. */
static void test_weights(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 1000);
    for (int t = 2; t <= 1000; t += 199) {
        double a = s.alpha[t], ab = s.alpha_bar[t], abp = s.alpha_bar_prev[t], b = s.beta[t];
        CHECK_REL(loss_weight_kl(&s, PRED_EPS, VAR_BETA, t), b / (2 * a * (1 - ab)), EXACT_TOL,
                  "eps weight, sigma^2 = beta (Ho eq. 12)");
        /* with σ_t² = β̃_t: (1 − α)² / ((1 − ᾱ) α) / (2 β̃)  (note 004) */
        CHECK_REL(loss_weight_kl(&s, PRED_EPS, VAR_BETA_TILDE, t),
                  (1 - a) * (1 - a) / ((1 - ab) * a) / (2 * s.sigma_q2[t]), 1e-12,
                  "eps weight, sigma^2 = beta_tilde (note 004)");
        /* x₀: (√ᾱ_{t−1} (1 − α_t)/(1 − ᾱ_t))² / (2 β̃_t): the note prints it without the square */
        double c = sqrt(abp) * (1 - a) / (1 - ab);
        CHECK_REL(loss_weight_kl(&s, PRED_X0, VAR_BETA_TILDE, t), c * c / (2 * s.sigma_q2[t]),
                  1e-12, "x0 weight (squared coefficient)");
        /* SNR form: x₀ − x̂₀ = −√(1−ᾱ_t)/√ᾱ_t (ε − ε̂), so w_x0 / w_eps = SNR_t */
        CHECK_REL(loss_weight_kl(&s, PRED_X0, VAR_BETA_TILDE, t) /
                  loss_weight_kl(&s, PRED_EPS, VAR_BETA_TILDE, t), s.snr[t], 1e-10,
                  "w_x0 / w_eps = SNR_t");
        CHECK(loss_const_kl(&s, VAR_BETA_TILDE, t) == 0.0, "no variance term when sigma^2 = beta_tilde");
        CHECK(loss_const_kl(&s, VAR_BETA, t) > 0.0, "variance term > 0 when sigma^2 = beta");
    }
    /* t = 1 uses the clipped variance β̃_2: finite weights */
    CHECK(isfinite(loss_weight_kl(&s, PRED_EPS, VAR_BETA_TILDE, 1)), "finite weight at t = 1");
    schedule_free(&s);
}

int main(void) {
    test_linear();
    test_cosine();
    test_other_schedules();
    test_weights();
    return test_summary("test_schedule");
}
