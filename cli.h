/* cli.h: what the two programs (toy2d.c, images.c) share, written once: the command line,
 * the options of the diffusion itself (parsed, listed in --help and recorded in checkpoints
 * here and nowhere else), the training recipe's small pieces (minibatch, learning rate),
 * the loss log with its progress line, the sampler the options chose, and small helpers
 * (time, folders). The library (tensor, schedule, ddpm, the networks) never includes it.
 */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "checkpoint.h"
#include "ddpm.h"
#include "denoiser.h"
#include "schedule.h"
#include "tensor.h"

/* ========================================================================================
 * The command line: "--name value" or "--name=value", one option at a time, read by a plain
 * if-chain in each program:
 *
 *   CliArgs a = cli_args("./toy2d", argc, argv);
 *   while (cli_next(&a)) {
 *       if (diffusion_option(&a, &o.d)) continue;                  // --T, --schedule, ...
 *       if (cli_is(&a, "--table")) o.table = 1;                     // a flag
 *       else if (cli_is(&a, "--steps")) o.steps = (int)cli_int(&a, 0, 100000000);
 *       else cli_unknown(&a);
 *   }
 * Every mistake dies with one line that names the option. */
typedef struct {
    const char *program;    /* "./toy2d", for the messages */
    int argc;
    char **argv;
    int i;                  /* the argument being read */
    char name[64];          /* its name, e.g. "--steps" */
    const char *value;      /* the text after '=', or the next argument once cli_value took it */
} CliArgs;

CliArgs cli_args(const char *program, int argc, char **argv);
/* Moves to the next option; 0 at the end. "-h" is read as "--help"; any other argument that
 * does not start with "--" dies. */
int cli_next(CliArgs *a);
int cli_is(const CliArgs *a, const char *name);          /* the option is `name` */
/* The option's value: after '=' or the next argument ("--steps needs a value" if none). */
const char *cli_value(CliArgs *a);
/* A path (the option's value): one that would not fit in CLI_PATH_MAX bytes dies. */
const char *cli_path(CliArgs *a);
/* A flag (an option without a value): "--oracle" alone is 1; "--oracle=yes|no", "=1|0",
 * "=true|false", "=on|off" say it explicitly; any other "=value" dies. A flag never takes
 * the next argument. */
int cli_flag(const CliArgs *a);
/* The value as an integer in lo..hi, or a number in [lo, hi]; anything else dies with
 * "--steps: 'x' is not an integer in 0..100000000". */
long cli_int(CliArgs *a, long lo, long hi);
double cli_double(CliArgs *a, double lo, double hi);
/* "unknown option '--x' (see ./toy2d --help)", and exit */
void cli_unknown(const CliArgs *a);
/* The index of `value` in names[0..n), or −1. */
int name_index(const char *value, const char *const *names, int n);
/* "digits|idx|cifar": names[0..n) joined by '|' into buf (len bytes), for usage and errors */
const char *names_join(char *buf, size_t len, const char *const *names, int n);
/* The value as an index into names[0..n), the table the option's --help line lists too;
 * anything else dies with "--param: unknown 'z'; allowed: eps|x0|mu|v". */
int cli_choice(CliArgs *a, const char *const *names, int n);

/* ========================================================================================
 * The options of the diffusion itself: the same flags, ranges, messages and help lines in
 * both programs. Each program sets its own defaults (toy2d: T = 50, cosine; images: T = 200,
 * linear) and reads the rest of its options itself. */
#define DIFFUSION_MAX_T 100000   /* --T, and a checkpoint's T, are 1..DIFFUSION_MAX_T */

