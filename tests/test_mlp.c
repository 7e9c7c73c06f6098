/* test_mlp.c: the 2D denoiser. The default architecture exactly (34→128→128→128→2),
 * its backward against finite differences for every parameter tensor and the input, and
 * gradient accumulation. Built with real = double. */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "harness.h"
#include "../mlp.h"

#define CHECKS_PER_TENSOR 40   /* entries sampled per parameter tensor: keeps the test fast */

typedef struct { Mlp *m; real *x, *out, *dout; int *t; int N; } Ctx;

static double fake_loss(void *p) {    /* L = Σ out · dout */
    Ctx *c = p;
    mlp_forward(c->m, c->out, c->x, c->t, NULL, c->N);
    double L = 0;
    for (int i = 0; i < c->N * c->m->cfg.D; i++) L += c->out[i] * c->dout[i];
    return L;
}

int main(void) {
    enum { N = 3, D = 2 };
    Rng r;
    rng_seed(&r, 21);
    MlpConfig cfg = mlp_default_config(D, N);
    Mlp m;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&m, &cfg, &ps, &r);

    /* the exact default: 34→128, 128→128, 128→128, 128→2 */
    long expect = (34L * 128 + 128) + 2 * (128L * 128 + 128) + (128L * 2 + 2);
    CHECK(ps.total == (size_t)expect, "default MLP has %ld parameters, got %zu", expect, ps.total);
    CHECK(ps.count == 8 && ps.p[0].shape[0] == 34 && ps.p[0].shape[1] == 128 &&
          ps.p[6].shape[0] == 128 && ps.p[6].shape[1] == 2, "default MLP layer shapes");

    real x[N * D], out[N * D], dout[N * D], dx[N * D];
    int t[N] = { 1, 25, 50 };
    rng_fill_normal(&r, x, N * D);
    rng_fill_normal(&r, dout, N * D);
    Ctx c = { &m, x, out, dout, t, N };
    fake_loss(&c);
    params_zero_grad(&ps);
    memset(dx, 0, sizeof dx);
    mlp_backward(&m, dx, dout, N);
    for (int i = 0; i < ps.count; i++) {
        const Param *p = &ps.p[i];
        gradcheck(p->name, ps.w + p->offset, ps.g + p->offset, p->n, fake_loss, &c, CHECKS_PER_TENSOR);
    }
    gradcheck("mlp input x", x, dx, N * D, fake_loss, &c, 0);

    /* gradients accumulate: a second backward doubles them */
    real *g1 = xmalloc(ps.total * sizeof(real), "g copy");
    fake_loss(&c);   /* the finite differences left the caches at a perturbed x: refresh */
    params_zero_grad(&ps);
    mlp_backward(&m, NULL, dout, N);
    memcpy(g1, ps.g, ps.total * sizeof(real));
    mlp_backward(&m, NULL, dout, N);
    int doubled = 1;
    for (size_t i = 0; i < ps.total; i++) doubled &= fabs(ps.g[i] - 2 * g1[i]) <= 1e-12 * (1 + fabs(ps.g[i]));
    CHECK(doubled, "mlp_backward accumulates into the gradients");
    free(g1);

    /* the output depends on t through the embedding */
    real out2[N * D];
    int t2[N] = { 2, 25, 50 };
    mlp_forward(&m, out2, x, t2, NULL, N);
    CHECK(out2[0] != out[0] && out2[2] == out[2], "output changes with t only where t changed");

    mlp_free(&m);
    params_free(&ps);
    return test_summary("test_mlp");
}
