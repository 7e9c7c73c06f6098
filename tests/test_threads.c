/* test_threads.c: training gives the same bits whatever the number of threads.
 *
 * With OpenMP (`make test-threads`, float, the programs' precision): a few training steps
 * (forward, loss, backward, Adam, EMA) of the default 2D MLP and of a U-Net with attention
 * run once on 1 thread and once on 2, from the same seed; every weight, Adam moment and
 * EMA value must be equal bit for bit. That holds because every parallel loop splits
 * independent outputs (blocks of C in matmul, images in conv2d_forward, bands of input
 * channels in conv2d_backward, channels in im2col, groups in group norm), and each output
 * is computed by one thread in the same order as without threads.
 * Without OpenMP (`make test`), the same runs are done twice on one thread: the check is
 * then that a training run is reproducible from its seed, which the threaded check needs.
 */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "harness.h"
#include "../ddpm.h"
#include "../mlp.h"
#include "../unet.h"

enum { STEPS = 3 };

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* STEPS training steps of net from the data x0 (N, D); the generator is seeded here */
static void train(Denoiser *net, ParamSet *ps, const real *x0, int N, int D, int T) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, T);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    AdamConfig adam = adam_default(1e-3);
    TrainWork w;
    train_work_init(&w, N, D);
    Rng rng;
    rng_seed(&rng, 11);
    for (int i = 0; i < STEPS; i++) {
        ddpm_train_step(net, x0, NULL, N, &cfg, &s, &rng, &w);
        adam_step(ps, &adam);
        ema_update(ps, 0.9);
    }
    train_work_free(&w);
    schedule_free(&s);
}

/* 1 if the two parameter sets hold the same bits in w, m, v and ema */
static int same_bits(const ParamSet *a, const ParamSet *b) {
    size_t bytes = a->total * sizeof(real);
    return a->total == b->total && memcmp(a->w, b->w, bytes) == 0 &&
           memcmp(a->m, b->m, bytes) == 0 && memcmp(a->v, b->v, bytes) == 0 &&
           memcmp(a->ema, b->ema, bytes) == 0;
}

static void mlp_run(ParamSet *ps, Mlp *m, int threads) {
    enum { N = 256 };
    Rng rng;
    rng_seed(&rng, 5);
    MlpConfig mc = mlp_default_config(2, N);
    params_init(ps);
    mlp_init(m, &mc, ps, &rng);
    real x0[2 * N];
    rng_fill_normal(&rng, x0, 2 * N);
    Denoiser net = mlp_denoiser(m);
    set_threads(threads);
    train(&net, ps, x0, N, 2, 50);
}

static void unet_run(ParamSet *ps, Unet *u, int threads) {
    /* 5 images of 28×28: at 28×28 a convolution's backward product takes 2 images side
     * by side (unet.c, conv_group), so the threads meet groups of 2, 2 and 1 in each
     * backward pass; the forward's groups are 1 image at 28×28, 2 (2, 2, 1) at 14×14 and
     * 6 (one group of 5: matmul splits it) at 7×7 */
    enum { N = 5, S = 28 };
    Rng rng;
    rng_seed(&rng, 6);
    UnetConfig uc = unet_default_config(1, S, S);   /* attention at 7×7 and in the middle */
    uc.max_batch = N;
    params_init(ps);
    if (unet_init(u, &uc, ps, &rng)) die("test_threads: the U-Net did not build");
    real x0[N * S * S];
    for (int i = 0; i < N * S * S; i++) x0[i] = (real)(2 * rng_uniform(&rng) - 1);
    Denoiser net = unet_denoiser(u);
    set_threads(threads);
    train(&net, ps, x0, N, S * S, 100);
}

int main(void) {
#ifdef _OPENMP
    const int second = 2;
    const char *what = "1 and 2 threads";
#else
    const int second = 1;
    const char *what = "two runs on one thread (no OpenMP)";
#endif
    ParamSet a, b;
    Mlp ma, mb;
    mlp_run(&a, &ma, 1);
    mlp_run(&b, &mb, second);
    CHECK(same_bits(&a, &b), "MLP: %d training steps differ between %s", STEPS, what);
    mlp_free(&ma); mlp_free(&mb); params_free(&a); params_free(&b);

    Unet ua, ub;
    unet_run(&a, &ua, 1);
    unet_run(&b, &ub, second);
    CHECK(same_bits(&a, &b), "U-Net: %d training steps differ between %s", STEPS, what);
    unet_free(&ua); unet_free(&ub); params_free(&a); params_free(&b);
    printf("threads: %d training steps of the MLP and of a U-Net, same bits with %s\n", STEPS,
           what);
#ifdef _OPENMP
    return test_summary("test_threads_omp");
#else
    return test_summary("test_threads");
#endif
}
