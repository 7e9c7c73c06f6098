/* ddpm.c: the diffusion itself, network-agnostic (see ddpm.h for the interface).
 *
 * Reading order follows note 004:
 *   1. Diffusion Process: q(x_t|x_{t−1}) and its reparametrization, q(x_t|x₀) in closed form
 *   2. The posterior q(x_{t−1}|x_t, x₀) by the x₀ route and the ε route (Variation)
 *   3. Parametrizations: ε̂, x̂₀, μ̂, v̂ and μ_θ(x_t, t) from each
 *   4. Train Diffusion Model: L_simple and the KL-weighted L_{t−1}, gradients, a train step
 *   5. 알고리즘 (the algorithm): ancestral sampling, then DDIM
 *   6. Gaussian KLs and the variational bound in nats and bits per dimension
 * Sizes: N = batch, D = numbers per example, T = diffusion steps; t = 1..T per example.
 * Every buffer is (N, D) row-major unless its comment says otherwise.
 */
#include "ddpm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================================
 * 1. Forward process (004, Diffusion Process) */

/* q(x_t|x_{t−1}) = N(x_t; √(1 − β_t) x_{t−1}, β_t I), by the reparametrization trick:
 *   x_t = √(1 − β_t) x_{t−1} + √β_t ε */
void q_step(real *x_t, const real *x_prev, const real *eps, const Schedule *s, int t, int n) {
    double a = sqrt(1.0 - s->beta[t]), b = sqrt(s->beta[t]);
    for (int i = 0; i < n; i++) x_t[i] = (real)(a * x_prev[i] + b * eps[i]);
}

/* q(x_t|x₀) = N(x_t; √ᾱ_t x₀, (1 − ᾱ_t) I):  x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε */
void q_sample(real *x_t, const real *x0, const real *eps, const Schedule *s,
              const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double a = s->sqrt_alpha_bar[t[n]], b = s->sqrt_one_minus_alpha_bar[t[n]];
        size_t row = (size_t)n * D;                     /* seek to example n */
        for (int d = 0; d < D; d++) x_t[row + d] = (real)(a * x0[row + d] + b * eps[row + d]);
    }
}

/* ========================================================================================
 * 2. The posterior q(x_{t−1}|x_t, x₀) (004, 바로 원본으로 / 노이즈 예측 신경망) */

/* μ_q(x_t, x₀) = (√α_t (1 − ᾱ_{t−1}) x_t + √ᾱ_{t−1} (1 − α_t) x₀) / (1 − ᾱ_t),
 * σ_q²(t) = β̃_t = (1 − ᾱ_{t−1}) β_t / (1 − ᾱ_t) */
void q_posterior(real *mu_q, double *var, const real *x_t, const real *x0,
                 const Schedule *s, const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double cx0 = s->coef_x0[t[n]], cxt = s->coef_xt[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) mu_q[row + d] = (real)(cxt * x_t[row + d] + cx0 * x0[row + d]);
        if (var) var[n] = s->sigma_q2[t[n]];
    }
}

/* μ_q(x_t, x₀) = 1/√α_t (x_t − (1 − α_t)/√(1 − ᾱ_t) ε), x₀ replaced by (x_t − √(1−ᾱ_t) ε)/√ᾱ_t */
void q_posterior_mean_eps(real *mu_q, const real *x_t, const real *eps, const Schedule *s,
                          const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double inv_sqrt_alpha = 1.0 / s->sqrt_alpha[t[n]], ce = s->coef_eps[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++)
            mu_q[row + d] = (real)(inv_sqrt_alpha * (x_t[row + d] - ce * eps[row + d]));
    }
}

/* ========================================================================================
 * 3. Parametrizations */

/* x₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t  (004, 노이즈 예측 신경망, first equation) */
void predict_x0_from_eps(real *x0, const real *x_t, const real *eps, const Schedule *s,
                         const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double a = s->sqrt_alpha_bar[t[n]], b = s->sqrt_one_minus_alpha_bar[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) x0[row + d] = (real)((x_t[row + d] - b * eps[row + d]) / a);
    }
}

/* ε = (x_t − √ᾱ_t x₀) / √(1 − ᾱ_t) */
void predict_eps_from_x0(real *eps, const real *x_t, const real *x0, const Schedule *s,
                         const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double a = s->sqrt_alpha_bar[t[n]], b = s->sqrt_one_minus_alpha_bar[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) eps[row + d] = (real)((x_t[row + d] - a * x0[row + d]) / b);
    }
}

/* x₀ = √ᾱ_t x_t − √(1 − ᾱ_t) v */
void predict_x0_from_v(real *x0, const real *x_t, const real *v, const Schedule *s,
                       const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double a = s->sqrt_alpha_bar[t[n]], b = s->sqrt_one_minus_alpha_bar[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) x0[row + d] = (real)(a * x_t[row + d] - b * v[row + d]);
    }
}

/* v = √ᾱ_t ε − √(1 − ᾱ_t) x₀ */
void v_from_x0_eps(real *v, const real *x0, const real *eps, const Schedule *s,
                   const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double a = s->sqrt_alpha_bar[t[n]], b = s->sqrt_one_minus_alpha_bar[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) v[row + d] = (real)(a * eps[row + d] - b * x0[row + d]);
    }
}

/* μ = coef_x0 x₀ + coef_xt x_t  ⇒  x₀ = (μ − coef_xt x_t) / coef_x0 */
void predict_x0_from_mu(real *x0, const real *x_t, const real *mu, const Schedule *s,
                        const int *t, int N, int D) {
    for (int n = 0; n < N; n++) {
        double cx0 = s->coef_x0[t[n]], cxt = s->coef_xt[t[n]];
        size_t row = (size_t)n * D;
        for (int d = 0; d < D; d++) x0[row + d] = (real)((mu[row + d] - cxt * x_t[row + d]) / cx0);
    }
}

void prediction_to_x0_eps(real *x0_hat, real *eps_hat, const real *out, Parametrization p,
                          const real *x_t, const Schedule *s, const int *t, int N, int D) {
    switch (p) {
    case PRED_EPS:
        predict_x0_from_eps(x0_hat, x_t, out, s, t, N, D);
        if (eps_hat) memcpy(eps_hat, out, (size_t)N * D * sizeof(real));
        return;
    case PRED_X0:
        memcpy(x0_hat, out, (size_t)N * D * sizeof(real));
        break;
    case PRED_V:
        predict_x0_from_v(x0_hat, x_t, out, s, t, N, D);
        break;
    case PRED_MU:
        predict_x0_from_mu(x0_hat, x_t, out, s, t, N, D);
        break;
    default:
        die("prediction_to_x0_eps: unknown parametrization %d", (int)p);
    }
    if (eps_hat) predict_eps_from_x0(eps_hat, x_t, x0_hat, s, t, N, D);
}

/* μ_θ(x_t, t) (004, Variation): the posterior mean with the network's guess in place of
 * the unknown, so that the same formula serves every route:
 *   ε:  μ_θ = 1/√α_t (x_t − (1 − α_t)/√(1 − ᾱ_t) ε_θ(x_t, t))
 *   x₀: μ_θ = (√α_t (1 − ᾱ_{t−1}) x_t + √ᾱ_{t−1} (1 − α_t) x̂_θ(x_t, t)) / (1 − ᾱ_t)
 *   v:  x̂₀ = √ᾱ_t x_t − √(1 − ᾱ_t) v̂, then as x₀
 *   μ:  the output itself */
void p_mean(real *mu, const real *out, Parametrization p, const real *x_t,
            const Schedule *s, const int *t, int N, int D) {
    switch (p) {
    case PRED_EPS:
        q_posterior_mean_eps(mu, x_t, out, s, t, N, D);
        return;
    case PRED_X0:
        q_posterior(mu, NULL, x_t, out, s, t, N, D);
        return;
    case PRED_V:
        predict_x0_from_v(mu, x_t, out, s, t, N, D);      /* mu holds x̂₀ for a moment */
        q_posterior(mu, NULL, x_t, mu, s, t, N, D);        /* element-wise: safe in place */
        return;
    case PRED_MU:
        memcpy(mu, out, (size_t)N * D * sizeof(real));
        return;
    default:
        die("p_mean: unknown parametrization %d", (int)p);
    }
}

