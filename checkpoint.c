/* checkpoint.c: save and load a model and its training state (see checkpoint.h for the
 * byte-by-byte format and what each function promises).
 *
 * Reading order: messages, the header of settings, the writer (put_* helpers,
 * little-endian by hand, never fwrite of a struct), save, the reader (get_* helpers),
 * the checks on a whole file, load.
 * Loading reads the whole file into memory, checks its frame (magic, version, size,
 * CRC-32), then walks it twice: once to check every field against the model, once to copy
 * the numbers, so that nothing the caller gave is touched unless everything is right.
 * Sizes: n = numbers in a tensor, P = tensors, S = settings, R = bytes per stored real.
 */
#include "checkpoint.h"

#include "crc32.h"
#include "io.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The format stores IEEE-754 binary32/binary64 by copying their bits. */
_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "float and double must be 4 and 8 bytes");

static const unsigned char MAGIC[8] = { 'D', 'D', 'P', 'M', 'C', 'K', 'P', 'T' };
#define FIXED_PART 28   /* magic, version, size, real size, settings count: offsets 0..27 */
#define CRC_BYTES 4
static const char HINT_MODEL[] =
    "build the model with the settings it was saved with (they are in the file's header)";

/* ========================================================================================
 * Messages: one line naming the file, the problem and a hint, on stderr or into a buffer. */

typedef struct {
    const char *path;   /* the checkpoint the message is about */
    char *err;          /* NULL: print "error: ..." on stderr; else write here */
    size_t err_len;
} Report;

static int fail(const Report *rep, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rep->err) {
        if (rep->err_len) snprintf(rep->err, rep->err_len, "%s: %s", rep->path, msg);
    } else {
        fprintf(stderr, "error: %s: %s\n", rep->path, msg);
    }
    return -1;
}

/* A message that names the file itself (io.h's). */
static int fail_io(const Report *rep, const char *msg) {
    if (rep->err) {
        if (rep->err_len) snprintf(rep->err, rep->err_len, "%s", msg);
    } else {
        fprintf(stderr, "error: %s\n", msg);
    }
    return -1;
}

static void report_ok(const Report *rep) {
    if (rep->err && rep->err_len) rep->err[0] = '\0';
}

/* "(34, 128)" for the messages */
static void format_shape(char *out, size_t len, int ndim, const uint32_t *shape) {
    size_t used = (size_t)snprintf(out, len, "(");
    for (int d = 0; d < ndim && used < len; d++)
        used += (size_t)snprintf(out + used, len - used, d ? ", %lu" : "%lu",
                                 (unsigned long)shape[d]);
    if (used < len) snprintf(out + used, len - used, ")");
}

/* Length of a string stored in a char[cap], cap if it has no NUL (strnlen is not C11). */
static size_t bounded_len(const char *s, size_t cap) {
    const char *z = memchr(s, '\0', cap);
    return z ? (size_t)(z - s) : cap;
}

/* ========================================================================================
 * The header of named settings. */

void ckpt_header_init(CkptHeader *h) { memset(h, 0, sizeof *h); }

const CkptSetting *ckpt_find(const CkptHeader *h, const char *name) {
    for (int i = 0; i < h->count; i++)
        if (strcmp(h->set[i].name, name) == 0) return &h->set[i];
    return NULL;
}

/* The entry for `name`: the existing one, or a new one at the end. */
static CkptSetting *setting_slot(CkptHeader *h, const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len >= CKPT_NAME_LEN)
        die("checkpoint setting name \"%s\": need 1..%d bytes", name, CKPT_NAME_LEN - 1);
    CkptSetting *s = (CkptSetting *)ckpt_find(h, name);
    if (s) return s;
    if (h->count == CKPT_MAX_SETTINGS)
        die("checkpoint header full: %d settings at most (setting \"%s\")", CKPT_MAX_SETTINGS, name);
    s = &h->set[h->count++];
    memset(s, 0, sizeof *s);
    memcpy(s->name, name, len + 1);
    return s;
}

