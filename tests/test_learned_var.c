/* test_learned_var.c: the learned variance and L_hybrid of ddpm.c (Nichol & Dhariwal 2021).
 *   - log σ_t² at frac = 0 and 1 (v = −1, +1) is log β̃_t (clipped at t = 1) and log β_t
 *     exactly, and v = 0 their geometric mean
 *   - a network whose v is −1 (or +1) everywhere gives the same bound and the same ancestral
 *     samples as σ_t² = β̃_t (or β_t): the formulas against the fixed-variance closed forms
 *   - L_hybrid's gradient w.r.t. v against finite differences of L_hybrid (every t, the
 *     Gaussian and both discretized decoders); w.r.t. the prediction against finite
 *     differences of L_simple alone; the stop-gradient is visible: the prediction's gradient
 *     does not change by one bit when λ changes, though L_vlb does depend on the mean
 *   - the MLP with learned_var = 1 (2 D outputs) against finite differences
 *   - the best variance for t alone for fixed means (optimal_reverse_variance, notebook 08
 *     §5) against a golden-section minimization of the mean ℓ_t itself, and the mean ℓ_t's
 *     derivative in log σ² there by finite differences (t = 1, the decoder, and t ≥ 2)
 * Built with real = double.
 */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "gauss_oracle.h"
#include "../mlp.h"
#include "../unet.h"

#define LOG_TOL 1e-15        /* frac·a + (1 − frac)·b at frac ∈ {0, 1}: exact up to one rounding */
#define SAME_TOL 1e-11       /* the same bound / sample by exp(log σ²) instead of σ²: rounding */
#define MID_TOL 1e-12        /* relative to β_t: exp of the mean of two logs against √(β̃ β) */
#define DEPENDS_MIN 1e-9     /* a 1e-3 nudge of μ̂ moves L_vlb by far more than its rounding
                                (~1e-15): a smaller change would mean no dependence */
/* gradient checks use gradcheck.h's GRAD_TOL and GRAD_FLOOR (a gradient below 1e-4 of the
 * loss scale counts as zero; each check also counts the entries above it), but a wider
 * step: L_hybrid sums logs and ratios with σ² down to 1e-4, and its rounding noise (~10
 * ulps of the loss) over a central difference with h = 1e-5 reaches 1e-6 relative; with
 * h = 1e-4 the noise is 10x smaller and the truncation error h² f''' / 6 stays ~1e-8
 * (measured: h = 1e-4 and 3e-5 pass, 1e-5 fails by 1.4x, 1e-6 by 10x: noise, not a wrong
 * gradient) */
#define HYBRID_FD_H 1e-4
/* the optimal variance: a golden-section search on log σ² over a width of 6 narrows the
 * bracket by 0.618 per step, to 6 · 0.618^80 ≈ 1e-16 after 80 steps, so it stops at the
 * resolution of the mean ℓ_t in double near its flat minimum: ℓ(σ*² e^u) − ℓ(σ*²) ≈ c u²
 * with c ~ D/4, lost below 1e-16 · ℓ, i.e. |u| below about 1e-7; OPT_TOL allows 1e-6.
 * The derivative in log σ² by a central difference of step 1e-4: truncation h² ℓ⁽³⁾/6
 * ~ 1e-9 and rounding 1e-16 ℓ / h ~ 1e-11 against a slope of ~D/2 per unit of log σ² for
 * a formula that is off by β̃_t (the means are drawn with m ≈ β̃_t); OPT_SLOPE_TOL 1e-7. */
#define OPT_TOL 1e-6
#define OPT_FD_H 1e-4
#define OPT_SLOPE_TOL 1e-7

