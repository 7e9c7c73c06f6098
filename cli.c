/* cli.c: what the two programs share (see cli.h). Reading order: the command line, the
 * diffusion's options and their help lines, checkpoint settings, the training pieces and
 * the loss log, sampling and the schedule line, small helpers. */
#define _POSIX_C_SOURCE 200809L /* isatty() under -std=c11 */
#include "cli.h"

#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plot.h"

/* ========================================================================================
 * The command line */

CliArgs cli_args(const char *program, int argc, char **argv) {
    CliArgs a = { .program = program, .argc = argc, .argv = argv, .i = 0 };
    return a;
}

int cli_next(CliArgs *a) {
    if (++a->i >= a->argc) return 0;
    const char *arg = a->argv[a->i];
    if (strcmp(arg, "-h") == 0) arg = "--help";
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) != 0) die("unexpected argument '%s' (see %s --help)", arg, a->program);
    if (eq) {
        snprintf(a->name, sizeof a->name, "%.*s", (int)(eq - arg), arg);
        a->value = eq + 1;
    } else {
        snprintf(a->name, sizeof a->name, "%s", arg);
        a->value = NULL;
    }
    return 1;
}

int cli_is(const CliArgs *a, const char *name) { return strcmp(a->name, name) == 0; }

const char *cli_value(CliArgs *a) {
    if (!a->value) {
        if (a->i + 1 >= a->argc) die("%s needs a value (see %s --help)", a->name, a->program);
        a->value = a->argv[++a->i];
    }
    return a->value;
}

const char *cli_path(CliArgs *a) {
    const char *v = cli_value(a);
    if (!v[0]) die("%s: an empty path", a->name);
    if (strlen(v) >= CLI_PATH_MAX)
        die("%s: a path of %zu bytes is too long (at most %d)", a->name, strlen(v), CLI_PATH_MAX - 1);
    return v;
}

int cli_flag(const CliArgs *a) {
    static const char *const yes[] = { "1", "yes", "true", "on" };
    static const char *const no[] = { "0", "no", "false", "off" };
    if (!a->value) return 1;
    if (name_index(a->value, yes, 4) >= 0) return 1;
    if (name_index(a->value, no, 4) >= 0) return 0;
    die("%s is a flag: give it alone, or as %s=yes or %s=no (not '%s')", a->name, a->name, a->name,
        a->value);
    return 0;
}

long cli_int(CliArgs *a, long lo, long hi) {
    const char *value = cli_value(a);
    char *end;
    errno = 0;
    long x = strtol(value, &end, 10);
    if (errno || *end || end == value || x < lo || x > hi)
        die("%s: '%s' is not an integer in %ld..%ld", a->name, value, lo, hi);
    return x;
}

double cli_double(CliArgs *a, double lo, double hi) {
    const char *value = cli_value(a);
    char *end;
    errno = 0;
    double x = strtod(value, &end);
    if (errno || *end || end == value || !(x >= lo && x <= hi))
        die("%s: '%s' is not a number in [%g, %g]", a->name, value, lo, hi);
    return x;
}

void cli_unknown(const CliArgs *a) {
    die("unknown option '%s' (see %s --help)", a->name, a->program);
}

int name_index(const char *value, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0) return i;
    return -1;
}

const char *names_join(char *buf, size_t len, const char *const *names, int n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "|" : "", names[i]);
    return buf;
}

int cli_choice(CliArgs *a, const char *const *names, int n) {
    const char *v = cli_value(a);
    int k = name_index(v, names, n);
    char list[256];
    if (k < 0) die("%s: unknown '%s'; allowed: %s", a->name, v, names_join(list, sizeof list, names, n));
    return k;
}

/* ========================================================================================
 * The diffusion's options */

/* --sampler's names, indexed by SamplerKind */
enum SamplerKind { SAMPLER_DDPM, SAMPLER_DDIM, SAMPLER_ODE, SAMPLER_COUNT };
static const char *const SAMPLER_NAMES[SAMPLER_COUNT] = { "ddpm", "ddim", "ode" };