void ckpt_set_int(CkptHeader *h, const char *name, int64_t v) {
    CkptSetting *s = setting_slot(h, name);
    s->type = CKPT_INT; s->i = v; s->d = 0; s->s[0] = '\0';
}

void ckpt_set_double(CkptHeader *h, const char *name, double v) {
    CkptSetting *s = setting_slot(h, name);
    s->type = CKPT_DOUBLE; s->i = 0; s->d = v; s->s[0] = '\0';
}

void ckpt_set_string(CkptHeader *h, const char *name, const char *v) {
    size_t len = strlen(v);
    if (len >= CKPT_STRING_LEN)
        die("checkpoint setting \"%s\": string of %zu bytes, %d at most", name, len,
            CKPT_STRING_LEN - 1);
    CkptSetting *s = setting_slot(h, name);
    s->type = CKPT_STRING; s->i = 0; s->d = 0;
    memcpy(s->s, v, len + 1);
}

int ckpt_get_int(const CkptHeader *h, const char *name, int64_t *v) {
    const CkptSetting *s = ckpt_find(h, name);
    if (!s || s->type != CKPT_INT) return -1;
    *v = s->i;
    return 0;
}

int ckpt_get_double(const CkptHeader *h, const char *name, double *v) {
    const CkptSetting *s = ckpt_find(h, name);
    if (!s || s->type != CKPT_DOUBLE) return -1;
    *v = s->d;
    return 0;
}

int ckpt_get_string(const CkptHeader *h, const char *name, const char **v) {
    const CkptSetting *s = ckpt_find(h, name);
    if (!s || s->type != CKPT_STRING) return -1;
    *v = s->s;
    return 0;
}

void ckpt_print(FILE *f, const CkptHeader *h) {
    for (int i = 0; i < h->count; i++) {
        const CkptSetting *s = &h->set[i];
        if (s->type == CKPT_INT) fprintf(f, "%s = %lld\n", s->name, (long long)s->i);
        else if (s->type == CKPT_DOUBLE) fprintf(f, "%s = %.17g\n", s->name, s->d);
        else fprintf(f, "%s = \"%s\"\n", s->name, s->s);
    }
}

/* ========================================================================================
 * Writer: little-endian bytes with the running CRC-32, into an IoFile (io.h: buffered,
 * every error kept). With f == NULL it only counts, so that the file size can be written
 * at offset 12. */

typedef struct {
    IoFile *f;               /* NULL: count bytes only */
    uint64_t count;          /* bytes put so far */
    uint32_t crc;            /* CRC-32 of the bytes put (crc32.h) */
} Writer;

static void writer_init(Writer *w, IoFile *f) {
    w->f = f; w->count = 0; w->crc = 0;
}

static void put_bytes(Writer *w, const void *p, size_t n) {
    w->count += n;
    if (!w->f) return;
    w->crc = crc32_update(w->crc, p, n);
    io_write(w->f, p, n);
}

static void put_u8(Writer *w, unsigned v) {
    unsigned char b = (unsigned char)v;
    put_bytes(w, &b, 1);
}

static void put_u32(Writer *w, uint32_t v) {
    unsigned char b[4];
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));   /* low byte first */
    put_bytes(w, b, 4);
}

static void put_u64(Writer *w, uint64_t v) {
    unsigned char b[8];
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
    put_bytes(w, b, 8);
}

static void put_i64(Writer *w, int64_t v) { put_u64(w, (uint64_t)v); } /* two's complement */

static void put_f64(Writer *w, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    put_u64(w, bits);
}

static void put_string(Writer *w, const char *s) {
    size_t len = strlen(s);
    put_u32(w, (uint32_t)len);
    put_bytes(w, s, len);
}

/* n reals in the build's own size: f64 for double, f32 for float */
static void put_reals(Writer *w, const real *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (sizeof(real) == 8) {
            put_f64(w, (double)x[i]);
        } else {
            float f = (float)x[i];
            uint32_t bits;
            memcpy(&bits, &f, 4);
            put_u32(w, bits);
        }
    }
}

