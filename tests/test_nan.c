/* test_nan.c: numbers that go bad stop training before anything is saved (issue 15,
 * finding 2: a learning rate of 1 ended with loss nan, exit 0, and a checkpoint of NaNs).
 *   - params_check_finite names the loss, or the first tensor holding a NaN or an
 *     infinity and where, in the order loss, g, w, m, v, ema, for a NaN planted in each
 *   - an absurd learning rate (1e300: Adam's steps are about lr in size, so the weights
 *     overflow double within a few steps) is caught at a step of the loop, with the step
 *     and the tensor named; the same loop with the default rate passes every step
 * Built with real = double.
 */
#include <string.h>

#include "harness.h"
#include "../ddpm.h"
#include "../mlp.h"
#include "../schedule.h"

#define BATCH 64
#define STEPS 50                /* the absurd rate breaks within a few; the sane one never */
#define ABSURD_LR 1e300
#define SANE_LR 1e-3

static void test_planted(void) {
    ParamSet ps;
    params_init(&ps);
    params_add(&ps, NULL, NULL, "a.w", 2, 3, 4);
    params_add(&ps, NULL, NULL, "b.b", 1, 5);
    params_alloc(&ps);
    char msg[256];
    CHECK(params_check_finite(&ps, 0.5, 7, msg, sizeof msg) == 0 && msg[0] == '\0',
          "all finite: %s", msg);
    CHECK(params_check_finite(&ps, NAN, 7, msg, sizeof msg) == -1 &&
          strcmp(msg, "step 7: the loss is nan") == 0, "nan loss: %s", msg);
    CHECK(params_check_finite(&ps, INFINITY, 8, msg, sizeof msg) == -1 &&
          strcmp(msg, "step 8: the loss is inf") == 0, "inf loss: %s", msg);
    real *bufs[5] = { ps.g, ps.w, ps.m, ps.v, ps.ema };
    const char *want[5] = { "step 9: the gradient of b.b holds nan (at index 3)",
                            "step 9: the weights of b.b holds nan (at index 3)",
                            "step 9: Adam's first moment of b.b holds nan (at index 3)",
                            "step 9: Adam's second moment of b.b holds nan (at index 3)",
                            "step 9: the EMA of b.b holds nan (at index 3)" };
    for (int b = 0; b < 5; b++) {
        bufs[b][12 + 3] = (real)NAN;        /* b.b starts after a.w's 12 numbers */
        CHECK(params_check_finite(&ps, 0.5, 9, msg, sizeof msg) == -1 &&
              strcmp(msg, want[b]) == 0, "planted in buffer %d: %s", b, msg);
        bufs[b][12 + 3] = 0;
    }
    ps.w[0] = (real)-INFINITY;
    ps.g[13] = (real)NAN;                   /* the gradient is named first */
    CHECK(params_check_finite(&ps, 0.5, 1, msg, sizeof msg) == -1 &&
          strstr(msg, "gradient of b.b"), "gradient before weights: %s", msg);
    ps.g[13] = 0;
    CHECK(params_check_finite(&ps, 0.5, 1, msg, sizeof msg) == -1 &&
          strstr(msg, "the weights of a.w holds -inf (at index 0)"), "-inf weight: %s", msg);
    params_free(&ps);
}

/* Trains the 2D MLP on a fixed normal batch at rate lr; returns the step at which
 * params_check_finite first failed (its message in msg), or 0 if it never did. */
static long train_until_bad(double lr, char *msg, size_t len) {
    MlpConfig cfg = mlp_default_config(2, BATCH);
    DdpmConfig dc = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    AdamConfig ac = adam_default(lr);
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 50);
    Rng rng;
    rng_seed(&rng, 3);
    real x0[BATCH * 2];
    rng_fill_normal(&rng, x0, BATCH * 2);
    ParamSet ps;
    params_init(&ps);
    Mlp m;
    mlp_init(&m, &cfg, &ps, &rng);
    Denoiser net = mlp_denoiser(&m);
    TrainWork work;
    train_work_init(&work, BATCH, 2);
    long bad = 0;
    for (long step = 1; step <= STEPS && !bad; step++) {
        double loss = ddpm_train_step(&net, x0, NULL, BATCH, &dc, &s, &rng, &work);
        adam_step(&ps, &ac);
        ema_update(&ps, 0.99);
        if (params_check_finite(&ps, loss, step, msg, len) != 0) bad = step;
    }
    train_work_free(&work);
    mlp_free(&m);
    params_free(&ps);
    schedule_free(&s);
    return bad;
}

static void test_absurd_rate(void) {
    char msg[256];
    long bad = train_until_bad(ABSURD_LR, msg, sizeof msg);
    char step[32];
    snprintf(step, sizeof step, "step %ld: ", bad);
    CHECK(bad > 0 && strncmp(msg, step, strlen(step)) == 0 &&
          (strstr(msg, "loss") || strstr(msg, " of ")),
          "lr %g stops at a named step and tensor: step %ld, %s", ABSURD_LR, bad, msg);
    printf("test_nan: lr %g: %s\n", ABSURD_LR, msg);
    bad = train_until_bad(SANE_LR, msg, sizeof msg);
    CHECK(bad == 0, "lr %g: %d steps all finite: %s", SANE_LR, STEPS, msg);
}

int main(void) {
    test_planted();
    test_absurd_rate();
    return test_summary("test_nan");
}
