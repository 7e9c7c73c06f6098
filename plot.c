/* plot.c: pictures without libraries. PNG, animated GIF, SVG line plots, terminal preview.
 *
 * Everything a program needs to show its results, written with libc alone: an RGB8
 * canvas with a 5x7 bitmap font, a viridis-like colormap, and writers for three file
 * formats that every viewer opens. Each writer does the least its format allows:
 * PNG with stored (uncompressed) deflate blocks, GIF with one fixed palette, SVG as text.
 * What it is not: a plotting library. No anti-aliasing, no image reading, no diffusion
 * knowledge (floor 1: it includes tensor.h only for `real`).
 *
 * Sizes: w, h = picture width and height in pixels; gw, gh = grid width and height;
 * n = number of small images, H, W = their height and width.
 *
 * Contents, in reading order:
 *   1. small helpers: checked allocation, error lines, atomic files
 *   2. the canvas and shapes
 *   3. the 5x7 font and text
 *   4. colormaps, heatmaps, scatter
 *   5. grids of small images
 *   6. checksum: Adler-32 (CRC-32 is crc32.c's)
 *   7. PNG
 *   8. animated GIF: palette, quantization, LZW
 *   9. SVG line plots
 *  10. terminal preview
 */
#define _POSIX_C_SOURCE 200809L /* fileno() and isatty() under -std=c11 */
#include "plot.h"

#include "crc32.h"
#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ========================================================================================
 * 1. Small helpers
 * ======================================================================================== */

#define PLOT_MAX_SIDE 16384 /* keeps every pixel offset 3 (y w + x) well inside an int */

static void *plot_alloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "error: out of memory allocating %zu bytes for %s (try a smaller "
                        "picture)\n", bytes, what);
        exit(1);
    }
    return p;
}

/* The one-line message of every writer: "plot: cannot write PATH: REASON". */
static int write_failed(const char *path, const char *why) {
    fprintf(stderr, "plot: cannot write %s: %s\n", path, why);
    return -1;
}

/* Atomic files through io.h: a unique temporary beside path, renamed over it when
 * complete, so a reader (or a crash) sees either the old file or the complete new one. */
static IoFile *open_tmp(const char *path) {
    char why[1024];
    IoFile *f = io_create(path, why, sizeof why);
    if (!f) fprintf(stderr, "plot: %s\n", why);
    return f;
}

/* Commits f if nothing failed so far (every byte written, synced, renamed); otherwise
 * removes its temporary, leaving any previous file at path untouched. */
static int close_tmp(IoFile *f, int failed) {
    if (failed) { io_abort(f); return -1; }
    char why[1024];
    if (io_commit(f, why, sizeof why) != 0) { fprintf(stderr, "plot: %s\n", why); return -1; }
    return 0;
}

/* ========================================================================================
 * 2. The canvas and shapes
 * ======================================================================================== */

void image_init(Image *img, int w, int h) {
    if (w <= 0 || h <= 0 || w > PLOT_MAX_SIDE || h > PLOT_MAX_SIDE) {
        fprintf(stderr, "error: image_init: size %d x %d, each side must be 1..%d\n",
                w, h, PLOT_MAX_SIDE);
        exit(1);
    }
    img->w = w;
    img->h = h;
    img->rgb = plot_alloc((size_t)w * h * 3, "an image");
    memset(img->rgb, 255, (size_t)w * h * 3);
}

void image_free(Image *img) {
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

void image_set_pixel(Image *img, int x, int y, const unsigned char rgb[3]) {
    if (x < 0 || y < 0 || x >= img->w || y >= img->h) return;
    unsigned char *p = img->rgb + 3 * ((size_t)y * img->w + x);  // seek to pixel (x, y)
    p[0] = rgb[0]; p[1] = rgb[1]; p[2] = rgb[2];
}

/* Clips [*a, *a + *len) to [0, limit); returns 0 if nothing is left. */
static int clip_span(int *a, int *len, int limit) {
    if (*a < 0) { *len += *a; *a = 0; }
    if (*a + *len > limit) *len = limit - *a;
    return *len > 0;
}

void image_fill_rect(Image *img, int x, int y, int w, int h, const unsigned char rgb[3]) {
    if (!clip_span(&x, &w, img->w) || !clip_span(&y, &h, img->h)) return;
    for (int j = y; j < y + h; j++) {
        unsigned char *p = img->rgb + 3 * ((size_t)j * img->w + x);  // seek to (x, j)
        for (int i = 0; i < w; i++, p += 3) { p[0] = rgb[0]; p[1] = rgb[1]; p[2] = rgb[2]; }
    }
}

void image_blit(Image *dst, const Image *src, int x, int y) {
    int sx = 0, sy = 0, w = src->w, h = src->h;
    if (x < 0) sx = -x;                      // skip the part left of / above dst
    if (y < 0) sy = -y;
    if (!clip_span(&x, &w, dst->w) || !clip_span(&y, &h, dst->h)) return;
    for (int j = 0; j < h; j++)
        memcpy(dst->rgb + 3 * ((size_t)(y + j) * dst->w + x),
               src->rgb + 3 * ((size_t)(sy + j) * src->w + sx), 3 * (size_t)w);
}

/* Bresenham's line: step along the major axis, and along the minor axis whenever the
 * accumulated error says the true line has moved half a pixel. Integer-only, all octants. */
/* Liang-Barsky: shrinks the segment p0 → p1 to the box [lo, hi] in x and y; returns 0 if
 * no part of it is inside. A segment already inside is returned unchanged. */
static int clip_segment(double *x0, double *y0, double *x1, double *y1,
                        double xlo, double xhi, double ylo, double yhi) {
    double dx = *x1 - *x0, dy = *y1 - *y0, t0 = 0.0, t1 = 1.0;
    double p[4] = { -dx, dx, -dy, dy };
    double q[4] = { *x0 - xlo, xhi - *x0, *y0 - ylo, yhi - *y0 };
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0) {
            if (q[i] < 0.0) return 0;              /* parallel to this edge and outside it */
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0.0) { if (r > t1) return 0; if (r > t0) t0 = r; }
        else            { if (r < t0) return 0; if (r < t1) t1 = r; }
    }
    double ax = *x0, ay = *y0;
    if (t1 < 1.0) { *x1 = ax + t1 * dx; *y1 = ay + t1 * dy; }
    if (t0 > 0.0) { *x0 = ax + t0 * dx; *y0 = ay + t0 * dy; }
    return 1;
}

