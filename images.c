/* images.c: the small-image story. A U-Net learns to undo the forward process on images,
 * then the note's algorithm (note 004, 알고리즘) turns pure noise into new images. The
 * story is `main`, one page at the end; read it first, then each step it calls, in the
 * order it calls them:
 *
 *   read_settings        a checkpoint's settings decide     checkpoint.c checkpoint_read_header
 *                        the data shape and the model
 *   load_data            built-in digits, IDX, CIFAR        data.c   digits_sample, image_set_load
 *                                                                    (plain or .gz)
 *   report_schedule      the schedule and the prior term    schedule.c schedule_build; ddpm.c prior_kl
 *   build_model          the U-Net, new or from a checkpoint unet.c unet_init, unet_print_summary;
 *                                                                    checkpoint.c checkpoint_load
 *   train                Ho et al.'s Algorithm 1            ddpm.c   ddpm_train_step; tensor.c
 *                                                                    adam_step, ema_update;
 *                                                                    checkpoint.c checkpoint_save
 *   sample               the note's algorithm (or DDIM)     ddpm.c   p_sample_loop / ddim_sample_loop
 *   write_pictures       samples.png, denoise.png, denoise.gif, loss.svg        plot.c
 *   report_bound         the bound in bits/dim (--bound N)  ddpm.c   vlb_all_terms, vlb_estimate,
 *                                                                    the discretized decoder
 *   report_eval          evaluation (--eval N)              classifier.c classifier_train /
 *                                                                    classifier_load; eval.c
 *                                                                    eval_samples (FD beside its
 *                                                                    floor, classes, nearest
 *                                                                    training images), forward_strip
 * With --cond (or --class C): set_classes after load_data, labels and label dropout in
 * train, a class grid (or class C) guided with --guidance w in sample, and the class
 * accuracy of the conditional samples in report_eval (class_accuracy; guidance.h).
 *
 * The default run (`make images`) fits one core and a few minutes: built-in 16×16 digits
 * and a small U-Net (the "small" preset below). `--model full` is unet_default_config,
 * e.g. `--size 28 --model full` is the default 28×28 U-Net of unet.h; `--bench N` times
 * N training steps of any configuration and prints images per second. The options of the
 * diffusion itself (T, schedule, parametrization, loss, variance, sampler, seed, output
 * folder) are read, listed and recorded in checkpoints by cli.c, the same as ./toy2d.
 *
 * Randomness: one generator drives training (batches, t, ε) and is stored in checkpoints,
 * so `--resume` continues bit for bit; a second one, seeded from --seed alone, draws the
 * samples, so `--sample-only` with the same --seed redraws the same pictures.
 *
 * Sizes: N = images, C, H, W = channels, height, width, D = C·H·W, T = diffusion steps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "classifier.h"
#include "crc32.h"
#include "cli.h"
#include "data.h"
#include "ddpm.h"
#include "guidance.h"
#include "eval.h"
#include "plot.h"
#include "schedule.h"
#include "tensor.h"
#include "unet.h"

/* ========================================================================================
 * Options */

typedef enum { DATA_DIGITS, DATA_IDX, DATA_CIFAR, DATA_COUNT } DataKind;
static const char *const data_names[DATA_COUNT] = { "digits", "idx", "cifar" };
typedef enum { MODEL_SMALL, MODEL_FULL, MODEL_COUNT } ModelPreset;
static const char *const model_names[MODEL_COUNT] = { "small", "full" };

typedef struct {
    DataKind data;          /* digits */
    const char *file;       /* the IDX or CIFAR file, e.g. train-images-idx3-ubyte */
    int size;               /* side of the built-in digits, e.g. 16 */
    ModelPreset model;      /* small */
    int base;               /* U-Net channels at level 0, e.g. 32 (0: the preset's) */
    char mult[32];          /* channel multipliers, e.g. "1,2" ("": the preset's) */
    int res_blocks;         /* residual blocks per level (0: the preset's) */
    char attn[32];          /* attention sizes and "mid", e.g. "8,mid", "none" ("": preset) */
    DiffusionOptions d;     /* T = 200, linear (Ho et al.'s, scaled by 1000/T), eps, simple,
                               beta_tilde, the note's sampler, seed 1, out/images (cli.h) */
    int steps, batch;       /* training steps (the total, counted across resumes), batch */
    double lr;              /* Adam learning rate after the warm-up */
    int warmup;             /* steps of linear learning-rate warm-up */
    double ema;             /* EMA decay of the weights used for sampling */
    const char *save;       /* checkpoint to write at the end (and every save_every steps) */
    int save_every;         /* 0: only at the end */
    const char *resume;     /* checkpoint to continue training from */
    const char *sample_only;/* checkpoint to sample from, no training */
    int n_samples;          /* images to generate, e.g. 64 (an 8×8 grid) */
    int clip_x0;            /* clip x̂₀ to [−1, 1] while sampling (Ho et al.'s code) */
    int no_ema;             /* sample with the raw weights instead of the EMA */
    int bench;              /* > 0: time this many training steps and exit */
    int bound;              /* > 0: the variational bound on this many held-out images */
    int ode_nll;            /* > 0: the probability-flow ODE's likelihood of this many */
    int eval;               /* > 0: FD, classes and memorization on this many samples */
    const char *eval_file;  /* held-out images (default: the t10k-/test_batch file beside) */
    const char *classifier; /* the classifier checkpoint (default <out>/classifier.ckpt) */
    int cond;               /* --cond (or --class): a class-conditional U-Net (guidance.h) */
    const char *cls_name;   /* --class: the one class to sample, e.g. "3" (or "Trouser") */
    int cls;                /* its index once the data's classes are known; −1: all */
    double guidance;        /* classifier-free guidance strength w, e.g. 1 (γ = 1 + w) */
    double p_uncond;        /* label dropout while training, e.g. 0.1 */
    int classes;            /* K of a conditional model (10 for digits), 0: unconditional */
    /* options that a checkpoint also records, typed by the user: a --resume refuses a
     * conflicting one instead of silently using either (the diffusion's are in d.given) */
    struct {
        int data, size, model, base, mult, res, attn, steps, batch, lr, warmup, ema, p_uncond;
    } given;
} Options;

static Options default_options(void) {
    Options o;
    memset(&o, 0, sizeof o);
    o.data = DATA_DIGITS;
    o.size = 16;
    o.model = MODEL_SMALL;
    o.d.T = 200;            /* 1000 in Ho et al.; 200 keeps sampling under a minute here */
    o.d.schedule = SCHED_LINEAR;
    o.d.ddpm = (DdpmConfig){ .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE,
                             .hybrid_lambda = 0.001, .decoder = DECODER_DISCRETE };
    o.d.eta = 0.0;
    o.d.seed = 1;
    o.d.out = "out/images";
    o.steps = 3000;
    o.batch = 16;
    o.lr = 2e-3;
    o.warmup = 100;
    o.ema = 0.995;
    o.n_samples = 64;
    o.cls = -1;
    o.p_uncond = 0.1;
    return o;
}

static void usage(FILE *f) {
    Options d = default_options();
    char data_list[64], model_list[64];
    fprintf(f,
        "usage: ./images [options]\n"
        "Trains a U-Net denoiser on small images, samples new ones with the note's algorithm,\n"
        "and writes samples.png, denoise.png, denoise.gif and loss.svg to the output folder.\n\n"
        "data\n"
        "  --data NAME        %s, or the file itself (e.g. train-images-\n"
        "                     idx3-ubyte.gz) (default %s: built-in digits, no download)\n"
        "  --file PATH        the IDX images file (MNIST, Fashion-MNIST; plain or .gz) or a\n"
        "                     CIFAR-10 binary batch (data_batch_1.bin); needed by idx and cifar\n"
        "  --size N           side of the built-in digits, 8..64 (default %d)\n"
        "model\n"
        "  --model NAME       %s: small is the fast preset below; full is\n"
        "                     unet_default_config (for 28x28: base 32, mult 1,2,2, 2 res\n"
        "                     blocks, attention at 7 and mid) (default %s)\n"
        "  --base N           channels at full resolution, even (default: the preset's)\n"
        "  --mult LIST        channel multipliers per resolution, e.g. 1,2 (default: preset)\n"
        "  --res-blocks N     residual blocks per resolution, 1..%d (default: preset)\n"
        "  --attn LIST        feature-map sizes with attention and/or 'mid', e.g. 8,mid, or\n"
        "                     none (default: preset)\n"
        "diffusion\n",
        names_join(data_list, sizeof data_list, data_names, DATA_COUNT), data_names[d.data], d.size,
        names_join(model_list, sizeof model_list, model_names, MODEL_COUNT), model_names[d.model],
        UNET_MAX_RES);
    usage_diffusion(f, &d.d);
    fprintf(f,
        "training\n"
        "  --steps N          total training steps, counted across --resume (default %d)\n"
        "  --batch N          batch size (default %d)\n"
        "  --lr X             Adam learning rate after the warm-up, then constant (default %g)\n"
        "  --warmup N         steps of linear learning-rate warm-up (default %d)\n"
        "  --ema X            EMA decay of the weights used for sampling (default %g)\n"
        "  --save PATH        write a checkpoint at the end (atomically)\n"
        "  --save-every N     ... and every N steps (default: only at the end)\n"
        "  --resume PATH      continue training from a checkpoint, bit for bit\n"
        "  --bench N          time N training steps of this configuration, print images/s, exit\n"
        "sampling\n"
        "  --sample-only PATH load a checkpoint and sample, no training (into out/images/sampled\n"
        "                     unless --out is given)\n"
        "  --n-samples N      images to generate (default %d, an 8x8 grid)\n",
        d.steps, d.batch, d.lr, d.warmup, d.ema, d.n_samples);
    usage_sampler(f, &d.d);
    fprintf(f,
        "  --clip-x0          clip the predicted x0 to [-1, 1] at every step. The note's\n"
        "                     algorithm does not clip; Ho et al.'s code does (default off)\n"
        "  --no-ema           sample with the raw weights instead of their EMA\n"
        "likelihood\n"
        "  --bound N          the variational bound in bits/dim on N held-out images (fresh\n"
        "                     digits; the first N images of --file), all T terms and the\n"
        "                     one-t estimate, terms plotted to bound_terms.svg (default 0: off)\n"
        "  --ode-nll N        the probability-flow ODE's likelihood of N held-out images (as --bound\n"
        "                     picks them, uniformly dequantized within their 8-bit bins; Heun on\n"
        "                     --ode-steps, default T; Hutchinson's trace with 2 probes per step),\n"
        "                     in bits/dim with its standard error (default 0: off)\n"
        "evaluation\n"
        "  --eval N           draw N more samples (same sampler) and measure them: the\n"
        "                     Frechet distance of a small classifier's features (FID in\n"
        "                     miniature, not Inception) to N held-out real images beside its\n"
        "                     floor (two real sets of N), the samples' classes, the distance\n"
        "                     to the nearest training image; closest_pairs.png, forward.png\n"
        "                     (default 0: off)\n"
        "  --eval-file PATH   held-out images (default: t10k-... or test_batch.bin beside\n"
        "                     --file; fresh digits for the built-in digits)\n"
        "  --classifier PATH  the classifier's checkpoint: loaded if it exists, else trained\n"
        "                     on the labelled training images and saved (default\n"
        "                     OUT/classifier.ckpt)\n"
        "class-conditional (classifier-free guidance)\n"
        "  --cond             train a class-conditional U-Net on the labels (the digits', or\n"
        "                     the labels file beside --file) with label dropout; sample a\n"
        "                     class grid, one row per class (samples.png)\n"
        "  --class C          sample class C only (implies --cond), e.g. 3\n"
        "  --guidance W       eps~ = (1 + w) eps(x, t, c) - w eps(x, t, null) with w = W\n"
        "                     (gamma = 1 + w; default 0: plain conditional)\n"
        "  --p-uncond P       share of training labels replaced by the null label (default %g)\n"
        "run\n", d.p_uncond);
    usage_seed_out(f, &d.d);
    fprintf(f, "  --help             this text\n");
}

