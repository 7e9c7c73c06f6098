/* ddpm.h: the diffusion itself, network-agnostic.
 *
 * Notes (named in notebooks_md/00_index.md): 004 (every formula: the diffusion process, the
 * reparametrization trick, p_θ, the loss, the x₀ and ε variants, the algorithm),
 * 001 and 003 (forward and reverse processes).
 * The network is reached only through `Denoiser` (denoiser.h), so the same code drives
 * the 2D MLP and the image U-Net. Every function works on a batch of N examples of D numbers each,
 * stored (N, D) row-major; t is given per example (t = 1..T).
 */
#ifndef DDPM_H
#define DDPM_H

#include "denoiser.h"
#include "schedule.h"
#include "tensor.h"

/* ----------------------------------------------------------------------------------------
 * Forward process. */

/* One Markov step, the note's reparametrization (004, 재매개변수화 트릭):
 *   x_t = √(1 − β_t) x_{t−1} + √β_t ε,  ε ~ N(0, I)          (q(x_t|x_{t−1})) */
void q_step(real *x_t, const real *x_prev, const real *eps, const Schedule *s, int t, int n);

/* The closed form q(x_t|x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I), sampled:
 *   x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε */
void q_sample(real *x_t, const real *x0, const real *eps, const Schedule *s,
              const int *t, int N, int D);

/* The posterior q(x_{t−1}|x_t, x₀) = N(μ_q, σ_q²(t) I) (004, 바로 원본으로):
 *   μ_q(x_t, x₀) = (√α_t (1 − ᾱ_{t−1}) x_t + √ᾱ_{t−1} (1 − α_t) x₀) / (1 − ᾱ_t)
 *   σ_q²(t) = β̃_t = (1 − ᾱ_{t−1}) β_t / (1 − ᾱ_t)   (written to var if not NULL) */
void q_posterior(real *mu_q, double *var, const real *x_t, const real *x0,
                 const Schedule *s, const int *t, int N, int D);
/* The same mean by the ε route (004, 노이즈 예측 신경망):
 *   μ_q = (x_t − (1 − α_t)/√(1 − ᾱ_t) ε) / √α_t */
void q_posterior_mean_eps(real *mu_q, const real *x_t, const real *eps, const Schedule *s,
                          const int *t, int N, int D);

/* ----------------------------------------------------------------------------------------
 * Parametrizations: the network's output read as ε̂, x̂₀, μ̂ or v̂, and conversions. */

/* x₀ from ε (004): x₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t */
void predict_x0_from_eps(real *x0, const real *x_t, const real *eps, const Schedule *s,
                         const int *t, int N, int D);
/* ε from x₀: ε = (x_t − √ᾱ_t x₀) / √(1 − ᾱ_t) */
void predict_eps_from_x0(real *eps, const real *x_t, const real *x0, const Schedule *s,
                         const int *t, int N, int D);
/* v = √ᾱ_t ε − √(1 − ᾱ_t) x₀ (Salimans & Ho, 2022); x₀ = √ᾱ_t x_t − √(1 − ᾱ_t) v */
void predict_x0_from_v(real *x0, const real *x_t, const real *v, const Schedule *s,
                       const int *t, int N, int D);
void v_from_x0_eps(real *v, const real *x0, const real *eps, const Schedule *s,
                   const int *t, int N, int D);
/* x₀ from μ by inverting μ_q = coef_x0 x₀ + coef_xt x_t (coef_x0 > 0 for every t ≥ 1). */
void predict_x0_from_mu(real *x0, const real *x_t, const real *mu, const Schedule *s,
                        const int *t, int N, int D);

/* Reads a network output `out` of parametrization p as x̂₀ (and ε̂ if eps_hat not NULL). */
void prediction_to_x0_eps(real *x0_hat, real *eps_hat, const real *out, Parametrization p,
                          const real *x_t, const Schedule *s, const int *t, int N, int D);
/* μ_θ(x_t, t) from any parametrization: for ε,
 *   μ_θ = (x_t − (1 − α_t)/√(1 − ᾱ_t) ε̂) / √α_t,
 * for x₀ and v through μ_q(x_t, x̂₀), for μ the output itself. */
