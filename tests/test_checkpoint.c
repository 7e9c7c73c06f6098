/* test_checkpoint.c: save/load of models and training state (checkpoint.h).
 *   - CRC-32 is the standard one (check value of "123456789")
 *   - round trip bit for bit: w, ema, m, v, step, Rng state, every header setting
 *   - the file matches the byte layout documented in checkpoint.h, walked here by an
 *     independent reader; the same file rewritten with float32 values loads (conversion)
 *   - a flipped byte anywhere is rejected (as "corrupted" past the fixed part), a file cut
 *     at any of several points is rejected as "truncated at byte N", extra bytes, wrong
 *     magic and an unsupported version are rejected; nothing is changed by a failed load
 *   - a model of another shape, other names or another tensor count is rejected by name
 *   - a failed save (no directory, full disk) leaves an existing checkpoint byte for byte
 *     intact; a taken temporary name is stepped around; a folder, a text file, a symbolic
 *     link or a device at the path is refused and left as it was; a real-size save onto a
 *     full disk fails in bounded time (a child process with an alarm)
 *   - RESUME: 20 steps, save, free everything, rebuild from the header, load, 20 more
 *     steps gives bit for bit the weights, EMA, Adam moments, step and Rng of 40 steps
 * Built with real = double. Files go to /tmp (names carry the process id) and are removed.
 * The POSIX calls (getpid, mkdir, symlink, rmdir, fork) are only in this test, for the failure
 * cases of saving; checkpoint.c itself is plain C11.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crc_bitwise.h"
#include "files.h"
#include "harness.h"
#include "../checkpoint.h"
#include "../io.h"
#include "../ddpm.h"
#include "../mlp.h"
#include "../schedule.h"

#define RESUME_STEPS_BEFORE 20   /* steps before the save */
#define RESUME_STEPS_AFTER 20    /* steps after the load: 40 in all, as the straight run */
#define RESUME_BATCH 64          /* batch of fixed standard-normal 2D points */
#define EMA_DECAY 0.99           /* fast enough that the EMA differs visibly from w */
#define ADAM_LR 1e-3

static char dir_prefix[128];     /* "/tmp/test_checkpoint_<pid>" */

static void path_of(char *out, size_t len, const char *name) {
    snprintf(out, len, "%s_%s", dir_prefix, name);
}

/* ---------------------------------------------------------------------------------------
 * Small helpers: files as byte arrays, an independent CRC-32 (bit by bit, no table). */

