/* test_plot.c: tests of plot.c, the pictures without libraries.
 *
 * The files are checked by reading them back with decoders written here, independently
 * of the writers: a PNG reader (every chunk's CRC computed bitwise, the stored deflate
 * blocks inflated, Adler-32 recomputed, every pixel compared), a GIF reader (its own LZW
 * decoder; every pixel must be a nearest palette colour of the source frame), and an
 * SVG well-formedness check (tags balance, entities are the escaped ones). Drawing is
 * checked pixel by pixel: text stays inside its box, heatmap corners have the colormap
 * colours of the grid corners, image grids map [-1, 1] to 0..255.
 * What it is not: a test of how pictures look. Look at one (out/ of a program) for that.
 *
 * Files go to a fresh directory /tmp/test_plot_XXXXXX, removed at the end.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp() and rmdir() under -std=c11 */
#include "../plot.h"
#include "crc_bitwise.h"
#include "harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No tolerances: every check here is exact (bytes, pixels, checksums). */

static char tmpdir[] = "/tmp/test_plot_XXXXXX";
static const unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0};

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Whole file into memory (NULL if unreadable); *n = its size. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *d = malloc(cap);
    while ((got = fread(d + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) d = realloc(d, cap *= 2);
    }
    fclose(f);
    *n = len;
    return d;
}

/* xorshift32 (Marsaglia, 2003): noise for test pictures, independent of tensor.c's Rng. */
static uint32_t noise(uint32_t *s) {
    *s ^= *s << 13; *s ^= *s >> 17; *s ^= *s << 5;
    return *s;
}

static int same_rgb(const unsigned char *a, const unsigned char *b) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

static const unsigned char *pixel(const Image *img, int x, int y) {
    return img->rgb + 3 * ((size_t)y * img->w + x);
}

/* ========================================================================================
 * Checksums, computed here the slow, obvious way (CRC-32: crc_bitwise.h)
 * ======================================================================================== */

static uint32_t adler_slow(const unsigned char *p, size_t n) {   // sums first, mod last
    uint64_t s1 = 1, s2 = 0;
    for (size_t i = 0; i < n; i++) { s1 += p[i]; s2 += s1; }
    return (uint32_t)((s2 % 65521) << 16 | (s1 % 65521));
}

static void test_checksums(void) {
    CHECK(adler32_update(1, "Wikipedia", 9) == 0x11E60398u, "Adler-32 of Wikipedia: %08X",
          (unsigned)adler32_update(1, "Wikipedia", 9));
    CHECK(adler32_update(1, "", 0) == 1, "empty input");

    enum { N = 100000 };   // enough bytes for Adler's sums to wrap 65521 many times
    unsigned char *buf = malloc(N);
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) buf[i] = (unsigned char)noise(&s);
    CHECK(adler32_update(adler32_update(1, buf, 777), buf + 777, N - 777) == adler_slow(buf, N),
          "Adler-32 vs slow sums");
    memset(buf, 255, N);   // the largest sums
    CHECK(adler32_update(1, buf, N) == adler_slow(buf, N), "Adler-32 of 0xFF bytes");
    free(buf);
}

/* ========================================================================================
 * PNG reader
 * ======================================================================================== */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct {
    int w, h, channels;    /* channels 3 (RGB) or 1 (gray) */
    int blocks;            /* stored deflate blocks seen */
    unsigned char *px;     /* (h, w, channels) */
} Png;

/* Reads and checks a PNG as we write it; returns 0 if every check passed. */
static int png_read(const char *path, Png *png) {
    int failed_before = test_failed_count;
    memset(png, 0, sizeof *png);
    size_t n = 0, pos = 8, nz = 0;
    unsigned char *d = slurp(path, &n), *z = malloc(n + 1);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    CHECK(d && n >= 8 && memcmp(d, sig, 8) == 0, "%s: PNG signature", path);
    if (!d || n < 8) { free(d); free(z); return -1; }

    // chunks: length, type, data, CRC over type and data
    int nchunks = 0, ihdr_ok = 0, iend = 0;
    while (!iend && pos + 12 <= n) {
        uint32_t len = be32(d + pos);
        const unsigned char *type = d + pos + 4, *data = d + pos + 8;
        if (len > n - pos - 12) { CHECK(0, "%s: chunk runs past the end", path); break; }
        CHECK(be32(data + len) == crc_bitwise(type, len + 4), "%s: CRC of chunk %.4s",
              path, (const char *)type);
        if (memcmp(type, "IHDR", 4) == 0) {
            CHECK(nchunks == 0 && len == 13, "%s: IHDR first, 13 bytes", path);
            png->w = (int)be32(data);
            png->h = (int)be32(data + 4);
            png->channels = data[9] == 2 ? 3 : 1;
            CHECK(data[8] == 8 && (data[9] == 2 || data[9] == 0), "%s: 8-bit RGB or gray", path);
            CHECK(data[10] == 0 && data[11] == 0 && data[12] == 0, "%s: methods 0", path);
            ihdr_ok = png->w > 0 && png->h > 0;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            memcpy(z + nz, data, len);   // IDAT chunks concatenate into one zlib stream
            nz += len;
        } else if (memcmp(type, "IEND", 4) == 0) {
            CHECK(len == 0, "%s: empty IEND", path);
            iend = 1;
        }
        nchunks++;
        pos += 12 + (size_t)len;
    }
    CHECK(ihdr_ok && iend && pos == n, "%s: IHDR ... IEND and nothing after", path);

    // zlib: CMF, FLG with (CMF 256 + FLG) % 31 == 0, then stored blocks, then Adler-32
    size_t row = 1 + (size_t)png->w * png->channels, nraw = 0, zp = 2;
    unsigned char *raw = ihdr_ok ? malloc(row * png->h) : NULL;
    CHECK(nz >= 2 && (z[0] & 15) == 8 && (z[0] * 256 + z[1]) % 31 == 0 && !(z[1] & 0x20),
          "%s: zlib header", path);
    for (int final = 0; raw && !final && zp + 5 <= nz; ) {
        final = z[zp] & 1;
        int btype = (z[zp] >> 1) & 3;
        unsigned len = z[zp + 1] | z[zp + 2] << 8, nlen = z[zp + 3] | z[zp + 4] << 8;
        CHECK(btype == 0, "%s: BTYPE %d, want 00 (stored)", path, btype);
        CHECK(len == (~nlen & 0xFFFF), "%s: LEN %u NLEN %u", path, len, nlen);
        if (btype != 0 || zp + 5 + len > nz || nraw + len > row * png->h) {
            CHECK(0, "%s: stored block out of bounds", path);
            break;
        }
        memcpy(raw + nraw, z + zp + 5, len);
        nraw += len;
        zp += 5 + len;
        png->blocks++;
    }
    CHECK(raw && nraw == row * png->h, "%s: %zu raw bytes, want %zu", path, nraw,
          row * png->h);
    CHECK(zp + 4 == nz && raw && be32(z + zp) == adler_slow(raw, nraw), "%s: Adler-32", path);

    // scanlines: filter byte 0, then the pixels as they are
    if (raw && nraw == row * png->h) {
        png->px = malloc(row * png->h);
        int filters_ok = 1;
        for (int y = 0; y < png->h; y++) {
            filters_ok &= raw[y * row] == 0;
            memcpy(png->px + y * (row - 1), raw + y * row + 1, row - 1);
        }
        CHECK(filters_ok, "%s: filter byte 0 on every row", path);
    }
    free(raw);
    free(z);
    free(d);
    return test_failed_count == failed_before && png->px ? 0 : -1;
}