int diffusion_option(CliArgs *a, DiffusionOptions *d) {
    if (cli_is(a, "--T")) {
        d->T = (int)cli_int(a, 1, DIFFUSION_MAX_T);
        d->given.T = 1;
    } else if (cli_is(a, "--schedule")) {
        d->schedule = (ScheduleKind)cli_choice(a, SCHEDULE_NAMES, SCHED_COUNT);
        d->given.schedule = 1;
    } else if (cli_is(a, "--param")) {
        d->ddpm.param = (Parametrization)cli_choice(a, PARAM_NAMES, PRED_COUNT);
        d->given.param = 1;
    } else if (cli_is(a, "--loss")) {
        d->ddpm.weighting = (LossWeighting)cli_choice(a, LOSS_NAMES, LOSS_HYBRID + 1);
        d->given.loss = 1;
    } else if (cli_is(a, "--var")) {
        d->ddpm.var = (ReverseVar)cli_choice(a, VAR_NAMES, VAR_LEARNED + 1);
        d->given.var = 1;
    } else if (cli_is(a, "--hybrid-lambda")) {
        d->ddpm.hybrid_lambda = cli_double(a, 0.0, 1e6);
    } else if (cli_is(a, "--sampler")) {
        int k = cli_choice(a, SAMPLER_NAMES, SAMPLER_COUNT);
        d->ddim = k == SAMPLER_DDIM;
        d->ode = k == SAMPLER_ODE;
        d->given.sampler = 1 + k;
    } else if (cli_is(a, "--ddim-steps")) {
        d->ddim_steps = (int)cli_int(a, 1, 100000);
        d->ddim = 1;
        d->given.ddim_steps = 1;
    } else if (cli_is(a, "--eta")) {
        d->eta = cli_double(a, 0.0, 1.0);
        d->given.eta = 1;
    } else if (cli_is(a, "--ode-steps")) {
        d->ode_steps = (int)cli_int(a, 1, 100000);
        d->ode = 1;
        d->ddim = 0;
        d->given.ode_steps = 1;
    } else if (cli_is(a, "--seed")) {
        d->seed = (unsigned long)cli_int(a, 0, 2147483647L);
        d->given.seed = 1;
    } else if (cli_is(a, "--out")) {
        d->out = cli_value(a);
        if (!d->out[0]) die("--out: an empty folder name");
        if (strlen(d->out) > CLI_OUT_MAX)
            die("--out: a folder name of %zu bytes is too long (at most %d, to leave room for the "
                "file names inside it)", strlen(d->out), CLI_OUT_MAX);
        d->given.out = 1;
    } else {
        return 0;
    }
    return 1;
}

void diffusion_check(DiffusionOptions *d) {
    int named = d->given.sampler - 1;   /* the --sampler given, or −1 */
    if (d->given.ddim_steps && d->given.ode_steps)
        die("--ddim-steps and --ode-steps choose two samplers: give one");
    if (d->given.ddim_steps && named >= 0 && named != SAMPLER_DDIM)
        die("--ddim-steps is for --sampler ddim, not --sampler %s: drop one", SAMPLER_NAMES[named]);
    if (d->given.ode_steps && named >= 0 && named != SAMPLER_ODE)
        die("--ode-steps is for --sampler ode, not --sampler %s: drop one", SAMPLER_NAMES[named]);
    if (d->given.eta && !d->ddim)
        die("--eta is DDIM's eta: add --sampler ddim (or --ddim-steps N), or drop --eta");
    if (!d->ddim) d->ddim_steps = 0;
    else if (d->ddim_steps == 0) d->ddim_steps = d->T;
    if (d->ddim_steps > d->T) die("--ddim-steps %d is more than --T %d", d->ddim_steps, d->T);
    if (!d->ode) d->ode_steps = 0;
    else if (d->ode_steps == 0) d->ode_steps = d->T;
    if (d->ode_steps > d->T) die("--ode-steps %d is more than --T %d", d->ode_steps, d->T);
    /* the learned variance trains with L_hybrid and L_hybrid needs it: one implies the other */
    int learned = (int)d->ddpm.var == VAR_LEARNED, hybrid = (int)d->ddpm.weighting == LOSS_HYBRID;
    if (learned && !hybrid && !d->given.loss) d->ddpm.weighting = (LossWeighting)LOSS_HYBRID;
    else if (hybrid && !learned && !d->given.var) d->ddpm.var = (ReverseVar)VAR_LEARNED;
    else if (learned != hybrid)
        die("--var learned goes with --loss hybrid (L_simple gives v no gradient, and L_hybrid "
            "trains v): drop one of --var %s, --loss %s", reverse_var_name(d->ddpm.var),
            loss_weighting_name(d->ddpm.weighting));
}

