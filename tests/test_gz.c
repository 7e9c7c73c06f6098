/* test_gz.c: inflate and gunzip against files made by the `gzip` program itself.
 *
 *   1. hand-made DEFLATE streams: the smallest valid ones and one of each kind of bad block
 *   2. gzip -1 and -9 on random (incompressible: stored blocks), text-like (dynamic
 *      Huffman) and tiny (fixed Huffman) data of many sizes, the empty file, a named file,
 *      two members; the three block kinds must all have appeared
 *   3. every header flag (FEXTRA, FNAME, FCOMMENT, FHCRC) on a hand-built header that
 *      `gzip -d` must accept too, and a wrong header CRC
 *   4. damage: every truncation, every single-bit flip, trailing garbage, the trailer
 *
 * The gzip program is run through system() in a temporary directory (it is on every
 * machine that builds this project; the test fails with a message if it is not).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../crc32.h"
#include "../gz.h"
#include "../tensor.h"
#include "harness.h"

#define MAX_OUT ((size_t)1 << 26)   /* no test output is larger than 64 MB */

static char tmp_prefix[128];

static void make_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s_%s", tmp_prefix, name);
}

static void write_file(const char *path, const unsigned char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) die("test_gz: cannot write %s", path);
    if (n && fwrite(bytes, 1, n, f) != n) die("test_gz: short write to %s", path);
    fclose(f);
}

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die("test_gz: cannot read %s", path);
    size_t cap = 1 << 16, len = 0;
    unsigned char *p = xmalloc(cap, "file bytes");
    for (;;) {
        if (len == cap) {
            cap *= 2;
            unsigned char *q = realloc(p, cap);
            if (!q) die("test_gz: out of memory");
            p = q;
        }
        size_t got = fread(p + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    *n = len;
    return p;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return rc;
}

/* Gunzip in (n bytes) and compare with want (want_n bytes); returns 1 if equal. */
static int gunzip_equals(const unsigned char *in, size_t n, const unsigned char *want,
                         size_t want_n, char *err) {
    unsigned char *out;
    size_t out_n;
    err[0] = 0;
    if (gunzip_memory(in, n, MAX_OUT, &out, &out_n, err) != 0) return 0;
    int same = out_n == want_n && (want_n == 0 || memcmp(out, want, want_n) == 0);
    free(out);
    return same;
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A rejection message must name its kind in the first word(s). */
static int known_kind(const char *err) {
    static const char *kinds[] = {"truncated: ", "bad CRC: ", "bad block: ", "bad header: ",
                                  "bad length: ", "trailing garbage: ", "too large: "};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (starts_with(err, kinds[i])) return 1;
    return 0;
}

/* ----------------------------------------------------------------------------------------
 * 1. Hand-made DEFLATE streams (bits are packed from the least significant bit) */

static int inflate_ok(const unsigned char *in, size_t n, const char *want, size_t *used,
                      char *err) {
    unsigned char *out;
    size_t out_n;
    if (inflate_memory(in, n, MAX_OUT, used, &out, &out_n, err) != 0) return 0;
    /* an empty output may come back as NULL: memcmp must not see it */
    int same = out_n == strlen(want) && (out_n == 0 || memcmp(out, want, out_n) == 0);
    free(out);
    return same;
}

static int inflate_fails(const unsigned char *in, size_t n, const char *kind, char *err) {
    unsigned char *out = (unsigned char *)"x";
    size_t out_n = 7, used;
    err[0] = 0;
    int rc = inflate_memory(in, n, MAX_OUT, &used, &out, &out_n, err);
    return rc == -1 && out == NULL && out_n == 0 && starts_with(err, kind);
}

static void test_hand_made(void) {
    char err[GZ_ERR_MAX];
    size_t used;
    /* fixed block, BFINAL = 1, BTYPE = 01, then end-of-block 256 = 0000000 (7 bits) */
    const unsigned char empty_fixed[] = {0x03, 0x00};
    CHECK(inflate_ok(empty_fixed, 2, "", &used, err) && used == 2, "empty fixed block");
    /* stored block: BFINAL 1, BTYPE 00, pad to the byte; LEN 3, NLEN ~3; "abc" */
    const unsigned char stored[] = {0x01, 0x03, 0x00, 0xfc, 0xff, 'a', 'b', 'c'};
    CHECK(inflate_ok(stored, sizeof stored, "abc", &used, err) && used == 8, "stored block");
    /* a non-final empty stored block, then the stored "abc": blocks chain */
    const unsigned char two[] = {0x00, 0x00, 0x00, 0xff, 0xff,
                                 0x01, 0x03, 0x00, 0xfc, 0xff, 'a', 'b', 'c'};
    CHECK(inflate_ok(two, sizeof two, "abc", &used, err) && used == 13, "two stored blocks");

    const unsigned char bad_type[] = {0x07, 0x00};        /* BFINAL 1, BTYPE 11 */
    CHECK(inflate_fails(bad_type, 2, "bad block: reserved block type 3", err), "%s", err);
    const unsigned char bad_nlen[] = {0x01, 0x03, 0x00, 0xfd, 0xff, 'a', 'b', 'c'};
    CHECK(inflate_fails(bad_nlen, sizeof bad_nlen, "bad block: stored length", err), "%s", err);
    CHECK(inflate_fails(stored, 7, "truncated: ", err), "stored block cut: %s", err);
    CHECK(inflate_fails(stored, 3, "truncated: ", err), "stored length cut: %s", err);
    CHECK(inflate_fails(stored, 0, "truncated: ", err), "no input: %s", err);
    /* fixed: length symbol 257 (0000001) with distance 1 (00000) before any output */
    const unsigned char far[] = {0x03, 0x02, 0x00};
    CHECK(inflate_fails(far, sizeof far, "bad block: a distance of 1 bytes reaches", err),
          "distance too far: %s", err);
    /* the same with a literal 'a' first (0x30 + 'a' as 8 bits), then copy 3 from 1 back,
     * then end of block: "aaaa". 'a' = 0x61 -> code 0x91 = 10010001 */
    /* bits: 1 10 | 10010001 | 0000001 | 00000 | 0000000 */
    const unsigned char run4[] = {0x4b, 0x04, 0x02, 0x00};
    CHECK(inflate_ok(run4, sizeof run4, "aaaa", &used, err), "overlapping copy: %s", err);
    /* fixed: literal/length symbol 286 (11000110, 8 bits) does not exist */
    const unsigned char sym286[] = {0x1b, 0x03};
    CHECK(inflate_fails(sym286, sizeof sym286, "bad block: length symbol 286", err), "%s", err);
    /* dynamic: HLIT 30 (287 codes) is more than the 286 that exist */
    const unsigned char hlit[] = {0xf5, 0x00, 0x00, 0x00};
    CHECK(inflate_fails(hlit, sizeof hlit, "bad block: 287 literal/length", err), "%s", err);
    /* dynamic: HCLEN 0 (4 code-length codes: 16, 17, 18, 0), all of length 0 */
    const unsigned char nocode[] = {0x05, 0x00, 0x00, 0x00};
    CHECK(inflate_fails(nocode, sizeof nocode, "bad block: the code-length code", err), "%s", err);
    /* limit: 3 bytes are fine with max_out 3, too large with 2 */
    unsigned char *out;
    size_t out_n;
    CHECK(inflate_memory(stored, sizeof stored, 2, &used, &out, &out_n, err) == -1 &&
          starts_with(err, "too large: "), "output limit: %s", err);
}

/* ----------------------------------------------------------------------------------------
 * 2. Files made by gzip */

typedef enum { RANDOM_BYTES, TEXT_LIKE } Kind;

/* Random bytes do not compress (gzip stores them); text-like data from a small vocabulary
 * with repeats compresses with dynamic codes. */
static void make_data(unsigned char *p, size_t n, Kind kind, Rng *rng) {
    static const char *words[] = {"the ", "diffusion ", "model ", "adds ", "noise ",
                                  "and ", "learns ", "to ", "remove ", "it, ", "step ",
                                  "by ", "step. ", "\n"};
    size_t i = 0;
    while (i < n) {
        if (kind == RANDOM_BYTES) { p[i++] = (unsigned char)rng_int(rng, 256); continue; }
        const char *w = words[rng_int(rng, (int)(sizeof words / sizeof words[0]))];
        for (; *w && i < n; w++) p[i++] = (unsigned char)*w;
    }
}

/* The BTYPE of the first block of a gzip member with a plain 10-byte header. */
static int first_block_type(const unsigned char *gz, size_t n) {
    if (n < 11 || gz[3] != 0) return -1;
    return (gz[10] >> 1) & 3;
}

static int seen_type[3];

static void check_gzip_roundtrip(const unsigned char *data, size_t n, int level,
                                 const char *tag) {
    char path[256], gzpath[256], cmd[700], err[GZ_ERR_MAX];
    make_path(path, sizeof path, "plain");
    make_path(gzpath, sizeof gzpath, "plain.gz");
    write_file(path, data, n);
    snprintf(cmd, sizeof cmd, "gzip -%d -n -c < '%s' > '%s'", level, path, gzpath);
    if (run(cmd) != 0) { CHECK(0, "gzip failed: %s", cmd); return; }
    size_t gz_n;
    unsigned char *gz = read_file(gzpath, &gz_n);
    int type = first_block_type(gz, gz_n);
    if (type >= 0 && type < 3) seen_type[type] = 1;
    CHECK(gunzip_equals(gz, gz_n, data, n, err), "gzip -%d of %zu %s bytes: %s", level, n,
          tag, err);
    free(gz);
}

static void test_gzip_files(void) {
    static const size_t sizes[] = {0, 1, 2, 3, 17, 100, 257, 1000, 4096, 32768, 65535,
                                   65536, 65537, 100000, 300000};
    size_t max = 300000;
    unsigned char *data = xmalloc(max, "data");
    Rng rng;
    rng_seed(&rng, 13);
    int cases = 0;
    for (int kind = 0; kind < 2; kind++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            make_data(data, sizes[s], (Kind)kind, &rng);
            check_gzip_roundtrip(data, sizes[s], 1, kind ? "text-like" : "random");
            check_gzip_roundtrip(data, sizes[s], 9, kind ? "text-like" : "random");
            cases += 2;
        }
    }
    /* short text: gzip chooses the fixed code */
    const char *hello = "hello, hello, diffusion";
    check_gzip_roundtrip((const unsigned char *)hello, strlen(hello), 9, "short text");
    CHECK(seen_type[0] && seen_type[1] && seen_type[2],
          "all three block kinds seen (stored %d, fixed %d, dynamic %d)", seen_type[0],
          seen_type[1], seen_type[2]);

    /* a named file (FNAME set by gzip) and two members (cat a.gz b.gz) */
    char path[256], gzpath[256], cat[256], cmd[1200], err[GZ_ERR_MAX];
    make_path(path, sizeof path, "named.txt");
    make_path(gzpath, sizeof gzpath, "named.txt.gz");
    make_path(cat, sizeof cat, "two.gz");
    make_data(data, 5000, TEXT_LIKE, &rng);
    write_file(path, data, 5000);
    snprintf(cmd, sizeof cmd, "gzip -f -k '%s' && cat '%s' '%s' > '%s'", path, gzpath, gzpath,
             cat);
    if (run(cmd) != 0) { CHECK(0, "gzip failed: %s", cmd); free(data); return; }
    size_t n;
    unsigned char *gz = read_file(gzpath, &n);
    CHECK(gz[3] & 8, "gzip sets FNAME for a named file");
    CHECK(gunzip_equals(gz, n, data, 5000, err), "named gzip file: %s", err);
    free(gz);
    gz = read_file(cat, &n);
    memcpy(data + 5000, data, 5000);
    CHECK(gunzip_equals(gz, n, data, 10000, err), "two members: %s", err);
    free(gz);
    remove(path); remove(gzpath); remove(cat);
    free(data);
    printf("test_gz: %d gzip files of random and text-like data decompressed\n", cases);
}

/* ----------------------------------------------------------------------------------------
 * 3. Every header field */

static void test_header_fields(void) {
    const char *text = "header fields: extra, name, comment and a header CRC";
    size_t n = strlen(text);
    char path[256], gzpath[256], cmd[700], err[GZ_ERR_MAX];
    make_path(path, sizeof path, "h");
    make_path(gzpath, sizeof gzpath, "h.gz");
    write_file(path, (const unsigned char *)text, n);
    snprintf(cmd, sizeof cmd, "gzip -9 -n -c < '%s' > '%s'", path, gzpath);
    if (run(cmd) != 0) { CHECK(0, "gzip failed"); return; }
    size_t gz_n;
    unsigned char *gz = read_file(gzpath, &gz_n);
    /* header: the 10 bytes with FEXTRA | FNAME | FCOMMENT | FHCRC, then the fields */
    unsigned char *h = xmalloc(gz_n + 64, "header");
    memcpy(h, gz, 10);
    h[3] = 4 | 8 | 16 | 2;
    size_t p = 10;
    h[p++] = 3; h[p++] = 0;                        /* XLEN 3 */
    h[p++] = 'A'; h[p++] = 'B'; h[p++] = 0;        /* subfield id and nothing */
    memcpy(h + p, "x.txt", 6); p += 6;             /* FNAME with its zero */
    memcpy(h + p, "a note", 7); p += 7;            /* FCOMMENT with its zero */
    uint32_t crc = crc32_update(0, h, p);
    h[p++] = (unsigned char)crc; h[p++] = (unsigned char)(crc >> 8);
    memcpy(h + p, gz + 10, gz_n - 10);
    size_t h_n = p + gz_n - 10;
    CHECK(gunzip_equals(h, h_n, (const unsigned char *)text, n, err), "all flags: %s", err);
    /* gzip itself accepts the hand-built header (so it is built right) */
    write_file(gzpath, h, h_n);
    snprintf(cmd, sizeof cmd, "gzip -d -c < '%s' | cmp -s - '%s'", gzpath, path);
    CHECK(run(cmd) == 0, "gzip -d accepts the header with every flag");
    h[p - 2] ^= 1;                                 /* a wrong header CRC */
    CHECK(!gunzip_equals(h, h_n, (const unsigned char *)text, n, err) &&
          starts_with(err, "bad CRC: the header"), "wrong header CRC: %s", err);
    h[p - 2] ^= 1;
    h[3] |= 0x20;                                  /* a reserved flag */
    CHECK(!gunzip_equals(h, h_n, (const unsigned char *)text, n, err) &&
          starts_with(err, "bad header: reserved"), "reserved flag: %s", err);
    h[3] &= 0x1f;
    h[2] = 7;                                      /* not deflate */
    CHECK(!gunzip_equals(h, h_n, (const unsigned char *)text, n, err) &&
          starts_with(err, "bad header: compression method 7"), "method: %s", err);
    h[2] = 8;
    /* the name without its zero: truncated */
    CHECK(!gunzip_equals(h, 18, (const unsigned char *)text, n, err) &&
          starts_with(err, "truncated: the header's file name"), "cut name: %s", err);
    CHECK(!gunzip_equals((const unsigned char *)"PK\3\4", 4, NULL, 0, err) &&
          starts_with(err, "bad header: not gzip"), "zip file: %s", err);
    CHECK(!gunzip_equals(h, 0, NULL, 0, err) && starts_with(err, "truncated: empty"),
          "empty input: %s", err);
    CHECK(gz_is_gzip(gz, gz_n) && !gz_is_gzip(gz, 1) && !gz_is_gzip((const unsigned char *)
          "\x1f\x8c", 2), "gz_is_gzip");
    remove(path); remove(gzpath);
    free(h);
    free(gz);
}

/* ----------------------------------------------------------------------------------------
 * 4. Damage. A single flipped bit must be rejected, with a message of a known kind, unless
 * it falls where gzip protects nothing: MTIME, XFL, OS and FTEXT in the header (RFC 1952
 * has no check on them) and the unused padding bits of DEFLATE (after a block header of a
 * stored block, after the final block): a flip there gives the same output, and is counted.
 * A flip accepted with DIFFERENT output would be a missed check: none may exist. */

static void check_damage(const unsigned char *data, size_t n, int level, const char *tag) {
    char path[256], gzpath[256], cmd[700], err[GZ_ERR_MAX];
    make_path(path, sizeof path, "d");
    make_path(gzpath, sizeof gzpath, "d.gz");
    write_file(path, data, n);
    snprintf(cmd, sizeof cmd, "gzip -%d -n -c < '%s' > '%s'", level, path, gzpath);
    if (run(cmd) != 0) { CHECK(0, "gzip failed"); return; }
    size_t gz_n;
    unsigned char *gz = read_file(gzpath, &gz_n);
    unsigned char *bad = xmalloc(gz_n + 16, "damaged copy");

    /* every truncation */
    int cut_ok = 0;
    for (size_t len = 0; len < gz_n; len++) {
        memcpy(bad, gz, len);
        if (!gunzip_equals(bad, len, data, n, err) && starts_with(err, "truncated: ")) cut_ok++;
    }
    CHECK(cut_ok == (int)gz_n, "%s: %d of %zu truncations rejected as truncated (%s)", tag,
          cut_ok, gz_n, err);

    /* every single-bit flip */
    int rejected = 0, harmless = 0, missed = 0, unknown = 0, header_free = 0;
    for (size_t byte = 0; byte < gz_n; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, gz, gz_n);
            bad[byte] ^= (unsigned char)(1u << bit);
            int unprotected = (byte >= 4 && byte < 10) || (byte == 3 && bit == 0);
            unsigned char *out;
            size_t out_n;
            err[0] = 0;
            if (gunzip_memory(bad, gz_n, MAX_OUT, &out, &out_n, err) != 0) {
                rejected++;
                if (!known_kind(err)) unknown++;
                continue;
            }
            int same = out_n == n && (n == 0 || memcmp(out, data, n) == 0);
            free(out);
            if (!same) missed++;
            else if (unprotected) header_free++;
            else harmless++;
        }
    }
    CHECK(missed == 0, "%s: %d bit flips accepted with different output", tag, missed);
    CHECK(unknown == 0, "%s: %d rejections without a known kind", tag, unknown);
    CHECK(header_free == 6 * 8 + 1, "%s: %d flips in MTIME/XFL/OS/FTEXT accepted (48 + 1)",
          tag, header_free);
    CHECK(harmless <= 7 * (int)(gz_n / 5000 + 2), "%s: %d padding-bit flips accepted", tag,
          harmless);
    printf("test_gz: %s (%zu bytes): %zu truncations and %d bit flips rejected, %d flips in "
           "padding bits and %d in unprotected header fields give the same data\n", tag, gz_n,
           gz_n, rejected, harmless, header_free);

    /* the trailer: CRC-32 and ISIZE; garbage after the end */
    memcpy(bad, gz, gz_n);
    bad[gz_n - 8] ^= 0x10;
    CHECK(!gunzip_equals(bad, gz_n, data, n, err) && starts_with(err, "bad CRC: the data"),
          "%s: trailer CRC: %s", tag, err);
    memcpy(bad, gz, gz_n);
    bad[gz_n - 1] ^= 0x80;
    CHECK(!gunzip_equals(bad, gz_n, data, n, err) && starts_with(err, "bad length: "),
          "%s: trailer ISIZE: %s", tag, err);
    memcpy(bad, gz, gz_n);
    memcpy(bad + gz_n, "junk", 4);
    CHECK(!gunzip_equals(bad, gz_n + 4, data, n, err) &&
          starts_with(err, "trailing garbage: 4 bytes"), "%s: garbage: %s", tag, err);
    remove(path); remove(gzpath);
    free(bad);
    free(gz);
}

