/* test_toy2d.c: a short training run on the note's dog/cat data must learn the data.
 *
 * The same pieces as ./toy2d (data.c, cli.c's draw_minibatch and lr_cosine, ddpm_train_step,
 * adam_step, ema, p_sample_loop) on a smaller budget, at a fixed seed. The bar is the issue's own: the energy distance of 2,000
 * samples to 2,000 fresh true points within ENERGY_RATIO times the noise floor (the same
 * statistic between two true sets, both averaged over several sets), and each hill's
 * share within SHARE_POINTS points of its true weight. An untrained network must fail the
 * same bar, so the test can fail. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../cli.h"
#include "../data.h"
#include "../ddpm.h"
#include "../mlp.h"

#define ENERGY_RATIO 2.0   /* the bar for toy2d */
#define SHARE_POINTS 5.0   /* the bar for the dog/cat share, in percentage points */
#define SETS 8             /* sample sets and floor pairs averaged */
#define N 2000
#define LR 4e-3            /* toy2d's default learning rate */

typedef struct { double ratio, dog_share; } Quality;

static Quality evaluate(Denoiser *net, const DdpmConfig *cfg, const Schedule *s,
                        const double *mean, const double *std, Rng *rng) {
    Mixture2D mix;
    toy_mixture(TOY_DOGCAT, &mix);
    real *x = xmalloc((size_t)N * 2 * sizeof(real), "samples");
    real *a = xmalloc((size_t)N * 2 * sizeof(real), "true");
    real *b = xmalloc((size_t)N * 2 * sizeof(real), "true");
    double ed = 0, floor = 0;
    int dogs = 0;
    for (int r = 0; r < SETS; r++) {
        p_sample_loop(net, x, NULL, cfg, s, N, 0, rng, NULL, NULL);
        unstandardize(x, N, 2, mean, std);
        for (int n = 0; n < N; n++) {
            double p[2] = { x[2 * n], x[2 * n + 1] };
            dogs += mixture_component_of(&mix, p) == 0;
        }
        toy_sample(a, NULL, N, TOY_DOGCAT, rng);
        toy_sample(b, NULL, N, TOY_DOGCAT, rng);
        ed += energy_distance(x, N, a, N, 2);
        floor += energy_distance(b, N, a, N, 2);
    }
    free(x); free(a); free(b);
    Quality q = { ed / floor, 100.0 * dogs / (SETS * N) };
    return q;
}

int main(void) {
    Schedule s;
    schedule_build(&s, SCHED_COSINE, 50);
    Rng rng;
    rng_seed(&rng, 1);
    enum { N_TRAIN = 10000, BATCH = 128, STEPS = 2000 };
    real *train = xmalloc((size_t)N_TRAIN * 2 * sizeof(real), "train");
    toy_sample(train, NULL, N_TRAIN, TOY_DOGCAT, &rng);
    double mean[2], std[2];
    data_mean_std(train, N_TRAIN, 2, mean, std);
    standardize(train, N_TRAIN, 2, mean, std);

    MlpConfig mc = mlp_default_config(2, N);
    mc.hidden = 64;                       /* half width: the double build is slower */
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &rng);
    Denoiser net = mlp_denoiser(&mlp);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };

    /* control: the untrained network must fail the bar */
    Rng eval_rng;
    rng_seed(&eval_rng, 99);
    Quality before = evaluate(&net, &cfg, &s, mean, std, &eval_rng);
    CHECK(before.ratio > ENERGY_RATIO, "untrained network should fail the bar: ratio %.2f", before.ratio);

    TrainWork w;
    train_work_init(&w, BATCH, 2);
    AdamConfig adam = adam_default(LR);
    real batch[BATCH * 2];
    for (int step = 1; step <= STEPS; step++) {
        draw_minibatch(batch, train, N_TRAIN, BATCH, 2, &rng);          /* toy2d's own */
        ddpm_train_step(&net, batch, NULL, BATCH, &cfg, &s, &rng, &w);
        adam.lr = lr_cosine(LR, step, STEPS);                          /* toy2d's own */
        adam_step(&ps, &adam);
        ema_update(&ps, 0.995);
    }
    params_swap_ema(&ps);
    rng_seed(&eval_rng, 99);
    Quality after = evaluate(&net, &cfg, &s, mean, std, &eval_rng);
    printf("toy2d training test: energy ratio %.2f before, %.2f after %d steps; dog share %.1f%% (true 55%%)\n",
           before.ratio, after.ratio, STEPS, after.dog_share);
    CHECK(after.ratio <= ENERGY_RATIO, "trained: energy distance %.2f x the floor > %.1f", after.ratio, ENERGY_RATIO);
    CHECK(fabs(after.dog_share - 55.0) <= SHARE_POINTS, "dog share %.1f%% vs 55%%", after.dog_share);

    train_work_free(&w);
    mlp_free(&mlp);
    params_free(&ps);
    free(train);
    schedule_free(&s);
    return test_summary("test_toy2d");
}