/* "1,2,2" → mult[] and the number of levels; 0 or −1 with a reason in msg */
static int parse_mult(const char *s, int *mult, int *levels, char *msg, size_t len) {
    *levels = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long m = strtol(p, &end, 10);
        if (end == p || m < 1 || m > 16 || (*end && *end != ','))
            return snprintf(msg, len, "'%s' is not a list of integers 1..16 like 1,2", s), -1;
        if (*levels == UNET_MAX_LEVELS)
            return snprintf(msg, len, "'%s' has more than %d entries", s, UNET_MAX_LEVELS), -1;
        mult[(*levels)++] = (int)m;
        p = *end ? end + 1 : end;
    }
    if (*levels == 0) return snprintf(msg, len, "'%s' is empty; give e.g. 1,2", s), -1;
    return 0;
}

/* "8,mid" | "mid" | "8" | "none" → attention sizes and the middle flag */
static int parse_attn(const char *s, int *res, int *n, int *mid, char *msg, size_t len) {
    *n = 0;
    *mid = 0;
    if (strcmp(s, "none") == 0) return 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t k = comma ? (size_t)(comma - p) : strlen(p);
        char *end;
        long r = strtol(p, &end, 10);
        if (k == 3 && strncmp(p, "mid", 3) == 0) {
            *mid = 1;
        } else if (end == p + k && r >= 1 && r <= 256 && *n < UNET_MAX_ATTN) {
            res[(*n)++] = (int)r;
        } else {
            return snprintf(msg, len, "'%s' is not a list of sizes and 'mid' like 8,mid (or "
                            "none), at most %d sizes", s, UNET_MAX_ATTN), -1;
        }
        p = comma ? comma + 1 : p + k;
    }
    if (*n == 0 && !*mid) return snprintf(msg, len, "'%s' is empty; give e.g. 8,mid or none", s), -1;
    return 0;
}

static Options parse_options(int argc, char **argv) {
    Options o = default_options();
    CliArgs a = cli_args("./images", argc, argv);
    char msg[256];
    while (cli_next(&a)) {
        if (diffusion_option(&a, &o.d)) continue;   /* --T --schedule ... --seed --out */
        if (cli_is(&a, "--help")) { usage(stdout); exit(0); }
        else if (cli_is(&a, "--clip-x0")) o.clip_x0 = cli_flag(&a);
        else if (cli_is(&a, "--no-ema")) o.no_ema = cli_flag(&a);
        else if (cli_is(&a, "--data")) {
            const char *v = cli_value(&a);
            int k = name_index(v, data_names, DATA_COUNT);
            if (k < 0 && (strchr(v, '/') || strchr(v, '.'))) {   /* --data PATH */
                o.file = v;
                k = strstr(v, "idx") ? DATA_IDX : DATA_CIFAR;   /* checked on loading */
            }
            char list[64];
            if (k < 0) die("--data: unknown '%s'; allowed: %s or a file", v,
                           names_join(list, sizeof list, data_names, DATA_COUNT));
            o.data = (DataKind)k;
            o.given.data = 1;
        } else if (cli_is(&a, "--file")) {
            o.file = cli_value(&a);
        } else if (cli_is(&a, "--size")) {
            o.size = (int)cli_int(&a, 8, 64);
            o.given.size = 1;
        } else if (cli_is(&a, "--model")) {
            o.model = (ModelPreset)cli_choice(&a, model_names, MODEL_COUNT);
            o.given.model = 1;
        } else if (cli_is(&a, "--base")) {
            o.base = (int)cli_int(&a, 2, 512);
            if (o.base % 2) die("--base: '%s' is odd; the base width must be even", a.value);
            o.given.base = 1;
        } else if (cli_is(&a, "--mult")) {
            int m[UNET_MAX_LEVELS], L;
            if (parse_mult(cli_value(&a), m, &L, msg, sizeof msg)) die("--mult: %s", msg);
            int len = 0;   /* canonical text: "01, 2" and "1,2" are the same setting */
            for (int l = 0; l < L; l++)
                len += snprintf(o.mult + len, sizeof o.mult - len, "%s%d", l ? "," : "", m[l]);
            o.given.mult = 1;
        } else if (cli_is(&a, "--res-blocks")) {
            o.res_blocks = (int)cli_int(&a, 1, UNET_MAX_RES);
            o.given.res = 1;
        } else if (cli_is(&a, "--attn")) {
            int r[UNET_MAX_ATTN], n, mid;
            if (parse_attn(cli_value(&a), r, &n, &mid, msg, sizeof msg)) die("--attn: %s", msg);
            int len = 0;   /* canonical text, as the checkpoint stores it */
            for (int k = 0; k < n; k++)
                len += snprintf(o.attn + len, sizeof o.attn - len, "%s%d", k ? "," : "", r[k]);
            if (mid) len += snprintf(o.attn + len, sizeof o.attn - len, "%smid", len ? "," : "");
            if (!len) snprintf(o.attn, sizeof o.attn, "none");
            o.given.attn = 1;
        } else if (cli_is(&a, "--steps")) {
            o.steps = (int)cli_int(&a, 0, 100000000);
            o.given.steps = 1;
        } else if (cli_is(&a, "--batch")) {
            o.batch = (int)cli_int(&a, 1, 4096);
            o.given.batch = 1;
        } else if (cli_is(&a, "--lr")) {
            o.lr = cli_double(&a, 0.0, 1.0);
            o.given.lr = 1;
        } else if (cli_is(&a, "--warmup")) {
            o.warmup = (int)cli_int(&a, 0, 100000000);
            o.given.warmup = 1;
        } else if (cli_is(&a, "--ema")) {
            o.ema = cli_double(&a, 0.0, 1.0);
            o.given.ema = 1;
        }
        else if (cli_is(&a, "--save")) o.save = cli_value(&a);
        else if (cli_is(&a, "--save-every")) o.save_every = (int)cli_int(&a, 1, 100000000);
        else if (cli_is(&a, "--resume")) o.resume = cli_value(&a);
        else if (cli_is(&a, "--sample-only")) o.sample_only = cli_value(&a);
        else if (cli_is(&a, "--n-samples")) o.n_samples = (int)cli_int(&a, 1, 4096);
        else if (cli_is(&a, "--bench")) o.bench = (int)cli_int(&a, 1, 1000000);
        else if (cli_is(&a, "--bound")) o.bound = (int)cli_int(&a, 0, 100000);
        else if (cli_is(&a, "--ode-nll")) o.ode_nll = (int)cli_int(&a, 0, 100000);
        else if (cli_is(&a, "--eval")) {
            o.eval = (int)cli_int(&a, 0, 5000);
            if (o.eval == 1) die("--eval: 1 sample has no covariance; use 0 (off) or 2..5000");
        }
        else if (cli_is(&a, "--eval-file")) o.eval_file = cli_path(&a);
        else if (cli_is(&a, "--classifier")) o.classifier = cli_path(&a);
        else if (cli_is(&a, "--cond")) o.cond = cli_flag(&a);
        else if (cli_is(&a, "--class")) { o.cls_name = cli_value(&a); o.cond = 1; }
        else if (cli_is(&a, "--guidance")) o.guidance = cli_double(&a, -1.0, 100.0);
        else if (cli_is(&a, "--p-uncond")) {
            o.p_uncond = cli_double(&a, 0.0, 1.0);
            o.given.p_uncond = 1;
        }
        else cli_unknown(&a);
    }
    if (o.guidance != 0 && !o.cond && !o.sample_only)
        die("--guidance needs a class-conditional model: add --cond or --class");
    if (o.given.p_uncond && !o.cond && !o.resume)   /* a --resume: its checkpoint says (below) */
        die("--p-uncond is the label dropout of --cond training: add --cond");
    if (o.resume && o.sample_only) die("--resume and --sample-only exclude each other: pick one");
    if (o.sample_only && o.save) die("--save has no effect with --sample-only (nothing is trained)");
    if (o.save_every && !o.save) die("--save-every needs --save PATH (where to write)");
    if (o.bench && o.sample_only) die("--bench times training; it cannot be used with --sample-only");
    if (o.ema == 1.0)
        die("--ema 1 keeps the initial weights forever (the samples would come from an untrained "
            "network): give a decay below 1, e.g. 0.995, or --no-ema for the raw weights");
    if (o.steps == 0 && !o.resume && !o.sample_only && !o.bench)
        die("--steps 0 trains nothing, so the samples would come from an untrained network: give "
            "N >= 1, or --sample-only CKPT to sample from a trained model");
    /* --sample-only keeps the training run's pictures: its own folder unless --out is given */
    if (o.sample_only && !o.d.given.out) o.d.out = "out/images/sampled";
    return o;
}

