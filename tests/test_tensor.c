/* test_tensor.c: the random generator, every layer's backward by finite differences,
 * the timestep embedding against hand-computed values, Adam and EMA against hand-worked
 * steps. Built with real = double (see tests/gradcheck.h for the tolerances). */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "../tensor.h"

/* statistical checks: a sample statistic must lie within Z_BOUND standard errors of its
 * expectation; for a correct generator that fails with probability ~6e-7 per check, and
 * the seeds are fixed, so a pass is reproducible */
#define Z_BOUND 5.0
#define EXACT_TOL 1e-12   /* closed-form arithmetic in double: only rounding error */
#define ADAM_TOL 1e-10    /* Adam's second step by hand: √v̂ of v̂ ~ 1e-3 and a division by
                             √v̂ + 1e-8, a few roundings grown by 1/√v̂ */

/* ---------------------------------------------------------------------------------------
 * Rng */
static void test_rng(void) {
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_u64(&a) == rng_u64(&b);
    CHECK(same, "same seed must give the same stream");
    rng_seed(&b, 43);
    CHECK(rng_u64(&a) != rng_u64(&b), "different seeds should differ");

    /* a copied state continues identically (what a checkpoint relies on) */
    rng_seed(&a, 7);
    (void)rng_normal(&a);               /* leaves a spare normal waiting */
    Rng copy = a;
    int same_normals = 1;
    for (int i = 0; i < 101; i++) same_normals &= rng_normal(&a) == rng_normal(&copy);
    CHECK(same_normals, "a copied Rng must continue bit for bit, including the spare normal");

    /* uniform: mean 1/2, variance 1/12 */
    const int n = 200000;
    rng_seed(&a, 1);
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&a);
        sum += u; sum2 += u * u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(lo >= 0.0 && hi < 1.0, "uniform out of [0, 1): %g %g", lo, hi);
    CHECK_CLOSE(mean, 0.5, Z_BOUND * sqrt(1.0 / 12 / n), "uniform mean");
    /* Var of u² − ... : the sample variance of U(0,1) has SE √((1/80 − 1/144)/n) */
    CHECK_CLOSE(var, 1.0 / 12, Z_BOUND * sqrt((1.0 / 80 - 1.0 / 144) / n), "uniform variance");

    /* normal: mean 0, variance 1 (SE √(2/n)), fourth moment 3 (SE √(96/n)) */
    double s1 = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double z = rng_normal(&a);
        s1 += z; s2 += z * z; s4 += z * z * z * z;
    }
    CHECK_CLOSE(s1 / n, 0.0, Z_BOUND * sqrt(1.0 / n), "normal mean");
    CHECK_CLOSE(s2 / n, 1.0, Z_BOUND * sqrt(2.0 / n), "normal variance");
    CHECK_CLOSE(s4 / n, 3.0, Z_BOUND * sqrt(96.0 / n), "normal fourth moment");

    /* rng_int: each of 7 values has share 1/7 with SE √(p(1−p)/n) */
    int counts[7] = { 0 };
    for (int i = 0; i < n; i++) counts[rng_int(&a, 7)]++;
    int in_range = 1;
    for (int k = 0; k < 7; k++)
        in_range &= fabs(counts[k] / (double)n - 1.0 / 7) <= Z_BOUND * sqrt((1.0 / 7) * (6.0 / 7) / n);
    CHECK(in_range, "rng_int(7) shares not uniform");
}

/* ---------------------------------------------------------------------------------------
 * Layers: each checked with the fake loss L = Σ out · dout for a fixed random dout. */

typedef struct {
    int N, C_in, C_out;
    real *in, *w, *b, *out, *dout;
} LinearCtx;

static double linear_loss(void *p) {
    LinearCtx *c = p;
    linear_forward(c->out, c->in, c->w, c->b, c->N, c->C_in, c->C_out);
    double L = 0;
    for (int i = 0; i < c->N * c->C_out; i++) L += c->out[i] * c->dout[i];
    return L;
}

static real *random_buffer(size_t n, Rng *r) {
    real *x = xmalloc(n * sizeof(real), "test buffer");
    rng_fill_normal(r, x, n);
    return x;
}