/* Everything but the final checksum, in the order of the table in checkpoint.h. */
static void put_checkpoint(Writer *w, uint64_t file_size, const CkptHeader *h,
                           const ParamSet *ps, const Rng *rng) {
    put_bytes(w, MAGIC, sizeof MAGIC);
    put_u32(w, CKPT_FORMAT_VERSION);
    put_u64(w, file_size);
    put_u32(w, (uint32_t)sizeof(real));
    put_u32(w, (uint32_t)h->count);
    for (int i = 0; i < h->count; i++) {
        const CkptSetting *s = &h->set[i];
        put_string(w, s->name);
        put_u8(w, (unsigned)s->type);
        if (s->type == CKPT_INT) put_i64(w, s->i);
        else if (s->type == CKPT_DOUBLE) put_f64(w, s->d);
        else put_string(w, s->s);
    }
    put_i64(w, (int64_t)ps->step);
    for (int k = 0; k < 4; k++) put_u64(w, rng->s[k]);
    put_f64(w, rng->spare);
    put_u8(w, rng->has_spare ? 1u : 0u);
    put_u32(w, (uint32_t)ps->count);
    for (int i = 0; i < ps->count; i++) {
        const Param *p = &ps->p[i];
        put_string(w, p->name);
        put_u32(w, (uint32_t)p->ndim);
        for (int d = 0; d < p->ndim; d++) put_u32(w, (uint32_t)p->shape[d]);
        put_reals(w, ps->w + p->offset, p->n);
        put_reals(w, ps->ema + p->offset, p->n);
        put_reals(w, ps->m + p->offset, p->n);
        put_reals(w, ps->v + p->offset, p->n);
    }
}

/* What the writer cannot express: refuse before creating any file. */
static int check_savable(const Report *rep, const CkptHeader *h, const ParamSet *ps,
                         const Rng *rng) {
    if (!h || !ps || !rng) return fail(rep, "nothing saved: header, ParamSet and Rng are all needed");
    if (h->count < 0 || h->count > CKPT_MAX_SETTINGS)
        return fail(rep, "nothing saved: header has %d settings, 0..%d allowed (use ckpt_set_*)",
                    h->count, CKPT_MAX_SETTINGS);
    for (int i = 0; i < h->count; i++) {
        const CkptSetting *s = &h->set[i];
        size_t len = bounded_len(s->name, CKPT_NAME_LEN);
        if (len == 0 || len >= CKPT_NAME_LEN || (s->type != CKPT_INT && s->type != CKPT_DOUBLE &&
            s->type != CKPT_STRING) || bounded_len(s->s, CKPT_STRING_LEN) >= CKPT_STRING_LEN)
            return fail(rep, "nothing saved: header setting %d is not valid (use ckpt_set_*)", i);
    }
    if (ps->count > 0 && (!ps->w || !ps->ema || !ps->m || !ps->v))
        return fail(rep, "nothing saved: the ParamSet is not allocated (call params_alloc first)");
    if (ps->step < 0) return fail(rep, "nothing saved: negative Adam step %ld", ps->step);
    for (int i = 0; i < ps->count; i++) {
        size_t len = bounded_len(ps->p[i].name, PARAM_NAME_LEN);
        if (len == 0 || len >= PARAM_NAME_LEN)
            return fail(rep, "nothing saved: tensor %d has an empty name (name it in params_add)", i);
    }
    return 0;
}

int checkpoint_check_dest(const char *path, char *err, size_t err_len) {
    Report rep = { path, err, err_len };
    char why[1024];
    if (io_check_dest(path, MAGIC, sizeof MAGIC, "a DDPM checkpoint", why, sizeof why) != 0)
        return fail_io(&rep, why);
    report_ok(&rep);
    return 0;
}