/* ========================================================================================
 * Checkpoint settings: everything needed to rebuild the model and the diffusion, by name. */

static void header_from_options(CkptHeader *h, const Options *o, int C, int H, int W,
                                double prior, long total_steps, int n_train, uint32_t data_crc) {
    ckpt_header_init(h);
    ckpt_set_string(h, "program", "images");
    ckpt_set_string(h, "data", data_names[o->data]);
    ckpt_set_string(h, "data.file", o->file ? o->file : "");
    if (o->file) {   /* which images, whatever the file's name: see data_fingerprint */
        ckpt_set_int(h, "data.n", n_train);
        ckpt_set_int(h, "data.crc32", data_crc);
    }
    ckpt_set_int(h, "C", C);
    ckpt_set_int(h, "H", H);
    ckpt_set_int(h, "W", W);
    ckpt_set_string(h, "model", model_names[o->model]);
    ckpt_set_int(h, "base", o->base);
    ckpt_set_string(h, "mult", o->mult);
    ckpt_set_int(h, "res_blocks", o->res_blocks);
    ckpt_set_string(h, "attn", o->attn);
    diffusion_record(h, &o->d);   /* T, schedule, param, loss, var */
    ckpt_set_int(h, "steps", total_steps);
    ckpt_set_int(h, "batch", o->batch);
    ckpt_set_double(h, "lr", o->lr);
    ckpt_set_int(h, "warmup", o->warmup);
    ckpt_set_double(h, "ema", o->ema);
    ckpt_set_int(h, "seed", (int64_t)o->d.seed);
    ckpt_set_double(h, "prior_L_T", prior);
    if (o->classes) {   /* a class-conditional model (an unconditional one writes neither) */
        ckpt_set_int(h, "classes", o->classes);
        ckpt_set_double(h, "p_uncond", o->p_uncond);
    }
}

/* Fills o from the checkpoint's header (cli.h's SettingsReader). strict (--resume): every
 * explicit option must agree; --sample-only: the model and the diffusion must agree, the
 * training settings are ignored and --var may differ (it is a sampling choice). */
static void options_from_header(Options *o, const char *path, const CkptHeader *h, int *C,
                                int *H, int *W, double *prior) {
    SettingsReader r = { "./images", path, h, 1, o->resume ? "--resume" : "--sample-only" };
    const char *prog = read_name_setting(&r, "program", "", 0, "");
    if (strcmp(prog, "images") != 0) die("%s was written by %s, not ./images", path, prog);
    int k = name_index(read_name_setting(&r, "data", "--data", o->given.data, data_names[o->data]),
                       data_names, DATA_COUNT);
    if (k < 0) die("%s: malformed: unknown data kind", path);
    o->data = (DataKind)k;
    /* every number that sizes an allocation, within what the options and loaders accept,
     * before anything is built from it (a hand-made header with a valid CRC-32 must not
     * reach malloc with H = 10^8, nor overflow C·H·W) */
    if (o->data == DATA_DIGITS) {
        read_int_setting_in(&r, "C", "", 0, C, 1, 1);
        read_int_setting_in(&r, "H", "--size", o->given.size, H, 8, 64);
        read_int_setting_in(&r, "W", "--size", o->given.size, W, *H, *H);
    } else if (o->data == DATA_IDX) {
        read_int_setting_in(&r, "C", "", 0, C, 1, 1);
        read_int_setting_in(&r, "H", "", 0, H, 1, IDX_MAX_SIDE);
        read_int_setting_in(&r, "W", "", 0, W, 1, IDX_MAX_SIDE);
    } else {
        read_int_setting_in(&r, "C", "", 0, C, 3, 3);
        read_int_setting_in(&r, "H", "", 0, H, 32, 32);
        read_int_setting_in(&r, "W", "", 0, W, 32, 32);
    }
    o->size = *H;
    k = name_index(read_name_setting(&r, "model", "--model", o->given.model, model_names[o->model]),
                   model_names, MODEL_COUNT);
    if (k < 0) die("%s: malformed: unknown model preset", path);
    o->model = (ModelPreset)k;
    read_int_setting_in(&r, "base", "--base", o->given.base, &o->base, 2, 512);
    snprintf(o->mult, sizeof o->mult, "%s", read_name_setting(&r, "mult", "--mult", o->given.mult, o->mult));
    read_int_setting_in(&r, "res_blocks", "--res-blocks", o->given.res, &o->res_blocks, 1, UNET_MAX_RES);
    snprintf(o->attn, sizeof o->attn, "%s", read_name_setting(&r, "attn", "--attn", o->given.attn, o->attn));
    read_double_setting(&r, "prior_L_T", "", 0, prior);
    int64_t classes = 0;   /* absent: an unconditional model */
    if (ckpt_get_int(h, "classes", &classes) == 0) {
        if (classes < 1 || classes > 1000) die("%s: malformed: classes = %lld", path, (long long)classes);
        o->cond = 1;
        o->classes = (int)classes;
    } else if (o->cond) {
        die("%s was trained without labels: --cond, --class need a model trained with --cond", path);
    } else if (o->given.p_uncond && o->resume) {
        die("%s was trained without labels: --p-uncond is the label dropout of --cond training",
            path);
    }
    r.strict = o->resume != NULL;   /* from here on: training settings */
    diffusion_read(&r, &o->d);      /* T, schedule, param always strictly; loss, var */
    int steps = o->steps;
    read_int_setting(&r, "steps", "--steps", 0, &o->steps);   /* the plan: may grow */
    if (o->given.steps) o->steps = steps;
    read_int_setting_in(&r, "batch", "--batch", o->given.batch, &o->batch, 1, 4096);
    read_double_setting_in(&r, "lr", "--lr", o->given.lr, &o->lr, 0.0, 1.0);
    read_int_setting(&r, "warmup", "--warmup", o->given.warmup, &o->warmup);
    read_double_setting_in(&r, "ema", "--ema", o->given.ema, &o->ema, 0.0, 1.0);
    if (o->cond && ckpt_find(h, "p_uncond"))   /* the label dropout: a training setting too */
        read_double_setting_in(&r, "p_uncond", "--p-uncond", o->given.p_uncond, &o->p_uncond,
                               0.0, 1.0);
    if (!o->d.given.seed) {   /* the seed only draws the samples now: it may change */
        int seed = 0;
        read_int_setting_in(&r, "seed", "--seed", 0, &seed, 0, 2147483647L);
        o->d.seed = (unsigned long)seed;
    }
}

/* ========================================================================================
 * The model configuration: a preset, then the options that override it. */

static UnetConfig model_config(Options *o, int C, int H, int W) {
    UnetConfig cfg = unet_default_config(C, H, W);
    cfg.learned_var = (int)o->d.ddpm.var == VAR_LEARNED;   /* 2 C output channels: v too */
    if (o->model == MODEL_SMALL) {
        /* The small preset, measured on one core (README): base 16, two resolutions
         * (16, 8 for the digits), one residual block per level, no attention (attention
         * at 8x8 made a training step 1.6 times slower and is not needed for digits). */
        cfg.base = 16;
        cfg.levels = (H % 2 == 0 && W % 2 == 0) ? 2 : 1;
        cfg.mult[0] = 1;
        cfg.mult[1] = 2;
        cfg.num_res_blocks = 1;
        cfg.n_attn = 0;
        cfg.mid_attn = 0;
    }
    char msg[256];
    if (o->base) cfg.base = o->base;
    if (o->mult[0] && parse_mult(o->mult, cfg.mult, &cfg.levels, msg, sizeof msg))
        die("mult: %s", msg);
    if (o->res_blocks) cfg.num_res_blocks = o->res_blocks;
    if (o->attn[0] && parse_attn(o->attn, cfg.attn_res, &cfg.n_attn, &cfg.mid_attn, msg, sizeof msg))
        die("attn: %s", msg);
    if (cfg.base % cfg.groups) cfg.groups = cfg.base % 4 == 0 ? 4 : 2;  /* e.g. base 12 */
    cfg.max_batch = o->batch;
    cfg.num_classes = o->classes;   /* a label embedding added to the timestep embedding */
    if (unet_config_check(&cfg, msg, sizeof msg)) die("model: %s", msg);
    /* every attention size must be one of the feature-map sizes */
    for (int i = 0; i < cfg.n_attn; i++) {
        int ok = 0;
        for (int l = 0; l < cfg.levels; l++) ok |= (H >> l) == cfg.attn_res[i];
        if (!ok) {
            char sizes[64];
            int len = 0;
            for (int l = 0; l < cfg.levels; l++)
                len += snprintf(sizes + len, sizeof sizes - len, "%s%d", l ? ", " : "", H >> l);
            die("--attn %d: no feature map has that size; with %dx%d images and %d "
                "resolutions they are %s", cfg.attn_res[i], H, W, cfg.levels, sizes);
        }
    }
    /* the options now record the full configuration (it goes into checkpoints) */
    o->base = cfg.base;
    o->res_blocks = cfg.num_res_blocks;
    int len = 0;
    for (int l = 0; l < cfg.levels; l++)
        len += snprintf(o->mult + len, sizeof o->mult - len, "%s%d", l ? "," : "", cfg.mult[l]);
    len = 0;
    o->attn[0] = 0;
    for (int i = 0; i < cfg.n_attn; i++)
        len += snprintf(o->attn + len, sizeof o->attn - len, "%s%d", i ? "," : "", cfg.attn_res[i]);
    if (cfg.mid_attn) snprintf(o->attn + len, sizeof o->attn - len, "%smid", len ? "," : "");
    if (!o->attn[0]) snprintf(o->attn, sizeof o->attn, "none");
    return cfg;
}