typedef struct {
    int T;                  /* diffusion steps */
    ScheduleKind schedule;  /* the β_t schedule */
    DdpmConfig ddpm;        /* what the network predicts, the loss weighting, σ_t² */
    int ddim;               /* 1: DDIM (--sampler ddim or --ddim-steps); 0: the note's algorithm */
    int ddim_steps;         /* DDIM steps; 0 = T, until diffusion_check settles it */
    double eta;             /* DDIM η: 0 deterministic, 1 ancestral */
    int ode;                /* 1: the probability-flow ODE (--sampler ode or --ode-steps) */
    int ode_steps;          /* Heun steps S of the ODE; 0 = T, until diffusion_check */
    unsigned long seed;     /* the one seed a run is reproduced from */
    const char *out;        /* output folder */
    /* what the user typed: a checkpoint refuses a conflicting value instead of either one;
     * sampler is 1 + the named sampler (ddpm, ddim, ode), 0 if none was named */
    struct {
        int T, schedule, param, loss, var, seed, out;
        int sampler, ddim_steps, eta, ode_steps;
    } given;
} DiffusionOptions;

/* Reads the option `a` is at if it is one of --T --schedule --param --loss --var
 * --hybrid-lambda --sampler --ddim-steps --eta --ode-steps --seed --out; returns 1 if it
 * was, 0 otherwise. */
int diffusion_option(CliArgs *a, DiffusionOptions *d);
/* Once T is final (after a checkpoint's settings): DDIM without --ddim-steps takes T steps;
 * more steps than T dies. Options that contradict each other die (--sampler ddpm with
 * --ddim-steps, --ddim-steps with --ode-steps, --eta without DDIM), whatever their order. After it, ddim_steps > 0 exactly when DDIM samples, ode_steps > 0
 * exactly when the ODE does. --var learned and --loss hybrid imply each other (one without
 * the other cannot train v), and a contradiction dies. */
void diffusion_check(DiffusionOptions *d);
/* The help lines, with the program's defaults: T, schedule, param, loss, var (5 lines);
 * sampler, ddim-steps, eta (3 lines); seed and out (2 lines). */
void usage_diffusion(FILE *f, const DiffusionOptions *defaults);
void usage_sampler(FILE *f, const DiffusionOptions *defaults);
void usage_seed_out(FILE *f, const DiffusionOptions *defaults);

/* ========================================================================================
 * Options in a checkpoint's header, and back. */

/* T, schedule, param, loss and var, by name ("T", "schedule", ...). */
void diffusion_record(CkptHeader *h, const DiffusionOptions *d);

/* Reading settings back: a missing one, or one of the wrong type, means another writer's
 * file; a value the user gave explicitly that differs dies (the run would silently be a
 * different one) when `strict`, and is kept otherwise. */
typedef struct {
    const char *program;    /* "./images": whose checkpoints these are */
    const char *path;       /* the checkpoint */
    const CkptHeader *h;
    int strict;             /* 1: an explicit option must agree with the file */
    const char *how;        /* "--resume" or "--sample-only", for the conflict message */
} SettingsReader;
const CkptSetting *setting_of(const SettingsReader *r, const char *name, CkptType type);
/* *v is the option's value; given: the user typed `opt`. Afterwards *v is the file's. */
void read_int_setting(const SettingsReader *r, const char *name, const char *opt, int given,
                      int *v);
void read_double_setting(const SettingsReader *r, const char *name, const char *opt, int given,
                         double *v);
/* The same, and a value outside lo..hi (the range the option itself accepts) dies before
 * anything is allocated from it: "x.ckpt: T = 100000000 is outside 1..100000 (the range of
 * --T): the file is damaged or hand-made". read_int_setting checks 0..100000000. */
void read_int_setting_in(const SettingsReader *r, const char *name, const char *opt, int given,
                         int *v, long lo, long hi);
void read_double_setting_in(const SettingsReader *r, const char *name, const char *opt,
                            int given, double *v, double lo, double hi);
/* A name setting: `mine` is the option's value as text; returns the file's text. */
const char *read_name_setting(const SettingsReader *r, const char *name, const char *opt,
                              int given, const char *mine);
/* The diffusion's settings into d: T, schedule and param always strictly (they make the
 * model what it is); loss and var under r->strict, and var never overrides an explicit
 * --var when sampling (it is a sampling choice). */
void diffusion_read(SettingsReader *r, DiffusionOptions *d);

