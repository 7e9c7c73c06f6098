/* test_guidance.c: class-conditional diffusion and classifier-free guidance (guidance.h).
 *
 *   - label dropout leaves ∅ with frequency p_uncond (binomial bound computed here),
 *     per class too, and touches nothing else;
 *   - the guided denoiser at w = 0 is plain conditional sampling bit for bit (ancestral
 *     and DDIM, with a conditional MLP), and at w ≠ 0 the formula (1 + w) ε̂_c − w ε̂_∅,
 *     the same guided ε̃ whatever the parametrization;
 *   - the exact guided field is the score of q_t(x|c)^{1+w} q_t(x)^{−w} (finite
 *     differences of the log-densities);
 *   - ancestral sampling with the exact conditional ε* reproduces the dog component's
 *     mean and covariance within sampling error, and lands on the dog hill;
 *   - the tilted-density sampler against its moments by quadrature.
 * Built with real = double. Sizes: N = samples, K = classes.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../guidance.h"
#include "../mlp.h"
#include "../oracle.h"

#define Z_BOUND 5.0        /* statistical checks: 5 standard errors (false alarm ~6e-7) */
#define FORMULA_TOL 1e-12  /* two routes to the same double, a few roundings apart */
#define FD_H 1e-5          /* central difference step for the score of a log-density */
#define FD_TOL 1e-7        /* its truncation O(h²) and rounding O(1e-16/h) errors, ×100 */
#define READ_BACK_TOL 1e-9 /* relative: an x₀/μ/v output read back as ε divides by √(1−ᾱ_t)
                              or √ᾱ_t: rounding grown by up to ~1e4 */

/* ========================================================================================
 * Label dropout */

static void test_label_dropout(void) {
    enum { N = 200000, K = 3 };
    const double p = 0.1;
    int *y = xmalloc(N * sizeof(int), "labels"), *y0 = xmalloc(N * sizeof(int), "labels");
    Rng r;
    rng_seed(&r, 3);
    for (int n = 0; n < N; n++) y0[n] = rng_int(&r, K);
    memcpy(y, y0, N * sizeof(int));
    Rng a = r;
    int nulls = label_dropout(y, N, K, p, &r);
    /* nulls ~ Binomial(N, p): mean N p, sd √(N p (1 − p)) */
    double sd = sqrt(N * p * (1 - p));
    printf("label dropout: %d of %d labels became null (expected %.0f ± %.0f)\n", nulls, N,
           N * p, sd);
    CHECK(fabs(nulls - N * p) <= Z_BOUND * sd, "dropout frequency %d vs N p = %.0f (5 sd = %.0f)",
          nulls, N * p, Z_BOUND * sd);
    int kept_ok = 1, per_class_ok = 1, count = 0;
    for (int n = 0; n < N; n++) {
        kept_ok &= y[n] == y0[n] || y[n] == K;
        count += y[n] == K;
    }
    CHECK(kept_ok && count == nulls, "dropout only ever writes the null label, and counts it");
    for (int c = 0; c < K; c++) {         /* independent of the class */
        int nc = 0, dropped = 0;
        for (int n = 0; n < N; n++) if (y0[n] == c) { nc++; dropped += y[n] == K; }
        double sdc = sqrt(nc * p * (1 - p));
        if (fabs(dropped - nc * p) > Z_BOUND * sdc) per_class_ok = 0;
    }
    CHECK(per_class_ok, "every class is dropped with frequency p (5 sd each)");
    /* a wrong p would be seen: 0.12 is 30 sd away from 0.1 at this N (the bounds of the
     * two do not overlap) */
    CHECK(fabs(N * 0.12 - N * p) > 2 * Z_BOUND * sd, "the bound can tell p = 0.1 from 0.12");
    /* already-null labels stay null; p = 0 and p = 1; N draws whatever p */
    int again = label_dropout(y, N, K, 0.0, &a);
    CHECK(again == nulls, "p = 0 changes nothing (%d nulls stay)", again);
    Rng b = a, c2 = a;
    label_dropout(y, N, K, 1.0, &b);
    int all = 1;
    for (int n = 0; n < N; n++) all &= y[n] == K;
    CHECK(all, "p = 1 makes every label null");
    memcpy(y, y0, N * sizeof(int));
    label_dropout(y, N, K, 0.5, &c2);
    CHECK(rng_u64(&b) == rng_u64(&c2), "dropout draws N uniforms whatever p is");
    free(y); free(y0);
}

