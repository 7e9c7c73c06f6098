/* toy2d.c: the 2D dog/cat story of note 001, end to end.
 *
 * "개" (dog) points gather near (10, 20), "고양이" (cat) points near (5, 25); the forward
 * process flattens their probability landscape into N(0, I), and the reverse process moves
 * particles back up the hills, t = T, T−1, ..., 1. This program does exactly that and
 * shows it. Read it top to bottom; each step names the function it calls:
 *
 *   1. options                          (./toy2d --help)
 *   2. data: the dog/cat mixture        data.c   toy_sample, standardize
 *   3. the schedule and the prior term  schedule.c schedule_build; ddpm.c prior_kl
 *   4. the forward process, pictured    ddpm.c   q_sample; data.c mixture_diffuse
 *   5. training                         ddpm.c   ddpm_train_step; tensor.c adam_step
 *   6. sampling (the note's algorithm)  ddpm.c   p_sample_loop / ddim_sample_loop
 *   7. numbers: energy distance, shares, data.c energy_distance; mixture_eps_star
 *      the learned ε̂ against the exact ε*,
 *      the bound beside the true NLL        ddpm.c   vlb_all_terms, vlb_estimate
 *      and the remaining pictures           plot.c
 * Extras after the story: --table (schedule_print), --weights (loss_weight_kl for every
 * parametrization), --lab (the story for every parametrization × weighting), --oracle
 * (the exact optimal ε* in place of the network).
 *
 * Notebooks: notebooks_md/05_dogcat_landscape.md walks through the output, 07 the bound
 * and the lab.
 * Coordinates: the network works on standardized data (the dog/cat coordinates are ~20
 * times the noise scale, DESIGN.md "Data scale"); every picture is in the note's
 * coordinates.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "ddpm.h"
#include "mlp.h"
#include "plot.h"
#include "schedule.h"
#include "tensor.h"

/* ========================================================================================
 * 1. Options */

typedef struct {
    ToyKind data;           /* dogcat */
    int T;                  /* diffusion steps, 50 as in the note's "t = 50, 49, ..." */
    ScheduleKind schedule;  /* cosine */
    DdpmConfig ddpm;        /* eps, simple, beta_tilde */
    int ddim_steps;         /* 0: ancestral sampling (the note's algorithm); > 0: DDIM */
    double eta;             /* DDIM η */
    int steps, batch;       /* training steps and batch size */
    double lr, ema;         /* Adam learning rate, EMA decay */
    int n_train, n_samples; /* training set size, number of generated points */
    unsigned long seed;
    const char *out;        /* output folder */
    int table;              /* print the schedule table and exit */
    int oracle;             /* sample with the exact optimal ε* instead of a trained network */
    int weights;            /* plot the KL weights w_t and exit */
    int lab;                /* the loss lab: every parametrization × weighting */
} Options;

static Options default_options(void) {
    Options o;
    memset(&o, 0, sizeof o);
    o.data = TOY_DOGCAT;
    o.T = 50;
    o.schedule = SCHED_COSINE;  /* at T = 50 the exact denoiser (--oracle) samples closer to
                                   the data with cosine: energy ratio 1.27, linear 1.52 */
    o.ddpm.param = PRED_EPS;
    o.ddpm.weighting = LOSS_SIMPLE;
    o.ddpm.var = VAR_BETA_TILDE;
    o.ddim_steps = 0;
    o.eta = 0.0;
    o.steps = 4000;
    o.batch = 256;
    o.lr = 4e-3;
    o.ema = 0.995;
    o.n_train = 10000;
    o.n_samples = 2000;
    o.seed = 1;
    o.out = "out/toy2d";
    return o;
}

static void usage(FILE *f) {
    Options d = default_options();
    fprintf(f,
        "usage: ./toy2d [options]\n"
        "The 2D dog/cat diffusion demo of note 001: trains a small MLP denoiser, samples,\n"
        "and writes pictures and numbers to the output folder.\n\n"
        "  --data NAME        %s (default %s)\n"
        "  --T N              diffusion steps (default %d)\n"
        "  --schedule NAME    %s (default %s)\n"
        "  --param NAME       what the network predicts: eps|x0|mu|v (default %s)\n"
        "  --loss NAME        simple|kl: L_simple or the KL-weighted L_{t-1} (default %s)\n"
        "  --var NAME         reverse variance sigma_t^2: beta_tilde|beta (default %s)\n"
        "  --sampler NAME     ddpm (the note's algorithm) or ddim (default ddpm)\n"
        "  --ddim-steps N     DDIM steps, 1..T (default T; implies --sampler ddim)\n"
        "  --eta X            DDIM eta, 0 = deterministic (default %g)\n"
        "  --steps N          training steps (default %d)\n"
        "  --batch N          batch size (default %d)\n"
        "  --lr X             Adam learning rate at the start, cosine decay to 0 (default %g)\n"
        "  --ema X            EMA decay of the weights used for sampling (default %g)\n"
        "  --n-train N        training set size (default %d)\n"
        "  --n-samples N      points to generate (default %d)\n"
        "  --seed N           random seed (default %lu)\n"
        "  --out DIR          output folder (default %s)\n"
        "  --table            print the schedule table (beta_t, alpha_t, alphabar_t, ...) and exit\n"
        "  --oracle           skip training and sample with the exact optimal eps* (mixtures\n"
        "                     only): what a perfect network would do with this T and sampler\n"
        "  --weights          plot the KL-derived loss weights w_t (weights.svg) and exit\n"
        "  --lab              the loss lab: train every parametrization x weighting with the\n"
        "                     same budget and seed, write lab.md with the measured numbers\n"
        "  --help             this text\n",
        toy_names(), toy_name(d.data), d.T, schedule_names(), schedule_name(d.schedule),
        parametrization_name(d.ddpm.param), loss_weighting_name(d.ddpm.weighting),
        reverse_var_name(d.ddpm.var), d.eta, d.steps, d.batch, d.lr, d.ema, d.n_train,
        d.n_samples, d.seed, d.out);
}

