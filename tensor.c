/* tensor.c: numbers and generic layers (see tensor.h for what is and is not here).
 *
 * Reading order: errors and allocation, the random generator, parameters, the layers
 * (linear, SiLU, timestep embedding, MSE), then the optimizer (Adam) and EMA.
 * Sizes: N = batch, C_in, C_out = features in and out, n = number of elements.
 */
#include "tensor.h"
#include "matmul.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* ========================================================================================
 * Errors and allocation */

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

void *xmalloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of memory allocating %zu bytes for %s (try a smaller batch or model)",
                bytes, what);
    return p;
}

void *xcalloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) die("out of memory allocating %zu x %zu bytes for %s (try a smaller batch or model)",
                count, size, what);
    return p;
}

/* ========================================================================================
 * Random numbers: xoshiro256** with splitmix64 seeding (both public-domain algorithms by
 * Blackman and Vigna). Normals by the Box-Muller transform, one pair per two uniforms. */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);  /* never all zero */
    r->spare = 0.0;
    r->has_spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* the top 53 bits as a double in [0, 1) */
double rng_uniform(Rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

/* Box-Muller: for u1 in (0, 1], u2 in [0, 1),
 *   z1 = √(−2 ln u1) cos(2π u2),  z2 = √(−2 ln u1) sin(2π u2)  are independent N(0, 1). */
double rng_normal(Rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - rng_uniform(r);   /* (0, 1]: log(u1) is finite */
    double u2 = rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 2.0 * PI * u2;
    r->spare = radius * sin(angle);
    r->has_spare = 1;
    return radius * cos(angle);
}

/* unbiased: reject the top partial block of 2^64 mod n values */
int rng_int(Rng *r, int n) {
    uint64_t bound = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do { x = rng_u64(r); } while (x >= limit);
    return (int)(x % bound);
}

void rng_fill_normal(Rng *r, real *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (real)rng_normal(r);
}

/* ========================================================================================
 * Parameters: declared one by one, then placed in one flat buffer. */

void params_init(ParamSet *ps) { memset(ps, 0, sizeof *ps); }

void params_add(ParamSet *ps, real **w_slot, real **g_slot, const char *name, int ndim, ...) {
    if (ps->w) die("params_add(\"%s\") after params_alloc: declare every tensor first", name);
    if (ndim < 1 || ndim > PARAM_MAX_DIMS) die("params_add(\"%s\"): ndim %d not in 1..%d",
                                               name, ndim, PARAM_MAX_DIMS);
    if (ps->count == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 32;
        Param *grown = realloc(ps->p, (size_t)ps->cap * sizeof *grown);
        if (!grown) die("out of memory declaring parameter %s", name);
        ps->p = grown;
    }
    Param *p = &ps->p[ps->count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->n = 1;
    va_list ap;
    va_start(ap, ndim);
    for (int d = 0; d < ndim; d++) {
        p->shape[d] = va_arg(ap, int);
        p->n *= (size_t)p->shape[d];
    }
    va_end(ap);
    p->offset = ps->total;
    p->w_slot = w_slot;
    p->g_slot = g_slot;
    ps->total += p->n;
}

void params_alloc(ParamSet *ps) {
    ps->w = xcalloc(ps->total, sizeof(real), "weights");
    ps->g = xcalloc(ps->total, sizeof(real), "gradients");
    ps->m = xcalloc(ps->total, sizeof(real), "Adam first moments");
    ps->v = xcalloc(ps->total, sizeof(real), "Adam second moments");
    ps->ema = xcalloc(ps->total, sizeof(real), "EMA weights");
    ps->step = 0;
    for (int i = 0; i < ps->count; i++) {
        Param *p = &ps->p[i];
        if (p->w_slot) *p->w_slot = ps->w + p->offset;
        if (p->g_slot) *p->g_slot = ps->g + p->offset;
    }
}

void params_free(ParamSet *ps) {
    free(ps->w); free(ps->g); free(ps->m); free(ps->v); free(ps->ema);
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

void params_zero_grad(ParamSet *ps) { memset(ps->g, 0, ps->total * sizeof(real)); }

double params_grad_norm(const ParamSet *ps) {
    double sum = 0.0;
    for (size_t i = 0; i < ps->total; i++) sum += (double)ps->g[i] * ps->g[i];
    return sqrt(sum);
}

int params_check_finite(const ParamSet *ps, double loss, long step, char *msg, size_t len) {
    if (!isfinite(loss)) {
        snprintf(msg, len, "step %ld: the loss is %g", step, loss);
        return -1;
    }
    const struct { const real *x; const char *what; } bufs[] = {
        { ps->g, "the gradient of" }, { ps->w, "the weights of" }, { ps->m, "Adam's first moment of" },
        { ps->v, "Adam's second moment of" }, { ps->ema, "the EMA of" },
    };
    for (int b = 0; b < 5; b++)
        for (int i = 0; i < ps->count; i++) {
            const Param *p = &ps->p[i];
            const real *x = bufs[b].x + p->offset;               /* seek to this tensor */
            for (size_t k = 0; k < p->n; k++)
                if (!isfinite(x[k])) {
                    snprintf(msg, len, "step %ld: %s %s holds %g (at index %zu)", step,
                             bufs[b].what, p->name, (double)x[k], k);
                    return -1;
                }
        }
    if (len) msg[0] = '\0';
    return 0;
}

const Param *params_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->count; i++)
        if (strcmp(ps->p[i].name, name) == 0) return &ps->p[i];
    return NULL;
}

void init_uniform(real *w, size_t n, int fan_in, Rng *rng) {
    double k = 1.0 / sqrt((double)fan_in);
    for (size_t i = 0; i < n; i++) w[i] = (real)(k * (2.0 * rng_uniform(rng) - 1.0));
}

/* ========================================================================================
 * Linear: out (N, C_out), in (N, C_in), w (C_in, C_out), b (C_out) */

/* Each of the three products is one call of matmul (matmul.c), which reads the
 * transposes in place: in (N, C_in) and w (C_in, C_out) are row-major, so
 *   forward:  out (N, C_out)   = in (N, C_in) · w (C_in, C_out), after out[n, :] = b
 *   dw:       dw (C_in, C_out) += inᵀ (C_in, N) · dout (N, C_out)
 *   din:      din (N, C_in)    += dout (N, C_out) · wᵀ (C_out, C_in) */
void linear_forward(real *out, const real *in, const real *w, const real *b,
                    int N, int C_in, int C_out) {
    for (int n = 0; n < N; n++) {
        real *out_n = out + (size_t)n * C_out;              /* seek to out[n, :] */
        for (int o = 0; o < C_out; o++) out_n[o] = b ? b[o] : 0;
    }
    matmul(out, C_out, in, C_in, 0, w, C_out, 0, N, C_out, C_in, 1);
}

/* forward: out[n, o] = b[o] + Σ_i in[n, i] w[i, o]
 *   dL/db[o]     = Σ_n dout[n, o]
 *   dL/dw[i, o]  = Σ_n in[n, i] dout[n, o]
 *   dL/din[n, i] = Σ_o dout[n, o] w[i, o] */
void linear_backward(real *din, real *dw, real *db, const real *dout, const real *in,
                     const real *w, int N, int C_in, int C_out) {
    if (db)
        for (int n = 0; n < N; n++) {
            const real *dout_n = dout + (size_t)n * C_out;  /* seek to dout[n, :] */
            for (int o = 0; o < C_out; o++) db[o] += dout_n[o];
        }
    matmul(dw, C_out, in, C_in, 1, dout, C_out, 0, C_in, C_out, N, 1);
    if (din) matmul(din, C_in, dout, C_out, 0, w, C_out, 1, N, C_in, C_out, 1);
}

/* ========================================================================================
 * exp in plain, vectorizable C (float), for SiLU. libm's expf is a function call per
 * number, which stops the compiler from vectorizing the loop around it; this one is a few
 * multiply-adds and selects that it inlines and runs 8 or 16 at a time.
 *
 *   range reduction:  x = n ln 2 + r,  n = round(x / ln 2),  |r| ≤ ln 2 / 2 ≈ 0.347
 *                     exp(x) = 2^n exp(r)
 *   polynomial:       exp(r) ≈ Σ_{k=0..7} r^k / k!  (Taylor, by Horner); the first term
 *                     left out, r^8 / 8! ≤ 5.2e-9, is 0.06 of the spacing of floats near 1
 *   scaling:          2^n built from its bits, as 2^{n1} · 2^{n2} with n1 = n/2, so that
 *                     results below FLT_MIN (subnormals, x < −87.3) come out right too.
 * ln 2 is split into a high part with few bits (n · LN2_HI is exact for |n| ≤ 512) and the
 * rest (Cody & Waite), so r is accurate although x − n ln 2 cancels. Inputs are clamped to
 * [−104, 89]: below, exp(x) < 2^−150 rounds to 0; above, it overflows to inf, as here.
 * Measured against libm's exp in double over the whole float range (tests/test_tensor.c):
 * at most 1 unit in the last place (ulp) from the exactly rounded result. */
static inline float fast_expf_inline(float x) {
    const float LOG2E = 1.44269504f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    const float SHIFT = 12582912.0f;                 /* 1.5 · 2^23: adding it rounds to int */
    float xc = x > -104.0f ? x : -104.0f;            /* NaN lands here too (no UB below) */
    xc = xc < 89.0f ? xc : 89.0f;
    float n = fmaf(xc, LOG2E, SHIFT) - SHIFT;        /* round(x / ln 2), ties to even */
    float r = fmaf(-n, LN2_HI, xc);
    r = fmaf(-n, LN2_LO, r);
    float p = 1.0f / 5040;                           /* 1/7!, then Horner down to 1/0! */
    p = fmaf(p, r, 1.0f / 720);
    p = fmaf(p, r, 1.0f / 120);
    p = fmaf(p, r, 1.0f / 24);
    p = fmaf(p, r, 1.0f / 6);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int ni = (int)n, n1 = ni / 2, n2 = ni - n1;      /* n1, n2 in [−75, 64]: normal powers */
    uint32_t bits1 = (uint32_t)(n1 + 127) << 23, bits2 = (uint32_t)(n2 + 127) << 23;
    float scale1, scale2;
    memcpy(&scale1, &bits1, sizeof scale1);          /* 2^n1: exponent field n1 + 127 */
    memcpy(&scale2, &bits2, sizeof scale2);
    float e = (p * scale1) * scale2;
    return x == x ? e : x;                           /* NaN in, NaN out */
}

float fast_expf(float x) { return fast_expf_inline(x); }

/* ========================================================================================
 * SiLU: out = x σ(x), σ(x) = 1 / (1 + e^{−x}). The float build uses fast_expf (above), the
 * double build (the tests' gradient checks) libm's exp. */

#ifdef DDPM_DOUBLE
#define silu_exp exp
#else
#define silu_exp fast_expf_inline
#endif

void silu_forward(real *out, const real *in, size_t n) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > 50000)
#endif
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        out[i] = x / (1 + silu_exp(-x));
    }
}

