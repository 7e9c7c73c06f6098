/* unet.h: the image denoiser, a small U-Net (Ho et al., 2020, appendix B), and its layers.
 *
 * What is here: the image layers with hand-written backward passes (conv2d, nearest ×2
 * upsampling, group normalization, channel concatenation, single-head self-attention, the
 * residual block with its timestep input) and the U-Net that chains them, behind ddpm.h's
 * `Denoiser` interface: ε̂ = f_θ(x_t, t) (or x̂₀, μ̂, v̂: the network does not know which).
 * What is not: any schedule or diffusion formula (ddpm.c, schedule.c); dropout; threads.
 * Plain loops, no intrinsics: convolutions are im2col + a matrix product whose inner loop
 * is a contiguous multiply-add, which -O3 -march=native vectorizes.
 *
 * Sizes: N = batch, C = channels, H, W = height, width, HW = H·W positions,
 *        G = groups of group norm, K = C_in·k·k (rows of an im2col matrix).
 * Layout: NCHW, row-major: x[n, c, y, x] = x[((n·C + c)·H + y)·W + x].
 */
#ifndef UNET_H
#define UNET_H

#include <stdio.h>

#include "denoiser.h"
#include "tensor.h"

/* ========================================================================================
 * Layers. Each forward has its backward right under it. Order of arguments everywhere:
 * outputs, caches, scratch, inputs, weights, sizes. Every backward ADDS (+=) into its
 * gradients (of inputs and of weights). A NULL input gradient is skipped only by
 * conv2d_backward and unet_backward (the image's gradient is rarely wanted); every other
 * backward needs its input gradient. */

/* ---- conv2d: k×k kernel (k odd), padding k/2, stride 1 or 2.
 *   out[n, o, y, x] = b[o] + Σ_{c, i, j} w[o, c, i, j] in[n, c, s·y + i − k/2, s·x + j − k/2]
 * with zeros outside the image. H, W are the input's size; the output is
 * H_out = (H − 1)/s + 1 (28 → 14 → 7 for s = 2; unchanged for s = 1). */
typedef struct {
    real *w, *dw;   /* (C_out, C_in, k, k) */
    real *b, *db;   /* (C_out) */
    int C_in, C_out, k, stride;  /* e.g. 32, 64, 3, 1 */
} Conv2d;

int conv2d_out_size(int size, int k, int stride);
/* reals of scratch that conv2d_forward/backward need for one call (any N) */
size_t conv2d_scratch_size(int C_in, int C_out, int H, int W, int k, int stride);
void conv2d_forward(real *out, real *scratch, const real *in, const real *w, const real *b,
                    int N, int C_in, int C_out, int H, int W, int k, int stride);
void conv2d_backward(real *din, real *dw, real *db, real *scratch, const real *dout,
                     const real *in, const real *w,
                     int N, int C_in, int C_out, int H, int W, int k, int stride);

/* ---- nearest-neighbour ×2 upsampling: out (N, C, 2H, 2W)[y, x] = in (N, C, H, W)[y/2, x/2] */
void upsample_forward(real *out, const real *in, int N, int C, int H, int W);
void upsample_backward(real *din, const real *dout, int N, int C, int H, int W);

/* ---- group normalization (Wu & He, 2018): the C channels are split into G groups of C/G;
 * over each (n, g), with M = (C/G)·HW numbers,
 *   μ = mean(x),  σ² = mean((x − μ)²),  rstd = 1/√(σ² + eps),  x̂ = (x − μ) rstd
 *   out[n, c, p] = γ[c] x̂[n, c, p] + β[c]
 * mean and rstd (N, G) are cached for the backward. */
#define GROUPNORM_EPS 1e-5
void groupnorm_forward(real *out, real *mean, real *rstd, const real *in,
                       const real *gamma, const real *beta, int N, int C, int HW, int G);
/* the second half of the forward, out = γ x̂ + β from the cached mean and rstd: the same
 * bits as the forward wrote, so a block can recompute out instead of keeping it */
