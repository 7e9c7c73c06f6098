/* plot.h: pictures without libraries. PNG, animated GIF, SVG line plots, and a terminal
 * preview, written with libc alone because the brief allows nothing beyond libc and libm.
 *
 * What is here: an RGB8 canvas (`Image`) with pixels, rectangles, lines, dots and a tiny
 * built-in 5x7 bitmap font; a viridis-like colormap and heatmaps; grids of small images
 * in [-1, 1]; writers for PNG (stored deflate blocks), animated GIF (LZW, fixed palette)
 * and SVG line plots; a Unicode/ANSI heatmap for the terminal.
 * What is not: anything about diffusion (this is floor 1), anti-aliasing, compression
 * beyond what each format requires, or reading images back (the tests do that).
 *
 * Conventions: x grows right, y grows down, (0, 0) is the top-left pixel. Colours are
 * `const unsigned char rgb[3]` in 0..255. Drawing clips silently at the image border.
 * Writers go through io.h: a unique temporary beside `path`, every write checked, synced
 * and renamed over `path` when complete, so a crash or a full disk never leaves half a
 * file under the real name; they return 0, or -1 after one line on stderr naming the
 * path and the reason. Running out of memory is fatal (exit 1).
 *
 * Sizes: w, h = picture width and height in pixels; gw, gh = grid width and height;
 * n = number of small images, H, W = their height and width.
 */
#ifndef PLOT_H
#define PLOT_H

#include <stdint.h>
#include <stdio.h>
#include "io.h"
#include "tensor.h" /* only for `real` */

/* ----------------------------------------------------------------------------------------
 * The canvas */
typedef struct {
    int w, h;            /* size in pixels, e.g. 640, 480 */
    unsigned char *rgb;  /* (h, w, 3): pixel (x, y) starts at rgb[3 * (y * w + x)] */
} Image;

void image_init(Image *img, int w, int h);   /* filled white; each side 1..16384 or exit */
void image_free(Image *img);
void image_set_pixel(Image *img, int x, int y, const unsigned char rgb[3]); /* clips */
void image_fill_rect(Image *img, int x, int y, int w, int h, const unsigned char rgb[3]);
void image_blit(Image *dst, const Image *src, int x, int y);  /* src's top-left at (x, y) */

/* ----------------------------------------------------------------------------------------
 * Shapes and text */
void draw_line(Image *img, int x0, int y0, int x1, int y1, const unsigned char rgb[3]);
void draw_rect(Image *img, int x, int y, int w, int h, const unsigned char rgb[3]); /* outline */
void draw_circle(Image *img, int cx, int cy, int r, const unsigned char rgb[3]); /* outline */
void draw_dot(Image *img, int cx, int cy, int r, const unsigned char rgb[3]);  /* filled */

/* Text in a built-in 5x7 font (ASCII 32..126; other bytes show as '?', one per UTF-8
 * character). Each glyph takes a 6x8 cell times `scale`; (x, y) is the top-left of the
 * first cell; '\n' starts a new line. */
#define FONT_W 5
#define FONT_H 7
#define FONT_ADVANCE 6        /* glyph width plus one column of space */
#define FONT_LINE 9           /* glyph height plus two rows of space */
void draw_text(Image *img, int x, int y, const char *s, const unsigned char rgb[3], int scale);
int text_width(const char *s, int scale);  /* pixels covered by the longest line */

/* Points (x_i, y_i) = pts[2i], pts[2i+1] in data coordinates, drawn as dots of radius r
 * into the rectangle (x, y, w, h) whose corners are (xmin, ymax) top-left and
 * (xmax, ymin) bottom-right (data y grows up). */
void draw_scatter(Image *img, int x, int y, int w, int h, const real *pts, int n,
                  double xmin, double xmax, double ymin, double ymax,
                  int r, const unsigned char rgb[3]);

/* Axes for a panel (x, y, w, h) that shows data x in [xmin, xmax] and y in [ymin, ymax]
 * (data y grows up, as in draw_scatter): ticks at the multiples of axis_tick_step(span, n)
 * (1, 2 or 5 times a power of ten, about n per axis) along the bottom and left edges, each
 * labelled with its value, all in rgb and drawn inside the panel, so that a picture needs
 * no margin for them. */
double axis_tick_step(double span, int n);
void draw_axes_inside(Image *img, int x, int y, int w, int h, double xmin, double xmax,
                      double ymin, double ymax, int n, const unsigned char rgb[3]);
/* A legend: a filled square of colour rgb[i] and labels[i] beside it, one entry per line
 * (FONT_LINE pixels) from (x, y) down, the text in text_rgb. */
void draw_legend(Image *img, int x, int y, const char *const *labels, const unsigned char (*rgb)[3],
                 int n, const unsigned char text_rgb[3]);

/* ----------------------------------------------------------------------------------------
 * Colormaps: v in [0, 1] (clamped) to a colour. colormap() is viridis-like: dark purple
 * through blue and green to yellow, brightness rising monotonically, so that order reads
 * correctly even in grayscale print. NaN shows as bright red in both, so it cannot hide. */
void colormap(double v, unsigned char rgb[3]);
void colormap_gray(double v, unsigned char rgb[3]);

/* Heatmap of a (gh, gw) grid, row 0 at the top, stretched over the w x h pixel rectangle
 * at (x, y), each pixel taking the grid cell under its centre. Values map linearly from
 * [vmin, vmax] to colormap(); vmax == vmin shows the middle colour. */