int checkpoint_save_err(const char *path, const CkptHeader *h, const ParamSet *ps,
                        const Rng *rng, char *err, size_t err_len) {
    Report rep = { path, err, err_len };
    if (check_savable(&rep, h, ps, rng) != 0) return -1;
    char why[1024];
    if (io_check_dest(path, MAGIC, sizeof MAGIC, "a DDPM checkpoint", why, sizeof why) != 0)
        return fail_io(&rep, why);

    Writer *w = xmalloc(sizeof *w, "checkpoint writer");
    writer_init(w, NULL);                                  /* pass 1: measure */
    put_checkpoint(w, 0, h, ps, rng);
    uint64_t file_size = w->count + CRC_BYTES;

    int status = 0;
    IoFile *f = io_create(path, why, sizeof why);
    if (!f) {
        status = fail_io(&rep, why);
    } else {
        writer_init(w, f);                                 /* pass 2: write */
        put_checkpoint(w, file_size, h, ps, rng);
        put_u32(w, w->crc);                                /* the CRC of all bytes before */
        if (io_commit(f, why, sizeof why) != 0) status = fail_io(&rep, why);
        else report_ok(&rep);
    }
    free(w);
    return status;
}

int checkpoint_save(const char *path, const CkptHeader *h, const ParamSet *ps, const Rng *rng) {
    return checkpoint_save_err(path, h, ps, rng, NULL, 0);
}

/* ========================================================================================
 * Reader: bounds-checked little-endian gets over the file in memory. Reading past the end
 * sets `overrun` and returns zeros, so a parse checks once per field group. */

typedef struct {
    const unsigned char *p;  /* the file */
    size_t end;              /* where fields may be read up to (the checksum's offset) */
    size_t pos;              /* next byte */
    int overrun;
} Reader;