/* ========================================================================================
 * The guided denoiser */

static void test_guided_w0_is_conditional(void) {
    enum { N = 64, K = 2, T = 30 };
    MlpConfig cfg = mlp_default_config(2, N);
    cfg.num_classes = K;
    cfg.hidden = 32;
    Rng r;
    rng_seed(&r, 11);
    Mlp m;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&m, &cfg, &ps, &r);
    Denoiser net = mlp_denoiser(&m);
    Guided g;
    guided_init(&g, &net, 0.0);
    Denoiser gd = guided_denoiser(&g);
    Schedule s;
    schedule_build(&s, SCHED_COSINE, T);
    DdpmConfig dc = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    int y[N];
    for (int n = 0; n < N; n++) y[n] = n % (K + 1);   /* classes and ∅ */
    real a[N * 2], b[N * 2];
    Rng ra, rb;
    rng_seed(&ra, 5); rng_seed(&rb, 5);
    p_sample_loop(&net, a, y, &dc, &s, N, 0, &ra, NULL, NULL);
    p_sample_loop(&gd, b, y, &dc, &s, N, 0, &rb, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0, "ancestral: guidance w = 0 = conditional sampling, bit for bit");
    rng_seed(&ra, 6); rng_seed(&rb, 6);
    ddim_sample_loop(&net, a, y, &dc, &s, N, 10, 0.5, 0, &ra, NULL, NULL);
    ddim_sample_loop(&gd, b, y, &dc, &s, N, 10, 0.5, 0, &rb, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0, "DDIM: guidance w = 0 = conditional sampling, bit for bit");
    /* w = 2 differs, and is (1 + w) out_c − w out_∅ */
    g.w = 2.0;
    real xt[N * 2], oc[N * 2], on[N * 2], og[N * 2];
    int t[N];
    for (int n = 0; n < N; n++) t[n] = 1 + n % T;
    rng_fill_normal(&r, xt, N * 2);
    net.forward(net.self, oc, xt, t, y, N);
    net.forward(net.self, on, xt, t, NULL, N);
    gd.forward(gd.self, og, xt, t, y, N);
    double worst = 0.0;
    for (int i = 0; i < N * 2; i++)
        worst = fmax(worst, fabs(og[i] - (3.0 * oc[i] - 2.0 * on[i])) / (1 + fabs(og[i])));
    CHECK(worst < FORMULA_TOL, "guided output = 3 out_c - 2 out_null (w = 2): worst %.2g", worst);
    rng_seed(&ra, 5); rng_seed(&rb, 5);
    p_sample_loop(&net, a, y, &dc, &s, N, 0, &ra, NULL, NULL);
    p_sample_loop(&gd, b, y, &dc, &s, N, 0, &rb, NULL, NULL);
    CHECK(memcmp(a, b, sizeof a) != 0, "w = 2 samples differ from conditional ones");
    guided_free(&g);
    mlp_free(&m);
    params_free(&ps);
    schedule_free(&s);
}

