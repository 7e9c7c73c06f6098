/* test_unet.c: the U-Net's layers and the whole net against finite differences.
 *
 * Every backward is checked with a "fake loss" L = Σ out·dout for a fixed random dout, so
 * that dL/dout = dout and the backward's result must equal the five-point difference of L
 * (gradcheck.h, real = double). Then: the default 1×28×28 net builds and runs, the same
 * seed gives bit-identical numbers, gradients accumulate, bad configs are refused.
 * Sizes: N = batch, C = channels, H, W = height, width, HW = H·W, G = groups.
 */
#define _POSIX_C_SOURCE 200809L   /* fork, for death.h */
#include <stdlib.h>
#include <string.h>

#include "death.h"
#include "gradcheck.h"
#include "harness.h"
#include "../unet.h"

#define MAX_CHECKS 10        /* entries checked per tensor of a whole net (evenly strided): 10
                                five-point differences cost the forwards of 20 two-point ones */
#define SAME_TOL   1e-12     /* "two backwards = 2× one": equal up to one rounding step */
#define SUM_TOL    1e-12     /* a conv by im2col vs the plain sum, a softmax row's sum, a group's
                                mean: sums of ~1e2 O(1) products in another order */
#define GN_EPS 1e-5          /* group norm's eps (Wu & He; PyTorch's default), written here
                                and not read from unet.h, so that a changed eps fails */

/* ========================================================================================
 * Helpers */

static real *random_reals(Rng *rng, size_t n, double scale) {
    real *x = xmalloc(n * sizeof(real), "test buffer");
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * (2.0 * rng_uniform(rng) - 1.0));
    return x;
}