void p_mean(real *mu, const real *out, Parametrization p, const real *x_t,
            const Schedule *s, const int *t, int N, int D);
/* The regression target of parametrization p for (x₀, ε, x_t): ε, x₀, μ_q or v. */
void prediction_target(real *target, Parametrization p, const real *x0, const real *eps,
                       const real *x_t, const Schedule *s, const int *t, int N, int D);

/* ----------------------------------------------------------------------------------------
 * Losses, with their gradient with respect to the network output. */
typedef enum {
    LOSS_SIMPLE,  /* L_simple = mean over batch and numbers of ‖target − out‖² (Ho et al.) */
    LOSS_KL,      /* L_{t−1} in nats per example: w_t ‖target − out‖² + D c_t (schedule.h) */
    LOSS_COUNT
} LossWeighting;
/* L_hybrid = L_simple + λ L_vlb (Nichol & Dhariwal 2021, §3.1), for a learned variance
 * (VAR_LEARNED) only: L_simple trains the prediction, L_vlb only v (a stop-gradient on the
 * mean). Outside the weightings that LOSS_COUNT counts (the loss lab runs over those);
 * LOSS_NAMES (and so loss_weighting_name, loss_weighting_parse) knows it as "hybrid". See
 * ddpm_hybrid_loss. */
enum { LOSS_HYBRID = LOSS_COUNT };
/* the names, indexed by LossWeighting, "hybrid" last: the parser's table and --help's list */
extern const char *const LOSS_NAMES[LOSS_COUNT + 1];
const char *loss_weighting_name(LossWeighting w);
int loss_weighting_parse(const char *name, LossWeighting *out);

/* The decoder L_0 = −log p_θ(x₀|x₁) of the bound (below) and of L_hybrid's L_vlb. */
typedef enum {
    DECODER_GAUSSIAN,      /* continuous data: −log N(x₀; μ_θ(x₁, 1), σ_1² I), a density */
    DECODER_DISCRETE,      /* 8-bit data on [−1, 1]: Ho et al.'s discretized Gaussian, bins of
                              width 2/255, open-ended edge bins, exact normal CDF (erfc) */
    DECODER_DISCRETE_TANH, /* the same with the tanh approximation of the CDF that reference
                              code uses; kept to compare against the exact one */
    DECODER_COUNT
} Decoder;

typedef struct {
    Parametrization param;   /* what the network predicts */
    LossWeighting weighting; /* simple, KL, or hybrid (with var = VAR_LEARNED) */
    ReverseVar var;          /* σ_t² of p_θ, used by the KL weights and by sampling */
    double hybrid_lambda;    /* λ of L_hybrid, e.g. 0.001 (Nichol & Dhariwal); else unused */
    Decoder decoder;         /* L_0 inside L_hybrid: DECODER_GAUSSIAN (0) for 2D data,
                                DECODER_DISCRETE for images; else unused */
} DdpmConfig;

/* Mean over the batch of the per-example loss; per_example (N) is written if not NULL.
 * dout (N, D) = dL/dout if not NULL (overwritten, not accumulated). */
double ddpm_loss(real *dout, double *per_example, const real *out, const real *target,
                 const DdpmConfig *cfg, const Schedule *s, const int *t, int N, int D);

/* The learned variance (Nichol & Dhariwal 2021, §3.1, improved-diffusion's LEARNED_RANGE).
 * A network with learned_var = 1 returns per example the prediction (D), then v (D):
 *   frac = (v + 1)/2,  log σ_t² = frac log β_t + (1 − frac) log β̃_t   (log β̃_1 clipped to
 * log β̃_2; log β_t as it is; v not clamped). learned_log_variance writes log σ_t² (n) for
 * v (n) at step t; split_output cuts an output (N, 2 D) into pred (N, D) and v (N, D)
 * (v may be NULL). */
void learned_log_variance(double *log_var, const real *v, const Schedule *s, int t, int n);
void split_output(real *pred, real *v, const real *out, int N, int D);
/* Dies with one line unless cfg->var is VAR_LEARNED exactly when the network outputs v,
 * and, with `training`, the learned variance goes with L_hybrid and L_hybrid with it. */