/* ---------------------------------------------------------------------------------------- */
static void test_log_variance_endpoints(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    int ok_lo = 1, ok_hi = 1, ok_mid = 1;
    for (int t = 1; t <= s.T; t++) {
        real v[3] = { -1, 1, 0 };
        double lv[3];
        learned_log_variance(lv, v, &s, t, 3);
        double bt = t > 1 ? s.sigma_q2[t] : s.sigma_q2[2];   /* β̃_1 = 0 is clipped to β̃_2 */
        if (fabs(exp(lv[0]) - bt) > LOG_TOL * 10 * bt || fabs(lv[0] - s.log_sigma_q2_clipped[t]) > 0) ok_lo = 0;
        if (fabs(exp(lv[1]) - s.beta[t]) > LOG_TOL * 10 * s.beta[t] || fabs(lv[1] - log(s.beta[t])) > 0) ok_hi = 0;
        if (fabs(exp(lv[2]) - sqrt(bt * s.beta[t])) > MID_TOL * s.beta[t]) ok_mid = 0;
    }
    CHECK(ok_lo, "v = -1 (frac 0): sigma_t^2 = beta_tilde_t, clipped to beta_tilde_2 at t = 1");
    CHECK(ok_hi, "v = +1 (frac 1): sigma_t^2 = beta_t");
    CHECK(ok_mid, "v = 0: sigma_t^2 = sqrt(beta_tilde_t beta_t), the geometric mean");
    schedule_free(&s);
}

/* The Gaussian oracle with a constant v appended: a "learned" variance that is fixed */
typedef struct { Oracle o; real v; } VarOracle;

static void var_oracle_forward(void *self, real *out, const real *x, const int *t, const int *y,
                               int N) {
    VarOracle *vo = self;
    real pred[2];
    for (int n = 0; n < N; n++) {
        oracle_forward(&vo->o, pred, x + 2 * n, t + n, y, 1);
        out[4 * n + 0] = pred[0];
        out[4 * n + 1] = pred[1];
        out[4 * n + 2] = out[4 * n + 3] = vo->v;
    }
}

static void test_learned_equals_fixed(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 30);
    enum { N = 40 };
    Rng r;
    rng_seed(&r, 41);
    real x0[N * 2];
    for (int i = 0; i < N * 2; i++) x0[i] = (real)(rng_int(&r, 256) / 127.5 - 1.0);   /* 8-bit values */
    for (int k = 0; k < 2; k++) {
        ReverseVar fixed = k == 0 ? VAR_BETA_TILDE : VAR_BETA;
        VarOracle vo = { { &s, PRED_EPS, { 0.1, -0.2 }, { { 0.3, 0.1 }, { 0.1, 0.2 } } }, k == 0 ? -1 : 1 };
        Denoiser base = oracle_denoiser(&vo.o);
        Denoiser net = { .self = &vo, .D = 2, .max_batch = 1 << 20, .learned_var = 1,
                         .forward = var_oracle_forward };
        DdpmConfig learned = { .param = PRED_EPS, .weighting = (LossWeighting)LOSS_HYBRID,
                                .var = (ReverseVar)VAR_LEARNED };
        DdpmConfig fix = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = fixed };
        for (int dec = 0; dec < DECODER_COUNT; dec++) {
            double terms_l[31], terms_f[31];
            Rng r1, r2;
            rng_seed(&r1, 5);
            rng_seed(&r2, 5);
            double bl = vlb_all_terms(terms_l, NULL, &net, x0, N, &learned, &s, (Decoder)dec, &r1);
            double bf = vlb_all_terms(terms_f, NULL, &base, x0, N, &fix, &s, (Decoder)dec, &r2);
            CHECK(fabs(bl - bf) <= SAME_TOL * fabs(bf), "bound with v = %+d equals sigma^2 = %s (decoder %d): %.15g vs %.15g",
                  k == 0 ? -1 : 1, reverse_var_name(fixed), dec, bl, bf);
        }
        real a[N * 2], b[N * 2];
        Rng r1, r2;
        rng_seed(&r1, 6);
        rng_seed(&r2, 6);
        p_sample_loop(&net, a, NULL, &learned, &s, N, 0, &r1, NULL, NULL);
        p_sample_loop(&base, b, NULL, &fix, &s, N, 0, &r2, NULL, NULL);
        double worst = 0;
        for (int i = 0; i < N * 2; i++) worst = fmax(worst, fabs(a[i] - b[i]));
        CHECK(worst <= SAME_TOL, "ancestral samples with v = %+d equal sigma^2 = %s: %.3g",
              k == 0 ? -1 : 1, reverse_var_name(fixed), worst);
    }
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------- *
 * L_hybrid as a function of the network output, for gradient checks */
typedef struct {
    real *out, *target, *x0, *x_t;
    int *t, N, D;
    DdpmConfig cfg;
    const Schedule *s;
    int simple_only;   /* 1: L_simple alone (λ = 0) */
} HybridCtx;

