/* schedule.h: the noise schedule β_t and every quantity derived from it, in double.
 *
 * Notes: 004 ("Noise Sampling": β_t is set, linear, exponential,
 * cosine...), 000 §3-1 (the notation table: β_t, α_t = 1 − β_t, ᾱ_t).
 * Index convention: t = 1..T as in the notes, t = 0 is the data. Every array has T+1
 * entries indexed by t directly: beta[0] = 0 and alpha_bar[0] = 1 are the "no noise yet"
 * values and are never used as a step. (Code that counts steps from 0, such as Ho et
 * al.'s, uses i = t − 1.)
 * Not here: any network, any random number. Sizes: T = diffusion steps.
 */
#ifndef SCHEDULE_H
#define SCHEDULE_H

typedef enum {
    SCHED_LINEAR,           /* Ho et al.: β from 1e-4 to 0.02, both scaled by 1000/T */
    SCHED_LINEAR_UNSCALED,  /* the same without the 1000/T factor: ᾱ_T is not small for
                               small T (kept to show what goes wrong; see the tests) */
    SCHED_EXPONENTIAL,      /* β geometric from β_1 to β_T (same endpoints as linear) */
    SCHED_COSINE,           /* Nichol & Dhariwal: ᾱ from cos², s = 0.008, β ≤ 0.999 */
    SCHED_QUADRATIC,        /* √β linear from √β_1 to √β_T (same endpoints as linear) */
    SCHED_SIGMOID,          /* β = β_1 + (β_T − β_1) σ(x), x linear on [−6, 6] */
    SCHED_COUNT
} ScheduleKind;

/* Which variance the reverse process p_θ(x_{t−1}|x_t) = N(μ_θ, σ_t² I) uses.
 * Both are "fixed" choices discussed by Ho et al. §3.2; the note 004 writes σ_q(t). */
typedef enum {
    VAR_BETA_TILDE,  /* σ_t² = β̃_t = σ_q²(t), the posterior variance (the note's choice) */
    VAR_BETA,        /* σ_t² = β_t */
    VAR_COUNT
} ReverseVar;
/* The learned variance of Nichol & Dhariwal (2021): σ_t² is not one number per t but one
 * per example and number, read from the network's extra output v (ddpm.h,
 * learned_log_variance). It sits outside the fixed choices that VAR_COUNT counts, so the
 * tables and loops over those stay as they are; reverse_variance and the KL weights never
 * take it. VAR_NAMES (and so reverse_var_name, reverse_var_parse) knows it as "learned". */
enum { VAR_LEARNED = VAR_COUNT };

/* What the network predicts (see ddpm.h for the conversions between them). */
typedef enum { PRED_EPS, PRED_X0, PRED_MU, PRED_V, PRED_COUNT } Parametrization;

typedef struct {
    ScheduleKind kind;
    int T;                      /* diffusion steps, e.g. 1000 */
    double beta_1, beta_T;      /* the endpoints asked for (after scaling), info only */
    /* (T+1) arrays indexed by t, entry 0 is the data (t = 0) */
    double *beta;               /* β_t */
    double *alpha;              /* α_t = 1 − β_t */
    double *alpha_bar;          /* ᾱ_t = Π_{s=1..t} α_s, ᾱ_0 = 1 */
    double *alpha_bar_prev;     /* ᾱ_{t−1} */
    double *sqrt_alpha;         /* √α_t */
    double *sqrt_alpha_bar;     /* √ᾱ_t */
    double *sqrt_one_minus_alpha_bar; /* √(1 − ᾱ_t) */
    double *sigma_q2;           /* β̃_t = σ_q²(t) = (1 − ᾱ_{t−1}) β_t / (1 − ᾱ_t); 0 at t = 1 */
    double *log_sigma_q2_clipped; /* log β̃_t, with β̃_1 replaced by β̃_2 (log 0 = −∞) */
    double *coef_x0;            /* μ_q = coef_x0 x₀ + coef_xt x_t:  √ᾱ_{t−1} β_t / (1 − ᾱ_t) */
    double *coef_xt;            /*                                   √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t) */
    double *coef_eps;           /* μ_q = (x_t − coef_eps ε) / √α_t:  β_t / √(1 − ᾱ_t) */
    double *snr;                /* SNR_t = ᾱ_t / (1 − ᾱ_t); SNR_0 = +∞ is not stored (0) */
} Schedule;