static void write_all(const char *path, const unsigned char *buf, size_t size) {
    remove(path);   /* a new file: rewriting one in place makes ext4 flush it (slow) */
    FILE *f = fopen(path, "wb");
    if (!f) die("test: cannot write %s", path);
    if (fwrite(buf, 1, size, f) != size || fclose(f) != 0) die("test: writing %s failed", path);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t le64(const unsigned char *b) { return le32(b) | (uint64_t)le32(b + 4) << 32; }
static void set_le32(unsigned char *b, uint32_t v) {
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void set_le64(unsigned char *b, uint64_t v) {
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void fix_crc(unsigned char *buf, size_t size) {
    set_le32(buf + size - 4, crc_bitwise(buf, size - 4));
}

/* ---------------------------------------------------------------------------------------
 * A small ParamSet of named tensors (no model needed), filled with random state. */

typedef struct { const char *name; int ndim, shape[4]; } TensorSpec;
static const TensorSpec SMALL[] = {
    { "a.w", 2, { 3, 4, 0, 0 } }, { "a.b", 1, { 4, 0, 0, 0 } }, { "conv", 4, { 2, 3, 2, 2 } },
};
#define N_SMALL 3

static void build_ps(ParamSet *ps, const TensorSpec *spec, int count) {
    params_init(ps);
    for (int i = 0; i < count; i++) {
        const TensorSpec *t = &spec[i];
        params_add(ps, NULL, NULL, t->name, t->ndim, t->shape[0], t->shape[1], t->shape[2],
                   t->shape[3]);
    }
    params_alloc(ps);
}

static void fill_ps(ParamSet *ps, Rng *r, long step) {
    rng_fill_normal(r, ps->w, ps->total);
    rng_fill_normal(r, ps->ema, ps->total);
    rng_fill_normal(r, ps->m, ps->total);
    for (size_t i = 0; i < ps->total; i++) ps->v[i] = (real)fabs(rng_normal(r));
    ps->step = step;
}

/* A copy of everything a load may write, to check that a failed load wrote nothing. */
typedef struct { real *w, *ema, *m, *v; size_t total; long step; Rng rng; } Snapshot;

static real *dup_reals(const real *x, size_t n) {
    real *c = xmalloc(n * sizeof(real), "snapshot");
    memcpy(c, x, n * sizeof(real));
    return c;
}
static Snapshot snap(const ParamSet *ps, const Rng *rng) {
    Snapshot s = { dup_reals(ps->w, ps->total), dup_reals(ps->ema, ps->total),
                   dup_reals(ps->m, ps->total), dup_reals(ps->v, ps->total), ps->total,
                   ps->step, *rng };
    return s;
}
static int same_rng(const Rng *a, const Rng *b) {
    return memcmp(a->s, b->s, sizeof a->s) == 0 && memcmp(&a->spare, &b->spare, sizeof a->spare) == 0 &&
           a->has_spare == b->has_spare;
}
static int same_as_snapshot(const Snapshot *s, const ParamSet *ps, const Rng *rng) {
    size_t bytes = s->total * sizeof(real);
    return s->total == ps->total && memcmp(s->w, ps->w, bytes) == 0 &&
           memcmp(s->ema, ps->ema, bytes) == 0 && memcmp(s->m, ps->m, bytes) == 0 &&
           memcmp(s->v, ps->v, bytes) == 0 && s->step == ps->step && same_rng(&s->rng, rng);
}
static void snap_free(Snapshot *s) { free(s->w); free(s->ema); free(s->m); free(s->v); }

static int same_setting(const CkptSetting *a, const CkptSetting *b) {
    return strcmp(a->name, b->name) == 0 && a->type == b->type &&
           (a->type != CKPT_INT || a->i == b->i) &&
           (a->type != CKPT_DOUBLE || memcmp(&a->d, &b->d, sizeof a->d) == 0) &&
           (a->type != CKPT_STRING || strcmp(a->s, b->s) == 0);
}
static int same_header(const CkptHeader *a, const CkptHeader *b) {
    if (a->count != b->count) return 0;
    for (int i = 0; i < a->count; i++)
        if (!same_setting(&a->set[i], &b->set[i])) return 0;
    return 1;
}

/* A header with every kind of value, edge cases included. */
static void make_header(CkptHeader *h) {
    ckpt_header_init(h);
    ckpt_set_string(h, "model", "small");
    ckpt_set_int(h, "T", 1000);
    ckpt_set_int(h, "T", 50);                  /* replaced in place, not added */
    ckpt_set_int(h, "int.min", INT64_MIN);
    ckpt_set_int(h, "int.max", INT64_MAX);
    ckpt_set_int(h, "int.neg", -1);
    ckpt_set_double(h, "data.mean0", 7.5);
    ckpt_set_double(h, "neg.zero", -0.0);
    ckpt_set_double(h, "subnormal", 4.9406564584124654e-324);
    ckpt_set_double(h, "inf", -INFINITY);
    ckpt_set_double(h, "nan", NAN);
    ckpt_set_string(h, "empty", "");
    ckpt_set_string(h, "schedule", "linear");
    ckpt_set_string(h, "greek", "ᾱ_T = Π α_t");
    char longest[CKPT_STRING_LEN];
    memset(longest, 'x', CKPT_STRING_LEN - 1);
    longest[CKPT_STRING_LEN - 1] = '\0';
    ckpt_set_string(h, "longest", longest);
}

/* A saved small checkpoint, its state kept for comparisons. */
typedef struct { ParamSet ps; Rng rng; CkptHeader h; char path[256]; } Saved;

static void make_saved(Saved *sv, const char *name) {
    Rng fill;
    rng_seed(&fill, 5);
    build_ps(&sv->ps, SMALL, N_SMALL);
    fill_ps(&sv->ps, &fill, 123);
    rng_seed(&sv->rng, 77);
    rng_normal(&sv->rng);              /* leaves a spare normal waiting: has_spare = 1 */
    make_header(&sv->h);
    path_of(sv->path, sizeof sv->path, name);
    if (checkpoint_save(sv->path, &sv->h, &sv->ps, &sv->rng) != 0) die("test: save failed");
}

/* ---------------------------------------------------------------------------------------
 * Tests */

static void test_header_api(void) {
    CkptHeader h;
    make_header(&h);
    int64_t i = 0;
    double d = 0;
    const char *s = NULL;
    CHECK(h.count == 14, "T set twice is one setting: %d settings", h.count);
    CHECK(ckpt_get_int(&h, "T", &i) == 0 && i == 50, "get T = 50 (the later value)");
    CHECK(ckpt_get_double(&h, "data.mean0", &d) == 0 && d == 7.5, "get data.mean0");
    CHECK(ckpt_get_string(&h, "schedule", &s) == 0 && strcmp(s, "linear") == 0, "get schedule");
    i = 99;
    CHECK(ckpt_get_int(&h, "missing", &i) == -1 && i == 99, "missing setting: -1, value untouched");
    CHECK(ckpt_get_int(&h, "schedule", &i) == -1, "a string is not an int");
    CHECK(ckpt_get_double(&h, "T", &d) == -1, "an int is not a double");
    ckpt_set_string(&h, "T", "fifty");        /* a new type replaces the old one */
    CHECK(ckpt_get_string(&h, "T", &s) == 0 && strcmp(s, "fifty") == 0 &&
          ckpt_get_int(&h, "T", &i) == -1, "type replaced");
}

static void test_round_trip(void) {
    Saved sv;
    make_saved(&sv, "roundtrip.ckpt");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sv.path, (long)getpid());
    CHECK(!file_exists(tmp), "no temporary file left after a save");

    ParamSet ps;
    build_ps(&ps, SMALL, N_SMALL);            /* zeros, step 0 */
    Rng rng;
    rng_seed(&rng, 1);
    CkptHeader h, h_only;
    char err[1024];
    int rc = checkpoint_load_err(sv.path, &h, &ps, &rng, err, sizeof err);
    CHECK(rc == 0 && err[0] == '\0', "load: %s", err);
    size_t bytes = ps.total * sizeof(real);
    CHECK(memcmp(ps.w, sv.ps.w, bytes) == 0, "w bit for bit");
    CHECK(memcmp(ps.ema, sv.ps.ema, bytes) == 0, "ema bit for bit");
    CHECK(memcmp(ps.m, sv.ps.m, bytes) == 0, "m bit for bit");
    CHECK(memcmp(ps.v, sv.ps.v, bytes) == 0, "v bit for bit");
    CHECK(ps.step == 123, "step %ld", ps.step);
    CHECK(same_rng(&rng, &sv.rng) && rng.has_spare == 1, "Rng state, spare normal included");
    CHECK(rng_normal(&rng) == rng_normal(&sv.rng) && rng_u64(&rng) == rng_u64(&sv.rng),
          "the restored Rng continues the same sequence");
    CHECK(same_header(&h, &sv.h), "every header setting bit for bit");
    CHECK(checkpoint_read_header_err(sv.path, &h_only, err, sizeof err) == 0 &&
          same_header(&h_only, &sv.h), "read_header alone: %s", err);

    /* loading with h and rng NULL restores the ParamSet only */
    memset(ps.w, 0, bytes);
    CHECK(checkpoint_load_err(sv.path, NULL, &ps, NULL, err, sizeof err) == 0 &&
          memcmp(ps.w, sv.ps.w, bytes) == 0, "load with NULL header and Rng: %s", err);

    /* a second save replaces the first */
    ps.w[0] += 1;
    ps.step = 124;
    CHECK(checkpoint_save(sv.path, &sv.h, &ps, &rng) == 0, "second save");
    ParamSet ps2;
    build_ps(&ps2, SMALL, N_SMALL);
    CHECK(checkpoint_load(sv.path, NULL, &ps2, NULL) == 0 && ps2.w[0] == ps.w[0] &&
          ps2.step == 124, "the second save replaced the first");
    params_free(&ps2);
    params_free(&ps);
    params_free(&sv.ps);
    remove(sv.path);
}

/* Walks the file with the layout of checkpoint.h, independently of checkpoint.c, and writes
 * the same checkpoint with float32 values to f32_path. */
static void test_layout(void) {
    Saved sv;
    make_saved(&sv, "layout.ckpt");
    size_t size;
    unsigned char *b = read_all(sv.path, &size);
    CHECK(b != NULL, "read back");
    if (!b) return;
    int ok = memcmp(b, "DDPMCKPT", 8) == 0 && le32(b + 8) == 1 && le64(b + 12) == size &&
             le32(b + 20) == sizeof(real) && le32(b + 24) == (uint32_t)sv.h.count;
    CHECK(ok, "fixed part: magic, version 1, size %zu, real size, settings count", size);
    size_t pos = 28;
    for (int i = 0; i < sv.h.count && ok; i++) {
        const CkptSetting *s = &sv.h.set[i];
        uint32_t len = le32(b + pos);
        ok = len == strlen(s->name) && memcmp(b + pos + 4, s->name, len) == 0 &&
             b[pos + 4 + len] == (unsigned)s->type;
        pos += 4 + len + 1;
        if (s->type == CKPT_INT) { ok = ok && (int64_t)le64(b + pos) == s->i; pos += 8; }
        else if (s->type == CKPT_DOUBLE) {
            uint64_t bits;
            memcpy(&bits, &s->d, 8);
            ok = ok && le64(b + pos) == bits;
            pos += 8;
        } else {
            uint32_t sl = le32(b + pos);
            ok = ok && sl == strlen(s->s) && memcmp(b + pos + 4, s->s, sl) == 0;
            pos += 4 + sl;
        }
        CHECK(ok, "setting %d (%s) at byte %zu as documented", i, s->name, pos);
    }
    CHECK(le64(b + pos) == 123, "step");
    pos += 8;
    for (int k = 0; k < 4; k++, pos += 8) CHECK(le64(b + pos) == sv.rng.s[k], "Rng s[%d]", k);
    uint64_t spare_bits;
    memcpy(&spare_bits, &sv.rng.spare, 8);
    CHECK(le64(b + pos) == spare_bits && b[pos + 8] == 1, "Rng spare and has_spare");
    pos += 9;
    CHECK(le32(b + pos) == N_SMALL, "tensor count");
    pos += 4;

    /* the float32 copy: same fields, every value rounded to float */
    size_t total = sv.ps.total;
    unsigned char *f32 = xmalloc(size, "float32 copy");
    size_t out = pos;
    memcpy(f32, b, pos);
    set_le32(f32 + 20, 4);
    for (int i = 0; i < N_SMALL; i++) {
        const Param *p = &sv.ps.p[i];
        uint32_t len = le32(b + pos);
        int same = len == strlen(p->name) && memcmp(b + pos + 4, p->name, len) == 0 &&
                   le32(b + pos + 4 + len) == (uint32_t)p->ndim;
        size_t head = 4 + len + 4 + 4 * (size_t)p->ndim;
        for (int d = 0; d < p->ndim && same; d++)
            same = le32(b + pos + 4 + len + 4 + 4 * d) == (uint32_t)p->shape[d];
        memcpy(f32 + out, b + pos, head);
        pos += head;
        out += head;
        const real *arrays[4] = { sv.ps.w, sv.ps.ema, sv.ps.m, sv.ps.v };
        for (int a = 0; a < 4; a++)
            for (size_t k = 0; k < p->n; k++, pos += 8, out += 4) {
                double d = (double)arrays[a][p->offset + k];
                uint64_t bits;
                memcpy(&bits, &d, 8);
                same = same && le64(b + pos) == bits;
                float f = (float)d;
                uint32_t fb;
                memcpy(&fb, &f, 4);
                set_le32(f32 + out, fb);
            }
        CHECK(same, "tensor %s: name, shape, then w, ema, m, v as documented", p->name);
    }
    CHECK(pos + 4 == size, "the checksum is the last 4 bytes (%zu + 4 vs %zu)", pos, size);
    CHECK(le32(b + size - 4) == crc_bitwise(b, size - 4), "CRC-32 of all bytes before it");
    out += 4;
    set_le64(f32 + 12, out);
    fix_crc(f32, out);
    char f32_path[256];
    path_of(f32_path, sizeof f32_path, "layout_f32.ckpt");
    write_all(f32_path, f32, out);

    ParamSet ps;
    build_ps(&ps, SMALL, N_SMALL);
    char err[1024];
    CHECK(checkpoint_load_err(f32_path, NULL, &ps, NULL, err, sizeof err) == 0,
          "float32 file loads: %s", err);
    int converted = 1;
    for (size_t k = 0; k < total; k++)
        converted = converted && ps.w[k] == (real)(float)sv.ps.w[k] &&
                    ps.v[k] == (real)(float)sv.ps.v[k];
    CHECK(converted && ps.step == 123, "float32 values converted to the build's real");
    params_free(&ps);
    free(f32);
    free(b);
    params_free(&sv.ps);
    remove(sv.path);
    remove(f32_path);
}

/* 1 if loading `path` into a filled ParamSet, Rng and header fails with `needle` (if not
 * NULL) in a one-line message that names the file, and changes none of them; else 0 and
 * the reason in why. */
static int load_rejected(const char *path, const char *needle, char *why, size_t why_len) {
    ParamSet ps;
    build_ps(&ps, SMALL, N_SMALL);
    Rng fill, rng;
    rng_seed(&fill, 9);
    fill_ps(&ps, &fill, 7);
    rng_seed(&rng, 3);
    Snapshot before = snap(&ps, &rng);
    CkptHeader h;
    ckpt_header_init(&h);
    ckpt_set_int(&h, "untouched", 1);
    char err[1024] = "not set";
    int rc = checkpoint_load_err(path, &h, &ps, &rng, err, sizeof err);
    int ok = 0;
    if (rc != -1) snprintf(why, why_len, "accepted");
    else if (needle && !strstr(err, needle))
        snprintf(why, why_len, "message \"%s\" lacks \"%s\"", err, needle);
    else if (strstr(err, path) != err || strchr(err, '\n'))
        snprintf(why, why_len, "message \"%s\" is not one line naming the file", err);
    else if (!same_as_snapshot(&before, &ps, &rng) || h.count != 1)
        snprintf(why, why_len, "the failed load changed the model, Rng or header");
    else ok = 1;
    snap_free(&before);
    params_free(&ps);
    return ok;
}

static void expect_rejected(const char *path, const char *needle, const char *what) {
    char why[1400] = "";
    CHECK(load_rejected(path, needle, why, sizeof why), "%s: %s", what, why);
}

static void test_corruption(void) {
    Saved sv;
    make_saved(&sv, "corrupt.ckpt");
    size_t size;
    unsigned char *good = read_all(sv.path, &size);
    unsigned char *bad = xmalloc(size + 1, "bad copy");
    char bad_path[256], what[64];
    path_of(bad_path, sizeof bad_path, "bad.ckpt");

    /* a flipped bit in every byte: past the fixed part (magic, version, size) it can only
     * be seen by the checksum; before it, by the field it changes */
    size_t wrong = 0;
    char why[1400] = "", first_why[1450] = "";
    for (size_t at = 0; at < size; at++) {
        memcpy(bad, good, size);
        bad[at] ^= (unsigned char)(1u << (at % 8));
        write_all(bad_path, bad, size);
        if (!load_rejected(bad_path, at >= 20 ? "corrupted" : NULL, why, sizeof why) && !wrong++)
            snprintf(first_why, sizeof first_why, "byte %zu: %s", at, why);
    }
    CHECK(wrong == 0, "a flipped bit in every one of %zu bytes is rejected: %zu were not, "
          "first %s", size, wrong, first_why);

    /* truncated at several points, the empty file included */
    const size_t cuts[] = { 0, 1, 7, 8, 11, 12, 19, 20, 27, 28, 40, size / 2, size - 5,
                            size - 4, size - 1 };
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        write_all(bad_path, good, cuts[c]);
        char needle[64];
        snprintf(needle, sizeof needle, "truncated at byte %zu", cuts[c]);
        snprintf(what, sizeof what, "cut at byte %zu", cuts[c]);
        expect_rejected(bad_path, needle, what);
    }

    /* a byte too many */
    memcpy(bad, good, size);
    bad[size] = 0;
    write_all(bad_path, bad, size + 1);
    expect_rejected(bad_path, "1 bytes after the end", "one extra byte");

    /* wrong magic: another file, and a checkpoint with a changed first byte */
    write_all(bad_path, (const unsigned char *)"just some text that is long enough\n", 35);
    expect_rejected(bad_path, "not a DDPM checkpoint", "a text file");
    memcpy(bad, good, size);
    bad[0] = 'X';
    fix_crc(bad, size);
    write_all(bad_path, bad, size);
    expect_rejected(bad_path, "not a DDPM checkpoint", "wrong magic");

    /* unsupported version, with a correct checksum */
    memcpy(bad, good, size);
    set_le32(bad + 8, 2);
    fix_crc(bad, size);
    write_all(bad_path, bad, size);
    expect_rejected(bad_path, "version 2 is not supported (this build reads version 1)",
                    "version 2");

    /* a field out of range with a correct checksum: real size 3 */
    memcpy(bad, good, size);
    set_le32(bad + 20, 3);
    fix_crc(bad, size);
    write_all(bad_path, bad, size);
    expect_rejected(bad_path, "malformed: real size 3", "real size 3");

    /* a file that does not exist */
    remove(bad_path);
    expect_rejected(bad_path, "cannot open", "missing file");

    /* read_header refuses a bad file too, and leaves the header alone */
    memcpy(bad, good, size);
    bad[size / 2] ^= 0x40;
    write_all(bad_path, bad, size);
    CkptHeader h;
    ckpt_header_init(&h);
    char err[1024];
    CHECK(checkpoint_read_header_err(bad_path, &h, err, sizeof err) == -1 &&
          strstr(err, "corrupted") && h.count == 0, "read_header of a corrupted file: %s", err);

    free(good);
    free(bad);
    params_free(&sv.ps);
    remove(sv.path);
    remove(bad_path);
}

/* Loads a checkpoint of the 3-tensor SMALL set into other models. */
static void expect_model_rejected(const char *path, const TensorSpec *spec, int count,
                                  const char *needle, const char *what) {
    ParamSet ps;
    build_ps(&ps, spec, count);
    Rng fill, rng;
    rng_seed(&fill, 9);
    fill_ps(&ps, &fill, 7);
    rng_seed(&rng, 3);
    Snapshot before = snap(&ps, &rng);
    char err[1024] = "";
    CHECK(checkpoint_load_err(path, NULL, &ps, &rng, err, sizeof err) == -1, "%s: rejected", what);
    CHECK(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, err, needle);
    CHECK(same_as_snapshot(&before, &ps, &rng), "%s: model unchanged", what);
    snap_free(&before);
    params_free(&ps);
}

static void test_model_mismatch(void) {
    Saved sv;
    make_saved(&sv, "mismatch.ckpt");
    const TensorSpec shape[] = {
        { "a.w", 2, { 3, 4, 0, 0 } }, { "a.b", 1, { 5, 0, 0, 0 } }, { "conv", 4, { 2, 3, 2, 2 } },
    };
    expect_model_rejected(sv.path, shape, 3, "a.b: file has (4), model has (5): build the model "
                          "with the settings it was saved with", "another shape");
    const TensorSpec ndim[] = {
        { "a.w", 1, { 12, 0, 0, 0 } }, { "a.b", 1, { 4, 0, 0, 0 } }, { "conv", 4, { 2, 3, 2, 2 } },
    };
    expect_model_rejected(sv.path, ndim, 3, "a.w: file has (3, 4), model has (12)", "another ndim");
    const TensorSpec name[] = {
        { "a.w", 2, { 3, 4, 0, 0 } }, { "a.bias", 1, { 4, 0, 0, 0 } }, { "conv", 4, { 2, 3, 2, 2 } },
    };
    expect_model_rejected(sv.path, name, 3, "tensor 1 is \"a.b\" in the file but \"a.bias\" "
                          "in the model", "another name");
    expect_model_rejected(sv.path, SMALL, 2, "the file has 3 tensors, the model 2", "fewer tensors");

    /* the default MLP saved with hidden 128, loaded into hidden 64 */
    MlpConfig cfg = mlp_default_config(2, 4);
    Mlp m;
    ParamSet ps;
    Rng r;
    rng_seed(&r, 1);
    params_init(&ps);
    mlp_init(&m, &cfg, &ps, &r);
    char path[256], err[1024] = "";
    path_of(path, sizeof path, "mlp128.ckpt");
    CkptHeader h;
    ckpt_header_init(&h);
    ckpt_set_int(&h, "hidden", 128);
    CHECK(checkpoint_save(path, &h, &ps, &r) == 0, "save MLP");
    mlp_free(&m);
    params_free(&ps);
    cfg.hidden = 64;
    params_init(&ps);
    mlp_init(&m, &cfg, &ps, &r);
    Snapshot before = snap(&ps, &r);
    CHECK(checkpoint_load_err(path, NULL, &ps, &r, err, sizeof err) == -1 &&
          strstr(err, "fc0.w: file has (34, 128), model has (34, 64)"), "hidden 64: %s", err);
    CHECK(same_as_snapshot(&before, &ps, &r), "hidden 64: model unchanged");
    snap_free(&before);
    mlp_free(&m);
    params_free(&ps);
    params_free(&sv.ps);
    remove(path);
    remove(sv.path);
}

static void test_failed_save(void) {
    Saved sv;
    make_saved(&sv, "keep.ckpt");
    size_t size, size_after;
    unsigned char *before = read_all(sv.path, &size);
    char tmp[300], err[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sv.path, (long)getpid());
    sv.ps.w[0] += 1;   /* a different state, that must not reach the file */

    /* into a directory that does not exist */
    char nodir[256];
    path_of(nodir, sizeof nodir, "no_such_dir/x.ckpt");
    CHECK(checkpoint_save_err(nodir, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
          strstr(err, "cannot write") && strstr(err, "No such file"),
          "save into a missing directory: %s", err);

    /* the disk is full from the first byte: the save fails, the temporary is removed */
    io_fault_arm(IO_FAULT_FULL, 0);
    CHECK(checkpoint_save_err(sv.path, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
          strstr(err, "No space left") && strstr(err, "is unchanged"),
          "save onto a full disk: %s", err);
    io_fault_disarm();
    CHECK(!file_exists(tmp), "the failed temporary file was removed");

    unsigned char *after = read_all(sv.path, &size_after);
    CHECK(after && size_after == size && memcmp(before, after, size) == 0,
          "the existing checkpoint is byte for byte intact after failed saves");
    free(after);

    /* the temporary name is taken (say by another run): the save picks another one */
    CHECK(mkdir(tmp, 0700) == 0, "mkdir %s", tmp);
    CHECK(checkpoint_save_err(sv.path, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == 0,
          "save while its first temporary name is taken: %s", err);
    rmdir(tmp);
    char second[320];
    snprintf(second, sizeof second, "%s.1", tmp);
    CHECK(!file_exists(second), "the second temporary name is gone after the save");

    /* what is at the path is not a checkpoint: refused, left alone */
    char dirpath[256], text[256], link[256];
    path_of(dirpath, sizeof dirpath, "a_directory");
    CHECK(mkdir(dirpath, 0700) == 0, "mkdir %s", dirpath);
    CHECK(checkpoint_save_err(dirpath, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
          strstr(err, "is a folder"), "save onto a directory: %s", err);
    rmdir(dirpath);
    path_of(text, sizeof text, "notes.txt");
    write_all(text, (const unsigned char *)"my notes\n", 9);
    CHECK(checkpoint_save_err(text, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
          strstr(err, "is not a DDPM checkpoint"), "save onto a text file: %s", err);
    size_t tsize;
    unsigned char *tback = read_all(text, &tsize);
    CHECK(tback && tsize == 9 && memcmp(tback, "my notes\n", 9) == 0, "the text file is intact");
    free(tback);
    path_of(link, sizeof link, "link.ckpt");
    CHECK(symlink(sv.path, link) == 0, "symlink");
    CHECK(checkpoint_save_err(link, &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
          strstr(err, "symbolic link"), "save through a symbolic link: %s", err);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
    if (file_exists("/dev/null"))
        CHECK(checkpoint_save_err("/dev/null", &sv.h, &sv.ps, &sv.rng, err, sizeof err) == -1 &&
              strstr(err, "not a regular file"), "save onto a device: %s", err);
    CHECK(lstat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null is still a device");
    remove(link);
    remove(text);

    free(before);
    params_free(&sv.ps);
    remove(sv.path);
}

/* What a load reads: never more than the size field says (issue 15 finding 10: /dev/zero
 * was read without limit), a folder named as the cause, the memory entry point giving
 * the same answers as the file one. */
static void test_bounded_read(void) {
    Saved sv;
    make_saved(&sv, "bounded.ckpt");
    CkptHeader h;
    char err[1024];
    if (file_exists("/dev/zero"))
        CHECK(checkpoint_read_header_err("/dev/zero", &h, err, sizeof err) == -1 &&
              strstr(err, "not a DDPM checkpoint"), "/dev/zero: %s", err);
    char folder[256];
    path_of(folder, sizeof folder, "folder.ckpt");
    CHECK(mkdir(folder, 0700) == 0, "mkdir");
    CHECK(checkpoint_read_header_err(folder, &h, err, sizeof err) == -1 &&
          strstr(err, "is a folder, not a checkpoint file"), "a folder: %s", err);
    rmdir(folder);

    size_t size;
    unsigned char *good = read_all(sv.path, &size);
    char bad_path[256];
    path_of(bad_path, sizeof bad_path, "huge.ckpt");
    unsigned char *bad = xmalloc(size + (2u << 20), "bad copy");
    memcpy(bad, good, size);
    set_le64(bad + 12, (uint64_t)1 << 40);                 /* says 1 TiB */
    write_all(bad_path, bad, size);
    CHECK(checkpoint_read_header_err(bad_path, &h, err, sizeof err) == -1 &&
          strstr(err, "more than a checkpoint may"), "a 1 TiB size field: %s", err);
    memcpy(bad, good, size);
    memset(bad + size, 0, 2u << 20);                       /* 2 MiB of trailing zeros */
    write_all(bad_path, bad, size + (2u << 20));
    CHECK(checkpoint_read_header_err(bad_path, &h, err, sizeof err) == -1 &&
          strstr(err, "more than 1048576 bytes after the end"), "2 MiB after the end: %s", err);

    /* memory and file: the same header, the same load, the same refusal */
    CkptHeader hm;
    CHECK(checkpoint_read_header_mem(good, size, sv.path, &hm, err, sizeof err) == 0 &&
          checkpoint_read_header(sv.path, &h) == 0 && same_header(&h, &hm),
          "header from memory: %s", err);
    ParamSet ps;
    build_ps(&ps, SMALL, N_SMALL);
    Rng rng;
    rng_seed(&rng, 1);
    CHECK(checkpoint_load_mem(good, size, "mem", NULL, &ps, &rng, err, sizeof err) == 0 &&
          memcmp(ps.w, sv.ps.w, ps.total * sizeof(real)) == 0 && same_rng(&rng, &sv.rng),
          "load from memory: %s", err);
    good[size - 1] ^= 1;
    CHECK(checkpoint_load_mem(good, size, "mem", NULL, &ps, &rng, err, sizeof err) == -1 &&
          strncmp(err, "mem: corrupted", 14) == 0, "a corrupted buffer: %s", err);
    params_free(&ps);
    free(good);
    free(bad);
    remove(bad_path);
    params_free(&sv.ps);
    remove(sv.path);
}

/* A real-size checkpoint (about 640 KB, far more than any writer buffer) onto a disk that
 * fills at byte 100000 returns −1 with a message in bounded time (finding 1 of issue 15:
 * the writer used to spin forever once its buffer was full after a failed write; then
 * shown with /dev/full). The save runs in a child that alarm() kills if it hangs. */
#define BIG_TENSOR 20000           /* reals per array: 4 arrays x 20000 x 8 bytes = 640 KB */
#define HANG_SECONDS 10            /* a save of 640 KB takes milliseconds */
static void test_full_disk_big(void) {
    char path[256];
    path_of(path, sizeof path, "big.ckpt");
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        alarm(HANG_SECONDS);
        static const TensorSpec big[] = { { "big.w", 2, { 100, BIG_TENSOR / 100, 0, 0 } } };
        ParamSet ps;
        Rng r;
        CkptHeader h;
        rng_seed(&r, 1);
        build_ps(&ps, big, 1);
        fill_ps(&ps, &r, 1);
        ckpt_header_init(&h);
        char err[1024];
        io_fault_arm(IO_FAULT_FULL, 100000);
        int rc = checkpoint_save_err(path, &h, &ps, &r, err, sizeof err);
        _exit(rc == -1 && strstr(err, "No space left") ? 0 : 2);
    }
    int status = 0;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a 640 KB save onto a full disk returns an error in bounded time (%s %d)",
          WIFSIGNALED(status) ? "killed by signal" : "exit", WIFSIGNALED(status) ?
          WTERMSIG(status) : WEXITSTATUS(status));
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)child);
    CHECK(!file_exists(tmp), "no temporary left after the failed save");
    CHECK(!file_exists(path), "nothing at the destination after the failed save");
}

/* ---------------------------------------------------------------------------------------
 * Resume: a run interrupted by save, free, rebuild and load continues bit for bit. */

typedef struct { MlpConfig cfg; Mlp m; ParamSet ps; Denoiser net; TrainWork work; Rng rng; } Run;

static void run_build(Run *r, const MlpConfig *cfg, Rng *init_rng) {
    r->cfg = *cfg;
    params_init(&r->ps);
    mlp_init(&r->m, cfg, &r->ps, init_rng);
    r->net = mlp_denoiser(&r->m);
    train_work_init(&r->work, cfg->max_batch, cfg->D);
}

static void run_free(Run *r) {
    train_work_free(&r->work);
    mlp_free(&r->m);
    params_free(&r->ps);
}

static void run_train(Run *r, const real *x0, int steps, const DdpmConfig *dc,
                      const Schedule *s, const AdamConfig *ac, double decay) {
    for (int k = 0; k < steps; k++) {
        ddpm_train_step(&r->net, x0, NULL, RESUME_BATCH, dc, s, &r->rng, &r->work);
        adam_step(&r->ps, ac);
        ema_update(&r->ps, decay);
    }
}

static void fixed_batch(real *x0, uint64_t seed) {
    Rng data;
    rng_seed(&data, seed);
    rng_fill_normal(&data, x0, RESUME_BATCH * 2);
}

static void test_resume(void) {
    const uint64_t SEED = 2024, DATA_SEED = 11;
    MlpConfig cfg = mlp_default_config(2, RESUME_BATCH);
    DdpmConfig dc = { .param = PRED_EPS, .weighting = LOSS_SIMPLE, .var = VAR_BETA_TILDE };
    AdamConfig ac = adam_default(ADAM_LR);
    Schedule s;
    schedule_build(&s, SCHED_LINEAR, 50);
    real x0[RESUME_BATCH * 2];
    fixed_batch(x0, DATA_SEED);

    /* the straight run: 40 steps */
    Run a;
    rng_seed(&a.rng, SEED);
    run_build(&a, &cfg, &a.rng);
    run_train(&a, x0, RESUME_STEPS_BEFORE + RESUME_STEPS_AFTER, &dc, &s, &ac, EMA_DECAY);

    /* the interrupted run: 20 steps, save with everything needed to rebuild, free all */
    char path[256];
    path_of(path, sizeof path, "resume.ckpt");
    {
        Run b;
        rng_seed(&b.rng, SEED);
        run_build(&b, &cfg, &b.rng);
        run_train(&b, x0, RESUME_STEPS_BEFORE, &dc, &s, &ac, EMA_DECAY);
        CHECK(memcmp(a.ps.w, b.ps.w, a.ps.total * sizeof(real)) != 0,
              "20 and 40 steps differ (the test can see a missing step)");
        CkptHeader h;
        ckpt_header_init(&h);
        ckpt_set_string(&h, "model", "mlp");
        ckpt_set_int(&h, "D", cfg.D);
        ckpt_set_int(&h, "emb_dim", cfg.emb_dim);
        ckpt_set_int(&h, "hidden", cfg.hidden);
        ckpt_set_int(&h, "layers", cfg.layers);
        ckpt_set_int(&h, "max_batch", cfg.max_batch);
        ckpt_set_int(&h, "T", s.T);
        ckpt_set_string(&h, "schedule", schedule_name(s.kind));
        ckpt_set_string(&h, "param", parametrization_name(dc.param));
        ckpt_set_string(&h, "loss", loss_weighting_name(dc.weighting));
        ckpt_set_string(&h, "var", reverse_var_name(dc.var));
        ckpt_set_double(&h, "adam.lr", ac.lr);
        ckpt_set_double(&h, "ema.decay", EMA_DECAY);
        ckpt_set_int(&h, "data.seed", (int64_t)DATA_SEED);
        CHECK(checkpoint_save(path, &h, &b.ps, &b.rng) == 0, "save at step 20");
        run_free(&b);
    }
    schedule_free(&s);

    /* rebuild everything from the header alone, then load and continue */
    CkptHeader h;
    char err[1024];
    CHECK(checkpoint_read_header_err(path, &h, err, sizeof err) == 0, "read header: %s", err);
    int64_t D = 0, emb = 0, hidden = 0, layers = 0, max_batch = 0, T = 0, data_seed = 0;
    const char *model = "", *sched = "", *param = "", *loss = "", *var = "";
    double lr = 0, decay = 0;
    int got = ckpt_get_string(&h, "model", &model) == 0 && ckpt_get_int(&h, "D", &D) == 0 &&
              ckpt_get_int(&h, "emb_dim", &emb) == 0 && ckpt_get_int(&h, "hidden", &hidden) == 0 &&
              ckpt_get_int(&h, "layers", &layers) == 0 &&
              ckpt_get_int(&h, "max_batch", &max_batch) == 0 && ckpt_get_int(&h, "T", &T) == 0 &&
              ckpt_get_string(&h, "schedule", &sched) == 0 &&
              ckpt_get_string(&h, "param", &param) == 0 &&
              ckpt_get_string(&h, "loss", &loss) == 0 && ckpt_get_string(&h, "var", &var) == 0 &&
              ckpt_get_double(&h, "adam.lr", &lr) == 0 &&
              ckpt_get_double(&h, "ema.decay", &decay) == 0 &&
              ckpt_get_int(&h, "data.seed", &data_seed) == 0 && strcmp(model, "mlp") == 0;
    CHECK(got, "every setting needed to rebuild is in the header");
    MlpConfig cfg2 = { .D = (int)D, .emb_dim = (int)emb, .hidden = (int)hidden, .layers = (int)layers,
                       .max_batch = (int)max_batch };
    ScheduleKind kind = SCHED_COUNT;
    DdpmConfig dc2 = { .param = PRED_COUNT, .weighting = LOSS_COUNT, .var = VAR_COUNT };
    got = schedule_parse(sched, &kind) == 0 && parametrization_parse(param, &dc2.param) == 0 &&
          loss_weighting_parse(loss, &dc2.weighting) == 0 && reverse_var_parse(var, &dc2.var) == 0;
    CHECK(got, "names in the header parse back");
    if (!got || cfg2.D != 2 || cfg2.max_batch != RESUME_BATCH) { run_free(&a); remove(path); return; }
    Schedule s2;
    schedule_build(&s2, kind, (int)T);
    AdamConfig ac2 = adam_default(lr);
    real x0_again[RESUME_BATCH * 2];
    fixed_batch(x0_again, (uint64_t)data_seed);

    Run c;
    Rng scratch;
    rng_seed(&scratch, 999);            /* other initial weights: the load must replace them */
    run_build(&c, &cfg2, &scratch);
    rng_seed(&c.rng, 1);                /* another Rng state: the load must replace it */
    CHECK(checkpoint_load_err(path, &h, &c.ps, &c.rng, err, sizeof err) == 0, "load: %s", err);
    CHECK(c.ps.step == RESUME_STEPS_BEFORE, "step %ld after load", c.ps.step);
    run_train(&c, x0_again, RESUME_STEPS_AFTER, &dc2, &s2, &ac2, decay);

    size_t bytes = a.ps.total * sizeof(real);
    CHECK(c.ps.total == a.ps.total, "same parameter count");
    if (c.ps.total == a.ps.total) {
        CHECK(memcmp(a.ps.w, c.ps.w, bytes) == 0, "resumed weights bit for bit");
        CHECK(memcmp(a.ps.ema, c.ps.ema, bytes) == 0, "resumed EMA weights bit for bit");
        CHECK(memcmp(a.ps.m, c.ps.m, bytes) == 0, "resumed Adam m bit for bit");
        CHECK(memcmp(a.ps.v, c.ps.v, bytes) == 0, "resumed Adam v bit for bit");
    }
    CHECK(a.ps.step == c.ps.step && c.ps.step == RESUME_STEPS_BEFORE + RESUME_STEPS_AFTER,
          "step %ld vs %ld", a.ps.step, c.ps.step);
    CHECK(same_rng(&a.rng, &c.rng), "Rng state bit for bit");

    run_free(&c);
    run_free(&a);
    schedule_free(&s2);
    remove(path);
}

int main(void) {
    alarm(120);                 /* nothing here may hang: a read or write that spins fails */
    snprintf(dir_prefix, sizeof dir_prefix, "/tmp/test_checkpoint_%ld", (long)getpid());
    test_header_api();
    test_round_trip();
    test_layout();
    test_corruption();
    test_model_mismatch();
    test_failed_save();
    test_full_disk_big();
    test_bounded_read();
    test_resume();
    return test_summary("test_checkpoint");
}