/* ========================================================================================
 * Training: the pieces of the recipe, the loss log and the progress line. */

/* batch (B, D) = B rows of train (n, D) drawn uniformly with replacement, one rng_int each */
void draw_minibatch(real *batch, const real *train, int n, int B, int D, Rng *rng);
/* The same draws (the same generator calls, so the same batch) with the labels of the
 * drawn rows: y[b] = labels[i_b], for a class-conditional model. */
void draw_labelled_minibatch(real *batch, int *y, const real *train, const int *labels, int n,
                             int B, int D, Rng *rng);
/* The learning rate at step 1..steps decays as ½ (1 + cos(π (step − 1)/steps)) from lr to
 * nearly 0: large steps first, fine ones last. */
double lr_cosine(double lr, long step, long steps);

/* ========================================================================================
 * Progress with the time left, on stderr, for work that may take long (training, sampling,
 * the bound). On a terminal: one line rewritten in place ('\r'), at most 4 times a second,
 * from the first second on. Elsewhere (a log file, a pipe): a line every PROGRESS_EVERY
 * seconds, e.g.
 *   progress: sampling 20000 samples: 45%, 12 s so far, about 15 s left
 * so work that ends sooner prints none (DDPM_PROGRESS_EVERY=S in the environment sets the
 * interval, for the tests). Such lines depend on the machine's speed, and all of them start
 * with "progress: " off a terminal (test_notebooks drops them). */
#define PROGRESS_EVERY 10.0

typedef struct {
    char what[96];          /* e.g. "sampling 20000 samples" */
    double total, done;     /* units of work, e.g. network evaluations of one example */
    double t_start, t_next; /* wall clock at the start, and when a line is due */
    double every;           /* seconds between lines */
    int tty;                /* stderr is a terminal */
    int shown;              /* a terminal line is open (progress_end closes it) */
} Progress;
void progress_start(Progress *p, const char *what, double total);
/* `units` more done; detail (or NULL) is added to the line, e.g. "step 120, loss 0.41" */
void progress_add(Progress *p, double units, const char *detail);
void progress_end(Progress *p);

/* A denoiser that is `inner` and counts its work: every forward of N examples adds N to the
 * progress line "what", of `evaluations` in all. For loops that live in the library
 * (p_sample_loop, vlb_all_terms), which know nothing of progress. */
typedef struct {
    Denoiser inner;
    Progress p;
} ProgressNet;
Denoiser progress_net(ProgressNet *pn, const Denoiser *inner, const char *what, double evaluations);

/* Cost warnings for settings that are finite but absurd (--T 100000 with the all-T bound,
 * --n-samples 1000000): a run lists what it will compute, in network evaluations of one
 * example (each costing the measured `eval_seconds`) and other units, and if the total is
 * more than COST_WARN_SECONDS of CPU it prints on stderr
 *   progress: warning: this run needs about 47 min of CPU here: sampling 2e+09 network
 *   evaluations (42 min); ...; lower --T or --n-samples for a quicker run
 * (a "progress: " line: its numbers depend on the machine). */
#define COST_WARN_SECONDS 600.0
typedef struct {
    const char *what;       /* e.g. "sampling", "the all-T bound" */
    double units;           /* e.g. 2e9 */
    const char *unit;       /* e.g. "network evaluations" */
    double seconds_each;    /* CPU seconds per unit */
} CostItem;
/* CPU seconds of one network evaluation of one example: the best of 3 forwards of n
 * examples at t = 1 (after one to warm up). The net's outputs and caches are overwritten. */
double seconds_per_evaluation(Denoiser *net, int n);
/* Prints the warning if the items add up to more than COST_WARN_SECONDS; `hint` ends it. */
void warn_cost(const CostItem *items, int n, const char *hint);

/* The loss of every step, kept three ways: a running mean for the lines printed (weight
 * 1/window on the newest loss), the mean over each logging interval for loss.svg (about
 * 200 points), and a progress line with the time left (Progress, above). */
