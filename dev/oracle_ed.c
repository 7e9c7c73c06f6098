/* dev/oracle_ed.c: energy distance of samples from the exact optimal denoiser (dog/cat). */
#include <stdio.h>
#include <stdlib.h>
#include "../ddpm.h"
#include "../data.h"
typedef struct { Mixture2D m; const Schedule *s; } Or;
static void fwd(void *self, real *out, const real *x, const int *t, const int *y, int N) {
    (void)y;
    Or *o = self;
    for (int n = 0; n < N; n++) { double xi[2] = { x[2*n], x[2*n+1] }, e[2];
        mixture_eps_star(&o->m, o->s->alpha_bar[t[n]], xi, e); out[2*n] = e[0]; out[2*n+1] = e[1]; }
}
int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 50; int var = argc > 2 ? atoi(argv[2]) : 0;
    Schedule s; schedule_build(&s, argc > 3 ? (ScheduleKind)atoi(argv[3]) : SCHED_LINEAR, T);
    Rng r; rng_seed(&r, 1);
    int N = 2000; real *tr = malloc(sizeof(real) * 20000 * 2);
    toy_sample(tr, NULL, 10000, TOY_DOGCAT, &r);
    double mean[2], std[2]; data_mean_std(tr, 10000, 2, mean, std);
    Or o; o.s = &s; Mixture2D m; toy_mixture(TOY_DOGCAT, &m); mixture_affine(&m, mean, std, &o.m);
    Denoiser d = { .self = &o, .D = 2, .max_batch = 1 << 20, .forward = fwd };
    DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = (ReverseVar)var };
    real *x = malloc(sizeof(real) * N * 2), *a = malloc(sizeof(real) * N * 2), *b = malloc(sizeof(real) * N * 2);
    double tot = 0, totf = 0; for (int rep = 0; rep < 10; rep++) {
        p_sample_loop(&d, x, NULL, &cfg, &s, N, 0, &r, NULL, NULL);
        unstandardize(x, N, 2, mean, std);
        double ed = 0, fl = 0;
        for (int k = 0; k < 8; k++) { toy_sample(a, NULL, N, TOY_DOGCAT, &r); toy_sample(b, NULL, N, TOY_DOGCAT, &r);
          ed += energy_distance(x, N, a, N, 2) / 8; fl += energy_distance(b, N, a, N, 2) / 8; }
        tot += ed / 10; totf += fl / 10;
    }
    printf("T=%d var=%d sched=%s: mean ED %.4f mean floor %.4f ratio %.2f\n", T, var, schedule_name(s.kind), tot, totf, tot / totf);
}