static Options parse_options(int argc, char **argv) {
    Options o = default_options();
    int sampler_ddim = 0, ddim_steps_given = 0;
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *val;
        cli_split("./toy2d", argv, i, name, (int)sizeof name, &val);
        if (strcmp(name, "--help") == 0) { usage(stdout); exit(0); }
        if (strcmp(name, "--table") == 0) { o.table = 1; continue; }
        if (strcmp(name, "--oracle") == 0) { o.oracle = 1; continue; }
        if (strcmp(name, "--weights") == 0) { o.weights = 1; continue; }
        if (strcmp(name, "--lab") == 0) { o.lab = 1; continue; }
        static const char *with_value[] = { "--data", "--T", "--schedule", "--param", "--loss",
            "--var", "--sampler", "--ddim-steps", "--eta", "--steps", "--batch", "--lr", "--ema",
            "--n-train", "--n-samples", "--seed", "--out" };
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(name, with_value[k]);
        if (!known) die("unknown option '%s' (see ./toy2d --help)", name);
        if (!val) {
            if (i + 1 >= argc) die("%s needs a value (see ./toy2d --help)", name);
            val = argv[++i];
        }
        if (strcmp(name, "--data") == 0) {
            int k = toy_parse(val);
            if (k < 0) die("--data: unknown '%s'; allowed: %s", val, toy_names());
            o.data = (ToyKind)k;
        } else if (strcmp(name, "--T") == 0) {
            o.T = (int)cli_int(name, val, 1, 100000);
        } else if (strcmp(name, "--schedule") == 0) {
            if (schedule_parse(val, &o.schedule)) die("--schedule: unknown '%s'; allowed: %s", val, schedule_names());
        } else if (strcmp(name, "--param") == 0) {
            if (parametrization_parse(val, &o.ddpm.param)) die("--param: unknown '%s'; allowed: eps|x0|mu|v", val);
        } else if (strcmp(name, "--loss") == 0) {
            if (loss_weighting_parse(val, &o.ddpm.weighting)) die("--loss: unknown '%s'; allowed: simple|kl", val);
        } else if (strcmp(name, "--var") == 0) {
            if (reverse_var_parse(val, &o.ddpm.var)) die("--var: unknown '%s'; allowed: beta_tilde|beta", val);
        } else if (strcmp(name, "--sampler") == 0) {
            if (strcmp(val, "ddpm") == 0) sampler_ddim = 0;
            else if (strcmp(val, "ddim") == 0) sampler_ddim = 1;
            else die("--sampler: unknown '%s'; allowed: ddpm|ddim", val);
        } else if (strcmp(name, "--ddim-steps") == 0) {
            o.ddim_steps = (int)cli_int(name, val, 1, 100000);
            sampler_ddim = ddim_steps_given = 1;
        } else if (strcmp(name, "--eta") == 0) {
            o.eta = cli_double(name, val, 0.0, 1.0);
        } else if (strcmp(name, "--steps") == 0) {
            o.steps = (int)cli_int(name, val, 0, 100000000);
        } else if (strcmp(name, "--batch") == 0) {
            o.batch = (int)cli_int(name, val, 1, 1000000);
        } else if (strcmp(name, "--lr") == 0) {
            o.lr = cli_double(name, val, 0.0, 1.0);
        } else if (strcmp(name, "--ema") == 0) {
            o.ema = cli_double(name, val, 0.0, 1.0);
        } else if (strcmp(name, "--n-train") == 0) {
            o.n_train = (int)cli_int(name, val, 1, 10000000);
        } else if (strcmp(name, "--n-samples") == 0) {
            o.n_samples = (int)cli_int(name, val, 2, 1000000);
        } else if (strcmp(name, "--seed") == 0) {
            o.seed = (unsigned long)cli_int(name, val, 0, 2147483647L);
        } else if (strcmp(name, "--out") == 0) {
            o.out = val;
        } else {
            die("unknown option '%s' (see ./toy2d --help)", name);
        }
    }
    if (sampler_ddim && !ddim_steps_given) o.ddim_steps = o.T;
    if (o.ddim_steps > o.T) die("--ddim-steps %d is more than --T %d", o.ddim_steps, o.T);
    if (o.batch > o.n_train) die("--batch %d is larger than --n-train %d", o.batch, o.n_train);
    return o;
}

/* ========================================================================================
 * Small helpers: timing, folders, coordinates, density grids */

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

/* The exact optimal denoiser of a mixture, as a Denoiser: ε* = E[ε | x_t] (data.c), and
 * from it the target of any parametrization, so `--oracle` shows what a perfect network
 * would sample with the same schedule and sampler. Works in standardized coordinates. */
typedef struct { Mixture2D mix; const Schedule *s; Parametrization param; } Oracle;