static double hybrid_loss_of(void *p) {
    HybridCtx *c = p;
    DdpmConfig cfg = c->cfg;
    if (c->simple_only) cfg.hybrid_lambda = 0.0;
    return ddpm_hybrid_loss(NULL, NULL, c->out, c->target, c->x0, c->x_t, &cfg, c->s, c->t, c->N, c->D);
}

/* λ L_vlb alone: L_hybrid − L_simple */
static double vlb_part_of(HybridCtx *c) {
    double hybrid = hybrid_loss_of(c);
    c->simple_only = 1;
    double simple = hybrid_loss_of(c);
    c->simple_only = 0;
    return hybrid - simple;
}

/* checks dL/dout[i] for i in the prediction (against L_simple) or v (against L_hybrid),
 * one example at a time (N = 1), so that each is measured against its own loss scale */
static double check_part(HybridCtx *all, int part_v, int *above_floor) {
    double worst = 0;
    int D = all->D;
    for (int n = 0; n < all->N; n++) {
        HybridCtx c = *all;
        c.out = all->out + (size_t)n * 2 * D;
        c.target = all->target + (size_t)n * D;
        c.x0 = all->x0 + (size_t)n * D;
        c.x_t = all->x_t + (size_t)n * D;
        c.t = all->t + n;
        c.N = 1;
        real dout[2 * 16];
        ddpm_hybrid_loss(dout, NULL, c.out, c.target, c.x0, c.x_t, &c.cfg, c.s, c.t, 1, D);
        double scale = fmax(1.0, fabs(hybrid_loss_of(&c)));
        for (int d = 0; d < D; d++) {
            size_t i = (size_t)part_v * D + d;
            real saved = c.out[i];
            c.simple_only = !part_v;
            c.out[i] = saved + HYBRID_FD_H; double lp = hybrid_loss_of(&c);
            c.out[i] = saved - HYBRID_FD_H; double lm = hybrid_loss_of(&c);
            c.out[i] = saved;
            c.simple_only = 0;
            double fd = (lp - lm) / (2 * HYBRID_FD_H);
            double err = fabs(fd - dout[i]) / fmax(fmax(fabs(fd), fabs(dout[i])), GRAD_FLOOR * scale);
            worst = fmax(worst, err);
            if (fabs(fd) > GRAD_FLOOR * scale) (*above_floor)++;
        }
    }
    return worst;
}