/* the names are listed from the parser's tables */
void usage_diffusion(FILE *f, const DiffusionOptions *d) {
    char schedules[256], params[64], losses[64], vars[64];
    fprintf(f,
        "  --T N              diffusion steps (default %d)\n"
        "  --schedule NAME    %s (default %s)\n"
        "  --param NAME       what the network predicts: %s (default %s)\n"
        "  --loss NAME        %s: L_simple, the KL-weighted L_{t-1}, or L_simple +\n"
        "                     lambda L_vlb for a learned variance (default %s)\n"
        "  --var NAME         reverse variance sigma_t^2: %s (default %s);\n"
        "                     learned: the network also outputs v, log sigma_t^2 = frac log beta_t\n"
        "                     + (1 - frac) log beta_tilde_t, frac = (v + 1)/2 (implies --loss hybrid)\n"
        "  --hybrid-lambda X  lambda of L_hybrid = L_simple + lambda L_vlb (default %g)\n",
        d->T, names_join(schedules, sizeof schedules, SCHEDULE_NAMES, SCHED_COUNT),
        schedule_name(d->schedule), names_join(params, sizeof params, PARAM_NAMES, PRED_COUNT),
        parametrization_name(d->ddpm.param),
        names_join(losses, sizeof losses, LOSS_NAMES, LOSS_HYBRID + 1),
        loss_weighting_name(d->ddpm.weighting),
        names_join(vars, sizeof vars, VAR_NAMES, VAR_LEARNED + 1), reverse_var_name(d->ddpm.var),
        d->ddpm.hybrid_lambda);
}

void usage_sampler(FILE *f, const DiffusionOptions *d) {
    char samplers[64];
    fprintf(f,
        "  --sampler NAME     %s: the note's algorithm (ancestral), DDIM, or the\n"
        "                     probability-flow ODE by Heun's method (default %s)\n"
        "  --ddim-steps N     DDIM steps, 1..T (default T; implies --sampler ddim)\n"
        "  --eta X            DDIM eta, 0 = deterministic (default %g)\n"
        "  --ode-steps N      ODE steps, 1..T (default T; implies --sampler ode)\n",
        names_join(samplers, sizeof samplers, SAMPLER_NAMES, SAMPLER_COUNT),
        SAMPLER_NAMES[d->ode ? SAMPLER_ODE : d->ddim ? SAMPLER_DDIM : SAMPLER_DDPM], d->eta);
}

void usage_seed_out(FILE *f, const DiffusionOptions *d) {
    fprintf(f,
        "  --seed N           random seed (default %lu)\n"
        "  --out DIR          output folder (default %s)\n",
        d->seed, d->out);
}

/* ========================================================================================
 * Checkpoint settings */

void diffusion_record(CkptHeader *h, const DiffusionOptions *d) {
    ckpt_set_int(h, "T", d->T);
    ckpt_set_string(h, "schedule", schedule_name(d->schedule));
    ckpt_set_string(h, "param", parametrization_name(d->ddpm.param));
    ckpt_set_string(h, "loss", loss_weighting_name(d->ddpm.weighting));
    ckpt_set_string(h, "var", reverse_var_name(d->ddpm.var));
}

const CkptSetting *setting_of(const SettingsReader *r, const char *name, CkptType type) {
    const CkptSetting *s = ckpt_find(r->h, name);
    if (!s || s->type != type)
        die("%s: no %s setting '%s': not a checkpoint written by %s", r->path,
            type == CKPT_INT ? "integer" : type == CKPT_DOUBLE ? "number" : "text", name, r->program);
    return s;
}