void draw_line(Image *img, int x0, int y0, int x1, int y1, const unsigned char rgb[3]) {
    /* clip to one pixel beyond the image first, so that far-away endpoints cost nothing */
    double a = x0, b = y0, c = x1, d = y1;
    if (!clip_segment(&a, &b, &c, &d, -1.0, img->w, -1.0, img->h)) return;
    x0 = (int)lround(a); y0 = (int)lround(b); x1 = (int)lround(c); y1 = (int)lround(d);
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        image_set_pixel(img, x0, y0, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

void draw_rect(Image *img, int x, int y, int w, int h, const unsigned char rgb[3]) {
    image_fill_rect(img, x, y, w, 1, rgb);
    image_fill_rect(img, x, y + h - 1, w, 1, rgb);
    image_fill_rect(img, x, y, 1, h, rgb);
    image_fill_rect(img, x + w - 1, y, 1, h, rgb);
}

/* Midpoint circle: walk one octant from (r, 0) and mirror each point eight ways. */
void draw_circle(Image *img, int cx, int cy, int r, const unsigned char rgb[3]) {
    int x = r, y = 0, err = 1 - r;
    while (x >= y) {
        image_set_pixel(img, cx + x, cy + y, rgb); image_set_pixel(img, cx - x, cy + y, rgb);
        image_set_pixel(img, cx + x, cy - y, rgb); image_set_pixel(img, cx - x, cy - y, rgb);
        image_set_pixel(img, cx + y, cy + x, rgb); image_set_pixel(img, cx - y, cy + x, rgb);
        image_set_pixel(img, cx + y, cy - x, rgb); image_set_pixel(img, cx - y, cy - x, rgb);
        y++;
        if (err < 0) err += 2 * y + 1;
        else { x--; err += 2 * (y - x) + 1; }
    }
}

/* Filled disc: every pixel whose centre lies within r + 1/2 of (cx, cy),
 * i.e. dx² + dy² < r² + r + 1/4, i.e. dx² + dy² <= r² + r in integers. */
void draw_dot(Image *img, int cx, int cy, int r, const unsigned char rgb[3]) {
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++)
            if (dx * dx + dy * dy <= r * r + r) image_set_pixel(img, cx + dx, cy + dy, rgb);
}

/* ========================================================================================
 * 3. The 5x7 font
 * ======================================================================================== */

/* font5x7[c - 32][row]: the glyph of ASCII c, 7 rows top to bottom, each row 5 bits with
 * bit 4 (0x10) the leftmost column. For example '0' = 0E 11 13 15 19 11 0E:
 *   .###.  #...#  #..##  #.#.#  ##..#  #...#  .###.
 * Lower-case letters with descenders (g j p q y) are lifted to fit inside the 7 rows. */
static const unsigned char font5x7[95][FONT_H] = {
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /* ' ' */ {0x04,0x04,0x04,0x04,0x04,0x00,0x04}, /* ! */
    {0x0A,0x0A,0x0A,0x00,0x00,0x00,0x00}, /* " */   {0x0A,0x0A,0x1F,0x0A,0x1F,0x0A,0x0A}, /* # */
    {0x04,0x0F,0x14,0x0E,0x05,0x1E,0x04}, /* $ */   {0x18,0x19,0x02,0x04,0x08,0x13,0x03}, /* % */
    {0x0C,0x12,0x14,0x08,0x15,0x12,0x0D}, /* & */   {0x04,0x04,0x08,0x00,0x00,0x00,0x00}, /* ' */
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02}, /* ( */   {0x08,0x04,0x02,0x02,0x02,0x04,0x08}, /* ) */
    {0x00,0x04,0x15,0x0E,0x15,0x04,0x00}, /* * */   {0x00,0x04,0x04,0x1F,0x04,0x04,0x00}, /* + */
    {0x00,0x00,0x00,0x00,0x0C,0x04,0x08}, /* , */   {0x00,0x00,0x00,0x1F,0x00,0x00,0x00}, /* - */
    {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}, /* . */   {0x00,0x01,0x02,0x04,0x08,0x10,0x00}, /* / */
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}, /* 0 */   {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E}, /* 1 */
    {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F}, /* 2 */   {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E}, /* 3 */
    {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}, /* 4 */   {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E}, /* 5 */
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}, /* 6 */   {0x1F,0x01,0x02,0x04,0x08,0x08,0x08}, /* 7 */
    {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E}, /* 8 */   {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C}, /* 9 */
    {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00}, /* : */   {0x00,0x0C,0x0C,0x00,0x0C,0x04,0x08}, /* ; */
    {0x02,0x04,0x08,0x10,0x08,0x04,0x02}, /* < */   {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00}, /* = */
    {0x08,0x04,0x02,0x01,0x02,0x04,0x08}, /* > */   {0x0E,0x11,0x01,0x02,0x04,0x00,0x04}, /* ? */
    {0x0E,0x11,0x01,0x0D,0x15,0x15,0x0E}, /* @ */   {0x0E,0x11,0x11,0x11,0x1F,0x11,0x11}, /* A */
    {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E}, /* B */   {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E}, /* C */
    {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C}, /* D */   {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F}, /* E */
    {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10}, /* F */   {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F}, /* G */
    {0x11,0x11,0x11,0x1F,0x11,0x11,0x11}, /* H */   {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E}, /* I */
    {0x07,0x02,0x02,0x02,0x02,0x12,0x0C}, /* J */   {0x11,0x12,0x14,0x18,0x14,0x12,0x11}, /* K */
    {0x10,0x10,0x10,0x10,0x10,0x10,0x1F}, /* L */   {0x11,0x1B,0x15,0x15,0x11,0x11,0x11}, /* M */
    {0x11,0x11,0x19,0x15,0x13,0x11,0x11}, /* N */   {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E}, /* O */
    {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10}, /* P */   {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D}, /* Q */
    {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11}, /* R */   {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E}, /* S */
    {0x1F,0x04,0x04,0x04,0x04,0x04,0x04}, /* T */   {0x11,0x11,0x11,0x11,0x11,0x11,0x0E}, /* U */
    {0x11,0x11,0x11,0x11,0x11,0x0A,0x04}, /* V */   {0x11,0x11,0x11,0x15,0x15,0x15,0x0A}, /* W */
    {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11}, /* X */   {0x11,0x11,0x11,0x0A,0x04,0x04,0x04}, /* Y */
    {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F}, /* Z */   {0x0E,0x08,0x08,0x08,0x08,0x08,0x0E}, /* [ */
    {0x00,0x10,0x08,0x04,0x02,0x01,0x00}, /* \ */   {0x0E,0x02,0x02,0x02,0x02,0x02,0x0E}, /* ] */
    {0x04,0x0A,0x11,0x00,0x00,0x00,0x00}, /* ^ */   {0x00,0x00,0x00,0x00,0x00,0x00,0x1F}, /* _ */
    {0x08,0x04,0x02,0x00,0x00,0x00,0x00}, /* ` */   {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F}, /* a */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x1E}, /* b */   {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E}, /* c */
    {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F}, /* d */   {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E}, /* e */
    {0x06,0x09,0x08,0x1C,0x08,0x08,0x08}, /* f */   {0x00,0x0F,0x11,0x11,0x0F,0x01,0x0E}, /* g */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x11}, /* h */   {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E}, /* i */
    {0x02,0x00,0x06,0x02,0x02,0x12,0x0C}, /* j */   {0x10,0x10,0x12,0x14,0x18,0x14,0x12}, /* k */
    {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E}, /* l */   {0x00,0x00,0x1A,0x15,0x15,0x11,0x11}, /* m */
    {0x00,0x00,0x16,0x19,0x11,0x11,0x11}, /* n */   {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E}, /* o */
    {0x00,0x00,0x1E,0x11,0x1E,0x10,0x10}, /* p */   {0x00,0x00,0x0D,0x13,0x0F,0x01,0x01}, /* q */
    {0x00,0x00,0x16,0x19,0x10,0x10,0x10}, /* r */   {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E}, /* s */
    {0x08,0x08,0x1C,0x08,0x08,0x09,0x06}, /* t */   {0x00,0x00,0x11,0x11,0x11,0x13,0x0D}, /* u */
    {0x00,0x00,0x11,0x11,0x11,0x0A,0x04}, /* v */   {0x00,0x00,0x11,0x11,0x15,0x15,0x0A}, /* w */
    {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11}, /* x */   {0x00,0x00,0x11,0x11,0x0F,0x01,0x0E}, /* y */
    {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F}, /* z */   {0x02,0x04,0x04,0x08,0x04,0x04,0x02}, /* { */
    {0x04,0x04,0x04,0x04,0x04,0x04,0x04}, /* | */   {0x08,0x04,0x04,0x02,0x04,0x04,0x08}, /* } */
    {0x00,0x00,0x08,0x15,0x02,0x00,0x00}, /* ~ */
};