/* ========================================================================================
 * Small helpers: learning rate, EMA decay, pictures */

/* Ho et al.'s recipe: linear warm-up, then a constant rate. It depends on the step alone,
 * so a resumed run and an uninterrupted one take the same steps. */
static double lr_at(const Options *o, long step) {
    return step <= o->warmup ? o->lr * (double)step / o->warmup : o->lr;
}

/* EMA decay, short at first so that the average does not drag the random initialization
 * along: min(ema, (1 + step) / (10 + step)). Also a function of the step alone. */
static double ema_at(const Options *o, long step) {
    return fmin(o->ema, (1.0 + step) / (10.0 + step));
}

/* n images (n, C, H, W) in [−1, 1] as a grid picture, gray or colour */
static void grid_image(Image *img, const real *pix, int n, int C, int H, int W, int ncols,
                       int scale, int pad) {
    if (C == 3) image_from_rgb_grid(img, pix, n, H, W, ncols, scale, pad);
    else image_from_gray_grid(img, pix, n, H, W, ncols, scale, pad);
}

static const unsigned char BLACK[3] = { 0, 0, 0 };

/* PNGs are stored uncompressed (plot.h): gray pictures go out as 8-bit gray, a third of
 * the size of RGB (C = 1 and no coloured pixel). */
static void write_png(const char *path, const Image *img, int C) {
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n && C != 3; i++)   /* colour anywhere (NaN is red): keep RGB */
        if (img->rgb[3 * i] != img->rgb[3 * i + 1] || img->rgb[3 * i] != img->rgb[3 * i + 2]) C = 3;
    if (C == 3) { png_write(path, img); return; }
    unsigned char *g = xmalloc((size_t)img->w * img->h, "gray picture");
    for (size_t i = 0; i < n; i++) g[i] = img->rgb[3 * i];
    png_write_gray(path, g, img->w, img->h);
    free(g);
}

static int picture_scale(int H) { return H <= 16 ? 4 : H <= 32 ? 3 : 2; }

/* ========================================================================================
 * The sampling trace: frames of the GIF, and the columns of denoise.png */

#define DENOISE_ROWS 4      /* samples shown in denoise.png */
#define DENOISE_COLS 9      /* t = T, 7T/8, ..., 0 */
#define GIF_FRAMES 40       /* frames of the reverse process, plus a held last one */
#define GIF_SCALE 2         /* magnification in the GIF (the PNGs use picture_scale) */

typedef struct {
    int C, H, W, T, N;      /* image shape, diffusion steps, samples traced */
    int gif_cols;           /* grid width of the GIF */
    GifWriter *gif;         /* NULL if it could not be opened */
    int next_frame;         /* the next t at or below which a GIF frame is drawn */
    real *prev_x0;          /* (N, D) the last x̂₀, for the GIF's right half */
    int have_x0;
    real *xt;               /* (ROWS, COLS, D) x_t at the columns' t */
    real *x0;               /* (ROWS, COLS, D) x̂₀ predicted from that x_t */
    int col_t[DENOISE_COLS];/* the t actually shown in each column */
    int filled;             /* columns whose x_t is recorded */
} Trace;

static int column_target(const Trace *tr, int c) {
    return tr->T - (int)((long)c * tr->T / (DENOISE_COLS - 1));
}

/* Called with t = T (x_T, no x̂₀ yet), then after each step with x = x_t and the x̂₀ that
 * the network predicted one step earlier, from the previous x. */
static void trace_step(void *ctx, int t, const real *x, const real *x0_hat, int N, int D) {
    Trace *tr = ctx;
    int R = N < DENOISE_ROWS ? N : DENOISE_ROWS;
    /* x̂₀ belongs to the previous call's x: complete the column left waiting */
    if (x0_hat && tr->filled > 0 && tr->col_t[tr->filled - 1] > t)
        for (int r = 0; r < R; r++)
            memcpy(tr->x0 + ((size_t)r * DENOISE_COLS + tr->filled - 1) * D, x0_hat + (size_t)r * D,
                   D * sizeof(real));
    if (tr->filled < DENOISE_COLS && t <= column_target(tr, tr->filled)) {
        int c = tr->filled++;
        tr->col_t[c] = t;
        for (int r = 0; r < R; r++) {
            memcpy(tr->xt + ((size_t)r * DENOISE_COLS + c) * D, x + (size_t)r * D, D * sizeof(real));
            if (t == 0)   /* x₀ is the answer itself */
                memcpy(tr->x0 + ((size_t)r * DENOISE_COLS + c) * D, x + (size_t)r * D, D * sizeof(real));
        }
    }
    if (x0_hat) {
        memcpy(tr->prev_x0, x0_hat, (size_t)N * D * sizeof(real));
        tr->have_x0 = 1;
    }
    if (!tr->gif || (t > tr->next_frame && t != 0)) return;
    while (tr->next_frame >= t && tr->next_frame > 0) tr->next_frame -= (tr->T + GIF_FRAMES - 1) / GIF_FRAMES;
    /* frame: x_t on the left, the current x̂₀ on the right */
    int scale = GIF_SCALE, top = 16;
    Image left, right, frame;
    grid_image(&left, x, N, tr->C, tr->H, tr->W, tr->gif_cols, scale, 2);
    grid_image(&right, tr->have_x0 ? tr->prev_x0 : x, N, tr->C, tr->H, tr->W, tr->gif_cols, scale, 2);
    image_init(&frame, tr->gif->w, tr->gif->h);
    image_blit(&frame, &left, 0, top);
    image_blit(&frame, &right, left.w + 8, top);
    char title[64];
    snprintf(title, sizeof title, "x_t, t = %d", t);
    draw_text(&frame, 4, 4, title, BLACK, 1);
    draw_text(&frame, left.w + 12, 4, tr->have_x0 ? "predicted x0" : "predicted x0 (none yet)", BLACK, 1);
    int frames = t == 0 ? 20 : 1;   /* hold the last frame */
    for (int i = 0; i < frames; i++) gif_add_frame(tr->gif, &frame);
    image_free(&left);
    image_free(&right);
    image_free(&frame);
}

/* denoise.png: for each of the first samples, a row of x_t and a row of x̂₀, t from T to 0 */
static void write_denoise_png(const Options *o, const Trace *tr, int R) {
    int D = tr->C * tr->H * tr->W, cols = tr->filled;
    real *pix = xmalloc((size_t)2 * R * cols * D * sizeof(real), "denoise picture");
    for (int r = 0; r < R; r++)
        for (int c = 0; c < cols; c++) {
            memcpy(pix + ((size_t)(2 * r) * cols + c) * D, tr->xt + ((size_t)r * DENOISE_COLS + c) * D,
                   D * sizeof(real));
            memcpy(pix + ((size_t)(2 * r + 1) * cols + c) * D, tr->x0 + ((size_t)r * DENOISE_COLS + c) * D,
                   D * sizeof(real));
        }
    int scale = picture_scale(tr->H), pad = 3, cell = tr->W * scale + pad;
    int left = 40, top = 16;
    Image grid, img;
    grid_image(&grid, pix, 2 * R * cols, tr->C, tr->H, tr->W, cols, scale, pad);
    image_init(&img, left + grid.w, top + grid.h + 14);
    image_blit(&img, &grid, left, top);
    for (int c = 0; c < cols; c++) {
        char label[16];
        snprintf(label, sizeof label, "t=%d", tr->col_t[c]);
        draw_text(&img, left + pad + c * cell, 4, label, BLACK, 1);
    }
    for (int r = 0; r < 2 * R; r++)
        draw_text(&img, 4, top + pad + r * (tr->H * scale + pad) + tr->H * scale / 2 - 4,
                  r % 2 ? "x0^" : "x_t", BLACK, 1);
    draw_text(&img, 4, img.h - 12, "rows: x_t and the predicted x0 from it, for each sample", BLACK, 1);
    write_png(path_in(o->d.out, "denoise.png"), &img, tr->C);
    image_free(&grid);
    image_free(&img);
    free(pix);
}

/* ========================================================================================
 * The variational bound in bits per dimension (Ho et al. eq. 5, §4.2):
 *   L = L_T + Σ_{t=2..T} L_{t−1} + L_0, L_0 from the discretized Gaussian decoder on 8-bit
 *   values, bits/dim = L / (D ln 2). The built-in digits are anti-aliased, so they are first
 *   put on the 8-bit grid k/127.5 − 1 like a file's pixels. */
/* M held-out images on the 8-bit grid: the first M of the training file, or fresh digits
 * from a generator of their own, seeded by --seed alone, so that --bound and --ode-nll
 * (and any run with the same seed) measure the same images: the first M of any larger M */
static real *held_out_images(int M, const real *train, int n_train, int H, int W, int D,
                             unsigned long seed) {
    real *x0 = xmalloc((size_t)M * D * sizeof(real), "held-out images");
    if (n_train) {
        memcpy(x0, train, (size_t)M * D * sizeof(real));
    } else {
        Rng held;
        rng_seed(&held, seed ^ 0x48454c44u);
        digits_sample(x0, NULL, M, H, W, &held);
        to_pixel_grid(x0, (size_t)M * D);   /* eval.c: k/127.5 − 1, k = 0..255 */
    }
    return x0;
}

