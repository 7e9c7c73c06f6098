/* mlp.c: the 2D denoiser (see mlp.h for the exact default architecture).
 *
 * forward:  in = [x, emb(t)] (+ cls_emb[y] if K > 0);  h_l = SiLU(Linear_l(h_{l−1}));
 *           out = Linear_L(h_{L−1})
 * backward: the same layers in exact reverse order, each quoting its forward.
 * Sizes: N = batch, D = data dimension, E = embedding size, H = hidden width.
 */
#include "mlp.h"

#include <stdlib.h>
#include <string.h>

MlpConfig mlp_default_config(int D, int max_batch) {
    MlpConfig c = { .D = D, .emb_dim = 32, .hidden = 128, .layers = 3, .max_batch = max_batch };
    return c;
}

void mlp_init(Mlp *m, const MlpConfig *cfg, ParamSet *ps, Rng *rng) {
    memset(m, 0, sizeof *m);
    if (cfg->layers < 1 || cfg->layers > MLP_MAX_HIDDEN_LAYERS || cfg->emb_dim % 2 ||
        cfg->D < 1 || cfg->hidden < 1 || cfg->max_batch < 1 || cfg->num_classes < 0 ||
        (cfg->learned_var != 0 && cfg->learned_var != 1))
        die("MLP config: need 1..%d hidden layers, an even embedding size, positive sizes, "
            "learned_var 0 or 1, num_classes >= 0",
            MLP_MAX_HIDDEN_LAYERS);
    m->cfg = *cfg;
    m->params = ps;
    m->n_linear = cfg->layers + 1;
    int H = cfg->hidden, in0 = cfg->D + cfg->emb_dim;
    for (int l = 0; l < m->n_linear; l++) {
        m->in_dim[l] = l == 0 ? in0 : H;
        m->out_dim[l] = l == m->n_linear - 1 ? cfg->D * (1 + cfg->learned_var) : H;
        char name[PARAM_NAME_LEN];
        snprintf(name, sizeof name, "fc%d.w", l);
        params_add(ps, &m->w[l], &m->dw[l], name, 2, m->in_dim[l], m->out_dim[l]);
        snprintf(name, sizeof name, "fc%d.b", l);
        params_add(ps, &m->b[l], &m->db[l], name, 1, m->out_dim[l]);
    }
    int K = cfg->num_classes;
    if (K > 0) params_add(ps, &m->cls_emb, &m->dcls_emb, "cls_emb", 2, K + 1, in0);
    params_alloc(ps);
    for (int l = 0; l < m->n_linear; l++) {  /* U(−1/√fan_in, 1/√fan_in) */
        init_uniform(m->w[l], (size_t)m->in_dim[l] * m->out_dim[l], m->in_dim[l], rng);
        init_uniform(m->b[l], (size_t)m->out_dim[l], m->in_dim[l], rng);
    }
    if (K > 0)   /* N(0, 1), as the common embedding layers start */
        for (size_t i = 0; i < (size_t)(K + 1) * in0; i++) m->cls_emb[i] = (real)rng_normal(rng);
    ema_reset(ps);

    size_t N = (size_t)cfg->max_batch, widest = (size_t)(in0 > H ? in0 : H);
    m->t_real = xmalloc(N * sizeof(real), "MLP t");
    m->input = xmalloc(N * in0 * sizeof(real), "MLP input");
    m->y = xmalloc(N * sizeof(int), "MLP labels");
    for (int l = 0; l < cfg->layers; l++) {
        m->pre[l] = xmalloc(N * H * sizeof(real), "MLP pre-activation");
        m->act[l] = xmalloc(N * H * sizeof(real), "MLP activation");
    }
    m->grad_a = xmalloc(N * widest * sizeof(real), "MLP backward scratch");
    m->grad_b = xmalloc(N * widest * sizeof(real), "MLP backward scratch");
}

void mlp_free(Mlp *m) {
    free(m->t_real); free(m->input); free(m->y);
    for (int l = 0; l < m->cfg.layers; l++) { free(m->pre[l]); free(m->act[l]); }
    free(m->grad_a); free(m->grad_b);
    memset(m, 0, sizeof *m);
}