void groupnorm_apply(real *out, const real *mean, const real *rstd, const real *in,
                     const real *gamma, const real *beta, int N, int C, int HW, int G);
void groupnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout,
                        const real *mean, const real *rstd, const real *in,
                        const real *gamma, int N, int C, int HW, int G);

/* ---- concatenation along channels: out (N, C_h + C_skip, HW) = [h (N, C_h, HW), skip] */
void concat_forward(real *out, const real *h, const real *skip, int N, int C_h, int C_skip,
                    int HW);
void concat_backward(real *dh, real *dskip, const real *dout, int N, int C_h, int C_skip,
                     int HW);

/* ---- residual block (Ho et al.'s ResnetBlock, without dropout):
 *   h   = conv1(SiLU(GN1(x)))                         3×3, C_in → C_out
 *   h  += Linear(temb_act)[n, c]  over every (y, x)   temb_act = SiLU(temb), (N, T_emb)
 *   out = conv2(SiLU(GN2(h))) + skip(x)               skip: 1×1 conv if C_in ≠ C_out
 * The block owns its weights (declared in a ParamSet) and its caches, sized for max_batch;
 * the output buffer belongs to the caller. The group norms' and SiLUs' outputs and the
 * gradients inside the backward live in the shared scratch (resblock_scratch_size): the
 * backward recomputes GN1(x), GN2(h) and their SiLUs there, from the cached statistics,
 * instead of keeping them for every block (they are elementwise and cheap). */
typedef struct {
    int C_in, C_out, H, W, T_emb, G, max_batch;  /* e.g. 64, 32, 28, 28, 128, 8, 32 */
    int has_skip;                 /* 1 if C_in ≠ C_out: skip is a 1×1 conv */
    real *gn1_gamma, *dgn1_gamma, *gn1_beta, *dgn1_beta;   /* (C_in) */
    Conv2d conv1;                 /* 3×3, C_in → C_out */
    real *temb_w, *dtemb_w;       /* (T_emb, C_out), tensor.h's linear layout */
    real *temb_b, *dtemb_b;       /* (C_out) */
    real *gn2_gamma, *dgn2_gamma, *gn2_beta, *dgn2_beta;   /* (C_out) */
    Conv2d conv2;                 /* 3×3, C_out → C_out */
    Conv2d skip;                  /* 1×1, C_in → C_out (only if has_skip) */
    /* caches: what the forward keeps for the backward */
    real *gn1_mean, *gn1_rstd;    /* (N, G) statistics of GN1 over x */
    real *tproj;  /* (N, C_out)       Linear(temb_act) */
    real *h;      /* (N, C_out, H, W) conv1(s1) + tproj, the input of GN2 */
    real *gn2_mean, *gn2_rstd;    /* (N, G) statistics of GN2 over h */
    real *dtproj; /* (N, C_out)       used inside the backward */
} ResBlock;

/* declares the weights in ps under "<name>." and allocates caches; weights are set by
 * resblock_init_weights after params_alloc(ps). */
void resblock_create(ResBlock *rb, ParamSet *ps, const char *name, int C_in, int C_out,
                     int T_emb, int G, int H, int W, int max_batch);
/* PyTorch's default U(±1/√fan_in) for convs and the linear, GN γ = 1, β = 0, and conv2
 * zero (Ho et al. scale it by 1e-10) if zero_last; then the block starts as its skip. */
void resblock_init_weights(ResBlock *rb, Rng *rng, int zero_last);
size_t resblock_scratch_size(const ResBlock *rb);
void resblock_forward(ResBlock *rb, real *out, real *scratch, const real *x,
                      const real *temb_act, int N);
void resblock_backward(ResBlock *rb, real *dx, real *dtemb_act, real *scratch,
                       const real *dout, const real *x, const real *temb_act, int N);
void resblock_free(ResBlock *rb);

/* ---- self-attention block (Ho et al.'s AttnBlock, one head) over the HW positions:
 *   a = GN(x);  q, k, v = 1×1 convs of a                   each (N, C, HW)
 *   S[i, j] = Σ_c q[c, i] k[c, j] / √C,  P = softmax over j of S     (N, HW, HW)
 *   o[c, i] = Σ_j P[i, j] v[c, j]
 *   out = x + proj(o)                                      proj: 1×1 conv */
