/* test_cli.c: the programs' shared module (cli.c): the command line and the diffusion's
 * options, the checkpoint settings round trip, the training recipe's pieces and the loss
 * log, each against what it must equal computed another way here.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../cli.h"

/* Learning rates are compared exactly where the formula is exact (cos 0 = 1, cos π = −1)
 * and within a few ulps elsewhere. */
#define LR_TOL 1e-15

static void test_options(void) {
    char *argv[] = { "prog", "--T", "30", "--schedule=linear", "--param", "v", "--loss", "kl",
                     "--var", "beta", "--ddim-steps", "7", "--eta=0.5", "--seed", "42", "--out",
                     "dir", "--steps", "9", NULL };
    int argc = (int)(sizeof argv / sizeof *argv) - 1;
    DiffusionOptions d;
    memset(&d, 0, sizeof d);
    CliArgs a = cli_args("prog", argc, argv);
    int shared = 0, steps = -1;
    while (cli_next(&a)) {
        if (diffusion_option(&a, &d)) { shared++; continue; }
        if (cli_is(&a, "--steps")) steps = (int)cli_int(&a, 0, 100);
    }
    diffusion_check(&d);
    CHECK(shared == 9 && steps == 9, "9 shared options and --steps read: %d, %d", shared, steps);
    CHECK(d.T == 30 && d.schedule == SCHED_LINEAR && d.ddpm.param == PRED_V &&
          d.ddpm.weighting == LOSS_KL && d.ddpm.var == VAR_BETA, "values of --T ... --var");
    CHECK(d.ddim == 1 && d.ddim_steps == 7 && d.eta == 0.5 && d.seed == 42 && strcmp(d.out, "dir") == 0,
          "sampler, seed and folder");
    CHECK(d.given.T && d.given.schedule && d.given.param && d.given.loss && d.given.var && d.given.seed,
          "every recorded option marked as given");

    /* --sampler ddim without --ddim-steps samples with T steps; ddpm leaves 0 */
    char *argv2[] = { "prog", "--sampler", "ddim", "--T", "12", NULL };
    memset(&d, 0, sizeof d);
    a = cli_args("prog", 5, argv2);
    while (cli_next(&a)) diffusion_option(&a, &d);
    diffusion_check(&d);
    CHECK(d.ddim_steps == 12 && !d.given.seed, "DDIM defaults to T steps: %d", d.ddim_steps);
    /* the sampler and its step count agree whatever their order (a contradiction such as
     * --sampler ddpm --ddim-steps 5 dies: BAD_INPUTS.md) */
    char *argv3[] = { "prog", "--ddim-steps", "5", "--sampler", "ddim", NULL };
    char *argv4[] = { "prog", "--sampler", "ddim", "--ddim-steps", "5", NULL };
    for (int k = 0; k < 2; k++) {
        memset(&d, 0, sizeof d);
        d.T = 50;
        a = cli_args("prog", 5, k ? argv4 : argv3);
        while (cli_next(&a)) diffusion_option(&a, &d);
        diffusion_check(&d);
        CHECK(d.ddim == 1 && d.ddim_steps == 5 && d.given.sampler == 2,
              "--sampler ddim and --ddim-steps 5 in order %d: ddim_steps %d", k, d.ddim_steps);
    }

    /* flags: alone 1, =yes/=no (1/0, true/false, on/off) as said; never the next argument;
     * "-h" is --help */
    char *argv5[] = { "prog", "--a", "--b=no", "--c=1", "--d=off", "--e=true", "-h", "--f", "x", NULL };
    a = cli_args("prog", 9, argv5);
    int flags[7], nf = 0;
    while (cli_next(&a) && nf < 7) {
        flags[nf++] = cli_is(&a, "--help") ? 7 : cli_flag(&a);
        if (nf == 7) break;
    }
    CHECK(nf == 7 && flags[0] == 1 && flags[1] == 0 && flags[2] == 1 && flags[3] == 0 &&
          flags[4] == 1 && flags[5] == 7 && flags[6] == 1 && a.i == 7,
          "flags read as given, -h as --help, and --f leaves 'x' alone (argument %d)", a.i);

    const char *names[] = { "digits", "idx", "cifar" };
    char buf[64];
    CHECK(strcmp(names_join(buf, sizeof buf, names, 3), "digits|idx|cifar") == 0, "names_join: %s", buf);
    CHECK(name_index("idx", names, 3) == 1 && name_index("id", names, 3) == -1, "name_index");
}

/* What a run says it sampled with, and how many evaluations it counts, for each sampler
 * the options can choose (the programs print sampler_name; an ODE run once said "ddpm") */