void ddpm_check_config(const Denoiser *net, const DdpmConfig *cfg, int training);

/* ℓ_t of one example with per-number log σ² (D): for t ≥ 2
 *   KL(N(μ_q, β̃_t I) ‖ N(μ_θ, diag σ²)) = Σ_d ½ (log σ²_d − log β̃_t + (β̃_t + (μ_q − μ_θ)_d²)/σ²_d − 1),
 * for t = 1 the decoder −log p_θ(x₀|x₁) (Gaussian density or discretized). In nats.
 * dlogvar (D), if not NULL, receives ∂ℓ_t/∂ log σ²_d (μ_θ held fixed). */
double vlb_term_learned(double *dlogvar, const real *x0, const real *mu_q, const real *mu_th,
                        const double *log_var, const Schedule *s, int t, int D, Decoder dec);

/* L_hybrid = L_simple + λ L_vlb (Nichol & Dhariwal 2021 eq. 16), per example
 *   1/D ‖target − prediction‖² + λ T ℓ_t / (D ln 2)
 * (L_vlb ≈ T ℓ_t for the sampled t, in bits per dimension, as improved-diffusion), with a
 * stop-gradient on the mean inside ℓ_t: the prediction's gradient is L_simple's alone,
 * v's is L_vlb's alone. out (N, 2 D), x₀ and x_t (N, D) of the same draw; cfg gives λ and
 * the decoder at t = 1. Returns the mean over the batch; dout (N, 2 D), per_example (N) as
 * ddpm_loss. */
double ddpm_hybrid_loss(real *dout, double *per_example, const real *out, const real *target,
                        const real *x0, const real *x_t, const DdpmConfig *cfg,
                        const Schedule *s, const int *t, int N, int D);

/* One training step's forward and backward on a batch x₀ (N, D) with labels y (N, or NULL
 * for an unconditional model; see Denoiser.forward): draws t ~ U{1..T} and
 * ε ~ N(0, I), forms x_t by q_sample, runs the network, the loss and its gradient, and
 * backward into the parameter gradients (which it zeroes first). Returns the loss.
 * The caller then calls adam_step and ema_update. `work` holds 7 N D reals (out and dout
 * have room for a learned variance's v: 2 N D each) and N ints. Dies with a message for a
 * denoiser without parameters (a closed-form oracle: there is nothing to train). */
typedef struct { real *eps, *x_t, *out, *target, *dout; int *t; int max_batch, D; } TrainWork;
void train_work_init(TrainWork *w, int max_batch, int D);
void train_work_free(TrainWork *w);
double ddpm_train_step(Denoiser *net, const real *x0, const int *y, int N,
                       const DdpmConfig *cfg, const Schedule *s, Rng *rng, TrainWork *work);

/* ----------------------------------------------------------------------------------------
 * Sampling. */

/* Every sampler takes the labels y (N) of the examples it generates, passed to the network
 * as they are (NULL for an unconditional model).
 *
 * One step of the note's algorithm (004, 알고리즘): with z ~ N(0, I), z = 0 at t = 1,
 *   x_{t−1} = μ_θ(x_t, t) + σ_t z,  σ_t² = β̃_t or β_t.
 * x is updated in place; x0_hat (N, D), if not NULL, receives the predicted x̂₀.
 * clip_x0: if non-zero, x̂₀ is clipped to [−1, 1] before forming μ_θ (Ho et al.'s code
 * does this for images; the note's algorithm does not). */
void p_sample(Denoiser *net, real *x, real *x0_hat, const int *y, const DdpmConfig *cfg,
              const Schedule *s, int t, int N, int clip_x0, Rng *rng);

/* Full ancestral sampling: x_T ~ N(0, I), then p_sample for t = T..1. If `trace` is not
 * NULL it is called after every step with the current x (t = T..0, x_t after the step is
 * x_{t−1}), so programs can record animations. */
typedef void (*SampleTrace)(void *ctx, int t, const real *x, const real *x0_hat, int N, int D);
void p_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                   const Schedule *s, int N, int clip_x0, Rng *rng,
                   SampleTrace trace, void *trace_ctx);

