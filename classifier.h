/* classifier.h: a small image classifier built from the project's own layers, whose
 * penultimate features define the Fréchet distance of frechet.h ("FID in miniature").
 *
 * What is here: the network, its backward, training with Adam on labelled images,
 * accuracy, features, and save/load in the checkpoint format of checkpoint.h.
 *   x (N, C, H, W)
 *   → conv 3×3, C → w,    stride 1, SiLU      (N, w, H, W)        e.g. 16 × 28 × 28
 *   → conv 3×3, w → 2w,   stride 2, SiLU      (N, 2w, H2, W2)     e.g. 32 × 14 × 14
 *   → conv 3×3, 2w → 4w,  stride 2, SiLU      (N, 4w, H3, W3)     e.g. 64 × 7 × 7
 *   → global average pool                     (N, 4w)
 *   → linear 4w → D, SiLU = the FEATURES      (N, D)              e.g. D = 64
 *   → linear D → K = the logits               (N, K)              K classes, e.g. 10
 * and the loss is the softmax cross-entropy  L = (1/N) Σ_n (log Σ_k e^{z_nk} − z_{n,y_n}).
 * What is not: Inception-v3. Its features were learned on ImageNet; these are learned on
 * the training images themselves, so numbers are comparable only within this project,
 * for the same classifier file (a different classifier gives a different FD scale).
 * Layers: conv2d from unet.c, linear and SiLU from tensor.c; only the pooling and the
 * cross-entropy are written here.
 *
 * Sizes: N = batch, C, H, W = image, w = width (first conv channels), D = features,
 * K = classes.
 */
#ifndef CLASSIFIER_H
#define CLASSIFIER_H

#include "tensor.h"
#include "unet.h"

typedef struct {
    int C, H, W;      /* image, e.g. 1, 28, 28 */
    int width;        /* channels of the first conv, e.g. 16 (then 32, 64) */
    int features;     /* D, the penultimate layer, e.g. 64 */
    int classes;      /* K, e.g. 10 */
    int max_batch;    /* largest N of one forward, e.g. 64 */
} ClassifierConfig;

/* The defaults: width 16, 64 features, 10 classes, max_batch 64. */
ClassifierConfig classifier_default_config(int C, int H, int W);

typedef struct {
    ClassifierConfig cfg;
    ParamSet ps;
    Conv2d conv[3];
    real *fc1_w, *fc1_dw, *fc1_b, *fc1_db;   /* (4w, D), (D) */
    real *fc2_w, *fc2_dw, *fc2_b, *fc2_db;   /* (D, K), (K) */
    int h[4], w[4];   /* map sizes: h[0] = H (input and conv 1), h[2] = after conv 2, ... */
    /* caches: what the forward keeps for the backward */
    real *z[3];       /* conv outputs, the inputs of SiLU           (N, C_l, h, w) */
    real *a[3];       /* SiLU outputs, the inputs of the next layer  (N, C_l, h, w) */
    real *pool;       /* (N, 4w) average of a[2] over its positions */
    real *z4;         /* (N, D) fc1 output, the input of SiLU */
    real *feat;       /* (N, D) SiLU(z4): the features */
    real *logits;     /* (N, K) */
    real *dlogits;    /* (N, K) dL/dz from classifier_loss, the seed of the backward */
    /* gradient buffers */
    real *ga, *gz;    /* (N, w, H, W), the largest map */
    real *gpool, *gfeat, *gz4;   /* (N, 4w), (N, D), (N, D) */
    real *scratch;    /* for conv2d */
} Classifier;

/* Declare, allocate and initialize (U(±1/√fan_in) everywhere, as the layer defaults). */
void classifier_init(Classifier *c, const ClassifierConfig *cfg, Rng *rng);
void classifier_free(Classifier *c);

/* x (N, C, H, W), N ≤ max_batch: fills the caches, c->feat and c->logits. */
void classifier_forward(Classifier *c, const real *x, int N);
/* The cross-entropy of c->logits against label (N) in 0..K−1, averaged over N; also sets
 * c->dlogits = (softmax − onehot) / N. Call after classifier_forward. */
double classifier_loss(Classifier *c, const int *label, int N);
/* Backward from c->dlogits: ADDS into the ParamSet's gradients and, if dx is not NULL,
 * into dx (N, C, H, W). Same x and N as the forward before it. */
void classifier_backward(Classifier *c, real *dx, const real *x, int N);

/* Train with Adam (lr, batches of `batch` ≤ max_batch drawn uniformly) for `steps` steps
 * on x (N, C, H, W) with labels (N); prints a line every `log_every` steps (0 = never).
 * Returns the mean loss of the last 100 steps. */
double classifier_train(Classifier *c, const real *x, const int *label, int N, int steps,
                        int batch, double lr, int log_every, Rng *rng);

/* feat (N, D) = the features of x (N, C, H, W), any N (in batches of max_batch). */
void classifier_features(Classifier *c, real *feat, const real *x, int N);
/* pred (N) = the most likely class of each image, any N. */
void classifier_predict(Classifier *c, int *pred, const real *x, int N);
/* The fraction of x (N, ...) whose predicted class is label. */
double classifier_accuracy(Classifier *c, const real *x, const int *label, int N);

/* Save in the checkpoint format (settings "model" = "classifier", C, H, W, width,
 * features, classes, plus the caller's "data" string, e.g. the training file), and load:
 * the model is rebuilt from the file's settings (max_batch given here). 0, or −1 after
 * one line. A non-NULL `data` on load must equal the saved one (a classifier trained on
 * other images gives other features, and FD numbers that do not compare). */
int classifier_save(const Classifier *c, const char *path, const char *data);
int classifier_load(Classifier *c, const char *path, const char *data, int max_batch);

#endif