typedef struct {
    int C, H, W, G, max_batch;    /* e.g. 64, 7, 7, 8, 32 */
    real *gn_gamma, *dgn_gamma, *gn_beta, *dgn_beta;   /* (C) */
    Conv2d q, k, v, proj;         /* 1×1, C → C */
    /* caches */
    real *gn_mean, *gn_rstd;      /* (N, G) */
    real *a;      /* (N, C, HW) GN(x), the input of q, k, v */
    real *qx, *kx, *vx;           /* (N, C, HW) queries, keys, values */
    real *prob;   /* (N, HW, HW) attention probabilities P, kept for the backward */
    real *o;      /* (N, C, HW) attention output, the input of proj */
    /* gradient buffers used inside the backward */
    real *g[4];   /* (N, C, HW) each */
} AttnBlock;

void attention_create(AttnBlock *ab, ParamSet *ps, const char *name, int C, int G, int H,
                      int W, int max_batch);
/* U(±1/√C) for q, k, v; proj zero if zero_last (Ho et al.), else U(±1/√C) too. */
void attention_init_weights(AttnBlock *ab, Rng *rng, int zero_last);
size_t attention_scratch_size(const AttnBlock *ab);
void attention_forward(AttnBlock *ab, real *out, real *scratch, const real *x, int N);
void attention_backward(AttnBlock *ab, real *dx, real *scratch, const real *dout,
                        const real *x, int N);
void attention_free(AttnBlock *ab);

/* ========================================================================================
 * The U-Net. */

#define UNET_MAX_LEVELS 4   /* resolutions, e.g. 28, 14, 7 */
#define UNET_MAX_RES 4      /* residual blocks per level on the way down */
#define UNET_MAX_ATTN 4     /* entries of the attention resolution list */
#define UNET_MAX_ACTS 256   /* activations (with gradients) of the whole net */

typedef struct {
    int C, H, W;          /* image channels and size, e.g. 1, 28, 28 */
    int base;             /* channels at level 0 and the sinusoidal dim, even, e.g. 32 */
    int levels;           /* resolutions, 1..UNET_MAX_LEVELS, e.g. 3 (28, 14, 7) */
    int mult[UNET_MAX_LEVELS];  /* channels of level l = base·mult[l], e.g. {1, 2, 2} */
    int num_res_blocks;   /* residual blocks per level on the way down, e.g. 2 (up: +1) */
    int n_attn;           /* entries used in attn_res, e.g. 1 */
    int attn_res[UNET_MAX_ATTN]; /* feature-map heights with attention, e.g. {7} */
    int mid_attn;         /* 1: attention between the two middle blocks, e.g. 1 */
    int groups;           /* group norm groups, divides every channel count, e.g. 8 */
    int max_batch;        /* largest N for forward/backward (buffers are sized once), e.g. 32 */
    int learned_var;      /* 1: conv_out gives 2 C channels, the prediction then v for a
                             learned variance (denoiser.h); 0 (the default): C */
    int num_classes;      /* K class labels (+ ∅ = K); 0 = unconditional (the default), e.g. 10 */
} UnetConfig;

/* The defaults; for 1×28×28 exactly: base 32, mult (1, 2, 2), 2 res blocks per level,
 * attention at 7×7 and in the middle, 8 groups, max_batch 32. Other sizes get the same
 * recipe with as many halvings (up to 3) as H and W allow. */
UnetConfig unet_default_config(int C, int H, int W);
/* 0 if cfg is usable; otherwise -1 and a one-line reason with a hint in msg. */
int unet_config_check(const UnetConfig *cfg, char *msg, size_t msg_len);

/* An activation (N, C, H, W) and its gradient dL/dx. A gradient that only carries the
 * backward from one step to the next (every Act after the down path: the output of the
 * up path's blocks, concatenations, upsamplings, the middle, out_a, out_s) is transient:
 * its dx is one of the U-Net's two shared gradient buffers (unet_backward hands them out
 * in turn), not a buffer of its own. */
