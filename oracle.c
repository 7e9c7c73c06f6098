/* oracle.c: the exact optimal denoiser of a 2D mixture (see oracle.h).
 *
 * forward: ε* and J_ε = ∂ε* / ∂x_t from data.c; the output is the parametrization's
 *          target built from ε* and x̂₀ = (x_t − √(1 − ᾱ_t) ε*)/√ᾱ_t (ddpm.c prediction_target),
 *          which is affine in ε* and x_t (ddpm.c eps_affine: ε̂ = a x_t + b out), so
 *          ∂out/∂x_t = (J_ε − a I)/b.
 * backward: dx = (∂out/∂x_t)ᵀ dout.
 */
#include "oracle.h"

#include <stdlib.h>
#include <string.h>

void mixture_oracle_init(MixtureOracle *o, const Mixture2D *mix, const Schedule *s,
                         Parametrization param, int max_batch) {
    if (max_batch < 1) die("mixture_oracle_init: max_batch %d < 1", max_batch);
    o->mix = *mix;
    o->s = s;
    o->param = param;
    o->max_batch = max_batch;
    o->jac = xmalloc((size_t)max_batch * 4 * sizeof(double), "oracle Jacobians");
}

void mixture_oracle_free(MixtureOracle *o) {
    free(o->jac);
    memset(o, 0, sizeof *o);
}

static void oracle_forward(void *self, real *out, const real *x, const int *t, const int *y,
                           int N) {
    MixtureOracle *o = self;
    if (N > o->max_batch) die("oracle forward: batch %d > max_batch %d", N, o->max_batch);
    int K = o->mix.K;
    for (int n = 0; n < N; n++) {
        /* label c < K: the class-conditional ε*(x_t, c) of component c alone (guidance.h);
         * ∅ (c = K, or y == NULL): the whole mixture's ε* */
        int c = y ? y[n] : K;
        if (c < 0 || c > K) die("oracle forward: label %d is not a class 0..%d or %d", c, K - 1, K);
        Mixture2D one;
        if (c < K) mixture_component(&o->mix, c, &one);
        double xt[2] = { x[2 * n], x[2 * n + 1] }, e[2], J[2][2], a, b;
        mixture_eps_star_jacobian(c < K ? &one : &o->mix, o->s->alpha_bar[t[n]], xt, e, J);
        /* the target of the parametrization, by ddpm.c's own conversions from ε* */
        real eps[2] = { (real)e[0], (real)e[1] }, x0[2];
        predict_x0_from_eps(x0, x + 2 * n, eps, o->s, t + n, 1, 2);
        prediction_target(out + 2 * n, o->param, x0, eps, x + 2 * n, o->s, t + n, 1, 2);
        eps_affine(&a, &b, o->param, o->s, t[n]);      /* out = (ε* − a x_t)/b */
        double *jac = o->jac + 4 * n;                  /* seek to ∂out_n/∂x_n, (2, 2) */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) jac[2 * i + j] = (J[i][j] - (i == j ? a : 0.0)) / b;
    }
}

/* forward: out_n = f(x_n), so dL/dx_n[j] = Σ_i dout_n[i] ∂out_n[i]/∂x_n[j] */
static void oracle_backward(void *self, real *dx, const real *dout, int N) {
    MixtureOracle *o = self;
    if (!dx) return;
    for (int n = 0; n < N; n++) {
        const double *jac = o->jac + 4 * n;
        for (int j = 0; j < 2; j++)
            dx[2 * n + j] = (real)(dout[2 * n] * jac[j] + dout[2 * n + 1] * jac[2 + j]);
    }
}

Denoiser mixture_oracle_denoiser(MixtureOracle *o) {
    return (Denoiser){ .self = o, .D = 2, .max_batch = o->max_batch, .params = NULL,
                       .forward = oracle_forward, .backward = oracle_backward };
}