void prediction_target(real *target, Parametrization p, const real *x0, const real *eps,
                       const real *x_t, const Schedule *s, const int *t, int N, int D) {
    switch (p) {
    case PRED_EPS: memcpy(target, eps, (size_t)N * D * sizeof(real)); return;
    case PRED_X0:  memcpy(target, x0, (size_t)N * D * sizeof(real)); return;
    case PRED_MU:  q_posterior(target, NULL, x_t, x0, s, t, N, D); return;
    case PRED_V:   v_from_x0_eps(target, x0, eps, s, t, N, D); return;
    default: die("prediction_target: unknown parametrization %d", (int)p);
    }
}

/* ========================================================================================
 * 4. Losses (004, Train Diffusion Model) */

const char *const LOSS_NAMES[LOSS_COUNT + 1] = { "simple", "kl", "hybrid" };
const char *loss_weighting_name(LossWeighting w) { return LOSS_NAMES[w]; }
int loss_weighting_parse(const char *name, LossWeighting *out) {
    for (int k = 0; k <= LOSS_HYBRID; k++)
        if (strcmp(name, LOSS_NAMES[k]) == 0) { *out = (LossWeighting)k; return 0; }
    return -1;
}

/* Per example n with t = t[n]:
 *   simple:  ℓ_n = 1/D ‖target_n − out_n‖²                       (Ho et al.'s L_simple)
 *   kl:      ℓ_n = w_t ‖target_n − out_n‖² + D c_t  = L_{t−1} in nats  (schedule.c)
 * L = 1/N Σ_n ℓ_n, so the chain rule starts at
 *   dL/dout_n = 2 w_n (out_n − target_n) / N,  w_n = 1/D (simple) or w_t (kl). */
double ddpm_loss(real *dout, double *per_example, const real *out, const real *target,
                 const DdpmConfig *cfg, const Schedule *s, const int *t, int N, int D) {
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        size_t row = (size_t)n * D;
        double w = cfg->weighting == LOSS_KL ? loss_weight_kl(s, cfg->param, cfg->var, t[n])
                                             : 1.0 / D;
        double c = cfg->weighting == LOSS_KL ? D * loss_const_kl(s, cfg->var, t[n]) : 0.0;
        double loss_n = w * mse_forward(out + row, target + row, (size_t)D, 1.0) + c;
        if (per_example) per_example[n] = loss_n;
        total += loss_n;
        if (dout) mse_backward(dout + row, out + row, target + row, (size_t)D, w / N);
    }
    return total / N;
}

/* ----------------------------------------------------------------------------------------
 * The learned variance and L_hybrid (Nichol & Dhariwal 2021, "Improved denoising diffusion
 * probabilistic models", §3.1; improved-diffusion's LEARNED_RANGE). The network returns,
 * per example, the prediction (D) and then v (D); with frac = (v + 1)/2,
 *   log σ_t² = frac log β_t + (1 − frac) log β̃_t,
 * log β̃_t clipped at t = 1 (β̃_1 = 0 replaced by β̃_2, schedule.h log_sigma_q2_clipped)
 * and log β_t as it is. v is not clamped: v = −1 gives β̃_t, v = +1 gives β_t, and values
 * outside [−1, 1] extrapolate in log space, as in improved-diffusion. */

void ddpm_check_config(const Denoiser *net, const DdpmConfig *cfg, int training) {
    int learned = (int)cfg->var == VAR_LEARNED;
    if (learned != net->learned_var)
        die(learned ? "the learned variance needs a network that outputs 2 D numbers (v too)"
                    : "this network outputs a variance (2 D numbers): use the learned variance");
    if (training && learned != ((int)cfg->weighting == LOSS_HYBRID))
        die("the learned variance trains with L_hybrid, and L_hybrid needs a learned variance "
            "(L_simple gives v no gradient; L_vlb's stop-gradient needs v)");
}

void learned_log_variance(double *log_var, const real *v, const Schedule *s, int t, int n) {
    double max_log = log(s->beta[t]), min_log = s->log_sigma_q2_clipped[t];
    for (int i = 0; i < n; i++) {
        double frac = 0.5 * ((double)v[i] + 1.0);
        log_var[i] = frac * max_log + (1.0 - frac) * min_log;
    }
}

void split_output(real *pred, real *v, const real *out, int N, int D) {
    for (int n = 0; n < N; n++) {
        const real *row = out + (size_t)n * 2 * D;               /* seek to out[n, :] */
        memcpy(pred + (size_t)n * D, row, (size_t)D * sizeof(real));
        if (v) memcpy(v + (size_t)n * D, row + D, (size_t)D * sizeof(real));
    }
}

/* φ(z) = Φ'(z) of the exact CDF, or the derivative of the tanh approximation:
 *   d/dz ½ (1 + tanh(c (z + k z³))) = ½ (1 − tanh²(·)) c (1 + 3 k z²), c = √(2/π) */
static double normal_cdf_derivative(double z, int tanh_approx) {
    if (!tanh_approx) return exp(-0.5 * z * z) / sqrt(2.0 * PI);
    double c = sqrt(2.0 / PI), th = tanh(c * (z + 0.044715 * z * z * z));
    return 0.5 * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * z * z);
}

/* d/d log σ² of discretized_gaussian_log_prob (the same branches): with z = (b − μ)/σ,
 * dz/d log σ² = −z/2, so dΦ(z)/d log σ² = −½ z φ(z); 0 where the mass is clamped at 1e-12. */
static double discretized_gaussian_dlogp_dlogvar(double x, double mu, double sigma,
                                                 int tanh_approx) {
    double (*cdf)(double) = tanh_approx ? normal_cdf_tanh : normal_cdf;
    double lo = (x - 1.0 / 255.0 - mu) / sigma, hi = (x + 1.0 / 255.0 - mu) / sigma;
    double p, dp;   /* the mass and its derivative in log σ² */
    double g_hi = -0.5 * hi * normal_cdf_derivative(hi, tanh_approx);
    double g_lo = -0.5 * lo * normal_cdf_derivative(lo, tanh_approx);
    if (x < -0.999) {
        p = cdf(hi); dp = g_hi;                        /* Φ(hi) */
    } else if (x > 0.999) {
        p = tanh_approx ? 1.0 - cdf(lo) : normal_cdf(-lo); dp = -g_lo;   /* 1 − Φ(lo) */
    } else {
        p = (!tanh_approx && lo > 0) ? normal_cdf(-lo) - normal_cdf(-hi) : cdf(hi) - cdf(lo);
        dp = g_hi - g_lo;                              /* Φ(hi) − Φ(lo) */
    }
    return p > 1e-12 ? dp / p : 0.0;
}

double vlb_term_learned(double *dlogvar, const real *x0, const real *mu_q, const real *mu_th,
                        const double *log_var, const Schedule *s, int t, int D, Decoder dec) {
    double sum = 0.0;
    for (int d = 0; d < D; d++) {
        double var = exp(log_var[d]), diff = (double)mu_q[d] - mu_th[d], term, grad;
        if (t >= 2) {
            /* KL(N(μ_q, β̃_t) ‖ N(μ_θ, σ²)) = ½ (log σ² − log β̃_t + (β̃_t + (μ_q − μ_θ)²)/σ² − 1) */
            double bt = s->sigma_q2[t];
            term = 0.5 * (log_var[d] - log(bt) + (bt + diff * diff) / var - 1.0);
            grad = 0.5 * (1.0 - (bt + diff * diff) / var);
        } else if (dec == DECODER_GAUSSIAN) {
            /* −log N(x₀; μ_θ, σ²) = ½ log(2π σ²) + (x₀ − μ_θ)²/(2σ²) */
            double e = (double)x0[d] - mu_th[d];
            term = 0.5 * log(2.0 * PI * var) + e * e / (2.0 * var);
            grad = 0.5 - e * e / (2.0 * var);
        } else {
            int tanh_approx = dec == DECODER_DISCRETE_TANH;
            double sigma = sqrt(var);
            term = -discretized_gaussian_log_prob(x0[d], mu_th[d], sigma, tanh_approx);
            grad = -discretized_gaussian_dlogp_dlogvar(x0[d], mu_th[d], sigma, tanh_approx);
        }
        sum += term;
        if (dlogvar) dlogvar[d] = grad;
    }
    return sum;
}