static void test_hybrid_gradients(void) {
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 100);
    enum { N = 6, D = 3 };
    Rng r;
    rng_seed(&r, 42);
    real out[N * 2 * D], target[N * D], x0[N * D], x_t[N * D], eps[N * D];
    real dout[N * 2 * D], dout0[N * 2 * D];
    int t[N] = { 1, 1, 2, 17, 64, 100 };
    for (int p = 0; p < PRED_COUNT; p++)
        for (int dec = 0; dec < DECODER_COUNT; dec++) {
            /* images-like data for the discretized decoders, including the edge values ±1 */
            for (int i = 0; i < N * D; i++)
                x0[i] = dec == DECODER_GAUSSIAN ? (real)rng_normal(&r)
                                                : (real)((i % 5 == 0 ? 0 : i % 5 == 1 ? 255 : rng_int(&r, 256)) / 127.5 - 1.0);
            rng_fill_normal(&r, eps, N * D);
            q_sample(x_t, x0, eps, &s, t, N, D);
            prediction_target(target, (Parametrization)p, x0, eps, x_t, &s, t, N, D);
            /* the prediction near its target (so μ_θ is near μ_q and the decoder's bins are
             * not all clamped), v anywhere in [−1.5, 1.5] */
            for (int n = 0; n < N; n++)
                for (int d = 0; d < D; d++) {
                    out[n * 2 * D + d] = target[n * D + d] + (real)(0.05 * rng_normal(&r));
                    out[n * 2 * D + D + d] = (real)(3 * rng_uniform(&r) - 1.5);
                }
            HybridCtx c = { out, target, x0, x_t, t, N, D,
                            { .param = (Parametrization)p, .weighting = (LossWeighting)LOSS_HYBRID,
                              .var = (ReverseVar)VAR_LEARNED, .hybrid_lambda = 0.3,
                              .decoder = (Decoder)dec },
                            &s, 0 };
            /* λ = 0.3, not 0.001, so that the v gradient is far above rounding */
            ddpm_hybrid_loss(dout, NULL, out, target, x0, x_t, &c.cfg, &s, t, N, D);
            int nv = 0, np = 0;
            double wv = check_part(&c, 1, &nv), wp = check_part(&c, 0, &np);
            CHECK(nv >= N * D / 2 && np >= N * D / 2, "most gradients are above the floor (%d, %d of %d)",
                  nv, np, N * D);
            CHECK(wv <= GRAD_TOL, "L_hybrid: dL/dv vs finite differences (%s, decoder %d): %.3g",
                  parametrization_name((Parametrization)p), dec, wv);
            CHECK(wp <= GRAD_TOL, "L_hybrid: dL/dprediction vs finite differences of L_simple (%s, decoder %d): %.3g",
                  parametrization_name((Parametrization)p), dec, wp);
            /* the stop-gradient: with λ = 0 the prediction's gradient is bit-identical, and
             * v's is exactly 0; yet L_vlb does depend on the mean (its own finite difference
             * in a prediction number is not 0), so the zero is the stop-gradient's doing */
            DdpmConfig c0 = c.cfg;
            c0.hybrid_lambda = 0.0;
            ddpm_hybrid_loss(dout0, NULL, out, target, x0, x_t, &c0, &s, t, N, D);
            int same = 1, zero_v = 1;
            for (int n = 0; n < N; n++)
                for (int d = 0; d < D; d++) {
                    if (dout0[n * 2 * D + d] != dout[n * 2 * D + d]) same = 0;
                    if (dout0[n * 2 * D + D + d] != 0) zero_v = 0;
                }
            CHECK(same, "stop-gradient: the prediction's gradient does not depend on lambda (%s, decoder %d)",
                  parametrization_name((Parametrization)p), dec);
            CHECK(zero_v, "lambda = 0: v gets exactly zero gradient");
            real saved = out[2 * 2 * D];   /* example 2 (t = 2): a KL term that sees μ_θ */
            out[2 * 2 * D] = saved + 1e-3;
            double lp = vlb_part_of(&c);
            out[2 * 2 * D] = saved;
            double l0 = vlb_part_of(&c);
            CHECK(fabs(lp - l0) > DEPENDS_MIN, "L_vlb depends on the mean (%.3g), so the zero gradient is the stop-gradient", lp - l0);
        }
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------- *
 * L_hybrid's value and its batch gradient (mutation testing found both unpinned: the
 * gradient checks above run one example at a time, and compare L_hybrid with itself).
 *   - value: with v = −1 (or +1) everywhere, σ_t² is β̃_t (or β_t) and ℓ_t is the fixed-
 *     variance term of vlb_terms, so per example n
 *       ℓ_n = 1/D ‖target − prediction‖² + λ T ℓ_t / (D ln 2)   exactly (up to rounding);
 *   - batch: for N > 1 the gradient is that of the mean over the batch (the 1/N of both
 *     parts), checked by central differences of the whole batch's loss. */
