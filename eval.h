/* eval.h: measuring generated images against real ones, without looking at a grid.
 *
 * What is here:
 *   - the Fréchet distance of generated images' classifier features to held-out real
 *     images' features, beside its FLOOR: the same distance between two disjoint held-out
 *     real sets of the same size (two real sets are not at distance 0: finite samples);
 *   - the class histogram of the samples by the classifier (does every class appear?);
 *   - the memorization check: the distance of each sample to its nearest training image,
 *     beside the same distance for held-out real images (a model that copies its training
 *     images would have samples much closer than real images are);
 *   - the forward-noising strip: real images at several t by q_sample (note 004).
 * What is not: no sampling (the program samples), no pictures (the program draws the
 * images this module returns), no training of the classifier (classifier.c).
 *
 * Distances between images are per pixel, RMS: ‖a − b‖ / √D on the [−1, 1] scale.
 * Sizes: n = images per set, D = C·H·W numbers per image, K = classes.
 */
#ifndef EVAL_H
#define EVAL_H

#include "classifier.h"
#include "schedule.h"

#define EVAL_MAX_CLASSES 10

typedef struct {
    const real *train;      /* (n_train, C, H, W) the training images (memorization) */
    int n_train;
    const real *held;       /* (n_held, C, H, W) held-out real images, n_held ≥ 2n: set A is */
    int n_held;             /*   the first n, set B the next n */
    const int *held_label;  /* (n_held) their classes, for the accuracy, or NULL */
    int C, H, W;
} EvalSets;

typedef struct {
    int n;                           /* images in each set */
    double fd;                       /* FD(samples, A) */
    double fd_floor;                 /* FD(B, A) */
    double accuracy;                 /* the classifier on all held-out images (−1: no labels) */
    int classes;                     /* K */
    int hist[EVAL_MAX_CLASSES];      /* samples per predicted class */
    int hist_real[EVAL_MAX_CLASSES]; /* set A per predicted class */
    /* nearest training image, RMS per pixel: quantiles over the samples and over set A */
    double nn_gen[3], nn_real[3];    /* minimum, 5th percentile, median */
    int near_copies;                 /* samples closer to the training set than every image of A */
} EvalResult;

/* x (n numbers) in place onto the 8-bit grid of a saved picture: k/127.5 − 1 with
 * k = round((x + 1) · 127.5) clipped to 0..255. Samples are measured as an image file
 * would hold them (as FID is computed on saved images): a sample value of 3 is white. */
void to_pixel_grid(real *x, size_t n);

/* dist (na) = the RMS distance of each a[i] (na, D) to its nearest train image, idx (na)
 * = that image. Exact (every pair); blocks of the training set are transposed so that the
 * inner loop runs contiguously over training images. */
void nearest_training_image(double *dist, int *idx, const real *a, int na, const real *train,
                            int n_train, int D);

/* Everything above for the n samples gen (n, C, H, W); gen_nn_idx and gen_nn_dist (n) get
 * each sample's nearest training image (for the closest-pairs picture). */
void eval_samples(EvalResult *r, Classifier *c, const real *gen, int n, const EvalSets *sets,
                  int *gen_nn_idx, double *gen_nn_dist);

/* Print the result in a few lines (names: the K class names). */
void eval_print(FILE *f, const EvalResult *r, const char *const *names);

/* pairs (2k, C, H, W) = the k samples closest to a training image (first k), then their
 * nearest training images (next k), in increasing distance: a grid of k columns. */
void eval_closest_pairs(real *pairs, int k, const real *gen, int n, const int *nn_idx,
                        const double *nn_dist, const EvalSets *sets);

/* strip (rows · n_t, D) = rows real images x0 (rows, D) at each t of ts (n_t, 0 = x0 itself),
 * x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε with ONE ε per row (so a row shows the same noise growing):
 * a grid of n_t columns. */
void forward_strip(real *strip, const real *x0, int rows, const int *ts, int n_t,
                   const Schedule *s, int D, Rng *rng);

#endif