static void test_damage(void) {
    Rng rng;
    rng_seed(&rng, 7);
    unsigned char data[3000];
    make_data(data, 600, RANDOM_BYTES, &rng);
    check_damage(data, 600, 9, "stored");
    make_data(data, 3000, TEXT_LIKE, &rng);
    check_damage(data, 3000, 9, "dynamic");
    check_damage((const unsigned char *)"a small fixed block, a small fixed block", 40, 9,
                 "fixed");
}

/* Long runs and runs of every length (mutation testing: the base of length symbol 285,
 * 258, was never decoded: random and text-like data make no match that long). A run of
 * L + 1 equal bytes whose byte occurs nowhere else is a literal and then a match of length
 * L at distance 1 (there is no other place to match), so after one lead byte, 256 runs of
 * 4 .. 259 bytes, each of its own byte value L − 3, ask for every length 3 .. 258 (symbols
 * 257 .. 285 and all their extra bits), at gzip -9 and -1 alike (counted in inflate);
 * 100000 zeros are a chain of 258-byte matches. (Runs that shared their bytes, as before,
 * let gzip match the start of a run far back instead: length 41 was then decoded nowhere
 * in test_gz.) */
static void test_gzip_runs(void) {
    size_t n = 0, max = 40000;
    unsigned char *data = xmalloc(max, "runs");
    data[n++] = 255;   /* gzip never matches position 0 (0 is its "no match" mark): a lead byte */
    for (int L = 3; L <= 258; L++)
        for (int i = 0; i <= L; i++) data[n++] = (unsigned char)(L - 3);
    check_gzip_roundtrip(data, n, 9, "runs of 4..259 equal");
    check_gzip_roundtrip(data, n, 1, "runs of 4..259 equal");
    free(data);
    size_t zn = 100000;
    unsigned char *zeros = xcalloc(zn, 1, "zeros");
    check_gzip_roundtrip(zeros, zn, 9, "zero");
    free(zeros);
}

/* ---------------------------------------------------------------------------------------- */

int main(void) {
    int here;
    unsigned long nonce = (unsigned long)time(NULL) ^ ((unsigned long)clock() << 16) ^
                          (unsigned long)(uintptr_t)&here;
    snprintf(tmp_prefix, sizeof tmp_prefix, "/tmp/ddpm_test_gz_%lx", nonce);
    if (run("gzip --version > /dev/null 2>&1") != 0) {
        CHECK(0, "the gzip program is needed by this test (apt-get install gzip)");
        return test_summary("test_gz");
    }
    test_hand_made();
    test_gzip_files();
    test_gzip_runs();
    test_header_fields();
    test_damage();
    return test_summary("test_gz");
}
