/* guidance.c: label dropout for training and classifier-free guidance for sampling
 * (see guidance.h for the formula, its conventions and what it does not sample).
 * Sizes: N = batch, D = numbers per example, K = classes.
 */
#include "guidance.h"

#include <stdlib.h>
#include <string.h>

/* ========================================================================================
 * 1. Training: label dropout
 *
 *   c ← ∅ with probability p_uncond          (Ho & Salimans 2022, Algorithm 1)
 */

int label_dropout(int *y, int N, int K, double p_uncond, Rng *rng) {
    if (K < 1) die("label_dropout: K = %d, needs a conditional model (K >= 1)", K);
    if (!(p_uncond >= 0.0 && p_uncond <= 1.0))
        die("label_dropout: p_uncond = %g must be in [0, 1]", p_uncond);
    int nulls = 0;
    for (int n = 0; n < N; n++) {
        double u = rng_uniform(rng);           /* one draw per example, always */
        if (u < p_uncond) y[n] = K;
        nulls += y[n] == K;
    }
    return nulls;
}

/* ========================================================================================
 * 2. Sampling: the guided denoiser
 *
 *   ε̃(x_t, t, c) = ε̂(x_t, t, c) + w (ε̂(x_t, t, c) − ε̂(x_t, t, ∅))
 */

void guided_init(Guided *g, Denoiser *net, double w) {
    g->net = net;
    g->w = w;
    size_t width = (size_t)net->D * (1 + net->learned_var);   /* numbers out per example */
    g->out_null = xmalloc((size_t)net->max_batch * width * sizeof(real), "guidance output");
}

void guided_free(Guided *g) {
    free(g->out_null);
    g->out_null = NULL;
}

static void guided_forward(void *self, real *out, const real *x, const int *t, const int *y,
                           int N) {
    Guided *g = self;
    Denoiser *net = g->net;
    int D = net->D, width = D * (1 + net->learned_var);
    net->forward(net->self, out, x, t, y, N);              /* ε̂(x_t, t, c) */
    net->forward(net->self, g->out_null, x, t, NULL, N);   /* ε̂(x_t, t, ∅) */
    for (int n = 0; n < N; n++) {
        real *o = out + (size_t)n * width;                 /* seek to out[n, :] */
        const real *o_null = g->out_null + (size_t)n * width;
        for (int i = 0; i < D; i++) o[i] = o[i] + (real)(g->w * (o[i] - o_null[i]));
        /* a learned variance's v (numbers D..2D−1) stays the conditional one's */
    }
}

Denoiser guided_denoiser(Guided *g) {
    return (Denoiser){ .self = g, .D = g->net->D, .max_batch = g->net->max_batch,
                       .params = NULL, .learned_var = g->net->learned_var,
                       .forward = guided_forward, .backward = NULL };
}


/* ========================================================================================
 * 3. Measuring a class-conditional 2D sampler */

void class_measure(ClassMeasure *m, const real *samples, int N, int R, const Mixture2D *mix,
                   int c, double w, Rng *rng) {
    Mixture2D one;
    mixture_component(mix, c, &one);
    size_t all = (size_t)N * R;
    int hits = 0;
    memset(m, 0, sizeof *m);
    for (size_t n = 0; n < all; n++) {                     /* share, mean */
        double p[2] = { samples[2 * n], samples[2 * n + 1] };
        hits += mixture_component_of(mix, p) == c;
        for (int i = 0; i < 2; i++) m->mean[i] += p[i] / (double)all;
    }
    m->share = (double)hits / (double)all;
    for (size_t n = 0; n < all; n++)                       /* covariance */
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                m->cov[i][j] += (samples[2 * n + i] - m->mean[i]) *
                                (samples[2 * n + j] - m->mean[j]) / (double)all;
    m->cov_ratio = (m->cov[0][0] + m->cov[1][1]) / (one.cov[0][0][0] + one.cov[0][1][1]);

    real *a = xmalloc((size_t)N * 2 * sizeof(real), "measure target");
    real *b = xmalloc((size_t)N * 2 * sizeof(real), "measure target");
    double acc = 0.0;
    for (int r = 0; r < R; r++) {                          /* against fresh target sets */
        const real *set = samples + (size_t)r * N * 2;
        mixture_sample(&one, a, NULL, N, rng);
        m->ed_cond += energy_distance(set, N, a, N, 2) / R;
        acc += tilted_sample(mix, c, w, a, N, rng) / R;
        m->ed_tilted += energy_distance(set, N, a, N, 2) / R;
    }
    m->tilted_accept = acc;
    for (int r = 0; r < 2 * R; r++) {                      /* two target sets: the floors */
        mixture_sample(&one, a, NULL, N, rng);
        mixture_sample(&one, b, NULL, N, rng);
        m->ed_cond_floor += energy_distance(a, N, b, N, 2) / (2 * R);
        tilted_sample(mix, c, w, a, N, rng);
        tilted_sample(mix, c, w, b, N, rng);
        m->ed_tilted_floor += energy_distance(a, N, b, N, 2) / (2 * R);
    }
    free(a);
    free(b);
}
