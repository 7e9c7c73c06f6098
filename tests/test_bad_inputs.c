/* test_bad_inputs.c: every row of BAD_INPUTS.md is run and must hold.
 *
 * BAD_INPUTS.md is a table of bad inputs (options, data files, checkpoints, output
 * paths): each row names a command, the exit code it must end with, and a piece of the
 * one-line message it must print. This test makes the fixture files the table refers to
 * (under build/bad/, listed in BAD_INPUTS.md), then runs every row's command with /bin/sh
 * from the repository root and checks both. A row is "| n | `command` | exit | `message` |"
 * whose command starts with "./", "DDPM_" (an environment setting), "cd build/bad" (a program
 * run in the fixtures' folder, for what it writes by default) or "timeout " (a run stopped
 * once it has said what matters). Every numbered row is run: a row that is not of that
 * form fails the test instead of being skipped, and the numbers must run 1, 2, 3, ...
 * The programs are the float build (`make test` builds them first).
 */
#define _POSIX_C_SOURCE 200809L   /* popen, symlink, mkdir */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "harness.h"
#include "../checkpoint.h"
#include "../crc32.h"

#define TABLE "BAD_INPUTS.md"
#define FIX "build/bad"
#define MIN_ROWS 40
#define TEST_ALARM 300

static void write_all(const char *name, const void *buf, size_t size) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", FIX, name);
    remove(path);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, size, f) != size || fclose(f) != 0) die("test: cannot write %s", path);
}