static void test_hybrid_value_and_batch(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 30);
    enum { N = 30, D = 2 };
    const double lambda = 0.37;                  /* not 1: a lost λ would show */
    Rng r;
    rng_seed(&r, 47);
    real x0[N * D], eps[N * D], x_t[N * D], out[N * 2 * D], target[N * D], pred[N * D];
    int t[N];
    for (int n = 0; n < N; n++) t[n] = 1 + n % s.T;   /* every t, t = 1 included */
    for (int i = 0; i < N * D; i++) x0[i] = (real)(rng_int(&r, 256) / 127.5 - 1.0);
    rng_fill_normal(&r, eps, N * D);
    q_sample(x_t, x0, eps, &s, t, N, D);
    prediction_target(target, PRED_EPS, x0, eps, x_t, &s, t, N, D);
    for (int k = 0; k < 2; k++) {
        VarOracle vo = { { &s, PRED_EPS, { 0.1, -0.2 }, { { 0.3, 0.1 }, { 0.1, 0.2 } } }, k == 0 ? -1 : 1 };
        Denoiser base = oracle_denoiser(&vo.o);
        var_oracle_forward(&vo, out, x_t, t, NULL, N);
        split_output(pred, NULL, out, N, D);
        DdpmConfig fix = { .param = PRED_EPS, .weighting = LOSS_SIMPLE,
                           .var = k == 0 ? VAR_BETA_TILDE : VAR_BETA };
        for (int dec = 0; dec < DECODER_COUNT; dec++) {
            DdpmConfig hyb = { .param = PRED_EPS, .weighting = (LossWeighting)LOSS_HYBRID,
                               .var = (ReverseVar)VAR_LEARNED, .hybrid_lambda = lambda,
                               .decoder = (Decoder)dec };
            double per[N], ell[N], worst = 0, mean = 0;
            double L = ddpm_hybrid_loss(NULL, per, out, target, x0, x_t, &hyb, &s, t, N, D);
            vlb_terms(ell, &base, x0, eps, t, N, &fix, &s, (Decoder)dec);
            for (int n = 0; n < N; n++) {
                double sq = 0;
                for (int d = 0; d < D; d++) sq += pow(pred[n * D + d] - target[n * D + d], 2);
                double want = sq / D + lambda * s.T * ell[n] / (D * log(2.0));
                worst = fmax(worst, fabs(per[n] - want) / fmax(fabs(want), 1.0));
                mean += per[n] / N;
            }
            CHECK(worst <= SAME_TOL, "L_hybrid with v = %+d: 1/D |target - pred|^2 + lambda T l_t / (D ln 2), l_t of sigma^2 = %s (decoder %d): %.3g",
                  k == 0 ? -1 : 1, reverse_var_name(fix.var), dec, worst);
            CHECK(fabs(L - mean) <= SAME_TOL * fmax(fabs(mean), 1.0), "L_hybrid is the mean of its per-example terms (%.15g vs %.15g)", L, mean);
        }
    }
    /* the batch gradient, v anywhere in [−1.5, 1.5], a prediction near its target */
    enum { NB = 4 };
    int tb[NB] = { 1, 2, 11, 30 };
    real dout[NB * 2 * D];
    for (int n = 0; n < NB; n++)
        for (int d = 0; d < D; d++) {
            out[n * 2 * D + d] = target[(tb[n] - 1) * D + d] + (real)(0.05 * rng_normal(&r));
            out[n * 2 * D + D + d] = (real)(3 * rng_uniform(&r) - 1.5);
        }
    real xb0[NB * D], xbt[NB * D], tgt[NB * D];
    for (int n = 0; n < NB; n++)
        for (int d = 0; d < D; d++) {
            xb0[n * D + d] = x0[(tb[n] - 1) * D + d];
            xbt[n * D + d] = x_t[(tb[n] - 1) * D + d];
            tgt[n * D + d] = target[(tb[n] - 1) * D + d];
        }
    for (int dec = 0; dec < DECODER_COUNT; dec++) {
        HybridCtx c = { out, tgt, xb0, xbt, tb, NB, D,
                        { .param = PRED_EPS, .weighting = (LossWeighting)LOSS_HYBRID,
                          .var = (ReverseVar)VAR_LEARNED, .hybrid_lambda = 0.3, .decoder = (Decoder)dec },
                        &s, 0 };
        ddpm_hybrid_loss(dout, NULL, out, tgt, xb0, xbt, &c.cfg, &s, tb, NB, D);
        double floor = GRAD_FLOOR * fmax(1.0, fabs(hybrid_loss_of(&c))), worst = 0;
        for (int i = 0; i < NB * 2 * D; i++) {
            real saved = out[i];
            out[i] = saved + HYBRID_FD_H; double lp = hybrid_loss_of(&c);
            out[i] = saved - HYBRID_FD_H; double lm = hybrid_loss_of(&c);
            out[i] = saved;
            /* the prediction's part: against L_simple alone (the stop-gradient) */
            if (i % (2 * D) < D) {
                c.simple_only = 1;
                out[i] = saved + HYBRID_FD_H; lp = hybrid_loss_of(&c);
                out[i] = saved - HYBRID_FD_H; lm = hybrid_loss_of(&c);
                out[i] = saved;
                c.simple_only = 0;
            }
            double fd = (lp - lm) / (2 * HYBRID_FD_H);
            worst = fmax(worst, fabs(fd - dout[i]) / fmax(fmax(fabs(fd), fabs(dout[i])), floor));
        }
        CHECK(worst <= GRAD_TOL, "L_hybrid over a batch of %d: dL/dout vs finite differences of the batch mean (decoder %d): %.3g",
              NB, dec, worst);
    }
    schedule_free(&s);
}