static void oracle_forward(void *self, real *out, const real *x, const int *t, const int *y,
                           int N) {
    Oracle *o = self;
    (void)y;   /* the unconditional ε*: no labels */
    for (int n = 0; n < N; n++) {
        double xt[2] = { x[2 * n], x[2 * n + 1] }, e[2];
        mixture_eps_star(&o->mix, o->s->alpha_bar[t[n]], xt, e);
        real eps[2] = { (real)e[0], (real)e[1] }, x0[2];
        predict_x0_from_eps(x0, x + 2 * n, eps, o->s, t + n, 1, 2);
        prediction_target(out + 2 * n, o->param, x0, eps, x + 2 * n, o->s, t + n, 1, 2);
    }
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
    for (int r = 0; r < ED_REPEATS; r++) {
        toy_sample(a, NULL, N, kind, rng);
        *ed += energy_distance(samples + (size_t)r * N * 2, N, a, N, 2) / ED_REPEATS;
    }
    for (int r = 0; r < FLOOR_REPEATS; r++) {   /* true sets are cheap: average more of them */
        toy_sample(a, NULL, N, kind, rng);
        toy_sample(b, NULL, N, kind, rng);
        *floor += energy_distance(b, N, a, N, 2) / FLOOR_REPEATS;
    }
    free(a);
    free(b);
}

/* ========================================================================================
 * The sampling trace: frames for the GIF and a few particle paths */

