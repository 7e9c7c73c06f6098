/* toy2d.c: the 2D dog/cat story of note 001, end to end.
 *
 * "개" (dog) points gather near (10, 20), "고양이" (cat) points near (5, 25); the forward
 * process flattens their probability landscape into N(0, I), and the reverse process moves
 * particles back up the hills, t = T, T−1, ..., 1. This program does exactly that and
 * shows it. The story is `run_story`, one page near the end; read it first, then each step
 * it calls, in the order it calls them:
 *
 *   load_data            the dog/cat mixture, standardized   data.c   toy_sample, standardize
 *   report_schedule      the schedule and the prior term     schedule.c; ddpm.c prior_kl
 *   picture_forward      the forward process, pictured       ddpm.c   q_sample; mixture_diffuse
 *   build_model, train   Ho et al.'s Algorithm 1             ddpm.c   ddpm_train_step; adam_step
 *   sample               the note's algorithm (or DDIM)      ddpm.c   p_sample_loop / ddim
 *   measure_samples      energy distance, shares, ε̂ vs ε*    data.c   energy_distance, mixture_eps_star
 *   measure_bound        the bound beside the true NLL       ddpm.c   vlb_all_terms, vlb_estimate
 *   write_numbers        samples.csv, summary.txt
 *   write_pictures       samples, loss, loss per t, field    plot.c
 * Extras after the story: --table (schedule_print), --weights (loss_weight_kl for every
 * parametrization), --lab (the story for every parametrization × weighting), --oracle
 * (the exact optimal ε* in place of the network), --ode-nll (measure_ode_nll: the
 * probability-flow ODE's exact likelihood, ddpm.c ode_log_likelihood; notebook 08).
 * Class-conditional (note 001 "'개' 데이터를 생성한다고 가정해보자", guidance.h): --class dog
 * trains with labels and label dropout (train), samples the one class, guided with
 * --guidance w (sample), and measures it against q(x₀|c) (measure_class); --guidance-sweep
 * (run_guidance_sweep) samples with the exact guided field for several w, no network.
 *
 * Notebooks: notebooks_md/05_dogcat_landscape.md walks through the output, 07 the bound
 * and the lab. The options of the diffusion itself (T, schedule, parametrization, loss,
 * variance, sampler, seed, output folder) are read by cli.c, the same as ./images.
 * Coordinates: the network works on standardized data (the dog/cat coordinates are ~20
 * times the noise scale, DESIGN.md "Data scale"); every picture is in the note's
 * coordinates.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "data.h"
#include "io.h"
#include "ddpm.h"
#include "guidance.h"
#include "mlp.h"
#include "oracle.h"
#include "plot.h"
#include "schedule.h"
#include "tensor.h"

/* ========================================================================================
 * Options */

typedef struct {
    ToyKind data;           /* dogcat */
    DiffusionOptions d;     /* T = 50 as in the note's "t = 50, 49, ...", cosine, eps, simple,
                               beta_tilde, the note's sampler, seed 1, out/toy2d (cli.h) */
    int steps, batch;       /* training steps and batch size */
    double lr, ema;         /* Adam learning rate, EMA decay */
    int n_train, n_samples; /* training set size, number of generated points */
    int table;              /* print the schedule table and exit */
    int oracle;             /* sample with the exact optimal ε* instead of a trained network */
    int weights;            /* plot the KL weights w_t and exit */
    int lab;                /* the loss lab: every parametrization × weighting */
    const char *cls_name;   /* --class: "dog", "cat" (a component of the data's mixture) */
    int cls;                /* its index; −1: unconditional (the default) */
    double guidance;        /* classifier-free guidance strength w (guidance.h), e.g. 1 */
    double p_uncond;        /* label dropout while training the conditional MLP, e.g. 0.1 */
    int sweep;              /* --guidance-sweep: the exact fields for several w, then exit */
    int sweep_seeds;        /* seeds per w in the sweep, e.g. 3 */
    int ode_nll;            /* the probability-flow ODE's exact likelihood of the held-out
                               points, beside the bounds and the exact denoiser's */
    int var_study;          /* the bound of the network's one mean with each variance, term
                               by term, beside the best variance for each t */
} Options;

static Options default_options(void) {
    Options o;
    memset(&o, 0, sizeof o);
    o.data = TOY_DOGCAT;
    o.d.T = 50;
    o.d.schedule = SCHED_COSINE;  /* at T = 50 the exact denoiser (--oracle) samples closer to
                                     the data with cosine: energy ratio 1.27, linear 1.52 */
    o.d.ddpm = (DdpmConfig){ .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE,
                             .hybrid_lambda = 0.001, .decoder = DECODER_GAUSSIAN };
    o.d.eta = 0.0;
    o.d.seed = 1;
    o.d.out = "out/toy2d";
    o.steps = 4000;
    o.batch = 256;
    o.lr = 4e-3;
    o.ema = 0.995;
    o.n_train = 10000;
    o.n_samples = 2000;
    o.cls = -1;
    o.p_uncond = 0.1;
    o.sweep_seeds = 3;
    return o;
}

static void usage(FILE *f) {
    Options d = default_options();
    char toys[128];
    fprintf(f,
        "usage: ./toy2d [options]\n"
        "The 2D dog/cat diffusion demo of note 001: trains a small MLP denoiser, samples,\n"
        "and writes pictures and numbers to the output folder.\n\n"
        "  --data NAME        %s (default %s)\n", names_join(toys, sizeof toys, TOY_NAMES, TOY_COUNT),
        toy_name(d.data));
    usage_diffusion(f, &d.d);
    usage_sampler(f, &d.d);
    fprintf(f,
        "  --steps N          training steps (default %d)\n"
        "  --batch N          batch size (default %d)\n"
        "  --lr X             Adam learning rate at the start, cosine decay to 0 (default %g)\n"
        "  --ema X            EMA decay of the weights used for sampling (default %g)\n"
        "  --n-train N        training set size (default %d)\n"
        "  --n-samples N      points to generate (default %d)\n",
        d.steps, d.batch, d.lr, d.ema, d.n_train, d.n_samples);
    usage_seed_out(f, &d.d);
    fprintf(f,
        "  --table            print the schedule table (beta_t, alpha_t, alphabar_t, ...) and exit\n"
        "  --oracle           skip training and sample with the exact optimal eps* (mixtures\n"
        "                     only): what a perfect network would do with this T and sampler\n"
        "                     (into out/toy2d/oracle unless --out is given)\n"
        "  --ode-nll          the probability-flow ODE's exact likelihood (Heun, exact 2D trace)\n"
        "                     of the held-out points for S = 5..50 steps, beside the exact eps*'s,\n"
        "                     the true NLL and the bound with each variance\n"
        "  --var-study        the bound of the trained network's mean with sigma_t^2 = beta_tilde,\n"
        "                     beta, its learned variance (--var learned) and the best variance\n"
        "                     for each t (closed form), term by term on the same points and noise\n"
        "  --weights          plot the KL-derived loss weights w_t (weights.svg) and exit\n"
        "  --lab              the loss lab: train every parametrization x weighting with the\n"
        "                     same budget and seed, write lab.md with the measured numbers\n"
        "class-conditional (note 001: generate a dog)\n"
        "  --class NAME       generate this class only (dogcat: dog|cat): the MLP gets a label\n"
        "                     embedding and is trained on the labels with label dropout\n"
        "  --guidance W       classifier-free guidance: eps~ = (1 + w) eps(x, t, c) - w eps(x, t,\n"
        "                     null), w = W (gamma = 1 + w; default 0: plain conditional)\n"
        "  --p-uncond P       share of training labels replaced by the null label (default %g)\n"
        "  --guidance-sweep   no training: the exact conditional eps* guided with w = 0, 0.5, 1,\n"
        "                     2, 4 against q(x0|c) and the tilted q(x0|c)^(1+w) q(x0)^(-w);\n"
        "                     guidance.md, guidance.svg, guidance_sweep.png (class: --class)\n"
        "  --sweep-seeds N    seeds per w in the sweep (default %d)\n"
        "  --help             this text\n", d.p_uncond, d.sweep_seeds);
}

/* --class NAME against the data's mixture components ("dog", "cat"); --guidance and
 * --p-uncond only mean something for a class-conditional run. */
static void parse_class(Options *o, int given_p) {
    Mixture2D m;
    if (!o->cls_name) {
        if (o->sweep) o->cls = 0;   /* the sweep's default class: the first (dog) */
        else if (o->guidance != 0 || given_p)
            die("--guidance and --p-uncond are for a class-conditional run: add --class");
        return;
    }
    if (toy_mixture(o->data, &m) != 0)
        die("--class: %s has no classes (a mixture has: dogcat, ring, gaussian)", toy_name(o->data));
    char valid[256] = "";
    for (int k = 0; k < m.K; k++) {
        if (strcmp(o->cls_name, m.label[k]) == 0) o->cls = k;
        snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", k ? "|" : "", m.label[k]);
    }
    if (o->cls < 0) die("--class: unknown class '%s' for %s data; valid: %s", o->cls_name,
                        toy_name(o->data), valid);
    if (o->lab) die("--lab compares the unconditional models: drop --class");
}

static Options parse_options(int argc, char **argv) {
    Options o = default_options();
    int given_p = 0;
    CliArgs a = cli_args("./toy2d", argc, argv);
    while (cli_next(&a)) {
        if (diffusion_option(&a, &o.d)) continue;   /* --T --schedule ... --seed --out */
        if (cli_is(&a, "--help")) { usage(stdout); exit(0); }
        else if (cli_is(&a, "--table")) o.table = cli_flag(&a);
        else if (cli_is(&a, "--oracle")) o.oracle = cli_flag(&a);
        else if (cli_is(&a, "--weights")) o.weights = cli_flag(&a);
        else if (cli_is(&a, "--ode-nll")) o.ode_nll = cli_flag(&a);
        else if (cli_is(&a, "--var-study")) o.var_study = cli_flag(&a);
        else if (cli_is(&a, "--lab")) o.lab = cli_flag(&a);
        else if (cli_is(&a, "--data")) o.data = (ToyKind)cli_choice(&a, TOY_NAMES, TOY_COUNT);
        else if (cli_is(&a, "--steps")) o.steps = (int)cli_int(&a, 0, 100000000);
        else if (cli_is(&a, "--batch")) o.batch = (int)cli_int(&a, 1, 1000000);
        else if (cli_is(&a, "--lr")) o.lr = cli_double(&a, 0.0, 1.0);
        else if (cli_is(&a, "--ema")) o.ema = cli_double(&a, 0.0, 1.0);
        else if (cli_is(&a, "--n-train")) o.n_train = (int)cli_int(&a, 1, 10000000);
        else if (cli_is(&a, "--n-samples")) o.n_samples = (int)cli_int(&a, 2, 1000000);
        else if (cli_is(&a, "--class")) o.cls_name = cli_value(&a);
        else if (cli_is(&a, "--guidance")) o.guidance = cli_double(&a, -1.0, 100.0);
        else if (cli_is(&a, "--p-uncond")) { o.p_uncond = cli_double(&a, 0.0, 1.0); given_p = 1; }
        else if (cli_is(&a, "--guidance-sweep")) o.sweep = cli_flag(&a);
        else if (cli_is(&a, "--sweep-seeds")) o.sweep_seeds = (int)cli_int(&a, 1, 100);
        else cli_unknown(&a);
    }
    parse_class(&o, given_p);
    diffusion_check(&o.d);
    /* what the run does: at most one of these, and nothing that contradicts it */
    if (o.table + o.weights + o.lab + o.sweep > 1)
        die("--table, --weights, --lab and --guidance-sweep each choose what the run does: give one");
    if (o.oracle && (o.table || o.weights || o.lab || o.sweep))
        die("--oracle samples one run with the exact eps*; it does not go with --%s",
            o.table ? "table" : o.weights ? "weights" : o.lab ? "lab" : "guidance-sweep");
    if (o.ema == 1.0)
        die("--ema 1 keeps the initial weights forever (the samples would come from an untrained "
            "network): give a decay below 1, e.g. 0.995 (0: sample with the raw weights)");
    if (o.steps == 0 && !o.oracle && !o.table && !o.weights && !o.sweep)
        die("--steps 0 trains nothing, so the samples would come from an untrained network: give "
            "N >= 1, or --oracle for the exact denoiser");
    /* --oracle keeps a trained run's pictures: its own folder unless --out says otherwise */
    if (o.oracle && !o.d.given.out) o.d.out = "out/toy2d/oracle";
    if (o.batch > o.n_train) die("--batch %d is larger than --n-train %d", o.batch, o.n_train);
    return o;
}