/* The glyph to show for byte c: itself if printable ASCII, else '?'. UTF-8 continuation
 * bytes (10xxxxxx) return NULL: their character's lead byte already showed one '?'. */
static const unsigned char *glyph_of(unsigned char c) {
    if (c >= 0x80 && c < 0xC0) return NULL;
    if (c < 32 || c > 126) c = '?';
    return font5x7[c - 32];
}

void draw_text(Image *img, int x, int y, const char *s, const unsigned char rgb[3], int scale) {
    int cx = x, cy = y;                        // top-left of the current glyph cell
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') { cx = x; cy += FONT_LINE * scale; continue; }
        const unsigned char *g = glyph_of(*p);
        if (!g) continue;
        for (int row = 0; row < FONT_H; row++)
            for (int col = 0; col < FONT_W; col++)
                if (g[row] & (0x10 >> col))
                    image_fill_rect(img, cx + col * scale, cy + row * scale, scale, scale, rgb);
        cx += FONT_ADVANCE * scale;
    }
}

int text_width(const char *s, int scale) {
    int longest = 0, count = 0;              // glyphs on the longest line / this line
    for (const unsigned char *p = (const unsigned char *)s; ; p++) {
        if (*p == '\n' || *p == 0) {
            if (count > longest) longest = count;
            count = 0;
            if (*p == 0) break;
        } else if (glyph_of(*p)) {
            count++;
        }
    }
    // each glyph advances FONT_ADVANCE columns; the last one's trailing space is not ink
    return longest ? (longest * FONT_ADVANCE - (FONT_ADVANCE - FONT_W)) * scale : 0;
}

/* ========================================================================================
 * 4. Colormaps, heatmaps, scatter
 * ======================================================================================== */

/* Nine anchors read off matplotlib's viridis (van der Walt & Smith, 2015) at v = 0, 1/8,
 * ..., 1, joined by straight lines in RGB. Each anchor is brighter than the one before,
 * which is what makes the map read in order. */
static const unsigned char viridis_anchor[9][3] = {
    { 68,   1,  84}, { 71,  45, 123}, { 59,  82, 139}, { 44, 114, 142}, { 33, 145, 140},
    { 40, 174, 128}, { 94, 201,  98}, {173, 220,  48}, {253, 231,  37},
};
static const unsigned char nan_red[3] = {255, 0, 0};

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void colormap(double v, unsigned char rgb[3]) {
    if (isnan(v)) { memcpy(rgb, nan_red, 3); return; }
    double s = clamp01(v) * 8;                 // position along the 8 segments
    int i = s >= 8 ? 7 : (int)s;
    double f = s - i;                          // 0..1 within segment i
    for (int c = 0; c < 3; c++) {
        double a = viridis_anchor[i][c], b = viridis_anchor[i + 1][c];
        rgb[c] = (unsigned char)(a + f * (b - a) + 0.5);
    }
}

void colormap_gray(double v, unsigned char rgb[3]) {
    if (isnan(v)) { memcpy(rgb, nan_red, 3); return; }
    rgb[0] = rgb[1] = rgb[2] = (unsigned char)(clamp01(v) * 255 + 0.5);
}

void draw_heatmap(Image *img, int x, int y, int w, int h, const double *grid, int gw, int gh,
                  double vmin, double vmax) {
    unsigned char c[3];
    if (gw <= 0 || gh <= 0) return;
    for (int py = 0; py < h; py++) {
        int gy = (int)((2L * py + 1) * gh / (2L * h));   // grid row under the pixel centre
        for (int px = 0; px < w; px++) {
            int gx = (int)((2L * px + 1) * gw / (2L * w));
            double v = grid[(size_t)gy * gw + gx];
            colormap(vmax != vmin ? (v - vmin) / (vmax - vmin) : 0.5, c);
            image_set_pixel(img, x + px, y + py, c);
        }
    }
}