static const unsigned char *take(Reader *r, size_t n) {
    if (r->overrun || n > r->end - r->pos) { r->overrun = 1; return NULL; }
    const unsigned char *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static unsigned get_u8(Reader *r) {
    const unsigned char *b = take(r, 1);
    return b ? b[0] : 0u;
}

static uint32_t get_u32(Reader *r) {
    const unsigned char *b = take(r, 4);
    uint32_t v = 0;
    if (b) for (int k = 3; k >= 0; k--) v = (v << 8) | b[k];
    return v;
}

static uint64_t get_u64(Reader *r) {
    const unsigned char *b = take(r, 8);
    uint64_t v = 0;
    if (b) for (int k = 7; k >= 0; k--) v = (v << 8) | b[k];
    return v;
}

static int64_t get_i64(Reader *r) {
    uint64_t u = get_u64(r);
    int64_t v;
    memcpy(&v, &u, 8);       /* two's complement, without implementation-defined casts */
    return v;
}

static double get_f64(Reader *r) {
    uint64_t bits = get_u64(r);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

/* A string of at most cap−1 bytes without NUL into out (NUL-terminated). 0 ok, −1 bad
 * (length `*len` too long or a NUL inside); an overrun is left to the caller to see. */
static int get_string(Reader *r, char *out, size_t cap, uint32_t *len) {
    *len = get_u32(r);
    out[0] = '\0';
    if (r->overrun) return 0;
    if (*len >= cap) return -1;
    const unsigned char *b = take(r, *len);
    if (!b) return 0;
    if (memchr(b, '\0', *len)) return -1;
    memcpy(out, b, *len);
    out[*len] = '\0';
    return 0;
}

/* One stored real (R = 4 or 8 bytes) as the build's real: float → double is exact,
 * double → float rounds to nearest. */
static real decode_real(const unsigned char *b, uint32_t R) {
    if (R == 8) {
        uint64_t bits = 0;
        for (int k = 7; k >= 0; k--) bits = (bits << 8) | b[k];
        double d;
        memcpy(&d, &bits, 8);
        return (real)d;
    }
    uint32_t bits = 0;
    for (int k = 3; k >= 0; k--) bits = (bits << 8) | b[k];
    float f;
    memcpy(&f, &bits, 4);
    return (real)f;
}

/* ========================================================================================
 * The whole file: read it, check its frame, parse the header, walk the tensors. */

/* Reads the file, but never more than it says it has: the first 28 bytes (magic, version,
 * size) decide how much to read, so that /dev/zero, a pipe or a huge file that is not a
 * checkpoint stops at once and check_frame names what is wrong. Bytes after the declared
 * end are counted up to EXTRA_COUNTED. */
#define EXTRA_COUNTED (1u << 20)
static int read_file(const Report *rep, unsigned char **out, size_t *size) {
    errno = 0;
    FILE *f = fopen(rep->path, "rb");
    if (!f) return fail(rep, "cannot open: %s (check the path)",
                        errno ? strerror(errno) : "fopen failed");
    unsigned char head[FIXED_PART];
    errno = 0;
    size_t n = fread(head, 1, FIXED_PART, f);
    uint64_t limit = n;                                    /* bytes to read in all */
    if (n == FIXED_PART && memcmp(head, MAGIC, sizeof MAGIC) == 0) {
        Reader r = { head, FIXED_PART, 8, 0 };
        uint32_t version = get_u32(&r);
        uint64_t declared = get_u64(&r);
        if (version == CKPT_FORMAT_VERSION && declared > CKPT_MAX_FILE_BYTES) {
            fclose(f);
            return fail(rep, "malformed: the file says it has %llu bytes, more than a "
                        "checkpoint may (%llu)", (unsigned long long)declared,
                        (unsigned long long)CKPT_MAX_FILE_BYTES);
        }
        if (version == CKPT_FORMAT_VERSION && declared > FIXED_PART)
            limit = declared + EXTRA_COUNTED;
    }
    size_t cap = limit < (1u << 16) ? (size_t)limit : (1u << 16);
    unsigned char *buf = malloc(cap > FIXED_PART ? cap : FIXED_PART);
    if (buf) memcpy(buf, head, n);
    while (buf && n < limit) {
        if (n == cap) {                                    /* full: grow towards limit */
            size_t grown_cap = limit - cap < cap ? (size_t)limit : 2 * cap;
            unsigned char *grown = realloc(buf, grown_cap);
            if (!grown) { free(buf); buf = NULL; break; }
            buf = grown;
            cap = grown_cap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0) break;                               /* end of file, or an error */
        n += got;
    }
    int more = buf && n == limit && limit > FIXED_PART && fgetc(f) != EOF;
    int bad = ferror(f), e = errno;
    fclose(f);
    if (!buf) return fail(rep, "out of memory reading %zu bytes", cap);
    if (bad) {
        free(buf);
#ifdef EISDIR
        if (e == EISDIR)
            return fail(rep, "is a folder, not a checkpoint file: give the checkpoint's own path "
                        "(e.g. %s/model.ckpt)", rep->path);
#endif
        return fail(rep, "cannot read after %zu bytes: %s (give a checkpoint file)", n,
                    e ? strerror(e) : "read error");
    }
    if (more) {
        free(buf);
        return fail(rep, "more than %u bytes after the end of the checkpoint (%llu bytes): "
                    "corrupted or two files joined; use an intact copy", EXTRA_COUNTED,
                    (unsigned long long)(limit - EXTRA_COUNTED));
    }
    *out = buf;
    *size = n;
    return 0;
}

/* Magic, version, file size and checksum: the order of checkpoint.h's list. */
static int check_frame(const Report *rep, const unsigned char *buf, size_t size) {
    size_t head = size < sizeof MAGIC ? size : sizeof MAGIC;
    if (memcmp(buf, MAGIC, head) != 0)
        return fail(rep, "not a DDPM checkpoint (it does not start with \"DDPMCKPT\"): "
                    "give a file written by checkpoint_save");
    Reader r = { buf, size, sizeof MAGIC, 0 };
    if (size < sizeof MAGIC) r.overrun = 1;
    uint32_t version = get_u32(&r);
    if (!r.overrun && version != CKPT_FORMAT_VERSION)
        return fail(rep, "format version %lu is not supported (this build reads version %d): "
                    "use the program that wrote it", (unsigned long)version, CKPT_FORMAT_VERSION);
    uint64_t declared = get_u64(&r);
    if (r.overrun || size < FIXED_PART + CRC_BYTES)
        return fail(rep, "truncated at byte %zu (a checkpoint has at least %d bytes): "
                    "the save was interrupted or the copy is incomplete", size,
                    FIXED_PART + CRC_BYTES);
    if (declared > size)
        return fail(rep, "truncated at byte %zu (the file says %llu bytes): the save was "
                    "interrupted or the copy is incomplete", size, (unsigned long long)declared);
    if (declared < size)
        return fail(rep, "%llu bytes after the end of the checkpoint (%llu bytes): corrupted "
                    "or two files joined; use an intact copy",
                    (unsigned long long)(size - declared), (unsigned long long)declared);
    uint32_t crc = crc32_update(0, buf, size - CRC_BYTES);
    Reader tail = { buf, size, size - CRC_BYTES, 0 };
    uint32_t stored = get_u32(&tail);
    if (crc != stored)
        return fail(rep, "corrupted (CRC-32 mismatch: computed %08lx, stored %08lx): "
                    "use an intact copy", (unsigned long)crc, (unsigned long)stored);
    return 0;
}

/* What comes before the tensors, parsed from a file whose frame is valid. */
typedef struct {
    CkptHeader header;
    uint32_t R;          /* bytes per stored real: 4 or 8 */
    long step;
    Rng rng;
    size_t tensors_at;   /* offset of the tensor count */
} Parsed;

static int malformed_overrun(const Report *rep, const Reader *r, const char *what) {
    return fail(rep, "malformed: %s runs past the end of the data (byte %zu): not written "
                "by checkpoint_save", what, r->end);
}

static int parse_header(const Report *rep, const unsigned char *buf, size_t size, Parsed *out) {
    Reader r = { buf, size - CRC_BYTES, 20, 0 };
    memset(out, 0, sizeof *out);
    out->R = get_u32(&r);
    if (out->R != 4 && out->R != 8)
        return fail(rep, "malformed: real size %lu, only 4 (float) and 8 (double) exist",
                    (unsigned long)out->R);
    uint32_t S = get_u32(&r);
    if (S > CKPT_MAX_SETTINGS)
        return fail(rep, "malformed: %lu settings, at most %d", (unsigned long)S, CKPT_MAX_SETTINGS);
    CkptHeader *h = &out->header;
    h->real_size = (int)out->R;
    for (uint32_t i = 0; i < S; i++) {
        CkptSetting *s = &h->set[i];
        uint32_t len;
        if (get_string(&r, s->name, CKPT_NAME_LEN, &len) != 0 || (!r.overrun && len == 0))
            return fail(rep, "malformed: setting %lu has a name of %lu bytes (1..%d, no NUL)",
                        (unsigned long)i, (unsigned long)len, CKPT_NAME_LEN - 1);
        unsigned type = get_u8(&r);
        if (type == CKPT_INT) s->i = get_i64(&r);
        else if (type == CKPT_DOUBLE) s->d = get_f64(&r);
        else if (type == CKPT_STRING) {
            if (get_string(&r, s->s, CKPT_STRING_LEN, &len) != 0)
                return fail(rep, "malformed: setting \"%s\" has a string of %lu bytes "
                            "(0..%d, no NUL)", s->name, (unsigned long)len, CKPT_STRING_LEN - 1);
        } else if (!r.overrun)
            return fail(rep, "malformed: setting \"%s\" has type %u (1 int, 2 double, 3 string)",
                        s->name, type);
        if (r.overrun) return malformed_overrun(rep, &r, "the settings");
        s->type = (CkptType)type;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(h->set[j].name, s->name) == 0)
                return fail(rep, "malformed: setting \"%s\" appears twice", s->name);
        h->count = (int)i + 1;
    }
    int64_t step = get_i64(&r);
    for (int k = 0; k < 4; k++) out->rng.s[k] = get_u64(&r);
    out->rng.spare = get_f64(&r);
    unsigned has_spare = get_u8(&r);
    if (r.overrun) return malformed_overrun(rep, &r, "the step and Rng state");
    if (step < 0 || step > LONG_MAX)
        return fail(rep, "malformed: Adam step %lld out of range", (long long)step);
    if (has_spare > 1) return fail(rep, "malformed: has_spare is %u (0 or 1)", has_spare);
    if ((out->rng.s[0] | out->rng.s[1] | out->rng.s[2] | out->rng.s[3]) == 0)
        return fail(rep, "malformed: all-zero Rng state (xoshiro256** never reaches it)");
    out->step = (long)step;
    out->rng.has_spare = (int)has_spare;
    out->tensors_at = r.pos;
    return 0;
}

/* Walks the tensors from pf->tensors_at, checking every field, and each name and shape
 * against `model` if it is not NULL. With `into` not NULL (only once a walk with the same
 * model passed) it also copies the numbers into into->w, ema, m, v. */
static int walk_tensors(const Report *rep, const unsigned char *buf, size_t size,
                        const Parsed *pf, const ParamSet *model, ParamSet *into) {
    Reader r = { buf, size - CRC_BYTES, pf->tensors_at, 0 };
    uint32_t P = get_u32(&r);
    if (r.overrun) return malformed_overrun(rep, &r, "the tensor count");
    if (model && P != (uint32_t)model->count)
        return fail(rep, "the file has %lu tensors, the model %d: %s", (unsigned long)P,
                    model->count, HINT_MODEL);
    for (uint32_t i = 0; i < P; i++) {
        char name[PARAM_NAME_LEN];
        uint32_t len, shape[PARAM_MAX_DIMS];
        if (get_string(&r, name, PARAM_NAME_LEN, &len) != 0 || (!r.overrun && len == 0))
            return fail(rep, "malformed: tensor %lu has a name of %lu bytes (1..%d, no NUL)",
                        (unsigned long)i, (unsigned long)len, PARAM_NAME_LEN - 1);
        uint32_t ndim = get_u32(&r);
        if (!r.overrun && (ndim < 1 || ndim > PARAM_MAX_DIMS))
            return fail(rep, "malformed: tensor \"%s\" has %lu dims (1..%d)", name,
                        (unsigned long)ndim, PARAM_MAX_DIMS);
        size_t n = 1;
        for (uint32_t d = 0; d < ndim && !r.overrun; d++) {
            shape[d] = get_u32(&r);
            if (!r.overrun && (shape[d] < 1 || shape[d] > INT_MAX || n > SIZE_MAX / shape[d]))
                return fail(rep, "malformed: tensor \"%s\" has dimension %lu", name,
                            (unsigned long)shape[d]);
            n *= shape[d];
        }
        if (r.overrun) return malformed_overrun(rep, &r, "a tensor's name or shape");
        const Param *p = model ? &model->p[i] : NULL;
        if (p && strcmp(p->name, name) != 0)
            return fail(rep, "tensor %lu is \"%s\" in the file but \"%s\" in the model: %s",
                        (unsigned long)i, name, p->name, HINT_MODEL);
        if (p) {
            int same = (int)ndim == p->ndim;
            for (uint32_t d = 0; same && d < ndim; d++) same = (int)shape[d] == p->shape[d];
            if (!same) {
                uint32_t model_shape[PARAM_MAX_DIMS];
                for (int d = 0; d < p->ndim; d++) model_shape[d] = (uint32_t)p->shape[d];
                char fs[96], ms[96];
                format_shape(fs, sizeof fs, (int)ndim, shape);
                format_shape(ms, sizeof ms, p->ndim, model_shape);
                return fail(rep, "%s: file has %s, model has %s: %s", name, fs, ms, HINT_MODEL);
            }
        }
        /* the four arrays w, ema, m, v: n values of R bytes each */
        if (n > (r.end - r.pos) / 4 / pf->R) return malformed_overrun(rep, &r, name);
        if (into && p) {
            real *dst[4] = { into->w, into->ema, into->m, into->v };
            for (int a = 0; a < 4; a++) {
                const unsigned char *b = take(&r, n * pf->R);
                real *x = dst[a] + p->offset;
                for (size_t k = 0; k < n; k++) x[k] = decode_real(b + k * pf->R, pf->R);
            }
        } else {
            take(&r, 4 * n * pf->R);
        }
    }
    if (r.pos != r.end)
        return fail(rep, "malformed: %zu unexplained bytes before the checksum", r.end - r.pos);
    return 0;
}

/* Checks a file in memory, up to and including the tensors against ps (if not NULL). */
static int buffer_checked(const Report *rep, const unsigned char *buf, size_t size,
                          Parsed *pf, const ParamSet *ps) {
    if (check_frame(rep, buf, size) != 0 || parse_header(rep, buf, size, pf) != 0 ||
        walk_tensors(rep, buf, size, pf, ps, NULL) != 0)
        return -1;
    return 0;
}

static int header_from_buffer(const Report *rep, const unsigned char *buf, size_t size,
                              CkptHeader *h) {
    Parsed *pf = xmalloc(sizeof *pf, "checkpoint header");
    int status = buffer_checked(rep, buf, size, pf, NULL);
    if (status == 0) {
        *h = pf->header;
        report_ok(rep);
    }
    free(pf);
    return status;
}

static int load_from_buffer(const Report *rep, const unsigned char *buf, size_t size,
                            CkptHeader *h, ParamSet *ps, Rng *rng) {
    if (!ps) return fail(rep, "nothing loaded: no ParamSet given (build the model first)");
    if (ps->count > 0 && (!ps->w || !ps->ema || !ps->m || !ps->v))
        return fail(rep, "nothing loaded: the ParamSet is not allocated (build the model "
                    "from the header first, which calls params_alloc)");
    Parsed *pf = xmalloc(sizeof *pf, "checkpoint header");
    int status = buffer_checked(rep, buf, size, pf, ps);
    if (status == 0) {   /* every check passed: now, and only now, write into the caller's */
        walk_tensors(rep, buf, size, pf, ps, ps);
        ps->step = pf->step;
        if (rng) *rng = pf->rng;
        if (h) *h = pf->header;
        report_ok(rep);
    }
    free(pf);
    return status;
}

int checkpoint_read_header_err(const char *path, CkptHeader *h, char *err, size_t err_len) {
    Report rep = { path, err, err_len };
    unsigned char *buf;
    size_t size;
    if (read_file(&rep, &buf, &size) != 0) return -1;
    int status = header_from_buffer(&rep, buf, size, h);
    free(buf);
    return status;
}

int checkpoint_read_header(const char *path, CkptHeader *h) {
    return checkpoint_read_header_err(path, h, NULL, 0);
}

int checkpoint_load_err(const char *path, CkptHeader *h, ParamSet *ps, Rng *rng,
                        char *err, size_t err_len) {
    Report rep = { path, err, err_len };
    if (!ps || (ps->count > 0 && (!ps->w || !ps->ema || !ps->m || !ps->v)))
        return load_from_buffer(&rep, NULL, 0, h, ps, rng);     /* says what is missing */
    unsigned char *buf;
    size_t size;
    if (read_file(&rep, &buf, &size) != 0) return -1;
    int status = load_from_buffer(&rep, buf, size, h, ps, rng);
    free(buf);
    return status;
}

int checkpoint_load(const char *path, CkptHeader *h, ParamSet *ps, Rng *rng) {
    return checkpoint_load_err(path, h, ps, rng, NULL, 0);
}

int checkpoint_read_header_mem(const void *buf, size_t size, const char *name, CkptHeader *h,
                               char *err, size_t err_len) {
    Report rep = { name, err, err_len };
    return header_from_buffer(&rep, buf, size, h);
}

int checkpoint_load_mem(const void *buf, size_t size, const char *name, CkptHeader *h,
                        ParamSet *ps, Rng *rng, char *err, size_t err_len) {
    Report rep = { name, err, err_len };
    return load_from_buffer(&rep, buf, size, h, ps, rng);
}