static void check_png_roundtrip(const char *name, const Image *img, int min_blocks) {
    char path[256], tmp[300];
    tmp_path(path, sizeof path, name);
    CHECK(png_write(path, img) == 0, "png_write %s", path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmp), "%s: no .tmp left behind", tmp);
    Png png;
    if (png_read(path, &png) == 0) {
        CHECK(png.w == img->w && png.h == img->h && png.channels == 3, "%s: size", path);
        CHECK(memcmp(png.px, img->rgb, (size_t)img->w * img->h * 3) == 0,
              "%s: every pixel as written", path);
        CHECK(png.blocks >= min_blocks, "%s: %d stored blocks, want >= %d", path, png.blocks,
              min_blocks);
    }
    free(png.px);
    remove(path);
}

static void test_png(void) {
    Image img;   // a labelled heatmap, then noise large enough for two stored blocks
    image_init(&img, 96, 64);
    double grid[4 * 3];
    for (int i = 0; i < 12; i++) grid[i] = i;
    draw_heatmap(&img, 4, 4, 60, 40, grid, 4, 3, 0, 11);
    draw_text(&img, 4, 50, "t = 10", black, 1);
    draw_line(&img, 0, 63, 95, 0, black);
    check_png_roundtrip("small.png", &img, 1);
    image_free(&img);

    image_init(&img, 200, 150);   // 150 (1 + 600) = 90150 raw bytes > 65535
    uint32_t s = 7;
    for (size_t i = 0; i < (size_t)200 * 150 * 3; i++) img.rgb[i] = (unsigned char)noise(&s);
    check_png_roundtrip("noise.png", &img, 2);
    image_free(&img);

    image_init(&img, 1, 1);
    check_png_roundtrip("one.png", &img, 1);
    image_free(&img);

    char path[256];
    unsigned char gray[5 * 7];
    for (int i = 0; i < 35; i++) gray[i] = (unsigned char)(i * 7);
    tmp_path(path, sizeof path, "gray.png");
    CHECK(png_write_gray(path, gray, 7, 5) == 0, "png_write_gray");
    Png png;
    if (png_read(path, &png) == 0)
        CHECK(png.w == 7 && png.h == 5 && png.channels == 1 && memcmp(png.px, gray, 35) == 0,
              "gray PNG pixels");
    free(png.px);
    remove(path);

    // failure: a missing directory gives -1, a message, and no file
    image_init(&img, 2, 2);
    tmp_path(path, sizeof path, "no/such/dir/x.png");
    fprintf(stderr, "(expected) ");
    CHECK(png_write(path, &img) == -1, "png_write into a missing directory returns -1");
    CHECK(!file_exists(path), "no file after a failed write");
    image_free(&img);
}

/* ========================================================================================
 * GIF reader, with its own LZW decoder
 * ======================================================================================== */

#define GIF_MAX_FRAMES 4
#define TICK_TOL 1e-15   /* a tick step 0.1 or 0.5 as a power of ten times 1, 2 or 5: a rounding */

typedef struct {
    int w, h, loop, nframes;
    unsigned char pal[256][3];
    int delay[GIF_MAX_FRAMES];
    unsigned char *frame[GIF_MAX_FRAMES];   /* (h, w) palette indices */
    int clears, max_width;                  /* CLEAR codes seen, widest code read */
} Gif;

/* Decodes one LZW image of npix indices from the concatenated sub-block data.
 * The decoder's rules, from the GIF89a spec: codes start min + 1 bits wide; after each
 * code except the first after a CLEAR, a new entry (previous string + first index of the
 * current one) is added; when the next free code reaches 2^width the width grows, up to
 * 12 bits, and a full table adds nothing. Returns 0 if it decoded exactly npix indices
 * and met the END code. */
