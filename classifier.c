/* classifier.c: the small classifier of classifier.h: forward, cross-entropy, backward,
 * training, features, save/load.
 *
 * Reading order: config and init, the two layers written here (global average pooling,
 * softmax cross-entropy), forward, backward (in exact reverse order), training and use,
 * checkpoint.
 */
#include "classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"

/* ========================================================================================
 * Config and init */

ClassifierConfig classifier_default_config(int C, int H, int W) {
    ClassifierConfig cfg = {.C = C, .H = H, .W = W, .width = 16, .features = 64,
                            .classes = 10, .max_batch = 64};
    return cfg;
}

/* channels after conv l (l = 0, 1, 2): w, 2w, 4w */
static int conv_channels(const ClassifierConfig *cfg, int l) { return cfg->width << l; }

void classifier_init(Classifier *c, const ClassifierConfig *cfg, Rng *rng) {
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    int N = cfg->max_batch, D = cfg->features, K = cfg->classes;
    c->h[0] = cfg->H;
    c->w[0] = cfg->W;
    params_init(&c->ps);
    static const char *names[3][2] = {{"conv1.w", "conv1.b"}, {"conv2.w", "conv2.b"},
                                      {"conv3.w", "conv3.b"}};
    size_t scratch = 0;
    for (int l = 0; l < 3; l++) {
        Conv2d *cv = &c->conv[l];
        cv->C_in = l == 0 ? cfg->C : conv_channels(cfg, l - 1);
        cv->C_out = conv_channels(cfg, l);
        cv->k = 3;
        cv->stride = l == 0 ? 1 : 2;
        params_add(&c->ps, &cv->w, &cv->dw, names[l][0], 4, cv->C_out, cv->C_in, 3, 3);
        params_add(&c->ps, &cv->b, &cv->db, names[l][1], 1, cv->C_out);
        int hin = l == 0 ? cfg->H : c->h[l], win = l == 0 ? cfg->W : c->w[l];
        c->h[l + 1] = conv2d_out_size(hin, 3, cv->stride);
        c->w[l + 1] = conv2d_out_size(win, 3, cv->stride);
        size_t s = conv2d_scratch_size(cv->C_in, cv->C_out, hin, win, 3, cv->stride);
        if (s > scratch) scratch = s;
    }
    /* conv 1 keeps the size: h[1] = H; conv 2 and 3 halve it: h[2], h[3] */
    int C3 = conv_channels(cfg, 2);
    params_add(&c->ps, &c->fc1_w, &c->fc1_dw, "fc1.w", 2, C3, D);
    params_add(&c->ps, &c->fc1_b, &c->fc1_db, "fc1.b", 1, D);
    params_add(&c->ps, &c->fc2_w, &c->fc2_dw, "fc2.w", 2, D, K);
    params_add(&c->ps, &c->fc2_b, &c->fc2_db, "fc2.b", 1, K);
    params_alloc(&c->ps);
    for (int l = 0; l < 3; l++) {
        Conv2d *cv = &c->conv[l];
        int fan_in = cv->C_in * 9;
        init_uniform(cv->w, (size_t)cv->C_out * cv->C_in * 9, fan_in, rng);
        init_uniform(cv->b, (size_t)cv->C_out, fan_in, rng);
    }
    init_uniform(c->fc1_w, (size_t)C3 * D, C3, rng);
    init_uniform(c->fc1_b, (size_t)D, C3, rng);
    init_uniform(c->fc2_w, (size_t)D * K, D, rng);
    init_uniform(c->fc2_b, (size_t)K, D, rng);
    ema_reset(&c->ps);

    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)N * conv_channels(cfg, l) * c->h[l + 1] * c->w[l + 1];
        c->z[l] = xmalloc(n * sizeof(real), "classifier z");
        c->a[l] = xmalloc(n * sizeof(real), "classifier a");
    }
    size_t big = (size_t)N * cfg->width * cfg->H * cfg->W;   /* the largest map */
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)N * conv_channels(cfg, l) * c->h[l + 1] * c->w[l + 1];
        size_t in = (size_t)N * c->conv[l].C_in * (l == 0 ? cfg->H * cfg->W : c->h[l] * c->w[l]);
        if (n > big) big = n;
        if (in > big) big = in;
    }
    c->ga = xmalloc(big * sizeof(real), "classifier grad");
    c->gz = xmalloc(big * sizeof(real), "classifier grad");
    c->pool = xmalloc((size_t)N * C3 * sizeof(real), "classifier pool");
    c->gpool = xmalloc((size_t)N * C3 * sizeof(real), "classifier grad pool");
    c->z4 = xmalloc((size_t)N * D * sizeof(real), "classifier z4");
    c->feat = xmalloc((size_t)N * D * sizeof(real), "classifier features");
    c->gfeat = xmalloc((size_t)N * D * sizeof(real), "classifier grad features");
    c->gz4 = xmalloc((size_t)N * D * sizeof(real), "classifier grad z4");
    c->logits = xmalloc((size_t)N * K * sizeof(real), "classifier logits");
    c->dlogits = xmalloc((size_t)N * K * sizeof(real), "classifier dlogits");
    c->scratch = xmalloc((scratch ? scratch : 1) * sizeof(real), "classifier scratch");
}