static void set_le32(unsigned char *b, uint32_t v) {
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void set_le64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void fix_crc(unsigned char *b, size_t n) { set_le32(b + n - 4, crc32_update(0, b, n - 4)); }

/* A copy of the checkpoint ck (n bytes) with integer setting `name` set to v, CRC fixed. */
static void with_setting(const char *out, const unsigned char *ck, size_t n, const char *name,
                         int64_t v) {
    unsigned char *b = xmalloc(n, "copy");
    memcpy(b, ck, n);
    size_t len = strlen(name);
    for (size_t at = 28; at + 4 + len + 9 <= n; at++)
        if (b[at] == len && !b[at + 1] && !b[at + 2] && !b[at + 3] &&
            memcmp(b + at + 4, name, len) == 0 && b[at + 4 + len] == CKPT_INT) {
            set_le64(b + at + 5 + len, (uint64_t)v);
            break;
        }
    fix_crc(b, n);
    write_all(out, b, n);
    free(b);
}

/* A little-endian u32 at b. */
static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The float checkpoint ck (n bytes) as the double build writes it: real size 8, every
 * stored value widened (exactly), size field and CRC-32 made right. The walk follows
 * checkpoint.h's format; *out_n receives the new size. */
static unsigned char *widened(const unsigned char *ck, size_t n, size_t *out_n) {
    unsigned char *b = xmalloc(2 * n + 64, "widened");
    size_t at = 28, o;
    uint32_t S = le32(ck + 24);
    for (uint32_t i = 0; i < S; i++) {               /* settings: name, type, value */
        at += 4 + le32(ck + at);
        unsigned type = ck[at++];
        at += type == CKPT_STRING ? 4 + le32(ck + at) : 8;
    }
    at += 8 + 32 + 8 + 1;                             /* step, Rng, spare, has_spare */
    memcpy(b, ck, at + 4);
    o = at + 4;
    uint32_t P = le32(ck + at);
    at += 4;
    for (uint32_t i = 0; i < P; i++) {               /* tensors: name, shape, 4 n values */
        size_t start = at;
        at += 4 + le32(ck + at);
        uint32_t ndim = le32(ck + at);
        size_t count = 1;
        for (uint32_t d = 0; d < ndim; d++) count *= le32(ck + at + 4 + 4 * d);
        at += 4 + 4 * ndim;
        memcpy(b + o, ck + start, at - start);
        o += at - start;
        for (size_t k = 0; k < 4 * count; k++, at += 4, o += 8) {
            uint32_t bits = le32(ck + at);
            float f;
            memcpy(&f, &bits, 4);
            double d = f;
            uint64_t wide;
            memcpy(&wide, &d, 8);
            set_le64(b + o, wide);
        }
    }
    o += 4;                                           /* the checksum */
    set_le32(b + 20, 8);
    set_le64(b + 12, (uint64_t)o);
    fix_crc(b, o);
    *out_n = o;
    return b;
}

/* The fixtures BAD_INPUTS.md lists. */
static void make_fixtures(void) {
    mkdir("build", 0777);
    mkdir(FIX, 0777);
    write_all("text.txt", "hello\n", 6);
    write_all("empty", "", 0);
    static const unsigned char trunc_idx[16] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28 };
    write_all("trunc.idx", trunc_idx, 16);
    static const unsigned char zero_idx[16] = { 0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28 };
    write_all("zero.idx", zero_idx, 16);
    static const unsigned char labels_idx[10] = { 0, 0, 8, 1, 0, 0, 0, 2, 1, 2 };
    write_all("labels.idx", labels_idx, 10);
    unsigned char *c100 = calloc(2 * 3074, 1);
    write_all("c100.bin", c100, 2 * 3074);
    free(c100);
    static const unsigned char bad_gz[17] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 'x', 'x', 'x', 'x', 'x', 'x' };
    write_all("bad.gz", bad_gz, 17);
    char folder[128];
    snprintf(folder, sizeof folder, "%s/folder", FIX);
    mkdir(folder, 0777);

    /* a real checkpoint of a tiny images run, and damaged copies of it */
    char ckpt[128];
    snprintf(ckpt, sizeof ckpt, "%s/tiny.ckpt", FIX);
    remove(ckpt);
    int rc = system("./images --size 8 --base 8 --mult 1 --res-blocks 1 --attn none --T 10 "
                    "--schedule cosine --steps 2 --batch 2 --warmup 0 --n-samples 1 "
                    "--out " FIX "/out --save " FIX "/tiny.ckpt > /dev/null 2>&1");
    size_t n = 0;
    unsigned char *ck = read_all(ckpt, &n);
    CHECK(rc == 0 && ck && n > 100, "the tiny checkpoint fixture was made");
    if (!ck) return;
    write_all("cut.ckpt", ck, 100);
    unsigned char *b = xmalloc(n + 10, "copy");
    memcpy(b, ck, n);
    b[n / 2] ^= 0x10;
    write_all("flipped.ckpt", b, n);
    memcpy(b, ck, n);
    set_le32(b + 8, 2);
    write_all("v2.ckpt", b, n);
    memcpy(b, ck, n);
    set_le64(b + 12, (uint64_t)1 << 40);
    write_all("huge.ckpt", b, n);
    memcpy(b, ck, n);
    memset(b + n, 0, 10);
    write_all("joined.ckpt", b, n + 10);
    free(b);
    with_setting("base1e8.ckpt", ck, n, "base", 100000000);
    with_setting("hw1e8.ckpt", ck, n, "H", 100000000);
    with_setting("T1e8.ckpt", ck, n, "T", 100000000);
    with_setting("negC.ckpt", ck, n, "C", -1);
    size_t wide_n;
    unsigned char *wide = widened(ck, n, &wide_n);
    write_all("double.ckpt", wide, wide_n);
    free(wide);
    free(ck);

    /* an IDX file (4 images of 8x8) and a CIFAR-10 batch (2 records), and a checkpoint
     * trained 2 steps on each */
    unsigned char idx[16 + 4 * 64] = { 0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 8 };
    for (int i = 16; i < (int)sizeof idx; i++) idx[i] = (unsigned char)(i * 37);
    write_all("tiny8.idx", idx, sizeof idx);
    idx[100] ^= 1;                                    /* the same shape, one pixel else */
    write_all("tiny8b.idx", idx, sizeof idx);
    idx[100] ^= 1;
    unsigned char *cifar = xmalloc(2 * 3073, "cifar");
    for (int i = 0; i < 2 * 3073; i++) cifar[i] = (unsigned char)(i * 11);
    cifar[0] = 3;
    cifar[3073] = 7;
    write_all("tiny.bin", cifar, 2 * 3073);
    free(cifar);
    CHECK(system("./images --size 8 --base 8 --mult 1 --res-blocks 1 --attn none --T 10 "
                 "--schedule cosine --steps 2 --batch 2 --warmup 0 --n-samples 1 --cond "
                 "--out " FIX "/out --save " FIX "/cond.ckpt > /dev/null 2>&1") == 0,
          "the class-conditional checkpoint fixture was made (label dropout 0.1)");
    static const char *const trained[2][2] = { { "idx", "tiny8.idx" }, { "cifar", "tiny.bin" } };
    for (int k = 0; k < 2; k++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "./images --data %s --file " FIX "/%s --base 8 --mult 1 "
                 "--res-blocks 1 --attn none --T 10 --schedule cosine --steps 2 --batch 2 "
                 "--warmup 0 --n-samples 1 --out " FIX "/out --save " FIX "/%s.ckpt > /dev/null "
                 "2>&1", trained[k][0], trained[k][1], trained[k][0]);
        CHECK(system(cmd) == 0, "the %s checkpoint fixture was made", trained[k][0]);
    }

    char link[128];
    snprintf(link, sizeof link, "%s/link.ckpt", FIX);
    remove(link);
    if (symlink("tiny.ckpt", link) != 0) CHECK(0, "symlink: %s", strerror(errno));
}