/* ========================================================================================
 * Small helpers: coordinates, density grids, panels, the exact denoiser, energy distance */

/* The view: a box in the note's coordinates that holds the data and the spread-out
 * noise N(mean, std²) the forward process ends in (data mean ± 3.5 std). */
typedef struct { double lo[2], hi[2]; } View;

static View make_view(ToyKind kind, const double *mean, const double *std) {
    View v;
    toy_view(kind, v.lo, v.hi);
    for (int d = 0; d < 2; d++) {
        v.lo[d] = fmin(v.lo[d], mean[d] - 3.5 * std[d]);
        v.hi[d] = fmax(v.hi[d], mean[d] + 3.5 * std[d]);
    }
    /* square cells: widen the narrower side */
    double w = v.hi[0] - v.lo[0], h = v.hi[1] - v.lo[1], s = fmax(w, h);
    for (int d = 0; d < 2; d++) {
        double c = 0.5 * (v.lo[d] + v.hi[d]);
        v.lo[d] = c - s / 2;
        v.hi[d] = c + s / 2;
    }
    return v;
}

/* The mixture q_t in the note's coordinates: standardize, diffuse (each component becomes
 * N(√ᾱ_t μ_k, ᾱ_t Σ_k + (1 − ᾱ_t) I)), and map back. */
static Mixture2D mixture_at(const Mixture2D *note, double alpha_bar, const double *mean,
                            const double *std) {
    Mixture2D m;
    double back_shift[2] = { -mean[0] / std[0], -mean[1] / std[1] };
    double back_scale[2] = { 1.0 / std[0], 1.0 / std[1] };
    mixture_affine(note, mean, std, &m);
    mixture_diffuse(&m, alpha_bar, &m);
    mixture_affine(&m, back_shift, back_scale, &m);
    return m;
}

#define GRID 96   /* density grids are GRID x GRID cells over the view */

/* grid (GRID, GRID), row 0 at the top (largest y), of the mixture's density */
static void density_grid(double *grid, const Mixture2D *m, const View *v) {
    for (int r = 0; r < GRID; r++)
        for (int c = 0; c < GRID; c++) {
            double x[2] = { v->lo[0] + (c + 0.5) * (v->hi[0] - v->lo[0]) / GRID,
                            v->hi[1] - (r + 0.5) * (v->hi[1] - v->lo[1]) / GRID };
            grid[r * GRID + c] = exp(mixture_logpdf(m, x));
        }
}

/* grid of a histogram of points (N, 2), normalized to a density */
static void histogram_grid(double *grid, const real *pts, int N, const View *v) {
    double cell = (v->hi[0] - v->lo[0]) / GRID * (v->hi[1] - v->lo[1]) / GRID;
    memset(grid, 0, GRID * GRID * sizeof(double));
    for (int n = 0; n < N; n++) {
        int c = (int)floor((pts[2 * n] - v->lo[0]) / (v->hi[0] - v->lo[0]) * GRID);
        int r = (int)floor((v->hi[1] - pts[2 * n + 1]) / (v->hi[1] - v->lo[1]) * GRID);
        if (c >= 0 && c < GRID && r >= 0 && r < GRID) grid[r * GRID + c] += 1.0 / (N * cell);
    }
}

static double grid_max(const double *g) {
    double m = 0;
    for (int i = 0; i < GRID * GRID; i++) m = fmax(m, g[i]);
    return m;
}

static const unsigned char BLACK[3] = { 0, 0, 0 }, WHITE[3] = { 255, 255, 255 };
static const unsigned char ORANGE[3] = { 255, 140, 0 }, RED[3] = { 220, 30, 30 };

/* one labelled panel: a heatmap of grid over the view, with ticks in the note's coordinates
 * (so that the dog near (10, 20) can be read off) and an optional title above */
#define PANEL 220
#define TITLE_H 18
static void draw_panel(Image *img, int x, int y, const double *grid, const char *title, const View *v) {
    draw_heatmap(img, x, y + TITLE_H, PANEL, PANEL, grid, GRID, GRID, 0.0, grid_max(grid));
    draw_axes_inside(img, x, y + TITLE_H, PANEL, PANEL, v->lo[0], v->hi[0], v->lo[1], v->hi[1], 4, WHITE);
    if (title) draw_text(img, x + 2, y + 4, title, BLACK, 1);
}

/* a legend in the top-right corner of a panel at (x, y): n entries of colour and label */
static void panel_legend(Image *img, int x, int y, const char *const *labels,
                         const unsigned char (*rgb)[3], int n) {
    int wmax = 0;
    for (int i = 0; i < n; i++) wmax = text_width(labels[i], 1) > wmax ? text_width(labels[i], 1) : wmax;
    int lx = x + PANEL - wmax - FONT_H - 6, ly = y + TITLE_H + 3;
    image_fill_rect(img, lx - 2, ly - 2, wmax + FONT_H + 7, n * FONT_LINE + 2, BLACK);   /* readable over arrows */
    draw_legend(img, lx, ly, labels, rgb, n, WHITE);
}

/* pixel of a point in the note's coordinates inside a panel at (x, y + TITLE_H) */
static void to_pixel(const View *v, int x, int y, double px, double py, int *ix, int *iy) {
    double fx = (px - v->lo[0]) / (v->hi[0] - v->lo[0]) * PANEL;
    double fy = (v->hi[1] - py) / (v->hi[1] - v->lo[1]) * PANEL;
    /* a diverged model can put points anywhere: keep the conversion to int defined */
    *ix = x + (int)fmax(-1e6, fmin(1e6, isnan(fx) ? -1e6 : fx));
    *iy = y + TITLE_H + (int)fmax(-1e6, fmin(1e6, isnan(fy) ? -1e6 : fy));
}

/* Energy distance between N generated and N fresh true points, and the noise floor: the
 * same statistic between two independent true sets of N. One draw of either varies by a
 * factor of two or more (the dog/cat share of N = 2000 points alone varies by ±1.1 points),
 * so both are means over ED_REPEATS independent sets: samples holds ED_REPEATS sets of N. */
#define ED_REPEATS 10
#define FLOOR_REPEATS 20
static void energy_report(const real *samples, int N, ToyKind kind, Rng *rng, double *ed,
                          double *floor) {
    real *a = xmalloc((size_t)N * 2 * sizeof(real), "fresh data");
    real *b = xmalloc((size_t)N * 2 * sizeof(real), "fresh data");
    *ed = *floor = 0;
    Progress p;
    progress_start(&p, "energy distances", ED_REPEATS + FLOOR_REPEATS);
    for (int r = 0; r < ED_REPEATS; r++) {
        toy_sample(a, NULL, N, kind, rng);
        *ed += energy_distance(samples + (size_t)r * N * 2, N, a, N, 2) / ED_REPEATS;
        progress_add(&p, 1, NULL);
    }
    for (int r = 0; r < FLOOR_REPEATS; r++) {   /* true sets are cheap: average more of them */
        toy_sample(a, NULL, N, kind, rng);
        toy_sample(b, NULL, N, kind, rng);
        *floor += energy_distance(b, N, a, N, 2) / FLOOR_REPEATS;
        progress_add(&p, 1, NULL);
    }
    progress_end(&p);
    free(a);
    free(b);
}

/* ========================================================================================
 * The sampling trace: frames for the GIF and a few particle paths */

#define N_PATHS 3
#define STRIP_FRAMES 6
typedef struct {
    const Schedule *s;
    const View *view;
    const Mixture2D *note_mix;   /* NULL when the data set has no closed form */
    const double *mean, *std;
    GifWriter *gif;
    Image *strip;                /* a few frames side by side: STRIP_FRAMES panels */
    real *path;                  /* (T + 1, N_PATHS, 2) positions in note coordinates */
    char *visited;               /* (T + 1) 1 where the sampler has reported that t */
    real *scratch;               /* (N, 2) */
    double *grid;                /* (GRID, GRID) */
} Trace;

static void trace_step(void *ctx, int t, const real *x, const real *x0_hat, int N, int D) {
    (void)x0_hat;
    Trace *tr = ctx;
    memcpy(tr->scratch, x, (size_t)N * D * sizeof(real));
    unstandardize(tr->scratch, N, D, tr->mean, tr->std);
    for (int k = 0; k < N_PATHS && k < N; k++) {
        tr->path[(t * N_PATHS + k) * 2] = tr->scratch[2 * k];
        tr->path[(t * N_PATHS + k) * 2 + 1] = tr->scratch[2 * k + 1];
    }
    if (!tr->gif) return;
    /* background: the landscape q_t the particles are climbing (closed form), or empty */
    Image frame;
    image_init(&frame, PANEL, PANEL + TITLE_H);
    if (tr->note_mix) {
        Mixture2D m = mixture_at(tr->note_mix, tr->s->alpha_bar[t], tr->mean, tr->std);
        density_grid(tr->grid, &m, tr->view);
        draw_heatmap(&frame, 0, TITLE_H, PANEL, PANEL, tr->grid, GRID, GRID, 0.0, grid_max(tr->grid));
    } else {
        image_fill_rect(&frame, 0, TITLE_H, PANEL, PANEL, BLACK);
    }
    const View *v = tr->view;
    draw_axes_inside(&frame, 0, TITLE_H, PANEL, PANEL, v->lo[0], v->hi[0], v->lo[1], v->hi[1], 4, WHITE);
    char title[64];
    snprintf(title, sizeof title, "reverse process t = %d", t);
    draw_text(&frame, 2, 4, title, BLACK, 1);
    for (int n = 0; n < N; n++) {
        int ix, iy;
        to_pixel(tr->view, 0, 0, tr->scratch[2 * n], tr->scratch[2 * n + 1], &ix, &iy);
        image_set_pixel(&frame, ix, iy, WHITE);
    }
    tr->visited[t] = 1;
    for (int k = 0; k < N_PATHS && k < N; k++)   /* paths so far: the visited times T..t */
        for (int u = tr->s->T, prev = -1; u >= t; u--) {
            if (!tr->visited[u]) continue;            /* DDIM visits only some t */
            if (prev >= 0) {
                int x0, y0, x1, y1;
                to_pixel(tr->view, 0, 0, tr->path[(prev * N_PATHS + k) * 2], tr->path[(prev * N_PATHS + k) * 2 + 1], &x0, &y0);
                to_pixel(tr->view, 0, 0, tr->path[(u * N_PATHS + k) * 2], tr->path[(u * N_PATHS + k) * 2 + 1], &x1, &y1);
                draw_line(&frame, x0, y0, x1, y1, ORANGE);
            }
            prev = u;
        }
    for (int k = 0; k < N_PATHS && k < N; k++) {  /* where each traced particle is now */
        int ix, iy;
        to_pixel(tr->view, 0, 0, tr->scratch[2 * k], tr->scratch[2 * k + 1], &ix, &iy);
        draw_dot(&frame, ix, iy, 3, RED);
    }
    const char *legend[3] = { "samples x_t", "8 paths", "their x_t" };
    const unsigned char colours[3][3] = { { 255, 255, 255 }, { 255, 140, 0 }, { 220, 30, 30 } };
    panel_legend(&frame, 0, 0, legend, colours, 3);
    int frames = t == 0 ? 15 : 1;                 /* hold the last frame */
    for (int i = 0; i < frames; i++) gif_add_frame(tr->gif, &frame);
    for (int k = 0; k < STRIP_FRAMES; k++)        /* t = T, 4T/5, ..., 0 into the strip */
        if (t == tr->s->T * (STRIP_FRAMES - 1 - k) / (STRIP_FRAMES - 1))
            image_blit(tr->strip, &frame, 8 + k * (PANEL + 8), 4);
    image_free(&frame);
}

