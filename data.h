/* data.h: the data the diffusion learns, and the exact answers for the 2D toy sets.
 *
 * What is here:
 *   - toy 2D sets in the coordinates a person sees: "dogcat" first, the note's picture
 *     (note 001, 직관적 이해: '개' near (10, 20), '고양이' near (5, 25)),
 *     then moons, ring, swissroll and one gaussian;
 *   - the Gaussian mixtures behind dogcat, ring and gaussian in closed form: log-density,
 *     score ∇ log p, the forward-diffused mixture q_t, and the exact optimal denoiser
 *     E[ε | x_t], E[x₀ | x_t] that a perfectly trained network would output;
 *   - standardization helpers and the energy distance between two point sets;
 *   - small grayscale digits drawn from a built-in 5x7 bitmap font (no download);
 *   - loaders for real data a user may have: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary,
 *     plain or gzipped, and labelled image sets (images + labels + class names).
 * What is not: no network, no schedule (ᾱ is passed in as a number); decompression is gz.c.
 *
 * Sizes: N = number of examples, D = data dimension (2 for the toy sets), K = mixture
 * components, C, H, W = image channels, height, width. Point sets are (N, D) row-major,
 * images (N, C, H, W). Images are in [−1, 1]: background −1, ink +1, k/127.5 − 1 for bytes.
 */
#ifndef DATA_H
#define DATA_H

#include "tensor.h"

/* ========================================================================================
 * Toy 2D sets */

typedef enum {
    TOY_DOGCAT,     /* the note's dog (10, 20) and cat (5, 25): a 2-component mixture */
    TOY_MOONS,      /* two interleaved half circles with noise (not a mixture) */
    TOY_RING,       /* 8 Gaussians evenly spaced on a circle of radius 4 */
    TOY_SWISSROLL,  /* a 2D spiral (t cos t, t sin t) with noise (not a mixture) */
    TOY_GAUSSIAN,   /* one Gaussian with a full covariance: a mixture with K = 1 */
    TOY_COUNT
} ToyKind;

/* the names indexed by ToyKind: toy_parse's table, and toy2d's --help and messages list it */
extern const char *const TOY_NAMES[TOY_COUNT];   /* "dogcat", "moons", ... */
const char *toy_name(ToyKind kind);   /* "dogcat", ... */
int toy_parse(const char *name);      /* the ToyKind for a name, or -1 if unknown */

/* x (N, 2) = N samples; label (N) or NULL = where each sample came from: the mixture
 * component for mixtures (dogcat: 0 = dog, 1 = cat; ring: 0..7), the moon (0 = upper,
 * 1 = lower) for moons, 0 for swissroll. */
void toy_sample(real *x, int *label, int N, ToyKind kind, Rng *rng);

/* A box that holds the set with a margin, for pictures: lo[d] <= x[d] <= hi[d]. */
void toy_view(ToyKind kind, double lo[2], double hi[2]);

/* ========================================================================================
 * Gaussian mixtures in 2D, in closed form:  p(x) = Σ_k w_k N(x; μ_k, Σ_k) */

#define MIX_MAX 8

typedef struct {
    int K;                          /* components, 1..MIX_MAX */
    double w[MIX_MAX];              /* weights, sum 1 */
    double mu[MIX_MAX][2];          /* means */
    double cov[MIX_MAX][2][2];      /* covariances, symmetric positive definite */
    const char *label[MIX_MAX];     /* e.g. "dog", "cat" (static strings) */
} Mixture2D;

/* Fill m with the mixture behind `kind`; 0 for dogcat, ring, gaussian, -1 for moons and
 * swissroll (m is then left with K = 0). */
int toy_mixture(ToyKind kind, Mixture2D *m);

/* x (N, 2) = N samples of the mixture; label (N) or NULL = component of each. */
void mixture_sample(const Mixture2D *m, real *x, int *label, int N, Rng *rng);

/* log p(x), by log-sum-exp over components, finite even far from every component. */
double mixture_logpdf(const Mixture2D *m, const double x[2]);

/* The score ∇_x log p(x) = Σ_k r_k(x) (−Σ_k⁻¹ (x − μ_k)), r_k the responsibilities. */
void mixture_score(const Mixture2D *m, const double x[2], double grad[2]);

/* The component most responsible for x: argmax_k w_k N(x; μ_k, Σ_k) (dog or cat?). */
int mixture_component_of(const Mixture2D *m, const double x[2]);

/* The mean and covariance of the whole mixture (law of total variance). */
void mixture_moments(const Mixture2D *m, double mean[2], double cov[2][2]);

/* The same mixture in standardized coordinates x' = (x − shift) / scale (per coordinate):
 * μ'_k = (μ_k − shift) / scale, Σ'_k[i][j] = Σ_k[i][j] / (scale_i scale_j). in may = out. */