static double dot(const real *a, const real *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Every weight of ps made random and non-zero, so that no path is silenced by the
 * zero-initialized last convs: matrices U(±1/√fan_in), vectors U(±0.3) (γ around 1). */
static void randomize_params(ParamSet *ps, Rng *rng) {
    for (int i = 0; i < ps->count; i++) {
        const Param *p = &ps->p[i];
        real *w = ps->w + p->offset;
        if (p->ndim == 1) {
            int is_gamma = strstr(p->name, "gamma") != NULL;
            for (size_t j = 0; j < p->n; j++)
                w[j] = (real)((is_gamma ? 1.0 : 0.0) + 0.3 * (2.0 * rng_uniform(rng) - 1.0));
        } else {
            int fan_in = p->ndim == 4 ? (int)(p->n / (size_t)p->shape[0]) : p->shape[0];
            init_uniform(w, p->n, fan_in, rng);
        }
    }
}

/* checks every tensor of ps against its gradient in ps->g */
static double gradcheck_params(const char *what, ParamSet *ps, LossFn loss, void *ctx) {
    double worst = 0.0;
    for (int i = 0; i < ps->count; i++) {
        const Param *p = &ps->p[i];
        char name[128];
        snprintf(name, sizeof name, "%s %s", what, p->name);
        worst = fmax(worst, gradcheck(name, ps->w + p->offset, ps->g + p->offset, p->n, loss,
                                      ctx, MAX_CHECKS));
    }
    return worst;
}

/* ========================================================================================
 * conv2d */

typedef struct {
    int N, C_in, C_out, H, W, k, stride;
    real *in, *w, *b, *out, *dout, *scratch;
} ConvCase;

static double conv_loss(void *ctx) {
    ConvCase *c = ctx;
    conv2d_forward(c->out, c->scratch, c->in, c->w, c->b, c->N, c->C_in, c->C_out, c->H, c->W,
                   c->k, c->stride);
    size_t n = (size_t)c->N * c->C_out * conv2d_out_size(c->H, c->k, c->stride) *
               conv2d_out_size(c->W, c->k, c->stride);
    return dot(c->out, c->dout, n);
}

static void test_conv2d(int k, int stride, int H, int W, Rng *rng) {
    ConvCase c = { 2, 3, 4, H, W, k, stride, 0, 0, 0, 0, 0, 0 };
    size_t n_in = (size_t)c.N * c.C_in * H * W, n_w = (size_t)c.C_out * c.C_in * k * k;
    size_t n_out = (size_t)c.N * c.C_out * conv2d_out_size(H, k, stride) *
                   conv2d_out_size(W, k, stride);
    c.in = random_reals(rng, n_in, 1.0);
    c.w = random_reals(rng, n_w, 0.5);
    c.b = random_reals(rng, (size_t)c.C_out, 0.5);
    c.out = random_reals(rng, n_out, 1.0);
    c.dout = random_reals(rng, n_out, 1.0);
    c.scratch = xcalloc(conv2d_scratch_size(c.C_in, c.C_out, H, W, k, stride), sizeof(real), "s");
    real *din = xcalloc(n_in, sizeof(real), "din"), *dw = xcalloc(n_w, sizeof(real), "dw");
    real *db = xcalloc((size_t)c.C_out, sizeof(real), "db");
    conv_loss(&c);
    conv2d_backward(din, dw, db, c.scratch, c.dout, c.in, c.w, c.N, c.C_in, c.C_out, H, W,
                    k, stride);
    char what[64];
    snprintf(what, sizeof what, "conv%dx%d/s%d %dx%d in", k, k, stride, H, W);
    gradcheck(what, c.in, din, n_in, conv_loss, &c, 0);
    snprintf(what, sizeof what, "conv%dx%d/s%d %dx%d w", k, k, stride, H, W);
    gradcheck(what, c.w, dw, n_w, conv_loss, &c, 0);
    snprintf(what, sizeof what, "conv%dx%d/s%d %dx%d b", k, k, stride, H, W);
    gradcheck(what, c.b, db, (size_t)c.C_out, conv_loss, &c, 0);
    CHECK(conv2d_out_size(28, 3, 2) == 14 && conv2d_out_size(7, 3, 2) == 4 &&
          conv2d_out_size(7, 3, 1) == 7 && conv2d_out_size(5, 1, 1) == 5, "conv output sizes");
    free(c.in); free(c.w); free(c.b); free(c.out); free(c.dout); free(c.scratch);
    free(din); free(dw); free(db);
}

/* A 3×3 conv against a hand-written direct sum at a few positions: the im2col route
 * computes the formula of unet.h, including the zero padding at the border. */
static void test_conv2d_direct(Rng *rng) {
    int N = 1, Ci = 2, Co = 3, H = 5, W = 4, k = 3, s = 2;
    int Ho = conv2d_out_size(H, k, s), Wo = conv2d_out_size(W, k, s);
    real *in = random_reals(rng, (size_t)N * Ci * H * W, 1.0);
    real *w = random_reals(rng, (size_t)Co * Ci * k * k, 1.0);
    real *b = random_reals(rng, (size_t)Co, 1.0);
    real *out = xcalloc((size_t)Co * Ho * Wo, sizeof(real), "out");
    real *scratch = xcalloc(conv2d_scratch_size(Ci, Co, H, W, k, s), sizeof(real), "s");
    conv2d_forward(out, scratch, in, w, b, N, Ci, Co, H, W, k, s);
    double worst = 0.0;
    for (int o = 0; o < Co; o++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                double sum = b[o];
                for (int c = 0; c < Ci; c++)
                    for (int i = 0; i < k; i++)
                        for (int j = 0; j < k; j++) {
                            int iy = s * y + i - 1, ix = s * x + j - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            sum += w[((o * Ci + c) * k + i) * k + j] * in[(c * H + iy) * W + ix];
                        }
                worst = fmax(worst, fabs(sum - out[(o * Ho + y) * Wo + x]));
            }
    CHECK_CLOSE(worst, 0.0, SUM_TOL, "conv 3x3/s2 equals the direct sum");
    free(in); free(w); free(b); free(out); free(scratch);
}

/* ========================================================================================
 * upsample, group norm, concat */

typedef struct { int N, C, H, W, G; real *in, *in2, *gamma, *beta, *out, *dout, *mean, *rstd; } SimpleCase;

static double upsample_loss(void *ctx) {
    SimpleCase *c = ctx;
    upsample_forward(c->out, c->in, c->N, c->C, c->H, c->W);
    return dot(c->out, c->dout, (size_t)c->N * c->C * 4 * c->H * c->W);
}

static void test_upsample(Rng *rng) {
    SimpleCase c = { 2, 3, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t n_in = (size_t)c.N * c.C * c.H * c.W, n_out = 4 * n_in;
    c.in = random_reals(rng, n_in, 1.0);
    c.out = random_reals(rng, n_out, 1.0);
    c.dout = random_reals(rng, n_out, 1.0);
    real *din = xcalloc(n_in, sizeof(real), "din");
    upsample_loss(&c);
    CHECK(c.out[0] == c.in[0] && c.out[1] == c.in[0] && c.out[8] == c.in[0] &&
          c.out[2] == c.in[1], "upsample copies each pixel into a 2×2 block");
    upsample_backward(din, c.dout, c.N, c.C, c.H, c.W);
    gradcheck("upsample in", c.in, din, n_in, upsample_loss, &c, 0);
    free(c.in); free(c.out); free(c.dout); free(din);
}

static double groupnorm_loss(void *ctx) {
    SimpleCase *c = ctx;
    groupnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->N, c->C,
                      c->H * c->W, c->G);
    return dot(c->out, c->dout, (size_t)c->N * c->C * c->H * c->W);
}

static void test_groupnorm(Rng *rng) {
    SimpleCase c = { 2, 6, 3, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t n = (size_t)c.N * c.C * c.H * c.W;
    c.in = random_reals(rng, n, 2.0);
    for (size_t i = 0; i < n; i++) c.in[i] += 0.5;   /* a non-zero mean to remove */
    c.gamma = random_reals(rng, (size_t)c.C, 1.0);
    c.beta = random_reals(rng, (size_t)c.C, 1.0);
    c.out = xcalloc(n, sizeof(real), "out");
    c.dout = random_reals(rng, n, 1.0);
    c.mean = xcalloc((size_t)c.N * c.G, sizeof(real), "mean");
    c.rstd = xcalloc((size_t)c.N * c.G, sizeof(real), "rstd");
    real *din = xcalloc(n, sizeof(real), "din");
    real *dgamma = xcalloc((size_t)c.C, sizeof(real), "dgamma");
    real *dbeta = xcalloc((size_t)c.C, sizeof(real), "dbeta");
    groupnorm_loss(&c);
    /* with γ = 1, β = 0 each group of the output has mean 0 and variance 1 (up to eps) */
    real *ones = xcalloc((size_t)c.C, sizeof(real), "ones"), *zeros = xcalloc((size_t)c.C, sizeof(real), "zeros");
    for (int i = 0; i < c.C; i++) ones[i] = 1;
    real *plain = xcalloc(n, sizeof(real), "plain");
    groupnorm_forward(plain, c.mean, c.rstd, c.in, ones, zeros, c.N, c.C, c.H * c.W, c.G);
    size_t M = (size_t)(c.C / c.G) * c.H * c.W;
    double m = 0, v = 0, mu_in = 0, var_in = 0;
    for (size_t i = 0; i < M; i++) m += plain[M + i];      /* group (0, 1) */
    for (size_t i = 0; i < M; i++) v += plain[M + i] * plain[M + i];
    for (size_t i = 0; i < M; i++) mu_in += c.in[M + i] / M;
    for (size_t i = 0; i < M; i++) var_in += (c.in[M + i] - mu_in) * (c.in[M + i] - mu_in) / M;
    CHECK_CLOSE(m / M, 0.0, SUM_TOL, "group norm: group mean 0");
    /* x̂ = (x − μ)/√(σ² + eps) has variance σ²/(σ² + eps) exactly: 1 − 7e-6 here, a shift
     * that SUM_TOL resolves (a variance near 1 within 1e-4 would accept eps = 1e-4) */
    CHECK_CLOSE(v / M, var_in / (var_in + GN_EPS), SUM_TOL,
                "group norm: group variance sigma^2/(sigma^2 + eps), eps = 1e-5");
    groupnorm_loss(&c);
    groupnorm_backward(din, dgamma, dbeta, c.dout, c.mean, c.rstd, c.in, c.gamma, c.N, c.C,
                       c.H * c.W, c.G);
    gradcheck("groupnorm in", c.in, din, n, groupnorm_loss, &c, 0);
    gradcheck("groupnorm gamma", c.gamma, dgamma, (size_t)c.C, groupnorm_loss, &c, 0);
    gradcheck("groupnorm beta", c.beta, dbeta, (size_t)c.C, groupnorm_loss, &c, 0);
    free(c.in); free(c.gamma); free(c.beta); free(c.out); free(c.dout); free(c.mean);
    free(c.rstd); free(din); free(dgamma); free(dbeta); free(ones); free(zeros); free(plain);
}

static double concat_loss(void *ctx) {
    SimpleCase *c = ctx;   /* C = C_h, G = C_skip here */
    concat_forward(c->out, c->in, c->in2, c->N, c->C, c->G, c->H * c->W);
    return dot(c->out, c->dout, (size_t)c->N * (c->C + c->G) * c->H * c->W);
}

static void test_concat(Rng *rng) {
    SimpleCase c = { 2, 3, 2, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0 };
    size_t HW = (size_t)c.H * c.W, nh = c.N * c.C * HW, ns = c.N * c.G * HW;
    c.in = random_reals(rng, nh, 1.0);
    c.in2 = random_reals(rng, ns, 1.0);
    c.out = xcalloc(nh + ns, sizeof(real), "out");
    c.dout = random_reals(rng, nh + ns, 1.0);
    real *dh = xcalloc(nh, sizeof(real), "dh"), *dskip = xcalloc(ns, sizeof(real), "dskip");
    concat_loss(&c);
    CHECK(c.out[c.C * HW] == c.in2[0] && c.out[(c.C + c.G) * HW] == c.in[c.C * HW],
          "concat: image 0 is [h0, skip0], image 1 starts with h1");
    concat_backward(dh, dskip, c.dout, c.N, c.C, c.G, (int)HW);
    gradcheck("concat h", c.in, dh, nh, concat_loss, &c, 0);
    gradcheck("concat skip", c.in2, dskip, ns, concat_loss, &c, 0);
    free(c.in); free(c.in2); free(c.out); free(c.dout); free(dh); free(dskip);
}

/* ========================================================================================
 * residual block and attention block */

typedef struct {
    ResBlock rb; AttnBlock ab; int is_attn, N;
    real *x, *temb_act, *out, *dout, *scratch;
    size_t n_out;
} BlockCase;

static double block_loss(void *ctx) {
    BlockCase *c = ctx;
    if (c->is_attn) attention_forward(&c->ab, c->out, c->scratch, c->x, c->N);
    else resblock_forward(&c->rb, c->out, c->scratch, c->x, c->temb_act, c->N);
    return dot(c->out, c->dout, c->n_out);
}

static void test_resblock(int C_in, int C_out, Rng *rng) {
    BlockCase c;
    memset(&c, 0, sizeof c);
    ParamSet ps;
    params_init(&ps);
    int N = 2, H = 4, W = 3, T_emb = 5, G = 2;
    resblock_create(&c.rb, &ps, "rb", C_in, C_out, T_emb, G, H, W, N);
    params_alloc(&ps);
    resblock_init_weights(&c.rb, rng, 1);
    randomize_params(&ps, rng);
    c.N = N;
    size_t n_in = (size_t)N * C_in * H * W, n_t = (size_t)N * T_emb;
    c.n_out = (size_t)N * C_out * H * W;
    c.x = random_reals(rng, n_in, 1.5);
    c.temb_act = random_reals(rng, n_t, 1.0);
    c.out = xcalloc(c.n_out, sizeof(real), "out");
    c.dout = random_reals(rng, c.n_out, 1.0);
    c.scratch = xcalloc(resblock_scratch_size(&c.rb), sizeof(real), "scratch");
    real *dx = xcalloc(n_in, sizeof(real), "dx"), *dtemb = xcalloc(n_t, sizeof(real), "dt");
    block_loss(&c);
    params_zero_grad(&ps);
    resblock_backward(&c.rb, dx, dtemb, c.scratch, c.dout, c.x, c.temb_act, N);
    char what[64];
    snprintf(what, sizeof what, "resblock %d->%d x", C_in, C_out);
    gradcheck(what, c.x, dx, n_in, block_loss, &c, 0);
    snprintf(what, sizeof what, "resblock %d->%d temb_act", C_in, C_out);
    gradcheck(what, c.temb_act, dtemb, n_t, block_loss, &c, 0);
    snprintf(what, sizeof what, "resblock %d->%d", C_in, C_out);
    gradcheck_params(what, &ps, block_loss, &c);
    CHECK(ps.count == (C_in != C_out ? 12 : 10), "resblock %d->%d declares %d tensors",
          C_in, C_out, ps.count);
    resblock_free(&c.rb);
    params_free(&ps);
    free(c.x); free(c.temb_act); free(c.out); free(c.dout); free(c.scratch); free(dx);
    free(dtemb);
}

static void test_attention(Rng *rng) {
    BlockCase c;
    memset(&c, 0, sizeof c);
    ParamSet ps;
    params_init(&ps);
    int N = 2, C = 4, H = 3, W = 2, G = 2;
    attention_create(&c.ab, &ps, "attn", C, G, H, W, N);
    params_alloc(&ps);
    attention_init_weights(&c.ab, rng, 0);
    randomize_params(&ps, rng);
    c.is_attn = 1;
    c.N = N;
    c.n_out = (size_t)N * C * H * W;
    c.x = random_reals(rng, c.n_out, 1.5);
    c.out = xcalloc(c.n_out, sizeof(real), "out");
    c.dout = random_reals(rng, c.n_out, 1.0);
    c.scratch = xcalloc(attention_scratch_size(&c.ab), sizeof(real), "scratch");
    real *dx = xcalloc(c.n_out, sizeof(real), "dx");
    block_loss(&c);
    /* every row of the attention probabilities sums to 1 */
    int P = H * W;
    double worst = 0.0;
    for (int r = 0; r < N * P; r++) {
        double s = 0.0;
        for (int j = 0; j < P; j++) s += c.ab.prob[(size_t)r * P + j];
        worst = fmax(worst, fabs(s - 1.0));
    }
    CHECK_CLOSE(worst, 0.0, SUM_TOL, "attention probabilities sum to 1 per row");
    params_zero_grad(&ps);
    attention_backward(&c.ab, dx, c.scratch, c.dout, c.x, N);
    gradcheck("attention x", c.x, dx, c.n_out, block_loss, &c, 0);
    gradcheck_params("attention", &ps, block_loss, &c);
    attention_free(&c.ab);
    params_free(&ps);
    free(c.x); free(c.out); free(c.dout); free(c.scratch); free(dx);
}

/* ========================================================================================
 * the whole U-Net */

typedef struct { Unet *u; real *x, *out, *dout; const int *t; int N; size_t n; } NetCase;

static double net_loss(void *ctx) {
    NetCase *c = ctx;
    unet_forward(c->u, c->out, c->x, c->t, NULL, c->N);
    return dot(c->out, c->dout, c->n);
}

static UnetConfig small_config(void) {
    UnetConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.C = 1; cfg.H = 8; cfg.W = 8;
    cfg.base = 8; cfg.levels = 2; cfg.mult[0] = 1; cfg.mult[1] = 2;
    cfg.num_res_blocks = 1;
    cfg.n_attn = 1; cfg.attn_res[0] = 4; cfg.mid_attn = 1;
    cfg.groups = 4;
    cfg.max_batch = 2;
    return cfg;
}

/* backward with another N than the last forward's */
typedef struct { Unet *u; real *dout; int N; } BackwardCall;
static void backward_call(void *p) {
    BackwardCall *b = p;
    unet_backward(b->u, NULL, b->dout, b->N);
}

static void test_unet_gradients(Rng *rng) {
    UnetConfig cfg = small_config();
    Unet u;
    ParamSet ps;
    params_init(&ps);
    CHECK(unet_init(&u, &cfg, &ps, rng) == 0, "small U-Net builds");
    CHECK(sizeof(real) == sizeof(double), "the gradient check runs with real = double");
    randomize_params(&ps, rng);
    int N = 2, t[2] = { 3, 850 };
    NetCase c = { &u, 0, 0, 0, t, N, (size_t)N * cfg.C * cfg.H * cfg.W };
    c.x = random_reals(rng, c.n, 1.0);
    c.out = xcalloc(c.n, sizeof(real), "out");
    /* dout has unit length here. Each output of the ~30-layer forward carries a few ulps
     * of rounding, so L = Σ out·dout is known to ~6ε‖dout‖ and the central difference
     * (÷ 2h = 2e-5) to ~3e-11 ‖dout‖: under the ~1e-10 absolute accuracy that
     * gradcheck.h's GRAD_FLOOR assumes when ‖dout‖ = 1. With entries U(±1) (‖dout‖ ≈ 6.5
     * for 128 outputs) that noise reached 2e-10, and gradients that are exactly zero (the
     * key bias of attention, to which softmax is blind) failed on noise alone. */
    c.dout = random_reals(rng, c.n, 1.0);
    double norm = sqrt(dot(c.dout, c.dout, c.n));
    for (size_t i = 0; i < c.n; i++) c.dout[i] /= norm;
    real *dx = xcalloc(c.n, sizeof(real), "dx");
    net_loss(&c);
    params_zero_grad(&ps);
    unet_backward(&u, dx, c.dout, N);
    gradcheck("unet x", c.x, dx, c.n, net_loss, &c, MAX_CHECKS);
    double worst = gradcheck_params("unet", &ps, net_loss, &c);
    printf("small U-Net: %d parameter tensors (%ld numbers) gradient-checked in %s, worst error "
           "%.2g (tolerance %.0e)\n", ps.count, unet_param_count(&u), REAL_NAME, worst, GRAD_TOL);

    /* gradients accumulate: a second backward adds the same amount again */
    net_loss(&c);
    params_zero_grad(&ps);
    unet_backward(&u, NULL, c.dout, N);
    real *g1 = xmalloc(ps.total * sizeof(real), "g1");
    memcpy(g1, ps.g, ps.total * sizeof(real));
    unet_backward(&u, NULL, c.dout, N);
    worst = 0.0;
    for (size_t i = 0; i < ps.total; i++) worst = fmax(worst, fabs(ps.g[i] - 2 * g1[i]));
    CHECK_CLOSE(worst, 0.0, SAME_TOL, "two backwards give twice the gradient");

    /* the Denoiser glue calls the same functions */
    Denoiser d = unet_denoiser(&u);
    CHECK(d.D == cfg.C * cfg.H * cfg.W && d.max_batch == cfg.max_batch && d.params == &ps,
          "denoiser sizes");
    real *out2 = xcalloc(c.n, sizeof(real), "out2");
    d.forward(d.self, out2, c.x, t, NULL, N);
    net_loss(&c);
    CHECK(memcmp(out2, c.out, c.n * sizeof(real)) == 0, "denoiser forward = unet_forward");

    /* after a forward of N = 2, a backward of N = 1 dies, naming both */
    BackwardCall call = { &u, c.dout, 1 };
    check_dies("unet_backward with another N", backward_call, &call,
               "unet_backward: N = 1 but the last forward had N = 2");

    unet_free(&u);
    params_free(&ps);
    free(c.x); free(c.out); free(c.dout); free(dx); free(g1); free(out2);
}

/* The class-conditional U-Net: temb += label_emb[y] before the SiLU that feeds every
 * residual block; its gradient, ∅, and the relation to the unconditional net. */
typedef struct { Unet *u; real *x, *out, *dout; const int *t, *y; int N; size_t n; } CondCase;

static double cond_loss(void *ctx) {
    CondCase *c = ctx;
    unet_forward(c->u, c->out, c->x, c->t, c->y, c->N);
    return dot(c->out, c->dout, c->n);
}

static void test_unet_label_gradients(Rng *rng) {
    enum { K = 3 };
    UnetConfig cfg = small_config(), cfg0 = small_config();
    cfg.num_classes = K;
    Unet u, u0;
    ParamSet ps, ps0;
    params_init(&ps); params_init(&ps0);
    Rng r1, r0;
    rng_seed(&r1, 77); rng_seed(&r0, 77);
    CHECK(unet_init(&u, &cfg, &ps, &r1) == 0 && unet_init(&u0, &cfg0, &ps0, &r0) == 0,
          "conditional and unconditional small U-Nets build");
    const Param *emb = params_find(&ps, "label_emb");
    CHECK(emb && emb->shape[0] == K + 1 && emb->shape[1] == u.T_emb && ps.count == ps0.count + 1,
          "label_emb is one extra (K + 1, T_emb) tensor");
    CHECK(memcmp(ps.w, ps0.w, ps0.total * sizeof(real)) == 0,
          "the same seed gives the conditional U-Net the unconditional one's other weights");
    randomize_params(&ps, rng);
    int N = 2, t[2] = { 3, 850 }, y[2] = { 1, K };     /* a class and the null label */
    CondCase c = { &u, 0, 0, 0, t, y, N, (size_t)N * cfg.C * cfg.H * cfg.W };
    c.x = random_reals(rng, c.n, 1.0);
    c.out = xcalloc(c.n, sizeof(real), "out");
    c.dout = random_reals(rng, c.n, 1.0);
    double norm = sqrt(dot(c.dout, c.dout, c.n));   /* unit length, as in the test above */
    for (size_t i = 0; i < c.n; i++) c.dout[i] /= norm;
    real *dx = xcalloc(c.n, sizeof(real), "dx");
    cond_loss(&c);
    params_zero_grad(&ps);
    unet_backward(&u, dx, c.dout, N);
    gradcheck("conditional unet x", c.x, dx, c.n, cond_loss, &c, MAX_CHECKS);
    gradcheck("conditional unet label_emb", ps.w + emb->offset, ps.g + emb->offset, emb->n,
              cond_loss, &c, 0);
    const char *near[] = { "temb.fc1.w", "temb.fc2.w", "temb.fc2.b" };   /* before the sum */
    for (int i = 0; i < 3; i++) {
        const Param *p = params_find(&ps, near[i]);
        gradcheck(near[i], ps.w + p->offset, ps.g + p->offset, p->n, cond_loss, &c, MAX_CHECKS);
    }
    /* rows of labels absent from the batch (0 and 2) get no gradient */
    double absent = 0.0;
    for (int j = 0; j < u.T_emb; j++)
        absent += fabs(ps.g[emb->offset + j]) + fabs(ps.g[emb->offset + 2 * u.T_emb + j]);
    CHECK(absent == 0.0, "label_emb rows of absent labels get no gradient");

    /* y == NULL is ∅ for every example; another label changes the output */
    real *a = xcalloc(c.n, sizeof(real), "a"), *b = xcalloc(c.n, sizeof(real), "b");
    int nulls[2] = { K, K }, other[2] = { 0, 2 };
    unet_forward(&u, a, c.x, t, NULL, N);
    unet_forward(&u, b, c.x, t, nulls, N);
    CHECK(memcmp(a, b, c.n * sizeof(real)) == 0, "U-Net labels NULL = the null label for all");
    unet_forward(&u, b, c.x, t, other, N);
    CHECK(memcmp(a, b, c.n * sizeof(real)) != 0, "the U-Net output changes with the label");
    /* with label_emb = 0 (and the same other weights) it is the unconditional U-Net */
    memcpy(ps0.w, ps.w, ps0.total * sizeof(real));
    memset(ps.w + emb->offset, 0, emb->n * sizeof(real));
    unet_forward(&u, a, c.x, t, y, N);
    unet_forward(&u0, b, c.x, t, NULL, N);
    int same = 1;
    for (size_t i = 0; i < c.n; i++) same &= a[i] == b[i];
    CHECK(same, "a zero label embedding gives the unconditional U-Net's outputs exactly");

    unet_free(&u); unet_free(&u0);
    params_free(&ps); params_free(&ps0);
    free(c.x); free(c.out); free(c.dout); free(dx); free(a); free(b);
}

/* the same seed gives bit-identical weights and outputs */
static void test_unet_reproducible(void) {
    UnetConfig cfg = small_config();
    real *outs[2];
    size_t n = 2 * (size_t)cfg.C * cfg.H * cfg.W;
    real *w0 = NULL;
    size_t total = 0;
    int same_w = 1;
    for (int run = 0; run < 2; run++) {
        Rng rng;
        rng_seed(&rng, 1234);
        Unet u;
        ParamSet ps;
        params_init(&ps);
        unet_init(&u, &cfg, &ps, &rng);
        if (run == 0) {
            total = ps.total;
            w0 = xmalloc(total * sizeof(real), "w0");
            memcpy(w0, ps.w, total * sizeof(real));
        } else {
            same_w = total == ps.total && memcmp(w0, ps.w, total * sizeof(real)) == 0;
        }
        randomize_params(&ps, &rng);   /* so that the output is not the zero conv's zeros */
        real *x = random_reals(&rng, n, 1.0);
        int t[2] = { 1, 1000 };
        outs[run] = xcalloc(n, sizeof(real), "out");
        unet_forward(&u, outs[run], x, t, NULL, 2);
        unet_free(&u);
        params_free(&ps);
        free(x);
    }
    CHECK(same_w, "same seed: bit-identical initial weights");
    CHECK(memcmp(outs[0], outs[1], n * sizeof(real)) == 0, "same seed: bit-identical output");
    free(outs[0]); free(outs[1]); free(w0);
}

static void test_default_config(Rng *rng) {
    UnetConfig cfg = unet_default_config(1, 28, 28);
    CHECK(cfg.base == 32 && cfg.levels == 3 && cfg.mult[0] == 1 && cfg.mult[1] == 2 &&
          cfg.mult[2] == 2 && cfg.num_res_blocks == 2 && cfg.n_attn == 1 &&
          cfg.attn_res[0] == 7 && cfg.mid_attn && cfg.groups == 8,
          "default 28×28 config: base 32, mult (1, 2, 2), 2 blocks, attention at 7, 8 groups");
    cfg.max_batch = 2;
    Unet u;
    ParamSet ps;
    params_init(&ps);
    CHECK(unet_init(&u, &cfg, &ps, rng) == 0, "default U-Net builds");
    unet_print_summary(stdout, &u);
    CHECK(u.level[2].has_attn && !u.level[0].has_attn && !u.level[1].has_attn,
          "attention only at 7×7");
    int N = 2, t[2] = { 1, 1000 };
    size_t n = (size_t)N * 28 * 28;
    real *x = random_reals(rng, n, 1.0);
    real *out = xcalloc(n, sizeof(real), "out");
    unet_forward(&u, out, x, t, NULL, N);
    double sumsq = dot(out, out, n);
    CHECK(sumsq == 0.0, "untrained default net predicts exactly 0 (zero conv_out)");
    randomize_params(&ps, rng);
    unet_forward(&u, out, x, t, NULL, N);
    sumsq = dot(out, out, n);
    CHECK(isfinite(sumsq) && sumsq > 0, "default net forward N = 2 is finite (Σ out² = %g)",
          sumsq);
    unet_free(&u);
    params_free(&ps);
    free(x); free(out);
}

static void test_bad_configs(void) {
    char msg[256];
    UnetConfig cfg = unet_default_config(1, 28, 28);
    CHECK(unet_config_check(&cfg, msg, sizeof msg) == 0, "default config is valid");
    UnetConfig bad = cfg;
    bad.H = 30;   /* 30 / 4 is not an integer */
    CHECK(unet_config_check(&bad, msg, sizeof msg) != 0 && strstr(msg, "divisible"),
          "H = 30 with 3 levels refused");
    bad = cfg;
    bad.groups = 6;   /* 32 channels in 6 groups */
    CHECK(unet_config_check(&bad, msg, sizeof msg) != 0 && strstr(msg, "groups"),
          "channels not divisible by groups refused");
    bad = cfg;
    bad.levels = 5;
    CHECK(unet_config_check(&bad, msg, sizeof msg) != 0, "5 levels refused");
    UnetConfig odd = unet_default_config(3, 30, 30);   /* halves once: 2 levels */
    CHECK(odd.levels == 2 && unet_config_check(&odd, msg, sizeof msg) == 0,
          "default config for 30×30 has 2 levels and is valid");
}

int main(void) {
    Rng rng;
    rng_seed(&rng, 42);
    test_conv2d(3, 1, 5, 4, &rng);
    test_conv2d(3, 2, 6, 6, &rng);
    test_conv2d(3, 2, 5, 5, &rng);
    test_conv2d(1, 1, 4, 3, &rng);
    test_conv2d_direct(&rng);
    test_upsample(&rng);
    test_groupnorm(&rng);
    test_concat(&rng);
    test_resblock(4, 6, &rng);
    test_resblock(4, 4, &rng);
    test_attention(&rng);
    test_unet_gradients(&rng);
    test_unet_label_gradients(&rng);
    test_unet_reproducible();
    test_default_config(&rng);
    test_bad_configs();
    return test_summary("test_unet");
}