/* DDIM (Song et al., 2021) on S evenly spaced steps τ_S = T > ... > τ_1 ≥ 1:
 *   x̂₀ from the network, ε̂ = (x_τ − √ᾱ_τ x̂₀)/√(1 − ᾱ_τ),
 *   σ = η √((1 − ᾱ_prev)/(1 − ᾱ_τ)) √(1 − ᾱ_τ/ᾱ_prev),
 *   x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z,  with ᾱ_prev = 1 after τ_1.
 * η = 1 with S = T is ancestral sampling with σ_t² = β̃_t; η = 0 is deterministic. */
void ddim_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                      const Schedule *s, int N, int S, double eta, int clip_x0, Rng *rng,
                      SampleTrace trace, void *trace_ctx);

/* ----------------------------------------------------------------------------------------
 * The variational bound (Ho et al. eq. 5; note 004 "Train Diffusion Model"):
 *   −log p_θ(x₀) ≤ L = L_T + Σ_{t=2..T} L_{t−1} + L_0
 *   L_T     = KL(q(x_T|x₀) ‖ N(0, I))                               (prior_kl, no network)
 *   L_{t−1} = KL(q(x_{t−1}|x_t, x₀) ‖ p_θ(x_{t−1}|x_t)),  x_t ~ q(x_t|x₀)
 *   L_0     = −log p_θ(x₀|x₁)                                        (the decoder)
 * in nats per example; divide by D ln 2 for bits per dimension. */

/* Φ(z), the standard normal CDF, exactly by erfc; and the tanh approximation
 * Φ(z) ≈ ½ (1 + tanh(√(2/π) (z + 0.044715 z³))). */
double normal_cdf(double z);
double normal_cdf_tanh(double z);
/* log P(x | μ, σ) of one 8-bit value x ∈ {−1, −1 + 2/255, ..., 1} under the discretized
 * Gaussian: the mass of N(μ, σ²) on [x − 1/255, x + 1/255], with (−∞, ...] at x = −1 and
 * [..., ∞) at x = 1. Clamped below at log 1e-12 as in Ho et al. */
double discretized_gaussian_log_prob(double x, double mu, double sigma, int tanh_approx);

/* What the bound's step t compares, for each example n at its own t[n], with
 * x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε: mu_q = μ_q(x_t, x₀), mu_th = μ_θ(x_t, t) and, for a network
 * with a learned variance, its v (each (N, D); v may be NULL). */
void bound_means(real *mu_q, real *mu_th, real *v, Denoiser *net, const real *x0,
                 const real *eps, const int *t, int N, const DdpmConfig *cfg, const Schedule *s);

/* ℓ_t(x₀, ε) for each example n at its own t[n], with x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε:
 * L_{t−1} for t ≥ 2, L_0 for t = 1 (decoder). out (N) in nats. */
void vlb_terms(double *out, Denoiser *net, const real *x0, const real *eps, const int *t,
               int N, const DdpmConfig *cfg, const Schedule *s, Decoder dec);

/* Every term for every example: terms (T + 1) receives the means over the N examples of
 * terms[0] = L_T, terms[1] = L_0, terms[t] = L_{t−1} (t ≥ 2), each with one fresh ε per
 * example and t; total (N), if not NULL, the bound of each example. Returns the mean bound.
 * Costs T network passes over the N examples. */
double vlb_all_terms(double *terms, double *total, Denoiser *net, const real *x0, int N,
                     const DdpmConfig *cfg, const Schedule *s, Decoder dec, Rng *rng);

/* Unbiased estimate with one t ~ U{1..T} per example: L ≈ L_T + T ℓ_t(x₀, ε). Returns the
 * mean over the N examples and writes its standard error (sample std / √N). */
double vlb_estimate(double *std_error, Denoiser *net, const real *x0, int N,
                    const DdpmConfig *cfg, const Schedule *s, Decoder dec, Rng *rng);