static int lzw_decode(const unsigned char *data, size_t n, int min, unsigned char *out,
                      size_t npix, Gif *gif) {
    static uint16_t prefix[4096];
    static unsigned char suffix[4096], first[4096];
    unsigned char stack[4096];
    int clear = 1 << min, end = clear + 1, width = min + 1, next = end + 1, prev = -1;
    size_t bit = 0, o = 0;
    for (int i = 0; i < clear; i++) { suffix[i] = first[i] = (unsigned char)i; }
    for (;;) {
        if (bit + (size_t)width > 8 * n) return -1;           // ran out without END
        int code = 0;
        for (int k = 0; k < width; k++, bit++)
            code |= ((data[bit / 8] >> (bit % 8)) & 1) << k;  // LSB first
        if (width > gif->max_width) gif->max_width = width;
        if (code == clear) { width = min + 1; next = end + 1; prev = -1; gif->clears++; continue; }
        if (code == end) break;
        if (code > next || (prev < 0 && code >= clear)) return -1;
        if (prev >= 0 && next < 4096) {     // the entry the encoder made one step earlier
            prefix[next] = (uint16_t)prev;
            suffix[next] = code < next ? first[code] : first[prev];
            first[next] = first[prev];
            next++;
            if (next == 1 << width && width < 12) width++;
        } else if (prev >= 0 && code == next) {
            return -1;                      // a full table cannot name a new string
        }
        int len = 0;                        // the string of code, last index first
        for (int c = code; ; c = prefix[c]) {
            stack[len++] = suffix[c];
            if (c < clear) break;
        }
        if (o + (size_t)len > npix) return -1;
        while (len) out[o++] = stack[--len];
        prev = code;
    }
    return o == npix ? 0 : -1;
}

static unsigned le16(const unsigned char *p) { return p[0] | (unsigned)p[1] << 8; }

static int gif_read(const char *path, Gif *gif) {
    int failed_before = test_failed_count;
    memset(gif, 0, sizeof *gif);
    gif->loop = -1;
    size_t n = 0, p = 13 + 768;
    unsigned char *d = slurp(path, &n);
    CHECK(d && n > p && memcmp(d, "GIF89a", 6) == 0, "%s: GIF89a header", path);
    if (!d || n <= p) { free(d); return -1; }
    gif->w = (int)le16(d + 6);
    gif->h = (int)le16(d + 8);
    CHECK(d[10] == 0xF7, "%s: global table of 256 entries (flags %02X)", path, d[10]);
    memcpy(gif->pal, d + 13, 768);
    int delay = -1, trailer = 0;
    while (p < n && !trailer) {
        if (d[p] == 0x3B) { trailer = 1; p++; break; }
        if (d[p] == 0x21 && p + 2 < n) {                          // extension
            int label = d[p + 1];
            if (label == 0xFF && p + 19 <= n && d[p + 2] == 11 &&
                memcmp(d + p + 3, "NETSCAPE2.0", 11) == 0) {
                CHECK(d[p + 14] == 3 && d[p + 15] == 1 && d[p + 18] == 0,
                      "%s: NETSCAPE2.0 loop sub-block", path);
                gif->loop = (int)le16(d + p + 16);
                p += 19;
            } else if (label == 0xF9 && p + 8 <= n) {
                CHECK(d[p + 2] == 4 && d[p + 7] == 0, "%s: graphic control extension", path);
                delay = (int)le16(d + p + 4);
                p += 8;
            } else {
                CHECK(0, "%s: unexpected extension %02X", path, label);
                break;
            }
        } else if (d[p] == 0x2C && p + 11 < n) {                  // image
            CHECK(le16(d + p + 1) == 0 && le16(d + p + 3) == 0 &&
                  (int)le16(d + p + 5) == gif->w && (int)le16(d + p + 7) == gif->h &&
                  d[p + 9] == 0, "%s: full-size frame with no local table", path);
            int min = d[p + 10];
            CHECK(min == 8, "%s: LZW minimum code size %d", path, min);
            p += 11;
            unsigned char *data = malloc(n);                     // gather the sub-blocks
            size_t nd = 0;
            while (p < n && d[p] != 0) {
                size_t len = d[p];
                if (p + 1 + len > n) break;
                memcpy(data + nd, d + p + 1, len);
                nd += len;
                p += 1 + len;
            }
            p++;                                                 // the zero-length block
            size_t npix = (size_t)gif->w * gif->h;
            unsigned char *frame = malloc(npix);
            int k = gif->nframes;
            CHECK(k < GIF_MAX_FRAMES && delay >= 0, "%s: frame %d with a delay", path, k);
            CHECK(lzw_decode(data, nd, min, frame, npix, gif) == 0, "%s: LZW frame %d", path, k);
            if (k < GIF_MAX_FRAMES) {
                gif->frame[k] = frame;
                gif->delay[k] = delay;
                gif->nframes++;
            } else {
                free(frame);
            }
            free(data);
            delay = -1;
        } else {
            CHECK(0, "%s: unexpected byte %02X at %zu", path, d[p], p);
            break;
        }
    }
    CHECK(trailer && p == n, "%s: trailer 0x3B at the very end", path);
    free(d);
    return test_failed_count == failed_before ? 0 : -1;
}

static void gif_free(Gif *gif) {
    for (int k = 0; k < gif->nframes; k++) free(gif->frame[k]);
}

static int dist2(const unsigned char *a, const unsigned char *b) {
    int d = 0;
    for (int c = 0; c < 3; c++) d += (a[c] - b[c]) * (a[c] - b[c]);
    return d;
}