static void conflict(const SettingsReader *r, const char *opt, const char *mine, const char *file) {
    die("%s %s conflicts with %s, which was made with %s %s: drop the option, or start a new "
        "run without %s", opt, mine, r->path, opt, file, r->how);
}

static void out_of_range(const SettingsReader *r, const char *name, const char *opt,
                         const char *value, const char *range) {
    die("%s: %s = %s is outside %s%s%s%s: the file is damaged or hand-made (not written by %s)",
        r->path, name, value, range, opt[0] ? " (the range of " : "", opt, opt[0] ? ")" : "",
        r->program);
}

void read_int_setting_in(const SettingsReader *r, const char *name, const char *opt, int given,
                         int *v, long lo, long hi) {
    const CkptSetting *s = setting_of(r, name, CKPT_INT);
    if (given && r->strict && *v != s->i) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%d", *v);
        snprintf(b, sizeof b, "%lld", (long long)s->i);
        conflict(r, opt, a, b);
    }
    if (s->i < lo || s->i > hi) {
        char value[32], range[64];
        snprintf(value, sizeof value, "%lld", (long long)s->i);
        snprintf(range, sizeof range, "%ld..%ld", lo, hi);
        out_of_range(r, name, opt, value, range);
    }
    *v = (int)s->i;
}

void read_int_setting(const SettingsReader *r, const char *name, const char *opt, int given,
                      int *v) {
    read_int_setting_in(r, name, opt, given, v, 0, 100000000);
}

static void read_double(const SettingsReader *r, const char *name, const char *opt, int given,
                        double *v, int check, double lo, double hi) {
    const CkptSetting *s = setting_of(r, name, CKPT_DOUBLE);
    if (given && r->strict && *v != s->d) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%g", *v);
        snprintf(b, sizeof b, "%g", s->d);
        conflict(r, opt, a, b);
    }
    if (check && !(s->d >= lo && s->d <= hi)) {   /* NaN too */
        char value[32], range[64];
        snprintf(value, sizeof value, "%g", s->d);
        snprintf(range, sizeof range, "[%g, %g]", lo, hi);
        out_of_range(r, name, opt, value, range);
    }
    *v = s->d;
}

void read_double_setting(const SettingsReader *r, const char *name, const char *opt, int given,
                         double *v) {
    read_double(r, name, opt, given, v, 0, 0, 0);
}

void read_double_setting_in(const SettingsReader *r, const char *name, const char *opt,
                            int given, double *v, double lo, double hi) {
    read_double(r, name, opt, given, v, 1, lo, hi);
}

const char *read_name_setting(const SettingsReader *r, const char *name, const char *opt,
                              int given, const char *mine) {
    const CkptSetting *s = setting_of(r, name, CKPT_STRING);
    if (given && r->strict && strcmp(mine, s->s) != 0) conflict(r, opt, mine, s->s);
    return s->s;
}

void diffusion_read(SettingsReader *r, DiffusionOptions *d) {
    int strict = r->strict;
    r->strict = 1;   /* the model and the diffusion: always */
    read_int_setting_in(r, "T", "--T", d->given.T, &d->T, 1, DIFFUSION_MAX_T);
    if (schedule_parse(read_name_setting(r, "schedule", "--schedule", d->given.schedule,
                                         schedule_name(d->schedule)), &d->schedule))
        die("%s: malformed: unknown schedule", r->path);
    if (parametrization_parse(read_name_setting(r, "param", "--param", d->given.param,
                                                parametrization_name(d->ddpm.param)), &d->ddpm.param))
        die("%s: malformed: unknown parametrization", r->path);
    r->strict = strict;   /* training settings: only when training goes on */
    if (loss_weighting_parse(read_name_setting(r, "loss", "--loss", d->given.loss,
                                               loss_weighting_name(d->ddpm.weighting)), &d->ddpm.weighting))
        die("%s: malformed: unknown loss", r->path);
    ReverseVar var = d->ddpm.var;
    if (reverse_var_parse(read_name_setting(r, "var", "--var", d->given.var,
                                            reverse_var_name(d->ddpm.var)), &d->ddpm.var))
        die("%s: malformed: unknown reverse variance", r->path);
    if (!r->strict && d->given.var) d->ddpm.var = var;   /* sampling may choose its own */
}