void classifier_free(Classifier *c) {
    free(c->scratch); free(c->dlogits); free(c->logits); free(c->gz4); free(c->gfeat);
    free(c->feat); free(c->z4); free(c->gpool); free(c->pool); free(c->gz); free(c->ga);
    for (int l = 2; l >= 0; l--) { free(c->a[l]); free(c->z[l]); }
    params_free(&c->ps);
    memset(c, 0, sizeof *c);
}

/* ========================================================================================
 * Global average pooling: out[n, c] = (1/P) Σ_p in[n, c, p], P positions. */

static void avgpool_forward(real *out, const real *in, int N, int C, int P) {
    for (int nc = 0; nc < N * C; nc++) {
        const real *row = in + (size_t)nc * P;   /* seek to in[n, c, :] */
        double s = 0;
        for (int p = 0; p < P; p++) s += row[p];
        out[nc] = (real)(s / P);
    }
}

/* forward: out[n, c] = (1/P) Σ_p in[n, c, p]  →  din[n, c, p] += dout[n, c] / P */
static void avgpool_backward(real *din, const real *dout, int N, int C, int P) {
    for (int nc = 0; nc < N * C; nc++) {
        real *row = din + (size_t)nc * P;
        real g = (real)(dout[nc] / P);
        for (int p = 0; p < P; p++) row[p] += g;
    }
}

/* ========================================================================================
 * Softmax cross-entropy, with the log-sum-exp shifted by the largest logit:
 *   L = (1/N) Σ_n (m_n + log Σ_k e^{z_nk − m_n} − z_{n,y_n}),   m_n = max_k z_nk
 *   dL/dz_nk = (softmax(z_n)_k − [k = y_n]) / N */

double classifier_loss(Classifier *c, const int *label, int N) {
    int K = c->cfg.classes;
    double total = 0;
    for (int n = 0; n < N; n++) {
        const real *z = c->logits + (size_t)n * K;   /* seek to logits[n, :] */
        real *dz = c->dlogits + (size_t)n * K;
        double m = z[0];
        for (int k = 1; k < K; k++) m = fmax(m, z[k]);
        double sum = 0;
        for (int k = 0; k < K; k++) sum += exp(z[k] - m);
        total += m + log(sum) - z[label[n]];
        for (int k = 0; k < K; k++)
            dz[k] = (real)((exp(z[k] - m) / sum - (k == label[n])) / N);
    }
    return total / N;
}

/* ========================================================================================
 * Forward */

void classifier_forward(Classifier *c, const real *x, int N) {
    const ClassifierConfig *cfg = &c->cfg;
    const real *in = x;
    for (int l = 0; l < 3; l++) {
        Conv2d *cv = &c->conv[l];
        int hin = l == 0 ? cfg->H : c->h[l], win = l == 0 ? cfg->W : c->w[l];
        conv2d_forward(c->z[l], c->scratch, in, cv->w, cv->b, N, cv->C_in, cv->C_out, hin,
                       win, 3, cv->stride);
        silu_forward(c->a[l], c->z[l], (size_t)N * cv->C_out * c->h[l + 1] * c->w[l + 1]);
        in = c->a[l];
    }
    int C3 = c->conv[2].C_out, D = cfg->features, K = cfg->classes;
    avgpool_forward(c->pool, c->a[2], N, C3, c->h[3] * c->w[3]);
    linear_forward(c->z4, c->pool, c->fc1_w, c->fc1_b, N, C3, D);
    silu_forward(c->feat, c->z4, (size_t)N * D);
    linear_forward(c->logits, c->feat, c->fc2_w, c->fc2_b, N, D, K);
}