/* ---------------------------------------------------------------------------------------- */
typedef struct { Mlp *m; real *x, *out, *dout; int *t; int N, W; } MlpCtx;

static double mlp_fake_loss(void *p) {   /* L = Σ out · dout over all 2 D outputs */
    MlpCtx *c = p;
    mlp_forward(c->m, c->out, c->x, c->t, NULL, c->N);
    double L = 0;
    for (int i = 0; i < c->N * c->W; i++) L += c->out[i] * c->dout[i];
    return L;
}

static void test_mlp_two_outputs(void) {
    enum { N = 3, D = 2, W = 4 };
    Rng r;
    rng_seed(&r, 43);
    MlpConfig mc = { .D = D, .emb_dim = 8, .hidden = 16, .layers = 2, .max_batch = N, .learned_var = 1 };
    Mlp m;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&m, &mc, &ps, &r);
    real x[N * D], out[N * W], dout[N * W], dx[N * D];
    int t[N] = { 1, 7, 50 };
    rng_fill_normal(&r, x, N * D);
    rng_fill_normal(&r, dout, N * W);
    MlpCtx c = { &m, x, out, dout, t, N, W };
    mlp_fake_loss(&c);
    params_zero_grad(&ps);
    mlp_backward(&m, dx, dout, N);
    for (int i = 0; i < ps.count; i++) {
        const Param *p = &ps.p[i];
        gradcheck(p->name, ps.w + p->offset, ps.g + p->offset, p->n, mlp_fake_loss, &c, 20);
    }
    gradcheck("mlp (2 D outputs) input x", x, dx, N * D, mlp_fake_loss, &c, 0);
    mlp_free(&m);
    params_free(&ps);
}

/* the U-Net with learned_var = 1: 2 C output channels, its backward takes them */
typedef struct { Unet *u; real *x, *out, *dout; int *t; int N; size_t n_out; } UnetCtx;

static double unet_fake_loss(void *p) {
    UnetCtx *c = p;
    unet_forward(c->u, c->out, c->x, c->t, NULL, c->N);
    double L = 0;
    for (size_t i = 0; i < c->n_out; i++) L += c->out[i] * c->dout[i];
    return L;
}

static void test_unet_two_outputs(void) {
    UnetConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.C = 1; cfg.H = 4; cfg.W = 4;
    cfg.base = 4; cfg.levels = 1; cfg.mult[0] = 1;
    cfg.num_res_blocks = 1;
    cfg.groups = 2;
    cfg.max_batch = 2;
    cfg.learned_var = 1;
    enum { N = 2 };
    Rng r;
    rng_seed(&r, 44);
    Unet u;
    ParamSet ps;
    params_init(&ps);
    CHECK(unet_init(&u, &cfg, &ps, &r) == 0, "a U-Net with learned_var builds");
    Denoiser net = unet_denoiser(&u);
    const Param *out_w = params_find(&ps, "out.conv.w");
    CHECK(net.learned_var == 1 && out_w && out_w->shape[0] == 2, "learned_var: conv_out has 2 C = 2 output channels");
    size_t n_in = (size_t)N * 16, n_out = 2 * n_in;
    real x[N * 16], out[2 * N * 16], dout[2 * N * 16], dx[N * 16];
    int t[N] = { 1, 9 };
    rng_fill_normal(&r, x, n_in);
    rng_fill_normal(&r, dout, n_out);
    UnetCtx c = { &u, x, out, dout, t, N, n_out };
    unet_fake_loss(&c);
    params_zero_grad(&ps);
    unet_backward(&u, dx, dout, N);
    gradcheck("unet (2 C outputs) conv_out.w", ps.w + out_w->offset, ps.g + out_w->offset, out_w->n,
              unet_fake_loss, &c, 20);
    gradcheck("unet (2 C outputs) input x", x, dx, n_in, unet_fake_loss, &c, 0);
    unet_free(&u);
    params_free(&ps);
}

/* ---------------------------------------------------------------------------------------- */
typedef struct { const real *x0, *mu_q, *mu_th; const Schedule *s; int t, N, D; } OptCtx;

