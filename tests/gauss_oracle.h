/* gauss_oracle.h: the exact optimal denoiser for 2D Gaussian data, for the tests.
 *
 * Data x₀ ~ N(m, Σ) (Σ is `S` in code). Under the forward process x_t ~ N(√ᾱ_t m, Σ_t),
 * Σ_t = ᾱ_t Σ + (1 − ᾱ_t) I, and the minimizer of every loss of ddpm.c is the posterior
 * mean, in closed form:
 *   E[ε | x_t]  = √(1 − ᾱ_t) Σ_t⁻¹ (x_t − √ᾱ_t m)
 *   E[x₀ | x_t] = (x_t − √(1 − ᾱ_t) E[ε | x_t]) / √ᾱ_t
 * The oracle returns the target of any parametrization built from these two, so a sampler
 * or a bound driven by it shows the error of the method alone, not of a network.
 */
#ifndef GAUSS_ORACLE_H
#define GAUSS_ORACLE_H

#include "../ddpm.h"

typedef struct { const Schedule *s; Parametrization p; double m[2], S[2][2]; } Oracle;

static inline void oracle_forward(void *self, real *out, const real *x, const int *t,
                                  const int *y, int N) {
    Oracle *o = self;
    (void)y;   /* one Gaussian, no labels */
    for (int n = 0; n < N; n++) {
        double ab = o->s->alpha_bar[t[n]], sa = sqrt(ab), sb = sqrt(1 - ab);
        double a = ab * o->S[0][0] + (1 - ab), b = ab * o->S[0][1];
        double d = ab * o->S[1][1] + (1 - ab), det = a * d - b * b;
        double r0 = x[2 * n] - sa * o->m[0], r1 = x[2 * n + 1] - sa * o->m[1];
        real eps[2] = { (real)(sb * (d * r0 - b * r1) / det), (real)(sb * (-b * r0 + a * r1) / det) };
        real x0[2];
        predict_x0_from_eps(x0, x + 2 * n, eps, o->s, t + n, 1, 2);
        prediction_target(out + 2 * n, o->p, x0, eps, x + 2 * n, o->s, t + n, 1, 2);
    }
}

static inline Denoiser oracle_denoiser(Oracle *o) {
    return (Denoiser){ .self = o, .D = 2, .max_batch = 1 << 20, .forward = oracle_forward };
}

/* Cov[x₀ | x_t] = Σ − ᾱ_t Σ Σ_t⁻¹ Σ, the same for every x_t; returns its trace */
static inline double oracle_posterior_trace(const Oracle *o, double abar) {
    const double (*S)[2] = o->S;
    double a = abar * S[0][0] + (1 - abar), b = abar * S[0][1], d = abar * S[1][1] + (1 - abar);
    double det = a * d - b * b;
    double Ki[2][2] = { { d / det, -b / det }, { -b / det, a / det } };
    double tr = S[0][0] + S[1][1];
    for (int i = 0; i < 2; i++)            /* tr(S K S), K = Σ_t⁻¹ */
        for (int j = 0; j < 2; j++)
            for (int l = 0; l < 2; l++) tr -= abar * S[i][j] * Ki[j][l] * S[l][i];
    return tr;
}

#endif