void mixture_affine(const Mixture2D *in, const double shift[2], const double scale[2],
                    Mixture2D *out);

/* The forward process applied to a mixture (note 004, q(x_t | x₀) = N(√ᾱ x₀, (1−ᾱ) I)):
 * x_t = √ᾱ x₀ + √(1−ᾱ) ε turns every component into N(√ᾱ μ_k, ᾱ Σ_k + (1−ᾱ) I), with the
 * same weights. ᾱ = 1 is the identity, ᾱ = 0 is N(0, I). in may = out. */
void mixture_diffuse(const Mixture2D *in, double alpha_bar, Mixture2D *out);

/* The exact optimal ε-prediction for data m0 at noise level ᾱ (0 ≤ ᾱ ≤ 1; 0 at ᾱ = 1):
 *   ε*(x_t) = E[ε | x_t] = −√(1−ᾱ) ∇ log q_t(x_t),  q_t = mixture_diffuse(m0, ᾱ)
 * (Tweedie's formula; Vincent 2011, "A connection between score matching and denoising
 * autoencoders"). The minimizer of the note's loss E‖ε − ε_θ(x_t, t)‖² is exactly this. */
void mixture_eps_star(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                      double eps[2]);

/* The same ε* and its Jacobian J[i][j] = ∂ε*_i / ∂x_t[j] = −√(1−ᾱ) ∇² log q_t(x_t), in closed
 * form (symmetric): what the probability-flow ODE's exact divergence needs (ddpm.h). */
void mixture_eps_star_jacobian(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                               double eps[2], double J[2][2]);

/* The exact optimal x₀-prediction E[x₀ | x_t] (0 ≤ ᾱ ≤ 1), equal to
 * (x_t − √(1−ᾱ) E[ε | x_t]) / √ᾱ, but computed per component by Gaussian conditioning,
 *   E[x₀ | x_t, k] = μ_k + √ᾱ Σ_k (ᾱ Σ_k + (1−ᾱ) I)⁻¹ (x_t − √ᾱ μ_k),
 * weighted by the responsibilities of q_t, so it stays finite at ᾱ = 0 (the data mean). */
void mixture_x0_star(const Mixture2D *m0, double alpha_bar, const double x_t[2],
                     double x0[2]);

/* ----------------------------------------------------------------------------------------
 * Class-conditional: each component k is a class c (dogcat: 0 = dog, 1 = cat), the null
 * label ∅ = K means "any class" (classifier-free guidance, guidance.h). */

/* Component k alone, as a one-component mixture of weight 1: q(x₀ | c = k). */
void mixture_component(const Mixture2D *m, int k, Mixture2D *out);

/* The posterior P(c = k | x) = w_k N(x; μ_k, Σ_k) / p(x) (the responsibility of k). */
double mixture_posterior(const Mixture2D *m, const double x[2], int k);

/* The exact class-conditional denoiser: component c diffused in closed form,
 *   ε*(x_t, c) = E[ε | x_t, c] = −√(1−ᾱ) ∇ log q_t(x_t | c),
 * q_t(·|c) = mixture_diffuse(component c, ᾱ); c = m0->K (∅) is mixture_eps_star. */
void mixture_eps_star_cond(const Mixture2D *m0, double alpha_bar, const double x_t[2], int c,
                           double eps[2]);

/* The exact guided field (guidance.h): ε̃ = ε*(x_t, c) + w (ε*(x_t, c) − ε*(x_t, ∅)), which
 * is −√(1−ᾱ) ∇ log [q_t(x_t|c)^{1+w} q_t(x_t)^{−w}] at every ᾱ. */
void mixture_eps_guided(const Mixture2D *m0, double alpha_bar, const double x_t[2], int c,
                        double w, double eps[2]);

/* The tilted density p_w(x₀) ∝ q(x₀|c)^{1+w} q(x₀)^{−w} (w >= 0), which guidance is often
 * said to sample and does not. Since q(x₀|c)/q(x₀) = P(c|x₀)/w_c ≤ 1/w_c,
 *   p_w(x₀) ∝ q(x₀|c) P(c|x₀)^w,
 * so rejection from q(x₀|c) with acceptance P(c|x₀)^w ≤ 1 draws it exactly. x (N, 2);
 * returns the acceptance rate (the normalizer E_{q(·|c)}[P(c|x₀)^w]). */
double tilted_sample(const Mixture2D *m, int c, double w, real *x, int N, Rng *rng);

/* ========================================================================================
 * Standardization and the energy distance */

/* Per coordinate over N rows of D: mean[d] and std[d] = √(Σ (x − mean)² / N) (the
 * population form). A constant coordinate gets std 1, so standardizing only shifts it. */
void data_mean_std(const real *x, int N, int D, double *mean, double *std);
/* x = (x − mean) / std in place, and back: x = x std + mean. x (N, D). */
void standardize(real *x, int N, int D, const double *mean, const double *std);
void unstandardize(real *x, int N, int D, const double *mean, const double *std);

