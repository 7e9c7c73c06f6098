/* gz.c: inflate (RFC 1951) and the gzip wrapper (RFC 1952), written to be read.
 *
 * Contents, in reading order:
 *   1. the output buffer and the bit reader (with a sticky error)
 *   2. canonical Huffman codes: building them from code lengths, decoding one symbol
 *   3. the three block kinds: stored, fixed Huffman, dynamic Huffman
 *   4. inflate: blocks until the final one
 *   5. gunzip: header, inflate, trailer, for every member
 *
 * Speed is not the goal: symbols are decoded one bit at a time, as the RFC describes the
 * code (Fashion-MNIST's 26 MB of training images take about a second). There are no
 * lookup tables beyond the RFC's own.
 */
#include "gz.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"

/* ========================================================================================
 * 1. The output buffer and the bit reader */

typedef struct {
    unsigned char *p;   /* the bytes written so far */
    size_t n, cap;      /* how many, how many fit */
    size_t max;         /* refuse to grow beyond this many */
} Out;

/* DEFLATE packs its bits starting with the least significant bit of each byte. Numbers
 * (block headers, extra bits, lengths) are stored least significant bit first; Huffman
 * codes most significant bit first, which is why a code is read one bit at a time. */
typedef struct {
    const unsigned char *in;   /* the compressed bytes */
    size_t n, pos;             /* how many, the next one to load */
    uint32_t bitbuf;           /* loaded bits not used yet, the next one lowest */
    int bitcnt;                /* how many (0..7 between reads) */
    Out *out;
    char *err;                 /* GZ_ERR_MAX bytes, the one-line message */
    int failed;                /* sticky: once set, bits() returns 0 and loops stop */
} Inflate;

/* Record the first failure (later ones are consequences of it) and return -1. */
static int fail(Inflate *s, const char *fmt, ...) {
    if (!s->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, GZ_ERR_MAX, fmt, ap);
        va_end(ap);
        s->failed = 1;
    }
    return -1;
}

/* The next `need` bits (0..16) as a number, first bit lowest. At the end of the input it
 * records "truncated" and returns 0; callers check s->failed before using what they read
 * for anything but a loop bound or a table index that 0 keeps in range. */
