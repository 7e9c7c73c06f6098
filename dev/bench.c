/* bench.c: how fast the reference runs here, and how that compares with the machine's
 * peak (`make bench` runs each part in its own process, so each peak memory is its own).
 *
 *   build/bench peak     the fp32 fused multiply-add peak of one core, by a plain-C kernel
 *   build/bench mlp      the default 2D MLP: training steps of batch 256
 *   build/bench unet     the default 28×28 U-Net: forward alone and training steps, batch 32
 *   build/bench sample   the same U-Net sampling at batch 16 (one reverse step = one forward)
 *
 * Every time is the best of several repetitions in CPU time of the process (robust to
 * other programs sharing the machine); with OpenMP (build/bench_omp, OMP_NUM_THREADS=2)
 * CPU time adds up the threads, so the wall-clock time is printed too. GFLOP/s counts
 * the multiply-adds of the matrix products (2 floating-point operations each): for the MLP
 * 2 N Σ_l in_l out_l per forward, the backward twice that minus the first layer's input
 * gradient (not computed); for the U-Net 2 · unet_macs_per_image per image and forward,
 * a training step 3× the forward (its first conv's input gradient, 0.1 %, included).
 * Peak memory is the process's maximum resident size (getrusage).
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../ddpm.h"
#include "../mlp.h"
#include "../unet.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double thread_cpu_now(void) {   /* CPU time of the calling (main) thread alone */
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double peak_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;   /* Linux: kilobytes */
}
static int threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* The best (smallest) CPU time, wall time and main-thread CPU time of `reps` runs of
 * fn(ctx). */
typedef void (*Work)(void *ctx);
typedef struct { double cpu, wall, main; } Times;
static Times best_of(Work fn, void *ctx, int reps) {
    Times best = { 1e30, 1e30, 1e30 };
    for (int r = 0; r < reps; r++) {
        double c0 = cpu_now(), w0 = wall_now(), m0 = thread_cpu_now();
        fn(ctx);
        double c = cpu_now() - c0, w = wall_now() - w0, m = thread_cpu_now() - m0;
        if (c < best.cpu) best.cpu = c;
        if (w < best.wall) best.wall = w;
        if (m < best.main) best.main = m;
    }
    return best;
}

/* ----------------------------------------------------------------------------------------
 * Peak: 20 independent vectors of 8 fused multiply-adds, each a chain
 * acc = acc · m + a, enough to keep both FMA pipes busy through their latency. The same
 * register tile shape as matmul.c (5 × 32), so the compiler keeps it in registers. */
enum { PR = 5, PC = 32 };
typedef struct { long iters; float sink; } PeakCtx;
static void peak_work(void *p) {
    PeakCtx *c = p;
    float acc[PR][PC];
    for (int i = 0; i < PR; i++)
        for (int j = 0; j < PC; j++) acc[i][j] = (float)(i * PC + j) * 1e-3f;
    volatile float vm = 0.999999f, va = 1e-7f;   /* not constants the compiler could fold */
    float m = vm, a = va;
    for (long k = 0; k < c->iters; k++)
        for (int i = 0; i < PR; i++)
            for (int j = 0; j < PC; j++) acc[i][j] = fmaf(acc[i][j], m, a);
    float s = 0;
    for (int i = 0; i < PR; i++)
        for (int j = 0; j < PC; j++) s += acc[i][j];
    c->sink = s;
}
static double measure_peak(void) {
    PeakCtx c = { 2000000, 0 };
    Times t = best_of(peak_work, &c, 5);
    return 2.0 * PR * PC * c.iters / t.cpu / 1e9;
}

/* ----------------------------------------------------------------------------------------
 * The MLP: ddpm_train_step (forward, loss, backward) + adam_step + ema_update. */
typedef struct {
    Denoiser net; ParamSet *ps; TrainWork w; Schedule s; DdpmConfig cfg; AdamConfig adam;
    Rng rng; real *x0; int N, steps;
} TrainCtx;
static void train_work(void *p) {
    TrainCtx *c = p;
    for (int i = 0; i < c->steps; i++) {
        ddpm_train_step(&c->net, c->x0, NULL, c->N, &c->cfg, &c->s, &c->rng, &c->w);
        adam_step(c->ps, &c->adam);
        ema_update(c->ps, 0.995);
    }
}

/* One line: units/s and GFLOP/s in CPU time (all threads added), and in wall time; with
 * threads also the main thread's own CPU time, a bound for the wall time on idle cores
 * (it leaves out the waits for the other thread), which a busy machine cannot show. */
static void report(const char *what, double units, const char *unit, double flop, Times t,
                   double peak) {
    int nt = threads();
    printf("%-26s %8.1f %-9s %6.1f GFLOP/s  %5.1f%% of %s peak", what, units / t.cpu, unit,
           flop / t.cpu / 1e9, 100.0 * flop / t.cpu / 1e9 / peak, "1-core");
    printf("  | wall %.1f %s (%d thread%s)", units / t.wall, unit, nt, nt == 1 ? "" : "s");
    if (nt > 1) printf(", main thread %.1f", units / t.main);
    printf("\n");
}

