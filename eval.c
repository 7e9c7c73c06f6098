/* eval.c: FD beside its floor, the class histogram, the memorization check and the
 * forward-noising strip (see eval.h).
 *
 * Reading order: nearest training image, the evaluation, printing, the two pictures'
 * contents.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ddpm.h"
#include "frechet.h"

/* ========================================================================================
 * The pixel grid */

void to_pixel_grid(real *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double k = floor((x[i] + 1.0) * 127.5 + 0.5);   /* round half up */
        k = k < 0 ? 0 : k > 255 ? 255 : k;              /* a NaN stays NaN */
        x[i] = (real)(k / 127.5 - 1.0);
    }
}

/* ========================================================================================
 * Nearest training image. ‖a − t_j‖² for one query a and a block of B training images:
 * with the block transposed to (D, B), the loop over j is contiguous,
 *   d2[j] += (tT[p, j] − a[p])²   for p = 0..D−1,
 * a multiply-add over j that the compiler vectorizes (a sum over p would be a reduction). */

#define NN_BLOCK 256

void nearest_training_image(double *dist, int *idx, const real *a, int na, const real *train,
                            int n_train, int D) {
    real *tT = xmalloc((size_t)D * NN_BLOCK * sizeof(real), "transposed training block");
    real *d2 = xmalloc(NN_BLOCK * sizeof(real), "squared distances");
    double *best = xmalloc((size_t)na * sizeof(double), "nearest distance");
    for (int i = 0; i < na; i++) { best[i] = INFINITY; idx[i] = -1; }
    for (int j0 = 0; j0 < n_train; j0 += NN_BLOCK) {
        int B = n_train - j0 < NN_BLOCK ? n_train - j0 : NN_BLOCK;
        for (int j = 0; j < B; j++)
            for (int p = 0; p < D; p++) tT[(size_t)p * B + j] = train[(size_t)(j0 + j) * D + p];
        for (int i = 0; i < na; i++) {
            const real *ai = a + (size_t)i * D;   /* seek to a[i, :] */
            for (int j = 0; j < B; j++) d2[j] = 0;
            for (int p = 0; p < D; p++) {
                const real *row = tT + (size_t)p * B, ap = ai[p];
                for (int j = 0; j < B; j++) d2[j] += (row[j] - ap) * (row[j] - ap);
            }
            for (int j = 0; j < B; j++)
                if (d2[j] < best[i]) { best[i] = d2[j]; idx[i] = j0 + j; }
        }
    }
    for (int i = 0; i < na; i++) dist[i] = sqrt(best[i] / D);
    free(best); free(d2); free(tT);
}

/* ========================================================================================
 * The evaluation */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* q[0] = minimum, q[1] = 5th percentile, q[2] = median of v (n), by sorting a copy */
static void quantiles(double q[3], const double *v, int n) {
    double *s = xmalloc((size_t)n * sizeof(double), "sorted");
    memcpy(s, v, (size_t)n * sizeof(double));
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    q[0] = s[0];
    q[1] = s[(int)(0.05 * (n - 1))];
    q[2] = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
}

static void histogram(int *hist, int K, Classifier *c, const real *x, int n) {
    int *pred = xmalloc((size_t)n * sizeof(int), "predictions");
    classifier_predict(c, pred, x, n);
    for (int k = 0; k < K; k++) hist[k] = 0;
    for (int i = 0; i < n; i++) hist[pred[i]]++;
    free(pred);
}