/* forward: out = x σ(x)
 *   d out / dx = σ(x) + x σ(x) (1 − σ(x)) = σ(x) (1 + x (1 − σ(x))) */
void silu_backward(real *din, const real *dout, const real *in, size_t n) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n > 50000)
#endif
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        real sig = 1 / (1 + silu_exp(-x));
        din[i] += dout[i] * sig * (1 + x * (1 - sig));
    }
}

/* ========================================================================================
 * Sinusoidal timestep embedding: out (N, dim), t (N) */

static double embedding_frequency(int k, int half) {
    /* f_k = exp(−ln(10000) k / (half − 1)): from 1 down to 1/10000 */
    return half > 1 ? exp(-log(10000.0) * k / (half - 1)) : 1.0;
}

void timestep_embedding_forward(real *out, const real *t, int N, int dim) {
    int half = dim / 2;
    for (int k = 0; k < half; k++) {          /* one frequency for the whole batch */
        double f = embedding_frequency(k, half);
        for (int n = 0; n < N; n++) {
            real *out_n = out + (size_t)n * dim;        /* seek to out[n, :] */
            double angle = (double)t[n] * f;
            out_n[k] = (real)sin(angle);
            out_n[half + k] = (real)cos(angle);
        }
    }
}

/* forward: out[k] = sin(t f_k), out[half + k] = cos(t f_k)
 *   dL/dt = Σ_k f_k (cos(t f_k) dout[k] − sin(t f_k) dout[half + k]) */
