/* tensor.h: numbers and generic layers, with no knowledge of diffusion.
 *
 * What is here: the `real` type (float; double in the tests' build), the seeded random
 * generator `Rng`, parameters with their gradients and Adam moments in one flat layout,
 * and forward/backward pairs for linear, SiLU, the sinusoidal timestep embedding and MSE,
 * then Adam and an EMA of the weights.
 * What is not: any diffusion formula (schedule.c, ddpm.c), any image layer (unet.c).
 * Plain loops, no intrinsics; hot loops are contiguous multiply-adds so -O3 vectorizes them.
 *
 * Sizes: N = batch, C_in, C_out = features in and out, n = number of elements.
 */
#ifndef TENSOR_H
#define TENSOR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ----------------------------------------------------------------------------------------
 * real: float by default; the tests build every source with -DDDPM_DOUBLE so that
 * finite-difference gradient checks are exact to ~1e-7 instead of noisy float guesses. */
#ifdef DDPM_DOUBLE
typedef double real;
#define REAL_NAME "double"
#define real_exp exp
#define real_fma fma
#define real_sqrt sqrt
#else
typedef float real;
#define REAL_NAME "float"
#define real_exp expf    /* exp in the precision of `real` */
#define real_fma fmaf    /* x·y + z rounded once: one instruction with -march=native */
#define real_sqrt sqrtf  /* correctly rounded, as (float)sqrt((double)x) is: the same bits */
#endif

/* π in double, the one definition every file uses (M_PI is POSIX, not C11) */
#define PI 3.14159265358979323846

/* ----------------------------------------------------------------------------------------
 * Checked allocation and fatal errors: one line naming the place and a hint, exit 1. */
void *xmalloc(size_t bytes, const char *what);  /* never returns NULL */
void *xcalloc(size_t count, size_t size, const char *what);
void die(const char *fmt, ...);                 /* prints "error: ..." and exits 1 */

/* ----------------------------------------------------------------------------------------
 * Rng: xoshiro256** (Blackman & Vigna, 2018) seeded through splitmix64.
 * The whole state is this struct, so copying it (or saving it in a checkpoint) and
 * continuing gives the same numbers bit for bit. No globals, no rand(). */
typedef struct {
    uint64_t s[4];     /* xoshiro256** state, never all zero */
    double spare;      /* second normal of the last Box-Muller pair */
    int has_spare;     /* 1 if `spare` is waiting to be returned */
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);              /* U[0, 1), 53 random bits */
double rng_normal(Rng *r);               /* N(0, 1), Box-Muller */
int rng_int(Rng *r, int n);              /* uniform on {0, ..., n-1}, unbiased */
void rng_fill_normal(Rng *r, real *x, size_t n);

/* ----------------------------------------------------------------------------------------
 * Parameters. A model declares each tensor once with params_add(); params_alloc() then
 * places all of them in one flat buffer and fills the model's pointers, so that Adam,
 * EMA, zeroing and checkpoints are single loops over `total` numbers. */
#define PARAM_MAX_DIMS 4
#define PARAM_NAME_LEN 48

typedef struct {
    char name[PARAM_NAME_LEN];    /* e.g. "fc1.w" */
    int ndim, shape[PARAM_MAX_DIMS]; /* e.g. 2, {34, 128} */
    size_t n;                     /* product of shape */
    size_t offset;                /* start in the flat buffers */
    real **w_slot, **g_slot;      /* the model's fields to point at w and g */
} Param;

typedef struct {
    Param *p; int count, cap;     /* declared tensors, in declaration order */
    size_t total;                 /* numbers in all of them */
    real *w;    /* (total) weights */
    real *g;    /* (total) gradients: backward adds (+=) into these */
    real *m;    /* (total) Adam first moment */
    real *v;    /* (total) Adam second moment */
    real *ema;  /* (total) exponential moving average of w */
    long step;  /* Adam steps taken, for bias correction */
} ParamSet;