void eval_samples(EvalResult *r, Classifier *c, const real *gen, int n, const EvalSets *sets,
                  int *gen_nn_idx, double *gen_nn_dist) {
    memset(r, 0, sizeof *r);
    int D = sets->C * sets->H * sets->W, F = c->cfg.features;
    if (sets->n_held < 2 * n)
        die("eval: %d held-out images, need 2 x %d (two real sets for the floor)", sets->n_held, n);
    r->n = n;
    r->classes = c->cfg.classes < EVAL_MAX_CLASSES ? c->cfg.classes : EVAL_MAX_CLASSES;
    const real *set_a = sets->held, *set_b = sets->held + (size_t)n * D;

    /* FD of the features: samples against A, and the floor B against A */
    real *fg = xmalloc((size_t)n * F * sizeof(real), "sample features");
    real *fa = xmalloc((size_t)n * F * sizeof(real), "real features A");
    real *fb = xmalloc((size_t)n * F * sizeof(real), "real features B");
    classifier_features(c, fg, gen, n);
    classifier_features(c, fa, set_a, n);
    classifier_features(c, fb, set_b, n);
    r->fd = frechet_distance_sets(fg, n, fa, n, F);
    r->fd_floor = frechet_distance_sets(fb, n, fa, n, F);
    free(fb); free(fa); free(fg);

    r->accuracy = sets->held_label
                      ? classifier_accuracy(c, sets->held, sets->held_label, sets->n_held)
                      : -1.0;
    histogram(r->hist, r->classes, c, gen, n);
    histogram(r->hist_real, r->classes, c, set_a, n);

    /* memorization: nearest training image of each sample and of each image of A */
    double *real_dist = xmalloc((size_t)n * sizeof(double), "real NN distances");
    int *real_idx = xmalloc((size_t)n * sizeof(int), "real NN index");
    nearest_training_image(gen_nn_dist, gen_nn_idx, gen, n, sets->train, sets->n_train, D);
    nearest_training_image(real_dist, real_idx, set_a, n, sets->train, sets->n_train, D);
    quantiles(r->nn_gen, gen_nn_dist, n);
    quantiles(r->nn_real, real_dist, n);
    for (int i = 0; i < n; i++) r->near_copies += gen_nn_dist[i] < r->nn_real[0];
    free(real_idx); free(real_dist);
}

/* ========================================================================================
 * Printing */

void eval_print(FILE *f, const EvalResult *r, const char *const *names) {
    fprintf(f, "eval: FD %.4f against %d held-out real images; floor (a second real set of "
            "%d) %.4f; ratio %.2f\n", r->fd, r->n, r->n, r->fd_floor,
            r->fd / fmax(r->fd_floor, 1e-300));
    if (r->accuracy >= 0)
        fprintf(f, "eval: classifier accuracy on the held-out images %.2f%%\n",
                100 * r->accuracy);
    int missing = 0;
    fprintf(f, "eval: classes of the samples (real set A in brackets):");
    for (int k = 0; k < r->classes; k++) {
        fprintf(f, "%s %s %d (%d)", k ? "," : "", names ? names[k] : "", r->hist[k],
                r->hist_real[k]);
        missing += r->hist[k] == 0;
    }
    fprintf(f, "\neval: %s\n", missing ? "some classes never appear among the samples"
                                       : "every class appears among the samples");
    fprintf(f, "eval: nearest training image, RMS per pixel (min / 5%% / median): samples "
            "%.3f / %.3f / %.3f, held-out real %.3f / %.3f / %.3f\n", r->nn_gen[0],
            r->nn_gen[1], r->nn_gen[2], r->nn_real[0], r->nn_real[1], r->nn_real[2]);
    fprintf(f, "eval: %d of %d samples are closer to a training image than any held-out "
            "real image is (near-copies)\n", r->near_copies, r->n);
}

/* ========================================================================================
 * The two pictures' contents */

void eval_closest_pairs(real *pairs, int k, const real *gen, int n, const int *nn_idx,
                        const double *nn_dist, const EvalSets *sets) {
    size_t D = (size_t)sets->C * sets->H * sets->W;
    int *order = xmalloc((size_t)n * sizeof(int), "order");
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)              /* insertion sort by distance, stable */
        for (int j = i; j > 0 && nn_dist[order[j - 1]] > nn_dist[order[j]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    for (int m = 0; m < k; m++) {
        int i = order[m < n ? m : n - 1];
        memcpy(pairs + m * D, gen + i * D, D * sizeof(real));
        memcpy(pairs + (k + m) * D, sets->train + (size_t)nn_idx[i] * D, D * sizeof(real));
    }
    free(order);
}

void forward_strip(real *strip, const real *x0, int rows, const int *ts, int n_t,
                   const Schedule *s, int D, Rng *rng) {
    real *eps = xmalloc((size_t)D * sizeof(real), "strip noise");
    for (int r = 0; r < rows; r++) {
        rng_fill_normal(rng, eps, (size_t)D);
        for (int c = 0; c < n_t; c++)   /* x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε, the same ε */
            q_sample(strip + ((size_t)r * n_t + c) * D, x0 + (size_t)r * D, eps, s, &ts[c], 1, D);
    }
    free(eps);
}
