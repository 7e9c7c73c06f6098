/* guidance.h: class-conditional diffusion and classifier-free guidance (Ho & Salimans,
 * 2022, "Classifier-Free Diffusion Guidance").
 *
 * Note 001 (확산 모델, 직관적 이해) says: to generate a *dog*, the particles climb the dog
 * hill. A conditional denoiser ε̂(x_t, t, c) learns that, one label c per example; with
 * label dropout the same network also learns the unconditional ε̂(x_t, t, ∅), and the two
 * are mixed at sampling time:
 *
 *   ε̃(x_t, t, c) = (1 + w) ε̂(x_t, t, c) − w ε̂(x_t, t, ∅)                          (CFG)
 *
 * Convention: w is Ho & Salimans' guidance strength. w = 0 is plain conditional sampling,
 * w > 0 pushes away from the unconditional prediction, w = −1 is unconditional sampling.
 * Others write the same formula with a guidance scale γ = 1 + w (e.g. GLIDE, Stable
 * Diffusion's "cfg scale" s: ε̃ = ε̂_∅ + s (ε̂_c − ε̂_∅), s = γ = 1 + w; s = 1 is plain
 * conditional). In scores, ε = −√(1 − ᾱ_t) ∇ log q_t, so ε̃ is the score of
 *   q_t(x_t | c)^{1+w} q_t(x_t)^{−w}   at every t
 * (data.h's mixture_eps_guided computes it exactly for the dog/cat mixture). That is NOT
 * the diffused tilted density q(x₀|c)^{1+w} q(x₀)^{−w}: guidance does not sample a fixed
 * target; toy2d --guidance-sweep measures the difference.
 *
 * Labels: a model with K classes takes y_n ∈ {0..K−1} and the null label ∅ = K (the
 * Denoiser interface, ddpm.h). Sizes: N = batch, D = numbers per example, K = classes.
 */
#ifndef GUIDANCE_H
#define GUIDANCE_H

#include "data.h"
#include "ddpm.h"

/* Label dropout (Ho & Salimans, Algorithm 1): each y_n is replaced by ∅ = K with
 * probability p_uncond, independently, in place. One uniform draw per example (N draws
 * whatever p_uncond is). Returns how many labels are ∅ afterwards. */
int label_dropout(int *y, int N, int K, double p_uncond, Rng *rng);

/* Classifier-free guidance as a Denoiser around a conditional one: its forward runs the
 * network twice, with the labels y it is given and with ∅ (y = NULL), and returns
 *   out = out_c + w (out_c − out_∅)        = (1 + w) out_c − w out_∅
 * for every number of the output. For ε-prediction that is (CFG) itself. For x̂₀, μ̂ and
 * v̂ it is the same guided ε̃: each of them is, at fixed x_t and t, an affine function
 * a x_t + b ε of ε (ddpm.h), and weights that sum to one (1 + w − w = 1) commute with it.
 * Written as out_c + w (out_c − out_∅), w = 0 returns out_c bit for bit. A network with a
 * learned variance (learned_var, denoiser.h) has its prediction guided and keeps the
 * conditional v, as Nichol et al.'s GLIDE does. No backward: guidance is for sampling. */
typedef struct {
    Denoiser *net;      /* the conditional network (K > 0, trained with label dropout) */
    double w;           /* guidance strength, e.g. 1 (γ = 1 + w = 2) */
    real *out_null;     /* (max_batch, D) the network's output with ∅ ((max_batch, 2 D) for
                           a learned variance) */
} Guided;

void guided_init(Guided *g, Denoiser *net, double w);
void guided_free(Guided *g);
Denoiser guided_denoiser(Guided *g);   /* same D and max_batch as the network */

/* ----------------------------------------------------------------------------------------
 * Measuring a class-conditional 2D sampler against the exact answers (the dog/cat mixture).
 * All in the coordinates of `mix` (the notes' coordinates in the programs). */
typedef struct {
    double share;            /* fraction of samples whose most likely component is c */
    double mean[2], cov[2][2];   /* of the samples */
    double cov_ratio;        /* tr Cov(samples) / tr Σ_c: the spread against the component's */
    double ed_cond, ed_cond_floor;      /* energy distance to q(x₀|c), and its noise floor */
    double ed_tilted, ed_tilted_floor;  /* ... to the tilted density p_w (tilted_sample) */
    double tilted_accept;    /* acceptance rate of the tilted sampler (1: p_w = q(x₀|c)) */
} ClassMeasure;

/* samples: R sets of N points (R N, 2) drawn for class c (with guidance w, for the tilted
 * target). Each energy distance is the mean over the R sets, each against a fresh target
 * set of N; its floor is the mean over 2 R pairs of independent target sets of N (the
 * same statistic when the samples are perfect). */
void class_measure(ClassMeasure *m, const real *samples, int N, int R, const Mixture2D *mix,
                   int c, double w, Rng *rng);

#endif