/* Per example n, out_n = [prediction (D), v (D)], t = t[n]:
 *   ℓ_n = 1/D ‖target_n − prediction_n‖² + λ T ℓ_t(μ_θ, σ²(v)) / (D ln 2),
 * the second term λ L_vlb with the one-t estimate L_vlb ≈ T ℓ_t in bits per dimension, as
 * improved-diffusion's hybrid loss (vb in bits/dim times T/1000 for λ = 0.001). The mean
 * μ_θ inside ℓ_t is a constant to the gradient (stop-gradient): the prediction's gradient
 * is L_simple's alone, and
 *   dL/dv_n,d = λ T / (D ln 2 N) · ∂ℓ_t/∂ log σ²_d · ½ (log β_t − log β̃_t). */
double ddpm_hybrid_loss(real *dout, double *per_example, const real *out, const real *target,
                        const real *x0, const real *x_t, const DdpmConfig *cfg,
                        const Schedule *s, const int *t, int N, int D) {
    real *mu_th = xmalloc(2 * (size_t)D * sizeof(real), "hybrid means"), *mu_q = mu_th + D;
    double *log_var = xmalloc(2 * (size_t)D * sizeof(double), "hybrid log variances");
    double *dlogvar = log_var + D;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const real *pred = out + (size_t)n * 2 * D, *v = pred + D;   /* seek to out[n, :] */
        const real *x0_n = x0 + (size_t)n * D, *xt_n = x_t + (size_t)n * D;
        const real *target_n = target + (size_t)n * D;
        int tn = t[n];
        double simple = mse_forward(pred, target_n, (size_t)D, 1.0 / D);
        p_mean(mu_th, pred, cfg->param, xt_n, s, t + n, 1, D);    /* μ_θ, held constant */
        q_posterior(mu_q, NULL, xt_n, x0_n, s, t + n, 1, D);      /* μ_q(x_t, x₀) */
        learned_log_variance(log_var, v, s, tn, D);
        double scale = cfg->hybrid_lambda * s->T / (D * log(2.0));
        double ell = vlb_term_learned(dlogvar, x0_n, mu_q, mu_th, log_var, s, tn, D, cfg->decoder);
        double loss_n = simple + scale * ell;
        if (per_example) per_example[n] = loss_n;
        total += loss_n;
        if (!dout) continue;
        real *dpred = dout + (size_t)n * 2 * D, *dv = dpred + D;
        mse_backward(dpred, pred, target_n, (size_t)D, 1.0 / ((double)D * N));   /* L_simple */
        double dlogvar_dv = 0.5 * (log(s->beta[tn]) - s->log_sigma_q2_clipped[tn]);
        for (int d = 0; d < D; d++) dv[d] = (real)(scale / N * dlogvar[d] * dlogvar_dv);
    }
    free(mu_th);
    free(log_var);
    return total / N;
}

void train_work_init(TrainWork *w, int max_batch, int D) {
    size_t n = (size_t)max_batch * D;
    w->eps = xmalloc(n * sizeof(real), "train eps");
    w->x_t = xmalloc(n * sizeof(real), "train x_t");
    w->out = xmalloc(2 * n * sizeof(real), "train output");    /* room for a learned v */
    w->target = xmalloc(n * sizeof(real), "train target");
    w->dout = xmalloc(2 * n * sizeof(real), "train dL/dout");
    w->t = xmalloc((size_t)max_batch * sizeof(int), "train t");
    w->max_batch = max_batch;
    w->D = D;
}

void train_work_free(TrainWork *w) {
    free(w->eps); free(w->x_t); free(w->out); free(w->target); free(w->dout); free(w->t);
    memset(w, 0, sizeof *w);
}

/* Ho et al.'s Algorithm 1 with any parametrization and weighting:
 *   t ~ U{1..T}, ε ~ N(0, I), x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε,
 *   loss = ℓ(f_θ(x_t, t), target), gradient into the parameters. */
double ddpm_train_step(Denoiser *net, const real *x0, const int *y, int N,
                       const DdpmConfig *cfg, const Schedule *s, Rng *rng, TrainWork *w) {
    int D = net->D;
    if (N > w->max_batch || N > net->max_batch || D != w->D)
        die("ddpm_train_step: batch %d or D %d exceeds the buffers (%d, %d)", N, D,
            w->max_batch, w->D);
    if (!net->params || !net->backward)
        die("ddpm_train_step: this denoiser has no parameters to train (a closed-form oracle?); "
            "sample with it directly");
    ddpm_check_config(net, cfg, 1);
    for (int n = 0; n < N; n++) w->t[n] = 1 + rng_int(rng, s->T);
    rng_fill_normal(rng, w->eps, (size_t)N * D);
    q_sample(w->x_t, x0, w->eps, s, w->t, N, D);
    net->forward(net->self, w->out, w->x_t, w->t, y, N);
    prediction_target(w->target, cfg->param, x0, w->eps, w->x_t, s, w->t, N, D);
    double loss = (int)cfg->weighting == LOSS_HYBRID
        ? ddpm_hybrid_loss(w->dout, NULL, w->out, w->target, x0, w->x_t, cfg, s, w->t, N, D)
        : ddpm_loss(w->dout, NULL, w->out, w->target, cfg, s, w->t, N, D);
    params_zero_grad(net->params);
    net->backward(net->self, NULL, w->dout, N);
    return loss;
}

/* ========================================================================================
 * 5. Sampling (004, 알고리즘)
 *
 *   x_T ~ N(0, I)
 *   for t in [T, ..., 1]:
 *       ε ~ N(0, I); if t = 1 then ε = 0
 *       x_{t−1} = μ_θ(x_t, t) + σ_q(t) ε
 *   return x₀
 */

static void clip_unit(real *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < -1 ? -1 : (x[i] > 1 ? 1 : x[i]);
}

/* buffers for one sampling step, allocated once per loop: out is the prediction (N, D);
 * raw (N, 2 D) and v (N, D) serve a network with a learned variance */
typedef struct { real *out, *mu, *x0_hat, *raw, *v; int *t; } StepWork;

static void step_work_init(StepWork *w, int N, int D) {
    w->out = xmalloc((size_t)N * D * sizeof(real), "sampler output");
    w->mu = xmalloc((size_t)N * D * sizeof(real), "sampler mean");
    w->x0_hat = xmalloc((size_t)N * D * sizeof(real), "sampler x0_hat");
    w->raw = xmalloc(2 * (size_t)N * D * sizeof(real), "sampler output with v");
    w->v = xmalloc((size_t)N * D * sizeof(real), "sampler v");
    w->t = xmalloc((size_t)N * sizeof(int), "sampler t");
}

static void step_work_free(StepWork *w) {
    free(w->out); free(w->mu); free(w->x0_hat); free(w->raw); free(w->v); free(w->t);
}

/* Runs the network on x_t in chunks of at most max_batch and fills out (N, D), or
 * (N, 2 D) for a network with a learned variance. */
