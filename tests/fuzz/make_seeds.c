/* make_seeds.c: the fuzz targets' seed corpora, made by the project's own writers.
 *   make_seeds DIR   writes DIR/checkpoint/ (checkpoint_save of the fuzz model, with and
 *                    without settings, step 0 and later, a spare normal or not),
 *                    DIR/idx/ (built-in digits as IDX images and their labels, plain and
 *                    gzipped), DIR/cifar/ (two CIFAR-10 records from the digits, plain and
 *                    gzipped), DIR/gz/ (the gzipped files)
 * Pixels come from data.c's digits, quantized as the IDX and CIFAR formats store them; the
 * gzip files use stored DEFLATE blocks (the PNG writer's choice), CRC-32 from crc32.c.
 * Built and run by `make fuzz` with the ordinary compiler (no sanitizer needed).
 */
#define _POSIX_C_SOURCE 200809L   /* mkdir */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../checkpoint.h"
#include "../../crc32.h"
#include "../../data.h"
#include "fuzz_model.h"

static void folder(const char *path) {
    if (mkdir(path, 0777) != 0) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) die("make_seeds: cannot create %s", path);
    }
}

static void checkpoint_seeds(const char *dir) {
    char path[1100];
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

static void write_file(const char *dir, const char *name, const unsigned char *b, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) die("make_seeds: cannot write %s", path);
}

/* The gzip file (RFC 1952) of b: a 10-byte header, stored DEFLATE blocks of at most 65535
 * bytes, then CRC-32 and length, little-endian. Returns its size; out has room. */
static size_t gzip_stored(unsigned char *out, const unsigned char *b, size_t n) {
    static const unsigned char head[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
    size_t k = 0;
    memcpy(out, head, 10);
    k = 10;
    size_t at = 0;
    do {
        size_t len = n - at < 65535 ? n - at : 65535;
        out[k++] = at + len == n;                               /* BFINAL, BTYPE 00 */
        out[k++] = (unsigned char)len; out[k++] = (unsigned char)(len >> 8);
        out[k++] = (unsigned char)~len; out[k++] = (unsigned char)(~len >> 8);
        memcpy(out + k, b + at, len);
        k += len; at += len;
    } while (at < n);
    uint32_t crc = crc32_update(0, b, n);
    for (int i = 0; i < 4; i++) out[k++] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) out[k++] = (unsigned char)((uint32_t)n >> (8 * i));
    return k;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static unsigned char to_byte(real v) {       /* [−1, 1] -> 0..255, as the loaders invert */
    double k = (v + 1.0) * 127.5 + 0.5;
    return (unsigned char)(k < 0 ? 0 : k > 255 ? 255 : k);
}

#define SEED_N 3
#define SEED_SIDE 12
static void image_seeds(const char *idx_dir, const char *cifar_dir, const char *gz_dir) {
    Rng rng;
    rng_seed(&rng, 7);
    real x[SEED_N * 32 * 32];
    int label[SEED_N];
    static unsigned char file[SEED_N * 3073 + 64], gz[2 * (SEED_N * 3073 + 64)];
    /* IDX images: N, rows, cols, then the pixels */
    digits_sample(x, label, SEED_N, SEED_SIDE, SEED_SIDE, &rng);
    put_be32(file, 0x00000803u);
    put_be32(file + 4, SEED_N); put_be32(file + 8, SEED_SIDE); put_be32(file + 12, SEED_SIDE);
    size_t n = 16;
    for (int i = 0; i < SEED_N * SEED_SIDE * SEED_SIDE; i++) file[n++] = to_byte(x[i]);
    write_file(idx_dir, "images.idx", file, n);
    size_t g = gzip_stored(gz, file, n);
    write_file(idx_dir, "images.idx.gz", gz, g);
    write_file(gz_dir, "images.idx.gz", gz, g);
    /* IDX labels: N, then the digits */
    put_be32(file, 0x00000801u);
    put_be32(file + 4, SEED_N);
    for (int i = 0; i < SEED_N; i++) file[8 + i] = (unsigned char)label[i];
    write_file(idx_dir, "labels.idx", file, 8 + SEED_N);
    g = gzip_stored(gz, file, 8 + SEED_N);
    write_file(idx_dir, "labels.idx.gz", gz, g);
    /* CIFAR-10: records of a label and three 32x32 planes (the digit in all three) */
    digits_sample(x, label, SEED_N, 32, 32, &rng);
    n = 0;
    for (int i = 0; i < SEED_N; i++) {
        file[n++] = (unsigned char)label[i];
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 32 * 32; p++) file[n++] = to_byte(x[i * 32 * 32 + p]);
    }
    write_file(cifar_dir, "batch.bin", file, n);
    g = gzip_stored(gz, file, n);
    write_file(cifar_dir, "batch.bin.gz", gz, g);
    write_file(gz_dir, "batch.bin.gz", gz, g);
    g = gzip_stored(gz, (const unsigned char *)"", 0);
    write_file(gz_dir, "empty.gz", gz, g);
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: make_seeds DIR");
    char path[1024];
    folder(argv[1]);
    snprintf(path, sizeof path, "%s/checkpoint", argv[1]);
    folder(path);
    checkpoint_seeds(path);
    char idx[1024], cifar[1024], gz[1024];
    snprintf(idx, sizeof idx, "%s/idx", argv[1]);
    snprintf(cifar, sizeof cifar, "%s/cifar", argv[1]);
    snprintf(gz, sizeof gz, "%s/gz", argv[1]);
    folder(idx);
    folder(cifar);
    folder(gz);
    image_seeds(idx, cifar, gz);
    return 0;
}
