/* dev/bench_mlp.c: training steps per second of the default 2D MLP at batch 256. */
#include <stdio.h>
#include <time.h>
#include "../ddpm.h"
#include "../mlp.h"
int main(void) {
    Schedule s; schedule_build(&s, SCHED_LINEAR, 50);
    Rng r; rng_seed(&r, 1);
    MlpConfig mc = mlp_default_config(2, 256);
    Mlp m; ParamSet ps; params_init(&ps); mlp_init(&m, &mc, &ps, &r);
    Denoiser net = mlp_denoiser(&m);
    TrainWork w; train_work_init(&w, 256, 2);
    real x0[512]; rng_fill_normal(&r, x0, 512);
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    AdamConfig a = adam_default(1e-3);
    int steps = 1000;
    struct timespec t0, t1; timespec_get(&t0, TIME_UTC);
    for (int i = 0; i < steps; i++) { ddpm_train_step(&net, x0, NULL, 256, &cfg, &s, &r, &w); adam_step(&ps, &a); ema_update(&ps, 0.995); }
    timespec_get(&t1, TIME_UTC);
    double el = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    printf("%d steps in %.2f s: %.0f steps/s\n", steps, el, steps / el);
    return 0;
}