/* one shape smaller than matmul's register tile, one just larger in every dimension */
static void test_linear_shape(int N, int C_in, int C_out, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    size_t n_in = (size_t)N * C_in, n_w = (size_t)C_in * C_out, n_out = (size_t)N * C_out;
    LinearCtx c = { N, C_in, C_out, NULL, NULL, NULL, NULL, NULL };
    c.in = random_buffer(n_in, &r); c.w = random_buffer(n_w, &r); c.b = random_buffer(C_out, &r);
    c.out = random_buffer(n_out, &r); c.dout = random_buffer(n_out, &r);
    real *din = xcalloc(n_in, sizeof(real), "din"), *dw = xcalloc(n_w, sizeof(real), "dw");
    real *db = xcalloc(C_out, sizeof(real), "db"), *dw2 = xmalloc(n_w * sizeof(real), "dw2");
    linear_loss(&c);
    linear_backward(din, dw, db, c.dout, c.in, c.w, N, C_in, C_out);
    gradcheck("linear.in", c.in, din, n_in, linear_loss, &c, 0);
    gradcheck("linear.w", c.w, dw, n_w, linear_loss, &c, 0);
    gradcheck("linear.b", c.b, db, C_out, linear_loss, &c, 0);

    /* backward accumulates: a second call doubles every gradient */
    memcpy(dw2, dw, n_w * sizeof(real));
    linear_backward(din, dw, db, c.dout, c.in, c.w, N, C_in, C_out);
    int doubled = 1;
    for (size_t i = 0; i < n_w; i++) doubled &= fabs(dw[i] - 2 * dw2[i]) <= EXACT_TOL * (1 + fabs(dw[i]));
    CHECK(doubled, "linear_backward must accumulate (+=) into dw");
    free(c.in); free(c.w); free(c.b); free(c.out); free(c.dout);
    free(din); free(dw); free(db); free(dw2);
}

static void test_linear(void) {
    test_linear_shape(3, 5, 4, 3);
    test_linear_shape(7, 37, 33, 5);     /* > MATMUL_MR rows, > MATMUL_NR columns */
}

/* ---------------------------------------------------------------------------------------
 * fast_expf against libm's exp in double (exact enough to be the reference: its error is
 * ~1e-16 relative, 1e-9 of a float ulp) on every EXP_STRIDE-th float of the whole range,
 * bit pattern by bit pattern (positive and negative, normal and subnormal, 0, ±inf), and
 * on the edges: the overflow and underflow thresholds, tiny arguments, NaN.
 * EXP_MAX_ULP: tensor.c states at most 1 ulp (Taylor remainder 0.06 ulp plus the rounding
 * of about eight fused operations and of the scaling); one ulp is the bound we promise. */
#define EXP_STRIDE 101u    /* 42.5 million floats of the 2^32, about half a second */
#define EXP_MAX_ULP 1.0

/* the error of y in ulps of the float nearest to the exact e (spacing 2^−149 at 0) */
static double ulp_error(float y, double e) {
    float nearest = (float)e;
    if (isinf(nearest)) return isinf(y) && y > 0 ? 0.0 : INFINITY;
    float a = fabsf(nearest);
    double spacing = (double)nextafterf(a, INFINITY) - (double)a;
    if (a > 0 && a == FLT_MAX) spacing = (double)a - (double)nextafterf(a, 0);
    return fabs((double)y - e) / spacing;
}

static void test_fast_expf(void) {
    double worst = 0.0;
    float worst_x = 0;
    for (uint64_t bits = 0; bits <= 0xFFFFFFFFu; bits += EXP_STRIDE) {
        uint32_t b32 = (uint32_t)bits;
        float x;
        memcpy(&x, &b32, sizeof x);
        if (isnan(x)) continue;
        double err = ulp_error(fast_expf(x), exp((double)x));
        if (err > worst) { worst = err; worst_x = x; }
    }
    static const float edges[] = { 0.0f, -0.0f, 1.0f, -1.0f, 1e-8f, -1e-8f, 0.34657359f,
                                   -0.34657359f, 88.7228f, 88.72283f, 88.7229f, 89.0f, 100.0f,
                                   -87.33654f, -87.34f, -100.0f, -103.9f, -103.97f, -103.98f,
                                   -104.0f, -200.0f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        double err = ulp_error(fast_expf(edges[i]), exp((double)edges[i]));
        if (err > worst) { worst = err; worst_x = edges[i]; }
    }
    printf("fast_expf: max error %.3f ulp over %u floats (at x = %.9g)\n", worst,
           (unsigned)(0xFFFFFFFFu / EXP_STRIDE) + 1, (double)worst_x);
    CHECK(worst <= EXP_MAX_ULP, "fast_expf: %.3f ulp at x = %.9g, more than %.1f", worst,
          (double)worst_x, EXP_MAX_ULP);
    CHECK(fast_expf(0.0f) == 1.0f && fast_expf(INFINITY) == INFINITY &&
          fast_expf(-INFINITY) == 0.0f, "fast_expf(0) = 1, exp(inf) = inf, exp(-inf) = 0");
    CHECK(isnan(fast_expf(NAN)), "fast_expf(NaN) must be NaN");
}