/* ========================================================================================
 * Training pieces and the loss log */


void draw_minibatch(real *batch, const real *train, int n, int B, int D, Rng *rng) {
    draw_labelled_minibatch(batch, NULL, train, NULL, n, B, D, rng);
}

void draw_labelled_minibatch(real *batch, int *y, const real *train, const int *labels, int n,
                             int B, int D, Rng *rng) {
    for (int b = 0; b < B; b++) {
        int i = rng_int(rng, n);
        memcpy(batch + (size_t)b * D, train + (size_t)i * D, (size_t)D * sizeof(real));
        if (y) y[b] = labels[i];
    }
}

double lr_cosine(double lr, long step, long steps) {
    return lr * 0.5 * (1.0 + cos(PI * (double)(step - 1) / (double)steps));
}

/* ========================================================================================
 * Progress lines and cost warnings */

/* Seconds between lines off a terminal: PROGRESS_EVERY, or DDPM_PROGRESS_EVERY from the
 * environment (for the tests: 0 prints a line at every unit of work). */
static double progress_every(void) {
    const char *e = getenv("DDPM_PROGRESS_EVERY");
    char *end;
    double v = e ? strtod(e, &end) : -1;
    return e && end != e && *end == '\0' && v >= 0 ? v : PROGRESS_EVERY;
}

void progress_start(Progress *p, const char *what, double total) {
    memset(p, 0, sizeof *p);
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total;
    p->tty = isatty(2);
    p->every = p->tty ? 0.25 : progress_every();
    p->t_start = now_seconds();
    p->t_next = p->t_start + (p->tty ? 1.0 : p->every);
}

/* "12 s" below 100 s, else "3.2 min", "1.5 h" */
static void format_seconds(char *buf, size_t len, double s) {
    if (s < 100) snprintf(buf, len, "%.0f s", s);
    else if (s < 6000) snprintf(buf, len, "%.1f min", s / 60);
    else snprintf(buf, len, "%.1f h", s / 3600);
}

void progress_add(Progress *p, double units, const char *detail) {
    p->done += units;
    double now = now_seconds();
    if (now < p->t_next || p->total <= 0) return;
    p->t_next = now + p->every;
    double frac = p->done < p->total ? p->done / p->total : 1.0, spent = now - p->t_start;
    char so_far[32], left[32];
    format_seconds(so_far, sizeof so_far, spent);
    format_seconds(left, sizeof left, frac > 0 ? spent / frac * (1 - frac) : 0);
    fprintf(stderr, "%s%s: %.0f%%%s%s, %s so far, about %s left%s", p->tty ? "\r" : "progress: ",
            p->what, 100 * frac, detail ? ", " : "", detail ? detail : "", so_far, left,
            p->tty ? "   " : "\n");
    p->shown = p->tty;
}

void progress_end(Progress *p) {
    if (p->shown) fprintf(stderr, "\n");
    p->shown = 0;
}

static void progress_forward(void *self, real *out, const real *x, const int *t, const int *y,
                             int N) {
    ProgressNet *pn = self;
    pn->inner.forward(pn->inner.self, out, x, t, y, N);
    progress_add(&pn->p, N, NULL);
}

static void progress_backward(void *self, real *dx, const real *dout, int N) {
    ProgressNet *pn = self;
    pn->inner.backward(pn->inner.self, dx, dout, N);
}

Denoiser progress_net(ProgressNet *pn, const Denoiser *inner, const char *what, double evaluations) {
    pn->inner = *inner;
    progress_start(&pn->p, what, evaluations);
    return (Denoiser){ .self = pn, .D = inner->D, .max_batch = inner->max_batch,
                       .params = inner->params, .learned_var = inner->learned_var,
                       .forward = progress_forward,
                       .backward = inner->backward ? progress_backward : NULL };
}