/* Energy distance (Székely & Rizzo) between point sets a (na, D) and b (nb, D):
 *   E(A, B) = 2 E‖A − B‖ − E‖A − A'‖ − E‖B − B'‖
 * in the V-statistic form (every pair, including i = j, averaged over na², nb², na nb), which
 * is never negative and is exactly 0 for identical sets. O((na + nb)²) distances, in double;
 * n = 2000 takes a few tens of milliseconds. In 1D it equals 2 ∫ (F_A − F_B)² dx. */
double energy_distance(const real *a, int na, const real *b, int nb, int D);

/* ========================================================================================
 * Built-in digits: 0-9 from a 5x7 bitmap font, drawn as round strokes between neighbouring
 * pixels of the bitmap, with random size, position, slant and stroke width, anti-aliased.
 * Any H, W from 8 to 256 (e.g. 16x16, 28x28). */

/* x (H, W) = one image of `digit` (0..9), values in [−1, 1]. */
void digit_render(real *x, int digit, int H, int W, Rng *rng);
/* x (N, 1, H, W) = N images of uniformly random digits; label (N) or NULL = the digits. */
void digits_sample(real *x, int *label, int N, int H, int W, Rng *rng);

/* ========================================================================================
 * Loaders. Each returns 0 on success, or -1 after printing ONE line to stderr that names
 * the file, the problem and the fix; nothing is allocated on failure. max_n > 0 loads at
 * most max_n examples (the first ones); max_n <= 0 loads all. A gzip file (magic 1f 8b,
 * e.g. train-images-idx3-ubyte.gz) is decompressed on the way by gz.c, with its CRC-32
 * and length checked. Free the outputs with data_free. */

/* IDX images (MNIST, Fashion-MNIST): magic 0x00000803, then N, rows, cols as big-endian
 * 32-bit numbers, then N·rows·cols bytes. *out (N, 1, H, W) = byte / 127.5 − 1. A side
 * (rows, cols) is at most IDX_MAX_SIDE. */
#define IDX_MAX_SIDE 4096
int load_idx_images(const char *path, real **out, int *N, int *H, int *W, int max_n);
/* IDX labels: magic 0x00000801, then N, then N bytes. *labels (N). */
int load_idx_labels(const char *path, int **labels, int *N, int max_n);

/* CIFAR-10 binary (data_batch_1.bin ...): records of 1 label byte (0..9) and 3072 pixel
 * bytes, 3x32x32 channel-major (R plane, G plane, B plane). *out (N, 3, 32, 32) in
 * [−1, 1], *labels (N). */
int load_cifar10(const char *path, real **out, int **labels, int *N, int max_n);

/* The same three on a file already in memory (n bytes at mem, plain or gzipped; `name`
 * is what the message calls it), for the fuzz targets (tests/fuzz/). */
int load_idx_images_mem(const unsigned char *mem, size_t n, const char *name, real **out,
                        int *N, int *H, int *W, int max_n);
int load_idx_labels_mem(const unsigned char *mem, size_t n, const char *name, int **labels,
                        int *N, int max_n);
int load_cifar10_mem(const unsigned char *mem, size_t n, const char *name, real **out,
                     int **labels, int *N, int max_n);

void data_free(void *p);

/* ========================================================================================
 * Labelled image sets: what the image programs train on and evaluate with. */

typedef struct {
    real *x;                        /* (N, C, H, W) in [−1, 1] */
    int *label;                     /* (N) class 0..classes-1 of each image, or NULL */
    int N, C, H, W;
    int classes;                    /* 10 when labelled, 0 when label is NULL */
    const char *const *class_name;  /* (10) e.g. "Sandal", for printouts */
} ImageSet;

/* Load the images of `path`, told apart by content (plain or gzipped): IDX images, with
 * the labels of the file beside it if there is one (train-images-idx3-ubyte[.gz] ->
 * train-labels-idx1-ubyte[.gz], either compression; its count must equal the images'
 * count in both headers, every label 0..9), or a CIFAR-10 batch (labels inside). Class
 * names: Fashion-MNIST's when the path contains "fashion", else the digits or CIFAR's.
 * 0, or -1 after one line (set is then empty). */
int image_set_load(ImageSet *set, const char *path, int max_n);
/* N built-in digits (H, W) with their digits as labels. */
void image_set_digits(ImageSet *set, int N, int H, int W, Rng *rng);
void image_set_free(ImageSet *set);

/* The labels file beside an IDX images file: the name's "-images-idx3-ubyte" becomes
 * "-labels-idx1-ubyte" (the directory and any ".gz" kept). 0, or -1 if the file name has
 * no "-images-idx3-ubyte" or out (out_size bytes) is too small. */
int idx_labels_path(const char *images_path, char *out, size_t out_size);

#endif