/* ========================================================================================
 * Backward, the forward's calls in reverse. Input gradients are written into zeroed
 * buffers (every layer backward adds). */

void classifier_backward(Classifier *c, real *dx, const real *x, int N) {
    const ClassifierConfig *cfg = &c->cfg;
    int C3 = c->conv[2].C_out, D = cfg->features, K = cfg->classes;
    memset(c->gfeat, 0, (size_t)N * D * sizeof(real));
    linear_backward(c->gfeat, c->fc2_dw, c->fc2_db, c->dlogits, c->feat, c->fc2_w, N, D, K);
    memset(c->gz4, 0, (size_t)N * D * sizeof(real));
    silu_backward(c->gz4, c->gfeat, c->z4, (size_t)N * D);
    memset(c->gpool, 0, (size_t)N * C3 * sizeof(real));
    linear_backward(c->gpool, c->fc1_dw, c->fc1_db, c->gz4, c->pool, c->fc1_w, N, C3, D);
    size_t n3 = (size_t)N * C3 * c->h[3] * c->w[3];
    memset(c->ga, 0, n3 * sizeof(real));
    avgpool_backward(c->ga, c->gpool, N, C3, c->h[3] * c->w[3]);
    for (int l = 2; l >= 0; l--) {
        Conv2d *cv = &c->conv[l];
        size_t n = (size_t)N * cv->C_out * c->h[l + 1] * c->w[l + 1];
        memset(c->gz, 0, n * sizeof(real));
        silu_backward(c->gz, c->ga, c->z[l], n);            /* ga = dL/da[l] */
        int hin = l == 0 ? cfg->H : c->h[l], win = l == 0 ? cfg->W : c->w[l];
        const real *in = l == 0 ? x : c->a[l - 1];
        real *din = NULL;
        if (l > 0) {
            memset(c->ga, 0, (size_t)N * cv->C_in * hin * win * sizeof(real));
            din = c->ga;                                     /* becomes dL/da[l − 1] */
        } else {
            din = dx;                                        /* NULL: not needed */
        }
        conv2d_backward(din, cv->dw, cv->db, c->scratch, c->gz, in, cv->w, N, cv->C_in,
                        cv->C_out, hin, win, 3, cv->stride);
    }
}

/* ========================================================================================
 * Training and use */

double classifier_train(Classifier *c, const real *x, const int *label, int N, int steps,
                        int batch, double lr, int log_every, Rng *rng) {
    const ClassifierConfig *cfg = &c->cfg;
    if (batch > cfg->max_batch) batch = cfg->max_batch;
    size_t img = (size_t)cfg->C * cfg->H * cfg->W;
    real *xb = xmalloc((size_t)batch * img * sizeof(real), "classifier batch");
    int *yb = xmalloc((size_t)batch * sizeof(int), "classifier batch labels");
    AdamConfig adam = adam_default(lr);
    double recent = 0;
    int n_recent = 0;
    clock_t start = clock();
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < batch; b++) {
            int i = rng_int(rng, N);
            memcpy(xb + (size_t)b * img, x + (size_t)i * img, img * sizeof(real));
            yb[b] = label[i];
        }
        params_zero_grad(&c->ps);
        classifier_forward(c, xb, batch);
        double loss = classifier_loss(c, yb, batch);
        classifier_backward(c, NULL, xb, batch);
        adam_step(&c->ps, &adam);
        if (step > steps - 100) { recent += loss; n_recent++; }
        if (log_every > 0 && (step % log_every == 0 || step == steps)) {
            double sec = (double)(clock() - start) / CLOCKS_PER_SEC;
            printf("  classifier step %5d/%d  loss %.4f  %.0f images/s  ETA %.0f s\n", step,
                   steps, loss, step * (double)batch / fmax(sec, 1e-9),
                   sec / step * (steps - step));
            fflush(stdout);
        }
    }
    free(yb);
    free(xb);
    return n_recent ? recent / n_recent : 0.0;
}

/* Run the forward over x (N, ...) in batches of max_batch; after each batch, `use` reads
 * the batch's results from c. */