/* A learned variance (2 D outputs): the prediction is guided, v is the conditional one's. */
static void test_guided_learned_var(void) {
    enum { N = 8, K = 2 };
    MlpConfig cfg = mlp_default_config(2, N);
    cfg.num_classes = K;
    cfg.hidden = 16;
    cfg.learned_var = 1;
    Rng r;
    rng_seed(&r, 12);
    Mlp m;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&m, &cfg, &ps, &r);
    Denoiser net = mlp_denoiser(&m);
    Guided g;
    guided_init(&g, &net, 1.0);
    Denoiser gd = guided_denoiser(&g);
    real xt[N * 2], oc[N * 4], on[N * 4], og[N * 4];
    int t[N], y[N];
    for (int n = 0; n < N; n++) { t[n] = 1 + 3 * n; y[n] = n % K; }
    rng_fill_normal(&r, xt, N * 2);
    net.forward(net.self, oc, xt, t, y, N);
    net.forward(net.self, on, xt, t, NULL, N);
    gd.forward(gd.self, og, xt, t, y, N);
    double worst = 0.0;
    int v_same = 1;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < 2; i++) {
            worst = fmax(worst, fabs(og[4 * n + i] - (2 * oc[4 * n + i] - on[4 * n + i])));
            v_same &= og[4 * n + 2 + i] == oc[4 * n + 2 + i];
        }
    CHECK(gd.learned_var == 1 && worst < FORMULA_TOL && v_same,
          "learned variance: prediction guided (worst %.2g), v kept from the conditional", worst);
    guided_free(&g);
    mlp_free(&m);
    params_free(&ps);
}

/* Guiding x̂₀ (or v̂, μ̂) outputs gives the same ε̃ as guiding ε̂ outputs: the exact oracle
 * in each parametrization, guided, read back as ε. */
static void test_guidance_any_parametrization(const Mixture2D *mix) {
    enum { N = 32, T = 40 };
    Schedule s;
    schedule_build(&s, SCHED_COSINE, T);
    real xt[N * 2], out[N * 2], eps_ref[N * 2], eps[N * 2], x0[N * 2];
    int t[N], y[N];
    Rng r;
    rng_seed(&r, 9);
    rng_fill_normal(&r, xt, N * 2);
    for (int n = 0; n < N; n++) { t[n] = 1 + n % T; y[n] = n % 2; }
    MixtureOracle o;
    mixture_oracle_init(&o, mix, &s, PRED_EPS, N);
    Denoiser od = mixture_oracle_denoiser(&o);
    Guided g;
    guided_init(&g, &od, 1.5);
    Denoiser gd = guided_denoiser(&g);
    gd.forward(gd.self, eps_ref, xt, t, y, N);
    /* and the exact guided field of data.c, the same numbers by another route */
    double worst_field = 0.0;
    for (int n = 0; n < N; n++) {
        double x[2] = { xt[2 * n], xt[2 * n + 1] }, e[2];
        mixture_eps_guided(mix, s.alpha_bar[t[n]], x, y[n], 1.5, e);
        for (int i = 0; i < 2; i++) worst_field = fmax(worst_field, fabs(e[i] - eps_ref[2 * n + i]));
    }
    CHECK(worst_field < FORMULA_TOL, "guided oracle = mixture_eps_guided: worst %.2g", worst_field);
    const Parametrization ps[3] = { PRED_X0, PRED_MU, PRED_V };
    for (int k = 0; k < 3; k++) {
        o.param = ps[k];
        gd.forward(gd.self, out, xt, t, y, N);
        prediction_to_x0_eps(x0, eps, out, ps[k], xt, &s, t, N, 2);   /* read back as ε */
        double worst = 0.0;
        for (int i = 0; i < N * 2; i++)
            worst = fmax(worst, fabs(eps[i] - eps_ref[i]) / (1 + fabs(eps_ref[i])));
        CHECK(worst < READ_BACK_TOL, "guiding %s outputs = guiding eps (worst %.2g)",
              parametrization_name(ps[k]), worst);
    }
    guided_free(&g);
    mixture_oracle_free(&o);
    schedule_free(&s);
}

/* ========================================================================================
 * The exact fields */

/* ε̃ = −√(1−ᾱ) ∇ [(1 + w) log q_t(x|c) − w log q_t(x)], by central differences of the
 * two log-densities (mixture_logpdf), against mixture_eps_guided (mixture_score). */