static void denoiser_forward_all(Denoiser *net, real *out, const real *x, int *t,
                                 const int *y, int N) {
    int W = net->D * (1 + net->learned_var);
    for (int start = 0; start < N; start += net->max_batch) {
        int n = N - start < net->max_batch ? N - start : net->max_batch;
        net->forward(net->self, out + (size_t)start * W, x + (size_t)start * net->D,
                     t + start, y ? y + start : NULL, n);
    }
}

/* The prediction pred (N, D) and, for a learned variance, v (N, D); raw (N, 2 D) scratch */
static void denoiser_predict(Denoiser *net, real *pred, real *v, real *raw, const real *x,
                             int *t, const int *y, int N) {
    if (!net->learned_var) {
        denoiser_forward_all(net, pred, x, t, y, N);
        return;
    }
    denoiser_forward_all(net, raw, x, t, y, N);
    split_output(pred, v, raw, N, net->D);
}

static void p_sample_work(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                          const Schedule *s, int t, int N, int clip_x0, Rng *rng,
                          StepWork *w) {
    int D = net->D;
    size_t n = (size_t)N * D;
    for (int i = 0; i < N; i++) w->t[i] = t;
    ddpm_check_config(net, cfg, 0);
    denoiser_predict(net, w->out, w->v, w->raw, x, w->t, y, N);
    prediction_to_x0_eps(w->x0_hat, NULL, w->out, cfg->param, x, s, w->t, N, D);
    if (clip_x0) {
        clip_unit(w->x0_hat, n);
        q_posterior(w->mu, NULL, x, w->x0_hat, s, w->t, N, D);   /* μ_q(x_t, clip(x̂₀)) */
    } else {
        p_mean(w->mu, w->out, cfg->param, x, s, w->t, N, D);     /* μ_θ(x_t, t) */
    }
    if (t > 1 && (int)cfg->var == VAR_LEARNED) {
        /* σ per number from v: x_{t−1} = μ_θ + exp(½ log σ_t²) z */
        for (size_t i = 0; i < n; i++) {
            double log_var;
            learned_log_variance(&log_var, w->v + i, s, t, 1);
            x[i] = (real)(w->mu[i] + exp(0.5 * log_var) * rng_normal(rng));
        }
        return;
    }
    if (t > 1) {
        double sigma = sqrt(reverse_variance(s, cfg->var, t));
        for (size_t i = 0; i < n; i++) x[i] = (real)(w->mu[i] + sigma * rng_normal(rng));
    } else {
        memcpy(x, w->mu, n * sizeof(real));                      /* ε = 0 at t = 1 */
    }
}

void p_sample(Denoiser *net, real *x, real *x0_hat, const int *y, const DdpmConfig *cfg,
              const Schedule *s, int t, int N, int clip_x0, Rng *rng) {
    StepWork w;
    step_work_init(&w, N, net->D);
    p_sample_work(net, x, y, cfg, s, t, N, clip_x0, rng, &w);
    if (x0_hat) memcpy(x0_hat, w.x0_hat, (size_t)N * net->D * sizeof(real));
    step_work_free(&w);
}

void p_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                   const Schedule *s, int N, int clip_x0, Rng *rng,
                   SampleTrace trace, void *trace_ctx) {
    int D = net->D;
    StepWork w;
    step_work_init(&w, N, D);
    rng_fill_normal(rng, x, (size_t)N * D);                      /* x_T ~ N(0, I) */
    if (trace) trace(trace_ctx, s->T, x, NULL, N, D);
    for (int t = s->T; t >= 1; t--) {
        p_sample_work(net, x, y, cfg, s, t, N, clip_x0, rng, &w);   /* x is now x_{t−1} */
        if (trace) trace(trace_ctx, t - 1, x, w.x0_hat, N, D);
    }
    step_work_free(&w);
}

/* DDIM (Song, Meng & Ermon 2021, eq. 12) on the subsequence τ_i = round(i T / S), i = 1..S. */
void ddim_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                      const Schedule *s, int N, int S, double eta, int clip_x0, Rng *rng,
                      SampleTrace trace, void *trace_ctx) {
    int D = net->D;
    size_t n = (size_t)N * D;
    if (S < 1 || S > s->T) die("DDIM steps %d must be in 1..T = %d", S, s->T);
    StepWork w;
    step_work_init(&w, N, D);
    real *eps_hat = xmalloc(n * sizeof(real), "DDIM eps_hat");
    rng_fill_normal(rng, x, n);                                  /* x_T ~ N(0, I) */
    if (trace) trace(trace_ctx, s->T, x, NULL, N, D);
    for (int i = S; i >= 1; i--) {
        int tau = (int)(((long)i * s->T + S / 2) / S);           /* round(i T / S) */
        int tau_prev = i > 1 ? (int)(((long)(i - 1) * s->T + S / 2) / S) : 0;
        for (int k = 0; k < N; k++) w.t[k] = tau;
        denoiser_predict(net, w.out, NULL, w.raw, x, w.t, y, N);   /* a learned v unused */
        prediction_to_x0_eps(w.x0_hat, eps_hat, w.out, cfg->param, x, s, w.t, N, D);
        if (clip_x0) {
            clip_unit(w.x0_hat, n);
            predict_eps_from_x0(eps_hat, x, w.x0_hat, s, w.t, N, D);
        }
        double abar = s->alpha_bar[tau], abar_prev = s->alpha_bar[tau_prev];
        /* σ = η √((1 − ᾱ_prev)/(1 − ᾱ_τ)) √(1 − ᾱ_τ/ᾱ_prev): β̃ for η = 1 and S = T */
        double sigma = eta * sqrt((1.0 - abar_prev) / (1.0 - abar)) * sqrt(1.0 - abar / abar_prev);
        double dir = sqrt(fmax(1.0 - abar_prev - sigma * sigma, 0.0));
        double a = sqrt(abar_prev);
        for (size_t j = 0; j < n; j++) {
            /* x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z */
            double next = a * w.x0_hat[j] + dir * eps_hat[j];
            if (sigma > 0) next += sigma * rng_normal(rng);
            x[j] = (real)next;
        }
        if (trace) trace(trace_ctx, tau_prev, x, w.x0_hat, N, D);
    }
    free(eps_hat);
    step_work_free(&w);
}

/* ========================================================================================
 * 6. Gaussian KLs */

/* KL(N(m1, v1 I) ‖ N(m2, v2 I)) = ½ Σ_d (v1/v2 − 1 + log(v2/v1) + (m1 − m2)²/v2) */
double gaussian_kl(const real *m1, double v1, const real *m2, double v2, int D) {
    double sq = 0.0;
    for (int d = 0; d < D; d++) {
        double diff = (double)m1[d] - (double)m2[d];
        sq += diff * diff;
    }
    return 0.5 * (D * (v1 / v2 - 1.0 + log(v2 / v1)) + sq / v2);
}

/* L_T = KL(q(x_T|x₀) ‖ N(0, I)), q(x_T|x₀) = N(√ᾱ_T x₀, (1 − ᾱ_T) I):
 *   ½ Σ_d (ᾱ_T x₀[d]² + (1 − ᾱ_T) − 1 − log(1 − ᾱ_T)) */
double prior_kl(const real *x0, const Schedule *s, int D) {
    double abar = s->alpha_bar[s->T], sum = 0.0;
    for (int d = 0; d < D; d++)
        sum += abar * (double)x0[d] * x0[d] + (1.0 - abar) - 1.0 - log(1.0 - abar);
    return 0.5 * sum;
}

/* Φ(z) = ½ erfc(−z/√2): exact to double precision in both tails */
double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

/* the approximation in reference code: ½ (1 + tanh(√(2/π) (z + 0.044715 z³))) */
double normal_cdf_tanh(double z) {
    return 0.5 * (1.0 + tanh(sqrt(2.0 / PI) * (z + 0.044715 * z * z * z)));
}