/* Every decoded index must be a nearest palette colour (by brute force) of the source. */
static void check_gif_frame(const Gif *gif, int k, const Image *src) {
    int bad = 0;
    for (int i = 0; i < src->w * src->h; i++) {
        const unsigned char *c = src->rgb + 3 * i;
        int best = 1 << 30;
        for (int j = 0; j < 256; j++) {
            int d = dist2(gif->pal[j], c);
            if (d < best) best = d;
        }
        bad += dist2(gif->pal[gif->frame[k][i]], c) != best;
    }
    CHECK(bad == 0, "GIF frame %d: %d pixels not a nearest palette colour", k, bad);
}

static void test_gif(void) {
    enum { W = 200, H = 150 };
    Image fr[3];
    for (int k = 0; k < 3; k++) image_init(&fr[k], W, H);
    uint32_t s = 99;   // frame 0: noise, so the table fills and CLEAR is sent
    for (size_t i = 0; i < (size_t)W * H * 3; i++) fr[0].rgb[i] = (unsigned char)noise(&s);
    double grid[8 * 6];   // frame 1: a heatmap with text; frame 2: stays white (long runs)
    for (int i = 0; i < 48; i++) grid[i] = (i % 8) * (i / 8);
    draw_heatmap(&fr[1], 0, 0, W, H, grid, 8, 6, 0, 35);
    draw_text(&fr[1], 10, 10, "dog", white, 3);

    char path[256];
    tmp_path(path, sizeof path, "anim.gif");
    GifWriter g;
    CHECK(gif_open(&g, path, W, H, 25, 3) == 0, "gif_open");
    for (int k = 0; k < 3; k++) CHECK(gif_add_frame(&g, &fr[k]) == 0, "gif_add_frame %d", k);
    CHECK(gif_close(&g) == 0, "gif_close");

    Gif gif;
    if (gif_read(path, &gif) == 0) {
        unsigned char pal[256][3];
        gif_palette(pal);
        CHECK(memcmp(pal, gif.pal, sizeof pal) == 0, "GIF palette as documented");
        CHECK(gif.w == W && gif.h == H && gif.nframes == 3, "GIF %d x %d, %d frames",
              gif.w, gif.h, gif.nframes);
        CHECK(gif.loop == 3 && gif.delay[0] == 25 && gif.delay[2] == 25, "loop and delay");
        CHECK(gif.max_width == 12 && gif.clears > 3, "LZW reached 12 bits (%d) and cleared "
              "(%d CLEARs)", gif.max_width, gif.clears);
        for (int k = 0; k < gif.nframes; k++) check_gif_frame(&gif, k, &fr[k]);
    }
    gif_free(&gif);
    remove(path);

    // edge cases: a 1x1 and a 3x1 animation
    for (int w = 1; w <= 3; w += 2) {
        Image one;
        image_init(&one, w, 1);
        image_set_pixel(&one, 0, 0, (const unsigned char[3]){10, 200, 30});
        CHECK(gif_open(&g, path, w, 1, 0, 0) == 0 && gif_add_frame(&g, &one) == 0 &&
              gif_close(&g) == 0, "tiny GIF %d x 1", w);
        if (gif_read(path, &gif) == 0) {
            CHECK(gif.nframes == 1 && gif.loop == 0, "tiny GIF: one frame, loops forever");
            check_gif_frame(&gif, 0, &one);
        }
        gif_free(&gif);
        remove(path);
        image_free(&one);
    }

    // rows of 240..300 noise pixels: each pixel makes about one new LZW code, so these
    // streams end just before, at, and after the point where codes grow to 10 bits
    for (int w = 240; w <= 300; w++) {
        Image row;
        image_init(&row, w, 1);
        for (int i = 0; i < 3 * w; i++) row.rgb[i] = (unsigned char)noise(&s);
        CHECK(gif_open(&g, path, w, 1, 0, 0) == 0 && gif_add_frame(&g, &row) == 0 &&
              gif_close(&g) == 0, "noise row GIF %d x 1", w);
        if (gif_read(path, &gif) == 0) check_gif_frame(&gif, 0, &row);
        gif_free(&gif);
        remove(path);
        image_free(&row);
    }

    // a frame of the wrong size fails, and gif_close then leaves no file
    CHECK(gif_open(&g, path, 4, 4, 10, 0) == 0, "gif_open 4 x 4");
    fprintf(stderr, "(expected) ");
    CHECK(gif_add_frame(&g, &fr[0]) == -1, "wrong frame size is refused");
    CHECK(gif_close(&g) == -1 && !file_exists(path), "failed GIF leaves no file");

    // gif_nearest agrees with brute force on random colours and on every gray
    unsigned char pal[256][3], c[3];
    gif_palette(pal);
    int bad = 0;
    for (int i = 0; i < 20000 + 256; i++) {
        uint32_t r = noise(&s);
        for (int ch = 0; ch < 3; ch++)   // random colours, then the 256 grays
            c[ch] = (unsigned char)(i < 20000 ? r >> (8 * ch) : (uint32_t)(i - 20000));
        int best = 1 << 30;
        for (int j = 0; j < 256; j++) if (dist2(pal[j], c) < best) best = dist2(pal[j], c);
        bad += dist2(pal[gif_nearest(c)], c) != best;
    }
    CHECK(bad == 0, "gif_nearest: %d colours not nearest", bad);
    for (int k = 0; k < 3; k++) image_free(&fr[k]);
}

/* ========================================================================================
 * SVG
 * ======================================================================================== */

/* Tags balance (a stack of names), attribute quotes close, '&' starts one of the five XML
 * entities, and no '<' or '>' appears in text. Returns the number of root elements. */
