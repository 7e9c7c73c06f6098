/* unet_dump.c: one forward + backward of the default 1×28×28 U-Net with every weight
 * random and non-zero, written to a file, to compare two versions of unet.c.
 *   cc -std=c11 -ffp-contract=off -O3 -march=native dev/unet_dump.c unet.c tensor.c -o /tmp/dump -lm
 *   /tmp/dump a.bin; (other unet.c) /tmp/dump b.bin; /tmp/dump -cmp a.bin b.bin
 * Written: out (N, 1, 28, 28), dx (N, 1, 28, 28), then every gradient of the ParamSet.
 * -cmp prints the largest |a − b| / (max |a| of that block) per block, and whether the
 * files are bit-identical. */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../unet.h"

enum { N = 8 };

static void compare(const char *fa, const char *fb) {
    FILE *a = fopen(fa, "rb"), *b = fopen(fb, "rb");
    if (!a || !b) die("cannot open %s or %s", fa, fb);
    size_t na, nb, same = 1, blocks = 0;
    double worst = 0;
    while (fread(&na, sizeof na, 1, a) == 1 && fread(&nb, sizeof nb, 1, b) == 1) {
        if (na != nb) die("block sizes differ: %zu vs %zu", na, nb);
        real *x = xmalloc(na * sizeof(real), "a"), *y = xmalloc(na * sizeof(real), "b");
        if (fread(x, sizeof(real), na, a) != na || fread(y, sizeof(real), na, b) != na)
            die("short read");
        double mx = 0, md = 0;
        for (size_t i = 0; i < na; i++) {
            mx = fmax(mx, fabs((double)x[i]));
            md = fmax(md, fabs((double)x[i] - (double)y[i]));
        }
        if (memcmp(x, y, na * sizeof(real))) same = 0;
        double rel = mx > 0 ? md / mx : md;
        if (rel > worst) worst = rel;
        if (blocks < 2) printf("block %zu (%s): %zu numbers, max |a-b| / max|a| = %.3g\n",
                               blocks, blocks ? "dx" : "out", na, rel);
        blocks++;
        free(x); free(y);
    }
    printf("%zu blocks, worst relative difference %.3g, %s\n", blocks, worst,
           same ? "bit-identical" : "not bit-identical");
}

static void put(FILE *f, const real *x, size_t n) {
    fwrite(&n, sizeof n, 1, f);
    fwrite(x, sizeof(real), n, f);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "-cmp")) { compare(argv[2], argv[3]); return 0; }
    if (argc != 2) die("usage: unet_dump out.bin | unet_dump -cmp a.bin b.bin");
    UnetConfig cfg = unet_default_config(1, 28, 28);
    cfg.max_batch = N;
    Rng rng; rng_seed(&rng, 7);
    ParamSet ps; params_init(&ps);
    Unet u;
    if (unet_init(&u, &cfg, &ps, &rng)) return 1;
    for (int i = 0; i < ps.count; i++) {          /* every weight random, none zero */
        const Param *p = &ps.p[i];
        real *w = ps.w + p->offset;
        if (p->ndim == 1) for (size_t j = 0; j < p->n; j++)
            w[j] = (real)((strstr(p->name, "gamma") ? 1.0 : 0.0) + 0.3 * (2 * rng_uniform(&rng) - 1));
        else init_uniform(w, p->n, p->ndim == 4 ? (int)(p->n / (size_t)p->shape[0]) : p->shape[0], &rng);
    }
    size_t n = (size_t)N * 28 * 28;
    real *x = xmalloc(n * sizeof(real), "x"), *out = xmalloc(n * sizeof(real), "out");
    real *dout = xmalloc(n * sizeof(real), "dout"), *dx = xmalloc(n * sizeof(real), "dx");
    rng_fill_normal(&rng, x, n); rng_fill_normal(&rng, dout, n);
    int t[N];
    for (int i = 0; i < N; i++) t[i] = 1 + rng_int(&rng, 1000);
    params_zero_grad(&ps);
    unet_forward(&u, out, x, t, NULL, N);
    unet_backward(&u, dx, dout, N);
    FILE *f = fopen(argv[1], "wb");
    if (!f) die("cannot write %s", argv[1]);
    put(f, out, n); put(f, dx, n);
    for (int i = 0; i < ps.count; i++) put(f, ps.g + ps.p[i].offset, ps.p[i].n);
    fclose(f);
    unet_free(&u); params_free(&ps);
    free(x); free(out); free(dout); free(dx);
    return 0;
}