static void test_guided_field_is_tilted_score(const Mixture2D *mix) {
    const double abars[3] = { 0.95, 0.5, 0.05 }, ws[3] = { 0.0, 1.0, 4.0 };
    const double pts[3][2] = { { 0.3, -0.2 }, { -0.8, 0.9 }, { 1.5, 0.4 } };
    double worst = 0.0;
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 2; c++)
            for (int iw = 0; iw < 3; iw++)
                for (int ip = 0; ip < 3; ip++) {
                    Mixture2D qt, qc;
                    mixture_diffuse(mix, abars[a], &qt);
                    mixture_component(&qt, c, &qc);          /* q_t(x|c): the diffused component */
                    double e[2], x[2] = { pts[ip][0], pts[ip][1] };
                    mixture_eps_guided(mix, abars[a], x, c, ws[iw], e);
                    for (int i = 0; i < 2; i++) {
                        double xp[2] = { x[0], x[1] }, xm[2] = { x[0], x[1] };
                        xp[i] += FD_H; xm[i] -= FD_H;
                        double lp = (1 + ws[iw]) * mixture_logpdf(&qc, xp) - ws[iw] * mixture_logpdf(&qt, xp);
                        double lm = (1 + ws[iw]) * mixture_logpdf(&qc, xm) - ws[iw] * mixture_logpdf(&qt, xm);
                        double fd = -sqrt(1 - abars[a]) * (lp - lm) / (2 * FD_H);
                        worst = fmax(worst, fabs(fd - e[i]) / (1 + fabs(e[i])));
                    }
                }
    CHECK(worst < FD_TOL, "guided field = score of q_t(x|c)^(1+w) q_t(x)^(-w): worst %.2g", worst);
}

/* ========================================================================================
 * Sampling with the exact conditional ε* */

static void sample_moments(const real *x, int N, double mean[2], double cov[2][2]) {
    mean[0] = mean[1] = 0.0;
    for (int n = 0; n < N; n++) for (int i = 0; i < 2; i++) mean[i] += x[2 * n + i] / N;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += (x[2 * n + i] - mean[i]) * (x[2 * n + j] - mean[j]);
            cov[i][j] = sum / N;
        }
}

/* |mean − μ| ≤ 5 √(Σ_ii/N); |cov − Σ| ≤ 5 √((Σ_ii Σ_jj + Σ_ij²)/N) (Gaussian sample moments) */
static int moments_match(const char *what, const real *x, int N, const double mu[2],
                         const double S[2][2]) {
    double mean[2], cov[2][2];
    sample_moments(x, N, mean, cov);
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        double se = sqrt(S[i][i] / N);
        if (fabs(mean[i] - mu[i]) > Z_BOUND * se) {
            ok = 0;
            fprintf(stderr, "  %s: mean[%d] %.5f vs %.5f (5 SE = %.5f)\n", what, i, mean[i], mu[i], Z_BOUND * se);
        }
        for (int j = 0; j < 2; j++) {
            double se_c = sqrt((S[i][i] * S[j][j] + S[i][j] * S[i][j]) / N);
            if (fabs(cov[i][j] - S[i][j]) > Z_BOUND * se_c) {
                ok = 0;
                fprintf(stderr, "  %s: cov[%d][%d] %.5f vs %.5f (5 SE = %.5f)\n", what, i, j,
                        cov[i][j], S[i][j], Z_BOUND * se_c);
            }
        }
    }
    return ok;
}

