/* schedule.c: β_t schedules and every quantity derived from them, in double.
 *
 * Notes: 004, "Noise Sampling" ("β_t 값은 설정된 값(선형, 지수,
 * 코사인파 등등)": β_t is set, not learned: linear, exponential, cosine, ...) and
 * 000 §3-1 (the notation table). That table says β_t is
 * "optimized by training"; in DDPM (Ho et al. 2020, §4) β_t is fixed, as 003 and 004 say.
 * Index: t = 1..T, arrays of T+1 entries, entry 0 is the data (β_0 = 0, ᾱ_0 = 1).
 * Not here: networks and random numbers.
 */
#include "schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"

static const double BETA_MAX = 0.999;     /* the cap of Nichol & Dhariwal: β_t = 1 would
                                             erase the signal in one step (ᾱ_t = 0) */
static const double COSINE_S = 0.008;     /* cosine offset s: keeps β_1 from being tiny */

/* ========================================================================================
 * Names */

const char *const SCHEDULE_NAMES[SCHED_COUNT] = {
    "linear", "linear_unscaled", "exponential", "cosine", "quadratic", "sigmoid"
};

const char *schedule_name(ScheduleKind kind) { return SCHEDULE_NAMES[kind]; }
int schedule_parse(const char *name, ScheduleKind *out) {
    for (int k = 0; k < SCHED_COUNT; k++)
        if (strcmp(name, SCHEDULE_NAMES[k]) == 0) { *out = (ScheduleKind)k; return 0; }
    return -1;
}

const char *const VAR_NAMES[VAR_COUNT + 1] = { "beta_tilde", "beta", "learned" };
const char *reverse_var_name(ReverseVar v) { return VAR_NAMES[v]; }
int reverse_var_parse(const char *name, ReverseVar *out) {
    for (int k = 0; k <= VAR_LEARNED; k++)
        if (strcmp(name, VAR_NAMES[k]) == 0) { *out = (ReverseVar)k; return 0; }
    return -1;
}

const char *const PARAM_NAMES[PRED_COUNT] = { "eps", "x0", "mu", "v" };
const char *parametrization_name(Parametrization p) { return PARAM_NAMES[p]; }
int parametrization_parse(const char *name, Parametrization *out) {
    for (int k = 0; k < PRED_COUNT; k++)
        if (strcmp(name, PARAM_NAMES[k]) == 0) { *out = (Parametrization)k; return 0; }
    return -1;
}

/* ========================================================================================
 * β_t for each schedule. u = (t − 1)/(T − 1) runs from 0 at t = 1 to 1 at t = T. */

static double ramp(int t, int T) { return T > 1 ? (double)(t - 1) / (T - 1) : 0.0; }

/* Cosine (Nichol & Dhariwal 2021, eq. 17): ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2),
 * and β_t = 1 − ᾱ_t/ᾱ_{t−1}, clipped at 0.999 (f(T) = 0 makes the last β exactly 1). */
static double cosine_f(int t, int T) {
    double c = cos(((double)t / T + COSINE_S) / (1.0 + COSINE_S) * PI / 2.0);
    return c * c;
}

static void fill_beta(double *beta, ScheduleKind kind, int T, double b1, double bT) {
    for (int t = 1; t <= T; t++) {
        double u = ramp(t, T);
        switch (kind) {
        case SCHED_LINEAR:
        case SCHED_LINEAR_UNSCALED:
            beta[t] = b1 + u * (bT - b1);                          /* β_1 … β_T evenly */
            break;
        case SCHED_EXPONENTIAL:
            beta[t] = b1 * pow(bT / b1, u);                        /* β_1 (β_T/β_1)^u */
            break;
        case SCHED_QUADRATIC: {
            double r = sqrt(b1) + u * (sqrt(bT) - sqrt(b1));       /* √β evenly */
            beta[t] = r * r;
            break;
        }
        case SCHED_SIGMOID: {
            double x = -6.0 + 12.0 * u;                            /* x on [−6, 6] */
            beta[t] = b1 + (bT - b1) / (1.0 + exp(-x));
            break;
        }
        case SCHED_COSINE: {
            double b = 1.0 - cosine_f(t, T) / cosine_f(t - 1, T);
            beta[t] = b < BETA_MAX ? b : BETA_MAX;
            break;
        }
        default:
            beta[t] = NAN;
        }
    }
}