double seconds_per_evaluation(Denoiser *net, int n) {
    if (n > net->max_batch) n = net->max_batch;
    int width = net->learned_var ? 2 : 1;
    real *x = xcalloc((size_t)n * net->D, sizeof(real), "timing input");
    real *out = xmalloc((size_t)n * net->D * width * sizeof(real), "timing output");
    int *t = xmalloc((size_t)n * sizeof(int), "timing t");
    for (int i = 0; i < n; i++) t[i] = 1;
    double best = HUGE_VAL;
    for (int k = 0; k < 4; k++) {
        clock_t c0 = clock();
        net->forward(net->self, out, x, t, NULL, n);
        double c = (double)(clock() - c0) / CLOCKS_PER_SEC;
        if (k > 0 && c < best) best = c;
    }
    free(x); free(out); free(t);
    return best / n;
}

void warn_cost(const CostItem *items, int n, const char *hint) {
    double total = 0;
    for (int i = 0; i < n; i++) total += items[i].units * items[i].seconds_each;
    if (total <= COST_WARN_SECONDS) return;
    char buf[1024], t[32];
    format_seconds(t, sizeof t, total);
    int used = snprintf(buf, sizeof buf, "progress: warning: this run needs about %s of CPU here:", t);
    for (int i = 0; i < n && used < (int)sizeof buf; i++) {
        double s = items[i].units * items[i].seconds_each;
        if (s < 0.05 * total) continue;   /* the parts that matter */
        format_seconds(t, sizeof t, s);
        used += snprintf(buf + used, sizeof buf - used, " %s %.2g %s (%s);", items[i].what,
                         items[i].units, items[i].unit, t);
    }
    fprintf(stderr, "%s %s; progress lines show the time left\n", buf, hint);
}

void loss_log_init(LossLog *l, long first, long last, int window, int progress_every) {
    long n_steps = last >= first ? last - first + 1 : 0;
    memset(l, 0, sizeof *l);
    l->first = first;
    l->last = last;
    l->every = n_steps >= 200 ? (int)(n_steps / 200) : 1;
    l->progress_every = progress_every;
    char what[64];
    snprintf(what, sizeof what, "training %ld steps", n_steps);
    progress_start(&l->progress, what, (double)n_steps);
    l->new_weight = 1.0 / window;
    l->old_weight = 1.0 - 1.0 / window;
    l->step = xmalloc((size_t)(n_steps / l->every + 2) * sizeof(double), "loss log");
    l->loss = xmalloc((size_t)(n_steps / l->every + 2) * sizeof(double), "loss log");
    l->t_start = now_seconds();
}

void loss_log_add(LossLog *l, long step, double loss) {
    long done = step - l->first + 1;
    l->running = step == l->first ? loss : l->old_weight * l->running + l->new_weight * loss;
    l->sum += loss;
    l->count++;
    if (done % l->every == 0 || step == l->last) {
        l->step[l->n] = (double)step;
        l->loss[l->n++] = l->sum / l->count;
        l->sum = 0;
        l->count = 0;
    }
    if (l->progress_every) {
        char detail[64];
        snprintf(detail, sizeof detail, "step %ld, loss %.4f", step, l->running);
        progress_add(&l->progress, 1, detail);
    }
}

double loss_log_end(LossLog *l) {
    progress_end(&l->progress);
    return now_seconds() - l->t_start;
}

void loss_log_plot(const LossLog *l, const char *path, const char *name) {
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = "training loss (mean over each logging interval)";
    p.xlabel = "step";
    p.ylabel = "loss";
    p.log_y = 1;
    p.nseries = 1;
    p.series[0] = (SvgSeries){ name, l->n, l->step, l->loss };
    svg_lineplot(path, &p);
}

void loss_log_free(LossLog *l) {
    free(l->step);
    free(l->loss);
}

/* ========================================================================================
 * Sampling, the schedule line, plots against t */

int sampler_evaluations(const DiffusionOptions *d) {
    return d->ode_steps ? 2 * d->ode_steps : d->ddim_steps ? d->ddim_steps : d->T;
}

const char *sampler_name(const DiffusionOptions *d) {
    return SAMPLER_NAMES[d->ode_steps ? SAMPLER_ODE : d->ddim_steps ? SAMPLER_DDIM : SAMPLER_DDPM];
}