static void report_bound(const Options *opt, Denoiser *net, const Schedule *s, const real *train,
                         int n_train, int C, int H, int W, Rng *aux) {
    const DiffusionOptions *o = &opt->d;
    int D = C * H * W, M = opt->bound;
    if (n_train && M > n_train) M = n_train;
    real *x0 = held_out_images(M, train, n_train, H, W, D, o->seed);
    double *terms = xmalloc((size_t)(o->T + 1) * sizeof(double), "bound terms");
    double bits = 1.0 / (D * log(2.0));
    printf("bound: %d %s images, all %d terms ...\n", M, n_train ? "(from the training file)" : "fresh", o->T);
    fflush(stdout);
    ProgressNet pn;   /* the same network, counted: a progress line for a long bound */
    Denoiser counted = progress_net(&pn, net, "the all-T bound", (double)M * (o->T + 1));
    double all = vlb_all_terms(terms, NULL, &counted, x0, M, &o->ddpm, s, DECODER_DISCRETE, aux);
    double se, est = vlb_estimate(&se, &counted, x0, M, &o->ddpm, s, DECODER_DISCRETE, aux);
    progress_end(&pn.p);
    /* L_0 by the exact CDF and by the tanh approximation that reference code uses, on one
     * shared draw of x_1, so that the difference is the approximation's alone */
    double *l0 = xmalloc((size_t)M * sizeof(double), "L_0");
    real *eps = xmalloc((size_t)M * D * sizeof(real), "eps");
    int *ones = xmalloc((size_t)M * sizeof(int), "t");
    for (int n = 0; n < M; n++) ones[n] = 1;
    rng_fill_normal(aux, eps, (size_t)M * D);
    double l0_same = 0, l0_tanh = 0;
    vlb_terms(l0, net, x0, eps, ones, M, &o->ddpm, s, DECODER_DISCRETE);
    for (int n = 0; n < M; n++) l0_same += l0[n] / M;
    vlb_terms(l0, net, x0, eps, ones, M, &o->ddpm, s, DECODER_DISCRETE_TANH);
    for (int n = 0; n < M; n++) l0_tanh += l0[n] / M;
    printf("bound: %.4f bits/dim (all T terms; %.1f nats per image); one-t estimate %.4f +- %.4f"
           " bits/dim\n", all * bits, all, est * bits, se * bits);
    printf("  L_T %.4f, L_0 %.4f, sum of L_1..L_{T-1} %.4f bits/dim\n", terms[0] * bits,
           terms[1] * bits, (all - terms[0] - terms[1]) * bits);
    printf("  L_0 on another draw of x_1: exact CDF %.4f, tanh approximation %.4f bits/dim\n",
           l0_same * bits, l0_tanh * bits);
    /* the one-t estimate is unbiased but heavy-tailed: a few small t carry much of the bound */
    printf("  (the one-t estimate draws t = 1, which carries L_0 = %.0f%% of the bound, with"
           " probability 1/T per image: with %d images it misses it %.0f%% of the time, and its"
           " standard error does not show that)\n", 100.0 * terms[1] / all, M,
           100.0 * pow(1.0 - 1.0 / o->T, M));
    for (int t = 1; t <= o->T; t++) terms[t] *= bits;
    plot_against_t(path_in(o->out, "bound_terms.svg"), "terms of the bound: L_0 at t = 1, L_{t-1} at t >= 2",
                   "bits per dimension", 1, "term at t", o->T, terms + 1);
    free(x0); free(terms); free(l0); free(eps); free(ones);
}

/* The probability-flow ODE's exact likelihood (Song et al. 2021; ddpm.h ode_log_likelihood)
 * of M held-out images: Heun on S = --ode-steps (default T) steps, the divergence by
 * Hutchinson's estimate with 2 Rademacher probes per evaluation (the exact trace would take
 * D backward passes), so each image's number comes with its standard error. The density is
 * taken of the image uniformly dequantized, x + u with u ~ U(−1/255, 1/255)^D (one draw per
 * image; the bins of the bound's decoder, of volume (2/255)^D), so that by Jensen
 *   E_u[−log p(x + u)] + D log 127.5 ≥ −log P(x),  P(x) = ∫_bin p,
 * the ODE's number, like the bound, is an upper bound (in expectation over u) on the
 * model's −log P of the 8-bit image: bits/dim = (−log p(x + u) + D log 127.5) / (D ln 2).
 * (The density at the bin's centre alone is no bound: most of a digit's pixels sit at −1.) */
static void report_ode_nll(const Options *opt, Denoiser *net, const Schedule *s, const real *train,
                           int n_train, int C, int H, int W, Rng *aux) {
    const DiffusionOptions *o = &opt->d;
    int D = C * H * W, M = opt->ode_nll, S = o->ode_steps ? o->ode_steps : o->T;
    if (n_train && M > n_train) M = n_train;
    real *x0 = held_out_images(M, train, n_train, H, W, D, o->seed);
    for (size_t i = 0; i < (size_t)M * D; i++)   /* uniform dequantization within the bin */
        x0[i] = (real)(x0[i] + (2.0 * rng_uniform(aux) - 1.0) / 255.0);
    double *logp = xmalloc((size_t)M * sizeof(double), "ODE log-likelihoods");
    double *se = xmalloc((size_t)M * sizeof(double), "ODE standard errors");
    OdeConfig oc = { .S = S, .solver = ODE_HEUN, .exact_trace = 0, .probes = 2 };
    printf("ODE likelihood: %d %s images, uniformly dequantized, Heun on %d steps, Hutchinson with "
           "%d probes per step ...\n", M, n_train ? "(from the training file)" : "fresh", S, oc.probes);
    fflush(stdout);
    double t0 = now_seconds(), bits = 1.0 / (D * log(2.0)), mean = 0, var_h = 0, spread = 0;
    clock_t c0 = clock();   /* CPU time beside the wall clock: the machine may be shared */
    for (int n = 0; n < M; n++) {   /* one image at a time, with its time and the time left */
        double t1 = now_seconds();
        clock_t c1 = clock();
        ode_log_likelihood(logp + n, se + n, NULL, net, x0 + (size_t)n * D, NULL, 1, &o->ddpm, s,
                           &oc, aux);
        double bpd = (-logp[n] + D * log(127.5)) * bits;
        printf("  image %d: %.4f +- %.4f bits/dim (%.1f s, CPU %.1f s; %.0f s left)\n", n + 1, bpd,
               se[n] * bits, now_seconds() - t1, (double)(clock() - c1) / CLOCKS_PER_SEC,
               (now_seconds() - t0) / (n + 1) * (M - n - 1));
        fflush(stdout);
        mean += bpd / M;
        var_h += pow(se[n] * bits / M, 2);
    }
    for (int n = 0; n < M; n++) spread += pow((-logp[n] + D * log(127.5)) * bits - mean, 2);
    spread = M > 1 ? sqrt(spread / (M - 1) / M) : NAN;
    printf("ODE likelihood: %.4f bits/dim over %d images; standard error %.4f from Hutchinson, "
           "%.4f from the choice of images; %.1f s, CPU %.1f s\n", mean, M, sqrt(var_h), spread,
           now_seconds() - t0, (double)(clock() - c0) / CLOCKS_PER_SEC);
    free(x0); free(logp); free(se);
}

/* ========================================================================================
 * Evaluation (--eval N): the samples measured against held-out real images */

#define EVAL_DIGITS 20000          /* built-in digits the classifier trains on */
#define EVAL_CLASSIFIER_STEPS 2000 /* of batch 64: 128k images, ~2 epochs of Fashion-MNIST */
#define EVAL_PAIRS 8               /* closest pairs shown */
#define STRIP_ROWS 6               /* real images in forward.png */

/* The held-out file beside a training file: "train-..." -> "t10k-..." (MNIST, Fashion-MNIST),
 * "data_batch_K.bin" -> "test_batch.bin" (CIFAR-10). 0, or -1 if the name is neither. */
static int held_out_path(const char *train, char *out, size_t len) {
    const char *base = strrchr(train, '/');
    base = base ? base + 1 : train;
    int dir = (int)(base - train);
    if (strncmp(base, "train-", 6) == 0)
        return snprintf(out, len, "%.*st10k-%s", dir, train, base + 6) < (int)len ? 0 : -1;
    if (strncmp(base, "data_batch_", 11) == 0) {
        const char *ext = strchr(base + 11, '.');
        return snprintf(out, len, "%.*stest_batch%s", dir, train, ext ? ext : "") < (int)len ? 0 : -1;
    }
    return -1;
}

/* The class accuracy of conditional samples: the share the classifier assigns to the label
 * they were generated with, overall and per class (guidance.h; the classifier's own
 * held-out accuracy is printed by eval_print above). */
static void class_accuracy(Classifier *c, const real *gen, const int *want, int n, int K,
                           double w, const char *const *names) {
    int *pred = xmalloc((size_t)n * sizeof(int), "predictions");
    classifier_predict(c, pred, gen, n);
    int hit = 0, per[EVAL_MAX_CLASSES] = { 0 }, cnt[EVAL_MAX_CLASSES] = { 0 };
    for (int i = 0; i < n; i++) {
        cnt[want[i]]++;
        if (pred[i] == want[i]) { hit++; per[want[i]]++; }
    }
    double acc = (double)hit / n, se = sqrt(acc * (1 - acc) / n);
    printf("eval: class accuracy of the conditional samples (guidance w = %g): %.1f%% +- %.1f "
           "(%d of %d judged the class they were asked for)\n", w, 100 * acc, 100 * se, hit, n);
    printf("eval: per class:");
    for (int k = 0; k < K; k++)
        if (cnt[k]) printf(" %s %.0f%%", names[k], 100.0 * per[k] / cnt[k]);
    printf("\n");
    free(pred);
}