void timestep_embedding_backward(real *dt, const real *dout, const real *t, int N, int dim) {
    int half = dim / 2;
    for (int n = 0; n < N; n++) {
        const real *dout_n = dout + (size_t)n * dim;
        double sum = 0.0;
        for (int k = 0; k < half; k++) {
            double f = embedding_frequency(k, half);
            double angle = (double)t[n] * f;
            sum += f * (cos(angle) * dout_n[k] - sin(angle) * dout_n[half + k]);
        }
        dt[n] += (real)sum;
    }
}

/* ========================================================================================
 * Label embedding: out (N, dim) += table (K + 1, dim)[y_n, :]; y == NULL is ∅ = K */

static int label_row(const int *y, int K, int n) {
    int c = y ? y[n] : K;
    if (c < 0 || c > K) die("label %d of example %d is not a class 0..%d or the null label %d",
                            c, n, K - 1, K);
    return c;
}

void label_embedding_forward(real *out, const real *table, const int *y, int K, int N,
                             int dim) {
    for (int n = 0; n < N; n++) {
        const real *row = table + (size_t)label_row(y, K, n) * dim;   /* seek to table[y_n, :] */
        real *out_n = out + (size_t)n * dim;
        for (int j = 0; j < dim; j++) out_n[j] += row[j];
    }
}