static uint32_t bits(Inflate *s, int need) {
    while (s->bitcnt < need) {
        if (s->pos >= s->n) {
            fail(s, "truncated: the compressed data ends inside a block (after %zu bytes)",
                 s->n);
            return 0;
        }
        s->bitbuf |= (uint32_t)s->in[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    uint32_t v = s->bitbuf & ((1u << need) - 1);
    s->bitbuf >>= need;
    s->bitcnt -= need;
    return v;
}

/* Make room for `extra` more output bytes, doubling the buffer. */
static int out_reserve(Inflate *s, size_t extra) {
    Out *o = s->out;
    if (extra > o->max - o->n)
        return fail(s, "too large: the output would exceed the limit of %zu bytes", o->max);
    if (o->n + extra <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->n + extra) cap = cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * cap;
    unsigned char *p = realloc(o->p, cap);
    if (!p) return fail(s, "out of memory: cannot hold %zu bytes of output", cap);
    o->p = p;
    o->cap = cap;
    return 0;
}

/* ========================================================================================
 * 2. Canonical Huffman codes (RFC 1951 §3.2.2)
 *
 * A code is given by the length of each symbol's code (0 = symbol unused). Codes of the
 * same length are consecutive numbers in symbol order, and the first code of length L+1
 * is (the first code of length L + the number of codes of length L) · 2. So a code is
 * fully described by count[L] and the symbols sorted by (length, symbol). */

#define MAX_BITS 15     /* longest code */
#define MAX_LCODES 286  /* literal/length symbols 0..285 (286, 287 exist in the fixed code) */
#define MAX_DCODES 30   /* distance symbols 0..29 */
#define FIXED_LCODES 288

typedef struct {
    short count[MAX_BITS + 1];     /* count[L] = number of codes of length L */
    short symbol[FIXED_LCODES];    /* the symbols in canonical order */
} Huffman;

/* Build h from length[0..n-1]. Returns 0 if the code is complete (every bit string is
 * the start of a code), the number of unused codes (> 0) if it is incomplete, or −1 if it
 * is over-subscribed (more codes than bit strings: no prefix code has such lengths). */
static int huffman_build(Huffman *h, const unsigned char *length, int n) {
    for (int L = 0; L <= MAX_BITS; L++) h->count[L] = 0;
    for (int sym = 0; sym < n; sym++) h->count[length[sym]]++;
    int left = 1;                      /* bit strings of the current length still free */
    for (int L = 1; L <= MAX_BITS; L++) {
        left = 2 * left - h->count[L];
        if (left < 0) return -1;
    }
    short offset[MAX_BITS + 1];        /* where the codes of each length start in symbol[] */
    offset[1] = 0;
    for (int L = 1; L < MAX_BITS; L++) offset[L + 1] = (short)(offset[L] + h->count[L]);
    for (int sym = 0; sym < n; sym++)
        if (length[sym] != 0) h->symbol[offset[length[sym]]++] = (short)sym;
    return left;
}

/* Read one symbol: take bits one at a time (most significant first); after L bits,
 * `code` is a code of length L if it lies among the count[L] codes starting at `first`. */
static int huffman_decode(Inflate *s, const Huffman *h) {
    int code = 0;    /* the bits read so far */
    int first = 0;   /* the first code of length L */
    int index = 0;   /* where the codes of length L start in symbol[] */
    for (int L = 1; L <= MAX_BITS; L++) {
        code |= (int)bits(s, 1);
        if (s->failed) return -1;
        int count = h->count[L];
        if (code - first < count) return h->symbol[index + (code - first)];
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return fail(s, "bad block: a bit string that is no code of the block's Huffman table");
}

/* Lengths of an incomplete code are accepted only in the one case the RFC allows: a single
 * code of one bit (or none at all, for distances: "all literals"). */
static int huffman_check(Inflate *s, const Huffman *h, int built, int n, const char *what) {
    if (built < 0)
        return fail(s, "bad block: the %s code lengths are over-subscribed", what);
    if (built > 0 && n != h->count[0] + h->count[1])
        return fail(s, "bad block: the %s code lengths leave the code incomplete", what);
    return 0;
}

/* ========================================================================================
 * 3. The three block kinds */

/* Stored (type 0): skip to a byte boundary, LEN and NLEN = ~LEN (16 bits each, least
 * significant byte first), then LEN bytes copied as they are. */
static int inflate_stored(Inflate *s) {
    s->bitbuf = 0;    /* the rest of the current byte is padding */
    s->bitcnt = 0;
    if (s->n - s->pos < 4)
        return fail(s, "truncated: a stored block's length is cut off (after %zu bytes)", s->n);
    unsigned len = s->in[s->pos] | (unsigned)s->in[s->pos + 1] << 8;
    unsigned nlen = s->in[s->pos + 2] | (unsigned)s->in[s->pos + 3] << 8;
    s->pos += 4;
    if (len != (~nlen & 0xffffu))
        return fail(s, "bad block: stored length %u does not match its complement %u", len,
                    nlen);
    if (s->n - s->pos < len)
        return fail(s, "truncated: a stored block of %u bytes has only %zu left", len,
                    s->n - s->pos);
    if (out_reserve(s, len) != 0) return -1;
    if (len) memcpy(s->out->p + s->out->n, s->in + s->pos, len);  /* p is NULL while empty */
    s->out->n += len;
    s->pos += len;
    return 0;
}

/* Lengths 3..258 and distances 1..32768 are a base for the symbol plus extra bits. */
static const short length_base[29] = {
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const short length_extra[29] = {
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const short dist_base[30] = {
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
    257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const short dist_extra[30] = {
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11,
    12, 12, 13, 13};

/* The compressed data of a Huffman block: literals 0..255 are output bytes, 256 ends the
 * block, 257..285 are a length followed by a distance code: copy `len` bytes starting
 * `dist` bytes back (the copy may overlap what it writes, e.g. dist 1 repeats a byte). */
static int inflate_codes(Inflate *s, const Huffman *lencode, const Huffman *distcode) {
    for (;;) {
        int sym = huffman_decode(s, lencode);
        if (sym < 0) return -1;
        if (sym < 256) {                                   /* a literal byte */
            if (out_reserve(s, 1) != 0) return -1;
            s->out->p[s->out->n++] = (unsigned char)sym;
        } else if (sym == 256) {                           /* end of block */
            return 0;
        } else {                                           /* a back-reference */
            sym -= 257;
            if (sym >= 29)
                return fail(s, "bad block: length symbol %d (only 257..285 exist)", sym + 257);
            size_t len = (size_t)length_base[sym] + bits(s, length_extra[sym]);
            int dsym = huffman_decode(s, distcode);
            if (dsym < 0) return -1;
            if (dsym >= 30)
                return fail(s, "bad block: distance symbol %d (only 0..29 exist)", dsym);
            size_t dist = (size_t)dist_base[dsym] + bits(s, dist_extra[dsym]);
            if (s->failed) return -1;
            if (dist > s->out->n)
                return fail(s, "bad block: a distance of %zu bytes reaches before the start "
                            "of the output (%zu bytes so far)", dist, s->out->n);
            if (out_reserve(s, len) != 0) return -1;
            unsigned char *o = s->out->p + s->out->n;      /* seek to the end of the output */
            for (size_t i = 0; i < len; i++) o[i] = o[(ptrdiff_t)i - (ptrdiff_t)dist];
            s->out->n += len;
        }
    }
}

/* Fixed Huffman (type 1): the code of RFC 1951 §3.2.6, literal/length lengths 8 (0..143),
 * 9 (144..255), 7 (256..279), 8 (280..287); 32 distance codes of 5 bits. */
static int inflate_fixed(Inflate *s) {
    unsigned char length[FIXED_LCODES];
    int sym = 0;
    for (; sym < 144; sym++) length[sym] = 8;
    for (; sym < 256; sym++) length[sym] = 9;
    for (; sym < 280; sym++) length[sym] = 7;
    for (; sym < FIXED_LCODES; sym++) length[sym] = 8;
    Huffman lencode, distcode;
    huffman_build(&lencode, length, FIXED_LCODES);
    for (sym = 0; sym < 32; sym++) length[sym] = 5;
    huffman_build(&distcode, length, 32);
    return inflate_codes(s, &lencode, &distcode);
}

/* Dynamic Huffman (type 2), RFC 1951 §3.2.7: HLIT, HDIST, HCLEN; the lengths of the
 * code-length code (3 bits each, in a fixed order); then the literal/length and distance
 * code lengths, written in that code with three repeat symbols:
 *   16 = repeat the previous length 3..6 times (2 extra bits),
 *   17 = 3..10 zeros (3 extra bits), 18 = 11..138 zeros (7 extra bits). */
static int inflate_dynamic(Inflate *s) {
    static const unsigned char order[19] = {
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    int nlen = (int)bits(s, 5) + 257;    /* HLIT + 257 literal/length codes */
    int ndist = (int)bits(s, 5) + 1;     /* HDIST + 1 distance codes */
    int ncode = (int)bits(s, 4) + 4;     /* HCLEN + 4 code-length codes */
    if (s->failed) return -1;
    if (nlen > MAX_LCODES || ndist > MAX_DCODES)
        return fail(s, "bad block: %d literal/length and %d distance codes (at most 286 and "
                    "30)", nlen, ndist);
    unsigned char length[MAX_LCODES + MAX_DCODES] = {0};
    for (int i = 0; i < ncode; i++) length[order[i]] = (unsigned char)bits(s, 3);
    if (s->failed) return -1;
    Huffman lencode, distcode;
    if (huffman_build(&lencode, length, 19) != 0)
        return fail(s, "bad block: the code-length code is over-subscribed or incomplete");

    for (int index = 0; index < nlen + ndist;) {
        int sym = huffman_decode(s, &lencode);
        if (sym < 0) return -1;
        if (sym < 16) { length[index++] = (unsigned char)sym; continue; }
        unsigned char value = 0;
        int repeat;
        if (sym == 16) {
            if (index == 0)
                return fail(s, "bad block: repeat symbol 16 with no previous length");
            value = length[index - 1];
            repeat = 3 + (int)bits(s, 2);
        } else if (sym == 17) {
            repeat = 3 + (int)bits(s, 3);
        } else {
            repeat = 11 + (int)bits(s, 7);
        }
        if (s->failed) return -1;
        if (index + repeat > nlen + ndist)
            return fail(s, "bad block: code lengths repeat past the end of the table");
        while (repeat--) length[index++] = value;
    }
    if (length[256] == 0)
        return fail(s, "bad block: no code for the end-of-block symbol 256");
    if (huffman_check(s, &lencode, huffman_build(&lencode, length, nlen), nlen,
                      "literal/length") != 0)
        return -1;
    if (huffman_check(s, &distcode, huffman_build(&distcode, length + nlen, ndist), ndist,
                      "distance") != 0)
        return -1;
    return inflate_codes(s, &lencode, &distcode);
}

/* ========================================================================================
 * 4. Inflate: each block starts with BFINAL (1 bit) and BTYPE (2 bits). */

static int inflate_into(Out *out, const unsigned char *in, size_t n, size_t *used, char *err) {
    Inflate s = {.in = in, .n = n, .out = out, .err = err};
    int last;
    do {
        last = (int)bits(&s, 1);
        int type = (int)bits(&s, 2);
        if (s.failed) return -1;
        int rc = type == 0 ? inflate_stored(&s)
               : type == 1 ? inflate_fixed(&s)
               : type == 2 ? inflate_dynamic(&s)
               : fail(&s, "bad block: reserved block type 3");
        if (rc != 0) return -1;
    } while (!last);
    *used = s.pos;    /* the unused bits of the last byte are padding */
    return 0;
}

int inflate_memory(const unsigned char *in, size_t n, size_t max_out, size_t *used,
                   unsigned char **out, size_t *out_n, char err[GZ_ERR_MAX]) {
    Out o = {.max = max_out};
    *out = NULL;
    *out_n = 0;
    if (inflate_into(&o, in, n, used, err) != 0) { free(o.p); return -1; }
    *out = o.p ? o.p : malloc(1);    /* an empty stream is a valid, empty result */
    if (!*out) { snprintf(err, GZ_ERR_MAX, "out of memory"); return -1; }
    *out_n = o.n;
    return 0;
}

/* ========================================================================================
 * 5. Gunzip (RFC 1952). A member is
 *   header   1f 8b, CM = 8 (deflate), FLG, MTIME (4), XFL, OS        10 bytes
 *            [FEXTRA: XLEN (2, little-endian), XLEN bytes]
 *            [FNAME: zero-terminated] [FCOMMENT: zero-terminated]
 *            [FHCRC: the low 16 bits of the CRC-32 of the header bytes before it]
 *   data     a DEFLATE stream
 *   trailer  CRC-32 of the uncompressed data, ISIZE = its length mod 2^32 (4 + 4 bytes)
 * and a file is one or more members. */

enum { FTEXT = 1, FHCRC = 2, FEXTRA = 4, FNAME = 8, FCOMMENT = 16, FRESERVED = 0xe0 };

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int gz_is_gzip(const unsigned char *p, size_t n) {
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static int gz_error(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, GZ_ERR_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* Skip a zero-terminated header field starting at *pos. */
static int skip_string(const unsigned char *in, size_t n, size_t *pos, const char *what,
                       char *err) {
    const unsigned char *end = memchr(in + *pos, 0, n - *pos);
    if (!end) return gz_error(err, "truncated: the header's %s has no terminating zero", what);
    *pos = (size_t)(end - in) + 1;
    return 0;
}

/* Parse the header of the member at `start`; *data = where its DEFLATE stream begins. */
static int gz_header(const unsigned char *in, size_t n, size_t start, size_t *data,
                     char *err) {
    const unsigned char *h = in + start;
    size_t left = n - start;
    if (left >= 2 && !gz_is_gzip(h, left))
        return gz_error(err, "bad header: not gzip data (starts with %02x %02x, gzip starts "
                        "with 1f 8b)", h[0], h[1]);
    if (left < 10)
        return gz_error(err, "truncated: the gzip header needs 10 bytes, %zu left", left);
    if (h[2] != 8)
        return gz_error(err, "bad header: compression method %d (gzip uses 8 = deflate)",
                        h[2]);
    int flags = h[3];
    if (flags & FRESERVED)
        return gz_error(err, "bad header: reserved flag bits set (flags 0x%02x)", flags);
    size_t pos = start + 10;
    if (flags & FEXTRA) {
        if (n - pos < 2) return gz_error(err, "truncated: the header's extra field length");
        size_t xlen = in[pos] | (size_t)in[pos + 1] << 8;
        pos += 2;
        if (n - pos < xlen)
            return gz_error(err, "truncated: the header's extra field of %zu bytes", xlen);
        pos += xlen;
    }
    if ((flags & FNAME) && skip_string(in, n, &pos, "file name", err) != 0) return -1;
    if ((flags & FCOMMENT) && skip_string(in, n, &pos, "comment", err) != 0) return -1;
    if (flags & FHCRC) {
        if (n - pos < 2) return gz_error(err, "truncated: the header CRC is cut off");
        unsigned want = in[pos] | (unsigned)in[pos + 1] << 8;
        unsigned got = crc32_update(0, h, pos - start) & 0xffffu;
        if (got != want)
            return gz_error(err, "bad CRC: the header's CRC-16 is %04x but it says %04x", got,
                            want);
        pos += 2;
    }
    *data = pos;
    return 0;
}

int gunzip_memory(const unsigned char *in, size_t n, size_t max_out,
                  unsigned char **out, size_t *out_n, char err[GZ_ERR_MAX]) {
    Out o = {.max = max_out};
    *out = NULL;
    *out_n = 0;
    if (n == 0) return gz_error(err, "truncated: empty input (gzip data has at least 18 bytes)");
    size_t pos = 0;
    for (int member = 0; pos < n; member++) {
        if (member > 0 && !gz_is_gzip(in + pos, n - pos)) {
            free(o.p);
            return gz_error(err, "trailing garbage: %zu bytes after the end of the gzip data",
                            n - pos);
        }
        size_t data = 0, used = 0, start = o.n;
        if (gz_header(in, n, pos, &data, err) != 0 ||
            inflate_into(&o, in + data, n - data, &used, err) != 0) {
            free(o.p);
            return -1;
        }
        pos = data + used;
        if (n - pos < 8) {
            free(o.p);
            return gz_error(err, "truncated: the gzip trailer (CRC-32 and length, 8 bytes) "
                            "has %zu", n - pos);
        }
        uint32_t crc = o.n > start ? crc32_update(0, o.p + start, o.n - start) : 0;
        uint32_t want_crc = get_le32(in + pos), want_size = get_le32(in + pos + 4);
        pos += 8;
        if (crc != want_crc) {
            free(o.p);
            return gz_error(err, "bad CRC: the data's CRC-32 is %08x but the trailer says "
                            "%08x", (unsigned)crc, (unsigned)want_crc);
        }
        if ((uint32_t)(o.n - start) != want_size) {
            free(o.p);
            return gz_error(err, "bad length: %zu bytes decompressed but the trailer says %u "
                            "(mod 2^32)", o.n - start, (unsigned)want_size);
        }
    }
    *out = o.p ? o.p : malloc(1);    /* an empty file is a valid, empty result */
    if (!*out) return gz_error(err, "out of memory");
    *out_n = o.n;
    return 0;
}