/* The σ² that depends on t alone and minimizes the mean of ℓ_t over N examples at one t
 * for their fixed means (from bound_means): σ*² = β̃_t + 1/(N D) Σ ‖μ_q − μ_θ‖² for t ≥ 2,
 * and 1/(N D) Σ ‖x₀ − μ_θ‖² for t = 1 with the Gaussian decoder. No variance that depends
 * on t alone gives these examples a smaller mean ℓ_t; one that depends on x_t can. */
double optimal_reverse_variance(const real *x0, const real *mu_q, const real *mu_th,
                                const Schedule *s, int t, int N, int D);

/* ----------------------------------------------------------------------------------------
 * The prior term L_T = KL(q(x_T|x₀) ‖ N(0, I)) in nats for one x₀ of D numbers:
 *   ½ Σ_d (ᾱ_T x₀[d]² + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T)) */
double prior_kl(const real *x0, const Schedule *s, int D);

/* KL between two isotropic Gaussians N(m1, v1 I) and N(m2, v2 I) in D dims, in nats. */
double gaussian_kl(const real *m1, double v1, const real *m2, double v2, int D);

/* ----------------------------------------------------------------------------------------
 * The probability-flow ODE (Song et al. 2021, "Score-based generative modeling through
 * stochastic differential equations", §4.3 and App. D) for this discrete schedule.
 *
 * Which ODE. q(x_t|x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I) at t = 0..T are the marginals of any
 * variance-preserving SDE dx = −½ β(u) x du + √β(u) dW whose ∫₀ᵗ β(u) du = −log ᾱ_t at
 * the grid points (e.g. β(u) = −log α_t on (t − 1, t]). Its probability-flow ODE
 *   dx/du = −½ β(u) (x + ∇ log q_u(x)) = −½ β(u) (x − ε*(x, u) / √(1 − ᾱ(u)))
 * moves q_u into q_u' deterministically. How β(u) is interpolated between grid points
 * changes only the speed along the path, not the path: in the coordinates
 *   σ = √((1 − ᾱ)/ᾱ),  x̄ = x / √ᾱ = x √(1 + σ²)   (so that x̄ = x₀ + σ ε under q)
 * the same ODE reads
 *   dx̄/dσ = g(x̄, σ) = ε*(x̄ / √(1 + σ²), σ),          ε* = E[ε | x_t]
 * with no β in it (the variance-exploding form of the same flow). So the ODE is fixed by
 * ᾱ alone, and we integrate it in σ on the grid σ_t = √((1 − ᾱ_t)/ᾱ_t), where ε_θ(x_t, t)
 * is known: the network is only ever evaluated at integer t. σ_0 = 0 is the data, and
 * there g(·, 0) = 0 exactly (ε* = −√(1 − ᾱ) ∇ log q → 0 as ᾱ → 1 for data with a finite
 * score), so the network is never asked about t = 0.
 *
 * DDIM with η = 0 is the Euler method on this ODE. Divide its update by √ᾱ_prev:
 *   x_prev/√ᾱ_prev = x̂₀ + σ_prev ε̂ = (x_τ/√ᾱ_τ − σ_τ ε̂) + σ_prev ε̂,
 * i.e. x̄_prev = x̄_τ + (σ_prev − σ_τ) g(x̄_τ, σ_τ): one Euler step from σ_τ to σ_prev
 * (DDIM paper §4.3, eq. 14). Euler's global error is O(h), Heun's (the trapezoid with an
 * Euler predictor) O(h²), h the largest step in σ; tests/test_ode.c measures both orders.
 *
 * The steps are DDIM's: τ_i = round(i T / S), i = 0..S (τ_0 = 0, τ_S = T). */
typedef enum {
    ODE_EULER,  /* x̄ += h g(x̄, σ): exactly DDIM with η = 0 */
    ODE_HEUN,   /* x̄' = x̄ + h g(x̄, σ), x̄ += h/2 (g(x̄, σ) + g(x̄', σ + h)): 2nd order;
                   on steps longer than a factor 2 in σ the corrector in the equivalent
                   variation-of-constants form (ddpm.c ode_step), which stays stable */
    ODE_COUNT
} OdeSolver;
const char *ode_solver_name(OdeSolver m);
int ode_solver_parse(const char *name, OdeSolver *out);