typedef struct { real *x, *dx; int C, H, W; int transient; } Act;

/* The block list: every layer of the U-Net that owns weights, one entry each, in the order
 * unet_init declares them, which is the order the forward runs them and the order their
 * weights are drawn. unet_init builds it once, as it builds the activation list; the weight
 * initialization, the scratch sizing, unet_free and the multiply-add count walk it. The
 * forward and the backward spell the wiring out themselves (and mirror each other). */
typedef enum {
    UNET_LINEAR,      /* w (n_in, n_out), b (n_out): the timestep embedding's two linears */
    UNET_CONV,        /* a Conv2d reading an H×W map */
    UNET_GROUPNORM,   /* γ, β (n_out): the output group norm (the blocks own theirs) */
    UNET_RES,         /* a ResBlock */
    UNET_ATTN,        /* an AttnBlock */
    UNET_EMBEDDING    /* a table (n_in rows, n_out): the label embedding */
} UnetBlockKind;

typedef struct {
    UnetBlockKind kind;
    Conv2d *conv;     /* UNET_CONV */
    ResBlock *res;    /* UNET_RES */
    AttnBlock *attn;  /* UNET_ATTN */
    real **w, **b;    /* UNET_LINEAR, UNET_GROUPNORM (γ, β), UNET_EMBEDDING (w): the slots
                         params_alloc fills */
    int n_in, n_out;  /* UNET_LINEAR, UNET_GROUPNORM (n_out only), UNET_EMBEDDING */
    int H, W;         /* UNET_CONV: size of the input map, e.g. 28, 28 */
    int zero_init;    /* 1: the branch's last layer starts at zero (Ho et al.), e.g. conv_out */
} UnetBlock;

/* 2 linears, conv_in, per level 4·R + 4 (R res and attention down, R + 1 up, down and up
 * convs), 3 in the middle, the output group norm and conv, the label embedding */
#define UNET_MAX_BLOCKS (3 + UNET_MAX_LEVELS * (4 * UNET_MAX_RES + 4) + 3 + 3)

typedef struct {
    int C, H, W;                  /* channels base·mult[l] and feature-map size */
    int has_attn;                 /* H is in cfg.attn_res */
    /* down path */
    ResBlock down_res[UNET_MAX_RES];   Act down_res_out[UNET_MAX_RES];
    AttnBlock down_attn[UNET_MAX_RES]; Act down_attn_out[UNET_MAX_RES];
    Act *down_in[UNET_MAX_RES];       /* wiring: the input of down block b */
    Conv2d down;                  /* stride-2 3×3, C → C (all levels but the last) */
    Act down_out;                 /* (N, C, H/2, W/2) */
    /* up path: blocks take concat(h, skip) */
    Act up_cat[UNET_MAX_RES + 1];      /* (N, C_h + C_skip, H, W) */
    ResBlock up_res[UNET_MAX_RES + 1]; Act up_res_out[UNET_MAX_RES + 1];
    AttnBlock up_attn[UNET_MAX_RES + 1]; Act up_attn_out[UNET_MAX_RES + 1];
    Act *up_in[UNET_MAX_RES + 1];         /* wiring: h entering up block b */
    Act *up_skip[UNET_MAX_RES + 1];       /* wiring: the skip popped for up block b */
    Act up_near;                  /* (N, C, 2H, 2W) nearest ×2 (all levels but 0) */
    Conv2d up;                    /* 3×3, C → C, after the nearest ×2 */
    Act up_out;                   /* (N, C, 2H, 2W) */
} UnetLevel;