void draw_colorbar(Image *img, int x, int y, int w, int h, double vmin, double vmax) {
    static const unsigned char black[3] = {0, 0, 0};
    unsigned char c[3];
    for (int py = 0; py < h; py++) {
        colormap(h > 1 ? 1.0 - (double)py / (h - 1) : 0.5, c);   // vmax at the top
        image_fill_rect(img, x, y + py, w, 1, c);
    }
    draw_rect(img, x, y, w, h, black);
    char label[32];
    snprintf(label, sizeof label, "%.3g", vmax);
    draw_text(img, x + w + 3, y, label, black, 1);
    snprintf(label, sizeof label, "%.3g", vmin);
    draw_text(img, x + w + 3, y + h - FONT_H, label, black, 1);
}

void draw_scatter(Image *img, int x, int y, int w, int h, const real *pts, int n,
                  double xmin, double xmax, double ymin, double ymax,
                  int r, const unsigned char rgb[3]) {
    for (int i = 0; i < n; i++) {
        double u = (pts[2 * i] - xmin) / (xmax - xmin);      // 0..1 left to right
        double v = (ymax - pts[2 * i + 1]) / (ymax - ymin);  // 0..1 top to bottom
        if (!(u >= 0 && u <= 1 && v >= 0 && v <= 1)) continue; // outside, or NaN
        draw_dot(img, x + (int)(u * (w - 1) + 0.5), y + (int)(v * (h - 1) + 0.5), r, rgb);
    }
}

/* The tick step for a span shown with about n ticks: the smallest of 1, 2, 5 times a power of
 * ten that is at least span / n. */
double axis_tick_step(double span, int n) {
    if (!(span > 0) || n < 1) return 0;
    double raw = span / n, p = pow(10.0, floor(log10(raw)));
    const double mult[4] = { 1, 2, 5, 10 };
    for (int k = 0; k < 3; k++)
        if (mult[k] * p >= raw * (1 - 1e-12)) return mult[k] * p;
    return mult[3] * p;
}

/* Ticks at every multiple of the step, mapped like draw_scatter maps points: the column of
 * data x is x + round((x − xmin)/(xmax − xmin) (w − 1)). Labels are moved inside the panel
 * at its edges; those that would crowd the bottom-left corner (where the two axes meet) are
 * left out. */
void draw_axes_inside(Image *img, int x, int y, int w, int h, double xmin, double xmax,
                      double ymin, double ymax, int n, const unsigned char rgb[3]) {
    const int tick = 4, corner = 2 * FONT_LINE;
    for (int axis = 0; axis < 2; axis++) {
        double lo = axis ? ymin : xmin, hi = axis ? ymax : xmax, step = axis_tick_step(hi - lo, n);
        if (step <= 0) continue;
        int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        for (double k = ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++) {
            double v = k * step, f = (v - lo) / (hi - lo);
            char label[32];
            snprintf(label, sizeof label, "%.*f", decimals, k == 0 ? 0.0 : v);
            if (axis == 0) {                    /* x: a tick up from the bottom edge, label above */
                int px = x + (int)(f * (w - 1) + 0.5);
                draw_line(img, px, y + h - 1, px, y + h - tick, rgb);
                int lx = px - text_width(label, 1) / 2, lw = text_width(label, 1);
                lx = lx < x ? x : lx + lw > x + w ? x + w - lw : lx;        /* keep it inside */
                if (px - x >= corner) draw_text(img, lx, y + h - tick - FONT_LINE, label, rgb, 1);
            } else {                            /* y: a tick right from the left edge, label beside */
                int py = y + (int)((1 - f) * (h - 1) + 0.5);
                draw_line(img, x, py, x + tick, py, rgb);
                int ly = py - FONT_H / 2;
                ly = ly < y ? y : ly + FONT_H > y + h ? y + h - FONT_H : ly;  /* keep it inside */
                if (y + h - py >= corner) draw_text(img, x + tick + 2, ly, label, rgb, 1);
            }
        }
    }
}

/* A legend: one filled square of each colour and its label, one entry per line from (x, y). */
void draw_legend(Image *img, int x, int y, const char *const *labels, const unsigned char (*rgb)[3],
                 int n, const unsigned char text_rgb[3]) {
    for (int i = 0; i < n; i++) {
        int row = y + i * FONT_LINE;
        image_fill_rect(img, x, row, FONT_H, FONT_H, rgb[i]);
        draw_text(img, x + FONT_H + 3, row, labels[i], text_rgb, 1);
    }
}

/* ========================================================================================
 * 5. Grids of small images
 * ======================================================================================== */

/* A value in [-1, 1] to a byte: round((v + 1) 127.5), clamped; -1 for NaN. */
static int byte_from_signed_unit(double v) {
    if (isnan(v)) return -1;
    double b = (v + 1) * 127.5 + 0.5;
    return b <= 0 ? 0 : b >= 255 ? 255 : (int)b;
}

/* Allocates the canvas for n tiles of H x W scaled, in rows of ncols, pad around each. */
static int grid_canvas(Image *out, int n, int H, int W, int ncols, int scale, int pad) {
    if (n <= 0 || H <= 0 || W <= 0 || ncols <= 0 || scale <= 0 || pad < 0) {
        fprintf(stderr, "error: image grid: n %d, H %d, W %d, ncols %d, scale %d, pad %d: "
                        "all must be positive (pad may be 0)\n", n, H, W, ncols, scale, pad);
        exit(1);
    }
    int cols = n < ncols ? n : ncols, rows = (n + cols - 1) / cols;
    image_init(out, pad + cols * (W * scale + pad), pad + rows * (H * scale + pad));
    return cols;
}

/* channels = 1: pix is (n, H, W); channels = 3: pix is (n, 3, H, W). */
static void image_grid(Image *out, const real *pix, int channels, int n, int H, int W,
                       int ncols, int scale, int pad) {
    int cols = grid_canvas(out, n, H, W, ncols, scale, pad);
    for (int k = 0; k < n; k++) {
        const real *im = pix + (size_t)k * channels * H * W;   // seek to image k
        int ox = pad + (k % cols) * (W * scale + pad);          // its top-left on the canvas
        int oy = pad + (k / cols) * (H * scale + pad);
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                unsigned char c[3];
                int nan = 0;
                for (int ch = 0; ch < 3; ch++) {
                    // gray repeats its one channel; colour reads plane ch
                    int b = byte_from_signed_unit(im[(size_t)(channels == 3 ? ch : 0) * H * W
                                                     + (size_t)i * W + j]);
                    nan |= b < 0;
                    c[ch] = (unsigned char)(b < 0 ? 0 : b);
                }
                image_fill_rect(out, ox + j * scale, oy + i * scale, scale, scale,
                                nan ? nan_red : c);
            }
    }
}