static int svg_wellformed(const char *s, int *ok) {
    char stack[32][32];
    int depth = 0, roots = 0;
    *ok = 1;
    for (size_t i = 0; s[i] && *ok; i++) {
        if (s[i] == '&') {
            static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            int known = 0;
            for (int e = 0; e < 5; e++) known |= strncmp(s + i, ent[e], strlen(ent[e])) == 0;
            if (!known) *ok = 0;
        } else if (s[i] == '>') {
            *ok = 0;                                          // '>' outside a tag
        } else if (s[i] == '<') {
            if (s[i + 1] == '?') {                            // <?xml ... ?>
                const char *e = strstr(s + i, "?>");
                if (!e) { *ok = 0; break; }
                i = (size_t)(e - s) + 1;
                continue;
            }
            int closing = s[i + 1] == '/';
            size_t j = i + 1 + closing, len = 0;
            char name[32];
            while (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-",
                          s[j]) && s[j] && len < 31)
                name[len++] = s[j++];
            name[len] = 0;
            char quote = 0;                                   // skip attributes to '>'
            for (; s[j] && (quote || s[j] != '>'); j++) {
                if (quote && s[j] == quote) quote = 0;
                else if (!quote && (s[j] == '"' || s[j] == '\'')) quote = s[j];
                else if (s[j] == '<') *ok = 0;
            }
            if (!s[j] || len == 0) { *ok = 0; break; }
            int self_closing = s[j - 1] == '/';
            if (closing) {
                if (depth == 0 || strcmp(stack[depth - 1], name) != 0) *ok = 0;
                else depth--;
            } else if (!self_closing) {
                if (depth == 0) roots++;
                if (depth == 32) { *ok = 0; break; }
                strcpy(stack[depth++], name);
            } else if (depth == 0) {
                roots++;
            }
            i = j;
        }
    }
    if (depth != 0) *ok = 0;
    return roots;
}

static int count(const char *s, const char *needle) {
    int k = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) k++;
    return k;
}

static void test_svg(void) {
    enum { N = 50 };
    double x[N], y1[N], y2[N], y3[N];
    for (int i = 0; i < N; i++) {
        x[i] = i;
        y1[i] = 10 * exp(-0.1 * i);
        y2[i] = i == 20 ? NAN : 1e-3 * (i + 1);   // one hole: two pieces of line
        y3[i] = i % 10 == 0 ? 0 : 0.5;            // zeros are skipped on a log axis
    }
    SvgPlot plot = {
        .title = "loss: a < b & c > d", .xlabel = "step", .ylabel = "value \"q\"",
        .log_y = 1, .nseries = 3,
        .series = {{"exp", N, x, y1}, {"line <1>", N, x, y2}, {"half & zero", N, x, y3}},
    };
    char path[256];
    tmp_path(path, sizeof path, "plot.svg");
    CHECK(svg_lineplot(path, &plot) == 0, "svg_lineplot log");
    size_t n = 0;
    char *s = (char *)slurp(path, &n);
    if (s) {
        s = realloc(s, n + 1);
        s[n] = 0;
        int ok;
        CHECK(svg_wellformed(s, &ok) == 1 && ok, "SVG is well formed with one root");
        CHECK(strncmp(s, "<?xml", 5) == 0 && strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"")
              && strstr(s, "</svg>\n") == s + n - 7, "SVG prolog, root and end");
        CHECK(strstr(s, "loss: a &lt; b &amp; c &gt; d") && strstr(s, "line &lt;1&gt;") &&
              strstr(s, "half &amp; zero") && strstr(s, "value &quot;q&quot;"),
              "SVG text is escaped");
        CHECK(count(s, "<path") == 3, "one path per series");
        CHECK(count(s, "M") == 1 + 2 + 5, "pen lifts at holes: %d moves",
              count(s, "M"));
        CHECK(strstr(s, ">1e-3<") && strstr(s, ">0.01<") && strstr(s, ">10<"), "log ticks");
        CHECK(!strstr(s, "nan") && !strstr(s, "inf"), "no non-finite numbers");
        free(s);
    }
    remove(path);

    plot.log_y = 0;   // linear: ticks at nice numbers
    plot.nseries = 1;
    CHECK(svg_lineplot(path, &plot) == 0, "svg_lineplot linear");
    s = (char *)slurp(path, &n);
    if (s) {
        s = realloc(s, n + 1);
        s[n] = 0;
        int ok;
        CHECK(svg_wellformed(s, &ok) == 1 && ok, "linear SVG is well formed");
        CHECK(strstr(s, ">0<") && strstr(s, ">10<") && strstr(s, ">50<") && strstr(s, ">2<"),
              "linear ticks 0 .. 50 in x, 0 .. 10 in y");
        free(s);
    }
    remove(path);

    plot.nseries = 0;
    fprintf(stderr, "(expected) ");
    CHECK(svg_lineplot(path, &plot) == -1 && !file_exists(path), "no series: -1, no file");
}

/* ========================================================================================
 * Drawing: shapes, text, colormaps, heatmaps, image grids
 * ======================================================================================== */

static int count_not_white(const Image *img, int x0, int y0, int x1, int y1) {
    int k = 0;   // in [x0, x1) x [y0, y1)
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) k += !same_rgb(pixel(img, x, y), white);
    return k;
}

