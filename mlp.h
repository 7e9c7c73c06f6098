/* mlp.h: the 2D denoiser, a small MLP with hand-written backprop.
 *
 * Default (exactly, so that it can be compared with the same model elsewhere):
 *   input [x (2 numbers), sinusoidal embedding of t (32 numbers)]
 *   → Linear 34→128 → SiLU → Linear 128→128 → SiLU → Linear 128→128 → SiLU → Linear 128→2
 * A class-conditional MLP (num_classes = K > 0) adds a learned label embedding to those 34
 * input features, one row per class and one for the null label ∅ = K:
 *   input = [x, emb(t)] + cls_emb[y]                      (classifier-free guidance, guidance.h)
 * The output is read as ε̂, x̂₀, μ̂ or v̂ by ddpm.c; the MLP never sees a schedule. With
 * learned_var = 1 the last layer is Linear 128→4: the prediction, then v (denoiser.h).
 * Sizes: N = batch, D = data dimension, E = embedding size, H = hidden width.
 */
#ifndef MLP_H
#define MLP_H

#include "denoiser.h"
#include "tensor.h"

#define MLP_MAX_HIDDEN_LAYERS 8

typedef struct {
    int D;          /* data dimension, e.g. 2 */
    int emb_dim;    /* timestep embedding size E, e.g. 32 (even) */
    int hidden;     /* hidden width H, e.g. 128 */
    int layers;     /* hidden layers (Linear + SiLU), e.g. 3 */
    int max_batch;  /* largest batch forward accepts, e.g. 2000 */
    int learned_var;/* 0: the last layer outputs D numbers; 1: 2 D (prediction, then v for
                       a learned variance, denoiser.h). 0 by default: the default model's
                       parameters and their seeded values do not depend on this field. */
    int num_classes;/* K: labels 0..K−1 and ∅ = K; 0 = unconditional (the default) */
} MlpConfig;

MlpConfig mlp_default_config(int D, int max_batch);

typedef struct {
    MlpConfig cfg;
    int n_linear;                         /* layers + 1 */
    int in_dim[MLP_MAX_HIDDEN_LAYERS + 1], out_dim[MLP_MAX_HIDDEN_LAYERS + 1];
    real *w[MLP_MAX_HIDDEN_LAYERS + 1];   /* layer l: (in_dim[l], out_dim[l]) */
    real *b[MLP_MAX_HIDDEN_LAYERS + 1];   /* (out_dim[l]) */
    real *dw[MLP_MAX_HIDDEN_LAYERS + 1], *db[MLP_MAX_HIDDEN_LAYERS + 1];
    real *cls_emb, *dcls_emb;             /* (K + 1, D + E) label embedding (K > 0 only) */
    /* caches kept by forward for backward */
    real *t_real;                         /* (N) t as real for the embedding */
    real *input;                          /* (N, D + E) [x, embedding(t)]: first layer's input */
    int *y;                               /* (N) labels of the last forward, ∅ = K for NULL */
    real *pre[MLP_MAX_HIDDEN_LAYERS];     /* (N, H) before SiLU: SiLU's backward needs it */
    real *act[MLP_MAX_HIDDEN_LAYERS];     /* (N, H) after SiLU: the next layer's input */
    real *grad_a, *grad_b;                /* (N, max(H, D + E)) scratch for backward */
    ParamSet *params;
    int last_N;                           /* N of the last forward: backward must match it */
} Mlp;

/* Declares the parameters in ps (which must be fresh from params_init), allocates them
 * and every activation for cfg->max_batch, and initializes the weights from rng: the
 * linear layers as for K = 0 (the same numbers for the same seed), then cls_emb ~ N(0, 1). */
void mlp_init(Mlp *m, const MlpConfig *cfg, ParamSet *ps, Rng *rng);
void mlp_free(Mlp *m);
/* y (N) labels 0..K of a conditional MLP, or NULL (∅ for all; the only choice for K = 0) */
void mlp_forward(Mlp *m, real *out, const real *x, const int *t, const int *y, int N);
void mlp_backward(Mlp *m, real *dx, const real *dout, int N);
Denoiser mlp_denoiser(Mlp *m);

#endif