typedef struct { size_t n; real *in, *out, *dout; } SiluCtx;

static double silu_loss(void *p) {
    SiluCtx *c = p;
    silu_forward(c->out, c->in, c->n);
    double L = 0;
    for (size_t i = 0; i < c->n; i++) L += c->out[i] * c->dout[i];
    return L;
}

static void test_silu(void) {
    Rng r;
    rng_seed(&r, 4);
    SiluCtx c = { 16, random_buffer(16, &r), random_buffer(16, &r), random_buffer(16, &r) };
    for (int i = 0; i < 16; i++) c.in[i] *= 3;  /* cover the curved part and both tails */
    real din[16] = { 0 };
    silu_loss(&c);
    silu_backward(din, c.dout, c.in, 16);
    gradcheck("silu.in", c.in, din, 16, silu_loss, &c, 0);
    /* closed form: SiLU(0) = 0, SiLU(1) = 1/(1 + e^{−1}) */
    real x[2] = { 0, 1 }, y[2];
    silu_forward(y, x, 2);
    CHECK_CLOSE(y[0], 0.0, EXACT_TOL, "SiLU(0)");
    CHECK_CLOSE(y[1], 1.0 / (1.0 + exp(-1.0)), EXACT_TOL, "SiLU(1)");
    free(c.in); free(c.out); free(c.dout);
}

typedef struct { int N, dim; real *t, *out, *dout; } EmbCtx;

static double emb_loss(void *p) {
    EmbCtx *c = p;
    timestep_embedding_forward(c->out, c->t, c->N, c->dim);
    double L = 0;
    for (int i = 0; i < c->N * c->dim; i++) L += c->out[i] * c->dout[i];
    return L;
}

static void test_embedding(void) {
    /* hand-computed: dim = 4, half = 2, f_0 = 1, f_1 = exp(−ln(10000) · 1/1) = 1e-4;
     * t = 3: [sin 3, sin 3e-4, cos 3, cos 3e-4] */
    real t[2] = { 3, 50 }, out[8];
    timestep_embedding_forward(out, t, 2, 4);
    CHECK_CLOSE(out[0], sin(3.0), EXACT_TOL, "emb[t=3, 0] = sin 3");
    CHECK_CLOSE(out[1], sin(3e-4), EXACT_TOL, "emb[t=3, 1] = sin 3e-4");
    CHECK_CLOSE(out[2], cos(3.0), EXACT_TOL, "emb[t=3, 2] = cos 3");
    CHECK_CLOSE(out[3], cos(3e-4), EXACT_TOL, "emb[t=3, 3] = cos 3e-4");
    /* dim = 32, half = 16: f_5 = 10000^(−5/15); t = 50 */
    real out32[32];
    real t50 = 50;
    timestep_embedding_forward(out32, &t50, 1, 32);
    double f5 = pow(10000.0, -5.0 / 15.0);
    CHECK_CLOSE(out32[5], sin(50 * f5), EXACT_TOL, "emb32[5] = sin(50 · 10000^(-1/3))");
    CHECK_CLOSE(out32[16 + 15], cos(50 * 1e-4), EXACT_TOL, "emb32[31] = cos(50e-4)");

    Rng r;
    rng_seed(&r, 5);
    EmbCtx c = { 2, 8, t, out, random_buffer(16, &r) };
    real outbuf[16];
    c.out = outbuf;
    real dt[2] = { 0 };
    emb_loss(&c);
    timestep_embedding_backward(dt, c.dout, c.t, 2, 8);
    gradcheck("embedding.t", c.t, dt, 2, emb_loss, &c, 0);
    free(c.dout);
}

typedef struct { size_t n; real *pred, *target; double scale; } MseCtx;
static double mse_loss(void *p) {
    MseCtx *c = p;
    return mse_forward(c->pred, c->target, c->n, c->scale);
}

static void test_mse(void) {
    Rng r;
    rng_seed(&r, 6);
    MseCtx c = { 10, random_buffer(10, &r), random_buffer(10, &r), 0.1 };
    real dpred[10];
    mse_backward(dpred, c.pred, c.target, 10, 0.1);
    gradcheck("mse.pred", c.pred, dpred, 10, mse_loss, &c, 0);
    real a[2] = { 1, 2 }, b[2] = { 0, 4 };
    CHECK_CLOSE(mse_forward(a, b, 2, 0.5), 0.5 * (1 + 4), EXACT_TOL, "mse by hand");
    free(c.pred); free(c.target);
}