static void test_shapes(void) {
    Image img;
    image_init(&img, 20, 20);
    CHECK(count_not_white(&img, 0, 0, 20, 20) == 0, "a new image is white");
    image_set_pixel(&img, -1, 0, black);
    image_set_pixel(&img, 20, 5, black);
    image_set_pixel(&img, 3, 20, black);
    CHECK(count_not_white(&img, 0, 0, 20, 20) == 0, "set_pixel clips");
    draw_line(&img, 2, 3, 12, 7, black);
    CHECK(same_rgb(pixel(&img, 2, 3), black) && same_rgb(pixel(&img, 12, 7), black) &&
          count_not_white(&img, 0, 0, 20, 20) == 11, "line: both ends, one pixel per column");
    draw_line(&img, -50, -40, -10, -90, black);   // entirely outside: nothing, no crash
    CHECK(count_not_white(&img, 0, 0, 20, 20) == 11, "a line outside the image draws nothing");
    image_free(&img);
    /* far endpoints are clipped first: this returns at once and draws exactly row 5 (a
     * plain Bresenham walk would visit 2e9 points); the diagonal keeps its pixels */
    image_init(&img, 20, 20);
    draw_line(&img, -1000000000, 5, 1000000000, 5, black);
    CHECK(count_not_white(&img, 0, 0, 20, 20) == 20 && count_not_white(&img, 0, 5, 20, 6) == 20,
          "a very long horizontal line is clipped to its visible row");
    image_free(&img);
    image_init(&img, 20, 20);
    draw_line(&img, -100000, -100000, 100000, 100000, black);
    int diagonal = 1;
    for (int k = 0; k < 20; k++) diagonal &= same_rgb(pixel(&img, k, k), black);
    CHECK(diagonal && count_not_white(&img, 0, 0, 20, 20) == 20, "a clipped diagonal keeps its 20 pixels");

    image_free(&img);
    image_init(&img, 20, 20);
    draw_dot(&img, 10, 10, 1, black);
    CHECK(count_not_white(&img, 0, 0, 20, 20) == 9, "dot of radius 1 is 3x3");
    draw_dot(&img, 10, 10, 3, black);
    CHECK(same_rgb(pixel(&img, 13, 10), black) && same_rgb(pixel(&img, 10, 7), black) &&
          !same_rgb(pixel(&img, 14, 10), black) && !same_rgb(pixel(&img, 13, 13), black),
          "dot of radius 3");
    image_free(&img);

    image_init(&img, 20, 20);
    draw_circle(&img, 10, 10, 5, black);
    int far = 0, n = 0;
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 20; x++)
            if (same_rgb(pixel(&img, x, y), black)) {
                double r = hypot(x - 10, y - 10);
                far += r < 4.5 || r > 5.5;
                n++;
            }
    CHECK(n > 20 && far == 0, "circle: %d pixels, %d off the radius", n, far);
    image_free(&img);

    Image dst, src;
    image_init(&dst, 10, 10);
    image_init(&src, 4, 3);
    image_fill_rect(&src, 0, 0, 4, 3, black);
    image_blit(&dst, &src, -2, 8);   // only its top-right 2 x 2 lands
    CHECK(count_not_white(&dst, 0, 0, 10, 10) == 4 && same_rgb(pixel(&dst, 1, 9), black),
          "blit clips");
    image_fill_rect(&dst, 8, -3, 5, 5, black);
    CHECK(count_not_white(&dst, 0, 0, 10, 10) == 8, "fill_rect clips");
    image_free(&src);
    image_free(&dst);
}

/* Ticks: the step is 1, 2 or 5 times a power of ten; the tick of data value v sits where
 * draw_scatter would put a point at v; the note's dog (10, 20) falls on a tick of each axis
 * in toy2d's view of dog/cat (x from -1.6 to 17.1, y from 12.9 to 31.6). */
static void test_axes(void) {
    CHECK(axis_tick_step(18.7, 5) == 5 && axis_tick_step(10, 5) == 2 && axis_tick_step(100, 10) == 10,
          "tick steps 5, 2, 10");
    CHECK(fabs(axis_tick_step(0.37, 4) - 0.1) < TICK_TOL && fabs(axis_tick_step(1, 4) - 0.5) < TICK_TOL,
          "tick steps 0.1, 0.5");
    CHECK(axis_tick_step(0, 5) == 0 && axis_tick_step(1, 0) == 0, "no ticks for an empty span");
    Image img;
    image_init(&img, 130, 130);
    draw_axes_inside(&img, 10, 10, 101, 101, 0, 10, 20, 30, 5, black);
    /* x ticks at 0, 2, ..., 10: columns 10, 30, ..., 110 of the bottom row (y = 110) */
    int ok = 1;
    for (int k = 0; k <= 5; k++) ok &= same_rgb(pixel(&img, 10 + 20 * k, 110), black) &&
                                        same_rgb(pixel(&img, 10 + 20 * k, 107), black);
    CHECK(ok, "x ticks at the columns of 0, 2, ..., 10");
    CHECK(same_rgb(pixel(&img, 31, 110), white) && same_rgb(pixel(&img, 30, 105), white),
          "an x tick is one column wide and 4 pixels high");
    /* y ticks at 20, 22, ..., 30: rows 110, 90, ..., 10 of the left column */
    ok = 1;
    for (int k = 0; k <= 5; k++) ok &= same_rgb(pixel(&img, 10, 110 - 20 * k), black) &&
                                        same_rgb(pixel(&img, 13, 110 - 20 * k), black);
    CHECK(ok, "y ticks at the rows of 20, 22, ..., 30");
    CHECK(count_not_white(&img, 30 - 3, 110 - 4 - FONT_LINE, 30 + 4, 110 - 4) > 0 &&
          count_not_white(&img, 16, 90 - FONT_H / 2, 16 + 2 * FONT_ADVANCE, 90 + FONT_H) > 0,
          "tick labels drawn beside the ticks");
    CHECK(count_not_white(&img, 0, 0, 130, 10) == 0 && count_not_white(&img, 111, 0, 130, 130) == 0,
          "nothing drawn outside the panel");
    image_free(&img);
    image_init(&img, 230, 230);
    const double lo[2] = { -1.6, 12.9 }, hi[2] = { 17.1, 31.6 };
    draw_axes_inside(&img, 0, 0, 220, 220, lo[0], hi[0], lo[1], hi[1], 5, black);
    int dx = (int)((10 - lo[0]) / (hi[0] - lo[0]) * 219 + 0.5), dy = (int)((hi[1] - 20) / (hi[1] - lo[1]) * 219 + 0.5);
    CHECK(same_rgb(pixel(&img, dx, 219), black) && same_rgb(pixel(&img, 0, dy), black),
          "dog/cat view: ticks at x = 10 (column %d) and y = 20 (row %d)", dx, dy);
    image_free(&img);
    image_init(&img, 60, 30);
    const unsigned char colours[2][3] = { { 255, 0, 0 }, { 0, 0, 255 } };
    const char *labels[2] = { "a", "b" };
    draw_legend(&img, 2, 2, labels, colours, 2, black);
    CHECK(same_rgb(pixel(&img, 3, 3), colours[0]) && same_rgb(pixel(&img, 3, 3 + FONT_LINE), colours[1]) &&
          count_not_white(&img, 2 + FONT_H + 3, 2, 2 + FONT_H + 3 + FONT_W, 2 + FONT_H) > 0,
          "legend: a swatch of each colour and its label");
    image_free(&img);
}

