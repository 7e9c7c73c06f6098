/* denoiser.h: the network interface, the one thing ddpm.c knows about a network.
 *
 * A denoiser is f_θ(x_t, t): D numbers in, D numbers out per example, for a batch of N
 * examples stored (N, D) row-major, t = 1..T per example. What the output means (ε̂, x̂₀,
 * μ̂ or v̂) is decided by ddpm.c, never by the network, so the network sees no schedule:
 * mlp.h and unet.h include this header, not ddpm.h. Build one with designated
 * initializers, e.g. (Denoiser){ .self = m, .D = 2, .max_batch = 256, .params = ps,
 * .forward = f, .backward = b }.
 */
#ifndef DENOISER_H
#define DENOISER_H

#include "tensor.h"

typedef struct Denoiser {
    void *self;          /* the model (Mlp, Unet, or a closed-form oracle in the tests) */
    int D;               /* numbers per example: 2 for toy 2D, C*H*W for images */
    int max_batch;       /* largest N that forward accepts (buffers are sized for it) */
    ParamSet *params;    /* NULL for a model without parameters */
    int learned_var;     /* 0: forward writes D numbers per example; 1: 2 D numbers, the
                            prediction (D) then v (D), whose range sets a learned variance
                            of p_θ (Nichol & Dhariwal 2021; ddpm.h VAR_LEARNED). backward's
                            dout has the same width. Below, "(N, D)" of out and dout reads
                            (N, 2 D) for such a network. */
    /* out (N, D) = f_θ(x (N, D), t (N), y (N)); keeps what backward needs. y holds class
     * labels 0..K−1 or the null label ∅ = K of a model with K classes; y == NULL means no
     * label: an unconditional model (K = 0), or ∅ for every example of a conditional one. */
    void (*forward)(void *self, real *out, const real *x, const int *t, const int *y, int N);
    /* given dout = dL/dout (N, D) of the last forward: adds dL/dθ into params->g and,
     * if dx is not NULL, writes dL/dx (N, D). May be NULL (oracles). */
    void (*backward)(void *self, real *dx, const real *dout, int N);
} Denoiser;

#endif
