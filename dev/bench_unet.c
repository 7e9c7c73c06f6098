/* bench_unet.c: training-step throughput of the default 1×28×28 U-Net (float build).
 *   cc -std=c11 -ffp-contract=off -O3 -march=native dev/bench_unet.c unet.c tensor.c -o /tmp/bench_unet -lm
 * Prints the time of one forward and of forward + backward at batch 32, in images/s.
 * Times are the process's CPU time (best of reps), so that other programs sharing the
 * machine's cores disturb them less than wall-clock time would; `uptime` tells the load. */
#define _POSIX_C_SOURCE 199309L
#include <stdlib.h>
#include <time.h>
#include "../unet.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 5;
    UnetConfig cfg = unet_default_config(1, 28, 28);
    cfg.max_batch = N;
    Rng rng; rng_seed(&rng, 1);
    ParamSet ps; params_init(&ps);
    Unet u;
    if (unet_init(&u, &cfg, &ps, &rng)) return 1;
    unet_print_summary(stdout, &u);
    size_t n = (size_t)N * 28 * 28;
    real *x = xmalloc(n * sizeof(real), "x"), *out = xmalloc(n * sizeof(real), "out");
    real *dout = xmalloc(n * sizeof(real), "dout");
    rng_fill_normal(&rng, x, n); rng_fill_normal(&rng, dout, n);
    int *t = xmalloc(N * sizeof(int), "t");
    for (int i = 0; i < N; i++) t[i] = 1 + rng_int(&rng, 1000);
    unet_forward(&u, out, x, t, NULL, N); unet_backward(&u, NULL, dout, N);   /* warm up */
    double best_f = 1e9, best_fb = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        unet_forward(&u, out, x, t, NULL, N);
        double t1 = now();
        unet_backward(&u, NULL, dout, N);
        double t2 = now();
        if (t1 - t0 < best_f) best_f = t1 - t0;
        if (t2 - t0 < best_fb) best_fb = t2 - t0;
        printf("rep %d: forward %.3f s, forward+backward %.3f s\n", r, t1 - t0, t2 - t0);
    }
    double macs = unet_macs_per_image(&u);
    printf("batch %d: forward %.3f s (%.1f images/s, %.1f GFLOP/s), train step %.3f s "
           "(%.1f images/s, %.1f GFLOP/s at 3x forward)\n", N, best_f, N / best_f,
           2 * macs * N / best_f / 1e9, best_fb, N / best_fb, 6 * macs * N / best_fb / 1e9);
    unet_free(&u); params_free(&ps);
    free(x); free(out); free(dout); free(t);
    return 0;
}