/* forward: out[n, j] += table[y_n, j]   ⇒   dL/dtable[c, j] = Σ_{n: y_n = c} dout[n, j] */
void label_embedding_backward(real *dtable, const real *dout, const int *y, int K, int N,
                              int dim) {
    for (int n = 0; n < N; n++) {
        real *drow = dtable + (size_t)label_row(y, K, n) * dim;
        const real *dout_n = dout + (size_t)n * dim;
        for (int j = 0; j < dim; j++) drow[j] += dout_n[j];
    }
}

/* ========================================================================================
 * MSE: L = scale Σ_i (pred[i] − target[i])² */

double mse_forward(const real *pred, const real *target, size_t n, double scale) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        sum += d * d;
    }
    return scale * sum;
}

/* dL/dpred[i] = 2 scale (pred[i] − target[i])  (written, not accumulated: it seeds the chain) */
void mse_backward(real *dpred, const real *pred, const real *target, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) dpred[i] = (real)(2.0 * scale * ((double)pred[i] - target[i]));
}

/* ========================================================================================
 * Adam and EMA: one flat loop each over all parameters. */

AdamConfig adam_default(double lr) {
    AdamConfig c = { lr, 0.9, 0.999, 1e-8, 0.0 };
    return c;
}

void adam_step(ParamSet *ps, const AdamConfig *cfg) {
    double clip = 1.0;  /* scale on the gradient: < 1 when its norm exceeds grad_clip */
    if (cfg->grad_clip > 0) {
        double norm = params_grad_norm(ps);
        if (norm > cfg->grad_clip) clip = cfg->grad_clip / norm;
    }
    ps->step++;
    double bc1 = 1.0 - pow(cfg->beta1, (double)ps->step);   /* bias corrections */
    double bc2 = 1.0 - pow(cfg->beta2, (double)ps->step);
    real b1 = (real)cfg->beta1, b2 = (real)cfg->beta2;
    real step_size = (real)(cfg->lr / bc1), eps = (real)cfg->eps;
    real inv_sqrt_bc2 = (real)(1.0 / sqrt(bc2)), c = (real)clip;
    real *w = ps->w, *m = ps->m, *v = ps->v;
    const real *grad = ps->g;
    /* One flat loop that vectorizes: real_sqrt is one instruction (-fno-math-errno), and
     * the buffers are separate allocations, which the compiler checks once at run time.
     * Each number is its own: threads split them and change no bit. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ps->total > 200000)
#endif
    for (size_t i = 0; i < ps->total; i++) {
        real g = grad[i] * c;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        /* w −= lr m̂ / (√v̂ + eps) with m̂ = m / bc1, v̂ = v / bc2 */
        w[i] -= step_size * m[i] / (real_sqrt(v[i]) * inv_sqrt_bc2 + eps);
    }
}

void ema_reset(ParamSet *ps) { memcpy(ps->ema, ps->w, ps->total * sizeof(real)); }

void ema_update(ParamSet *ps, double decay) {
    real d = (real)decay, one_minus = (real)(1.0 - decay);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (ps->total > 200000)
#endif
    for (size_t i = 0; i < ps->total; i++) ps->ema[i] = d * ps->ema[i] + one_minus * ps->w[i];
}

void params_swap_ema(ParamSet *ps) {
    for (size_t i = 0; i < ps->total; i++) {
        real tmp = ps->w[i];
        ps->w[i] = ps->ema[i];
        ps->ema[i] = tmp;
    }
}