static void test_sampler_named(void) {
    char *ode[] = { "prog", "--sampler", "ode", "--T", "12", NULL };
    char *ode_steps[] = { "prog", "--ode-steps", "3", "--T", "12", NULL };
    char *ddim[] = { "prog", "--ddim-steps", "4", "--T", "12", NULL };
    char *ddpm[] = { "prog", "--T", "12", NULL, NULL };
    char **argvs[4] = { ode, ode_steps, ddim, ddpm };
    const char *want_name[4] = { "ode", "ode", "ddim", "ddpm" };
    const int want_evals[4] = { 24, 6, 4, 12 };   /* 2 per Heun step; DDIM steps; T */
    for (int k = 0; k < 4; k++) {
        DiffusionOptions d;
        memset(&d, 0, sizeof d);
        CliArgs a = cli_args("prog", k == 3 ? 3 : 5, argvs[k]);
        while (cli_next(&a)) diffusion_option(&a, &d);
        diffusion_check(&d);
        CHECK(strcmp(sampler_name(&d), want_name[k]) == 0 && sampler_evaluations(&d) == want_evals[k],
              "case %d: sampler %s (want %s), %d evaluations (want %d)", k, sampler_name(&d),
              want_name[k], sampler_evaluations(&d), want_evals[k]);
    }
}

/* toy2d --ode-nll's step counts: 5, 10, 25, 50 capped at T, none twice (T = 100 once
 * printed 50 twice) */
static void test_ode_study_steps(void) {
    const int T[5] = { 1, 7, 25, 50, 200 };
    const int want[5][4] = { { 1 }, { 5, 7 }, { 5, 10, 25 }, { 5, 10, 25, 50 }, { 5, 10, 25, 50 } };
    const int want_n[5] = { 1, 2, 3, 4, 4 };
    for (int k = 0; k < 5; k++) {
        int S[4] = { 0 }, n = ode_study_steps(T[k], S), same = n == want_n[k];
        for (int i = 0; same && i < n; i++) same = S[i] == want[k][i];
        CHECK(same, "T = %d: %d step counts %d %d %d %d (want %d)", T[k], n, S[0], S[1], S[2], S[3],
              want_n[k]);
    }
}

/* Every name of an option's table reads back through the option to its own index, and
 * the name functions give the table's entry: the names the --help lines and messages list
 * (joined from the same tables) are exactly the ones the parser takes, "hybrid" and
 * "learned" (outside LOSS_COUNT and VAR_COUNT) included. */
static DiffusionOptions read_one(const char *opt, const char *value) {
    char *argv[] = { "prog", (char *)opt, (char *)value, NULL };
    DiffusionOptions d;
    memset(&d, 0, sizeof d);
    CliArgs a = cli_args("prog", 3, argv);
    while (cli_next(&a)) diffusion_option(&a, &d);
    return d;
}

static void test_name_tables(void) {
    int bad = 0;
    for (int k = 0; k < SCHED_COUNT; k++) {
        DiffusionOptions d = read_one("--schedule", SCHEDULE_NAMES[k]);
        bad += (int)d.schedule != k || strcmp(schedule_name(d.schedule), SCHEDULE_NAMES[k]) != 0;
    }
    for (int k = 0; k < PRED_COUNT; k++) {
        DiffusionOptions d = read_one("--param", PARAM_NAMES[k]);
        bad += (int)d.ddpm.param != k || strcmp(parametrization_name(d.ddpm.param), PARAM_NAMES[k]) != 0;
    }
    for (int k = 0; k <= LOSS_HYBRID; k++) {
        DiffusionOptions d = read_one("--loss", LOSS_NAMES[k]);
        bad += (int)d.ddpm.weighting != k ||
               strcmp(loss_weighting_name(d.ddpm.weighting), LOSS_NAMES[k]) != 0;
    }
    for (int k = 0; k <= VAR_LEARNED; k++) {
        DiffusionOptions d = read_one("--var", VAR_NAMES[k]);
        bad += (int)d.ddpm.var != k || strcmp(reverse_var_name(d.ddpm.var), VAR_NAMES[k]) != 0;
    }
    CHECK(bad == 0, "every name of the four tables reads back to its index: %d wrong", bad);
    CHECK(strcmp(LOSS_NAMES[LOSS_HYBRID], "hybrid") == 0 && strcmp(VAR_NAMES[VAR_LEARNED], "learned") == 0,
          "hybrid and learned sit at LOSS_HYBRID and VAR_LEARNED");
    DiffusionOptions d = read_one("--sampler", "ode");
    CHECK(d.ode == 1 && d.ddim == 0, "--sampler ode");
    d = read_one("--sampler", "ddim");
    CHECK(d.ode == 0 && d.ddim == 1, "--sampler ddim");
}

