/* test_classifier.c: the small classifier of classifier.h.
 *
 *   1. the cross-entropy: ln K for equal logits; its gradient by finite differences
 *   2. gradient check of every parameter tensor and of the input through the whole net
 *      (fake loss = the cross-entropy itself), in double
 *   3. it learns: two classes of 8x8 images (a bright left or right half, plus noise)
 *      reach 100% on held-out images; save/load gives the same predictions and features
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../classifier.h"
#include "gradcheck.h"

#define SOFTMAX_TOL 1e-15  /* equal logits: log-sum-exp of 4 zeros and (1/4 − 1)/N, a rounding
                              or two of O(1) numbers */

typedef struct {
    Classifier *c;
    const real *x;
    const int *label;
    int N;
} Ctx;

static double ce_loss(void *p) {
    Ctx *ctx = p;
    classifier_forward(ctx->c, ctx->x, ctx->N);
    return classifier_loss(ctx->c, ctx->label, ctx->N);
}

/* loss of the logits as they are (for the cross-entropy alone) */
static double ce_only(void *p) {
    Ctx *ctx = p;
    return classifier_loss(ctx->c, ctx->label, ctx->N);
}

static ClassifierConfig tiny_config(int C, int H, int W) {
    ClassifierConfig cfg = {.C = C, .H = H, .W = W, .width = 3, .features = 5, .classes = 4,
                            .max_batch = 3};
    return cfg;
}

static void test_gradients(void) {
    Rng rng;
    rng_seed(&rng, 21);
    ClassifierConfig cfg = tiny_config(2, 7, 6);   /* odd sizes: 7x6 -> 4x3 -> 2x2 */
    Classifier c;
    classifier_init(&c, &cfg, &rng);
    enum { N = 3 };
    size_t nx = (size_t)N * cfg.C * cfg.H * cfg.W;
    real *x = xmalloc(nx * sizeof(real), "x"), *dx = xcalloc(nx, sizeof(real), "dx");
    rng_fill_normal(&rng, x, nx);
    int label[N] = {0, 3, 1};
    Ctx ctx = {&c, x, label, N};

    /* equal logits: L = ln K exactly, dL/dz = (1/K − onehot)/N */
    for (int i = 0; i < N * cfg.classes; i++) c.logits[i] = 0.7;
    CHECK_CLOSE(classifier_loss(&c, label, N), log(4.0), SOFTMAX_TOL, "equal logits: ln K");
    CHECK_CLOSE(c.dlogits[1], 0.25 / N, SOFTMAX_TOL, "dL/dz for a wrong class");
    CHECK_CLOSE(c.dlogits[0], (0.25 - 1) / N, SOFTMAX_TOL, "dL/dz for the right class");
    /* large logits stay finite (shifted log-sum-exp) */
    c.logits[0] = 800; c.logits[1] = -800;
    double big = classifier_loss(&c, label, N);
    CHECK(isfinite(big), "logit 800: loss finite (%g)", big);
    rng_fill_normal(&rng, c.logits, (size_t)N * cfg.classes);
    real *dz = xmalloc((size_t)N * cfg.classes * sizeof(real), "dz");
    classifier_loss(&c, label, N);
    memcpy(dz, c.dlogits, (size_t)N * cfg.classes * sizeof(real));
    double e = gradcheck("cross-entropy dz", c.logits, dz, (size_t)N * cfg.classes, ce_only,
                         &ctx, 0);
    printf("test_classifier: cross-entropy gradient worst error %.2g\n", e);

    /* the whole net */
    params_zero_grad(&c.ps);
    classifier_forward(&c, x, N);
    classifier_loss(&c, label, N);
    classifier_backward(&c, dx, x, N);
    double worst = 0;
    for (int i = 0; i < c.ps.count; i++) {
        const Param *p = &c.ps.p[i];
        double err = gradcheck(p->name, c.ps.w + p->offset, c.ps.g + p->offset, p->n, ce_loss,
                               &ctx, 60);
        if (err > worst) worst = err;
    }
    double ex = gradcheck("input x", x, dx, nx, ce_loss, &ctx, 80);
    printf("test_classifier: %d parameter tensors and the input, worst gradient error %.2g\n",
           c.ps.count, fmax(worst, ex));
    free(dz); free(dx); free(x);
    classifier_free(&c);
}

/* Class 0: the left half bright, class 1: the right half; plus N(0, 0.5²) noise. */
static void halves(real *x, int *label, int N, int H, int W, Rng *rng) {
    for (int n = 0; n < N; n++) {
        label[n] = rng_int(rng, 2);
        for (int y = 0; y < H; y++)
            for (int i = 0; i < W; i++) {
                int bright = (i < W / 2) == (label[n] == 0);
                x[(size_t)n * H * W + y * W + i] = (real)((bright ? 0.8 : -0.8) +
                                                          0.5 * rng_normal(rng));
            }
    }
}

static void test_learns_and_saves(void) {
    Rng rng;
    rng_seed(&rng, 4);
    enum { H = 8, W = 8, N = 256, NT = 200 };
    ClassifierConfig cfg = {.C = 1, .H = H, .W = W, .width = 4, .features = 8, .classes = 2,
                            .max_batch = 32};
    Classifier c;
    classifier_init(&c, &cfg, &rng);
    real *x = xmalloc(sizeof(real) * N * H * W, "x"), *xt = xmalloc(sizeof(real) * NT * H * W, "xt");
    int label[N], lt[NT];
    halves(x, label, N, H, W, &rng);
    halves(xt, lt, NT, H, W, &rng);
    double before = classifier_accuracy(&c, xt, lt, NT);
    double loss = classifier_train(&c, x, label, N, 150, 32, 3e-3, 0, &rng);
    double after = classifier_accuracy(&c, xt, lt, NT);
    printf("test_classifier: halves: held-out accuracy %.3f before, %.3f after 150 steps "
           "(loss %.4f)\n", before, after, loss);
    CHECK(after == 1.0, "halves learned: held-out accuracy %.3f", after);
    CHECK(loss < 0.05, "halves: final loss %.4f", loss);

    char path[128];
    int here;
    snprintf(path, sizeof path, "/tmp/ddpm_test_classifier_%lx.ckpt",
             (unsigned long)time(NULL) ^ (unsigned long)(uintptr_t)&here);
    CHECK(classifier_save(&c, path, "halves") == 0, "save");
    Classifier d;
    fprintf(stderr, "test_classifier: the following error line is expected:\n");
    CHECK(classifier_load(&d, path, "other data", 7) == -1, "load refuses other data");
    CHECK(classifier_load(&d, path, "halves", 7) == 0, "load");
    real *f1 = xmalloc(sizeof(real) * NT * 8, "f1"), *f2 = xmalloc(sizeof(real) * NT * 8, "f2");
    classifier_features(&c, f1, xt, NT);
    classifier_features(&d, f2, xt, NT);   /* max_batch 7: other batching, same numbers */
    CHECK(memcmp(f1, f2, sizeof(real) * NT * 8) == 0, "saved and loaded: same features");
    CHECK(d.cfg.width == 4 && d.cfg.features == 8 && d.cfg.classes == 2, "config from the file");
    remove(path);
    free(f2); free(f1); free(xt); free(x);
    classifier_free(&d);
    classifier_free(&c);
}

int main(void) {
    test_gradients();
    test_learns_and_saves();
    return test_summary("test_classifier");
}