typedef struct {
    UnetConfig cfg;
    ParamSet *params;             /* the caller's; weights and grads of every tensor below */
    int T_emb;                    /* timestep embedding width 4·base, e.g. 128 */
    /* timestep embedding: sinusoidal(t, base) → Linear → SiLU → Linear → (SiLU in blocks) */
    real *temb1_w, *dtemb1_w, *temb1_b, *dtemb1_b;   /* (base, T_emb), (T_emb) */
    real *temb2_w, *dtemb2_w, *temb2_b, *dtemb2_b;   /* (T_emb, T_emb), (T_emb) */
    real *label_emb, *dlabel_emb; /* (K + 1, T_emb) added to temb (K > 0 only): row ∅ = K */
    int *y;                       /* (N) labels of the last forward, ∅ = K for NULL */
    real *x_in;                   /* (N, C, H, W) copy of the input x, for conv_in's dw */
    real *t_real;                 /* (N) t as real */
    real *temb0;                  /* (N, base) sinusoidal embedding */
    real *temb1, *dtemb1;         /* (N, T_emb) first linear's output */
    real *temb1_act, *dtemb1_act; /* (N, T_emb) SiLU of it */
    real *temb, *dtemb;           /* (N, T_emb) second linear's output, the embedding */
    real *temb_act, *dtemb_act;   /* (N, T_emb) SiLU(temb), input of every block's Linear */
    /* network */
    Conv2d conv_in;  Act h_in;    /* 3×3, C → base; (N, base, H, W) */
    UnetLevel level[UNET_MAX_LEVELS];
    ResBlock mid1;   Act mid1_out;
    AttnBlock mid_attn; Act mid_attn_out;
    ResBlock mid2;   Act mid2_out;
    real *out_gn_gamma, *dout_gn_gamma, *out_gn_beta, *dout_gn_beta;  /* (base) */
    real *out_gn_mean, *out_gn_rstd;  /* (N, G) */
    Act out_a;                    /* (N, base, H, W) GN output, the input of SiLU */
    Act out_s;                    /* (N, base, H, W) SiLU output, the input of conv_out */
    Conv2d conv_out;              /* 3×3, base → C, zero-initialized (Ho et al.) */
    /* bookkeeping */
    UnetBlock blocks[UNET_MAX_BLOCKS]; int n_blocks;  /* every layer with weights, in order */
    Act *acts[UNET_MAX_ACTS]; int n_acts;  /* every Act, to zero gradients and free */
    real *dx_shared[2];           /* the transient gradients' two buffers, each as large as */
    size_t dx_shared_size;        /*   the largest transient Act (reals) */
    int dx_turn;                  /* the buffer handed out last */
    real *scratch; size_t scratch_size;    /* im2col and attention matrices, shared */
    int last_N;                   /* N of the last forward, checked by the backward */
} Unet;

/* Protocol: the caller owns ps and calls params_init(ps) before; unet_init declares every
 * tensor (params_add), calls params_alloc(ps) itself (so ps must hold nothing else),
 * initializes the weights from rng, and allocates every activation and cache once for
 * cfg->max_batch. Returns 0, or -1 with a message on stderr for a bad config (ps is then
 * untouched). After unet_free(u), the caller calls params_free(ps). u must not move
 * while in use (blocks point at each other's activations). */
int unet_init(Unet *u, const UnetConfig *cfg, ParamSet *ps, Rng *rng);
void unet_free(Unet *u);

/* out (N, C, H, W) = f_θ(x (N, C, H, W), t (N), y (N)), t = 1..T; keeps what backward
 * needs. A conditional U-Net (K > 0) adds label_emb[y_n] to the timestep embedding before
 * its SiLU, so every residual block sees the class (y == NULL: ∅ for all; K = 0: NULL only). */
void unet_forward(Unet *u, real *out, const real *x, const int *t, const int *y, int N);
/* Given dout = dL/dout of the last forward: adds dL/dθ into the ParamSet's gradients
 * and, if dx is not NULL, writes dL/dx (N, C, H, W). */
void unet_backward(Unet *u, real *dx, const real *dout, int N);

Denoiser unet_denoiser(Unet *u);  /* D = C·H·W, max_batch from the config */

long unet_param_count(const Unet *u);
/* multiply-adds of one forward per image: convs, linears, attention's two matmuls */
double unet_macs_per_image(const Unet *u);
void unet_print_summary(FILE *f, const Unet *u);

#endif