double discretized_gaussian_log_prob(double x, double mu, double sigma, int tanh_approx) {
    double (*cdf)(double) = tanh_approx ? normal_cdf_tanh : normal_cdf;
    double lo = (x - 1.0 / 255.0 - mu) / sigma, hi = (x + 1.0 / 255.0 - mu) / sigma;
    double p;
    if (x < -0.999) {
        p = cdf(hi);                               /* (−∞, x + 1/255] */
    } else if (x > 0.999) {
        /* [x − 1/255, ∞): 1 − Φ(lo), written Φ(−lo) for the exact CDF to avoid cancellation */
        p = tanh_approx ? 1.0 - cdf(lo) : normal_cdf(-lo);
    } else if (!tanh_approx && lo > 0) {
        p = normal_cdf(-lo) - normal_cdf(-hi);     /* both in the upper tail: use 1 − Φ(z) = Φ(−z) */
    } else {
        p = cdf(hi) - cdf(lo);
    }
    return log(fmax(p, 1e-12));
}

/* ℓ_t for t ≥ 2: KL(N(μ_q, β̃_t I) ‖ N(μ_θ, σ_t² I)); for t = 1 the decoder −log p_θ(x₀|x₁)
 * with p_θ(x₀|x₁) = N(μ_θ(x₁, 1), σ_1² I) (σ_1² clipped: β̃_1 = 0 would be a point mass). */
void bound_means(real *mu_q, real *mu_th, real *v, Denoiser *net, const real *x0,
                 const real *eps, const int *t, int N, const DdpmConfig *cfg, const Schedule *s) {
    int D = net->D;
    size_t n_all = (size_t)N * D;
    real *x_t = xmalloc(n_all * sizeof(real), "bound x_t");
    real *pred = xmalloc(n_all * sizeof(real), "bound prediction");
    real *raw = xmalloc(2 * n_all * sizeof(real), "bound output with v");
    int *tt = xmalloc((size_t)N * sizeof(int), "bound t");
    memcpy(tt, t, (size_t)N * sizeof(int));
    ddpm_check_config(net, cfg, 0);
    q_sample(x_t, x0, eps, s, t, N, D);
    denoiser_predict(net, pred, v, raw, x_t, tt, NULL, N);   /* the unconditional bound */
    p_mean(mu_th, pred, cfg->param, x_t, s, t, N, D);          /* μ_θ(x_t, t) */
    q_posterior(mu_q, NULL, x_t, x0, s, t, N, D);              /* μ_q(x_t, x₀) */
    free(x_t); free(pred); free(raw); free(tt);
}

void vlb_terms(double *out, Denoiser *net, const real *x0, const real *eps, const int *t,
               int N, const DdpmConfig *cfg, const Schedule *s, Decoder dec) {
    int D = net->D;
    size_t n_all = (size_t)N * D;
    real *mu_th = xmalloc(n_all * sizeof(real), "bound mu_theta");
    real *mu_q = xmalloc(n_all * sizeof(real), "bound mu_q");
    real *v = xmalloc(n_all * sizeof(real), "bound v");
    double *log_var = xmalloc((size_t)D * sizeof(double), "bound log variance");
    bound_means(mu_q, mu_th, v, net, x0, eps, t, N, cfg, s);
    for (int n = 0; n < N; n++) {
        size_t row = (size_t)n * D;
        if ((int)cfg->var == VAR_LEARNED) {                    /* σ² per number from v */
            learned_log_variance(log_var, v + row, s, t[n], D);
            out[n] = vlb_term_learned(NULL, x0 + row, mu_q + row, mu_th + row, log_var, s,
                                      t[n], D, dec);
            continue;
        }
        double sigma2 = reverse_variance_clipped(s, cfg->var, t[n]);
        if (t[n] >= 2) {
            out[n] = gaussian_kl(mu_q + row, s->sigma_q2[t[n]], mu_th + row, sigma2, D);
        } else if (dec == DECODER_GAUSSIAN) {
            double sq = 0.0;
            for (int d = 0; d < D; d++) sq += pow((double)x0[row + d] - mu_th[row + d], 2);
            out[n] = sq / (2.0 * sigma2) + 0.5 * D * log(2.0 * PI * sigma2);
        } else {
            double nll = 0.0, sigma = sqrt(sigma2);
            for (int d = 0; d < D; d++)
                nll -= discretized_gaussian_log_prob(x0[row + d], mu_th[row + d], sigma,
                                                     dec == DECODER_DISCRETE_TANH);
            out[n] = nll;
        }
    }
    free(mu_th); free(mu_q); free(v); free(log_var);
}

double vlb_all_terms(double *terms, double *total, Denoiser *net, const real *x0, int N,
                     const DdpmConfig *cfg, const Schedule *s, Decoder dec, Rng *rng) {
    int D = net->D;
    real *eps = xmalloc((size_t)N * D * sizeof(real), "bound eps");
    int *t = xmalloc((size_t)N * sizeof(int), "bound t");
    double *ell = xmalloc((size_t)N * sizeof(double), "bound terms");
    double *sum = xcalloc((size_t)N, sizeof(double), "bound totals");
    terms[0] = 0.0;
    for (int n = 0; n < N; n++) {                              /* L_T */
        sum[n] = prior_kl(x0 + (size_t)n * D, s, D);
        terms[0] += sum[n] / N;
    }
    for (int step = 1; step <= s->T; step++) {                 /* L_0, L_1, ..., L_{T−1} */
        for (int n = 0; n < N; n++) t[n] = step;
        rng_fill_normal(rng, eps, (size_t)N * D);
        vlb_terms(ell, net, x0, eps, t, N, cfg, s, dec);
        terms[step] = 0.0;
        for (int n = 0; n < N; n++) {
            terms[step] += ell[n] / N;
            sum[n] += ell[n];
        }
    }
    double mean = 0.0;
    for (int n = 0; n < N; n++) mean += sum[n] / N;
    if (total) memcpy(total, sum, (size_t)N * sizeof(double));
    free(eps); free(t); free(ell); free(sum);
    return mean;
}

double vlb_estimate(double *std_error, Denoiser *net, const real *x0, int N,
                    const DdpmConfig *cfg, const Schedule *s, Decoder dec, Rng *rng) {
    int D = net->D;
    real *eps = xmalloc((size_t)N * D * sizeof(real), "bound eps");
    int *t = xmalloc((size_t)N * sizeof(int), "bound t");
    double *ell = xmalloc((size_t)N * sizeof(double), "bound terms");
    for (int n = 0; n < N; n++) t[n] = 1 + rng_int(rng, s->T);
    rng_fill_normal(rng, eps, (size_t)N * D);
    vlb_terms(ell, net, x0, eps, t, N, cfg, s, dec);
    double mean = 0.0, sq = 0.0;
    for (int n = 0; n < N; n++) {
        ell[n] = prior_kl(x0 + (size_t)n * D, s, D) + s->T * ell[n];   /* L_T + T ℓ_t */
        mean += ell[n] / N;
    }
    for (int n = 0; n < N; n++) sq += (ell[n] - mean) * (ell[n] - mean);
    if (std_error) *std_error = N > 1 ? sqrt(sq / (N - 1) / N) : NAN;
    free(eps); free(t); free(ell);
    return mean;
}

/* The best σ² that depends on t alone, for a mean μ_θ held fixed (the bound of one network's
 * mean, notebook 08 §5). Over N examples at one t, the mean of ℓ_t per number is, with
 * m = 1/(N D) Σ ‖μ_q − μ_θ‖²,
 *   ½ (log σ² − log β̃_t + (β̃_t + m)/σ² − 1),   whose derivative in log σ², ½ (1 − (β̃_t + m)/σ²),
 * vanishes at σ*² = β̃_t + m (a minimum: the function is convex in 1/σ²). At t = 1 the
 * Gaussian decoder ½ log(2π σ²) + (x₀ − μ_θ)²/(2σ²) gives σ*² = 1/(N D) Σ ‖x₀ − μ_θ‖². */
