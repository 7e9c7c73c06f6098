/* test_mlp.c: the 2D denoiser. The default architecture exactly (34→128→128→128→2),
 * its backward against finite differences for every parameter tensor and the input, and
 * gradient accumulation; the class-conditional MLP (label embedding added to the input
 * features) the same way, and its relation to the unconditional one. Built with
 * real = double. */
#define _POSIX_C_SOURCE 200809L   /* fork, for death.h */
#include <stdlib.h>
#include <string.h>

#include "death.h"
#include "gradcheck.h"
#include "harness.h"
#include "../mlp.h"

#define CHECKS_PER_TENSOR 40   /* entries sampled per parameter tensor: keeps the test fast */
#define SAME_TOL 1e-12         /* "two backwards = 2× one": equal up to one rounding step */

typedef struct { Mlp *m; real *x, *out, *dout; int *t; const int *y; int N; } Ctx;

static double fake_loss(void *p) {    /* L = Σ out · dout */
    Ctx *c = p;
    mlp_forward(c->m, c->out, c->x, c->t, c->y, c->N);
    double L = 0;
    for (int i = 0; i < c->N * c->m->cfg.D; i++) L += c->out[i] * c->dout[i];
    return L;
}

/* The conditional MLP: input = [x, emb(t)] + cls_emb[y], K = 3 classes and ∅ = 3. */
static void test_conditional(void) {
    enum { N = 4, D = 2, K = 3 };
    MlpConfig cfg = mlp_default_config(D, N), cfg0 = cfg;
    cfg.num_classes = K;
    cfg.hidden = 16;  cfg0.hidden = 16;   /* small: every entry can be checked */
    Rng r, r0;
    rng_seed(&r, 5); rng_seed(&r0, 5);
    Mlp m, m0;
    ParamSet ps, ps0;
    params_init(&ps); params_init(&ps0);
    mlp_init(&m, &cfg, &ps, &r);
    mlp_init(&m0, &cfg0, &ps0, &r0);
    const Param *emb = params_find(&ps, "cls_emb");
    CHECK(emb && emb->shape[0] == K + 1 && emb->shape[1] == D + 32 && ps.count == ps0.count + 1,
          "cls_emb is one extra (K + 1, D + E) tensor");
    CHECK(memcmp(ps.w, ps0.w, ps0.total * sizeof(real)) == 0,
          "the same seed gives the conditional MLP the unconditional one's linear weights");

    real x[N * D], out[N * D], dout[N * D], dx[N * D];
    int t[N] = { 1, 7, 25, 50 }, y[N] = { 0, 2, K, 1 };   /* every kind of label, ∅ too */
    rng_fill_normal(&r, x, N * D);
    rng_fill_normal(&r, dout, N * D);
    Ctx c = { &m, x, out, dout, t, y, N };
    fake_loss(&c);
    params_zero_grad(&ps);
    memset(dx, 0, sizeof dx);
    mlp_backward(&m, dx, dout, N);
    for (int i = 0; i < ps.count; i++) {
        const Param *p = &ps.p[i];
        gradcheck(p->name, ps.w + p->offset, ps.g + p->offset, p->n, fake_loss, &c, 0);
    }
    gradcheck("conditional mlp input x", x, dx, N * D, fake_loss, &c, 0);
    /* the ∅ row is trained by the one example labelled ∅ (example 2) */
    const real *dnull = ps.g + emb->offset + (size_t)K * emb->shape[1];
    double sum_null = 0.0;
    for (int j = 0; j < emb->shape[1]; j++) sum_null += fabs(dnull[j]);
    CHECK(sum_null > 0, "the null label's row is trained by the examples that carry it");

    /* y == NULL is ∅ for every example */
    real a[N * D], b[N * D];
    int all_null[N] = { K, K, K, K };
    mlp_forward(&m, a, x, t, NULL, N);
    mlp_forward(&m, b, x, t, all_null, N);
    CHECK(memcmp(a, b, sizeof a) == 0, "labels NULL = the null label for all");
    /* the label matters: the same x, t with another label gives another output */
    int other[N] = { 1, 0, 0, 2 };
    mlp_forward(&m, b, x, t, other, N);
    int differs = 1;
    for (int n = 0; n < N; n++) differs &= b[2 * n] != a[2 * n] || b[2 * n + 1] != a[2 * n + 1];
    CHECK(differs, "the output changes with the label");
    /* with cls_emb = 0 the conditional MLP is the unconditional one, number for number */
    memset(ps.w + emb->offset, 0, emb->n * sizeof(real));
    mlp_forward(&m, a, x, t, y, N);
    mlp_forward(&m0, b, x, t, NULL, N);
    int same = 1;
    for (int i = 0; i < N * D; i++) same &= a[i] == b[i];
    CHECK(same, "a zero label embedding gives the unconditional MLP's outputs exactly");

    mlp_free(&m); mlp_free(&m0);
    params_free(&ps); params_free(&ps0);
}

/* backward with another N than the last forward's: the caches hold other examples */
typedef struct { Mlp *m; real *dout; int N; } BackwardCall;
static void backward_call(void *p) {
    BackwardCall *b = p;
    mlp_backward(b->m, NULL, b->dout, b->N);
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
    Ctx c = { &m, x, out, dout, t, NULL, N };
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
    for (size_t i = 0; i < ps.total; i++) doubled &= fabs(ps.g[i] - 2 * g1[i]) <= SAME_TOL * (1 + fabs(ps.g[i]));
    CHECK(doubled, "mlp_backward accumulates into the gradients");
    free(g1);

    /* the output depends on t through the embedding */
    real out2[N * D];
    int t2[N] = { 2, 25, 50 };
    mlp_forward(&m, out2, x, t2, NULL, N);
    CHECK(out2[0] != out[0] && out2[2] == out[2], "output changes with t only where t changed");

    /* backward after a forward of N = 3 with N = 2 dies, naming both */
    BackwardCall call = { &m, dout, 2 };
    check_dies("mlp_backward with another N", backward_call, &call,
               "mlp_backward: N = 2, but the last forward had N = 3");

    mlp_free(&m);
    params_free(&ps);
    test_conditional();
    return test_summary("test_mlp");
}