void image_from_gray_grid(Image *out, const real *pix, int n, int H, int W, int ncols,
                          int scale, int pad) {
    image_grid(out, pix, 1, n, H, W, ncols, scale, pad);
}

void image_from_rgb_grid(Image *out, const real *pix, int n, int H, int W, int ncols,
                         int scale, int pad) {
    image_grid(out, pix, 3, n, H, W, ncols, scale, pad);
}

/* ========================================================================================
 * 6. Checksum
 * ======================================================================================== */

/* Adler-32 (RFC 1950): s1 = 1 + Σ bytes, s2 = Σ of the running s1, both mod 65521 (the
 * largest prime below 2^16); the checksum is s2 · 65536 + s1. */
uint32_t adler32_update(uint32_t adler, const void *buf, size_t n) {
    const unsigned char *p = buf;
    uint32_t s1 = adler & 0xFFFF, s2 = adler >> 16;
    for (size_t i = 0; i < n; i++) {
        s1 = (s1 + p[i]) % 65521;
        s2 = (s2 + s1) % 65521;
    }
    return s2 << 16 | s1;
}

/* ========================================================================================
 * 7. PNG
 *
 * File = 8-byte signature, then chunks. Chunk = length (4 bytes, big-endian, of the data
 * only), type (4 ASCII letters), data, CRC-32 of type and data. We write three:
 *   IHDR  width, height (4 bytes each), bit depth 8, colour type (2 = RGB, 0 = gray),
 *         compression 0, filter method 0, interlace 0
 *   IDAT  a zlib stream (RFC 1950) of the scanlines, each prefixed by filter byte 0 (none)
 *   IEND  empty
 * zlib stream = 2-byte header, deflate data (RFC 1951), Adler-32 of the raw bytes
 * (big-endian). Our deflate data is a series of stored blocks: 1 header byte (bit 0 =
 * BFINAL, bits 1-2 = BTYPE 00 "stored"), LEN and NLEN = ~LEN (2 bytes each,
 * little-endian), then LEN raw bytes, LEN <= 65535.
 * ======================================================================================== */

#define STORED_MAX 65535

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