/* the mean over the N examples of ℓ_t with one σ² = exp(log_var) for every number */
static double mean_ell(const OptCtx *c, double log_var) {
    double lv[8], sum = 0.0;
    for (int d = 0; d < c->D; d++) lv[d] = log_var;
    for (int n = 0; n < c->N; n++) {
        size_t row = (size_t)n * c->D;
        sum += vlb_term_learned(NULL, c->x0 + row, c->mu_q + row, c->mu_th + row, lv, c->s, c->t,
                                c->D, DECODER_GAUSSIAN);
    }
    return sum / c->N;
}

static void test_optimal_variance(void) {
    enum { N = 400, D = 3 };
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    Rng r;
    rng_seed(&r, 12);
    real x0[N * D], mu_q[N * D], mu_th[N * D];
    const int ts[4] = { 1, 2, 25, 50 };
    int ok_min = 1, ok_slope = 1, ok_fixed = 1;
    for (int k = 0; k < 4; k++) {
        int t = ts[k];
        /* means off by about √β̃_t (t ≥ 2) or √β_1 (t = 1) per number, so m is comparable to
         * β̃_t and a formula without β̃_t (or with it at t = 1) is far from the minimum */
        double scale = sqrt(t >= 2 ? s.sigma_q2[t] : s.beta[1]);
        for (int i = 0; i < N * D; i++) {
            x0[i] = (real)rng_normal(&r);
            mu_q[i] = (real)rng_normal(&r);
            mu_th[i] = (real)((t >= 2 ? mu_q[i] : x0[i]) + scale * (0.3 + rng_normal(&r)));
        }
        OptCtx c = { x0, mu_q, mu_th, &s, t, N, D };
        double best = optimal_reverse_variance(x0, mu_q, mu_th, &s, t, N, D);
        /* golden-section search for the minimum of mean_ell over log σ² */
        double lo = log(best) - 3.0, hi = log(best) + 3.0, g = 0.5 * (sqrt(5.0) - 1.0);
        double a = hi - g * (hi - lo), b = lo + g * (hi - lo), fa = mean_ell(&c, a), fb = mean_ell(&c, b);
        for (int it = 0; it < 80; it++) {
            if (fa < fb) { hi = b; b = a; fb = fa; a = hi - g * (hi - lo); fa = mean_ell(&c, a); }
            else         { lo = a; a = b; fa = fb; b = lo + g * (hi - lo); fb = mean_ell(&c, b); }
        }
        double found = 0.5 * (lo + hi);
        if (fabs(found - log(best)) > OPT_TOL) {
            ok_min = 0;
            fprintf(stderr, "  t = %d: log sigma*^2 %.9f, golden section %.9f\n", t, log(best), found);
        }
        double slope = (mean_ell(&c, log(best) + OPT_FD_H) - mean_ell(&c, log(best) - OPT_FD_H))
                       / (2.0 * OPT_FD_H);
        if (fabs(slope) > OPT_SLOPE_TOL * D) {
            ok_slope = 0;
            fprintf(stderr, "  t = %d: d mean_ell / d log sigma^2 = %.3g at sigma*^2\n", t, slope);
        }
        double f_best = mean_ell(&c, log(best));
        if (!(f_best <= mean_ell(&c, log(reverse_variance_clipped(&s, VAR_BETA_TILDE, t))) &&
              f_best <= mean_ell(&c, log(reverse_variance_clipped(&s, VAR_BETA, t)))))
            ok_fixed = 0;
    }
    CHECK(ok_min, "sigma*^2 = beta_tilde_t + mean (mu_q - mu_theta)^2 (t = 1: mean (x0 - mu_theta)^2) "
                  "is where a golden-section search finds the minimum of the mean l_t");
    CHECK(ok_slope, "the mean l_t is flat in log sigma^2 at sigma*^2 (central difference)");
    CHECK(ok_fixed, "the mean l_t at sigma*^2 is at most the one with beta_tilde_t or beta_t");
    schedule_free(&s);
}

int main(void) {
    test_unet_two_outputs();
    test_log_variance_endpoints();
    test_learned_equals_fixed();
    test_hybrid_gradients();
    test_hybrid_value_and_batch();
    test_mlp_two_outputs();
    test_optimal_variance();
    return test_summary("test_learned_var");
}
