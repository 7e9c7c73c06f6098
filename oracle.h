/* oracle.h: the exact optimal denoiser of a 2D Gaussian mixture, as a Denoiser.
 *
 * forward returns, for each x_t, the target of the chosen parametrization built from
 * ε* = E[ε | x_t] (data.c mixture_eps_star), i.e. what a perfectly trained network would
 * output. With labels y (denoiser.h) it is the exact class-conditional denoiser of the
 * mixture: for y_n = c < K the ε* of component c diffused alone, for ∅ = K (or y = NULL)
 * the whole mixture's (data.h mixture_eps_star_cond; guidance.h). Backward returns the vector-Jacobian product with its exact Jacobian
 * (mixture_eps_star_jacobian), so the probability-flow ODE's likelihood (ddpm.h) can be
 * taken of the exact denoiser, and compared with the mixture's true density.
 * Not here: parameters (params is NULL, backward adds no parameter gradient).
 * Sizes: N = batch, D = 2.
 */
#ifndef ORACLE_H
#define ORACLE_H

#include "data.h"
#include "ddpm.h"

typedef struct {
    Mixture2D mix;          /* the data's mixture in the coordinates the diffusion sees */
    const Schedule *s;
    Parametrization param;  /* what forward returns: ε*, x₀*, μ* or v* */
    int max_batch;          /* e.g. 2000 */
    double *jac;            /* (max_batch, 2, 2) ∂out/∂x_t of the last forward, for backward */
} MixtureOracle;

void mixture_oracle_init(MixtureOracle *o, const Mixture2D *mix, const Schedule *s,
                         Parametrization param, int max_batch);
void mixture_oracle_free(MixtureOracle *o);
Denoiser mixture_oracle_denoiser(MixtureOracle *o);

#endif