typedef struct {
    int S;               /* steps on the grid τ_i = round(i T / S), 1..T, e.g. 50 */
    OdeSolver solver;    /* ODE_HEUN for sampling and likelihood; ODE_EULER = DDIM */
    int exact_trace;     /* 1: tr ∂ε/∂x exactly, D backward passes per evaluation (2D);
                            0: Hutchinson's estimate with `probes` Rademacher vectors */
    int probes;          /* Hutchinson probes per evaluation, ≥ 2 for a standard error */
} OdeConfig;

/* σ_t = √((1 − ᾱ_t)/ᾱ_t), the ODE's time at grid point t (σ_0 = 0). */
double ode_sigma(const Schedule *s, int t);

/* y (N) are class labels passed to the network as the samplers do (NULL: unconditional).
 * Decoding (noise → data): x (N, D) holds x_T on entry and x₀ on return, by S steps of
 * the solver from σ_T down to 0. trace, if not NULL, sees x_τ (in x coordinates) and x̂₀
 * after every step, as the other samplers. Deterministic: no random numbers. */
void ode_decode(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg, const Schedule *s,
                int N, const OdeConfig *oc, SampleTrace trace, void *trace_ctx);
/* Encoding (data → noise): x (N, D) holds x₀ on entry and x_T on return, the same steps
 * from σ = 0 up to σ_T. Decoding the result gives x₀ back up to the solver's error. */
void ode_encode(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg, const Schedule *s,
                int N, const OdeConfig *oc);
/* The ODE sampler: x_T ~ N(0, I) from rng, then ode_decode. */
void ode_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                     const Schedule *s, int N, const OdeConfig *oc, Rng *rng,
                     SampleTrace trace, void *trace_ctx);

/* The model's exact log-likelihood by the instantaneous change of variables (Chen et al.
 * 2018; Song et al. 2021, App. D.2), along the encoding path x̄(σ) of each x₀:
 *   log p(x₀) = log N(x_T; 0, I) + (D/2) log ᾱ_T + ∫₀^{σ_T} div_x̄ g(x̄(σ), σ) dσ,
 *   div_x̄ g = √ᾱ(σ) tr ∂ε̂/∂x_t,
 * the middle term being the volume change of x_T = √ᾱ_T x̄_T. The integral is taken by the
 * same solver as the path (the trapezoid for Heun), so it has the same order of error.
 * tr ∂ε̂/∂x_t comes from the network's backward (vector-Jacobian products): exactly with
 * oc->exact_trace (dout = e_d for d = 1..D), or by Hutchinson: E[zᵀ J z] = tr J for z with
 * independent ±1 entries, with oc->probes fresh z per evaluation; the path does not
 * depend on z, so the terms are independent and their variances add up to std_err².
 * logp (N) in nats; std_err (N), if not NULL, the estimate's standard error (0 for the
 * exact trace); x_T (N, D), if not NULL, the encoded points. Costs 2 S − 1 forward passes
 * (Heun) and D or `probes` backward passes each; the parameter gradients are left zeroed.
 * rng is used only by Hutchinson. */
void ode_log_likelihood(double *logp, double *std_err, real *x_T, Denoiser *net,
                        const real *x0, const int *y, int N, const DdpmConfig *cfg,
                        const Schedule *s, const OdeConfig *oc, Rng *rng);

/* div_x̄ g(x̄, σ_t) (N) at x̄ (N, D) for grid point t ≥ 1, as the likelihood computes it
 * (exact or Hutchinson by oc), with the estimate's variance in var (N) if not NULL. */
void ode_divergence(double *div, double *var, Denoiser *net, const double *xbar, const int *y,
                    int t, int N, const DdpmConfig *cfg, const Schedule *s,
                    const OdeConfig *oc, Rng *rng);

/* ε̂ = a x_t + b out for the output `out` of parametrization p at step t (every
 * parametrization is affine in x_t and the output): the Jacobian route of the divergence. */
void eps_affine(double *a, double *b, Parametrization p, const Schedule *s, int t);

#endif