static void report_eval(const Options *o, Denoiser *net, const Schedule *s, const ImageSet *train,
                        int C, int H, int W) {
    int K = o->classes;   /* a conditional model: balanced labels (or --class), checked after */
    int n = o->eval, D = C * H * W;
    double t_start = now_seconds();
    clock_t c_start = clock();
    Rng erng, grng;   /* digits, classifier and strip; the samples: from --seed alone, so the
                       * samples do not depend on whether the classifier was loaded */
    rng_seed(&erng, o->d.seed + 2000003UL);
    rng_seed(&grng, o->d.seed + 3000017UL);

    /* held-out real images (two sets of n), the classifier's training images, and the
     * training images for the memorization check */
    ImageSet held, digits;
    memset(&digits, 0, sizeof digits);
    const ImageSet *labelled = train, *reference = train;
    char desc[256], held_name[CLI_PATH_MAX];
    if (o->data == DATA_DIGITS) {
        image_set_digits(&held, 2 * n > 2000 ? 2 * n : 2000, H, W, &erng);
        image_set_digits(&digits, EVAL_DIGITS, H, W, &erng);
        labelled = reference = &digits;
        snprintf(desc, sizeof desc, "built-in digits %dx%d", H, W);
        snprintf(held_name, sizeof held_name, "fresh built-in digits");
        printf("eval: the digits are drawn fresh at every step (no image is seen twice); the "
               "memorization check uses %d fresh digits as the training set\n", EVAL_DIGITS);
    } else {
        if (!o->file) die("--eval needs --file PATH: the training images (for the classifier "
                          "and the memorization check)");
        if (o->eval_file) snprintf(held_name, sizeof held_name, "%s", o->eval_file);
        else if (held_out_path(o->file, held_name, sizeof held_name) != 0)
            die("--eval: no held-out file known beside %s; pass --eval-file PATH (e.g. "
                "t10k-images-idx3-ubyte.gz or test_batch.bin)", o->file);
        if (image_set_load(&held, held_name, 0)) exit(1);
        if (held.C != C || held.H != H || held.W != W)
            die("--eval: %s holds %dx%dx%d images, the model makes %dx%dx%d", held_name, held.C,
                held.H, held.W, C, H, W);
        if (held.N < 2 * n)
            die("--eval %d needs 2 x %d held-out images (samples against one set, the floor "
                "from the other); %s has %d: use --eval %d", n, n, held_name, held.N, held.N / 2);
        const char *base = strrchr(o->file, '/');
        snprintf(desc, sizeof desc, "%s", base ? base + 1 : o->file);
    }

    /* the classifier: loaded, or trained on the labelled training images and saved */
    Classifier c;
    const char *cpath = o->classifier ? o->classifier : path_in(o->d.out, "classifier.ckpt");
    char cpath_copy[CLI_PATH_MAX];   /* --classifier fits: parse_options checked it */
    snprintf(cpath_copy, sizeof cpath_copy, "%s", cpath);
    double t_cls = now_seconds();
    FILE *f = fopen(cpath_copy, "rb");
    if (f) {
        fclose(f);
        if (classifier_load(&c, cpath_copy, desc, 64)) exit(1);
        printf("eval: classifier from %s\n", cpath_copy);
    } else {
        if (!labelled->label)
            die("--eval: %s has no labels beside it (e.g. train-labels-idx1-ubyte.gz); the "
                "classifier needs them", o->file);
        ClassifierConfig cc = classifier_default_config(C, H, W);
        classifier_init(&c, &cc, &erng);
        printf("eval: training the classifier (%d parameters, %d steps of batch 64) on %d "
               "labelled images ...\n", (int)c.ps.total, EVAL_CLASSIFIER_STEPS, labelled->N);
        fflush(stdout);
        classifier_train(&c, labelled->x, labelled->label, labelled->N, EVAL_CLASSIFIER_STEPS, 64,
                         2e-3, EVAL_CLASSIFIER_STEPS / 4, &erng);
        if (classifier_save(&c, cpath_copy, desc)) exit(1);
        printf("eval: classifier saved to %s\n", cpath_copy);
    }
    t_cls = now_seconds() - t_cls;

    /* n samples with the same sampler as the pictures */
    real *gen = xmalloc((size_t)n * D * sizeof(real), "eval samples");
    int *want = K ? xmalloc((size_t)n * sizeof(int), "eval labels") : NULL;
    for (int i = 0; i < n && K; i++) want[i] = o->cls >= 0 ? o->cls : i % K;
    printf("eval: sampling %d images%s ...\n", n, K ? (o->cls >= 0 ? " of the one class" :
           ", every class in turn") : "");
    fflush(stdout);
    double t_gen = now_seconds();
    sample_loop(net, gen, want, &o->d, s, n, o->clip_x0, &grng, NULL, NULL);
    t_gen = now_seconds() - t_gen;
    to_pixel_grid(gen, (size_t)n * D);   /* measured as a saved picture holds them */

    /* the numbers */
    double t_measure = now_seconds();
    EvalSets sets = {.train = reference->x, .n_train = reference->N, .held = held.x,
                     .n_held = held.N, .held_label = held.label, .C = C, .H = H, .W = W};
    EvalResult r;
    int *nn_idx = xmalloc((size_t)n * sizeof(int), "nearest index");
    double *nn_dist = xmalloc((size_t)n * sizeof(double), "nearest distance");
    printf("eval: held-out images from %s (%d), the training set for the nearest-image "
           "distances %d images\n", held_name, held.N, reference->N);
    eval_samples(&r, &c, gen, n, &sets, nn_idx, nn_dist);
    t_measure = now_seconds() - t_measure;
    eval_print(stdout, &r, held.class_name);
    if (K) class_accuracy(&c, gen, want, n, K, o->guidance, held.class_name);
    free(want);

    /* closest_pairs.png: top row the samples closest to a training image, bottom row that
     * image; forward.png: held-out images at t = 0, T/10, T/5, 2T/5, 3T/5, 4T/5, T */
    int k = n < EVAL_PAIRS ? n : EVAL_PAIRS;
    real *pairs = xmalloc((size_t)2 * k * D * sizeof(real), "closest pairs");
    eval_closest_pairs(pairs, k, gen, n, nn_idx, nn_dist, &sets);
    Image img;
    grid_image(&img, pairs, 2 * k, C, H, W, k, picture_scale(H), 2);
    write_png(path_in(o->d.out, "closest_pairs.png"), &img, C);
    image_free(&img);
    int ts[7] = {0, o->d.T / 10, o->d.T / 5, 2 * o->d.T / 5, 3 * o->d.T / 5, 4 * o->d.T / 5, o->d.T};
    real *strip = xmalloc((size_t)STRIP_ROWS * 7 * D * sizeof(real), "forward strip");
    forward_strip(strip, held.x, STRIP_ROWS, ts, 7, s, D, &grng);
    grid_image(&img, strip, STRIP_ROWS * 7, C, H, W, 7, picture_scale(H), 2);
    write_png(path_in(o->d.out, "forward.png"), &img, C);
    image_free(&img);
    printf("eval: pictures %s/closest_pairs.png (top: the %d samples nearest a training "
           "image, bottom: that image), forward.png (held-out images at t = %d, %d, %d, %d, "
           "%d, %d, %d)\n", o->d.out, k, ts[0], ts[1], ts[2], ts[3], ts[4], ts[5], ts[6]);
    printf("eval: %.1f s in all (%.1f s of CPU): classifier %.1f s, sampling %.1f s, measures "
           "%.1f s\n", now_seconds() - t_start, (double)(clock() - c_start) / CLOCKS_PER_SEC,
           t_cls, t_gen, t_measure);
    free(strip); free(pairs); free(nn_dist); free(nn_idx); free(gen);
    classifier_free(&c);
    image_set_free(&digits);
    image_set_free(&held);
}

/* ========================================================================================
 * The story, step by step. Everything a step makes for a later one lives in Run. */

typedef struct {
    Options o;
    const char *ckpt;       /* --resume or --sample-only: the checkpoint read, or NULL */
    CkptHeader h;           /* its settings, then the settings saved */
    int C, H, W, D;         /* image shape, D = C·H·W */
    ImageSet set;           /* file data: images (and labels, if beside) by image_set_load */
    real *train;            /* set.x, (n_train, C, H, W); NULL: the digits are drawn fresh */
    int n_train;
    uint32_t data_crc;      /* data_fingerprint of train, recorded in checkpoints */
    Rng rng, aux;           /* rng: training (saved in checkpoints); aux: everything else */
    Schedule s;
    double prior;           /* L_T, nats per image */
    UnetConfig cfg;
    ParamSet ps;
    Unet unet;
    Denoiser net;
    LossLog log;            /* the loss of the steps trained in this run */
    int N, R, gcols;        /* samples, rows of denoise.png, columns of the sample grids */
    real *samples;          /* (N, D) */
    Trace tr;
    const char *const *class_name;   /* --cond: the classes' names, e.g. "3", "Trouser" */
    int *y;                 /* (N) --cond: the label of every sample */
    Guided guided;          /* --guidance: the guided denoiser around net (guidance.h) */
    Denoiser snet;          /* what samples: net, or the guided net */
} Run;

/* The checkpoint --save names: the settings (header_from_options), weights, EMA, Adam's
 * moments and the training generator, written atomically */
static void save(Run *r) {
    header_from_options(&r->h, &r->o, r->C, r->H, r->W, r->prior, r->o.steps, r->n_train,
                        r->data_crc);
    if (checkpoint_save(r->o.save, &r->h, &r->ps, &r->rng)) exit(1);
}

/* A checkpoint's settings decide the data shape and the model; the data options must fit */
static void read_settings(Run *r) {
    Options *o = &r->o;
    r->ckpt = o->resume ? o->resume : o->sample_only;
    r->C = 1; r->H = o->size; r->W = o->size;
    r->prior = NAN;
    if (r->ckpt) {
        if (checkpoint_read_header(r->ckpt, &r->h)) exit(1);
        options_from_header(o, r->ckpt, &r->h, &r->C, &r->H, &r->W, &r->prior);
        if (r->h.real_size && r->h.real_size != (int)sizeof(real))
            printf("warning: %s was written by the %s build and this is the %s build: its numbers "
                   "are converted (%s), so %s\n", r->ckpt, r->h.real_size == 8 ? "double" : "float",
                   REAL_NAME, r->h.real_size == 8 ? "rounded to float" : "exactly",
                   o->resume ? "the resumed run is no longer bit for bit the one that wrote it"
                             : "the samples are not bit for bit the writing build's");
    }
    /* a measure on held-out images needs the images the model was trained on: the
     * built-in digits would be measured instead (and a CIFAR model's 3 channels would
     * read memory the digits never fill) */
    if (o->sample_only && o->data != DATA_DIGITS && !o->file && (o->bound || o->ode_nll || o->eval)) {
        const char *file = "";
        ckpt_get_string(&r->h, "data.file", &file);
        die("%s was trained on --data %s%s%s: %s measures held-out images of that data; give "
            "--file PATH", r->ckpt, data_names[o->data], file[0] ? " from " : "", file,
            o->bound ? "--bound" : o->ode_nll ? "--ode-nll" : "--eval");
    }
    if (o->data != DATA_DIGITS && !o->file && !o->sample_only) {
        if (r->ckpt) die("%s was trained on --data %s: give --file PATH to continue", r->ckpt, data_names[o->data]);
        die("--data %s needs --file PATH (the %s file)", data_names[o->data],
            o->data == DATA_IDX ? "IDX images" : "CIFAR-10 binary batch");
    }
    if (o->data == DATA_DIGITS && o->file)
        die("--file is for --data idx or --data cifar; the built-in digits need no file");
    if (o->data != DATA_DIGITS && o->given.size)
        die("--size is for the built-in digits; %s files have their own size", data_names[o->data]);
}

