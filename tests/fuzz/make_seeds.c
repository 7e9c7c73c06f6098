/* make_seeds.c: the fuzz targets' seed corpora, made by the project's own writers.
 *   make_seeds DIR   writes DIR/checkpoint/ (checkpoint_save of the fuzz model, with and
 *                    without settings, step 0 and later, a spare normal or not)
 * Built and run by `make fuzz` with the ordinary compiler (no sanitizer needed).
 */
#define _POSIX_C_SOURCE 200809L   /* mkdir */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../checkpoint.h"
#include "fuzz_model.h"

static void folder(const char *path) {
    if (mkdir(path, 0777) != 0) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) die("make_seeds: cannot create %s", path);
    }
}

static void checkpoint_seeds(const char *dir) {
    char path[1024];
    for (int v = 0; v < 3; v++) {
        ParamSet ps;
        fuzz_model(&ps);
        Rng rng;
        rng_seed(&rng, (uint64_t)v + 1);
        rng_fill_normal(&rng, ps.w, ps.total);
        rng_fill_normal(&rng, ps.ema, ps.total);
        rng_fill_normal(&rng, ps.m, ps.total);
        for (size_t i = 0; i < ps.total; i++) ps.v[i] = ps.m[i] * ps.m[i];
        ps.step = 100 * v;
        if (v == 1) rng_normal(&rng);                 /* a spare normal waiting */
        CkptHeader h;
        ckpt_header_init(&h);
        if (v > 0) {
            ckpt_set_string(&h, "model", "fuzz");
            ckpt_set_int(&h, "T", 50);
            ckpt_set_double(&h, "lr", 1e-3);
        }
        if (v == 2) ckpt_set_string(&h, "schedule", "cosine");
        snprintf(path, sizeof path, "%s/seed%d.ckpt", dir, v);
        if (checkpoint_save(path, &h, &ps, &rng) != 0) die("make_seeds: %s", path);
        params_free(&ps);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: make_seeds DIR");
    char path[1024];
    folder(argv[1]);
    snprintf(path, sizeof path, "%s/checkpoint", argv[1]);
    folder(path);
    checkpoint_seeds(path);
    return 0;
}