static void test_text(void) {
    Image img;
    image_init(&img, 100, 40);
    const int x = 5, y = 7, scale = 2;
    draw_text(&img, x, y, "Hi 42", black, scale);
    int x1 = x + text_width("Hi 42", scale), y1 = y + FONT_H * scale;
    CHECK(text_width("Hi 42", scale) == (5 * FONT_ADVANCE - 1) * scale, "text width");
    CHECK(count_not_white(&img, x, y, x1, y1) > 40, "text sets pixels in its box");
    CHECK(count_not_white(&img, 0, 0, 100, 40) == count_not_white(&img, x, y, x1, y1),
          "text sets none outside its box");
    image_free(&img);

    // every glyph stays in its 5 x 7 cell, every one but space has ink, no two are equal
    Image glyph[95];
    int outside = 0, empty = 0, equal = 0;
    for (int c = 32; c <= 126; c++) {
        char s[2] = {(char)c, 0};
        Image *g = &glyph[c - 32];
        image_init(g, FONT_ADVANCE + 1, FONT_H + 2);
        draw_text(g, 0, 0, s, black, 1);
        int inside = count_not_white(g, 0, 0, FONT_W, FONT_H);
        outside += count_not_white(g, 0, 0, g->w, g->h) - inside;
        empty += (inside == 0) != (c == ' ');
        for (int d = 32; d < c; d++)
            equal += memcmp(glyph[d - 32].rgb, g->rgb, (size_t)g->w * g->h * 3) == 0;
    }
    CHECK(outside == 0 && empty == 0 && equal == 0, "glyphs: %d pixels outside the cell, "
          "%d wrongly empty, %d equal pairs", outside, empty, equal);
    for (int c = 0; c < 95; c++) image_free(&glyph[c]);

    // lines, UTF-8 and control bytes
    CHECK(text_width("ab\nxyz", 1) == 3 * FONT_ADVANCE - 1 && text_width("", 3) == 0,
          "width of the longest line");
    CHECK(text_width("\xE1\xBE\xB1", 1) == FONT_W, "one UTF-8 character shows one glyph");
    image_init(&img, 20, 30);
    draw_text(&img, 0, 0, "a\nb", black, 1);
    CHECK(count_not_white(&img, 0, FONT_LINE, FONT_W, FONT_LINE + FONT_H) > 0 &&
          count_not_white(&img, FONT_ADVANCE, 0, 20, 30) == 0, "newline starts a line below");
    image_free(&img);
}

static double luminance(const unsigned char *c) {   // Rec. 709 weights
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

static void test_colormap_heatmap(void) {
    unsigned char c[3], prev[3];
    colormap(0, c);
    CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84, "colormap(0) is viridis' dark purple");
    colormap(1, c);
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37, "colormap(1) is viridis' yellow");
    colormap(-5, prev);
    colormap(0, c);
    CHECK(same_rgb(c, prev), "colormap clamps below 0");
    colormap(NAN, c);
    CHECK(c[0] == 255 && c[1] == 0 && c[2] == 0, "NaN is red");
    int rising = 1;
    colormap(0, prev);
    for (int i = 1; i <= 100; i++) {
        colormap(i / 100.0, c);
        rising &= luminance(c) > luminance(prev);
        memcpy(prev, c, 3);
    }
    CHECK(rising, "colormap brightness rises strictly in steps of 0.01");
    colormap_gray(0.5, c);
    CHECK(c[0] == 128 && c[1] == 128 && c[2] == 128, "gray(0.5)");

    // a (2, 3) grid on 30 x 20 pixels at (10, 5): each corner shows its grid corner
    const double grid[6] = {0, 1, 2, 3, 4, 5};
    Image img;
    image_init(&img, 50, 30);
    draw_heatmap(&img, 10, 5, 30, 20, grid, 3, 2, 0, 5);
    const int corner[4][3] = {{10, 5, 0}, {39, 5, 2}, {10, 24, 3}, {39, 24, 5}}; // x, y, cell
    for (int k = 0; k < 4; k++) {
        colormap(grid[corner[k][2]] / 5, c);
        CHECK(same_rgb(pixel(&img, corner[k][0], corner[k][1]), c), "heatmap corner %d", k);
    }
    colormap(0.2, c);
    CHECK(same_rgb(pixel(&img, 25, 5), c), "heatmap middle column");
    CHECK(count_not_white(&img, 0, 0, 50, 30) == 30 * 20, "heatmap stays in its rectangle");
    draw_colorbar(&img, 42, 5, 4, 20, 0, 5);
    colormap(1 - 1.0 / 19, c);   // row 1 of 20 inside the black outline
    CHECK(same_rgb(pixel(&img, 43, 6), c), "colorbar: vmax at the top");
    image_free(&img);

    // scatter: data y grows up
    const real pts[4] = {0, 0, 1, 1};
    image_init(&img, 11, 11);
    draw_scatter(&img, 0, 0, 11, 11, pts, 2, 0, 1, 0, 1, 0, black);
    CHECK(same_rgb(pixel(&img, 0, 10), black) && same_rgb(pixel(&img, 10, 0), black) &&
          count_not_white(&img, 0, 0, 11, 11) == 2, "scatter: (0,0) bottom-left, (1,1) top-right");
    image_free(&img);
}