/* What diffusion_record writes, diffusion_read reads back; with strict = 0 an explicit
 * --var is kept (a sampling choice) and an explicit --loss ignored. */
static void test_settings_round_trip(void) {
    DiffusionOptions d;
    memset(&d, 0, sizeof d);
    d.T = 77;
    d.schedule = SCHED_SIGMOID;
    d.ddpm = (DdpmConfig){ .param = PRED_X0, .weighting = LOSS_KL, .var = VAR_BETA };
    CkptHeader h;
    ckpt_header_init(&h);
    diffusion_record(&h, &d);
    DiffusionOptions back;
    memset(&back, 0, sizeof back);
    SettingsReader r = { "prog", "file.ckpt", &h, 1, "--resume" };
    diffusion_read(&r, &back);
    CHECK(back.T == 77 && back.schedule == SCHED_SIGMOID && back.ddpm.param == PRED_X0 &&
          back.ddpm.weighting == LOSS_KL && back.ddpm.var == VAR_BETA, "round trip of the settings");
    memset(&back, 0, sizeof back);
    back.ddpm.var = VAR_BETA_TILDE;
    back.ddpm.weighting = LOSS_SIMPLE;
    back.given.var = back.given.loss = 1;
    r.strict = 0;
    diffusion_read(&r, &back);
    CHECK(back.ddpm.var == VAR_BETA_TILDE && back.ddpm.weighting == LOSS_KL && r.strict == 0,
          "sampling: the explicit --var kept, the file's loss taken");
}

static void test_recipe(void) {
    /* the cosine decay at its ends and its middle: lr, lr/2, and lr (1 + cos(π (S−1)/S))/2 */
    enum { S = 1000 };
    CHECK(lr_cosine(0.004, 1, S) == 0.004, "step 1: the full rate");
    CHECK_CLOSE(lr_cosine(0.004, S / 2 + 1, S), 0.002, LR_TOL, "half way: half the rate");
    CHECK_CLOSE(lr_cosine(0.004, S, S), 0.002 * (1 + cos(PI * (S - 1) / S)),
                LR_TOL, "last step");
    /* a minibatch: the rows rng_int picks, in order, from a table whose rows name themselves */
    enum { N = 50, B = 20, D = 3 };
    real train[N * D], batch[B * D];
    for (int i = 0; i < N * D; i++) train[i] = (real)i;
    Rng a, b;
    rng_seed(&a, 7);
    rng_seed(&b, 7);
    draw_minibatch(batch, train, N, B, D, &a);
    int same = 1;
    for (int k = 0; k < B; k++) {
        int row = rng_int(&b, N);
        for (int j = 0; j < D; j++) same &= batch[k * D + j] == train[row * D + j];
    }
    CHECK(same && memcmp(&a, &b, sizeof a) == 0, "minibatch rows are rng_int's, one draw each");
}

/* The loss log over steps 11..1010 (a resumed run): 200 points, each the mean of its 5
 * steps, the last point at step 1010, and the running mean of window 50 by its formula */
static void test_loss_log(void) {
    LossLog l;
    loss_log_init(&l, 11, 1010, 50, 0);
    double running = 0;
    for (long step = 11; step <= 1010; step++) {
        double loss = (double)(step % 7);
        loss_log_add(&l, step, loss);
        running = step == 11 ? loss : 0.98 * running + 0.02 * loss;
    }
    loss_log_end(&l);
    int means_ok = l.n == 200 && l.every == 5;
    for (int i = 0; i < l.n && means_ok; i++) {
        long last = 10 + 5 * (i + 1);
        double sum = 0;
        for (long s = last - 4; s <= last; s++) sum += (double)(s % 7);
        means_ok &= l.step[i] == (double)last && l.loss[i] == sum / 5;
    }
    CHECK(means_ok, "200 interval means of 5 steps each (n = %d, every %d)", l.n, l.every);
    CHECK(l.running == running, "running mean with weight 1/50: %.17g vs %.17g", l.running, running);
    loss_log_free(&l);
    loss_log_init(&l, 5, 4, 100, 0);   /* nothing to train: no points, no crash */
    CHECK(l.n == 0 && loss_log_end(&l) >= 0, "an empty log");
    loss_log_free(&l);
}

int main(void) {
    test_options();
    test_sampler_named();
    test_ode_study_steps();
    test_name_tables();
    test_settings_round_trip();
    test_recipe();
    test_loss_log();
    return test_summary("test_cli");
}