/* Which images a model was trained on, whatever the file is called: the CRC-32 of the
 * training images as 8-bit values (pixel k/127.5 − 1 → k), so that the plain and the .gz
 * file, and a float and a double build, give the same number. */
static uint32_t data_fingerprint(const real *x, size_t n) {
    uint32_t crc = 0;
    unsigned char chunk[4096];
    for (size_t i = 0; i < n; i += sizeof chunk) {
        size_t m = n - i < sizeof chunk ? n - i : sizeof chunk;
        for (size_t k = 0; k < m; k++) chunk[k] = (unsigned char)lround(((double)x[i + k] + 1.0) * 127.5);
        crc = crc32_update(crc, chunk, m);
    }
    return crc;
}

/* The images: a file's (IDX: MNIST, Fashion-MNIST; CIFAR-10), or none for the built-in
 * digits, which are drawn fresh for every batch */
static void load_data(Run *r) {
    const Options *o = &r->o;
    ImageSet *set = &r->set;
    if (o->file) {
        if (image_set_load(set, o->file, 0)) exit(1);
        if ((o->data == DATA_IDX) != (set->C == 1))
            die("%s holds %s images, not %s: pass --data %s", o->file, set->C == 1 ? "IDX" : "CIFAR-10",
                data_names[o->data], set->C == 1 ? "idx" : "cifar");
        if (r->ckpt && (set->C != r->C || set->H != r->H || set->W != r->W))
            die("%s holds %dx%dx%d images, but %s was trained on %dx%dx%d", o->file, set->C, set->H,
                set->W, r->ckpt, r->C, r->H, r->W);
        r->C = set->C; r->H = set->H; r->W = set->W;
    }
    r->train = set->x;
    r->n_train = set->N;
    r->D = r->C * r->H * r->W;
    if (!o->file) return;
    r->data_crc = data_fingerprint(set->x, (size_t)set->N * r->D);
    int64_t n = 0, crc = 0;   /* a checkpoint written before fingerprints has neither */
    if (o->resume && ckpt_get_int(&r->h, "data.n", &n) == 0 &&
        ckpt_get_int(&r->h, "data.crc32", &crc) == 0 &&
        (n != r->n_train || (uint32_t)crc != r->data_crc)) {
        const char *was = "";
        ckpt_get_string(&r->h, "data.file", &was);
        die("%s holds other images than %s was trained on (%d images with CRC-32 %08lx; it was "
            "trained on %lld with %08lx from %s): --resume continues that run on its own data; "
            "give that file, or start a new run", o->file, r->ckpt, r->n_train,
            (unsigned long)r->data_crc, (long long)n, (unsigned long)crc, was);
    }
}

/* --cond: K classes (the digits' 10, or the labels beside --file), and --class by name or
 * number; the network gets a label embedding (unet.h) */
static const char *const DIGIT_CLASS_NAMES[10] = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" };
static void set_classes(Run *r) {
    Options *o = &r->o;
    if (!o->cond) return;
    const ImageSet *set = &r->set;
    if (o->file && !set->label && !o->sample_only)
        die("--cond: %s has no labels beside it (e.g. train-labels-idx1-ubyte.gz next to "
            "train-images-idx3-ubyte.gz): a class-conditional model needs them", o->file);
    int K = o->classes ? o->classes : o->file ? set->classes : 10;
    if (K > EVAL_MAX_CLASSES) die("--cond: %d classes; at most %d are supported", K, EVAL_MAX_CLASSES);
    o->classes = K;
    r->class_name = set->label && set->class_name ? set->class_name : DIGIT_CLASS_NAMES;
    if (!o->cls_name) return;
    for (int k = 0; k < K; k++)
        if (strcmp(o->cls_name, r->class_name[k]) == 0 || strcmp(o->cls_name, DIGIT_CLASS_NAMES[k]) == 0)
            o->cls = k;
    if (o->cls < 0) {
        char valid[512] = "";
        for (int k = 0; k < K; k++)
            snprintf(valid + strlen(valid), sizeof valid - strlen(valid), "%s%s", k ? "|" : "",
                     r->class_name[k]);
        die("--class: unknown class '%s'; valid: %s (or the number 0..%d)", o->cls_name, valid, K - 1);
    }
}

/* 004 "Noise Sampling": the schedule, and the prior term L_T = KL(q(x_T|x_0) || N(0, I))
 * averaged over (up to) 1000 data images, or the checkpoint's value without data */
static void report_schedule(Run *r) {
    const Options *o = &r->o;
    int D = r->D, from_data = o->data == DATA_DIGITS || r->n_train;
    if (schedule_build(&r->s, o->d.schedule, o->d.T)) exit(1);
    if (from_data) {
        int M = r->n_train ? (r->n_train < 1000 ? r->n_train : 1000) : 1000;
        real *x0 = r->train;
        if (!r->n_train) {
            x0 = xmalloc((size_t)M * D * sizeof(real), "data for L_T");
            digits_sample(x0, NULL, M, r->H, r->W, &r->aux);
        }
        r->prior = 0;
        for (int n = 0; n < M; n++) r->prior += prior_kl(x0 + (size_t)n * D, &r->s, D) / M;
        if (!r->n_train) free(x0);
    }
    print_schedule(&r->s, r->prior, D, "image", from_data ? "" : " (from the checkpoint)");
}

/* 003 "역방향 확산": the U-Net f_θ(x_t, t), new, or rebuilt from the checkpoint and loaded */
static void build_model(Run *r) {
    params_init(&r->ps);
    if (unet_init(&r->unet, &r->cfg, &r->ps, &r->rng)) exit(1);
    ema_reset(&r->ps);
    if (r->ckpt && checkpoint_load(r->ckpt, NULL, &r->ps, &r->rng)) exit(1);
    unet_print_summary(stdout, &r->unet);
    r->net = unet_denoiser(&r->unet);
    if (r->ckpt) printf("checkpoint: %s at step %ld\n", r->ckpt, r->ps.step);
}

/* What the run will compute, and a warning with its cost in CPU time when that is long
 * (cli.h warn_cost): network evaluations of one image, timed on this U-Net. Training counts
 * 3 (forward and backward), the ODE likelihood 6 per Heun evaluation (its two probes). */
static void warn_if_costly(Run *r) {
    const Options *o = &r->o;
    double eval = seconds_per_evaluation(&r->net, o->batch);
    double S = sampler_evaluations(&o->d) * (o->guidance != 0 ? 2 : 1);
    double trained = o->sample_only ? 0 : fmax(0, o->steps - r->ps.step);
    double ode_S = o->d.ode_steps ? o->d.ode_steps : o->d.T;
    CostItem items[] = {
        { "training", 3.0 * trained * o->batch, "network evaluations", eval },
        { "sampling", (double)o->n_samples * S, "network evaluations", eval },
        { "the all-T bound", (double)o->bound * (o->d.T + 1), "network evaluations", eval },
        { "the ODE likelihood", 6.0 * o->ode_nll * 2 * ode_S, "network evaluations", eval },
        { "--eval's samples", (double)o->eval * S, "network evaluations", eval },
    };
    warn_cost(items, (int)(sizeof items / sizeof *items), "lower --steps, --T, --n-samples, "
              "--bound or --eval for a quicker run");
}

/* --bench N: N training steps after one warm-up step, timed in CPU seconds (the one-core
 * number even on a busy machine) and wall clock */
static void bench(Run *r) {
    Options *o = &r->o;
    int D = r->D;
    TrainWork work;
    train_work_init(&work, o->batch, D);
    AdamConfig adam = adam_default(o->lr);
    real *batch = xmalloc((size_t)o->batch * D * sizeof(real), "batch");
    digits_sample(batch, NULL, o->batch, r->H, r->W, &r->aux);
    if (r->n_train)
        for (int b = 0; b < o->batch; b++)
            memcpy(batch + (size_t)b * D, r->train + (size_t)(b % r->n_train) * D, D * sizeof(real));
    ddpm_train_step(&r->net, batch, NULL, o->batch, &o->d.ddpm, &r->s, &r->rng, &work);
    double t0 = now_seconds();
    clock_t c0 = clock();
    for (int i = 0; i < o->bench; i++) {
        ddpm_train_step(&r->net, batch, NULL, o->batch, &o->d.ddpm, &r->s, &r->rng, &work);
        adam_step(&r->ps, &adam);
        ema_update(&r->ps, o->ema);
    }
    double el = now_seconds() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("bench: %d training steps of batch %d: %.1f images/s (%.0f ms per step of CPU time;"
           " wall clock %.1f images/s), real = %s\n", o->bench, o->batch, o->bench * o->batch / cpu,
           1e3 * cpu / o->bench, o->bench * o->batch / el, REAL_NAME);
    free(batch);
    train_work_free(&work);
}

/* 004 "Train Diffusion Model": Ho et al.'s Algorithm 1, from the checkpoint's step to
 * --steps, with a checkpoint every --save-every steps and at the end */