static void test_oracle_conditional_sampling(const Mixture2D *mix) {
    enum { N = 6000 };
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 1000);   /* T = 1000: discretization far below 5 SE */
    MixtureOracle o;
    mixture_oracle_init(&o, mix, &s, PRED_EPS, N);
    Denoiser net = mixture_oracle_denoiser(&o);
    DdpmConfig dc = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    real *x = xmalloc((size_t)N * 2 * sizeof(real), "samples");
    int *y = xmalloc((size_t)N * sizeof(int), "labels");
    Rng r;
    for (int c = 0; c < 2; c++) {
        for (int n = 0; n < N; n++) y[n] = c;
        rng_seed(&r, 40 + c);
        p_sample_loop(&net, x, y, &dc, &s, N, 0, &r, NULL, NULL);
        char what[64];
        snprintf(what, sizeof what, "exact conditional sampling, class %s", mix->label[c]);
        CHECK(moments_match(what, x, N, mix->mu[c], mix->cov[c]),
              "%s reproduces the component's mean and covariance", what);
        int in_class = 0;
        for (int n = 0; n < N; n++) {
            double p[2] = { x[2 * n], x[2 * n + 1] };
            in_class += mixture_component_of(mix, p) == c;
        }
        /* the components overlap a little: the exact share of component c classified c,
         * P(argmax = c | c), is what sampling must reach; it is ≥ 0.99 here (printed) */
        printf("%s: %.2f %% classified %s\n", what, 100.0 * in_class / N, mix->label[c]);
        CHECK(in_class >= 0.99 * N, "%s puts >= 99 %% on its hill (%d of %d)", what, in_class, N);
    }
    /* the unconditional oracle (y = NULL) is the mixture: not one component */
    rng_seed(&r, 42);
    p_sample_loop(&net, x, NULL, &dc, &s, N, 0, &r, NULL, NULL);
    int dogs = 0;
    for (int n = 0; n < N; n++) {
        double p[2] = { x[2 * n], x[2 * n + 1] };
        dogs += mixture_component_of(mix, p) == 0;
    }
    /* against true mixture samples classified the same way: two binomial shares */
    mixture_sample(mix, x, NULL, N, &r);
    int true_dogs = 0;
    for (int n = 0; n < N; n++) {
        double p[2] = { x[2 * n], x[2 * n + 1] };
        true_dogs += mixture_component_of(mix, p) == 0;
    }
    double ps = 0.5 * (dogs + true_dogs) / N, sd = sqrt(ps * (1 - ps) * 2.0 / N);
    CHECK(fabs((double)(dogs - true_dogs) / N) < Z_BOUND * sd,
          "without a label the oracle samples the mixture: %d vs %d of %d dogs", dogs,
          true_dogs, N);
    mixture_oracle_free(&o);
    free(x); free(y);
    schedule_free(&s);
}

/* The tilted density p_w ∝ q(x|c)^{1+w} q(x)^{−w} by rejection, against its mean by
 * quadrature on a fine grid, for two overlapping hills (the dog and cat hills barely
 * overlap: there p_w is the dog component to 4 digits, printed by toy2d --guidance-sweep). */