/* ---------------------------------------------------------------------------------------
 * Parameters, Adam, EMA */
static void test_params_adam_ema(void) {
    ParamSet ps;
    params_init(&ps);
    real *w1, *g1, *w2, *g2;
    params_add(&ps, &w1, &g1, "a", 2, 2, 3);
    params_add(&ps, &w2, &g2, "b", 1, 4);
    params_alloc(&ps);
    CHECK(ps.total == 10 && w2 == ps.w + 6 && g2 == ps.g + 6, "flat layout: total %zu", ps.total);
    CHECK(params_find(&ps, "b") && params_find(&ps, "b")->shape[0] == 4, "params_find");
    CHECK(params_find(&ps, "zzz") == NULL, "params_find of a missing name");

    /* Adam, hand-worked: w = 1, g = 0.5, lr = 0.1.
     * step 1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → w = 1 − 0.1 · 0.5/(0.5 + 1e-8)
     * step 2 with g = −1: m = 0.9·0.05 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001 = 0.00124975,
     *   m̂ = −0.055/0.19, v̂ = 0.00124975/(1 − 0.999²) */
    for (size_t i = 0; i < ps.total; i++) { ps.w[i] = 1; ps.g[i] = 0.5; }
    AdamConfig cfg = adam_default(0.1);
    adam_step(&ps, &cfg);
    double w_after1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8);
    CHECK_CLOSE(ps.w[3], w_after1, EXACT_TOL, "Adam step 1");
    for (size_t i = 0; i < ps.total; i++) ps.g[i] = -1;
    adam_step(&ps, &cfg);
    double m_hat = -0.055 / (1 - 0.81), v_hat = 0.00124975 / (1 - 0.999 * 0.999);
    CHECK_CLOSE(ps.w[3], w_after1 - 0.1 * m_hat / (sqrt(v_hat) + 1e-8), ADAM_TOL, "Adam step 2");

    params_zero_grad(&ps);
    CHECK(params_grad_norm(&ps) == 0.0, "params_zero_grad");

    /* gradient clipping, hand-worked on one number: step 1 g = 3 has norm 3 > clip 1, so
     * Adam sees g = 1 (m = 0.1, v = 0.001); step 2 g = 0.5 is below the clip:
     * m = 0.14, v = 0.001249, m̂ = 0.14/0.19, v̂ = 0.001249/0.001999 */
    ParamSet one;
    params_init(&one);
    real *wo, *go;
    params_add(&one, &wo, &go, "w", 1, 1);
    params_alloc(&one);
    AdamConfig clipped = adam_default(0.1);
    clipped.grad_clip = 1.0;
    go[0] = 3;
    adam_step(&one, &clipped);
    double w_one = -0.1 * (0.1 / 0.1) / (sqrt(0.001 / 0.001) + 1e-8);
    CHECK_CLOSE(wo[0], w_one, EXACT_TOL, "clipped Adam step 1");
    go[0] = 0.5;
    adam_step(&one, &clipped);
    CHECK_CLOSE(wo[0], w_one - 0.1 * (0.14 / 0.19) / (sqrt(0.001249 / 0.001999) + 1e-8), ADAM_TOL,
                "clipped Adam step 2");
    params_free(&one);

    /* EMA with constant w: after k updates ema = w + decay^k (ema₀ − w) */
    for (size_t i = 0; i < ps.total; i++) ps.w[i] = 0;
    ema_reset(&ps);
    for (size_t i = 0; i < ps.total; i++) ps.w[i] = 2;
    for (int k = 0; k < 5; k++) ema_update(&ps, 0.9);
    CHECK_CLOSE(ps.ema[0], 2 + pow(0.9, 5) * (0 - 2), EXACT_TOL, "EMA closed form");
    params_swap_ema(&ps);
    CHECK_CLOSE(ps.w[0], 2 + pow(0.9, 5) * (0 - 2), EXACT_TOL, "swap puts EMA in w");
    CHECK(ps.ema[0] == 2, "swap puts w in ema");
    params_free(&ps);
}

int main(void) {
    test_rng();
    test_linear();
    test_silu();
    test_fast_expf();
    test_embedding();
    test_mse();
    test_params_adam_ema();
    return test_summary("test_tensor");
}