/* Builds the tables; returns 0, or −1 with a message on stderr if T < 1 or a β is out of
 * (0, 0.999]. Free with schedule_free. */
int schedule_build(Schedule *s, ScheduleKind kind, int T);
void schedule_free(Schedule *s);

/* The names, one table per choice, indexed by its enum: the parsers below read them, and
 * the programs' --help lines and messages list them (cli.c), so a new name is one entry. */
extern const char *const SCHEDULE_NAMES[SCHED_COUNT];   /* "linear", "cosine", ... */
extern const char *const VAR_NAMES[VAR_COUNT + 1];      /* ..., "learned" = VAR_LEARNED */
extern const char *const PARAM_NAMES[PRED_COUNT];       /* "eps", "x0", "mu", "v" */
const char *schedule_name(ScheduleKind kind);          /* "linear", "cosine", ... */
int schedule_parse(const char *name, ScheduleKind *out); /* 0 ok, −1 unknown */
const char *reverse_var_name(ReverseVar v);
int reverse_var_parse(const char *name, ReverseVar *out);
const char *parametrization_name(Parametrization p);
int parametrization_parse(const char *name, Parametrization *out);

/* σ_t², the reverse-process variance used at step t, for sampling: 0 noise at t = 1 is
 * handled by the sampler, not here. For VAR_BETA_TILDE at t = 1 this is β̃_1 = 0. */
double reverse_variance(const Schedule *s, ReverseVar var, int t);
/* The same, but with the documented clipping used wherever σ_t² divides or is logged:
 * β̃_1 = 0 is replaced by β̃_2 (as Ho et al.'s "posterior_log_variance_clipped"). */
double reverse_variance_clipped(const Schedule *s, ReverseVar var, int t);

/* KL-derived loss weight w_t such that, per example with D numbers,
 *   L_{t−1} = KL(q(x_{t−1}|x_t, x₀) ‖ p_θ(x_{t−1}|x_t)) = w_t ‖target − prediction‖² + c_t
 * for the target of each parametrization (ε, x₀, μ_q, v). With σ_t² the clipped reverse
 * variance:
 *   μ:  w = 1 / (2σ_t²)
 *   x₀: w = 1 / (2σ_t²) · (√ᾱ_{t−1} β_t / (1 − ᾱ_t))²        (note 004 drops the square)
 *   ε:  w = 1 / (2σ_t²) · β_t² / ((1 − ᾱ_t) α_t)
 *   v:  w = 1 / (2σ_t²) · (√ᾱ_{t−1} β_t / (1 − ᾱ_t))² (1 − ᾱ_t)
 * At t = 1 the same weight is that of the decoder term −log N(x₀; μ_θ(x₁, 1), σ_1² I). */
double loss_weight_kl(const Schedule *s, Parametrization p, ReverseVar var, int t);
/* c_t per number: ½ (β̃_t/σ_t² − 1 − log(β̃_t/σ_t²)) for t ≥ 2 (0 when σ_t² = β̃_t);
 * ½ log(2π σ_1²) at t = 1, the Gaussian decoder's normalizer (a density, not a
 * probability). */
double loss_const_kl(const Schedule *s, ReverseVar var, int t);

/* Prints the table t, β_t, α_t, ᾱ_t, ... for t in rows (every `every` steps and t = 1, T). */
#include <stdio.h>
void schedule_print(FILE *f, const Schedule *s, int every);

#endif