/* ========================================================================================
 * The story, step by step. Everything a step makes for a later one lives in Story. */

/* What one run measured, for the loss lab's table. */
typedef struct {
    double train_seconds, final_loss, ed, ed_floor, bound, bound_bpd, true_nll, eps_mse;
} Results;

typedef struct {
    Options o;
    Schedule s;
    Rng rng;                     /* the one generator of the run, in story order */
    real *train;                 /* (n_train, 2) the training set, standardized */
    int *train_label;            /* (n_train) the component each point came from: 0 = dog */
    double mean[2], std[2];      /* of the training set: the network sees (x − mean) / std */
    Mixture2D note_mix;          /* the data's exact density, in the note's coordinates */
    Mixture2D std_mix;           /* the same in standardized coordinates */
    int have_mix;                /* 0: the data set has no closed form (moons, swissroll) */
    Mixture2D cls_mix;           /* --class c: q(x₀|c), component c alone, note coordinates */
    int *y;                      /* (N_all) --class: the label of every generated point */
    Guided guided;               /* --guidance: the guided denoiser around net (guidance.h) */
    ClassMeasure cm;             /* --class: the samples against q(x₀|c) (guidance.h) */
    View view;                   /* the pictures' box */
    double prior;                /* L_T, nats per point */
    MlpConfig mc;
    Mlp mlp;
    ParamSet ps;
    Denoiser net;                /* the MLP, or with --oracle the exact ε* */
    MixtureOracle oracle;        /* --oracle: the exact ε* of the mixture (oracle.h) */
    LossLog log;
    double train_time;
    int N, N_all;                /* points pictured; all points generated (ED_REPEATS sets) */
    real *samples;               /* (N_all, 2) generated, in the note's coordinates */
    real *fresh;                 /* (N, 2) fresh true points, for samples.png */
    double *grid;                /* (GRID, GRID) scratch for density pictures */
    double t_sample;
    char share_text[256];        /* "dog 55.1% (true 55.0%), cat ..." */
    double ed, ed_floor, eps_mse, bound, bound_est, bound_se, true_nll;
    real *held;                  /* (M, 2) the held-out points of the bound, standardized */
    int M;
} Story;

static const double LN2x2 = 2 * 0.69314718055994530942;   /* 2 ln 2: nats per point → bits/dim */

/* 001 "데이터": note 001's dog (10, 20) and cat (5, 25), then standardized */
static void load_data(Story *st) {
    int n = st->o.n_train;
    st->train = xmalloc((size_t)n * 2 * sizeof(real), "training set");
    st->train_label = xmalloc((size_t)n * sizeof(int), "training labels");
    toy_sample(st->train, st->train_label, n, st->o.data, &st->rng);
    data_mean_std(st->train, n, 2, st->mean, st->std);
    standardize(st->train, n, 2, st->mean, st->std);
    st->have_mix = toy_mixture(st->o.data, &st->note_mix) == 0;
    if (st->have_mix) mixture_affine(&st->note_mix, st->mean, st->std, &st->std_mix);
    st->view = make_view(st->o.data, st->mean, st->std);
    if (st->o.cls >= 0) mixture_component(&st->note_mix, st->o.cls, &st->cls_mix);
    printf("data: %d points, mean (%.2f, %.2f), std (%.2f, %.2f); the network sees (x - mean) / std\n",
           n, st->mean[0], st->mean[1], st->std[0], st->std[1]);
}

/* 004 "Noise Sampling": the schedule, and the prior term L_T = KL(q(x_T|x_0) || N(0, I)) */
static void report_schedule(Story *st) {
    double prior = 0;
    for (int n = 0; n < st->o.n_train; n++) prior += prior_kl(st->train + 2 * n, &st->s, 2);
    st->prior = prior / st->o.n_train;
    print_schedule(&st->s, st->prior, 2, "point", "");
}

/* 001 "확산 과정": q(x_t) at several t, the closed form above a histogram of diffused points */
static void picture_forward(Story *st) {
    const Options *o = &st->o;
    int T = o->d.T, N = o->n_train;
    int ts[6] = { 0, T / 10, T / 5, 2 * T / 5, 3 * T / 5, T };
    Image img;
    image_init(&img, 6 * (PANEL + 8) + 8, 2 * (PANEL + TITLE_H + 8) + 24);
    double *grid = xmalloc(GRID * GRID * sizeof(double), "grid");
    real *xt = xmalloc((size_t)N * 2 * sizeof(real), "x_t");
    real *eps = xmalloc((size_t)N * 2 * sizeof(real), "eps");
    int *tt = xmalloc((size_t)N * sizeof(int), "t");
    for (int i = 0; i < 6; i++) {
        int t = ts[i], x = 8 + i * (PANEL + 8);
        char title[64];
        if (st->have_mix) {
            Mixture2D m = mixture_at(&st->note_mix, st->s.alpha_bar[t], st->mean, st->std);
            density_grid(grid, &m, &st->view);
            snprintf(title, sizeof title, "q(x_t) exact, t = %d", t);
        } else {
            memset(grid, 0, GRID * GRID * sizeof(double));
            snprintf(title, sizeof title, "t = %d: no closed form", t);
        }
        draw_panel(&img, x, 4, grid, title, &st->view);
        /* x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε (q_sample), then in the note's coordinates */
        for (int n = 0; n < N; n++) tt[n] = t;
        rng_fill_normal(&st->rng, eps, (size_t)N * 2);
        if (t == 0) memcpy(xt, st->train, (size_t)N * 2 * sizeof(real));
        else q_sample(xt, st->train, eps, &st->s, tt, N, 2);
        unstandardize(xt, N, 2, st->mean, st->std);
        histogram_grid(grid, xt, N, &st->view);
        snprintf(title, sizeof title, "histogram of x_t, t = %d", t);
        draw_panel(&img, x, PANEL + TITLE_H + 12, grid, title, &st->view);
    }
    draw_text(&img, 8, img.h - 14, "forward process: the dog/cat hills flatten into N(0, I) "
              "(top: closed form, bottom: diffused points)", BLACK, 1);
    png_write(path_in(o->d.out, "forward.png"), &img);
    image_free(&img);
    free(grid); free(xt); free(eps); free(tt);
}

/* 003 "역방향 확산": the network f_θ(x_t, t), an MLP (mlp.h), large enough for any batch */
static void build_model(Story *st) {
    const Options *o = &st->o;
    st->mc = mlp_default_config(2, o->batch > o->n_samples ? o->batch : o->n_samples);
    st->mc.learned_var = (int)o->d.ddpm.var == VAR_LEARNED;   /* 2 outputs more: v */
    /* --class: a label embedding with one row per component and one for ∅ (mlp.h) */
    if (o->cls >= 0 && !o->oracle) st->mc.num_classes = st->note_mix.K;
    params_init(&st->ps);
    mlp_init(&st->mlp, &st->mc, &st->ps, &st->rng);
    st->net = mlp_denoiser(&st->mlp);
}

/* What the run will compute, and a warning with its cost in CPU time when that is long
 * (cli.h warn_cost): network evaluations of one point, timed on this MLP, and the point
 * pairs of the energy distances (O(N^2)), timed on 300 points. */
static void warn_if_costly(Story *st) {
    const Options *o = &st->o;
    double eval = seconds_per_evaluation(&st->net, 256), N = o->n_samples;
    int M = 2000 < st->mc.max_batch ? 2000 : st->mc.max_batch;
    real *a = xmalloc(600 * sizeof(real), "timing points");
    for (int i = 0; i < 600; i++) a[i] = (real)(i % 17);
    clock_t c0 = clock();
    energy_distance(a, 300, a + 300, 300, 2);
    double pair = (double)(clock() - c0) / CLOCKS_PER_SEC / (2.0 * 300 * 300);
    free(a);
    CostItem items[] = {
        { "training", o->oracle ? 0 : 3.0 * o->steps * o->batch, "network evaluations", eval },
        { "sampling", N * ED_REPEATS * sampler_evaluations(&o->d), "network evaluations", eval },
        { "the all-T bound", (double)M * (o->d.T + 1), "network evaluations", eval },
        { "the loss at each t", 512.0 * o->d.T, "network evaluations", eval },
        { "the energy distances", 2.0 * (ED_REPEATS + FLOOR_REPEATS) * N * N, "point pairs", pair },
    };
    warn_cost(items, (int)(sizeof items / sizeof *items), "lower --T, --n-samples or --steps "
              "for a quicker run");
}

/* 004 "Train Diffusion Model": Ho et al.'s Algorithm 1 with the chosen parametrization */
static void train(Story *st) {
    Options *o = &st->o;
    TrainWork work;
    train_work_init(&work, o->batch, 2);
    AdamConfig adam = adam_default(o->lr);
    real *batch = xmalloc((size_t)o->batch * 2 * sizeof(real), "batch");
    int K = st->mc.num_classes, *y = K ? xmalloc((size_t)o->batch * sizeof(int), "labels") : NULL;
    if (K)
        printf("class-conditional: %d classes + the null label, label dropout p_uncond = %g\n", K,
               o->p_uncond);
    if (o->oracle) {
        if (!st->have_mix) die("--oracle needs a data set with a closed form (dogcat, ring, gaussian)");
        o->steps = 0;
    }
    loss_log_init(&st->log, 1, o->steps, 100, 100);
    for (int step = 1; step <= o->steps; step++) {
        if (K) {   /* the labels too, each replaced by ∅ with probability p_uncond */
            draw_labelled_minibatch(batch, y, st->train, st->train_label, o->n_train, o->batch, 2,
                                    &st->rng);
            label_dropout(y, o->batch, K, o->p_uncond, &st->rng);
        } else {
            draw_minibatch(batch, st->train, o->n_train, o->batch, 2, &st->rng);
        }
        /* t ~ U{1..T}, ε ~ N(0, I), loss(f_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, c)), backward */
        double loss = ddpm_train_step(&st->net, batch, y, o->batch, &o->d.ddpm, &st->s, &st->rng, &work);
        adam.lr = lr_cosine(o->lr, step, o->steps);
        adam_step(&st->ps, &adam);
        ema_update(&st->ps, o->ema);
        char bad[256];
        if (params_check_finite(&st->ps, loss, step, bad, sizeof bad))
            die("training stopped at %s (lower --lr, now %g)", bad, o->lr);
        loss_log_add(&st->log, step, loss);
    }
    st->train_time = loss_log_end(&st->log);
    if (o->oracle)
        printf("training: skipped (--oracle)\n");
    else
        printf("training: %d steps of batch %d in %.1f s (%.0f steps/s), final loss %.4f (running mean)\n",
               o->steps, o->batch, st->train_time, o->steps / fmax(st->train_time, 1e-9), st->log.running);
    free(batch);
    free(y);
    train_work_free(&work);
}