static void png_chunk(IoFile *f, const char type[4], const unsigned char *data, size_t n) {
    unsigned char head[8], tail[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    put_be32(tail, crc32_update(crc32_update(0, type, 4), data, n));
    io_write(f, head, 8);
    if (n) io_write(f, data, n);
    io_write(f, tail, 4);
}

/* px is (h, w, channels) with channels 3 (RGB) or 1 (gray). */
static int png_write_pixels(const char *path, const unsigned char *px, int w, int h,
                            int channels) {
    if (w <= 0 || h <= 0 || w > PLOT_MAX_SIDE || h > PLOT_MAX_SIDE)
        return write_failed(path, "image size must be 1..16384 on each side");

    // raw scanlines: (h, 1 + w * channels), each starting with filter byte 0
    size_t row = 1 + (size_t)w * channels, nraw = row * h;
    unsigned char *raw = plot_alloc(nraw, "PNG scanlines");
    for (int y = 0; y < h; y++) {
        raw[y * row] = 0;
        memcpy(raw + y * row + 1, px + (size_t)y * w * channels, row - 1);
    }

    // zlib stream: header, stored blocks, Adler-32
    size_t nblocks = (nraw + STORED_MAX - 1) / STORED_MAX;
    unsigned char *z = plot_alloc(2 + 5 * nblocks + nraw + 4, "PNG data");
    size_t nz = 0;
    z[nz++] = 0x78;  // CMF: method 8 (deflate), window 2^(7+8) = 32 KiB
    z[nz++] = 0x01;  // FLG: no dictionary, level 0; makes (CMF · 256 + FLG) % 31 == 0
    for (size_t at = 0; at < nraw; at += STORED_MAX) {
        size_t len = nraw - at < STORED_MAX ? nraw - at : STORED_MAX;
        z[nz++] = at + len == nraw;                 // BFINAL on the last block, BTYPE 00
        z[nz++] = (unsigned char)len;       z[nz++] = (unsigned char)(len >> 8);
        z[nz++] = (unsigned char)~len;      z[nz++] = (unsigned char)(~len >> 8);
        memcpy(z + nz, raw + at, len);
        nz += len;
    }
    put_be32(z + nz, adler32_update(1, raw, nraw));
    nz += 4;

    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;                          // bits per channel
    ihdr[9] = channels == 3 ? 2 : 0;      // colour type: 2 = RGB, 0 = gray
    ihdr[10] = ihdr[11] = ihdr[12] = 0;   // deflate, adaptive filtering, no interlace

    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    IoFile *f = open_tmp(path);
    if (f) {
        io_write(f, signature, 8);
        png_chunk(f, "IHDR", ihdr, 13);
        png_chunk(f, "IDAT", z, nz);
        png_chunk(f, "IEND", NULL, 0);
    }
    free(z);
    free(raw);
    return f ? close_tmp(f, 0) : -1;
}

int png_write(const char *path, const Image *img) {
    return png_write_pixels(path, img->rgb, img->w, img->h, 3);
}

int png_write_gray(const char *path, const unsigned char *gray, int w, int h) {
    return png_write_pixels(path, gray, w, h, 1);
}

/* ========================================================================================
 * 8. Animated GIF (GIF89a)
 *
 * File = "GIF89a", logical screen descriptor (width, height little-endian, flags 0xF7:
 * a global colour table of 2^(7+1) = 256 entries, 8-bit colour resolution; background
 * index 0; aspect 0), the table (256 x RGB), the NETSCAPE2.0 application extension
 * (loop count), then per frame a graphic control extension (delay) and an image (its
 * descriptor and LZW-compressed palette indices), and the trailer byte 0x3B.
 * Variable-length data travels in sub-blocks of at most 255 bytes, each preceded by its
 * length, and ends with a zero-length block.
 * ======================================================================================== */

static int gray_level(int k) { return (255 * k + 20) / 41; }   // round(255 k / 41)

void gif_palette(unsigned char pal[256][3]) {
    for (int i = 0; i < 216; i++) {            // the cube: index 36 r + 6 g + b
        pal[i][0] = (unsigned char)(51 * (i / 36));
        pal[i][1] = (unsigned char)(51 * (i / 6 % 6));
        pal[i][2] = (unsigned char)(51 * (i % 6));
    }
    for (int k = 1; k <= 40; k++)              // the extra grays
        pal[215 + k][0] = pal[215 + k][1] = pal[215 + k][2] = (unsigned char)gray_level(k);
}

/* The nearest entry is the better of two candidates, each found exactly without a search:
 * in the cube the nearest point of a grid is the per-channel nearest level, and among
 * grays, since Σ_c (rgb_c - g)² = 3 (g - mean)² + const, the gray nearest the mean. */
int gif_nearest(const unsigned char rgb[3]) {
    int r = (rgb[0] + 25) / 51, g = (rgb[1] + 25) / 51, b = (rgb[2] + 25) / 51;
    int dr = rgb[0] - 51 * r, dg = rgb[1] - 51 * g, db = rgb[2] - 51 * b;
    int best = 36 * r + 6 * g + b, best_d = dr * dr + dg * dg + db * db;
    int k0 = (int)((rgb[0] + rgb[1] + rgb[2]) * 41.0 / (3 * 255) + 0.5);
    for (int k = k0 - 1; k <= k0 + 1; k++) {   // rounding of the levels: try the neighbours
        if (k < 1 || k > 40) continue;
        int v = gray_level(k), d = 0;
        for (int c = 0; c < 3; c++) d += (rgb[c] - v) * (rgb[c] - v);
        if (d < best_d) { best_d = d; best = 215 + k; }
    }
    return best;
}

static void put_le16(IoFile *f, int v) {
    io_putc(f, v & 255);
    io_putc(f, (v >> 8) & 255);
}

int gif_open(GifWriter *g, const char *path, int w, int h, int delay_cs, int loop) {
    memset(g, 0, sizeof *g);
    if (w <= 0 || h <= 0 || w > PLOT_MAX_SIDE || h > PLOT_MAX_SIDE)
        return write_failed(path, "frame size must be 1..16384 on each side");
    if (delay_cs < 0 || delay_cs > 65535 || loop < 0 || loop > 65535)
        return write_failed(path, "delay and loop count must be 0..65535");
    g->f = open_tmp(path);
    if (!g->f) return -1;
    g->path = plot_alloc(strlen(path) + 1, "a file name");
    strcpy(g->path, path);
    g->w = w; g->h = h; g->delay = delay_cs;
    g->index = plot_alloc((size_t)w * h, "GIF frame");

    unsigned char pal[256][3];
    gif_palette(pal);
    io_puts(g->f, "GIF89a");
    put_le16(g->f, w);
    put_le16(g->f, h);
    io_putc(g->f, 0xF7);                // global table, 8-bit resolution, 2^(7+1) entries
    io_putc(g->f, 0);                   // background colour index
    io_putc(g->f, 0);                   // pixel aspect ratio: unspecified (square)
    io_write(g->f, pal, sizeof pal);
    // NETSCAPE2.0: extension 0x21, label 0xFF (application), 11 bytes of identifier, then
    // one sub-block of 3 bytes: 1 (loop sub-block id) and the loop count, 0 = forever.
    io_putc(g->f, 0x21); io_putc(g->f, 0xFF); io_putc(g->f, 11);
    io_puts(g->f, "NETSCAPE2.0");
    io_putc(g->f, 3); io_putc(g->f, 1); put_le16(g->f, loop); io_putc(g->f, 0);
    return 0;
}

/* LZW bit packing: codes go in least-significant-bit first, bytes into sub-blocks. */
typedef struct {
    IoFile *f;
    uint32_t acc; int nbits;            // bits not yet written, low bits first
    unsigned char block[255]; int len;  // the sub-block being filled
} BitWriter;

static void bits_flush_block(BitWriter *b) {
    if (b->len == 0) return;
    io_putc(b->f, b->len);
    io_write(b->f, b->block, (size_t)b->len);
    b->len = 0;
}

static void bits_put(BitWriter *b, int code, int width) {
    b->acc |= (uint32_t)code << b->nbits;
    b->nbits += width;
    while (b->nbits >= 8) {
        b->block[b->len++] = (unsigned char)(b->acc & 255);
        b->acc >>= 8;
        b->nbits -= 8;
        if (b->len == 255) bits_flush_block(b);
    }
}

/* LZW (Welch, 1984) as GIF uses it, with 8-bit pixel indices: codes 0..255 are the single
 * indices, 256 = CLEAR (forget the table), 257 = END, and each new code from 258 up names
 * a known string extended by one index. Codes start 9 bits wide and widen by one bit once
 * the table holds a code that needs it, up to 12 bits (4096 codes); then we send CLEAR
 * and start over.
 * The table maps (prefix code, next index) -> code with an open-addressing hash table,
 * twice as large as the 4096 codes so that probes stay short. */
enum { LZW_CLEAR = 256, LZW_END = 257, LZW_FIRST = 258, LZW_CODES = 4096, LZW_HASH = 8192 };

static void lzw_encode(IoFile *f, const unsigned char *idx, size_t n) {
    int32_t key[LZW_HASH];     // prefix · 256 + index, or -1 for an empty slot
    uint16_t code[LZW_HASH];   // the code of that string
    BitWriter b = {f, 0, 0, {0}, 0};
    int width = 9, next = LZW_FIRST;
    memset(key, 0xFF, sizeof key);

    io_putc(f, 8);                               // minimum code size: 8-bit indices
    bits_put(&b, LZW_CLEAR, width);
    int prefix = idx[0];                       // code of the longest string matched so far
    for (size_t i = 1; i < n; i++) {
        int32_t k = prefix << 8 | idx[i];
        uint32_t h = ((uint32_t)k * 2654435761u) >> 19;   // Knuth's multiplicative hash
        while (key[h] != -1 && key[h] != k) h = (h + 1) & (LZW_HASH - 1);
        if (key[h] == k) { prefix = code[h]; continue; }  // known: keep extending
        bits_put(&b, prefix, width);                       // unknown: send the match,
        if (next < LZW_CODES) {                            // and learn it plus idx[i]
            key[h] = k;
            code[h] = (uint16_t)next++;
            if (next > (1 << width)) width++;  // the code just made needs one more bit
        } else {
            bits_put(&b, LZW_CLEAR, width);
            memset(key, 0xFF, sizeof key);
            width = 9;
            next = LZW_FIRST;
        }
        prefix = idx[i];
    }
    bits_put(&b, prefix, width);
    // The decoder makes one more table entry after reading that last code, and may widen
    // before reading END; do the same so that END is sent at the width it expects.
    if (next < LZW_CODES && ++next > (1 << width)) width++;
    bits_put(&b, LZW_END, width);
    if (b.nbits > 0) bits_put(&b, 0, 8 - b.nbits);   // pad the last byte
    bits_flush_block(&b);
    io_putc(f, 0);                                     // zero-length block: end of data
}

int gif_add_frame(GifWriter *g, const Image *frame) {
    if (!g->f || g->failed) return -1;
    if (frame->w != g->w || frame->h != g->h) {
        char why[96];
        snprintf(why, sizeof why, "frame is %d x %d, the GIF is %d x %d",
                 frame->w, frame->h, g->w, g->h);
        g->failed = 1;
        return write_failed(g->path, why);
    }
    size_t n = (size_t)g->w * g->h;
    for (size_t i = 0; i < n; i++) g->index[i] = (unsigned char)gif_nearest(frame->rgb + 3 * i);

    IoFile *f = g->f;
    // graphic control extension: 4 bytes of flags (disposal 1: leave the frame in place),
    // delay in 1/100 s, transparent index (unused), then the block terminator
    io_putc(f, 0x21); io_putc(f, 0xF9); io_putc(f, 4);
    io_putc(f, 1 << 2); put_le16(f, g->delay); io_putc(f, 0); io_putc(f, 0);
    // image descriptor: left, top, width, height, flags 0 (global table, not interlaced)
    io_putc(f, 0x2C);
    put_le16(f, 0); put_le16(f, 0); put_le16(f, g->w); put_le16(f, g->h);
    io_putc(f, 0);
    lzw_encode(f, g->index, n);
    g->frames++;
    if (io_failed(f)) {    /* give up now: io_commit says why and removes the temporary */
        g->failed = 1;
        char why[1024];
        io_commit(f, why, sizeof why);
        g->f = NULL;
        fprintf(stderr, "plot: %s\n", why);
        return -1;
    }
    return 0;
}

int gif_close(GifWriter *g) {
    int rc = -1;
    if (g->f) {
        if (!g->failed && g->frames == 0) {
            write_failed(g->path, "no frames added");
            g->failed = 1;
        }
        io_putc(g->f, 0x3B);                     // trailer
        rc = close_tmp(g->f, g->failed);
    }
    free(g->path);
    free(g->index);
    memset(g, 0, sizeof *g);
    return rc;
}

/* ========================================================================================
 * 9. SVG line plots
 * ======================================================================================== */

enum { SVG_W = 720, SVG_H = 450, SVG_LEFT = 70, SVG_RIGHT = 20, SVG_TOP = 40, SVG_BOTTOM = 55 };

/* Line colours in series order: the ten "tableau" colours, then black and navy. */
static const char *const svg_colors[SVG_MAX_SERIES] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#000080",
};