int ode_study_steps(int T, int S[4]) {
    const int want[3] = { 5, 10, 25 };
    int last = T < 50 ? T : 50, n = 0;
    for (int k = 0; k < 3; k++)
        if (want[k] < last) S[n++] = want[k];
    S[n++] = last;
    return n;
}

void sample_loop(Denoiser *net, real *x, const int *y, const DiffusionOptions *d,
                 const Schedule *s, int N, int clip_x0, Rng *rng, SampleTrace trace, void *ctx) {
    OdeConfig oc = { .S = d->ode_steps, .solver = ODE_HEUN };
    ProgressNet pn;
    char what[64];
    snprintf(what, sizeof what, "sampling %d samples", N);
    Denoiser counted = progress_net(&pn, net, what, (double)N * sampler_evaluations(d));
    if (d->ode_steps)
        ode_sample_loop(&counted, x, y, &d->ddpm, s, N, &oc, rng, trace, ctx);
    else if (d->ddim_steps)
        ddim_sample_loop(&counted, x, y, &d->ddpm, s, N, d->ddim_steps, d->eta, clip_x0, rng, trace,
                         ctx);
    else
        p_sample_loop(&counted, x, y, &d->ddpm, s, N, clip_x0, rng, trace, ctx);
    progress_end(&pn.p);
}

void check_samples_finite(const real *x, int N, int D, const char *what, const char *hint) {
    int bad = 0;
    long first = -1;
    for (int n = 0; n < N; n++) {
        int finite = 1;
        for (int d = 0; d < D; d++) finite &= isfinite(x[(size_t)n * D + d]) != 0;
        if (!finite && first < 0) first = n;
        bad += !finite;
    }
    if (bad)
        die("sampling produced %d of %d %s that are not finite numbers (NaN or Inf; the first is "
            "number %ld): the trained network's output overflows, although its weights are "
            "finite; nothing was measured; %s", bad, N, what, first, hint);
}

void plot_against_t(const char *path, const char *title, const char *ylabel, int log_y,
                    const char *name, int T, const double *values) {
    double *ts = xmalloc((size_t)T * sizeof(double), "t");
    for (int t = 1; t <= T; t++) ts[t - 1] = t;
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = title;
    p.xlabel = "t";
    p.ylabel = ylabel;
    p.log_y = log_y;
    p.nseries = 1;
    p.series[0] = (SvgSeries){ name, T, ts, values };
    svg_lineplot(path, &p);
    free(ts);
}

void print_schedule(const Schedule *s, double prior, int D, const char *example, const char *note) {
    printf("schedule: beta_1 = %.4g, beta_T = %.4g, alphabar_T = %.3g, prior term L_T = %.3g nats"
           " per %s", s->beta[1], s->beta[s->T], s->alpha_bar[s->T], prior, example);
    if (D > 2) printf(" (%.2g per number)", prior / D);
    printf("%s\n", note);
    if (prior / D > 0.005)
        printf("warning: L_T = %.3g nats%s is not small: x_T is not close to N(0, I); use more"
               " steps or a schedule with a smaller alphabar_T\n", D > 2 ? prior / D : prior,
               D > 2 ? " per number" : "");
}

/* ========================================================================================
 * Small helpers */

double now_seconds(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void make_folder(const char *path) {
    char buf[CLI_PATH_MAX];
    if (strlen(path) >= sizeof buf) die("output folder of %zu bytes: at most %zu", strlen(path), sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {       /* every parent first */
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST) die("cannot create folder %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST) die("cannot create folder %s: %s", buf, strerror(errno));
    char why[1200];
    if (io_check_folder(buf, why, sizeof why) != 0) die("%s: give an output folder you can write", why);
}

int cli_exit_status(int rc) {
    int lost = io_failed_writes();
    if (lost == 0) return rc;
    fprintf(stderr, "error: %d output file%s could not be written (see above); the others "
            "were written\n", lost, lost == 1 ? "" : "s");
    return 1;
}

const char *path_in(const char *dir, const char *name) {
    static char buf[CLI_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s/%s", dir, name) >= (int)sizeof buf)
        die("the output path %.60s.../%s is longer than %d bytes: give a shorter --out",
            dir, name, CLI_PATH_MAX - 1);
    return buf;
}