/* The text between the first two backticks of cell, into out. 0 if there are none. */
static int backticked(const char *cell, char *out, size_t len) {
    const char *a = strchr(cell, '`');
    const char *b = a ? strchr(a + 1, '`') : NULL;
    if (!b || (size_t)(b - a - 1) >= len) return 0;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return 1;
}

int main(void) {
    alarm(TEST_ALARM);
    make_fixtures();
    size_t size;
    char *table = (char *)read_all(TABLE, &size);
    CHECK(table != NULL, "%s is readable (run from the repository root)", TABLE);
    if (!table) return test_summary("test_bad_inputs");
    int rows = 0;
    for (char *line = strtok(table, "\n"); line; line = strtok(NULL, "\n")) {
        /* | n | `command` | exit | `message` | */
        if (line[0] != '|') continue;
        char *cells[5] = { 0 };
        int nc = 0;
        for (char *p = line; *p && nc < 5; p++)
            if (*p == '|') { *p = '\0'; cells[nc++] = p + 1; }
        /* a numbered row ("| 12 |") is a case: it must be well formed and run, in order;
         * the other table lines (headers, separators, the fixtures) are skipped */
        char *end = NULL;
        long number = nc >= 1 ? strtol(cells[0], &end, 10) : 0;
        while (end && *end == ' ') end++;
        if (nc < 1 || end == cells[0] || !end || *end != '\0' || number < 1) continue;
        char cmd[600], msg[400];
        if (nc < 5 || !backticked(cells[1], cmd, sizeof cmd) ||
            !backticked(cells[3], msg, sizeof msg) ||
            (strncmp(cmd, "./", 2) != 0 && strncmp(cmd, "DDPM_", 5) != 0 &&
             strncmp(cmd, "cd build/bad", 12) != 0 && strncmp(cmd, "timeout ", 8) != 0)) {
            CHECK(0, "row %ld: not a `command` starting with ./, DDPM_, cd build/bad or timeout, "
                  "an exit code and a `message`: it would not be run", number);
            rows++;
            continue;
        }
        CHECK(number == rows + 1, "row %ld follows row %d (rows are numbered in order)", number, rows);
        int want = atoi(cells[2]);
        char full[700];
        snprintf(full, sizeof full, "%s 2>&1", cmd);
        fflush(NULL);
        FILE *p = popen(full, "r");
        static char out[1 << 16];
        size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
        out[got] = '\0';
        while (p && fgetc(p) != EOF) {}       /* drain the rest */
        int status = p ? pclose(p) : -1;
        int code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        CHECK(code == want && strstr(out, msg),
              "row %d `%s`: exit %d (want %d), message %s: %.300s", rows + 1, cmd, code, want,
              strstr(out, msg) ? "found" : "NOT found", out);
        rows++;
    }
    CHECK(rows >= MIN_ROWS, "%s has %d rows (at least %d)", TABLE, rows, MIN_ROWS);
    printf("test_bad_inputs: %d rows of %s run\n", rows, TABLE);
    free(table);
    return test_summary("test_bad_inputs");
}
