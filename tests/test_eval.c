/* test_eval.c: the pieces of eval.c.
 *
 *   1. nearest_training_image against a plain double loop over every pair (blocks of 256
 *      crossed: 300 training images)
 *   2. eval_samples: samples that ARE set B give FD = the floor exactly; samples that are
 *      training images are all near-copies at distance 0; histograms count every sample
 *   3. forward_strip: t = 0 is x₀; every column of a row carries the same ε
 *   4. eval_closest_pairs: the closest sample first, beside its training image
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../eval.h"
#include "harness.h"

#define TOL_DIST 1e-12   /* double sums of ~1e2 squares: rounding ~1e-14 */
#define TOL_EPS 1e-12    /* ε recovered from x_t = √ᾱ x₀ + √(1−ᾱ) ε: one subtraction and one
                            division by √(1−ᾱ_t) ≥ ~0.01 per number */

static void test_nearest(void) {
    enum { NA = 7, NT = 300, D = 13 };
    Rng rng;
    rng_seed(&rng, 8);
    real a[NA * D], *t = xmalloc(sizeof(real) * NT * D, "train");
    rng_fill_normal(&rng, a, NA * D);
    rng_fill_normal(&rng, t, NT * D);
    memcpy(t + 277 * D, a + 3 * D, sizeof(real) * D);   /* a[3] is training image 277 */
    double dist[NA];
    int idx[NA], wrong = 0;
    double worst = 0;
    nearest_training_image(dist, idx, a, NA, t, NT, D);
    for (int i = 0; i < NA; i++) {
        double best = INFINITY;
        int bj = -1;
        for (int j = 0; j < NT; j++) {
            double s = 0;
            for (int p = 0; p < D; p++) s += pow(a[i * D + p] - t[j * D + p], 2);
            if (s < best) { best = s; bj = j; }
        }
        wrong += bj != idx[i];
        worst = fmax(worst, fabs(sqrt(best / D) - dist[i]));
    }
    CHECK(wrong == 0, "nearest index: %d of %d wrong", wrong, NA);
    CHECK(worst <= TOL_DIST, "nearest distance off by %.3g", worst);
    CHECK(idx[3] == 277 && dist[3] == 0.0, "an exact copy: index 277, distance 0");
    free(t);
}

static void test_eval_samples(void) {
    enum { C = 1, H = 8, W = 8, D = C * H * W, N = 40, NT = 100 };
    Rng rng;
    rng_seed(&rng, 9);
    ClassifierConfig cfg = {.C = C, .H = H, .W = W, .width = 2, .features = 6, .classes = 3,
                            .max_batch = 16};
    Classifier c;
    classifier_init(&c, &cfg, &rng);
    real *held = xmalloc(sizeof(real) * 2 * N * D, "held"), *train = xmalloc(sizeof(real) * NT * D, "train");
    rng_fill_normal(&rng, held, 2 * N * D);
    rng_fill_normal(&rng, train, NT * D);
    int label[2 * N];
    for (int i = 0; i < 2 * N; i++) label[i] = i % 3;
    EvalSets sets = {.train = train, .n_train = NT, .held = held, .n_held = 2 * N,
                     .held_label = label, .C = C, .H = H, .W = W};
    EvalResult r;
    int nn_idx[N];
    double nn_dist[N];
    eval_samples(&r, &c, held + N * D, N, &sets, nn_idx, nn_dist);   /* the samples are B */
    CHECK(r.fd == r.fd_floor, "samples = set B: FD %.17g = floor %.17g", r.fd, r.fd_floor);
    CHECK(r.fd_floor > 0, "two different real sets: floor %.3g > 0", r.fd_floor);
    int sum = 0, sum_real = 0;
    for (int k = 0; k < 3; k++) { sum += r.hist[k]; sum_real += r.hist_real[k]; }
    CHECK(sum == N && sum_real == N, "histograms count %d and %d of %d", sum, sum_real, N);
    CHECK(r.accuracy >= 0 && r.accuracy <= 1, "accuracy in [0, 1]: %g", r.accuracy);
    CHECK(r.nn_gen[0] <= r.nn_gen[1] && r.nn_gen[1] <= r.nn_gen[2], "quantiles ordered");

    eval_samples(&r, &c, train + 10 * D, N, &sets, nn_idx, nn_dist);  /* training images */
    CHECK(r.nn_gen[2] == 0.0 && r.near_copies == N, "copies of training images: median "
          "distance %g, %d of %d near-copies", r.nn_gen[2], r.near_copies, N);
    CHECK(nn_idx[0] == 10 && nn_idx[N - 1] == 10 + N - 1, "copies: indices");
    real pairs[2 * 3 * D];
    nn_dist[5] = -1.0;   /* pretend sample 5 is the closest */
    eval_closest_pairs(pairs, 3, train + 10 * D, N, nn_idx, nn_dist, &sets);
    CHECK(memcmp(pairs, train + 15 * D, sizeof(real) * D) == 0 &&
          memcmp(pairs + 3 * D, train + 15 * D, sizeof(real) * D) == 0,
          "closest pairs: the closest sample first, beside its training image");
    free(train); free(held);
    classifier_free(&c);
}

static void test_forward_strip(void) {
    enum { D = 10, ROWS = 2, NT = 4 };
    Schedule s;
    if (schedule_build(&s, SCHED_LINEAR, 100) != 0) { CHECK(0, "schedule"); return; }
    Rng rng;
    rng_seed(&rng, 2);
    real x0[ROWS * D], strip[ROWS * NT * D];
    rng_fill_normal(&rng, x0, ROWS * D);
    int ts[NT] = {0, 10, 50, 100};
    forward_strip(strip, x0, ROWS, ts, NT, &s, D, &rng);
    CHECK(memcmp(strip, x0, sizeof(real) * D) == 0, "t = 0 is x0");
    double worst = 0;
    for (int r = 0; r < ROWS; r++)
        for (int p = 0; p < D; p++) {
            double e1 = 0;
            for (int c = 1; c < NT; c++) {
                int t = ts[c];
                double e = (strip[(r * NT + c) * D + p] - s.sqrt_alpha_bar[t] * x0[r * D + p]) /
                           sqrt(1 - s.alpha_bar[t]);
                if (c == 1) e1 = e;
                worst = fmax(worst, fabs(e - e1));
            }
        }
    CHECK(worst < TOL_EPS, "one eps per row: recovered eps differ by %.3g", worst);
    schedule_free(&s);
}

static void test_pixel_grid(void) {
    real x[7] = {-1.0, 1.0, 3.0, -2.5, 0.0, (real)(10 / 127.5 - 1.0), (real)(10.4 / 127.5 - 1.0)};
    to_pixel_grid(x, 7);
    CHECK(x[0] == -1.0 && x[1] == 1.0, "the ends stay: %g %g", x[0], x[1]);
    CHECK(x[2] == 1.0 && x[3] == -1.0, "beyond [-1, 1] clipped: %g %g", x[2], x[3]);
    CHECK(x[4] == (real)(128 / 127.5 - 1.0), "0 is between k = 127 and 128: rounds up to 128");
    CHECK(x[5] == (real)(10 / 127.5 - 1.0) && x[6] == x[5], "k = 10 and 10.4 both give k = 10");
}

int main(void) {
    test_pixel_grid();
    test_nearest();
    test_eval_samples();
    test_forward_strip();
    return test_summary("test_eval");
}