double optimal_reverse_variance(const real *x0, const real *mu_q, const real *mu_th,
                                const Schedule *s, int t, int N, int D) {
    double sq = 0.0;
    size_t n_all = (size_t)N * D;
    for (size_t i = 0; i < n_all; i++) {
        double diff = t >= 2 ? (double)mu_q[i] - mu_th[i] : (double)x0[i] - mu_th[i];
        sq += diff * diff;
    }
    return (t >= 2 ? s->sigma_q2[t] : 0.0) + sq / (double)n_all;
}

/* ========================================================================================
 * 7. The probability-flow ODE and the exact likelihood (Song et al. 2021; see ddpm.h for
 *    which ODE, its coordinates σ and x̄ = x/√ᾱ, and why DDIM with η = 0 is its Euler
 *    method) */

static const char *ODE_SOLVER_NAMES[ODE_COUNT] = { "euler", "heun" };
const char *ode_solver_name(OdeSolver m) { return ODE_SOLVER_NAMES[m]; }
int ode_solver_parse(const char *name, OdeSolver *out) {
    for (int k = 0; k < ODE_COUNT; k++)
        if (strcmp(name, ODE_SOLVER_NAMES[k]) == 0) { *out = (OdeSolver)k; return 0; }
    return -1;
}

/* σ_t = √((1 − ᾱ_t)/ᾱ_t) = √(1 − ᾱ_t) / √ᾱ_t */
double ode_sigma(const Schedule *s, int t) {
    return s->sqrt_one_minus_alpha_bar[t] / s->sqrt_alpha_bar[t];
}

/* ε̂ = a x_t + b out, read off each parametrization's conversion (section 3):
 *   ε:  ε̂ = out                                             a = 0,  b = 1
 *   x₀: ε̂ = (x_t − √ᾱ x̂₀)/√(1 − ᾱ)                        a = 1/√(1 − ᾱ),  b = −√ᾱ/√(1 − ᾱ)
 *   v:  x̂₀ = √ᾱ x_t − √(1 − ᾱ) v̂  ⇒  ε̂ = √(1 − ᾱ) x_t + √ᾱ v̂
 *   μ:  x̂₀ = (μ̂ − coef_xt x_t)/coef_x0, then as x₀ */
void eps_affine(double *a, double *b, Parametrization p, const Schedule *s, int t) {
    double sa = s->sqrt_alpha_bar[t], sb = s->sqrt_one_minus_alpha_bar[t];
    switch (p) {
    case PRED_EPS: *a = 0.0; *b = 1.0; return;
    case PRED_X0:  *a = 1.0 / sb; *b = -sa / sb; return;
    case PRED_V:   *a = sb; *b = sa; return;
    case PRED_MU: {
        double cx0 = s->coef_x0[t], cxt = s->coef_xt[t];
        *a = (1.0 + sa * cxt / cx0) / sb;
        *b = -sa / (cx0 * sb);
        return;
    }
    default: die("eps_affine: unknown parametrization %d", (int)p);
    }
}

/* buffers for one chunk of n ≤ max_batch examples, allocated once per call */
typedef struct {
    real *x_t, *pred, *eps_a, *eps_b, *dx;                  /* (n, D) */
    real *out, *dout;        /* (n, W): the network's output and a probe, W = D or 2 D */
    real *x0_hat, *x0_pred;  /* (n, D) x̂₀ at the step's start and at Heun's predictor */
    double *xbar_pred;                                      /* (n, D) Heun's predictor */
    double *div_a, *div_b, *var_a, *var_b;                  /* (n) */
    int *t;                                                 /* (n) */
} OdeWork;

static void ode_work_init(OdeWork *w, int n, int D, int W) {
    size_t nd = (size_t)n * D;
    w->x_t = xmalloc(nd * sizeof(real), "ODE x_t");
    w->pred = xmalloc(nd * sizeof(real), "ODE prediction");
    w->out = xmalloc((size_t)n * W * sizeof(real), "ODE output");
    w->eps_a = xmalloc(nd * sizeof(real), "ODE drift");
    w->eps_b = xmalloc(nd * sizeof(real), "ODE drift");
    w->x0_hat = xmalloc(nd * sizeof(real), "ODE x0_hat");
    w->x0_pred = xmalloc(nd * sizeof(real), "ODE x0_hat");
    w->dout = xmalloc((size_t)n * W * sizeof(real), "ODE probe");
    w->dx = xmalloc(nd * sizeof(real), "ODE vector-Jacobian product");
    w->xbar_pred = xmalloc(nd * sizeof(double), "ODE predictor");
    w->div_a = xmalloc((size_t)n * sizeof(double), "ODE divergence");
    w->div_b = xmalloc((size_t)n * sizeof(double), "ODE divergence");
    w->var_a = xmalloc((size_t)n * sizeof(double), "ODE divergence variance");
    w->var_b = xmalloc((size_t)n * sizeof(double), "ODE divergence variance");
    w->t = xmalloc((size_t)n * sizeof(int), "ODE t");
}

static void ode_work_free(OdeWork *w) {
    free(w->x_t); free(w->pred); free(w->out); free(w->eps_a); free(w->eps_b); free(w->x0_hat); free(w->x0_pred);
    free(w->dout); free(w->dx); free(w->xbar_pred);
    free(w->div_a); free(w->div_b); free(w->var_a); free(w->var_b); free(w->t);
}

/* The drift g(x̄, σ_t) = ε̂(x_t = √ᾱ_t x̄, t) into eps (n, D), x̂₀ into x0_hat. With div
 * (n) not NULL, also div_x̄ g = √ᾱ_t tr ∂ε̂/∂x_t = √ᾱ_t (a D + b tr ∂out/∂x_t) (eps_affine),
 * and into var (n) the variance of a Hutchinson estimate (0 for the exact trace).
 * At t = 0 the drift is exactly 0 (ddpm.h): no network call. */
static void ode_drift(real *eps, real *x0_hat, double *div, double *var, OdeWork *w,
                      Denoiser *net, const DdpmConfig *cfg, const Schedule *s,
                      const double *xbar, const int *y, int t, int n, const OdeConfig *oc,
                      Rng *rng) {
    int D = net->D;
    size_t nd = (size_t)n * D;
    if (t == 0) {
        memset(eps, 0, nd * sizeof(real));
        for (size_t i = 0; i < nd; i++) x0_hat[i] = (real)xbar[i];
        if (div) for (int k = 0; k < n; k++) div[k] = var[k] = 0.0;
        return;
    }
    double sa = s->sqrt_alpha_bar[t];
    for (size_t i = 0; i < nd; i++) w->x_t[i] = (real)(sa * xbar[i]);
    for (int k = 0; k < n; k++) w->t[k] = t;
    net->forward(net->self, w->out, w->x_t, w->t, y, n);
    const real *pred = w->out;
    if (net->learned_var) {                          /* the flow needs the prediction only */
        split_output(w->pred, NULL, w->out, n, D);
        pred = w->pred;
    }
    prediction_to_x0_eps(x0_hat, eps, pred, cfg->param, w->x_t, s, w->t, n, D);
    if (!div) return;
    if (!net->backward) die("the ODE likelihood needs the network's backward (its dL/dx)");
    double a, b;
    eps_affine(&a, &b, cfg->param, s, t);
    int W = D * (1 + net->learned_var);              /* probes leave a learned v at 0 */
    memset(w->dout, 0, (size_t)n * W * sizeof(real));
    if (oc->exact_trace) {
        /* tr J = Σ_d (e_dᵀ J)_d: one vector-Jacobian product per coordinate d */
        for (int k = 0; k < n; k++) div[k] = var[k] = 0.0;
        for (int d = 0; d < D; d++) {
            for (int k = 0; k < n; k++) {
                if (d > 0) w->dout[(size_t)k * W + d - 1] = 0;
                w->dout[(size_t)k * W + d] = 1;
            }
            net->backward(net->self, w->dx, w->dout, n);
            for (int k = 0; k < n; k++) div[k] += w->dx[(size_t)k * D + d];
        }
        for (int k = 0; k < n; k++) div[k] = sa * (a * D + b * div[k]);
        return;
    }
    /* Hutchinson: zᵀ J z with z_i = ±1 is unbiased for tr J; the mean of M probes, and
     * the variance of that mean, s²/M, from their spread */
    int M = oc->probes;
    if (M < 2) die("Hutchinson's estimate needs at least 2 probes for its standard error");
    for (int k = 0; k < n; k++) div[k] = var[k] = 0.0;   /* running sum and sum of squares */
    for (int m = 0; m < M; m++) {
        for (int k = 0; k < n; k++)
            for (int d = 0; d < D; d++)
                w->dout[(size_t)k * W + d] = (rng_u64(rng) >> 63) ? 1 : -1;
        net->backward(net->self, w->dx, w->dout, n);
        for (int k = 0; k < n; k++) {
            const real *z = w->dout + (size_t)k * W, *zJ = w->dx + (size_t)k * D;
            double est = 0.0;
            for (int d = 0; d < D; d++) est += (double)zJ[d] * z[d];
            div[k] += est;
            var[k] += est * est;
        }
    }
    for (int k = 0; k < n; k++) {
        double mean = div[k] / M, s2 = fmax(var[k] - M * mean * mean, 0.0) / (M - 1);
        div[k] = sa * (a * D + b * mean);
        var[k] = sa * sa * b * b * s2 / M;
    }
}