void mlp_forward(Mlp *m, real *out, const real *x, const int *t, const int *y, int N) {
    const MlpConfig *c = &m->cfg;
    int D = c->D, E = c->emb_dim, in0 = D + E, H = c->hidden;
    if (N > c->max_batch) die("mlp_forward: batch %d > max_batch %d", N, c->max_batch);
    m->last_N = N;
    if (y && c->num_classes == 0) die("mlp_forward: labels given to an unconditional MLP");
    /* in = [x, emb(t)] */
    for (int n = 0; n < N; n++) m->t_real[n] = (real)t[n];
    real *emb = m->grad_a;  /* scratch: (N, E), copied into the input right away */
    timestep_embedding_forward(emb, m->t_real, N, E);
    for (int n = 0; n < N; n++) {
        real *in_n = m->input + (size_t)n * in0;          /* seek to input[n, :] */
        memcpy(in_n, x + (size_t)n * D, (size_t)D * sizeof(real));
        memcpy(in_n + D, emb + (size_t)n * E, (size_t)E * sizeof(real));
    }
    /* in += cls_emb[y] (conditional only); the labels are kept for the backward */
    if (c->num_classes > 0) {
        for (int n = 0; n < N; n++) m->y[n] = y ? y[n] : c->num_classes;
        label_embedding_forward(m->input, m->cls_emb, m->y, c->num_classes, N, in0);
    }
    /* h_l = SiLU(Linear_l(h_{l−1})) */
    const real *h = m->input;
    for (int l = 0; l < c->layers; l++) {
        linear_forward(m->pre[l], h, m->w[l], m->b[l], N, m->in_dim[l], H);
        silu_forward(m->act[l], m->pre[l], (size_t)N * H);
        h = m->act[l];
    }
    /* out = Linear_L(h_{L−1}) */
    int L = m->n_linear - 1;
    linear_forward(out, h, m->w[L], m->b[L], N, H, m->out_dim[L]);   /* (N, D) or (N, 2 D) */
}

void mlp_backward(Mlp *m, real *dx, const real *dout, int N) {
    const MlpConfig *c = &m->cfg;
    int D = c->D, E = c->emb_dim, in0 = D + E, H = c->hidden, L = m->n_linear - 1;
    real *dh = m->grad_a, *dpre = m->grad_b;
    if (N != m->last_N)   /* the caches hold the last forward's N examples, no others */
        die("mlp_backward: N = %d, but the last forward had N = %d (call forward first)", N,
            m->last_N);
    /* forward: out = Linear_L(h_{L−1}) */
    memset(dh, 0, (size_t)N * H * sizeof(real));
    linear_backward(dh, m->dw[L], m->db[L], dout, m->act[L - 1], m->w[L], N, H, m->out_dim[L]);
    for (int l = c->layers - 1; l >= 0; l--) {
        /* forward: act[l] = SiLU(pre[l]) */
        memset(dpre, 0, (size_t)N * H * sizeof(real));
        silu_backward(dpre, dh, m->pre[l], (size_t)N * H);
        /* forward: pre[l] = Linear_l(h_{l−1}), h_{−1} = input */
        const real *h_in = l > 0 ? m->act[l - 1] : m->input;
        int width = m->in_dim[l];
        int need_din = l > 0 || dx != NULL || c->num_classes > 0;
        memset(dh, 0, (size_t)N * width * sizeof(real));
        linear_backward(need_din ? dh : NULL, m->dw[l], m->db[l], dpre, h_in, m->w[l],
                        N, width, H);
    }
    /* forward: input = [x, emb(t)] + cls_emb[y]: every column flows into cls_emb[y];
     * t is an integer, so besides it only the x columns flow back */
    if (c->num_classes > 0)
        label_embedding_backward(m->dcls_emb, dh, m->y, c->num_classes, N, in0);
    if (dx)
        for (int n = 0; n < N; n++)
            memcpy(dx + (size_t)n * D, dh + (size_t)n * in0, (size_t)D * sizeof(real));
}

static void mlp_forward_fn(void *self, real *out, const real *x, const int *t, const int *y,
                           int N) {
    mlp_forward((Mlp *)self, out, x, t, y, N);
}
static void mlp_backward_fn(void *self, real *dx, const real *dout, int N) {
    mlp_backward((Mlp *)self, dx, dout, N);
}

Denoiser mlp_denoiser(Mlp *m) {
    return (Denoiser){ .self = m, .D = m->cfg.D, .max_batch = m->cfg.max_batch, .params = m->params,
                       .learned_var = m->cfg.learned_var,
                       .forward = mlp_forward_fn, .backward = mlp_backward_fn };
}