static void test_tilted_sample(void) {
    Mixture2D mix_s, *mix = &mix_s;
    memset(mix, 0, sizeof *mix);
    mix->K = 2;
    const double w0 = 0.4, mus[2][2] = { { 0.0, 0.0 }, { 1.2, 0.5 } };
    for (int k = 0; k < 2; k++) {
        mix->w[k] = k ? 1 - w0 : w0;
        mix->mu[k][0] = mus[k][0]; mix->mu[k][1] = mus[k][1];
        mix->cov[k][0][0] = 0.6; mix->cov[k][1][1] = 0.4; mix->cov[k][0][1] = mix->cov[k][1][0] = 0.1;
        mix->label[k] = k ? "b" : "a";
    }
    enum { N = 20000, G = 400 };
    const double w = 2.0;
    int c = 0;
    real *x = xmalloc((size_t)N * 2 * sizeof(real), "tilted");
    Rng r;
    rng_seed(&r, 8);
    double acc = tilted_sample(mix, c, w, x, N, &r);
    /* quadrature of p_w over a box of ±8 sd around the component */
    double lo[2], hi[2], Z = 0, m[2] = { 0, 0 }, m2[2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        double sdi = sqrt(mix->cov[c][i][i]);
        lo[i] = mix->mu[c][i] - 8 * sdi; hi[i] = mix->mu[c][i] + 8 * sdi;
    }
    Mixture2D one;
    mixture_component(mix, c, &one);
    double dA = (hi[0] - lo[0]) / G * (hi[1] - lo[1]) / G;
    for (int a = 0; a < G; a++)
        for (int b = 0; b < G; b++) {
            double p[2] = { lo[0] + (a + 0.5) * (hi[0] - lo[0]) / G, lo[1] + (b + 0.5) * (hi[1] - lo[1]) / G };
            double dens = exp((1 + w) * mixture_logpdf(&one, p) - w * mixture_logpdf(mix, p));
            Z += dens * dA;
            for (int i = 0; i < 2; i++) { m[i] += p[i] * dens * dA; m2[i] += p[i] * p[i] * dens * dA; }
        }
    double mean[2], cov[2][2];
    sample_moments(x, N, mean, cov);
    /* the acceptance rate is E_{q(·|c)}[P(c|x)^w] = w_c^w Z: binomial error */
    double acc_exact = pow(mix->w[c], w) * Z;
    double acc_sd = acc_exact * sqrt((1 - acc_exact) / N);   /* N / tries, tries negative binomial */
    CHECK(fabs(acc - acc_exact) < Z_BOUND * acc_sd,
          "tilted acceptance %.4f vs quadrature %.4f", acc, acc_exact);
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        double mi = m[i] / Z, vi = m2[i] / Z - mi * mi;
        if (fabs(mean[i] - mi) > Z_BOUND * sqrt(vi / N)) ok = 0;
        if (i == 0) printf("tilted density (w = %g, %s): mean %.4f %.4f by quadrature, %.4f %.4f "
                           "sampled; acceptance %.3f\n", w, mix->label[c], m[0] / Z, m[1] / Z,
                           mean[0], mean[1], acc);
    }
    CHECK(ok, "tilted samples have the quadrature mean (5 SE)");
    double shift = hypot(m[0] / Z - mix->mu[c][0], m[1] / Z - mix->mu[c][1]);
    CHECK(shift > 10 * sqrt(mix->cov[c][0][0] / N), "tilting moves the mean off the component's "
          "(by %.4f)", shift);
    free(x);
}

/* p = 0 draws its N uniforms too (mutation testing: "N draws whatever p" was checked for
 * p = 1 and 0.5 only), so that a run's random stream does not depend on p_uncond */
static void test_label_dropout_draws_at_p0(void) {
    enum { N = 1000, K = 3 };
    int y[N];
    for (int n = 0; n < N; n++) y[n] = n % K;
    Rng a, b;
    rng_seed(&a, 9);
    b = a;
    int nulls = label_dropout(y, N, K, 0.0, &a);
    label_dropout(y, N, K, 0.5, &b);
    CHECK(nulls == 0, "p = 0 drops nothing (%d)", nulls);
    CHECK(rng_u64(&a) == rng_u64(&b), "p = 0 draws N uniforms too, as p = 0.5 does");
}

int main(void) {
    /* the dog/cat mixture in standardized coordinates, as the programs use it */
    Mixture2D raw, mix;
    toy_mixture(TOY_DOGCAT, &raw);
    double mean[2], cov[2][2], sd[2];
    mixture_moments(&raw, mean, cov);
    sd[0] = sqrt(cov[0][0]); sd[1] = sqrt(cov[1][1]);
    mixture_affine(&raw, mean, sd, &mix);

    test_label_dropout();
    test_label_dropout_draws_at_p0();
    test_guided_w0_is_conditional();
    test_guided_learned_var();
    test_guidance_any_parametrization(&mix);
    test_guided_field_is_tilted_score(&mix);
    test_oracle_conditional_sampling(&mix);
    test_tilted_sample();
    return test_summary("test_guidance");
}