void draw_heatmap(Image *img, int x, int y, int w, int h, const double *grid, int gw, int gh,
                  double vmin, double vmax);
/* A vertical colour bar of w x h pixels at (x, y), vmax at the top, with both labelled. */
void draw_colorbar(Image *img, int x, int y, int w, int h, double vmin, double vmax);

/* ----------------------------------------------------------------------------------------
 * Grids of small images, the layout used to show samples. pix holds n images in [-1, 1]:
 * (n, H, W) for gray, (n, 3, H, W) for colour. Each pixel becomes round((v + 1) 127.5)
 * clamped to 0..255 (NaN: red), each image is magnified `scale` times, and images are
 * laid out in rows of `ncols` with `pad` pixels of white around each. `out` is
 * initialized here (any previous content is not freed); free it with image_free(). */
void image_from_gray_grid(Image *out, const real *pix, int n, int H, int W, int ncols,
                          int scale, int pad);
void image_from_rgb_grid(Image *out, const real *pix, int n, int H, int W, int ncols,
                         int scale, int pad);

/* ----------------------------------------------------------------------------------------
 * The zlib stream's checksum, exposed for the tests (PNG's CRC-32 is crc32.h's). Start
 * from 1 and feed the bytes in any number of pieces: adler32_update(adler32_update(1, a, n),
 * b, m) equals the Adler-32 of a followed by b. */
uint32_t adler32_update(uint32_t adler, const void *buf, size_t n); /* RFC 1950 */

/* ----------------------------------------------------------------------------------------
 * PNG: 8-bit RGB (or 8-bit gray), one IDAT chunk holding a zlib stream of stored
 * (uncompressed) deflate blocks. Files are about as big as the raw pixels. */
int png_write(const char *path, const Image *img);
int png_write_gray(const char *path, const unsigned char *gray, int w, int h); /* (h, w) */

/* ----------------------------------------------------------------------------------------
 * Animated GIF. Every frame has the GifWriter's size and is quantized to one fixed global
 * palette of 256 colours: entries 0..215 are the 6x6x6 cube r, g, b in {0, 51, ..., 255}
 * (index 36 r + 6 g + b over the levels), entries 216..255 are 40 extra grays
 * round(255 k / 41), k = 1..40, so that grayscale images keep 46 distinct levels. Each
 * pixel takes the nearest entry (squared RGB distance).
 *
 *   GifWriter g;
 *   if (gif_open(&g, "out/chain.gif", w, h, 10, 0) == 0) {   // 10 cs = 0.1 s, loop forever
 *       for (...) gif_add_frame(&g, &frame);
 *       gif_close(&g);                                        // renames the temporary into place
 *   } */
typedef struct {
    IoFile *f;            /* the temporary being written (io.h) */
    char *path;           /* final name, e.g. "out/chain.gif" */
    int w, h;             /* frame size in pixels */
    int delay;            /* between frames, in hundredths of a second */
    int frames;           /* added so far */
    int failed;           /* an error was reported; gif_close() removes the temporary */
    unsigned char *index; /* (h, w) palette index of each pixel of the current frame */
} GifWriter;

/* loop = how many times to repeat, 0 = forever (the NETSCAPE2.0 convention). */
int gif_open(GifWriter *g, const char *path, int w, int h, int delay_cs, int loop);
int gif_add_frame(GifWriter *g, const Image *frame);   /* frame must be g->w x g->h */
int gif_close(GifWriter *g);        /* always frees; returns -1 if anything failed */
void gif_palette(unsigned char pal[256][3]);           /* the palette described above */
int gif_nearest(const unsigned char rgb[3]);           /* its index nearest to rgb */

/* ----------------------------------------------------------------------------------------
 * SVG line plots: a standalone 720x450 SVG with axes, numbered ticks, a title, axis
 * labels and a legend. Points with a non-finite coordinate (or y <= 0 when log_y) are
 * skipped and break the line there. Colours are picked in series order. */
#define SVG_MAX_SERIES 12
typedef struct {
    const char *name;        /* legend entry, e.g. "loss" */
    int n;                   /* points */
    const double *x, *y;     /* (n) each */
} SvgSeries;
typedef struct {
    const char *title, *xlabel, *ylabel;   /* any may be NULL; text is XML-escaped */
    int log_y;                             /* 1: logarithmic y axis with decade ticks */
    int nseries;                           /* 1 .. SVG_MAX_SERIES */
    SvgSeries series[SVG_MAX_SERIES];
} SvgPlot;
int svg_lineplot(const char *path, const SvgPlot *plot);

/* ----------------------------------------------------------------------------------------
 * Terminal preview of a (gh, gw) grid, scaled from its own min to max. Each text line
 * shows two grid rows with the upper-half block "▀" (foreground = upper row, background
 * = lower row), so gw columns by ceil(gh / 2) lines. use_color:
 *   TERM_PLAIN      ASCII ramp " .:-=+*#%@", the two rows averaged; no escapes
 *   TERM_256        ANSI 256-colour escapes (xterm 6x6x6 cube)
 *   TERM_TRUECOLOR  ANSI 24-bit escapes */
enum { TERM_PLAIN = 0, TERM_256 = 1, TERM_TRUECOLOR = 2 };
void term_heatmap(FILE *f, const double *grid, int gw, int gh, int use_color);
/* TERM_PLAIN unless f is a terminal and NO_COLOR is unset or empty; then TERM_TRUECOLOR
 * if COLORTERM is "truecolor" or "24bit", else TERM_256. */
int term_wants_color(FILE *f);

#endif