static void test_image_grids(void) {
    // 5 gray images of 2 x 3, 3 per row, magnified 2 times, 1 pixel of padding
    enum { n = 5, H = 2, W = 3, ncols = 3, scale = 2, pad = 1 };
    const double value[6] = {-1, 1, 0, 0.5, 2, -3};
    const int expect[6] = {0, 255, 128, 191, 255, 0};   // round((v + 1) 127.5), clamped
    real pix[n * H * W];
    for (int i = 0; i < n * H * W; i++) pix[i] = (real)value[i % 6];
    pix[n * H * W - 1] = NAN;
    Image img;
    image_from_gray_grid(&img, pix, n, H, W, ncols, scale, pad);
    CHECK(img.w == pad + ncols * (W * scale + pad) && img.h == pad + 2 * (H * scale + pad),
          "grid canvas %d x %d", img.w, img.h);
    int bad = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < H * scale; i++)
            for (int j = 0; j < W * scale; j++) {
                int e = (k * H * W + (i / scale) * W + j / scale);
                const unsigned char *p = pixel(&img, pad + (k % ncols) * (W * scale + pad) + j,
                                               pad + (k / ncols) * (H * scale + pad) + i);
                unsigned char want[3] = {0, 0, 0};
                if (e == n * H * W - 1) want[0] = 255;        // NaN shows red
                else want[0] = want[1] = want[2] = (unsigned char)expect[e % 6];
                bad += !same_rgb(p, want);
            }
    CHECK(bad == 0, "gray grid: %d pixels wrong", bad);
    CHECK(same_rgb(pixel(&img, 0, 0), white) && same_rgb(pixel(&img, img.w - 1, img.h - 1), white),
          "padding and the empty last cell are white");
    image_free(&img);

    // 2 colour images of 1 x 2, planes (3, H, W)
    const real rgb[2 * 3 * 2] = {-1, 1,  0, 1,  1, -1,     1, 1,  1, 1,  1, 1};
    image_from_rgb_grid(&img, rgb, 2, 1, 2, 4, 1, 0);
    CHECK(img.w == 4 && img.h == 1, "rgb grid size");
    const unsigned char want[4][3] = {{0, 128, 255}, {255, 255, 0}, {255, 255, 255},
                                      {255, 255, 255}};
    bad = 0;
    for (int x = 0; x < 4; x++) bad += !same_rgb(pixel(&img, x, 0), want[x]);
    CHECK(bad == 0, "rgb grid pixels");
    image_free(&img);
}

/* ========================================================================================
 * Terminal preview
 * ======================================================================================== */

static char *term_output(const double *grid, int gw, int gh, int mode) {
    FILE *f = tmpfile();
    if (!f) return NULL;
    term_heatmap(f, grid, gw, gh, mode);
    long n = ftell(f);
    char *s = malloc((size_t)n + 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static void test_terminal(void) {
    const double grid[3 * 4] = {0, 0, 0, 0,  0, 0, 9, 9,  9, 9, 9, 9};   // (3, 4)
    char *s = term_output(grid, 4, 3, TERM_PLAIN);
    CHECK(s && strcmp(s, "  ++\n@@@@\n") == 0, "plain ramp: got \"%s\"", s ? s : "");
    free(s);
    s = term_output(grid, 4, 3, TERM_TRUECOLOR);
    CHECK(s && count(s, "\xE2\x96\x80") == 8 && count(s, "\x1b[0m\n") == 2 &&
          strstr(s, "\x1b[38;2;68;1;84m\x1b[48;2;68;1;84m"),
          "24-bit: 8 half blocks, 2 reset lines, viridis' first colour");
    free(s);
    s = term_output(grid, 4, 3, TERM_256);
    CHECK(s && count(s, "\xE2\x96\x80") == 8 && count(s, "\x1b[38;5;") == 8, "256 colours");
    free(s);
    FILE *f = tmpfile();
    CHECK(f && term_wants_color(f) == TERM_PLAIN, "no colour for a file");
    if (f) fclose(f);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("test_plot: mkdtemp");
        return 1;
    }
    test_checksums();
    test_shapes();
    test_text();
    test_axes();
    test_colormap_heatmap();
    test_image_grids();
    test_png();
    test_gif();
    test_svg();
    test_terminal();
    if (rmdir(tmpdir) != 0) CHECK(0, "%s was left non-empty", tmpdir);
    return test_summary("test_plot");
}