typedef struct {
    long first, last;       /* the steps logged: first..last */
    int every;              /* steps per logged point */
    int progress_every;     /* nonzero: a progress line (as Progress prints it); 0: none */
    Progress progress;
    double new_weight, old_weight;   /* 1/window and 1 − 1/window */
    double running;         /* the running mean */
    double sum;             /* the current interval's losses ... */
    int count;              /* ... and how many */
    int n;                  /* logged points so far */
    double *step, *loss;    /* (n) the step ending each interval, the interval's mean */
    double t_start;         /* wall clock at the start */
} LossLog;
void loss_log_init(LossLog *l, long first, long last, int window, int progress_every);
void loss_log_add(LossLog *l, long step, double loss);
/* The wall-clock seconds since loss_log_init; ends the progress line. */
double loss_log_end(LossLog *l);
/* loss.svg: the logged means against the step, on a log scale, the series named `name`. */
void loss_log_plot(const LossLog *l, const char *path, const char *name);
void loss_log_free(LossLog *l);

/* ========================================================================================
 * Sampling with the sampler the options chose: DDIM on d->ddim_steps steps with η = d->eta,
 * the probability-flow ODE by Heun on d->ode_steps steps (ode_sample_loop; it does not clip
 * x̂₀), or the note's algorithm (ancestral, p_sample_loop). x (N, D) receives the samples. */
/* Network evaluations per sample of that sampler: T, the DDIM steps, or 2 per Heun step. */
int sampler_evaluations(const DiffusionOptions *d);
/* The sampler's --sampler name, "ddpm", "ddim" or "ode" (after diffusion_check). */
const char *sampler_name(const DiffusionOptions *d);
/* The ODE step counts a likelihood study compares (toy2d --ode-nll): those of 5, 10, 25
 * below min(T, 50), then min(T, 50) itself, each once. Writes at most 4 into S, returns
 * how many. */
int ode_study_steps(int T, int S[4]);
/* With a progress line "sampling N samples" on stderr (Progress). */
void sample_loop(Denoiser *net, real *x, const int *y, const DiffusionOptions *d,
                 const Schedule *s, int N, int clip_x0, Rng *rng, SampleTrace trace, void *ctx);

/* After sampling: dies unless every number of x (N, D) is finite, with "sampling produced
 * 10 of 2000 points that are not finite numbers (NaN or Inf) ...; <hint>" (a network whose
 * weights are finite can still overflow on the way from x_T to x_0). `what` names an
 * example ("points", "images"). */
void check_samples_finite(const real *x, int N, int D, const char *what, const char *hint);

/* An SVG line plot of values[t − 1] against t = 1..T (one series, named `name`). */
void plot_against_t(const char *path, const char *title, const char *ylabel, int log_y,
                    const char *name, int T, const double *values);

/* "schedule: beta_1 = ..., prior term L_T = ... nats per <example>" and, when L_T is not
 * small (more than 0.005 nats per number: x_T is then visibly not N(0, I)), a warning.
 * For images (D > 2) L_T is also given per number, the unit of bits per dimension.
 * `note` is appended to the first line (e.g. " (from the checkpoint)"). */
void print_schedule(const Schedule *s, double prior, int D, const char *example, const char *note);

/* ========================================================================================
 * Small helpers. */
double now_seconds(void);                  /* wall clock, for progress lines and reports */
void make_folder(const char *path);        /* mkdir -p; dies with the reason if it cannot */
/* The exit status of a program whose run ended with status rc: 1 with one line on stderr
 * if any output file could not be written (io_failed_writes), else rc. */
int cli_exit_status(int rc);
/* dir/name in a static buffer of CLI_PATH_MAX bytes: use the result before the next call.
 * A path that does not fit dies (never a silently shortened name). --out takes at most
 * CLI_OUT_MAX bytes, which leaves room for every name the programs write inside it. */
#define CLI_PATH_MAX 1024
#define CLI_OUT_MAX 900
const char *path_in(const char *dir, const char *name);

#endif