typedef void (*BatchUse)(const Classifier *c, int first, int n, void *ctx);

static void for_each_batch(Classifier *c, const real *x, int N, BatchUse use, void *ctx) {
    size_t img = (size_t)c->cfg.C * c->cfg.H * c->cfg.W;
    for (int first = 0; first < N; first += c->cfg.max_batch) {
        int n = N - first < c->cfg.max_batch ? N - first : c->cfg.max_batch;
        classifier_forward(c, x + (size_t)first * img, n);
        use(c, first, n, ctx);
    }
}

static void copy_features(const Classifier *c, int first, int n, void *ctx) {
    size_t D = (size_t)c->cfg.features;
    memcpy((real *)ctx + first * D, c->feat, n * D * sizeof(real));
}

static void copy_argmax(const Classifier *c, int first, int n, void *ctx) {
    int K = c->cfg.classes, *pred = ctx;
    for (int i = 0; i < n; i++) {
        const real *z = c->logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++) if (z[k] > z[best]) best = k;
        pred[first + i] = best;
    }
}

void classifier_features(Classifier *c, real *feat, const real *x, int N) {
    for_each_batch(c, x, N, copy_features, feat);
}

void classifier_predict(Classifier *c, int *pred, const real *x, int N) {
    for_each_batch(c, x, N, copy_argmax, pred);
}

double classifier_accuracy(Classifier *c, const real *x, const int *label, int N) {
    int *pred = xmalloc((size_t)N * sizeof(int), "predictions");
    classifier_predict(c, pred, x, N);
    int right = 0;
    for (int i = 0; i < N; i++) right += pred[i] == label[i];
    free(pred);
    return (double)right / N;
}

/* ========================================================================================
 * Checkpoint */

int classifier_save(const Classifier *c, const char *path, const char *data) {
    CkptHeader h;
    ckpt_header_init(&h);
    ckpt_set_string(&h, "model", "classifier");
    ckpt_set_int(&h, "C", c->cfg.C);
    ckpt_set_int(&h, "H", c->cfg.H);
    ckpt_set_int(&h, "W", c->cfg.W);
    ckpt_set_int(&h, "width", c->cfg.width);
    ckpt_set_int(&h, "features", c->cfg.features);
    ckpt_set_int(&h, "classes", c->cfg.classes);
    ckpt_set_string(&h, "data", data ? data : "");
    Rng unused;
    rng_seed(&unused, 0);
    return checkpoint_save(path, &h, &c->ps, &unused);
}

int classifier_load(Classifier *c, const char *path, const char *data, int max_batch) {
    CkptHeader h;
    if (checkpoint_read_header(path, &h) != 0) return -1;
    const char *model = NULL, *saved_data = NULL;
    int64_t v[6];
    static const char *keys[6] = {"C", "H", "W", "width", "features", "classes"};
    if (ckpt_get_string(&h, "model", &model) != 0 || strcmp(model, "classifier") != 0) {
        fprintf(stderr, "error: %s: not a classifier checkpoint (model = %s); pass a file "
                "saved by --eval (e.g. out/images/classifier.ckpt)\n", path,
                model ? model : "missing");
        return -1;
    }
    for (int i = 0; i < 6; i++)
        if (ckpt_get_int(&h, keys[i], &v[i]) != 0 || v[i] < 1 || v[i] > 4096) {
            fprintf(stderr, "error: %s: classifier setting %s missing or out of range; the "
                    "file is damaged, train the classifier again\n", path, keys[i]);
            return -1;
        }
    if (ckpt_get_string(&h, "data", &saved_data) != 0) saved_data = "";
    if (data && strcmp(data, saved_data) != 0) {
        fprintf(stderr, "error: %s: the classifier was trained on '%s', not '%s'; its "
                "features would not compare: delete it or pass the matching data\n", path,
                saved_data, data);
        return -1;
    }
    ClassifierConfig cfg = {.C = (int)v[0], .H = (int)v[1], .W = (int)v[2],
                            .width = (int)v[3], .features = (int)v[4], .classes = (int)v[5],
                            .max_batch = max_batch};
    Rng rng;
    rng_seed(&rng, 0);
    classifier_init(c, &cfg, &rng);
    if (checkpoint_load(path, NULL, &c->ps, NULL) != 0) {
        classifier_free(c);
        return -1;
    }
    return 0;
}