/* ========================================================================================
 * Building the tables */

int schedule_build(Schedule *s, ScheduleKind kind, int T) {
    memset(s, 0, sizeof *s);
    if (T < 1) {
        fprintf(stderr, "error: schedule needs T >= 1 diffusion steps, got %d\n", T);
        return -1;
    }
    if ((int)kind < 0 || kind >= SCHED_COUNT) {
        fprintf(stderr, "error: unknown schedule kind %d\n", (int)kind);
        return -1;
    }
    s->kind = kind;
    s->T = T;
    /* Ho et al.'s endpoints were chosen for T = 1000; scaling both by 1000/T keeps the
     * total noise Σβ_t (and so ᾱ_T ≈ exp(−Σβ_t)) about the same for any T. */
    double scale = kind == SCHED_LINEAR_UNSCALED ? 1.0 : 1000.0 / T;
    s->beta_1 = 1e-4 * scale;
    s->beta_T = 0.02 * scale;

    size_t n = (size_t)T + 1;
    double **tables[] = { &s->beta, &s->alpha, &s->alpha_bar, &s->alpha_bar_prev,
                          &s->sqrt_alpha, &s->sqrt_alpha_bar, &s->sqrt_one_minus_alpha_bar,
                          &s->sigma_q2, &s->log_sigma_q2_clipped, &s->coef_x0, &s->coef_xt,
                          &s->coef_eps, &s->snr };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        *tables[i] = xcalloc(n, sizeof(double), "schedule table");

    fill_beta(s->beta, kind, T, s->beta_1, s->beta_T);
    for (int t = 1; t <= T; t++) {
        if (!(s->beta[t] > 0.0 && s->beta[t] <= BETA_MAX)) {
            fprintf(stderr, "error: %s schedule with T = %d gives beta_%d = %g, outside (0, %g]%s\n",
                    schedule_name(kind), T, t, s->beta[t], BETA_MAX,
                    kind == SCHED_COSINE ? "" : " (the scaled endpoint 0.02*1000/T needs T >= 21;"
                                                " use --schedule cosine for fewer steps)");
            schedule_free(s);
            return -1;
        }
    }

    /* t = 0: the data itself */
    s->beta[0] = 0.0;
    s->alpha[0] = 1.0;
    s->alpha_bar[0] = 1.0;
    s->alpha_bar_prev[0] = 1.0;
    s->sqrt_alpha[0] = 1.0;
    s->sqrt_alpha_bar[0] = 1.0;

    for (int t = 1; t <= T; t++) {
        double beta = s->beta[t];
        double alpha = 1.0 - beta;                              /* α_t = 1 − β_t */
        double abar_prev = s->alpha_bar[t - 1];
        double abar = abar_prev * alpha;                        /* ᾱ_t = Π_{s≤t} α_s */
        s->alpha[t] = alpha;
        s->alpha_bar[t] = abar;
        s->alpha_bar_prev[t] = abar_prev;
        s->sqrt_alpha[t] = sqrt(alpha);
        s->sqrt_alpha_bar[t] = sqrt(abar);
        s->sqrt_one_minus_alpha_bar[t] = sqrt(1.0 - abar);
        /* β̃_t = σ_q²(t) = (1 − ᾱ_{t−1}) β_t / (1 − ᾱ_t): exactly 0 at t = 1 */
        s->sigma_q2[t] = (1.0 - abar_prev) * beta / (1.0 - abar);
        /* μ_q = (√α_t (1 − ᾱ_{t−1}) x_t + √ᾱ_{t−1} (1 − α_t) x₀) / (1 − ᾱ_t) */
        s->coef_x0[t] = sqrt(abar_prev) * beta / (1.0 - abar);
        s->coef_xt[t] = sqrt(alpha) * (1.0 - abar_prev) / (1.0 - abar);
        /* μ_q = (x_t − (1 − α_t)/√(1 − ᾱ_t) ε) / √α_t */
        s->coef_eps[t] = beta / sqrt(1.0 - abar);
        s->snr[t] = abar / (1.0 - abar);
    }
    /* log β̃_t is −∞ at t = 1; the clipped log uses β̃_2 there (β_1 if T = 1). */
    for (int t = 1; t <= T; t++) {
        double v = t > 1 ? s->sigma_q2[t] : (T > 1 ? s->sigma_q2[2] : s->beta[1]);
        s->log_sigma_q2_clipped[t] = log(v);
    }
    return 0;
}