/* 001 "역방향 과정", 004 "알고리즘": x_T ~ N(0, I), then t = T..1 with the EMA weights. The
 * first N points are traced into reverse.gif and reverse.png; ED_REPEATS − 1 more sets of
 * N follow for steadier numbers. */
static void sample(Story *st) {
    const Options *o = &st->o;
    params_swap_ema(&st->ps);
    if (o->oracle) {   /* the exact ε* (with a label, ε*(x_t, c)), in standardized coordinates */
        mixture_oracle_init(&st->oracle, &st->std_mix, &st->s, o->d.ddpm.param, st->mc.max_batch);
        st->net = mixture_oracle_denoiser(&st->oracle);
        printf("oracle: sampling with the exact optimal eps* instead of the network\n");
    }
    int N = st->N = o->n_samples, N_all = st->N_all = N * ED_REPEATS;
    st->samples = xmalloc((size_t)N_all * 2 * sizeof(real), "samples");
    st->grid = xmalloc(GRID * GRID * sizeof(double), "grid");
    /* --class c: every point carries the label c; --guidance w: ε̃ = ε̂_c + w (ε̂_c − ε̂_∅) */
    Denoiser *net = &st->net, guided;
    const Mixture2D *landscape = st->have_mix ? &st->note_mix : NULL;   /* the picture's */
    char caption[160] = "reverse process: particles from N(0, I) climb onto the hills "
                        "(background: the exact q(x_t); orange: a few paths)";
    if (o->cls >= 0) {
        st->y = xmalloc((size_t)N_all * sizeof(int), "labels");
        for (int n = 0; n < N_all; n++) st->y[n] = o->cls;
        if (o->guidance != 0) {
            guided_init(&st->guided, &st->net, o->guidance);
            guided = guided_denoiser(&st->guided);
            net = &guided;
        }
        snprintf(caption, sizeof caption, "reverse process, class %s (guidance w = %g): particles "
                 "from N(0, I) climb the %s hill only (background: the exact q(x_t), both hills)",
                 o->cls_name, o->guidance, o->cls_name);
        printf("class %s: every point is generated with the label %s, guidance w = %g "
               "(gamma = 1 + w = %g)\n", o->cls_name, o->cls_name, o->guidance, 1 + o->guidance);
    }
    const int *y = st->y;
    Image strip;
    image_init(&strip, STRIP_FRAMES * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
    GifWriter gif;
    Trace tr = { &st->s, &st->view, landscape, st->mean, st->std, NULL,
                 &strip, xcalloc((size_t)(o->d.T + 1) * N_PATHS * 2, sizeof(real), "paths"),
                 xcalloc((size_t)o->d.T + 1, 1, "visited"),
                 xmalloc((size_t)N * 2 * sizeof(real), "trace scratch"), st->grid };
    if (gif_open(&gif, path_in(o->d.out, "reverse.gif"), PANEL, PANEL + TITLE_H, 12, 0) == 0) tr.gif = &gif;
    double t0 = now_seconds();
    sample_loop(net, st->samples, y, &o->d, &st->s, N, 0, &st->rng, trace_step, &tr);
    st->t_sample = now_seconds() - t0;
    if (tr.gif) gif_close(&gif);
    draw_text(&strip, 8, strip.h - 14, caption, BLACK, 1);
    png_write(path_in(o->d.out, "reverse.png"), &strip);
    image_free(&strip);
    free(tr.path); free(tr.visited); free(tr.scratch);
    sample_loop(net, st->samples + (size_t)N * 2, y ? y + N : NULL, &o->d, &st->s, N_all - N, 0,
                &st->rng, NULL, NULL);
    char hint[64];
    snprintf(hint, sizeof hint, "lower --lr (now %g)", o->lr);
    check_samples_finite(st->samples, N_all, 2, "points", hint);
    unstandardize(st->samples, N_all, 2, st->mean, st->std);
}

/* "dog 55.1% (true 55.0%), cat 44.9% (true 45.0%)": the share of the N points (note
 * coordinates) on each hill, by the component most likely to have drawn each point */
static void mixture_shares(char *text, size_t len, const Mixture2D *m, const real *pts, int N) {
    int count[MIX_MAX] = { 0 };
    for (int n = 0; n < N; n++) {
        double x[2] = { pts[2 * n], pts[2 * n + 1] };
        count[mixture_component_of(m, x)]++;
    }
    size_t used = 0;
    text[0] = 0;
    for (int k = 0; k < m->K && used < 200; k++)
        used += (size_t)snprintf(text + used, len - used, "%s%s %.1f%% (true %.1f%%)", k ? ", " : "",
                                 m->label[k], 100.0 * count[k] / N, 100.0 * m->w[k]);
}

/* The network's prediction pred (N, 2) at (x, t); a learned variance's v is dropped.
 * wide (N, 4) is scratch for a network that outputs v. */
static void predict(const Denoiser *net, real *pred, real *wide, const real *x, const int *t, int N) {
    if (!net->learned_var) {
        net->forward(net->self, pred, x, t, NULL, N);
        return;
    }
    net->forward(net->self, wide, x, t, NULL, N);
    split_output(pred, NULL, wide, N, 2);
}

/* The mean squared error per coordinate of the network's ε̂ against the exact optimal
 * ε* = E[ε | x_t] of the mixture, on M fresh points at t ~ U{1..T} */
static double eps_error(Story *st, int M) {
    const Schedule *s = &st->s;
    Parametrization param = st->o.d.ddpm.param;
    real *x0 = xmalloc((size_t)M * 2 * sizeof(real), "x0");
    real *e = xmalloc((size_t)M * 2 * sizeof(real), "eps");
    real *xt = xmalloc((size_t)M * 2 * sizeof(real), "x_t");
    real *out = xmalloc((size_t)M * 2 * sizeof(real), "out");
    real *eh = xmalloc((size_t)M * 2 * sizeof(real), "eps_hat");
    real *x0h = xmalloc((size_t)M * 2 * sizeof(real), "x0_hat");
    int *tt = xmalloc((size_t)M * sizeof(int), "t");
    toy_sample(x0, NULL, M, st->o.data, &st->rng);
    standardize(x0, M, 2, st->mean, st->std);
    for (int n = 0; n < M; n++) tt[n] = 1 + rng_int(&st->rng, st->o.d.T);
    rng_fill_normal(&st->rng, e, (size_t)M * 2);
    q_sample(xt, x0, e, s, tt, M, 2);
    real *wide = xmalloc((size_t)M * 4 * sizeof(real), "out with v");
    predict(&st->net, out, wide, xt, tt, M);
    free(wide);
    prediction_to_x0_eps(x0h, eh, out, param, xt, s, tt, M, 2);
    double se = 0;
    for (int n = 0; n < M; n++) {
        double xin[2] = { xt[2 * n], xt[2 * n + 1] }, star[2];
        mixture_eps_star(&st->std_mix, s->alpha_bar[tt[n]], xin, star);
        se += pow(eh[2 * n] - star[0], 2) + pow(eh[2 * n + 1] - star[1], 2);
    }
    free(x0); free(e); free(xt); free(out); free(eh); free(x0h); free(tt);
    return se / (2.0 * M);
}

/* --class c: the samples against q(x₀|c), the one component (guidance.h class_measure):
 * the share the exact mixture posterior calls c, the spread against the component's, the
 * energy distance to fresh points of q(x₀|c) beside its noise floor, and with guidance the
 * distance to the tilted density q(x₀|c)^{1+w} q(x₀)^{−w}. */
static void measure_class(Story *st) {
    const Options *o = &st->o;
    int N = st->N;
    ClassMeasure *m = &st->cm;
    class_measure(m, st->samples, N, ED_REPEATS, &st->note_mix, o->cls, o->guidance, &st->rng);
    st->ed = m->ed_cond;
    st->ed_floor = m->ed_cond_floor;
    printf("sampling: %d points in %.2f s; class %s: %.2f%% of %d samples classified %s by the exact"
           " mixture posterior\n", N, st->t_sample, o->cls_name, 100 * m->share, st->N_all, o->cls_name);
    printf("energy distance to %d fresh points of q(x0|%s) %.4f, noise floor %.4f, ratio %.2f (means "
           "over %d and %d sets); spread tr Cov / tr Sigma_%s = %.3f\n", N, o->cls_name, m->ed_cond,
           m->ed_cond_floor, m->ed_cond / m->ed_cond_floor, ED_REPEATS, 2 * ED_REPEATS, o->cls_name,
           m->cov_ratio);
    if (o->guidance != 0)
        printf("tilted density q(x0|%s)^(1+w) q(x0)^(-w): energy distance %.4f, noise floor %.4f "
               "(its rejection sampler accepts %.4f)\n", o->cls_name, m->ed_tilted, m->ed_tilted_floor,
               m->tilted_accept);
    st->fresh = xmalloc((size_t)N * 2 * sizeof(real), "fresh");
    mixture_sample(&st->cls_mix, st->fresh, NULL, N, &st->rng);
    mixture_shares(st->share_text, sizeof st->share_text, &st->note_mix, st->samples, st->N_all);
    st->eps_mse = NAN;
}

/* How close the samples are: the energy distance to fresh true points beside the same
 * statistic between two true sets, each hill's share against its true weight, and the
 * learned ε̂ against the exact optimal ε* = E[ε | x_t] at t ~ U{1..T} (001's landscape). */
static void measure_samples(Story *st) {
    const Options *o = &st->o;
    int N = st->N;
    if (o->cls >= 0) {
        measure_class(st);
        return;
    }
    energy_report(st->samples, N, o->data, &st->rng, &st->ed, &st->ed_floor);
    printf("sampling: %d points in %.2f s; energy distance to %d fresh true points %.4f, noise floor"
           " (two true sets) %.4f, ratio %.2f (means over %d and %d sets)\n", N, st->t_sample, N,
           st->ed, st->ed_floor, st->ed / st->ed_floor, ED_REPEATS, FLOOR_REPEATS);
    st->fresh = xmalloc((size_t)N * 2 * sizeof(real), "fresh");
    toy_sample(st->fresh, NULL, N, o->data, &st->rng);
    snprintf(st->share_text, sizeof st->share_text, "n/a (no mixture)");
    st->eps_mse = NAN;
    if (!st->have_mix) return;
    mixture_shares(st->share_text, sizeof st->share_text, &st->note_mix, st->samples, st->N_all);
    int M = 4000 < st->mc.max_batch ? 4000 : st->mc.max_batch;
    st->eps_mse = eps_error(st, M);
    printf("shares of %d samples: %s\n", st->N_all, st->share_text);
    printf("learned eps_hat vs exact eps*: mean squared error %.4f per coordinate (t ~ U{1..T})\n",
           st->eps_mse);
}

/* 004 "Train Diffusion Model", Ho et al. eq. 5: the variational bound on held-out points
 * (the KL terms summed, plus L_T and L_0), beside the true negative log-likelihood the
 * mixture gives them. Both in the network's standardized coordinates, as densities (nats
 * per point; bits per dimension = / (2 ln 2)). The terms go to bound_terms.svg.
 * The held-out points have their own generator, seeded by --seed alone, so that every run
 * with the same seed (trained or --oracle, every row of the lab) is measured on the same
 * points and the bounds can be compared. */
static void measure_bound(Story *st) {
    const Options *o = &st->o;
    int T = o->d.T, M = 2000 < st->mc.max_batch ? 2000 : st->mc.max_batch;
    real *held = xmalloc((size_t)M * 2 * sizeof(real), "held-out points");
    double *terms = xmalloc((size_t)(T + 1) * sizeof(double), "bound terms");
    Rng held_rng;
    rng_seed(&held_rng, o->d.seed ^ 0x48454c44u);
    toy_sample(held, NULL, M, o->data, &held_rng);
    standardize(held, M, 2, st->mean, st->std);
    ProgressNet pn;   /* the same network, counted: a progress line for a long bound */
    Denoiser net = progress_net(&pn, &st->net, "the all-T bound", (double)M * (T + 1));
    st->bound = vlb_all_terms(terms, NULL, &net, held, M, &o->d.ddpm, &st->s, DECODER_GAUSSIAN, &st->rng);
    st->bound_est = vlb_estimate(&st->bound_se, &net, held, M, &o->d.ddpm, &st->s, DECODER_GAUSSIAN,
                                 &st->rng);
    progress_end(&pn.p);
    st->true_nll = NAN;
    if (st->have_mix) {
        st->true_nll = 0;
        for (int n = 0; n < M; n++) {
            double x[2] = { held[2 * n], held[2 * n + 1] };
            st->true_nll -= mixture_logpdf(&st->std_mix, x) / M;
        }
    }
    printf("bound on %d held-out points (a density, standardized coordinates): all %d terms %.4f nats"
           " = %.4f bits/dim; one-t estimate %.4f +- %.4f nats\n", M, T, st->bound, st->bound / LN2x2,
           st->bound_est, st->bound_se);
    printf("  L_T %.2e, L_0 %.4f, sum of L_1..L_{T-1} %.4f nats", terms[0], terms[1],
           st->bound - terms[0] - terms[1]);
    if (st->have_mix)
        printf("; true NLL %.4f nats = %.4f bits/dim, gap %.4f nats", st->true_nll, st->true_nll / LN2x2,
               st->bound - st->true_nll);
    printf("\n");
    plot_against_t(path_in(o->d.out, "bound_terms.svg"),
                   "terms of the bound on held-out points: L_0 at t = 1, L_{t-1} at t >= 2",
                   "nats per point", 1, "term at t", T, terms + 1);
    st->held = held;   /* kept for --ode-nll: the same points */
    st->M = M;
    free(terms);
}

/* The probability-flow ODE's exact likelihood (Song et al. 2021; ddpm.h) of the same
 * held-out points as the bound: Heun with the exact 2D trace for S = 5, 10, 25, 50 steps
 * (capped at T: cli.c ode_study_steps), for the model and for the exact ε*, beside the true
 * NLL; then the bound of the same points with each variance the model has (β̃ and β for a
 * fixed one, its own if learned). */
static double ode_nll_bpd(Denoiser *net, const DdpmConfig *cfg, const Schedule *s,
                          const real *held, int M, int S) {
    double *logp = xmalloc((size_t)M * sizeof(double), "ODE log-likelihoods");
    OdeConfig oc = { .S = S, .solver = ODE_HEUN, .exact_trace = 1 };
    ode_log_likelihood(logp, NULL, NULL, net, held, NULL, M, cfg, s, &oc, NULL);
    double nll = 0;
    for (int n = 0; n < M; n++) nll -= logp[n] / M;
    free(logp);
    return nll / LN2x2;
}

static void measure_ode_nll(Story *st) {
    const Options *o = &st->o;
    int T = o->d.T, Ss[4], n_S = ode_study_steps(T, Ss);
    double t0 = now_seconds();
    printf("ODE likelihood of the same %d held-out points (probability flow, Heun, exact 2D trace),"
           " bits/dim:\n  steps S        ", st->M);
    for (int k = 0; k < n_S; k++) printf(" %7d", Ss[k]);
    if (!o->oracle) {   /* with --oracle the model is the exact ε*, the row below */
        printf("\n  %-14s", "the model");
        for (int k = 0; k < n_S; k++) {
            printf(" %7.4f", ode_nll_bpd(&st->net, &o->d.ddpm, &st->s, st->held, st->M, Ss[k]));
            fflush(stdout);
        }
    }
    if (st->have_mix) {
        /* the exact ε* with its Jacobian (oracle.c), predicting ε (the ODE uses no variance) */
        MixtureOracle exact;
        mixture_oracle_init(&exact, &st->std_mix, &st->s, PRED_EPS, st->M);
        Denoiser ex = mixture_oracle_denoiser(&exact);
        DdpmConfig cfg = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
        printf("\n  %-14s", "exact eps*");
        for (int k = 0; k < n_S; k++) {
            printf(" %7.4f", ode_nll_bpd(&ex, &cfg, &st->s, st->held, st->M, Ss[k]));
            fflush(stdout);
        }
        mixture_oracle_free(&exact);
    }
    printf("\n");
    if (st->have_mix) printf("  true NLL %.4f bits/dim\n", st->true_nll / LN2x2);
    /* the bound of the same points with each variance (one fresh ε per t and point) */
    DdpmConfig cfg = o->d.ddpm;
    double *terms = xmalloc((size_t)(T + 1) * sizeof(double), "bound terms");
    printf("  bound of the same points, bits/dim:");
    if ((int)cfg.var == VAR_LEARNED) {
        printf(" learned variance %.4f", st->bound / LN2x2);
    } else {
        for (int v = 0; v < VAR_COUNT; v++) {
            cfg.var = (ReverseVar)v;
            double b = v == (int)o->d.ddpm.var
                ? st->bound
                : vlb_all_terms(terms, NULL, &st->net, st->held, st->M, &cfg, &st->s,
                                DECODER_GAUSSIAN, &st->rng);
            printf("%s sigma^2 = %s %.4f", v ? "," : "", reverse_var_name(cfg.var), b / LN2x2);
        }
    }
    printf("\n  (%.1f s)\n", now_seconds() - t0);
    free(terms);
}

/* The bound of the network's one mean with every variance, term by term (notebook 08 §5):
 * at each t the same held-out points and the same ε give x_t, μ_q and μ_θ once
 * (ddpm.c bound_means), and ℓ_t is taken with σ_t² = β̃_t, β_t, the learned one (if the
 * network has it) and σ*²_t, the best variance for t alone (ddpm.c optimal_reverse_variance).
 * frac places a log variance on the learned range: log σ² = frac log β_t + (1 − frac) log β̃_t
 * (β̃_1 clipped to β̃_2), so frac = 0 is β̃_t, 1 is β_t. Nats per point; totals in bits/dim. */
#define VS_VARS 4   /* β̃, β, learned, best */
static int descending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static void measure_var_study(Story *st) {
    const Options *o = &st->o;
    const Schedule *s = &st->s;
    const DdpmConfig *cfg = &o->d.ddpm;
    int T = o->d.T, M = st->M, D = 2, learned = (int)cfg->var == VAR_LEARNED;
    size_t n = (size_t)M * D;
    real *eps = xmalloc(n * sizeof(real), "study eps"), *mu_q = xmalloc(n * sizeof(real), "study mu_q");
    real *mu_th = xmalloc(n * sizeof(real), "study mu_theta"), *v = xmalloc(n * sizeof(real), "study v");
    int *tt = xmalloc((size_t)M * sizeof(int), "study t");
    double *log_var = xmalloc(n * sizeof(double), "study log variances");
    double total[VS_VARS] = { 0 }, *per_point = xcalloc((size_t)VS_VARS * M, sizeof(double), "study totals");
    double *last = xmalloc((size_t)M * sizeof(double), "study l_T with beta");   /* for its tail */
    const char *name[VS_VARS] = { "beta_tilde", "beta", "learned", "best for t" };
    Rng rng;   /* its own noise: the rest of the run is the same with or without the study */
    rng_seed(&rng, o->d.seed ^ 0x56535459u);
    for (int i = 0; i < M; i++)   /* L_T, the same for all */
        for (int k = 0; k < VS_VARS; k++) per_point[(size_t)k * M + i] = prior_kl(st->held + (size_t)i * D, s, D);
    printf("variance study: the network's one mean with each sigma_t^2, term by term on the same %d "
           "held-out points and noise (nats per point)\n", M);
    printf("     t  beta_tilde        beta     learned  best for t   sigma*^2/beta  frac: learned (sd)    best\n");
    for (int t = 1; t <= T; t++) {
        for (int i = 0; i < M; i++) tt[i] = t;
        rng_fill_normal(&rng, eps, n);
        bound_means(mu_q, mu_th, learned ? v : NULL, &st->net, st->held, eps, tt, M, cfg, s);
        double best = optimal_reverse_variance(st->held, mu_q, mu_th, s, t, M, D);
        double fixed[VS_VARS] = { reverse_variance_clipped(s, VAR_BETA_TILDE, t),
                                  reverse_variance_clipped(s, VAR_BETA, t), NAN, best };
        double max_log = log(s->beta[t]), min_log = s->log_sigma_q2_clipped[t];
        double ell[VS_VARS], frac_mean = NAN, frac_sd = NAN;
        for (int k = 0; k < VS_VARS; k++) {
            if (k == 2 && !learned) { ell[k] = NAN; continue; }
            if (k == 2) learned_log_variance(log_var, v, s, t, (int)n);
            else for (size_t i = 0; i < n; i++) log_var[i] = log(fixed[k]);
            ell[k] = 0;
            for (int i = 0; i < M; i++) {
                size_t row = (size_t)i * D;
                double e = vlb_term_learned(NULL, st->held + row, mu_q + row, mu_th + row, log_var + row,
                                            s, t, D, DECODER_GAUSSIAN);
                ell[k] += e / M;
                per_point[(size_t)k * M + i] += e;
                if (t == T && k == 1) last[i] = e;
            }
        }
        if (learned) {   /* frac = (v + 1)/2 over every point and number */
            double sum = 0, sq = 0;
            for (size_t i = 0; i < n; i++) sum += 0.5 * (v[i] + 1.0);
            frac_mean = sum / n;
            for (size_t i = 0; i < n; i++) sq += pow(0.5 * (v[i] + 1.0) - frac_mean, 2);
            frac_sd = sqrt(sq / (n - 1));
        }
        double frac_best = (log(best) - min_log) / (max_log - min_log);
        printf("  %4d %11.4f %11.4f %11.4f %11.4f %15.4f %13.3f (%.3f) %7.3f\n", t, ell[0], ell[1],
               ell[2], ell[3], best / s->beta[t], frac_mean, frac_sd, frac_best);
    }
    for (int k = 0; k < VS_VARS; k++)
        for (int i = 0; i < M; i++) total[k] += per_point[(size_t)k * M + i] / M;
    printf("  bound, bits/dim (standard error over the points):");
    for (int k = 0; k < VS_VARS; k++) {
        if (k == 2 && !learned) continue;
        double sq = 0;
        for (int i = 0; i < M; i++) sq += pow((per_point[(size_t)k * M + i] - total[k]) / LN2x2, 2);
        printf("%s %s %.4f (%.4f)", k ? "," : "", name[k], total[k] / LN2x2, sqrt(sq / (M - 1) / M));
    }
    /* the same points and noise in every column: differences to beta with their paired
     * standard error (sd of the per-point differences / √M) */
    printf("\n  minus beta's, bits/dim (paired standard error):");
    for (int k = 0; k < VS_VARS; k++) {
        if (k == 1 || (k == 2 && !learned)) continue;
        double mean = (total[k] - total[1]) / LN2x2, sq = 0;
        for (int i = 0; i < M; i++)
            sq += pow((per_point[(size_t)k * M + i] - per_point[M + i]) / LN2x2 - mean, 2);
        printf("%s %s %+.4f (%.4f)", k ? "," : "", name[k], mean, sqrt(sq / (M - 1) / M));
    }
    printf("\n");
    /* ℓ_T with β_T of each point: a heavy tail makes one draw of the noise move the bound */
    qsort(last, (size_t)M, sizeof(double), descending);
    double top = 0, all = 0;
    int n_top = M / 100 > 1 ? M / 100 : 1;
    for (int i = 0; i < M; i++) { all += last[i]; if (i < n_top) top += last[i]; }
    printf("  l_T (t = %d, sigma^2 = beta): mean %.4f nats; its largest 1%% (%d points, the largest %.2f) "
           "carry %.0f%% of it\n", T, all / M, n_top, last[0], 100.0 * top / all);
    free(eps); free(mu_q); free(mu_th); free(v); free(tt); free(log_var); free(per_point); free(last);
}

/* samples.csv (every generated point) and summary.txt (the settings and every number) */
static void write_numbers(const Story *st) {
    const Options *o = &st->o;
    const DiffusionOptions *d = &o->d;
    const char *path = path_in(d->out, "samples.csv");
    char err[1200];
    IoFile *f = io_create(path, err, sizeof err);     /* checked, atomic (io.h) */
    if (!f) die("%s", err);
    io_printf(f, "x,y\n");
    for (int n = 0; n < st->N_all; n++) io_printf(f, "%.6g,%.6g\n", st->samples[2 * n], st->samples[2 * n + 1]);
    if (io_commit(f, err, sizeof err)) fprintf(stderr, "error: %s\n", err);
    path = path_in(d->out, "summary.txt");
    f = io_create(path, err, sizeof err);
    if (!f) die("%s", err);
    io_printf(f, "data %s\nT %d\nschedule %s\nparam %s\nloss %s\nvar %s\nsampler %s\nsteps %d\nbatch %d\n"
            "lr %g\nseed %lu\ntrain_seconds %.2f\nfinal_loss %.6f\nalpha_bar_T %.6g\nprior_L_T_nats %.6g\n"
            "energy_distance %.6f\nenergy_noise_floor %.6f\nshares %s\neps_mse %.6f\n"
            "bound_nats %.6f\nbound_bits_per_dim %.6f\nbound_estimate_nats %.6f\nbound_estimate_se %.6f\n"
            "true_nll_nats %.6f\n",
            toy_name(o->data), d->T, schedule_name(d->schedule), parametrization_name(d->ddpm.param),
            loss_weighting_name(d->ddpm.weighting), reverse_var_name(d->ddpm.var),
            sampler_name(d), o->steps, o->batch, o->lr, d->seed, st->train_time,
            st->log.running, st->s.alpha_bar[d->T], st->prior, st->ed, st->ed_floor, st->share_text,
            st->eps_mse, st->bound, st->bound / LN2x2, st->bound_est, st->bound_se, st->true_nll);
    if (o->cls >= 0)
        io_printf(f, "class %s\nguidance %g\np_uncond %g\nclass_share %.6f\ncov_ratio %.6f\n"
                  "tilted_energy_distance %.6f\ntilted_noise_floor %.6f\n", o->cls_name, o->guidance,
                  o->oracle ? 0.0 : o->p_uncond, st->cm.share, st->cm.cov_ratio, st->cm.ed_tilted,
                  st->cm.ed_tilted_floor);
    if (io_commit(f, err, sizeof err)) fprintf(stderr, "error: %s\n", err);
}

/* samples.png: the true density and points beside the generated ones, in the data's box */
static void picture_samples(Story *st) {
    int N = st->N, shown = N > 500 ? 500 : N;
    double *grid = st->grid;
    View box = { { 0, 0 }, { 0, 0 } };
    toy_view(st->o.data, box.lo, box.hi);
    Image img;
    image_init(&img, 2 * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
    if (st->o.cls >= 0) {          /* the one class asked for: q(x₀|c) */
        char title[64];
        snprintf(title, sizeof title, "true density q(x0|%s)", st->o.cls_name);
        density_grid(grid, &st->cls_mix, &box);
        draw_panel(&img, 8, 4, grid, title, &box);
    } else if (st->have_mix) {
        density_grid(grid, &st->note_mix, &box);
        draw_panel(&img, 8, 4, grid, "true density and data", &box);
    } else {
        histogram_grid(grid, st->fresh, N, &box);
        draw_panel(&img, 8, 4, grid, "true data (histogram)", &box);
    }
    draw_scatter(&img, 8, 4 + TITLE_H, PANEL, PANEL, st->fresh, shown, box.lo[0], box.hi[0],
                 box.lo[1], box.hi[1], 1, WHITE);
    histogram_grid(grid, st->samples, N, &box);
    draw_panel(&img, PANEL + 16, 4, grid, "generated (histogram)", &box);
    draw_scatter(&img, PANEL + 16, 4 + TITLE_H, PANEL, PANEL, st->samples, shown, box.lo[0],
                 box.hi[0], box.lo[1], box.hi[1], 1, WHITE);
    const unsigned char dots[1][3] = { { 255, 255, 255 } };
    const char *true_pts[1] = { "500 true points" }, *gen_pts[1] = { "500 samples" };
    panel_legend(&img, 8, 4, true_pts, dots, 1);
    panel_legend(&img, PANEL + 16, 4, gen_pts, dots, 1);
    char line[128];
    snprintf(line, sizeof line, "energy distance %.4f (floor %.4f)", st->ed, st->ed_floor);
    draw_text(&img, 8, img.h - 14, line, BLACK, 1);
    png_write(path_in(st->o.d.out, "samples.png"), &img);
    image_free(&img);
}

/* loss_per_t.svg: the loss of the trained model (EMA weights) at each t, on M_t training
 * points per t */
static void picture_loss_per_t(Story *st) {
    const Schedule *s = &st->s;
    const DdpmConfig *cfg = &st->o.d.ddpm;
    int T = st->o.d.T, M_t = 512 < st->mc.max_batch ? 512 : st->mc.max_batch;
    double *lt = xmalloc((size_t)T * sizeof(double), "loss t");
    real *x0 = xmalloc((size_t)M_t * 2 * sizeof(real), "x0"), *e = xmalloc((size_t)M_t * 2 * sizeof(real), "eps");
    real *xt = xmalloc((size_t)M_t * 2 * sizeof(real), "x_t"), *out = xmalloc((size_t)M_t * 2 * sizeof(real), "out");
    real *target = xmalloc((size_t)M_t * 2 * sizeof(real), "target");
    real *wide = xmalloc((size_t)M_t * 4 * sizeof(real), "out with v");
    int *tt = xmalloc((size_t)M_t * sizeof(int), "t");
    ProgressNet pn;
    Denoiser net = progress_net(&pn, &st->net, "the loss at each t", (double)M_t * T);
    for (int t = 1; t <= T; t++) {
        draw_minibatch(x0, st->train, st->o.n_train, M_t, 2, &st->rng);
        for (int n = 0; n < M_t; n++) tt[n] = t;
        rng_fill_normal(&st->rng, e, (size_t)M_t * 2);
        q_sample(xt, x0, e, s, tt, M_t, 2);
        predict(&net, out, wide, xt, tt, M_t);
        prediction_target(target, cfg->param, x0, e, xt, s, tt, M_t, 2);
        lt[t - 1] = ddpm_loss(NULL, NULL, out, target, cfg, s, tt, M_t, 2);
    }
    progress_end(&pn.p);
    plot_against_t(path_in(st->o.d.out, "loss_per_t.svg"), "loss of the trained model at each t (EMA weights)",
                   "loss", cfg->weighting == LOSS_SIMPLE, "loss at t", T, lt);
    free(lt); free(x0); free(e); free(xt); free(out); free(target); free(tt); free(wide);
}

/* field.png: the slope the particles follow at four t, −ε̂ (learned, orange) beside −ε*
 * (exact, white) on a grid of points over the landscape q_t (001 "경사") */
static void picture_field(Story *st) {
    const Schedule *s = &st->s;
    const View *view = &st->view;
    const double *mean = st->mean, *std = st->std;
    int T = st->o.d.T, tshow[4] = { T, (3 * T) / 5, T / 5, 1 };
    enum { ARROWS = 15 };
    Image img;
    image_init(&img, 4 * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
    real xin[ARROWS * ARROWS * 2], out[ARROWS * ARROWS * 2], eh[ARROWS * ARROWS * 2], x0h[ARROWS * ARROWS * 2];
    real wide[ARROWS * ARROWS * 4];   /* the output with a learned v */
    int tt[ARROWS * ARROWS];
    for (int i = 0; i < 4; i++) {
        int t = tshow[i], px = 8 + i * (PANEL + 8);
        Mixture2D m = mixture_at(&st->note_mix, s->alpha_bar[t], mean, std);
        density_grid(st->grid, &m, view);
        char title[64];
        snprintf(title, sizeof title, "-eps field, t = %d", t);
        draw_panel(&img, px, 4, st->grid, title, view);
        for (int a = 0; a < ARROWS * ARROWS; a++) {
            double x = view->lo[0] + ((a % ARROWS) + 0.5) * (view->hi[0] - view->lo[0]) / ARROWS;
            double y = view->lo[1] + ((a / ARROWS) + 0.5) * (view->hi[1] - view->lo[1]) / ARROWS;
            xin[2 * a] = (real)((x - mean[0]) / std[0]);
            xin[2 * a + 1] = (real)((y - mean[1]) / std[1]);
            tt[a] = t;
        }
        predict(&st->net, out, wide, xin, tt, ARROWS * ARROWS);
        prediction_to_x0_eps(x0h, eh, out, st->o.d.ddpm.param, xin, s, tt, ARROWS * ARROWS, 2);
        double cell = (double)PANEL / ARROWS;   /* |ε| = 2 or more draws one cell */
        for (int a = 0; a < ARROWS * ARROWS; a++) {
            double xs[2] = { xin[2 * a], xin[2 * a + 1] }, star[2];
            mixture_eps_star(&st->std_mix, s->alpha_bar[t], xs, star);
            int x0p, y0p;
            to_pixel(view, px, 4, xs[0] * std[0] + mean[0], xs[1] * std[1] + mean[1], &x0p, &y0p);
            /* pixels: x right, y down, so the y component flips */
            double e_star[2] = { star[0], star[1] }, e_hat[2] = { eh[2 * a], eh[2 * a + 1] };
            double *vecs[2] = { e_star, e_hat };
            for (int k = 0; k < 2; k++) {
                double norm = hypot(vecs[k][0], vecs[k][1]);
                double len = norm > 0 ? cell * fmin(norm, 2.0) / 2.0 / norm : 0.0;
                draw_line(&img, x0p, y0p, x0p - (int)lround(len * vecs[k][0]),
                          y0p + (int)lround(len * vecs[k][1]), k ? ORANGE : WHITE);
            }
            draw_dot(&img, x0p, y0p, 1, RED);
        }
    }
    const char *legend[2] = { "exact -eps*", "learned -eps_hat" };
    const unsigned char colours[2][3] = { { 255, 255, 255 }, { 255, 140, 0 } };
    panel_legend(&img, 8, 4, legend, colours, 2);
    draw_text(&img, 8, img.h - 14, "white: exact -eps* = sqrt(1-abar) grad log q_t;  orange: learned -eps_hat",
              BLACK, 1);
    png_write(path_in(st->o.d.out, "field.png"), &img);
    image_free(&img);
}

/* the generated density on the terminal, GRID cells averaged into TW x TH characters */
static void preview_density(Story *st) {
    enum { TW = 64, TH = 32 };
    double small[TW * TH];
    const View *v = &st->view;
    histogram_grid(st->grid, st->samples, st->N, v);
    for (int r = 0; r < TH; r++)
        for (int c = 0; c < TW; c++) {
            double sum = 0;
            int r0 = r * GRID / TH, r1 = (r + 1) * GRID / TH, c0 = c * GRID / TW, c1 = (c + 1) * GRID / TW;
            for (int rr = r0; rr < r1; rr++)
                for (int cc = c0; cc < c1; cc++) sum += st->grid[rr * GRID + cc];
            small[r * TW + c] = sum;
        }
    printf("generated density (x from %.1f to %.1f, y from %.1f to %.1f):\n", v->lo[0], v->hi[0],
           v->lo[1], v->hi[1]);
    term_heatmap(stdout, small, TW, TH, term_wants_color(stdout));
}

/* samples.png, loss.svg, loss_per_t.svg, field.png and the terminal preview */
static void write_pictures(Story *st) {
    const char *out = st->o.d.out;
    picture_samples(st);
    loss_log_plot(&st->log, path_in(out, "loss.svg"), loss_weighting_name(st->o.d.ddpm.weighting));
    picture_loss_per_t(st);
    if (st->have_mix) picture_field(st);
    preview_density(st);
    printf("pictures: %s/forward.png reverse.gif reverse.png samples.png field.png loss.svg loss_per_t.svg bound_terms.svg\n"
           "numbers:  %s/summary.txt, samples in %s/samples.csv\n", out, out, out);
}

static Results end_story(Story *st) {
    Results res = { st->train_time, st->log.running, st->ed, st->ed_floor, st->bound,
                    st->bound / LN2x2, st->true_nll, st->eps_mse };
    free(st->fresh); free(st->samples); free(st->grid); free(st->train); free(st->train_label);
    free(st->held);
    free(st->y);
    guided_free(&st->guided);
    mixture_oracle_free(&st->oracle);
    loss_log_free(&st->log);
    mlp_free(&st->mlp);
    params_free(&st->ps);
    schedule_free(&st->s);
    return res;
}

/* ========================================================================================
 * The story: data, schedule, forward process, train, sample, measure, show. */

static Results run_story(Options o) {
    Story st = { .o = o };
    if (schedule_build(&st.s, o.d.schedule, o.d.T)) exit(1);
    make_folder(o.d.out);
    rng_seed(&st.rng, o.d.seed);
    printf("toy2d: %s data, T = %d, %s schedule, predict %s, %s loss, sigma_t^2 = %s, %s sampler\n",
           toy_name(o.data), o.d.T, schedule_name(o.d.schedule), parametrization_name(o.d.ddpm.param),
           loss_weighting_name(o.d.ddpm.weighting), reverse_var_name(o.d.ddpm.var),
           sampler_name(&o.d));

    load_data(&st);            /* 10000 points of the dog/cat mixture, standardized */
    report_schedule(&st);      /* β_t, ᾱ_T and the prior term L_T */
    picture_forward(&st);      /* forward.png: the hills flatten into N(0, I) */
    build_model(&st);          /* the MLP, initialized from the same generator */
    warn_if_costly(&st);       /* a long run says so (and progress lines show the time left) */
    train(&st);                /* Algorithm 1, the EMA of the weights, loss log */
    sample(&st);               /* the note's algorithm from x_T ~ N(0, I): reverse.gif/png */
    measure_samples(&st);      /* energy distance, shares, ε̂ against the exact ε* */
    measure_bound(&st);        /* the bound beside the true NLL, bound_terms.svg */
    if (o.ode_nll) measure_ode_nll(&st);   /* the exact likelihood by the ODE, same points */
    if (o.var_study) measure_var_study(&st);   /* one mean, every variance, term by term */
    write_numbers(&st);        /* samples.csv, summary.txt */
    write_pictures(&st);       /* samples.png, loss.svg, loss_per_t.svg, field.png, preview */
    return end_story(&st);
}

/* ========================================================================================
 * Extras: the schedule table, the KL weights w_t, and the loss lab */

/* w_t of schedule.c for every parametrization and reverse variance, against t (SVG) */
static void plot_weights(const Options *o) {
    Schedule s;
    if (schedule_build(&s, o->d.schedule, o->d.T)) exit(1);
    double *ts = xmalloc((size_t)o->d.T * sizeof(double), "t");
    double *w = xmalloc((size_t)PRED_COUNT * VAR_COUNT * o->d.T * sizeof(double), "weights");
    static char names[PRED_COUNT * VAR_COUNT][48];
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = "KL-derived loss weight w_t: L_{t-1} = w_t ||target - prediction||^2 + const";
    p.xlabel = "t";
    p.ylabel = "w_t";
    p.log_y = 1;
    for (int t = 1; t <= o->d.T; t++) ts[t - 1] = t;
    for (int k = 0; k < PRED_COUNT; k++)
        for (int v = 0; v < VAR_COUNT; v++) {
            int i = k * VAR_COUNT + v;
            double *wi = w + (size_t)i * o->d.T;
            for (int t = 1; t <= o->d.T; t++) wi[t - 1] = loss_weight_kl(&s, (Parametrization)k, (ReverseVar)v, t);
            snprintf(names[i], sizeof names[i], "%s, sigma^2 = %s", parametrization_name((Parametrization)k),
                     reverse_var_name((ReverseVar)v));
            p.series[p.nseries++] = (SvgSeries){ names[i], o->d.T, ts, wi };
        }
    make_folder(o->d.out);
    if (svg_lineplot(path_in(o->d.out, "weights.svg"), &p) == 0)
        printf("wrote %s (%s schedule, T = %d)\n", path_in(o->d.out, "weights.svg"), schedule_name(s.kind), o->d.T);
    free(ts);
    free(w);
    schedule_free(&s);
}

/* The loss lab: every parametrization × weighting with the same budget and seed, one
 * sub-folder each, and a markdown table of what they measured. */
static void run_lab(const Options *base) {
    char folder[PRED_COUNT][LOSS_COUNT][CLI_PATH_MAX];   /* --out is at most CLI_OUT_MAX bytes */
    Results res[PRED_COUNT][LOSS_COUNT];
    make_folder(base->d.out);
    plot_weights(base);
    for (int k = 0; k < PRED_COUNT; k++)
        for (int w = 0; w < LOSS_COUNT; w++) {
            Options o = *base;
            o.d.ddpm.param = (Parametrization)k;
            o.d.ddpm.weighting = (LossWeighting)w;
            snprintf(folder[k][w], sizeof folder[k][w], "%s/%s-%s", base->d.out,
                     parametrization_name(o.d.ddpm.param), loss_weighting_name(o.d.ddpm.weighting));
            o.d.out = folder[k][w];
            printf("\n==== lab: predict %s, %s loss ====\n", parametrization_name(o.d.ddpm.param),
                   loss_weighting_name(o.d.ddpm.weighting));
            res[k][w] = run_story(o);
        }
    char err[1200];
    IoFile *f = io_create(path_in(base->d.out, "lab.md"), err, sizeof err);   /* checked, atomic */
    if (!f) die("%s", err);
    io_printf(f, "| predict | loss | energy distance | noise floor | ratio | bound (bits/dim) | true NLL (bits/dim) "
               "| eps MSE | train time (s) |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < PRED_COUNT; k++)
        for (int w = 0; w < LOSS_COUNT; w++) {
            Results *r = &res[k][w];
            io_printf(f, "| %s | %s | %.4f | %.4f | %.2f | %.3f | %.3f | %.4f | %.1f |\n",
                    parametrization_name((Parametrization)k), loss_weighting_name((LossWeighting)w),
                    r->ed, r->ed_floor, r->ed / r->ed_floor, r->bound_bpd, r->true_nll / (2.0 * log(2.0)),
                    r->eps_mse, r->train_seconds);
        }
    io_printf(f, "\n%s data, T = %d, %s schedule, sigma_t^2 = %s, %d steps of batch %d, lr %g, seed %lu.\n",
              toy_name(base->data), base->d.T, schedule_name(base->d.schedule), reverse_var_name(base->d.ddpm.var),
              base->steps, base->batch, base->lr, base->d.seed);
    if (io_commit(f, err, sizeof err)) fprintf(stderr, "error: %s\n", err);
    printf("\nlab table: %s\n", path_in(base->d.out, "lab.md"));
}

/* ========================================================================================
 * --guidance-sweep: what classifier-free guidance samples, with exact fields (guidance.h)
 *
 * No network: the exact ε*(x_t, c) and ε*(x_t, ∅) of the mixture, mixed as
 *   ε̃ = ε*_c + w (ε*_c − ε*_∅),  the score of q_t(x|c)^{1+w} q_t(x)^{−w} at every t
 * (test_guidance.c checks it), sampled with this T and sampler for w = 0, 0.5, 1, 2, 4 and
 * several seeds. Each set is measured against q(x₀|c) and against the tilted density
 * q(x₀|c)^{1+w} q(x₀)^{−w}, the target guidance is often said to sample (drawn exactly by
 * rejection, data.h tilted_sample). Then where in t guidance pushes: the push
 * w (ε*_c − ε*_∅) is large only where the diffused hills overlap (P(c | x_t) < 1). */
#define SWEEP_W 5
#define SWEEP_SETS 5     /* sets of n_samples per w and seed, for the energy distances */

typedef struct { double mean, sd; } Spread;

static Spread spread_of(const double *v, int n) {
    Spread r = { 0, 0 };
    for (int i = 0; i < n; i++) r.mean += v[i] / n;
    for (int i = 0; i < n && n > 1; i++) r.sd += (v[i] - r.mean) * (v[i] - r.mean) / (n - 1);
    r.sd = sqrt(r.sd);
    return r;
}

/* guidance_sweep.png: one panel per w, samples over the density of q(x₀|c), the other
 * classes' means as red dots */
static void picture_sweep(const Options *o, const Mixture2D *note, const Mixture2D *cls,
                          real *const *shown, int n_shown, const double *ws) {
    View v;
    double half = 0;
    for (int i = 0; i < 2; i++) half = fmax(half, 4.5 * sqrt(cls->cov[0][i][i]));
    for (int i = 0; i < 2; i++) { v.lo[i] = cls->mu[0][i] - half; v.hi[i] = cls->mu[0][i] + half; }
    Image img;
    image_init(&img, SWEEP_W * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
    double *grid = xmalloc(GRID * GRID * sizeof(double), "grid");
    density_grid(grid, cls, &v);
    for (int k = 0; k < SWEEP_W; k++) {
        int x = 8 + k * (PANEL + 8);
        char title[64];
        snprintf(title, sizeof title, "w = %g (gamma = %g)", ws[k], 1 + ws[k]);
        draw_panel(&img, x, 4, grid, title, &v);
        draw_scatter(&img, x, 4 + TITLE_H, PANEL, PANEL, shown[k], n_shown, v.lo[0], v.hi[0],
                     v.lo[1], v.hi[1], 1, WHITE);
        double m[2] = { 0, 0 };   /* the samples' mean (orange) against the component's (black) */
        for (int n = 0; n < n_shown; n++) { m[0] += shown[k][2 * n] / n_shown; m[1] += shown[k][2 * n + 1] / n_shown; }
        int ix, iy;
        to_pixel(&v, x, 4, cls->mu[0][0], cls->mu[0][1], &ix, &iy);
        draw_circle(&img, ix, iy, 4, BLACK);
        to_pixel(&v, x, 4, m[0], m[1], &ix, &iy);
        draw_dot(&img, ix, iy, 2, ORANGE);
        for (int j = 0; j < note->K; j++) {
            if (j == o->cls) continue;
            to_pixel(&v, x, 4, note->mu[j][0], note->mu[j][1], &ix, &iy);
            if (ix >= x && ix < x + PANEL && iy >= 4 + TITLE_H && iy < 4 + TITLE_H + PANEL)
                draw_dot(&img, ix, iy, 3, RED);
        }
    }
    char line[200];
    snprintf(line, sizeof line, "guided sampling with the exact eps*, class %s, over q(x0|%s); "
             "black circle: its mean, orange: the samples' mean", o->cls_name, o->cls_name);
    draw_text(&img, 8, img.h - 14, line, BLACK, 1);
    png_write(path_in(o->d.out, "guidance_sweep.png"), &img);
    image_free(&img);
    free(grid);
}

static void run_guidance_sweep(Options *o) {
    Schedule s;
    Mixture2D note, std_mix, cls, std_cls;
    if (toy_mixture(o->data, &note) != 0) die("--guidance-sweep needs a mixture (dogcat, ring, gaussian)");
    if (!o->cls_name) o->cls_name = note.label[o->cls];
    if (schedule_build(&s, o->d.schedule, o->d.T)) exit(1);
    make_folder(o->d.out);
    double mean[2], cov[2][2], std[2];   /* standardize by the mixture's exact moments */
    mixture_moments(&note, mean, cov);
    std[0] = sqrt(cov[0][0]); std[1] = sqrt(cov[1][1]);
    mixture_affine(&note, mean, std, &std_mix);
    mixture_component(&note, o->cls, &cls);
    mixture_component(&std_mix, o->cls, &std_cls);
    MixtureOracle oracle;   /* the exact ε*(x_t, c) and ε*(x_t, ∅) (oracle.h) */
    mixture_oracle_init(&oracle, &std_mix, &s, o->d.ddpm.param, o->n_samples * SWEEP_SETS);
    Denoiser net = mixture_oracle_denoiser(&oracle);
    const double ws[SWEEP_W] = { 0.0, 0.5, 1.0, 2.0, 4.0 };
    int N = o->n_samples, N_all = N * SWEEP_SETS, S = o->sweep_seeds, shown_n = N > 500 ? 500 : N;
    real *x = xmalloc((size_t)N_all * 2 * sizeof(real), "samples");
    int *y = xmalloc((size_t)N_all * sizeof(int), "labels");
    for (int n = 0; n < N_all; n++) y[n] = o->cls;
    real *shown[SWEEP_W];
    double (*v)[8][100] = xcalloc(SWEEP_W, sizeof *v, "sweep numbers");   /* [w][quantity][seed] */
    int other = o->cls == 0 ? 1 : 0;   /* the direction away from another class: μ_c − μ_other */
    double away[2] = { note.mu[o->cls][0] - note.mu[other][0], note.mu[o->cls][1] - note.mu[other][1] };
    double away_len = hypot(away[0], away[1]);
    printf("guidance sweep: class %s of %s, exact eps*(x_t, c) and eps*(x_t, null), T = %d, %s "
           "schedule, %s sampler, %d seeds x %d sets of %d points per w\n", o->cls_name,
           toy_name(o->data), o->d.T, schedule_name(o->d.schedule), sampler_name(&o->d),
           S, SWEEP_SETS, N);
    for (int k = 0; k < SWEEP_W; k++) {
        Guided g;
        guided_init(&g, &net, ws[k]);
        Denoiser gd = guided_denoiser(&g);
        shown[k] = xmalloc((size_t)shown_n * 2 * sizeof(real), "shown");
        for (int seed = 0; seed < S; seed++) {
            Rng rng;
            rng_seed(&rng, o->d.seed + (unsigned long)seed);
            sample_loop(&gd, x, y, &o->d, &s, N_all, 0, &rng, NULL, NULL);
            unstandardize(x, N_all, 2, mean, std);
            if (seed == 0) memcpy(shown[k], x, (size_t)shown_n * 2 * sizeof(real));
            ClassMeasure m;
            class_measure(&m, x, N, SWEEP_SETS, &note, o->cls, ws[k], &rng);
            double shift = ((m.mean[0] - note.mu[o->cls][0]) * away[0] +
                            (m.mean[1] - note.mu[o->cls][1]) * away[1]) / away_len;
            double q[8] = { m.share, m.cov_ratio, shift, m.ed_cond, m.ed_cond_floor, m.ed_tilted,
                            m.ed_tilted_floor, m.tilted_accept };
            for (int i = 0; i < 8; i++) v[k][i][seed] = q[i];
        }
        guided_free(&g);
    }
    /* the table: mean ± sd over the seeds */
    char path[1024];
    snprintf(path, sizeof path, "%s", path_in(o->d.out, "guidance.md"));
    char err[1200];
    IoFile *f = io_create(path, err, sizeof err);   /* checked, atomic (io.h) */
    if (!f) die("%s", err);
    const char *head = "| w | gamma = 1 + w | in-class share | tr Cov / tr Sigma_c | mean shift away "
                       "from %s | ED to q(x0|c) | its floor | ED to tilted | its floor | tilted "
                       "acceptance |\n|---|---|---|---|---|---|---|---|---|---|\n";
    io_printf(f, head, note.label[other]);
    printf(head, note.label[other]);
    double xs[SWEEP_W], ys[4][SWEEP_W];
    for (int k = 0; k < SWEEP_W; k++) {
        Spread q[8];
        for (int i = 0; i < 8; i++) q[i] = spread_of(v[k][i], S);
        char row[512];
        snprintf(row, sizeof row, "| %g | %g | %.2f%% ± %.2f | %.3f ± %.3f | %.3f ± %.3f | %.4f ± %.4f | "
                 "%.4f ± %.4f | %.4f ± %.4f | %.4f ± %.4f | %.4f |\n", ws[k], 1 + ws[k],
                 100 * q[0].mean, 100 * q[0].sd, q[1].mean, q[1].sd, q[2].mean, q[2].sd, q[3].mean,
                 q[3].sd, q[4].mean, q[4].sd, q[5].mean, q[5].sd, q[6].mean, q[6].sd, q[7].mean);
        io_puts(f, row);
        fputs(row, stdout);
        xs[k] = ws[k];
        for (int i = 0; i < 4; i++) ys[i][k] = q[3 + i].mean;
    }
    /* where in t guidance pushes: over x_t ~ q_t(·|c), the size of w (ε*_c − ε*_∅) per unit
     * w, and P(c | x_t) under the diffused mixture */
    io_printf(f, "\n| t | alphabar_t | mean of P(c \\| x_t), x_t ~ q_t(.\\|c) | mean of \\|eps*_c - eps*_null\\| |\n"
               "|---|---|---|---|\n");
    printf("where the push acts (x_t ~ q_t(.|c), %d points): t, alphabar_t, mean P(c | x_t), "
           "mean |eps*_c - eps*_null|\n", N);
    int ts[6] = { o->d.T, 3 * o->d.T / 4, o->d.T / 2, o->d.T / 4, o->d.T / 10, 1 };
    Rng rng;
    rng_seed(&rng, o->d.seed);
    for (int i = 0; i < 6; i++) {
        double ab = s.alpha_bar[ts[i]], post = 0, push = 0;
        Mixture2D qc, qt;
        mixture_diffuse(&std_cls, ab, &qc);
        mixture_diffuse(&std_mix, ab, &qt);
        mixture_sample(&qc, x, NULL, N, &rng);
        for (int n = 0; n < N; n++) {
            double p[2] = { x[2 * n], x[2 * n + 1] }, ec[2], en[2];
            post += mixture_posterior(&qt, p, o->cls) / N;
            mixture_eps_star_cond(&std_mix, ab, p, o->cls, ec);
            mixture_eps_star_cond(&std_mix, ab, p, std_mix.K, en);
            push += hypot(ec[0] - en[0], ec[1] - en[1]) / N;
        }
        io_printf(f, "| %d | %.4f | %.4f | %.4f |\n", ts[i], ab, post, push);
        printf("  t = %2d  alphabar %.4f  P(c|x_t) %.4f  |eps*_c - eps*_null| %.4f\n", ts[i], ab, post, push);
    }
    io_printf(f, "\n%s data, class %s, T = %d, %s schedule, sigma_t^2 = %s, %s sampler; %d seeds from %lu, "
            "%d sets of %d points per w and seed; mean ± sd over the seeds.\n", toy_name(o->data),
            o->cls_name, o->d.T, schedule_name(o->d.schedule), reverse_var_name(o->d.ddpm.var),
            sampler_name(&o->d), S, o->d.seed, SWEEP_SETS, N);
    if (io_commit(f, err, sizeof err)) fprintf(stderr, "error: %s\n", err);
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = "guided sampling with the exact eps*: energy distance against w";
    p.xlabel = "guidance w (gamma = 1 + w)";
    p.ylabel = "energy distance";
    p.log_y = 1;
    const char *names[4] = { "to q(x0|c)", "floor of q(x0|c)", "to the tilted q(x0|c)^(1+w) q(x0)^(-w)",
                             "floor of the tilted" };
    for (int i = 0; i < 4; i++) p.series[p.nseries++] = (SvgSeries){ names[i], SWEEP_W, xs, ys[i] };
    svg_lineplot(path_in(o->d.out, "guidance.svg"), &p);
    picture_sweep(o, &note, &cls, shown, shown_n, ws);
    printf("table: %s; pictures: %s/guidance.svg guidance_sweep.png\n", path, o->d.out);
    for (int k = 0; k < SWEEP_W; k++) free(shown[k]);
    free(v); free(x); free(y);
    mixture_oracle_free(&oracle);
    schedule_free(&s);
}

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    if (o.table) {                       /* the schedule's numbers, to read beside the notes */
        Schedule s;
        if (schedule_build(&s, o.d.schedule, o.d.T)) return 1;
        schedule_print(stdout, &s, o.d.T > 20 ? o.d.T / 10 : 1);
        schedule_free(&s);
        return 0;
    }
    if (o.weights) { plot_weights(&o); return cli_exit_status(0); }
    if (o.lab) { run_lab(&o); return cli_exit_status(0); }
    if (o.sweep) { run_guidance_sweep(&o); return cli_exit_status(0); }
    run_story(o);
    return cli_exit_status(0);
}