static void bench_mlp(double peak) {
    TrainCtx c;
    memset(&c, 0, sizeof c);
    c.N = 256; c.steps = 50;
    schedule_build(&c.s, SCHED_COSINE, 50);
    rng_seed(&c.rng, 1);
    MlpConfig mc = mlp_default_config(2, c.N);
    Mlp m; ParamSet ps; params_init(&ps);
    mlp_init(&m, &mc, &ps, &c.rng);
    c.net = mlp_denoiser(&m); c.ps = &ps;
    train_work_init(&c.w, c.N, 2);
    c.x0 = xmalloc((size_t)c.N * 2 * sizeof(real), "x0");
    rng_fill_normal(&c.rng, c.x0, (size_t)c.N * 2);
    c.cfg = (DdpmConfig){ .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    c.adam = adam_default(1e-3);
    double macs = 0;
    for (int l = 0; l < m.n_linear; l++) macs += (double)m.in_dim[l] * m.out_dim[l];
    double flop = 2.0 * c.N * (3 * macs - (double)m.in_dim[0] * m.out_dim[0]) * c.steps;
    train_work(&c);                                      /* warm up */
    report("mlp train (batch 256)", c.steps, "steps/s", flop, best_of(train_work, &c, 7), peak);
    printf("  peak memory %.1f MiB\n", peak_mib());
    free(c.x0); train_work_free(&c.w); mlp_free(&m); params_free(&ps); schedule_free(&c.s);
}

/* ----------------------------------------------------------------------------------------
 * The U-Net. */
typedef struct { Unet *u; real *x, *out; int *t; int N; } FwdCtx;
static void forward_work(void *p) {
    FwdCtx *c = p;
    unet_forward(c->u, c->out, c->x, c->t, NULL, c->N);
}

static void bench_unet(double peak, int sample) {
    int N = sample ? 16 : 32;
    UnetConfig uc = unet_default_config(1, 28, 28);
    uc.max_batch = N;
    Rng rng; rng_seed(&rng, 1);
    ParamSet ps; params_init(&ps);
    Unet u;
    if (unet_init(&u, &uc, &ps, &rng)) die("bench: the default U-Net did not build");
    size_t D = 28 * 28;
    real *x = xmalloc(N * D * sizeof(real), "x"), *out = xmalloc(N * D * sizeof(real), "out");
    int *t = xmalloc(N * sizeof(int), "t");
    for (size_t i = 0; i < N * D; i++) x[i] = (real)(2 * rng_uniform(&rng) - 1);
    for (int i = 0; i < N; i++) t[i] = 1 + rng_int(&rng, 1000);
    double fwd_flop = 2.0 * unet_macs_per_image(&u) * N;
    FwdCtx f = { &u, x, out, t, N };
    forward_work(&f);                                    /* warm up */
    Times fwd = best_of(forward_work, &f, sample ? 5 : 3);
    if (sample) {
        /* one reverse step is one forward (the rest, a few numbers per pixel, is noise) */
        report("unet sample step (b 16)", N, "images/s", fwd_flop, fwd, peak);
        printf("  = %.2f s per reverse step of 16 images, %.1f min for T = 1000\n", fwd.cpu,
               fwd.cpu * 1000 / 60);
    } else {
        report("unet forward (batch 32)", N, "images/s", fwd_flop, fwd, peak);
        TrainCtx c;
        memset(&c, 0, sizeof c);
        c.N = N; c.steps = 1;
        schedule_build(&c.s, SCHED_LINEAR, 1000);
        c.rng = rng;
        c.net = unet_denoiser(&u); c.ps = &ps;
        train_work_init(&c.w, N, (int)D);
        c.x0 = x;
        c.cfg = (DdpmConfig){ .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
        c.adam = adam_default(2e-4);
        train_work(&c);                                  /* warm up */
        report("unet train (batch 32)", N, "images/s", 3 * fwd_flop, best_of(train_work, &c, 3),
               peak);
        train_work_free(&c.w); schedule_free(&c.s);
    }
    printf("  peak memory %.1f MiB\n", peak_mib());
    free(x); free(out); free(t); unet_free(&u); params_free(&ps);
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    double peak = argc > 2 ? atof(argv[2]) : 0;
    if (strcmp(what, "peak") == 0) {
        printf("fp32 FMA peak of one core (plain-C kernel, %d x %d fmaf chains): %.1f GFLOP/s\n",
               PR, PC, measure_peak());
        return 0;
    }
    if (peak <= 0) peak = measure_peak();
    if (strcmp(what, "mlp") == 0) bench_mlp(peak);
    else if (strcmp(what, "unet") == 0) bench_unet(peak, 0);
    else if (strcmp(what, "sample") == 0) bench_unet(peak, 1);
    else {
        fprintf(stderr, "usage: %s peak | mlp | unet | sample [peak GFLOP/s]\n", argv[0]);
        return 2;
    }
    return 0;
}