void schedule_free(Schedule *s) {
    free(s->beta); free(s->alpha); free(s->alpha_bar); free(s->alpha_bar_prev);
    free(s->sqrt_alpha); free(s->sqrt_alpha_bar); free(s->sqrt_one_minus_alpha_bar);
    free(s->sigma_q2); free(s->log_sigma_q2_clipped); free(s->coef_x0); free(s->coef_xt);
    free(s->coef_eps); free(s->snr);
    memset(s, 0, sizeof *s);
}

/* ========================================================================================
 * Reverse variance and the KL-derived loss weights (004, "Train Diffusion Model" and
 * "Variation"). */

double reverse_variance(const Schedule *s, ReverseVar var, int t) {
    return var == VAR_BETA ? s->beta[t] : s->sigma_q2[t];
}

/* At t = 1 with β̃ this is β̃_2 (β_1 if T = 1), as Ho et al.'s clipped log variance. With
 * σ_t² = β_t it stays β_1; Ho et al.'s code ("fixedlarge") puts β̃_2 there too, for a
 * better decoder likelihood, so bound numbers with β can differ from theirs at L_0. */
double reverse_variance_clipped(const Schedule *s, ReverseVar var, int t) {
    if (var == VAR_BETA) return s->beta[t];
    if (t > 1) return s->sigma_q2[t];
    return s->T > 1 ? s->sigma_q2[2] : s->beta[1];
}

/* KL(N(μ_q, β̃_t I) ‖ N(μ_θ, σ_t² I)) = 1/(2σ_t²) ‖μ_q − μ_θ‖² + D c_t  (004: the μ loss,
 * with the ½ the note leaves out). Each prediction enters μ linearly, so
 *   μ_q − μ_θ = coef_x0 (x₀ − x̂₀)                         (x₀ route)
 *             = −coef_eps/√α_t (ε − ε̂)                     (ε route)
 *             = coef_x0 √(1 − ᾱ_t) (v̂ − v)                  (v route)
 * and the weight is the squared factor over 2σ_t². */
double loss_weight_kl(const Schedule *s, Parametrization p, ReverseVar var, int t) {
    double w_mu = 1.0 / (2.0 * reverse_variance_clipped(s, var, t));
    double beta = s->beta[t], abar = s->alpha_bar[t];
    switch (p) {
    case PRED_MU:
        return w_mu;
    case PRED_X0:
        return w_mu * s->coef_x0[t] * s->coef_x0[t];
    case PRED_EPS:  /* (1 − α_t)² / ((1 − ᾱ_t) α_t), as in the note */
        return w_mu * beta * beta / ((1.0 - abar) * s->alpha[t]);
    case PRED_V:
        return w_mu * s->coef_x0[t] * s->coef_x0[t] * (1.0 - abar);
    default:
        return NAN;
    }
}

double loss_const_kl(const Schedule *s, ReverseVar var, int t) {
    double sigma2 = reverse_variance_clipped(s, var, t);
    if (t == 1) return 0.5 * log(2.0 * PI * sigma2);
    double r = s->sigma_q2[t] / sigma2;
    return 0.5 * (r - 1.0 - log(r));
}

/* ========================================================================================
 * A table to read beside the notes */

void schedule_print(FILE *f, const Schedule *s, int every) {
    fprintf(f, "# %s schedule, T = %d (t = 0 is the data)\n", schedule_name(s->kind), s->T);
    fprintf(f, "%5s %12s %12s %12s %12s %12s %12s %12s %12s %12s\n", "t", "beta_t",
            "alpha_t", "alphabar_t", "sqrt(abar)", "sqrt(1-abar)", "sigma_q2(t)",
            "coef_x0", "coef_xt", "SNR_t");
    if (every < 1) every = 1;
    for (int t = 0; t <= s->T; t++) {
        if (!(t <= 1 || t == s->T || t % every == 0)) continue;
        fprintf(f, "%5d %12.6g %12.6g %12.6g %12.6g %12.6g %12.6g %12.6g %12.6g %12.6g\n", t,
                s->beta[t], s->alpha[t], s->alpha_bar[t], s->sqrt_alpha_bar[t],
                s->sqrt_one_minus_alpha_bar[t], s->sigma_q2[t], s->coef_x0[t], s->coef_xt[t],
                s->snr[t]);
    }
}