#define N_PATHS 3
#define STRIP_FRAMES 6
typedef struct {
    const Options *o;
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
 * main: the story */

/* What one run measured, for the loss lab's table. */
typedef struct {
    double train_seconds, final_loss, ed, ed_floor, bound, bound_bpd, true_nll, eps_mse;
} Results;

static Results run_story(Options o) {
    Schedule s;
    if (schedule_build(&s, o.schedule, o.T)) exit(1);
    make_folder(o.out);
    Rng rng;
    rng_seed(&rng, o.seed);
    printf("toy2d: %s data, T = %d, %s schedule, predict %s, %s loss, sigma_t^2 = %s, %s sampler\n",
           toy_name(o.data), o.T, schedule_name(o.schedule), parametrization_name(o.ddpm.param),
           loss_weighting_name(o.ddpm.weighting), reverse_var_name(o.ddpm.var),
           o.ddim_steps ? "ddim" : "ddpm");

    /* ---- 2. data: note 001's dog (10, 20) and cat (5, 25), then standardized -------- */
    real *train = xmalloc((size_t)o.n_train * 2 * sizeof(real), "training set");
    toy_sample(train, NULL, o.n_train, o.data, &rng);
    double mean[2], std[2];
    data_mean_std(train, o.n_train, 2, mean, std);
    standardize(train, o.n_train, 2, mean, std);
    Mixture2D note_mix;
    int have_mix = toy_mixture(o.data, &note_mix) == 0;
    View view = make_view(o.data, mean, std);
    printf("data: %d points, mean (%.2f, %.2f), std (%.2f, %.2f); the network sees (x - mean) / std\n",
           o.n_train, mean[0], mean[1], std[0], std[1]);

    /* ---- 3. the schedule and the prior term L_T = KL(q(x_T|x_0) || N(0, I)) --------- */
    double prior = 0;
    for (int n = 0; n < o.n_train; n++) prior += prior_kl(train + 2 * n, &s, 2);
    prior /= o.n_train;
    printf("schedule: beta_1 = %.4g, beta_T = %.4g, alphabar_T = %.3g, prior term L_T = %.3g nats"
           " per point\n", s.beta[1], s.beta[o.T], s.alpha_bar[o.T], prior);
    if (prior > 0.01)
        printf("warning: L_T = %.3g nats is not small: x_T is not close to N(0, I); use more steps"
               " or a schedule with a smaller alphabar_T\n", prior);

    /* ---- 4. the forward process: q(x_t) at several t, closed form beside a histogram - */
    {
        int ts[6] = { 0, o.T / 10, o.T / 5, 2 * o.T / 5, 3 * o.T / 5, o.T };
        Image img;
        image_init(&img, 6 * (PANEL + 8) + 8, 2 * (PANEL + TITLE_H + 8) + 24);
        double *grid = xmalloc(GRID * GRID * sizeof(double), "grid");
        int N = o.n_train;
        real *xt = xmalloc((size_t)N * 2 * sizeof(real), "x_t");
        real *eps = xmalloc((size_t)N * 2 * sizeof(real), "eps");
        int *tt = xmalloc((size_t)N * sizeof(int), "t");
        for (int i = 0; i < 6; i++) {
            int t = ts[i], x = 8 + i * (PANEL + 8);
            char title[64];
            if (have_mix) {
                Mixture2D m = mixture_at(&note_mix, s.alpha_bar[t], mean, std);
                density_grid(grid, &m, &view);
                snprintf(title, sizeof title, "q(x_t) exact, t = %d", t);
            } else {
                memset(grid, 0, GRID * GRID * sizeof(double));
                snprintf(title, sizeof title, "t = %d: no closed form", t);
            }
            draw_panel(&img, x, 4, grid, title, &view);
            /* x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε (q_sample), then in the note's coordinates */
            for (int n = 0; n < N; n++) tt[n] = t;
            rng_fill_normal(&rng, eps, (size_t)N * 2);
            if (t == 0) memcpy(xt, train, (size_t)N * 2 * sizeof(real));
            else q_sample(xt, train, eps, &s, tt, N, 2);
            unstandardize(xt, N, 2, mean, std);
            histogram_grid(grid, xt, N, &view);
            snprintf(title, sizeof title, "histogram of x_t, t = %d", t);
            draw_panel(&img, x, PANEL + TITLE_H + 12, grid, title, &view);
        }
        draw_text(&img, 8, img.h - 14, "forward process: the dog/cat hills flatten into N(0, I) "
                  "(top: closed form, bottom: diffused points)", BLACK, 1);
        png_write(path_in(o.out, "forward.png"), &img);
        image_free(&img);
        free(grid); free(xt); free(eps); free(tt);
    }

    /* ---- 5. training: Ho et al.'s Algorithm 1 with the chosen parametrization -------- */
    MlpConfig mc = mlp_default_config(2, o.batch > o.n_samples ? o.batch : o.n_samples);
    Mlp mlp;
    ParamSet ps;
    params_init(&ps);
    mlp_init(&mlp, &mc, &ps, &rng);
    Denoiser net = mlp_denoiser(&mlp);
    TrainWork work;
    train_work_init(&work, o.batch, 2);
    AdamConfig adam = adam_default(o.lr);
    real *batch = xmalloc((size_t)o.batch * 2 * sizeof(real), "batch");
    int log_every = o.steps >= 200 ? o.steps / 200 : 1, n_log = 0;
    double *log_step = xmalloc((size_t)(o.steps / log_every + 2) * sizeof(double), "loss log");
    double *log_loss = xmalloc((size_t)(o.steps / log_every + 2) * sizeof(double), "loss log");
    double loss_avg = 0, loss_sum = 0;
    int loss_count = 0, show_progress = isatty(2);
    if (o.oracle) {
        if (!have_mix) die("--oracle needs a data set with a closed form (dogcat, ring, gaussian)");
        o.steps = 0;
    }
    double t_start = now_seconds();
    for (int step = 1; step <= o.steps; step++) {
        for (int b = 0; b < o.batch; b++) {        /* a random minibatch of the training set */
            int i = rng_int(&rng, o.n_train);
            batch[2 * b] = train[2 * i];
            batch[2 * b + 1] = train[2 * i + 1];
        }
        /* t ~ U{1..T}, ε ~ N(0, I), loss(f_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)), backward */
        double loss = ddpm_train_step(&net, batch, NULL, o.batch, &o.ddpm, &s, &rng, &work);
        /* the learning rate decays as ½(1 + cos(π step/steps)): large steps first, fine ones last */
        adam.lr = o.lr * 0.5 * (1.0 + cos(3.14159265358979323846 * (step - 1) / o.steps));
        adam_step(&ps, &adam);
        ema_update(&ps, o.ema);
        loss_avg = step == 1 ? loss : 0.99 * loss_avg + 0.01 * loss;
        loss_sum += loss;
        loss_count++;
        if (step % log_every == 0 || step == o.steps) {
            log_step[n_log] = step;
            log_loss[n_log++] = loss_sum / loss_count;
            loss_sum = 0;
            loss_count = 0;
        }
        if (show_progress && (step % 100 == 0 || step == o.steps)) {
            double el = now_seconds() - t_start;
            fprintf(stderr, "\rtraining: step %d/%d  loss %.4f  %.1f s left   ", step, o.steps,
                    loss_avg, el / step * (o.steps - step));
        }
    }
    double train_time = now_seconds() - t_start;
    if (show_progress) fprintf(stderr, "\n");
    if (o.oracle)
        printf("training: skipped (--oracle)\n");
    else
        printf("training: %d steps of batch %d in %.1f s (%.0f steps/s), final loss %.4f (running mean)\n",
               o.steps, o.batch, train_time, o.steps / fmax(train_time, 1e-9), loss_avg);

    /* ---- 6. sampling with the EMA weights: x_T ~ N(0, I), then t = T..1 --------------- */
    params_swap_ema(&ps);
    Oracle oracle = { note_mix, &s, o.ddpm.param };
    if (o.oracle) {
        mixture_affine(&note_mix, mean, std, &oracle.mix);
        net = (Denoiser){ .self = &oracle, .D = 2, .max_batch = 1 << 20, .forward = oracle_forward };
        printf("oracle: sampling with the exact optimal eps* instead of the network\n");
    }
    int N = o.n_samples, N_all = N * ED_REPEATS;   /* the first N are pictured */
    real *samples = xmalloc((size_t)N_all * 2 * sizeof(real), "samples");
    double *grid = xmalloc(GRID * GRID * sizeof(double), "grid");
    Trace tr = { &o, &s, &view, have_mix ? &note_mix : NULL, mean, std, NULL, NULL,
                 xcalloc((size_t)(o.T + 1) * N_PATHS * 2, sizeof(real), "paths"),
                 xcalloc((size_t)o.T + 1, 1, "visited"),
                 xmalloc((size_t)N * 2 * sizeof(real), "trace scratch"), grid };
    GifWriter gif;
    Image strip;
    image_init(&strip, STRIP_FRAMES * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
    tr.strip = &strip;
    if (gif_open(&gif, path_in(o.out, "reverse.gif"), PANEL, PANEL + TITLE_H, 12, 0) == 0) tr.gif = &gif;
    double t_sample = now_seconds();
    if (o.ddim_steps)
        ddim_sample_loop(&net, samples, NULL, &o.ddpm, &s, N, o.ddim_steps, o.eta, 0, &rng, trace_step, &tr);
    else
        p_sample_loop(&net, samples, NULL, &o.ddpm, &s, N, 0, &rng, trace_step, &tr);
    t_sample = now_seconds() - t_sample;
    if (tr.gif) gif_close(&gif);
    draw_text(&strip, 8, strip.h - 14, "reverse process: particles from N(0, I) climb onto the hills "
              "(background: the exact q(x_t); orange: a few paths)", BLACK, 1);
    png_write(path_in(o.out, "reverse.png"), &strip);
    image_free(&strip);
    /* more independent sets of N for steadier numbers (no pictures) */
    real *more = samples + (size_t)N * 2;
    if (o.ddim_steps)
        ddim_sample_loop(&net, more, NULL, &o.ddpm, &s, N_all - N, o.ddim_steps, o.eta, 0, &rng, NULL, NULL);
    else
        p_sample_loop(&net, more, NULL, &o.ddpm, &s, N_all - N, 0, &rng, NULL, NULL);
    unstandardize(samples, N_all, 2, mean, std);

    /* ---- 7. numbers ---------------------------------------------------------------- */
    /* energy distance to fresh true points, beside the same statistic between two true sets */
    double ed, ed_floor;
    energy_report(samples, N, o.data, &rng, &ed, &ed_floor);
    printf("sampling: %d points in %.2f s; energy distance to %d fresh true points %.4f, noise floor"
           " (two true sets) %.4f, ratio %.2f (means over %d and %d sets)\n", N, t_sample, N, ed,
           ed_floor, ed / ed_floor, ED_REPEATS, FLOOR_REPEATS);
    real *fresh_a = xmalloc((size_t)N * 2 * sizeof(real), "fresh");
    toy_sample(fresh_a, NULL, N, o.data, &rng);

    char share_text[256] = "n/a (no mixture)";
    double eps_mse = NAN;
    if (have_mix) {
        /* the share of samples on each hill, against the true weights */
        int count[MIX_MAX] = { 0 };
        for (int n = 0; n < N_all; n++) {
            double x[2] = { samples[2 * n], samples[2 * n + 1] };
            count[mixture_component_of(&note_mix, x)]++;
        }
        int len = 0;
        share_text[0] = 0;
        for (int k = 0; k < note_mix.K && len < 200; k++)
            len += snprintf(share_text + len, sizeof share_text - len, "%s%s %.1f%% (true %.1f%%)",
                            k ? ", " : "", note_mix.label[k], 100.0 * count[k] / N_all, 100.0 * note_mix.w[k]);
        /* the learned ε̂ against the exact optimal ε* = E[ε | x_t], t ~ U{1..T} */
        Mixture2D std_mix;
        mixture_affine(&note_mix, mean, std, &std_mix);
        int M = 4000 < mc.max_batch ? 4000 : mc.max_batch;
        real *x0 = xmalloc((size_t)M * 2 * sizeof(real), "x0");
        real *e = xmalloc((size_t)M * 2 * sizeof(real), "eps");
        real *xt = xmalloc((size_t)M * 2 * sizeof(real), "x_t");
        real *out = xmalloc((size_t)M * 2 * sizeof(real), "out");
        real *eh = xmalloc((size_t)M * 2 * sizeof(real), "eps_hat");
        real *x0h = xmalloc((size_t)M * 2 * sizeof(real), "x0_hat");
        int *tt = xmalloc((size_t)M * sizeof(int), "t");
        toy_sample(x0, NULL, M, o.data, &rng);
        standardize(x0, M, 2, mean, std);
        for (int n = 0; n < M; n++) tt[n] = 1 + rng_int(&rng, o.T);
        rng_fill_normal(&rng, e, (size_t)M * 2);
        q_sample(xt, x0, e, &s, tt, M, 2);
        net.forward(net.self, out, xt, tt, NULL, M);
        prediction_to_x0_eps(x0h, eh, out, o.ddpm.param, xt, &s, tt, M, 2);
        double se = 0;
        for (int n = 0; n < M; n++) {
            double xin[2] = { xt[2 * n], xt[2 * n + 1] }, star[2];
            mixture_eps_star(&std_mix, s.alpha_bar[tt[n]], xin, star);
            se += pow(eh[2 * n] - star[0], 2) + pow(eh[2 * n + 1] - star[1], 2);
        }
        eps_mse = se / (2.0 * M);
        free(x0); free(e); free(xt); free(out); free(eh); free(x0h); free(tt);
        printf("shares of %d samples: %s\n", N_all, share_text);
        printf("learned eps_hat vs exact eps*: mean squared error %.4f per coordinate (t ~ U{1..T})\n",
               eps_mse);
    }

    /* the variational bound on held-out points (note 004's KL terms summed, plus L_T and L_0),
     * beside the true negative log-likelihood the mixture gives them. Both in the network's
     * standardized coordinates, as densities (nats per point; bits per dimension = / (2 ln 2)).
     * The held-out points have their own generator, seeded by --seed alone, so that every run
     * with the same seed (trained or --oracle, every row of the lab) is measured on the same
     * points and the bounds can be compared. */
    int M = 2000 < mc.max_batch ? 2000 : mc.max_batch;
    real *held = xmalloc((size_t)M * 2 * sizeof(real), "held-out points");
    double *terms = xmalloc((size_t)(o.T + 1) * sizeof(double), "bound terms");
    Rng held_rng;
    rng_seed(&held_rng, o.seed ^ 0x48454c44u);
    toy_sample(held, NULL, M, o.data, &held_rng);
    standardize(held, M, 2, mean, std);
    double bound = vlb_all_terms(terms, NULL, &net, held, M, &o.ddpm, &s, DECODER_GAUSSIAN, &rng);
    double bound_se, bound_est = vlb_estimate(&bound_se, &net, held, M, &o.ddpm, &s, DECODER_GAUSSIAN, &rng);
    double true_nll = NAN;
    if (have_mix) {
        Mixture2D std_mix;
        mixture_affine(&note_mix, mean, std, &std_mix);
        true_nll = 0;
        for (int n = 0; n < M; n++) {
            double x[2] = { held[2 * n], held[2 * n + 1] };
            true_nll -= mixture_logpdf(&std_mix, x) / M;
        }
    }
    const double LN2x2 = 2.0 * log(2.0);
    printf("bound on %d held-out points (a density, standardized coordinates): all %d terms %.4f nats"
           " = %.4f bits/dim; one-t estimate %.4f +- %.4f nats\n", M, o.T, bound, bound / LN2x2,
           bound_est, bound_se);
    printf("  L_T %.2e, L_0 %.4f, sum of L_1..L_{T-1} %.4f nats", terms[0], terms[1], bound - terms[0] - terms[1]);
    if (have_mix) printf("; true NLL %.4f nats = %.4f bits/dim, gap %.4f nats", true_nll, true_nll / LN2x2, bound - true_nll);
    printf("\n");
    {
        double *ts = xmalloc((size_t)o.T * sizeof(double), "t");
        for (int t = 1; t <= o.T; t++) ts[t - 1] = t;
        SvgPlot p;
        memset(&p, 0, sizeof p);
        p.title = "terms of the bound on held-out points: L_0 at t = 1, L_{t-1} at t >= 2";
        p.xlabel = "t";
        p.ylabel = "nats per point";
        p.log_y = 1;
        p.nseries = 1;
        p.series[0] = (SvgSeries){ "term at t", o.T, ts, terms + 1 };
        svg_lineplot(path_in(o.out, "bound_terms.svg"), &p);
        free(ts);
    }
    free(held);
    free(terms);

    /* samples.csv and summary.txt */
    FILE *f = fopen(path_in(o.out, "samples.csv"), "w");
    if (!f) die("cannot write %s: %s", path_in(o.out, "samples.csv"), strerror(errno));
    fprintf(f, "x,y\n");
    for (int n = 0; n < N_all; n++) fprintf(f, "%.6g,%.6g\n", samples[2 * n], samples[2 * n + 1]);
    fclose(f);
    f = fopen(path_in(o.out, "summary.txt"), "w");
    if (!f) die("cannot write %s: %s", path_in(o.out, "summary.txt"), strerror(errno));
    fprintf(f, "data %s\nT %d\nschedule %s\nparam %s\nloss %s\nvar %s\nsampler %s\nsteps %d\nbatch %d\n"
            "lr %g\nseed %lu\ntrain_seconds %.2f\nfinal_loss %.6f\nalpha_bar_T %.6g\nprior_L_T_nats %.6g\n"
            "energy_distance %.6f\nenergy_noise_floor %.6f\nshares %s\neps_mse %.6f\n"
            "bound_nats %.6f\nbound_bits_per_dim %.6f\nbound_estimate_nats %.6f\nbound_estimate_se %.6f\n"
            "true_nll_nats %.6f\n",
            toy_name(o.data), o.T, schedule_name(o.schedule), parametrization_name(o.ddpm.param),
            loss_weighting_name(o.ddpm.weighting), reverse_var_name(o.ddpm.var),
            o.ddim_steps ? "ddim" : "ddpm", o.steps, o.batch, o.lr, o.seed, train_time, loss_avg,
            s.alpha_bar[o.T], prior, ed, ed_floor, share_text, eps_mse, bound, bound / LN2x2,
            bound_est, bound_se, true_nll);
    fclose(f);

    /* ---- the remaining pictures ------------------------------------------------------ */
    /* result: true density and points | generated density and points, in the data's box */
    {
        View box = { { 0, 0 }, { 0, 0 } };
        toy_view(o.data, box.lo, box.hi);
        Image img;
        image_init(&img, 2 * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
        if (have_mix) {
            density_grid(grid, &note_mix, &box);
            draw_panel(&img, 8, 4, grid, "true density and data", &box);
        } else {
            histogram_grid(grid, fresh_a, N, &box);
            draw_panel(&img, 8, 4, grid, "true data (histogram)", &box);
        }
        draw_scatter(&img, 8, 4 + TITLE_H, PANEL, PANEL, fresh_a, N > 500 ? 500 : N, box.lo[0],
                     box.hi[0], box.lo[1], box.hi[1], 1, WHITE);
        histogram_grid(grid, samples, N, &box);
        draw_panel(&img, PANEL + 16, 4, grid, "generated (histogram)", &box);
        draw_scatter(&img, PANEL + 16, 4 + TITLE_H, PANEL, PANEL, samples, N > 500 ? 500 : N,
                     box.lo[0], box.hi[0], box.lo[1], box.hi[1], 1, WHITE);
        const unsigned char dots[1][3] = { { 255, 255, 255 } };
        const char *true_pts[1] = { "500 true points" }, *gen_pts[1] = { "500 samples" };
        panel_legend(&img, 8, 4, true_pts, dots, 1);
        panel_legend(&img, PANEL + 16, 4, gen_pts, dots, 1);
        char line[128];
        snprintf(line, sizeof line, "energy distance %.4f (floor %.4f)", ed, ed_floor);
        draw_text(&img, 8, img.h - 14, line, BLACK, 1);
        png_write(path_in(o.out, "samples.png"), &img);
        image_free(&img);
    }
    /* training: the loss curve, and the loss per t of the trained model */
    {
        SvgPlot p;
        memset(&p, 0, sizeof p);
        p.title = "training loss (mean over each logging interval)";
        p.xlabel = "step";
        p.ylabel = "loss";
        p.log_y = 1;
        p.nseries = 1;
        p.series[0] = (SvgSeries){ loss_weighting_name(o.ddpm.weighting), n_log, log_step, log_loss };
        svg_lineplot(path_in(o.out, "loss.svg"), &p);

        int M_t = 512 < mc.max_batch ? 512 : mc.max_batch;
        double *ts = xmalloc((size_t)o.T * sizeof(double), "t"), *lt = xmalloc((size_t)o.T * sizeof(double), "loss t");
        real *x0 = xmalloc((size_t)M_t * 2 * sizeof(real), "x0"), *e = xmalloc((size_t)M_t * 2 * sizeof(real), "eps");
        real *xt = xmalloc((size_t)M_t * 2 * sizeof(real), "x_t"), *out = xmalloc((size_t)M_t * 2 * sizeof(real), "out");
        real *target = xmalloc((size_t)M_t * 2 * sizeof(real), "target");
        int *tt = xmalloc((size_t)M_t * sizeof(int), "t");
        for (int t = 1; t <= o.T; t++) {
            for (int n = 0; n < M_t; n++) {
                int i = rng_int(&rng, o.n_train);
                x0[2 * n] = train[2 * i];
                x0[2 * n + 1] = train[2 * i + 1];
                tt[n] = t;
            }
            rng_fill_normal(&rng, e, (size_t)M_t * 2);
            q_sample(xt, x0, e, &s, tt, M_t, 2);
            net.forward(net.self, out, xt, tt, NULL, M_t);
            prediction_target(target, o.ddpm.param, x0, e, xt, &s, tt, M_t, 2);
            ts[t - 1] = t;
            lt[t - 1] = ddpm_loss(NULL, NULL, out, target, &o.ddpm, &s, tt, M_t, 2);
        }
        p.title = "loss of the trained model at each t (EMA weights)";
        p.xlabel = "t";
        p.series[0] = (SvgSeries){ "loss at t", o.T, ts, lt };
        p.log_y = o.ddpm.weighting == LOSS_SIMPLE;
        svg_lineplot(path_in(o.out, "loss_per_t.svg"), &p);
        free(ts); free(lt); free(x0); free(e); free(xt); free(out); free(target); free(tt);
    }
    /* the slope the particles follow: −ε̂ (learned, orange) and −ε* (exact, black) */
    if (have_mix) {
        int tshow[4] = { o.T, (3 * o.T) / 5, o.T / 5, 1 };
        enum { ARROWS = 15 };
        Image img;
        image_init(&img, 4 * (PANEL + 8) + 8, PANEL + TITLE_H + 24);
        Mixture2D std_mix;
        mixture_affine(&note_mix, mean, std, &std_mix);
        real xin[ARROWS * ARROWS * 2], out[ARROWS * ARROWS * 2], eh[ARROWS * ARROWS * 2], x0h[ARROWS * ARROWS * 2];
        int tt[ARROWS * ARROWS];
        for (int i = 0; i < 4; i++) {
            int t = tshow[i], px = 8 + i * (PANEL + 8);
            Mixture2D m = mixture_at(&note_mix, s.alpha_bar[t], mean, std);
            density_grid(grid, &m, &view);
            char title[64];
            snprintf(title, sizeof title, "-eps field, t = %d", t);
            draw_panel(&img, px, 4, grid, title, &view);
            for (int a = 0; a < ARROWS * ARROWS; a++) {
                double x = view.lo[0] + ((a % ARROWS) + 0.5) * (view.hi[0] - view.lo[0]) / ARROWS;
                double y = view.lo[1] + ((a / ARROWS) + 0.5) * (view.hi[1] - view.lo[1]) / ARROWS;
                xin[2 * a] = (real)((x - mean[0]) / std[0]);
                xin[2 * a + 1] = (real)((y - mean[1]) / std[1]);
                tt[a] = t;
            }
            net.forward(net.self, out, xin, tt, NULL, ARROWS * ARROWS);
            prediction_to_x0_eps(x0h, eh, out, o.ddpm.param, xin, &s, tt, ARROWS * ARROWS, 2);
            double cell = (double)PANEL / ARROWS;   /* |ε| = 2 or more draws one cell */
            for (int a = 0; a < ARROWS * ARROWS; a++) {
                double xs[2] = { xin[2 * a], xin[2 * a + 1] }, star[2];
                mixture_eps_star(&std_mix, s.alpha_bar[t], xs, star);
                int x0p, y0p;
                to_pixel(&view, px, 4, xs[0] * std[0] + mean[0], xs[1] * std[1] + mean[1], &x0p, &y0p);
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
        png_write(path_in(o.out, "field.png"), &img);
        image_free(&img);
    }
    /* terminal preview of the generated density */
    {
        enum { TW = 64, TH = 32 };
        double small[TW * TH];
        histogram_grid(grid, samples, N, &view);
        for (int r = 0; r < TH; r++)
            for (int c = 0; c < TW; c++) {
                double sum = 0;   /* average GRID/T cells into each preview cell */
                int r0 = r * GRID / TH, r1 = (r + 1) * GRID / TH, c0 = c * GRID / TW, c1 = (c + 1) * GRID / TW;
                for (int rr = r0; rr < r1; rr++)
                    for (int cc = c0; cc < c1; cc++) sum += grid[rr * GRID + cc];
                small[r * TW + c] = sum;
            }
        printf("generated density (x from %.1f to %.1f, y from %.1f to %.1f):\n", view.lo[0],
               view.hi[0], view.lo[1], view.hi[1]);
        term_heatmap(stdout, small, TW, TH, term_wants_color(stdout));
    }
    printf("pictures: %s/forward.png reverse.gif reverse.png samples.png field.png loss.svg loss_per_t.svg bound_terms.svg\n"
           "numbers:  %s/summary.txt, samples in %s/samples.csv\n", o.out, o.out, o.out);

    free(fresh_a); free(samples); free(grid); free(tr.path); free(tr.visited); free(tr.scratch);
    free(batch); free(log_step); free(log_loss); free(train);
    train_work_free(&work);
    mlp_free(&mlp);
    params_free(&ps);
    schedule_free(&s);
    Results res = { train_time, loss_avg, ed, ed_floor, bound, bound / LN2x2, true_nll, eps_mse };
    return res;
}

/* ========================================================================================
 * Extras: the schedule table, the KL weights w_t, and the loss lab */

/* w_t of schedule.c for every parametrization and reverse variance, against t (SVG) */
static void plot_weights(const Options *o) {
    Schedule s;
    if (schedule_build(&s, o->schedule, o->T)) exit(1);
    double *ts = xmalloc((size_t)o->T * sizeof(double), "t");
    double *w = xmalloc((size_t)PRED_COUNT * VAR_COUNT * o->T * sizeof(double), "weights");
    static char names[PRED_COUNT * VAR_COUNT][48];
    SvgPlot p;
    memset(&p, 0, sizeof p);
    p.title = "KL-derived loss weight w_t: L_{t-1} = w_t ||target - prediction||^2 + const";
    p.xlabel = "t";
    p.ylabel = "w_t";
    p.log_y = 1;
    for (int t = 1; t <= o->T; t++) ts[t - 1] = t;
    for (int k = 0; k < PRED_COUNT; k++)
        for (int v = 0; v < VAR_COUNT; v++) {
            int i = k * VAR_COUNT + v;
            double *wi = w + (size_t)i * o->T;
            for (int t = 1; t <= o->T; t++) wi[t - 1] = loss_weight_kl(&s, (Parametrization)k, (ReverseVar)v, t);
            snprintf(names[i], sizeof names[i], "%s, sigma^2 = %s", parametrization_name((Parametrization)k),
                     reverse_var_name((ReverseVar)v));
            p.series[p.nseries++] = (SvgSeries){ names[i], o->T, ts, wi };
        }
    make_folder(o->out);
    if (svg_lineplot(path_in(o->out, "weights.svg"), &p) == 0)
        printf("wrote %s (%s schedule, T = %d)\n", path_in(o->out, "weights.svg"), schedule_name(s.kind), o->T);
    free(ts);
    free(w);
    schedule_free(&s);
}

/* The loss lab: every parametrization × weighting with the same budget and seed, one
 * sub-folder each, and a markdown table of what they measured. */
static void run_lab(const Options *base) {
    char folder[PRED_COUNT][LOSS_COUNT][512];
    Results res[PRED_COUNT][LOSS_COUNT];
    make_folder(base->out);
    plot_weights(base);
    for (int k = 0; k < PRED_COUNT; k++)
        for (int w = 0; w < LOSS_COUNT; w++) {
            Options o = *base;
            o.ddpm.param = (Parametrization)k;
            o.ddpm.weighting = (LossWeighting)w;
            snprintf(folder[k][w], sizeof folder[k][w], "%s/%s-%s", base->out,
                     parametrization_name(o.ddpm.param), loss_weighting_name(o.ddpm.weighting));
            o.out = folder[k][w];
            printf("\n==== lab: predict %s, %s loss ====\n", parametrization_name(o.ddpm.param),
                   loss_weighting_name(o.ddpm.weighting));
            res[k][w] = run_story(o);
        }
    FILE *f = fopen(path_in(base->out, "lab.md"), "w");
    if (!f) die("cannot write %s: %s", path_in(base->out, "lab.md"), strerror(errno));
    fprintf(f, "| predict | loss | energy distance | noise floor | ratio | bound (bits/dim) | true NLL (bits/dim) "
               "| eps MSE | train time (s) |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < PRED_COUNT; k++)
        for (int w = 0; w < LOSS_COUNT; w++) {
            Results *r = &res[k][w];
            fprintf(f, "| %s | %s | %.4f | %.4f | %.2f | %.3f | %.3f | %.4f | %.1f |\n",
                    parametrization_name((Parametrization)k), loss_weighting_name((LossWeighting)w),
                    r->ed, r->ed_floor, r->ed / r->ed_floor, r->bound_bpd, r->true_nll / (2.0 * log(2.0)),
                    r->eps_mse, r->train_seconds);
        }
    fprintf(f, "\n%s data, T = %d, %s schedule, sigma_t^2 = %s, %d steps of batch %d, lr %g, seed %lu.\n",
            toy_name(base->data), base->T, schedule_name(base->schedule), reverse_var_name(base->ddpm.var),
            base->steps, base->batch, base->lr, base->seed);
    fclose(f);
    printf("\nlab table: %s\n", path_in(base->out, "lab.md"));
}

int main(int argc, char **argv) {
    Options o = parse_options(argc, argv);
    if (o.table) {                       /* the schedule's numbers, to read beside the notes */
        Schedule s;
        if (schedule_build(&s, o.schedule, o.T)) return 1;
        schedule_print(stdout, &s, o.T > 20 ? o.T / 10 : 1);
        schedule_free(&s);
        return 0;
    }
    if (o.weights) { plot_weights(&o); return 0; }
    if (o.lab) { run_lab(&o); return 0; }
    run_story(o);
    return 0;
}