static void train(Run *r) {
    Options *o = &r->o;
    int D = r->D;
    TrainWork work;
    train_work_init(&work, o->batch, D);
    AdamConfig adam = adam_default(o->lr);
    real *batch = xmalloc((size_t)o->batch * D * sizeof(real), "batch");
    int K = o->classes, *y = K ? xmalloc((size_t)o->batch * sizeof(int), "labels") : NULL;
    long first = r->ps.step + 1, n_steps = o->steps - r->ps.step;
    if (o->sample_only) n_steps = 0;
    if (n_steps < 0) {
        printf("training: the checkpoint is at step %ld, beyond --steps %d: nothing to train\n",
               r->ps.step, o->steps);
        n_steps = 0;
    }
    loss_log_init(&r->log, first, first + n_steps - 1, 50, 10);
    clock_t c_start = clock();
    for (long step = first; step < first + n_steps; step++) {
        if (r->n_train)   /* a random minibatch of the training set (and its labels) */
            draw_labelled_minibatch(batch, y, r->train, r->set.label, r->n_train, o->batch, D,
                                    &r->rng);
        else              /* fresh built-in digits: the data set is endless */
            digits_sample(batch, y, o->batch, r->H, r->W, &r->rng);
        if (K) label_dropout(y, o->batch, K, o->p_uncond, &r->rng);   /* c ← ∅ w.p. p_uncond */
        /* t ~ U{1..T}, ε ~ N(0, I), loss(f_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t, c)), backward */
        double loss = ddpm_train_step(&r->net, batch, y, o->batch, &o->d.ddpm, &r->s, &r->rng, &work);
        adam.lr = lr_at(o, step);
        adam_step(&r->ps, &adam);
        ema_update(&r->ps, ema_at(o, step));
        char bad[256];
        if (params_check_finite(&r->ps, loss, r->ps.step, bad, sizeof bad))
            die("training stopped at %s; nothing was saved (lower --lr, now %g, or raise --warmup)",
                bad, o->lr);
        loss_log_add(&r->log, step, loss);
        if (o->save && o->save_every && step % o->save_every == 0 && step < o->steps) save(r);
    }
    double train_time = loss_log_end(&r->log);
    double train_cpu = (double)(clock() - c_start) / CLOCKS_PER_SEC;
    if (n_steps)
        printf("training: steps %ld..%d of batch %d in %.1f s, %.1f s of CPU (%.1f images/s),"
               " final loss %.4f (running mean)\n", first, o->steps, o->batch, train_time, train_cpu,
               n_steps * o->batch / fmax(train_cpu, 1e-9), r->log.running);
    if (o->save) {
        save(r);
        printf("checkpoint: %s (step %ld)\n", o->save, r->ps.step);
    }
    free(batch);
    free(y);
    train_work_free(&work);
}

/* 004 "알고리즘": x_T ~ N(0, I), then t = T..1, traced into denoise.gif and denoise.png. A
 * generator of its own, seeded from --seed alone: the samples do not depend on how long
 * the training ran. */
static void sample(Run *r) {
    const Options *o = &r->o;
    int C = r->C, H = r->H, W = r->W, D = r->D, N = r->N = o->n_samples, K = o->classes;
    if (!o->no_ema) params_swap_ema(&r->ps);
    Rng srng;
    rng_seed(&srng, o->d.seed + 1000003UL);
    r->gcols = (int)ceil(sqrt((double)N));
    r->snet = r->net;
    if (K) {   /* a class grid, one row per class (or every sample of --class), guided */
        int cols = (N + K - 1) / K;
        if (o->cls < 0) { N = r->N = K * cols; r->gcols = cols; }
        r->y = xmalloc((size_t)N * sizeof(int), "labels");
        for (int n = 0; n < N; n++) r->y[n] = o->cls >= 0 ? o->cls : n / cols;
        if (o->guidance != 0) {
            guided_init(&r->guided, &r->net, o->guidance);
            r->snet = guided_denoiser(&r->guided);
        }
        if (o->cls >= 0)
            printf("class %s: every sample is generated with the label %s, guidance w = %g "
                   "(gamma = 1 + w = %g)\n", r->class_name[o->cls], r->class_name[o->cls], o->guidance,
                   1 + o->guidance);
        else
            printf("class grid: one row per class (%s .. %s), %d columns, guidance w = %g "
                   "(gamma = 1 + w = %g)\n", r->class_name[0], r->class_name[K - 1], cols, o->guidance,
                   1 + o->guidance);
    }
    r->R = N < DENOISE_ROWS ? N : DENOISE_ROWS;
    r->samples = xmalloc((size_t)N * D * sizeof(real), "samples");
    Trace *tr = &r->tr;
    *tr = (Trace){ .C = C, .H = H, .W = W, .T = o->d.T, .N = N, .gif_cols = r->gcols,
                   .next_frame = o->d.T };
    tr->prev_x0 = xmalloc((size_t)N * D * sizeof(real), "trace x0");
    tr->xt = xcalloc((size_t)r->R * DENOISE_COLS * D, sizeof(real), "trace x_t");
    tr->x0 = xcalloc((size_t)r->R * DENOISE_COLS * D, sizeof(real), "trace x0");
    GifWriter gif;
    Image probe;   /* the GIF's frame size: two grids side by side, a title line on top */
    grid_image(&probe, r->samples, N, C, H, W, r->gcols, GIF_SCALE, 2);
    if (gif_open(&gif, path_in(o->d.out, "denoise.gif"), 2 * probe.w + 8, probe.h + 16, 8, 0) == 0)
        tr->gif = &gif;
    image_free(&probe);
    /* the ODE never clips x̂₀ (cli.h sample_loop) */
    printf("sampling: %d images with %s, %s, %s weights ...\n", N,
           o->d.ode_steps ? "the probability-flow ODE (Heun)" : o->d.ddim_steps ? "DDIM"
                          : "the note's algorithm (ancestral)",
           o->clip_x0 && !o->d.ode_steps ? "x0 clipped to [-1, 1]" : "x0 not clipped",
           o->no_ema ? "raw" : "EMA");
    fflush(stdout);
    double t0 = now_seconds();
    sample_loop(&r->snet, r->samples, r->y, &o->d, &r->s, N, o->clip_x0, &srng, trace_step, tr);
    double t_sample = now_seconds() - t0;
    if (tr->gif) gif_close(&gif);
    char hint[96];
    snprintf(hint, sizeof hint, "lower --lr (now %g) or raise --warmup", o->lr);
    check_samples_finite(r->samples, N, D, "images", hint);
    tr->gif = NULL;
    printf("sampling: %d images in %.1f s (%d network evaluations each)\n", N, t_sample,
           sampler_evaluations(&o->d) * (K && o->guidance != 0 ? 2 : 1));   /* guided: c and ∅ */
}

/* samples.png, denoise.png, loss.svg (if this run trained) and the terminal preview: the
 * first samples side by side (gray, or the mean of RGB) */
static void write_pictures(Run *r) {
    const Options *o = &r->o;
    int C = r->C, H = r->H, W = r->W, D = r->D, N = r->N;
    Image img;
    grid_image(&img, r->samples, N, C, H, W, r->gcols, picture_scale(H), 2);
    write_png(path_in(o->d.out, "samples.png"), &img, C);
    image_free(&img);
    write_denoise_png(o, &r->tr, r->R);
    if (r->log.n) loss_log_plot(&r->log, path_in(o->d.out, "loss.svg"), loss_weighting_name(o->d.ddpm.weighting));
    int K = N < 8 ? N : 8;
    double *g = xmalloc((size_t)H * K * W * sizeof(double), "preview");
    for (int k = 0; k < K; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = 0;
                for (int c = 0; c < C; c++) v += r->samples[(size_t)k * D + ((size_t)c * H + y) * W + x];
                g[(size_t)y * K * W + k * W + x] = v / C;
            }
    printf("the first %d samples:\n", K);
    term_heatmap(stdout, g, K * W, H, term_wants_color(stdout));
    free(g);
}

static int end_run(Run *r) {
    free(r->y);
    guided_free(&r->guided);
    free(r->samples); free(r->tr.prev_x0); free(r->tr.xt); free(r->tr.x0);
    loss_log_free(&r->log);
    image_set_free(&r->set);
    unet_free(&r->unet);
    params_free(&r->ps);
    schedule_free(&r->s);
    return 0;
}

/* ========================================================================================
 * main: the story. Data, schedule, model, train, sample, show, measure. */

int main(int argc, char **argv) {
    Run r = { .o = parse_options(argc, argv) };
    Options *o = &r.o;
    read_settings(&r);          /* --resume / --sample-only: the checkpoint's settings */
    load_data(&r);              /* the file's images, or none: the digits are drawn fresh */
    set_classes(&r);            /* --cond: the labels' classes, --class */
    diffusion_check(&o->d);     /* DDIM steps, once T is known */
    rng_seed(&r.rng, o->d.seed);
    rng_seed(&r.aux, o->d.seed ^ 0x9E3779B97F4A7C15ULL);
    r.cfg = model_config(o, r.C, r.H, r.W);
    if (!o->bench) make_folder(o->d.out);
    if (o->save && checkpoint_check_dest(o->save, NULL, 0)) return 1;   /* before any step */
    printf("images: %s %dx%dx%d%s%s, T = %d, %s schedule, predict %s, %s loss, sigma_t^2 = %s\n",
           data_names[o->data], r.C, r.H, r.W,
           o->file ? " from " : o->data == DATA_DIGITS ? " (built-in)" : "", o->file ? o->file : "",
           o->d.T, schedule_name(o->d.schedule), parametrization_name(o->d.ddpm.param),
           loss_weighting_name(o->d.ddpm.weighting), reverse_var_name(o->d.ddpm.var));
    if (r.n_train) printf("data: %d images from %s\n", r.n_train, o->file);

    report_schedule(&r);        /* β_t, ᾱ_T and the prior term L_T */
    build_model(&r);            /* the U-Net, its summary, the checkpoint's weights */
    if (o->bench) { bench(&r); return end_run(&r); }
    warn_if_costly(&r);         /* a long run says so (and progress lines show the time left) */
    train(&r);                  /* Algorithm 1 up to --steps, checkpoints */
    sample(&r);                 /* the note's algorithm (or DDIM), denoise.gif */
    write_pictures(&r);         /* samples.png, denoise.png, loss.svg, the preview */
    if (o->bound) report_bound(o, &r.net, &r.s, r.train, r.n_train, r.C, r.H, r.W, &r.aux);
    if (o->ode_nll) report_ode_nll(o, &r.net, &r.s, r.train, r.n_train, r.C, r.H, r.W, &r.aux);
    if (o->eval) report_eval(o, &r.snet, &r.s, &r.set, r.C, r.H, r.W);
    printf("pictures: %s/samples.png denoise.png denoise.gif%s%s\n", o->d.out,
           r.log.n ? " loss.svg" : "", o->bound ? " bound_terms.svg" : "");
    return cli_exit_status(end_run(&r));
}