/* The weights (w_a, w_b) of the step's quadrature ∫_{σ_a}^{σ_b} div dσ ≈ w_a div_a + w_b div_b.
 * In σ the integrand of a Gaussian's flow is Σ_i σ/(λ_i + σ²), which falls like D/σ: the
 * trapezoid in σ is badly wrong over the long steps at large σ (cosine's last step runs from
 * σ ≈ 30 to 1000). In u = −log ᾱ = log(1 + σ²), the VP-SDE's own clock ∫ β, the integrand
 * div dσ/du, dσ/du = (1 + σ²)/(2σ), is Σ_i (1 + σ²)/(2 (λ_i + σ²)): smooth and bounded on
 * the whole range (D/2 for standardized data). A step with an end at σ = 0, where that
 * integrand's limit would need the network at t = 0, stays in σ: there div ≈ σ tr Σ_data⁻¹
 * is linear and vanishes at 0. Euler takes the left point, Heun the trapezoid. */
static void ode_div_weights(double *w_a, double *w_b, const Schedule *s, int t_a, int t_b,
                            OdeSolver solver) {
    double sig_a = ode_sigma(s, t_a), sig_b = ode_sigma(s, t_b);
    double wa, wb;
    if (t_a == 0 || t_b == 0) {
        wa = wb = sig_b - sig_a;
    } else {
        double du = log(s->alpha_bar[t_a]) - log(s->alpha_bar[t_b]);   /* u_b − u_a */
        wa = du * (1.0 + sig_a * sig_a) / (2.0 * sig_a);
        wb = du * (1.0 + sig_b * sig_b) / (2.0 * sig_b);
    }
    if (solver == ODE_EULER) { *w_a = wa; *w_b = 0.0; }
    else { *w_a = 0.5 * wa; *w_b = 0.5 * wb; }
}

/* Heun's corrector switches from the trapezoid in σ to the variation-of-constants form on
 * steps that span more than this factor in σ (cosine's last step spans 31.6; a linear
 * schedule's steps at T = 200 never more than 1.5) */
#define LONG_STEP 2.0

/* One solver step of x̄ (n, D) from grid point t_a to t_b (either direction), h = σ_b − σ_a.
 * With ell (n) not NULL, adds ∫ div_x̄ g dσ over the step (ode_div_weights) into ell and
 * its estimate's variance into ell_var. w->x0_hat is left holding x̂₀ at (x̄, t_a). */
static void ode_step(double *xbar, double *ell, double *ell_var, OdeWork *w, Denoiser *net,
                     const DdpmConfig *cfg, const Schedule *s, const int *y, int t_a, int t_b,
                     int n, const OdeConfig *oc, Rng *rng) {
    size_t nd = (size_t)n * net->D;
    double h = ode_sigma(s, t_b) - ode_sigma(s, t_a), wa, wb;
    ode_div_weights(&wa, &wb, s, t_a, t_b, oc->solver);
    ode_drift(w->eps_a, w->x0_hat, ell ? w->div_a : NULL, w->var_a, w, net, cfg, s, xbar, y,
              t_a, n, oc, rng);
    if (oc->solver == ODE_EULER) {
        for (size_t i = 0; i < nd; i++) xbar[i] += h * w->eps_a[i];        /* x̄ += h g */
        if (ell)
            for (int k = 0; k < n; k++) {
                ell[k] += wa * w->div_a[k];
                ell_var[k] += wa * wa * w->var_a[k];
            }
        return;
    }
    /* Heun: predictor x̄' = x̄ + h g(x̄, σ_a) (DDIM's step), then the corrector */
    for (size_t i = 0; i < nd; i++) w->xbar_pred[i] = xbar[i] + h * w->eps_a[i];
    ode_drift(w->eps_b, w->x0_pred, ell ? w->div_b : NULL, w->var_b, w, net, cfg, s,
              w->xbar_pred, y, t_b, n, oc, rng);
    double ratio = t_a && t_b ? ode_sigma(s, t_a) / ode_sigma(s, t_b) : 0.0;
    if (t_a == 0 || t_b == 0 || (ratio < LONG_STEP && ratio > 1.0 / LONG_STEP)) {
        /* the trapezoid in σ, x̄ += h/2 (g(x̄, σ_a) + g(x̄', σ_b)), with g(·, 0) = 0 */
        for (size_t i = 0; i < nd; i++) xbar[i] += 0.5 * h * ((double)w->eps_a[i] + w->eps_b[i]);
    } else {
        /* On a long step the trapezoid in σ is unstable: at large σ the drift
         * g = (x̄ − D)/σ, D = x̂₀ = x̄ − σ ε̂, makes the corrector see the predictor's error
         * times σ_a/σ_b (31.6 at cosine's clipped last step), and a trained network's
         * small error at t = T ruined its samples. So the corrector is taken in the
         * variation-of-constants form of the same ODE, d(x̄/σ)/dσ = −D/σ²:
         *   x̄_b = r x̄_a + σ_b ∫_{σ_b}^{σ_a} D/σ² dσ,  r = σ_b/σ_a,
         * exact with D constant (that is DDIM: r x̄_a + (1 − r) D_a) and, with
         *   w_a = σ_b (ln(σ_a/σ_b) − (1 − r)) / (σ_a − σ_b),  w_b = (1 − r) − w_a,
         * exact for D linear in σ: x̄_b = r x̄_a + w_a D_a + w_b D_b, D_b at the predictor. */
        double sig_a = ode_sigma(s, t_a), sig_b = ode_sigma(s, t_b), r = sig_b / sig_a;
        double w_a = sig_b * (log(sig_a / sig_b) - (1.0 - r)) / (sig_a - sig_b), w_b = 1.0 - r - w_a;
        for (size_t i = 0; i < nd; i++) {
            double d_a = xbar[i] - sig_a * w->eps_a[i];               /* D at (x̄, σ_a) */
            double d_b = w->xbar_pred[i] - sig_b * w->eps_b[i];       /* D at (x̄', σ_b) */
            xbar[i] = r * xbar[i] + w_a * d_a + w_b * d_b;
        }
    }
    if (ell)
        for (int k = 0; k < n; k++) {
            ell[k] += wa * w->div_a[k] + wb * w->div_b[k];
            ell_var[k] += wa * wa * w->var_a[k] + wb * wb * w->var_b[k];
        }
}