void params_init(ParamSet *ps);
/* Declare a tensor of `ndim` dims given as ints; *w_slot and *g_slot are set by params_alloc. */
void params_add(ParamSet *ps, real **w_slot, real **g_slot, const char *name, int ndim, ...);
void params_alloc(ParamSet *ps);           /* zero-filled; the model initializes w after */
void params_free(ParamSet *ps);
void params_zero_grad(ParamSet *ps);
double params_grad_norm(const ParamSet *ps);
const Param *params_find(const ParamSet *ps, const char *name);
/* After a training step (backward, adam_step, ema_update), before anything is saved: 0 if
 * the loss and every number of g, w, m, v and ema is finite; else −1 and one line in msg
 * naming the step and the first bad tensor, e.g. "step 37: the gradient of fc1.w holds
 * nan (at index 12)" or "step 37: the loss is inf". Checked in that order (the loss, then
 * g, w, m, v, ema), so the message names where the trouble entered. */
int params_check_finite(const ParamSet *ps, double loss, long step, char *msg, size_t len);

/* Uniform init U(-k, k) with k = 1/sqrt(fan_in), as the common framework default. */
void init_uniform(real *w, size_t n, int fan_in, Rng *rng);

/* ----------------------------------------------------------------------------------------
 * Linear: out[n, o] = b[o] + Σ_i in[n, i] w[i, o].
 * w is stored (C_in, C_out) so that the inner loop is out[n, :] += in[n, i] * w[i, :]. */
void linear_forward(real *out, const real *in, const real *w, const real *b,
                    int N, int C_in, int C_out);
/* din may be NULL (first layer); dw, db accumulate (+=). */
void linear_backward(real *din, real *dw, real *db, const real *dout, const real *in,
                     const real *w, int N, int C_in, int C_out);

/* exp(x) for float x, to within 1 ulp, in plain C that vectorizes (tensor.c explains it) */
float fast_expf(float x);

/* SiLU: out = x σ(x). Backward needs the input x, kept by the caller. */
void silu_forward(real *out, const real *in, size_t n);
void silu_backward(real *din, const real *dout, const real *in, size_t n);

/* Sinusoidal timestep embedding (Vaswani et al., used by Ho et al.), dim even, half = dim/2:
 *   f_k = exp(-ln(10000) k / (half - 1)),  k = 0 .. half-1
 *   out[n, k] = sin(t_n f_k),  out[n, half + k] = cos(t_n f_k)
 * t is real so that the backward d out / d t exists (for continuous time); the programs
 * pass the integer t = 1..T of the notes. */
void timestep_embedding_forward(real *out, const real *t, int N, int dim);
void timestep_embedding_backward(real *dt, const real *dout, const real *t, int N, int dim);

/* Label embedding, added to features: out[n, :] += table[y_n, :], table (K + 1, dim) with
 * one learned row per class c = 0..K−1 and the last row for the null label ∅ = K (the
 * "no label" of classifier-free guidance). y (N) in 0..K; y == NULL means ∅ for every n.
 * A label outside 0..K is a programming error: die() names it. The backward adds
 * dtable[y_n, :] += dout[n, :] (rows of labels absent from the batch get nothing). */
void label_embedding_forward(real *out, const real *table, const int *y, int K, int N,
                             int dim);
void label_embedding_backward(real *dtable, const real *dout, const int *y, int K, int N,
                              int dim);

/* MSE: L = scale * Σ_i (pred[i] - target[i])², the caller chooses scale (e.g. 1/n). */
double mse_forward(const real *pred, const real *target, size_t n, double scale);
void mse_backward(real *dpred, const real *pred, const real *target, size_t n, double scale);

/* ----------------------------------------------------------------------------------------
 * Adam (Kingma & Ba, 2015) over the whole flat buffer, with bias correction:
 *   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;  w -= lr m̂ / (√v̂ + eps) */
typedef struct { double lr, beta1, beta2, eps, grad_clip; } AdamConfig; /* grad_clip 0 = off */
AdamConfig adam_default(double lr);
void adam_step(ParamSet *ps, const AdamConfig *cfg);

/* EMA of the weights: ema = decay ema + (1 - decay) w; ema_reset copies w. */
void ema_reset(ParamSet *ps);
void ema_update(ParamSet *ps, double decay);
void params_swap_ema(ParamSet *ps);       /* swap w and ema, e.g. to sample with EMA weights */

#endif