/* Text content for XML: & < > and " become entities; control characters, which XML 1.0
 * forbids, become '?'. (Bytes >= 0x80 pass through, so the text should be UTF-8.) */
static void svg_text(IoFile *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': io_puts(f, "&amp;"); break;
        case '<': io_puts(f, "&lt;"); break;
        case '>': io_puts(f, "&gt;"); break;
        case '"': io_puts(f, "&quot;"); break;
        default: io_putc(f, (unsigned char)*s < 32 && *s != '\t' && *s != '\n' ? '?' : *s);
        }
    }
}

/* An axis maps data values v (after log10 when log) from [lo, hi] to pixels. Ticks are at
 * first + k·step, k = 0, 1, ... while <= hi (in log10 units when log). */
typedef struct { double lo, hi, step; int log; } Axis;

/* Linear axis: a "nice" step of 1, 2 or 5 times a power of ten giving about 5 intervals,
 * with the ends pushed out to multiples of the step. */
static Axis axis_linear(double lo, double hi) {
    if (!(hi > lo)) {                                  // one value: open a window round it
        double d = lo != 0 ? fabs(lo) * 0.1 : 1;
        lo -= d; hi += d;
    }
    double raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    Axis a = {floor(lo / step) * step, ceil(hi / step) * step, step, 0};
    return a;
}

/* Log axis: whole decades, a tick every decade (every few when there are many). */
static Axis axis_log(double lo, double hi) {
    double a = floor(log10(lo)), b = ceil(log10(hi));
    if (b <= a) b = a + 1;
    Axis ax = {a, b, ceil((b - a) / 8), 1};
    return ax;
}

static double axis_frac(const Axis *a, double v) {   // 0 at lo, 1 at hi
    return ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo);
}

static void tick_label(char *buf, size_t size, const Axis *a, double t) {
    if (a->log && fabs(t) >= 3) snprintf(buf, size, "1e%d", (int)t);
    else snprintf(buf, size, "%.6g", a->log ? pow(10, t) : t);
}

static int point_ok(const SvgPlot *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->log_y || y > 0);
}

