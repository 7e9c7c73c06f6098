/* tensor.c: numbers and generic layers (see tensor.h for what is and is not here).
 *
 * Reading order: errors and allocation, the random generator, parameters, the layers
 * (linear, SiLU, timestep embedding, MSE), then the optimizer (Adam) and EMA.
 * Sizes: N = batch, C_in, C_out = features in and out, n = number of elements.
 */
#include "tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

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

/* Rows are taken ROW_BLOCK at a time so that each weight row w[i, :] is loaded once for
 * several examples while it is in the fastest cache; within a row the inner loop is a
 * contiguous multiply-add that -O3 vectorizes. The order of additions into each output is
 * the same as the plain triple loop, so blocking changes no bit of the result. */
#define ROW_BLOCK 4
#define COL_BLOCK 8

void linear_forward(real *out, const real *in, const real *w, const real *b,
                    int N, int C_in, int C_out) {
    for (int n0 = 0; n0 < N; n0 += ROW_BLOCK) {
        int rows = N - n0 < ROW_BLOCK ? N - n0 : ROW_BLOCK;
        for (int r = 0; r < rows; r++) {
            real *out_n = out + (size_t)(n0 + r) * C_out;   /* seek to out[n, :] */
            for (int o = 0; o < C_out; o++) out_n[o] = b ? b[o] : 0;
        }
        for (int i = 0; i < C_in; i++) {
            const real *w_i = w + (size_t)i * C_out;        /* seek to w[i, :] */
            for (int r = 0; r < rows; r++) {
                real a = in[(size_t)(n0 + r) * C_in + i];    /* in[n, i] */
                real *out_n = out + (size_t)(n0 + r) * C_out;
                for (int o = 0; o < C_out; o++) out_n[o] += a * w_i[o];
            }
        }
    }
}

/* Σ_k a[k] b[k] with 8 running partial sums: a compiler may not reorder a single scalar
 * sum without fast-math, but it can vectorize 8 independent lanes. The order of additions
 * is fixed, so the result is the same on every run. */
static real dot(const real *a, const real *b, int n) {
    real acc[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[k + j] * b[k + j];
    real sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; k < n; k++) sum += a[k] * b[k];
    return sum;
}

/* forward: out[n, o] = b[o] + Σ_i in[n, i] w[i, o]
 *   dL/db[o]     = Σ_n dout[n, o]
 *   dL/dw[i, o]  = Σ_n in[n, i] dout[n, o]
 *   dL/din[n, i] = Σ_o w[i, o] dout[n, o] */
void linear_backward(real *din, real *dw, real *db, const real *dout, const real *in,
                     const real *w, int N, int C_in, int C_out) {
    if (db)
        for (int n = 0; n < N; n++) {
            const real *dout_n = dout + (size_t)n * C_out;  /* seek to dout[n, :] */
            for (int o = 0; o < C_out; o++) db[o] += dout_n[o];
        }
    /* dw, COL_BLOCK rows of dw at a time so they stay in cache while n runs */
    for (int i0 = 0; i0 < C_in; i0 += COL_BLOCK) {
        int cols = C_in - i0 < COL_BLOCK ? C_in - i0 : COL_BLOCK;
        for (int n = 0; n < N; n++) {
            const real *dout_n = dout + (size_t)n * C_out;
            const real *in_n = in + (size_t)n * C_in;
            for (int c = 0; c < cols; c++) {
                real a = in_n[i0 + c];
                real *dw_i = dw + (size_t)(i0 + c) * C_out;  /* seek to dw[i, :] */
                for (int o = 0; o < C_out; o++) dw_i[o] += a * dout_n[o];
            }
        }
    }
    if (din)
        for (int n0 = 0; n0 < N; n0 += 4 * ROW_BLOCK)       /* a block of dout rows in cache */
            for (int i = 0; i < C_in; i++) {
                const real *w_i = w + (size_t)i * C_out;
                int n1 = n0 + 4 * ROW_BLOCK < N ? n0 + 4 * ROW_BLOCK : N;
                for (int n = n0; n < n1; n++)                /* w[i, :] · dout[n, :] */
                    din[(size_t)n * C_in + i] += dot(w_i, dout + (size_t)n * C_out, C_out);
            }
}

/* ========================================================================================
 * SiLU: out = x σ(x), σ(x) = 1 / (1 + e^{−x}) */

void silu_forward(real *out, const real *in, size_t n) {
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        out[i] = x / (1 + real_exp(-x));
    }
}

/* forward: out = x σ(x)
 *   d out / dx = σ(x) + x σ(x) (1 − σ(x)) = σ(x) (1 + x (1 − σ(x))) */
void silu_backward(real *din, const real *dout, const real *in, size_t n) {
    for (size_t i = 0; i < n; i++) {
        real x = in[i];
        real sig = 1 / (1 + real_exp(-x));
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
    for (int n = 0; n < N; n++) {
        real *out_n = out + (size_t)n * dim;            /* seek to out[n, :] */
        for (int k = 0; k < half; k++) {
            double angle = (double)t[n] * embedding_frequency(k, half);
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
    for (size_t i = 0; i < ps->total; i++) {
        real g = ps->g[i] * c;
        ps->m[i] = b1 * ps->m[i] + (1 - b1) * g;
        ps->v[i] = b2 * ps->v[i] + (1 - b2) * g * g;
        /* w −= lr m̂ / (√v̂ + eps) with m̂ = m / bc1, v̂ = v / bc2 */
        ps->w[i] -= step_size * ps->m[i] / ((real)sqrt((double)ps->v[i]) * inv_sqrt_bc2 + eps);
    }
}

void ema_reset(ParamSet *ps) { memcpy(ps->ema, ps->w, ps->total * sizeof(real)); }

void ema_update(ParamSet *ps, double decay) {
    real d = (real)decay, one_minus = (real)(1.0 - decay);
    for (size_t i = 0; i < ps->total; i++) ps->ema[i] = d * ps->ema[i] + one_minus * ps->w[i];
}

void params_swap_ema(ParamSet *ps) {
    for (size_t i = 0; i < ps->total; i++) {
        real tmp = ps->w[i];
        ps->w[i] = ps->ema[i];
        ps->ema[i] = tmp;
    }
}