/* τ_i = round(i T / S), the grid shared with DDIM */
static int ode_tau(int i, int S, int T) { return (int)(((long)i * T + S / 2) / S); }

static void ode_check(const Denoiser *net, const Schedule *s, const OdeConfig *oc) {
    if (oc->S < 1 || oc->S > s->T) die("ODE steps %d must be in 1..T = %d", oc->S, s->T);
    if (oc->solver < 0 || oc->solver >= ODE_COUNT) die("unknown ODE solver %d", (int)oc->solver);
    if (net->D < 1) die("ODE: the network has D = %d", net->D);
}

/* x̄ = x/√ᾱ_t and back, for a chunk */
static void to_xbar(double *xbar, const real *x, double sqrt_abar, size_t nd) {
    for (size_t i = 0; i < nd; i++) xbar[i] = x[i] / sqrt_abar;
}
static void from_xbar(real *x, const double *xbar, double sqrt_abar, size_t nd) {
    for (size_t i = 0; i < nd; i++) x[i] = (real)(xbar[i] * sqrt_abar);
}

void ode_decode(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg, const Schedule *s,
                int N, const OdeConfig *oc, SampleTrace trace, void *trace_ctx) {
    ode_check(net, s, oc);
    int D = net->D, B = N < net->max_batch ? N : net->max_batch;
    size_t nd = (size_t)N * D;
    OdeWork w;
    ode_work_init(&w, B, D, D * (1 + net->learned_var));
    double *xbar = xmalloc(nd * sizeof(double), "ODE x-bar");
    /* step by step over the whole batch (in chunks of max_batch), so that a trace sees
     * every x_τ together */
    real *x0_all = trace ? xmalloc(nd * sizeof(real), "ODE x0_hat") : NULL;
    to_xbar(xbar, x, s->sqrt_alpha_bar[s->T], nd);
    if (trace) trace(trace_ctx, s->T, x, NULL, N, D);
    for (int i = oc->S; i >= 1; i--) {
        int t_a = ode_tau(i, oc->S, s->T), t_b = ode_tau(i - 1, oc->S, s->T);
        for (int start = 0; start < N; start += B) {
            int n = N - start < B ? N - start : B;
            ode_step(xbar + (size_t)start * D, NULL, NULL, &w, net, cfg, s,
                     y ? y + start : NULL, t_a, t_b, n, oc, NULL);
            if (trace) memcpy(x0_all + (size_t)start * D, w.x0_hat, (size_t)n * D * sizeof(real));
        }
        if (trace) {
            from_xbar(x, xbar, s->sqrt_alpha_bar[t_b], nd);
            trace(trace_ctx, t_b, x, x0_all, N, D);
        }
    }
    from_xbar(x, xbar, 1.0, nd);                                 /* σ_0 = 0: x̄ = x₀ */
    free(xbar); free(x0_all);
    ode_work_free(&w);
}

/* the encoding of one chunk, with the likelihood integral if ell is not NULL */
static void ode_encode_chunk(real *x, double *ell, double *ell_var, double *xbar, OdeWork *w,
                             Denoiser *net, const int *y, const DdpmConfig *cfg,
                             const Schedule *s, int n, const OdeConfig *oc, Rng *rng) {
    size_t nd = (size_t)n * net->D;
    to_xbar(xbar, x, 1.0, nd);                                    /* x̄ = x₀ at σ = 0 */
    for (int i = 1; i <= oc->S; i++) {
        int t_a = ode_tau(i - 1, oc->S, s->T), t_b = ode_tau(i, oc->S, s->T);
        ode_step(xbar, ell, ell_var, w, net, cfg, s, y, t_a, t_b, n, oc, rng);
    }
    from_xbar(x, xbar, s->sqrt_alpha_bar[s->T], nd);              /* x_T = √ᾱ_T x̄_T */
}

void ode_encode(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg, const Schedule *s,
                int N, const OdeConfig *oc) {
    ode_check(net, s, oc);
    int D = net->D, B = N < net->max_batch ? N : net->max_batch;
    OdeWork w;
    ode_work_init(&w, B, D, D * (1 + net->learned_var));
    double *xbar = xmalloc((size_t)B * D * sizeof(double), "ODE x-bar");
    for (int start = 0; start < N; start += B) {
        int n = N - start < B ? N - start : B;
        ode_encode_chunk(x + (size_t)start * D, NULL, NULL, xbar, &w, net, y ? y + start : NULL,
                         cfg, s, n, oc, NULL);
    }
    free(xbar);
    ode_work_free(&w);
}

void ode_sample_loop(Denoiser *net, real *x, const int *y, const DdpmConfig *cfg,
                     const Schedule *s, int N, const OdeConfig *oc, Rng *rng,
                     SampleTrace trace, void *trace_ctx) {
    rng_fill_normal(rng, x, (size_t)N * net->D);                  /* x_T ~ N(0, I) */
    ode_decode(net, x, y, cfg, s, N, oc, trace, trace_ctx);
}

void ode_log_likelihood(double *logp, double *std_err, real *x_T, Denoiser *net,
                        const real *x0, const int *y, int N, const DdpmConfig *cfg,
                        const Schedule *s, const OdeConfig *oc, Rng *rng) {
    ode_check(net, s, oc);
    if (!oc->exact_trace && !rng) die("ode_log_likelihood: Hutchinson's estimate needs an rng");
    int D = net->D, B = N < net->max_batch ? N : net->max_batch;
    OdeWork w;
    ode_work_init(&w, B, D, D * (1 + net->learned_var));
    double *xbar = xmalloc((size_t)B * D * sizeof(double), "ODE x-bar");
    real *xc = xmalloc((size_t)B * D * sizeof(real), "ODE x");
    double *var = xmalloc((size_t)B * sizeof(double), "ODE variance");
    const double log_2pi = log(2.0 * PI);
    for (int start = 0; start < N; start += B) {
        int n = N - start < B ? N - start : B;
        memcpy(xc, x0 + (size_t)start * D, (size_t)n * D * sizeof(real));
        double *ell = logp + start;
        for (int k = 0; k < n; k++) ell[k] = var[k] = 0.0;
        ode_encode_chunk(xc, ell, var, xbar, &w, net, y ? y + start : NULL, cfg, s, n, oc, rng);
        for (int k = 0; k < n; k++) {
            /* log N(x_T; 0, I) + (D/2) log ᾱ_T + ∫ div, x_T = √ᾱ_T x̄_T in double */
            double sq = 0.0, sa = s->sqrt_alpha_bar[s->T];
            for (int d = 0; d < D; d++) sq += pow(sa * xbar[(size_t)k * D + d], 2);
            ell[k] += -0.5 * sq - 0.5 * D * log_2pi + 0.5 * D * log(s->alpha_bar[s->T]);
            if (std_err) std_err[start + k] = sqrt(var[k]);
        }
        if (x_T) memcpy(x_T + (size_t)start * D, xc, (size_t)n * D * sizeof(real));
    }
    if (net->params) params_zero_grad(net->params);
    free(xbar); free(xc); free(var);
    ode_work_free(&w);
}

void ode_divergence(double *div, double *var, Denoiser *net, const double *xbar, const int *y,
                    int t, int N, const DdpmConfig *cfg, const Schedule *s,
                    const OdeConfig *oc, Rng *rng) {
    if (N > net->max_batch) die("ode_divergence: N %d > max_batch %d", N, net->max_batch);
    OdeWork w;
    ode_work_init(&w, N, net->D, net->D * (1 + net->learned_var));
    double *v = xmalloc((size_t)N * sizeof(double), "ODE variance");
    ode_drift(w.eps_a, w.x0_hat, div, v, &w, net, cfg, s, xbar, y, t, N, oc, rng);
    if (var) memcpy(var, v, (size_t)N * sizeof(double));
    if (net->params) params_zero_grad(net->params);
    free(v);
    ode_work_free(&w);
}