int svg_lineplot(const char *path, const SvgPlot *plot) {
    if (plot->nseries < 1 || plot->nseries > SVG_MAX_SERIES)
        return write_failed(path, "nseries must be 1..12 (SVG_MAX_SERIES)");

    // data ranges over the points that will be drawn
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int s = 0; s < plot->nseries; s++) {
        const SvgSeries *se = &plot->series[s];
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(plot, se->x[i], se->y[i])) continue;
            xmin = fmin(xmin, se->x[i]); xmax = fmax(xmax, se->x[i]);
            ymin = fmin(ymin, se->y[i]); ymax = fmax(ymax, se->y[i]);
        }
    }
    if (xmin > xmax) { xmin = 0; xmax = 1; ymin = 1; ymax = 10; }   // nothing to draw
    Axis ax = axis_linear(xmin, xmax);
    Axis ay = plot->log_y ? axis_log(ymin, ymax) : axis_linear(ymin, ymax);
    const double pw = SVG_W - SVG_LEFT - SVG_RIGHT, ph = SVG_H - SVG_TOP - SVG_BOTTOM;

    IoFile *f = open_tmp(path);
    if (!f) return -1;
    io_printf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            SVG_W, SVG_H, SVG_W, SVG_H, SVG_W, SVG_H);
    io_printf(f, "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">",
            SVG_LEFT + pw / 2);
    svg_text(f, plot->title);
    io_puts(f, "</text>\n");

    // ticks: a light grid line and a number at each
    char label[32];
    for (int k = 0; ax.lo + k * ax.step <= ax.hi + 1e-9 * ax.step; k++) {
        double t = ax.lo + k * ax.step, px = SVG_LEFT + (t - ax.lo) / (ax.hi - ax.lo) * pw;
        tick_label(label, sizeof label, &ax, fabs(t) < 1e-12 * ax.step ? 0 : t);
        io_printf(f, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n"
                   "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
                px, SVG_TOP, px, SVG_TOP + ph, px, SVG_TOP + ph + 16, label);
    }
    for (int k = 0; ay.lo + k * ay.step <= ay.hi + 1e-9 * ay.step; k++) {
        double t = ay.lo + k * ay.step, py = SVG_TOP + ph - (t - ay.lo) / (ay.hi - ay.lo) * ph;
        tick_label(label, sizeof label, &ay, fabs(t) < 1e-12 * ay.step ? 0 : t);
        io_printf(f, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#ddd\"/>\n"
                   "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                SVG_LEFT, py, SVG_LEFT + pw, py, SVG_LEFT - 6, py + 4, label);
    }
    io_printf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
               "stroke=\"black\"/>\n", SVG_LEFT, SVG_TOP, pw, ph);

    // one path per series; a skipped point lifts the pen ("M" starts a new piece)
    for (int s = 0; s < plot->nseries; s++) {
        const SvgSeries *se = &plot->series[s];
        int pen_down = 0, started = 0;
        for (int i = 0; i < se->n; i++) {
            if (!point_ok(plot, se->x[i], se->y[i])) { pen_down = 0; continue; }
            if (!started) {
                io_printf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"",
                        svg_colors[s]);
                started = 1;
            }
            io_printf(f, "%c%.2f %.2f ", pen_down ? 'L' : 'M',
                    SVG_LEFT + axis_frac(&ax, se->x[i]) * pw,
                    SVG_TOP + ph - axis_frac(&ay, se->y[i]) * ph);
            pen_down = 1;
        }
        if (started) io_puts(f, "\"/>\n");
    }

    // legend, top right inside the axes: a short line and the name of each series
    int lx = SVG_W - SVG_RIGHT - 150, ly = SVG_TOP + 10;
    io_printf(f, "<rect x=\"%d\" y=\"%d\" width=\"140\" height=\"%d\" fill=\"white\" "
               "fill-opacity=\"0.8\" stroke=\"#999\"/>\n", lx, ly, 8 + 16 * plot->nseries);
    for (int s = 0; s < plot->nseries; s++) {
        int y = ly + 14 + 16 * s;
        io_printf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                   "stroke-width=\"2\"/>\n<text x=\"%d\" y=\"%d\">",
                lx + 8, y - 4, lx + 30, y - 4, svg_colors[s], lx + 36, y);
        svg_text(f, plot->series[s].name);
        io_puts(f, "</text>\n");
    }

    // axis labels; the y label is turned to read upwards
    io_printf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">", SVG_LEFT + pw / 2,
            SVG_H - 12);
    svg_text(f, plot->xlabel);
    io_printf(f, "</text>\n<text transform=\"translate(16 %.0f) rotate(-90)\" "
               "text-anchor=\"middle\">", SVG_TOP + ph / 2);
    svg_text(f, plot->ylabel);
    io_puts(f, "</text>\n</svg>\n");
    return close_tmp(f, 0);
}

/* ========================================================================================
 * 10. Terminal preview
 * ======================================================================================== */

/* Index in xterm's 256-colour table: 16 + 36 r + 6 g + b over the cube levels
 * 0, 95, 135, 175, 215, 255 (not evenly spaced), each channel to its nearest level. */
static int xterm_index(const unsigned char rgb[3]) {
    int idx = 16;
    for (int c = 0, mul = 36; c < 3; c++, mul /= 6) {
        int v = rgb[c], level = v < 48 ? 0 : v < 115 ? 1 : (v - 35) / 40;
        idx += mul * level;
    }
    return idx;
}

static void term_color(FILE *f, int background, const unsigned char rgb[3], int use_color) {
    int layer = background ? 48 : 38;          // SGR 38 = foreground, 48 = background
    if (use_color == TERM_TRUECOLOR)
        fprintf(f, "\x1b[%d;2;%d;%d;%dm", layer, rgb[0], rgb[1], rgb[2]);
    else
        fprintf(f, "\x1b[%d;5;%dm", layer, xterm_index(rgb));
}

void term_heatmap(FILE *f, const double *grid, int gw, int gh, int use_color) {
    static const char ramp[] = " .:-=+*#%@";   // 10 steps, dark to bright
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < (size_t)gw * gh; i++)
        if (isfinite(grid[i])) { lo = fmin(lo, grid[i]); hi = fmax(hi, grid[i]); }
    double span = hi > lo ? hi - lo : 1;

    for (int r = 0; r < gh; r += 2) {            // text line = grid rows r and r + 1
        const double *top = grid + (size_t)r * gw, *bot = r + 1 < gh ? top + gw : NULL;
        for (int c = 0; c < gw; c++) {
            double u = (top[c] - lo) / span;
            double v = bot ? (bot[c] - lo) / span : u;
            if (use_color == TERM_PLAIN) {
                double m = clamp01((u + v) / 2);
                fputc(isnan(m) ? '?' : ramp[(int)(m * 9 + 0.5)], f);
                continue;
            }
            unsigned char rgb[3];
            colormap(u, rgb);
            term_color(f, 0, rgb, use_color);
            if (bot) { colormap(v, rgb); term_color(f, 1, rgb, use_color); }
            else fputs("\x1b[49m", f);           // odd last row: default background
            fputs("\xE2\x96\x80", f);            // U+2580 UPPER HALF BLOCK in UTF-8
        }
        if (use_color != TERM_PLAIN) fputs("\x1b[0m", f);
        fputc('\n', f);
    }
}

int term_wants_color(FILE *f) {
    const char *no_color = getenv("NO_COLOR"), *term = getenv("TERM");
    const char *colorterm = getenv("COLORTERM");
    if (no_color && no_color[0]) return TERM_PLAIN;           // https://no-color.org
    if (!isatty(fileno(f)) || (term && strcmp(term, "dumb") == 0)) return TERM_PLAIN;
    if (colorterm && (!strcmp(colorterm, "truecolor") || !strcmp(colorterm, "24bit")))
        return TERM_TRUECOLOR;
    return TERM_256;
}
