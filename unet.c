/* unet.c: the image denoiser, a small U-Net with hand-written backprop (see unet.h).
 *
 * Reading order: conv2d (im2col and matmul.c's matmul, the only hot loop), upsampling, group norm,
 * concatenation, the residual block, the attention block, then the U-Net: config,
 * construction (where the architecture is spelled out and the block list built), forward,
 * backward (the forward's calls in exact reverse order), and the Denoiser glue.
 * The network never sees a schedule: it maps (x_t, t) to D = C·H·W numbers.
 *
 * Sizes: N = batch, C = channels, H, W = height, width, HW = H·W, P = output positions of
 *        a conv (H_out·W_out), K = C_in·k·k, G = groups.
 */
#include "unet.h"
#include "matmul.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* ========================================================================================
 * conv2d: k×k kernel, padding k/2, stride s. The input is unrolled into the im2col matrix
 * col (K, P), K = C_in·k·k, P = H_out·W_out, one column per output position, so that
 *   out[n] (C_out, P) = w (C_out, K) · col(in[n]) (K, P) + b
 * and the backward is two more matrix products (matmul reads the transposes in place):
 *   dwᵀ (K, C_out) += col(in[n]) (K, P) · dout[n]ᵀ (P, C_out)
 *   dcol (K, P)     = wᵀ (K, C_out) · dout[n] (C_out, P),  then din[n] += col2im(dcol).
 * Three choices make these products fast (each number is still the same chain of
 * multiply-adds over k, so none of them changes a bit):
 * - Small maps make poor products (a 7×7 map is 49 columns, and the dw product would sum
 *   only 49 terms between loading and storing its register tile), so a product takes a
 *   group of G images side by side, G = the fewest images with at least CONV_COLS columns
 *   (32 of 7×7, 8 of 14×14, 2 of 28×28; the forward's groups are smaller, 6, 2 and 1,
 *   see CONV_FORWARD_COLS), the columns ordered (image, position):
 *   col = [col(in[n0]) … col(in[n0+G−1])] (K, G·P). The dw product then sums over image
 *   n0's positions, then n0+1's, … as image by image.
 * - The forward computes its transpose, outᵀ (G·P, C_out) = colᵀ (G·P, K) · wᵀ (K, C_out),
 *   then puts each number in its place in out. matmul packs its B operand and reads A in
 *   place: this way B is the small wᵀ, packed once per group and then read from the cache,
 *   and the many positions are A's rows, where a partly filled register tile wastes at
 *   most 4 rows, while C_out = 32 or 64 channels fill the tile's 32 columns exactly.
 *   (Computed as w · col, the 32 channels would be rows, 35 of them in tiles of 5, and
 *   the whole of col would be copied into packed B: measured 64–79 GFLOP/s against 95–99
 *   this way on the default U-Net's shapes.)
 * - dw is summed as its transpose dwᵀ, a copy in the scratch, so that the operand matmul
 *   packs is the small dout rather than the im2col matrix.
 * One group's matrices are the only scratch (dcol overwrites col once dwᵀ has used it),
 * so the memory does not grow with the batch. */

int conv2d_out_size(int size, int k, int stride) { return (size + 2 * (k / 2) - k) / stride + 1; }

/* columns (image, position) of a product, at least: the backward's, and the forward's,
 * which sums over K, not over the positions, and so wants only enough rows to share one
 * packing of wᵀ, with a col small enough to stay in the second-level cache (measured on
 * the default U-Net: forward 113 images/s with 256 against 105 with 1536 and 100 with 1) */
enum { CONV_COLS = 1536, CONV_FORWARD_COLS = 256 };
static int conv_group(int P) { return (CONV_COLS + P - 1) / P; }   /* G, images per product */
static int conv_forward_group(int P) { return (CONV_FORWARD_COLS + P - 1) / P; }

/* Threads (make OMP=1): the forward gives whole groups to up to CONV_THREADS threads,
 * each with its own col (if there is one group, matmul splits the product itself); the
 * backward gives each thread a band of the input channels, that is a band of rows of col,
 * dcol and dwᵀ, for every group in order. Either way each number is computed by one
 * thread exactly as without threads. */
#ifdef _OPENMP
enum { CONV_THREADS = 2 };    /* the forward's cols in the scratch (this machine: 2 cores) */
#else
enum { CONV_THREADS = 1 };
#endif
static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* one forward thread's scratch: col (K, G·P) and outᵀ (G·P, C_out) */
static size_t conv_forward_scratch(size_t K, size_t C_out, size_t P, size_t G) {
    return (K + C_out) * G * P;
}

size_t conv2d_scratch_size(int C_in, int C_out, int H, int W, int k, int stride) {
    size_t K = (size_t)C_in * k * k;
    size_t P = (size_t)conv2d_out_size(H, k, stride) * conv2d_out_size(W, k, stride);
    size_t G = (size_t)conv_group((int)P);
    return max_size(CONV_THREADS * conv_forward_scratch(K, C_out, P, (size_t)conv_forward_group((int)P)),
                    /* backward: col, then dcol (K, G·P); dwᵀ (K, C_out); dout (C_out, G·P) */
                    K * G * P + K * C_out + (G > 1 ? C_out * G * P : 0));
}

/* The outputs x = 0 … n_out − 1 whose input s·x + j − pad lies inside 0 … n_in − 1 form
 * one run [lo, hi); the rest read the zero padding. Computing the run once lets im2col
 * and col2im copy it with a plain loop, without a test per number. */
static void inside_run(int *lo, int *hi, int j, int pad, int stride, int n_in, int n_out) {
    int first = pad - j > 0 ? (pad - j + stride - 1) / stride : 0;   /* s·x ≥ pad − j */
    int last = n_in - 1 - j + pad;                                   /* s·x ≤ this */
    int end = last < 0 ? 0 : last / stride + 1;
    if (end > n_out) end = n_out;
    *lo = first < end ? first : end;
    *hi = end;
}

/* Row (c, i, j) of the im2col matrix of one image, from its channel in_c = in[c]:
 * row[(y, x)] = in[c, s·y + i − k/2, s·x + j − k/2], 0 outside the image.
 * With stride 1 the row is in[c] shifted by off = (i − pad)·W + (j − pad) positions: one
 * long contiguous copy from the first to the last inside position, then zeros for the
 * padding (the rows above and below, and the columns that the shift wrapped around to
 * the neighbouring image row). That runs at copy speed; stride 2 goes row by row. */
static void im2col_row(real *row, const real *in_c, int H, int W, int k, int stride, int i,
                       int j) {
    int pad = k / 2, Ho = conv2d_out_size(H, k, stride), Wo = conv2d_out_size(W, k, stride);
    size_t P = (size_t)Ho * Wo;
    int y_lo, y_hi, x_lo, x_hi;
    inside_run(&y_lo, &y_hi, i, pad, stride, H, Ho);
    inside_run(&x_lo, &x_hi, j, pad, stride, W, Wo);
    if (y_lo == y_hi || x_lo == x_hi) {                                 /* all padding */
        for (size_t p = 0; p < P; p++) row[p] = 0;
        return;
    }
    if (stride == 1) {
        size_t begin = (size_t)y_lo * W + x_lo, end = (size_t)(y_hi - 1) * W + x_hi;
        const real *src = in_c + (size_t)(y_lo + i - pad) * W + (x_lo + j - pad);
        for (size_t p = 0; p < begin; p++) row[p] = 0;
        for (size_t p = begin; p < end; p++) row[p] = src[p - begin];
        for (size_t p = end; p < P; p++) row[p] = 0;
        for (int y = y_lo; y < y_hi; y++) {                             /* wrapped columns */
            for (int x = 0; x < x_lo; x++) row[(size_t)y * W + x] = 0;
            for (int x = x_hi; x < W; x++) row[(size_t)y * W + x] = 0;
        }
        return;
    }
    for (int y = 0; y < Ho; y++) {
        real *row_y = row + (size_t)y * Wo;
        if (y < y_lo || y >= y_hi) {
            for (int x = 0; x < Wo; x++) row_y[x] = 0;
            continue;
        }
        const real *in_y = in_c + (size_t)(stride * y + i - pad) * W;      /* in[c, iy, :] */
        for (int x = 0; x < x_lo; x++) row_y[x] = 0;
        for (int x = x_lo; x < x_hi; x++) row_y[x] = in_y[stride * x + j - pad];
        for (int x = x_hi; x < Wo; x++) row_y[x] = 0;
    }
}

/* The im2col matrix of one image's channels 0 … C_in − 1, rows ld apart:
 * col[(c, i, j), (y, x)] = in[c, s·y + i − k/2, s·x + j − k/2] */
static void im2col(real *col, size_t ld, const real *in, int C_in, int H, int W, int k,
                   int stride) {
    for (int c = 0; c < C_in; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                im2col_row(col + ((size_t)(c * k + i) * k + j) * ld, in + (size_t)c * H * W, H,
                           W, k, stride, i, j);
}

/* the adjoint of im2col: din[c, s·y + i − k/2, s·x + j − k/2] += dcol[(c, i, j), (y, x)],
 * rows of dcol ld apart. With stride 1 it is again one contiguous run per row of dcol,
 * after zeroing the entries of dcol that belong to the padding (so dcol, a scratch
 * buffer, is changed). */
static void col2im_add(real *din, real *dcol, size_t ld, int C_in, int H, int W, int k,
                       int stride) {
    int pad = k / 2, Ho = conv2d_out_size(H, k, stride), Wo = conv2d_out_size(W, k, stride);
    for (int c = 0; c < C_in; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                real *row = dcol + ((size_t)(c * k + i) * k + j) * ld;
                real *din_c = din + (size_t)c * H * W;
                int y_lo, y_hi, x_lo, x_hi;
                inside_run(&y_lo, &y_hi, i, pad, stride, H, Ho);
                inside_run(&x_lo, &x_hi, j, pad, stride, W, Wo);
                if (y_lo == y_hi || x_lo == x_hi) continue;
                if (stride == 1) {
                    size_t begin = (size_t)y_lo * W + x_lo, end = (size_t)(y_hi - 1) * W + x_hi;
                    real *dst = din_c + (size_t)(y_lo + i - pad) * W + (x_lo + j - pad);
                    for (int y = y_lo; y < y_hi; y++) {                     /* wrapped columns */
                        for (int x = 0; x < x_lo; x++) row[(size_t)y * W + x] = 0;
                        for (int x = x_hi; x < W; x++) row[(size_t)y * W + x] = 0;
                    }
                    for (size_t p = begin; p < end; p++) dst[p - begin] += row[p];
                    continue;
                }
                for (int y = y_lo; y < y_hi; y++) {
                    const real *row_y = row + (size_t)y * Wo;
                    real *din_y = din_c + (size_t)(stride * y + i - pad) * W;
                    for (int x = x_lo; x < x_hi; x++) din_y[stride * x + j - pad] += row_y[x];
                }
            }
}

void conv2d_forward(real *out, real *scratch, const real *in, const real *w, const real *b,
                    int N, int C_in, int C_out, int H, int W, int k, int stride) {
    int K = C_in * k * k;
    int P = conv2d_out_size(H, k, stride) * conv2d_out_size(W, k, stride);
    int G = conv_forward_group(P), groups = (N + G - 1) / G;
    size_t per_thread = conv_forward_scratch((size_t)K, (size_t)C_out, (size_t)P, (size_t)G);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(CONV_THREADS) \
    if (groups > 1 && (double)N * C_out * P * K > 1e6)
#endif
    for (int g = 0; g < groups; g++) {
        int n0 = g * G, nb = N - n0 < G ? N - n0 : G, cols = nb * P;   /* images n0 … +nb−1 */
        real *col = scratch + thread_id() * per_thread;      /* (K, cols) */
        real *out_t = col + (size_t)K * cols;                /* outᵀ (cols, C_out) */
        for (int n = n0; n < n0 + nb; n++)
            im2col(col + (size_t)(n - n0) * P, (size_t)cols, in + (size_t)n * C_in * H * W,
                   C_in, H, W, k, stride);
        /* outᵀ (cols, C_out) = colᵀ (cols, K) · wᵀ (K, C_out), starting from b */
        for (int q = 0; q < cols; q++) memcpy(out_t + (size_t)q * C_out, b, (size_t)C_out * sizeof(real));
        matmul(out_t, C_out, col, cols, 1, w, K, 1, cols, C_out, K, 1);
        for (int n = n0; n < n0 + nb; n++) {        /* out[n, o, p] = outᵀ((n − n0)·P + p, o) */
            real *out_n = out + (size_t)n * C_out * P;
            const real *t_n = out_t + (size_t)(n - n0) * P * C_out;
            for (int p0 = 0; p0 < P; p0 += 16)       /* in 16 × 16 blocks, both sides cached */
                for (int o0 = 0; o0 < C_out; o0 += 16) {
                    int p1 = p0 + 16 < P ? p0 + 16 : P, o1 = o0 + 16 < C_out ? o0 + 16 : C_out;
                    for (int o = o0; o < o1; o++)
                        for (int p = p0; p < p1; p++)
                            out_n[(size_t)o * P + p] = t_n[(size_t)p * C_out + o];
                }
        }
    }
}

/* forward: out[n] (C_out, P) = w (C_out, K) · col(in[n]) (K, P) + b */
void conv2d_backward(real *din, real *dw, real *db, real *scratch, const real *dout,
                     const real *in, const real *w,
                     int N, int C_in, int C_out, int H, int W, int k, int stride) {
    int K = C_in * k * k;
    int P = conv2d_out_size(H, k, stride) * conv2d_out_size(W, k, stride);
    int G = conv_group(P), groups = (N + G - 1) / G;
    size_t ld = (size_t)G * P;
    real *col = scratch;                           /* (K, G·P): col, then dcol */
    real *dwT = col + (size_t)K * G * P;           /* (K, C_out): dwᵀ, from dw and back */
    real *dout_g = dwT + (size_t)K * C_out;        /* (C_out, G·P): a group's dout, if G > 1 */
    /* db[o] += Σ_p dout[n, o, p], image by image (threads: a band of o each) */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((size_t)N * C_out * P > 100000)
#endif
    for (int o = 0; o < C_out; o++)
        for (int n = 0; n < N; n++) {
            const real *dout_o = dout + ((size_t)n * C_out + o) * P;   /* seek to dout[n, o, :] */
            real sum = 0;
            for (int p = 0; p < P; p++) sum += dout_o[p];
            db[o] += sum;
        }
    for (int o = 0; o < C_out; o++)
        for (int kk = 0; kk < K; kk++) dwT[(size_t)kk * C_out + o] = dw[(size_t)o * K + kk];
#ifdef _OPENMP
#pragma omp parallel if (C_in > 1 && (double)N * C_out * P * K > 1e6)
#endif
    {
        /* this thread's input channels c0 … c1−1: rows k0 … k1−1 of col, dcol and dwᵀ;
         * and its output channels o0 … o1−1 to copy into dout_g */
        int tid = thread_id(), nt = thread_count();
        int c0 = C_in * tid / nt, c1 = C_in * (tid + 1) / nt;
        int k0 = c0 * k * k, k1 = c1 * k * k;
        int o0 = C_out * tid / nt, o1 = C_out * (tid + 1) / nt;
        for (int g = 0; g < groups; g++) {
            int n0 = g * G, nb = N - n0 < G ? N - n0 : G, cols = nb * P;
            /* the group's dout (C_out, cols): dout[n0] itself, or its images side by side */
            const real *dg = dout + (size_t)n0 * C_out * P;
            if (nb > 1) {
#ifdef _OPENMP
#pragma omp barrier
#endif
                for (int o = o0; o < o1; o++)       /* (the previous group is done with it) */
                    for (int n = n0; n < n0 + nb; n++)
                        memcpy(dout_g + (size_t)o * cols + (size_t)(n - n0) * P,
                               dout + ((size_t)n * C_out + o) * P, (size_t)P * sizeof(real));
#ifdef _OPENMP
#pragma omp barrier
#endif
                dg = dout_g;
            }
            /* dwᵀ (K, C_out) += col (K, cols) · doutᵀ (cols, C_out), this thread's rows (of
             * col, rows ld = G·P apart whatever the group's size: the threads' rows never
             * meet, even when one thread is a group ahead of the other) */
            real *col_band = col + (size_t)k0 * ld;
            for (int n = n0; n < n0 + nb; n++)
                im2col(col_band + (size_t)(n - n0) * P, ld, in + ((size_t)n * C_in + c0) * H * W,
                       c1 - c0, H, W, k, stride);
            matmul(dwT + (size_t)k0 * C_out, C_out, col_band, (int)ld, 0, dg, cols, 1, k1 - k0,
                   C_out, cols, 1);
            if (!din) continue;
            /* dcol (K, cols) = wᵀ (K, C_out) · dout (C_out, cols);  din[n] += col2im(dcol) */
            matmul(col_band, (int)ld, w + k0, K, 1, dg, cols, 0, k1 - k0, cols, C_out, 0);
            for (int n = n0; n < n0 + nb; n++)
                col2im_add(din + ((size_t)n * C_in + c0) * H * W, col_band + (size_t)(n - n0) * P,
                           ld, c1 - c0, H, W, k, stride);
        }
    }
    for (int o = 0; o < C_out; o++)
        for (int kk = 0; kk < K; kk++) dw[(size_t)o * K + kk] = dwT[(size_t)kk * C_out + o];
}

/* ========================================================================================
 * Nearest-neighbour ×2 upsampling: out (N, C, 2H, 2W), in (N, C, H, W) */

void upsample_forward(real *out, const real *in, int N, int C, int H, int W) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 20000)
#endif
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const real *in_c = in + nc * H * W;                 /* seek to in[n, c, :, :] */
        real *out_c = out + nc * 4 * H * W;                 /* seek to out[n, c, :, :] */
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                out_c[(size_t)y * 2 * W + x] = in_c[(size_t)(y / 2) * W + x / 2];
    }
}

/* forward: out[y, x] = in[y/2, x/2], so each input feeds four outputs:
 *   din[y, x] += dout[2y, 2x] + dout[2y, 2x+1] + dout[2y+1, 2x] + dout[2y+1, 2x+1] */
void upsample_backward(real *din, const real *dout, int N, int C, int H, int W) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 20000)
#endif
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        real *din_c = din + nc * H * W;
        const real *dout_c = dout + nc * 4 * H * W;
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                din_c[(size_t)(y / 2) * W + x / 2] += dout_c[(size_t)y * 2 * W + x];
    }
}

/* ========================================================================================
 * Group normalization: in, out (N, C, HW), γ, β (C), mean, rstd (N, G).
 * The channels of group g are c = g·C/G … (g+1)·C/G − 1, contiguous in memory, so group
 * (n, g) is one run of M = (C/G)·HW numbers. Statistics are summed in double, in LANES
 * interleaved partial sums (lane l adds the numbers l, l + LANES, l + 2·LANES, …) that are
 * then added in a fixed order: one chain of additions would wait for each addition to
 * finish, LANES independent ones are one vector instruction per LANES numbers. The order
 * is fixed by the code, not by the machine or the number of threads. */

enum { LANES = 8 };

/* Σ lane[l], pairwise: (0+4 … 3+7), then (0+2, 1+3), then 0+1 */
static double add_lanes(double lane[LANES]) {
    for (int width = LANES / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++) lane[l] += lane[l + width];
    return lane[0];
}

/* Σ_i (x[i] − shift)^power, power 1 or 2, in double */
static double sum_shifted(const real *x, size_t M, double shift, int power) {
    double lane[LANES] = { 0 };
    size_t i = 0;
    for (; i + LANES <= M; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = (double)x[i + l] - shift;
            lane[l] += power == 1 ? d : d * d;
        }
    for (int l = 0; i < M; i++, l++) {
        double d = (double)x[i] - shift;
        lane[l] += power == 1 ? d : d * d;
    }
    return add_lanes(lane);
}

void groupnorm_forward(real *out, real *mean, real *rstd, const real *in,
                       const real *gamma, const real *beta, int N, int C, int HW, int G) {
    int Cg = C / G;
    size_t M = (size_t)Cg * HW;
#ifdef _OPENMP
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 20000)
#endif
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            const real *x = in + ((size_t)n * C + (size_t)g * Cg) * HW; /* seek to in[n, g·Cg, :] */
            double mu = sum_shifted(x, M, 0.0, 1) / (double)M;
            double sq = sum_shifted(x, M, mu, 2);   /* two passes: no cancellation */
            double r = 1.0 / sqrt(sq / (double)M + GROUPNORM_EPS);
            mean[n * G + g] = (real)mu;
            rstd[n * G + g] = (real)r;
        }
    groupnorm_apply(out, mean, rstd, in, gamma, beta, N, C, HW, G);
}

void groupnorm_apply(real *out, const real *mean, const real *rstd, const real *in,
                     const real *gamma, const real *beta, int N, int C, int HW, int G) {
    int Cg = C / G;
#ifdef _OPENMP
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 20000)
#endif
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            size_t start = ((size_t)n * C + c) * HW;           /* seek to in[n, c, :] */
            const real *xc = in + start;
            real *yc = out + start;
            real ga = gamma[c], be = beta[c];
            real m = mean[n * G + c / Cg], rs = rstd[n * G + c / Cg];
            for (int p = 0; p < HW; p++) yc[p] = ga * ((xc[p] - m) * rs) + be;
        }
}

/* forward: x̂ = (x − μ) rstd,  out[c, p] = γ[c] x̂[c, p] + β[c]
 *   dβ[c] += Σ_p dout[c, p],  dγ[c] += Σ_p dout[c, p] x̂[c, p]
 *   with dx̂ = dout γ, and μ, rstd depending on every x of the group:
 *   din = rstd (dx̂ − mean(dx̂) − x̂ mean(dx̂ x̂))      (means over the group's M numbers)
 * The three terms, from ∂x̂_j/∂x_i = rstd (δ_ij − 1/M − x̂_i x̂_j / M):
 *   direct term     rstd dx̂_i               through x̂_i's own x_i, μ and σ² held fixed
 *   mean term      −rstd mean(dx̂)           through μ:  ∂μ/∂x_i = 1/M
 *   variance term  −rstd x̂_i mean(dx̂ x̂)     through σ²: ∂σ²/∂x_i = 2 (x_i − μ)/M */
/* Σ_p dy[p] and Σ_p dy[p] x̂[p], x̂ = (x − m) rstd, in double, in LANES partial sums */
static void sums_dy_xhat(double *sum_dy, double *sum_dy_xhat, const real *dy, const real *x,
                         real m, real rs, int HW) {
    double lane_dy[LANES] = { 0 }, lane_dy_xhat[LANES] = { 0 };
    int p = 0;
    for (; p + LANES <= HW; p += LANES)
        for (int l = 0; l < LANES; l++) {
            double xhat = (double)((x[p + l] - m) * rs);
            lane_dy[l] += dy[p + l];
            lane_dy_xhat[l] += dy[p + l] * xhat;
        }
    for (int l = 0; p < HW; p++, l++) {
        double xhat = (double)((x[p] - m) * rs);
        lane_dy[l] += dy[p];
        lane_dy_xhat[l] += dy[p] * xhat;
    }
    *sum_dy = add_lanes(lane_dy);
    *sum_dy_xhat = add_lanes(lane_dy_xhat);
}

void groupnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout,
                        const real *mean, const real *rstd, const real *in,
                        const real *gamma, int N, int C, int HW, int G) {
    int Cg = C / G;
    size_t M = (size_t)Cg * HW;
    /* groups outside, images inside: threads split the groups, and each dγ, dβ still adds
     * its images in the order n = 0, 1, …, N−1 */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 20000)
#endif
    for (int g = 0; g < G; g++)
        for (int n = 0; n < N; n++) {
            size_t start = ((size_t)n * C + (size_t)g * Cg) * HW;
            const real *x = in + start, *dy = dout + start;
            real *dx = din + start;
            real m = mean[n * G + g], rs = rstd[n * G + g];
            double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
            for (int c = 0; c < Cg; c++) {
                const real *xc = x + (size_t)c * HW, *dyc = dy + (size_t)c * HW;
                real ga = gamma[g * Cg + c];
                double sum_dy, sum_dy_xhat;
                sums_dy_xhat(&sum_dy, &sum_dy_xhat, dyc, xc, m, rs, HW);
                dbeta[g * Cg + c] += (real)sum_dy;
                dgamma[g * Cg + c] += (real)sum_dy_xhat;
                sum_dxhat += ga * sum_dy;
                sum_dxhat_xhat += ga * sum_dy_xhat;
            }
            /* the mean term, and the variance term's factor, are one number per group */
            real mean_term = (real)(sum_dxhat / (double)M);            /* mean(dx̂) */
            real mean_dxhat_xhat = (real)(sum_dxhat_xhat / (double)M); /* mean(dx̂ x̂) */
            for (int c = 0; c < Cg; c++) {
                const real *xc = x + (size_t)c * HW, *dyc = dy + (size_t)c * HW;
                real *dxc = dx + (size_t)c * HW;
                real ga = gamma[g * Cg + c];
                for (int p = 0; p < HW; p++) {
                    real xhat = (xc[p] - m) * rs;
                    real direct = dyc[p] * ga;                      /* dx̂_i */
                    real variance_term = xhat * mean_dxhat_xhat;    /* x̂_i mean(dx̂ x̂) */
                    dxc[p] += rs * (direct - mean_term - variance_term);
                }
            }
        }
}

/* ========================================================================================
 * Concatenation along channels: out (N, C_h + C_skip, HW) = [h (N, C_h, HW), skip] */

void concat_forward(real *out, const real *h, const real *skip, int N, int C_h, int C_skip,
                    int HW) {
    size_t nh = (size_t)C_h * HW, ns = (size_t)C_skip * HW;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((nh + ns) * N > 20000)
#endif
    for (int n = 0; n < N; n++) {
        real *out_n = out + (size_t)n * (nh + ns);          /* seek to out[n, :, :] */
        memcpy(out_n, h + (size_t)n * nh, nh * sizeof(real));
        memcpy(out_n + nh, skip + (size_t)n * ns, ns * sizeof(real));
    }
}

/* forward: out[n] = [h[n], skip[n]]: the gradient splits back into the two parts */
void concat_backward(real *dh, real *dskip, const real *dout, int N, int C_h, int C_skip,
                     int HW) {
    size_t nh = (size_t)C_h * HW, ns = (size_t)C_skip * HW;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if ((nh + ns) * N > 20000)
#endif
    for (int n = 0; n < N; n++) {
        const real *dout_n = dout + (size_t)n * (nh + ns);
        real *dh_n = dh + (size_t)n * nh, *dskip_n = dskip + (size_t)n * ns;
        for (size_t i = 0; i < nh; i++) dh_n[i] += dout_n[i];
        for (size_t i = 0; i < ns; i++) dskip_n[i] += dout_n[nh + i];
    }
}

/* ========================================================================================
 * Small helpers for declaring and initializing weights. */

/* buf (PARAM_NAME_LEN) = "prefix.suffix", e.g. "down0.res1" + "conv1" */
static void name_param(char *buf, const char *prefix, const char *suffix) {
    size_t np = strlen(prefix), ns = strlen(suffix);
    if (np + 1 + ns >= PARAM_NAME_LEN)
        die("unet: parameter name %s.%s longer than %d characters", prefix, suffix,
            PARAM_NAME_LEN - 1);
    memmove(buf, prefix, np);
    buf[np] = '.';
    memcpy(buf + np + 1, suffix, ns + 1);
}

static void conv2d_declare(Conv2d *conv, ParamSet *ps, const char *prefix, const char *what,
                           int C_in, int C_out, int k, int stride) {
    char name[PARAM_NAME_LEN], full[PARAM_NAME_LEN];
    conv->C_in = C_in; conv->C_out = C_out; conv->k = k; conv->stride = stride;
    name_param(full, prefix, what);
    name_param(name, full, "w");
    params_add(ps, &conv->w, &conv->dw, name, 4, C_out, C_in, k, k);
    name_param(name, full, "b");
    params_add(ps, &conv->b, &conv->db, name, 1, C_out);
}

/* PyTorch's default for a conv: w and b ~ U(±1/√fan_in), fan_in = C_in·k·k; or all zero */
static void conv2d_init(Conv2d *conv, Rng *rng, int zero) {
    size_t nw = (size_t)conv->C_out * conv->C_in * conv->k * conv->k;
    if (zero) {
        memset(conv->w, 0, nw * sizeof(real));
        memset(conv->b, 0, (size_t)conv->C_out * sizeof(real));
        return;
    }
    int fan_in = conv->C_in * conv->k * conv->k;
    init_uniform(conv->w, nw, fan_in, rng);
    init_uniform(conv->b, (size_t)conv->C_out, fan_in, rng);
}

static void groupnorm_declare(real **gamma, real **dgamma, real **beta, real **dbeta,
                              ParamSet *ps, const char *prefix, const char *what, int C) {
    char name[PARAM_NAME_LEN], full[PARAM_NAME_LEN];
    name_param(full, prefix, what);
    name_param(name, full, "gamma");
    params_add(ps, gamma, dgamma, name, 1, C);
    name_param(name, full, "beta");
    params_add(ps, beta, dbeta, name, 1, C);
}

static void groupnorm_init(real *gamma, real *beta, int C) {
    for (int c = 0; c < C; c++) { gamma[c] = 1; beta[c] = 0; }
}

static real *alloc_reals(size_t n, const char *what) { return xcalloc(n, sizeof(real), what); }


/* ========================================================================================
 * Residual block. Forward and backward below follow the six lines of unet.h. */

void resblock_create(ResBlock *rb, ParamSet *ps, const char *name, int C_in, int C_out,
                     int T_emb, int G, int H, int W, int max_batch) {
    memset(rb, 0, sizeof *rb);
    rb->C_in = C_in; rb->C_out = C_out; rb->H = H; rb->W = W;
    rb->T_emb = T_emb; rb->G = G; rb->max_batch = max_batch;
    rb->has_skip = (C_in != C_out);
    char pname[PARAM_NAME_LEN];
    groupnorm_declare(&rb->gn1_gamma, &rb->dgn1_gamma, &rb->gn1_beta, &rb->dgn1_beta,
                      ps, name, "gn1", C_in);
    conv2d_declare(&rb->conv1, ps, name, "conv1", C_in, C_out, 3, 1);
    name_param(pname, name, "temb.w");
    params_add(ps, &rb->temb_w, &rb->dtemb_w, pname, 2, T_emb, C_out);
    name_param(pname, name, "temb.b");
    params_add(ps, &rb->temb_b, &rb->dtemb_b, pname, 1, C_out);
    groupnorm_declare(&rb->gn2_gamma, &rb->dgn2_gamma, &rb->gn2_beta, &rb->dgn2_beta,
                      ps, name, "gn2", C_out);
    conv2d_declare(&rb->conv2, ps, name, "conv2", C_out, C_out, 3, 1);
    if (rb->has_skip) conv2d_declare(&rb->skip, ps, name, "skip", C_in, C_out, 1, 1);

    size_t HW = (size_t)H * W, NB = (size_t)max_batch;
    rb->gn1_mean = alloc_reals(NB * G, "resblock gn1 mean");
    rb->gn1_rstd = alloc_reals(NB * G, "resblock gn1 rstd");
    rb->tproj = alloc_reals(NB * C_out, "resblock tproj");
    rb->h = alloc_reals(NB * C_out * HW, "resblock h");
    rb->gn2_mean = alloc_reals(NB * G, "resblock gn2 mean");
    rb->gn2_rstd = alloc_reals(NB * G, "resblock gn2 rstd");
    rb->dtproj = alloc_reals(NB * C_out, "resblock dtproj");
}

void resblock_init_weights(ResBlock *rb, Rng *rng, int zero_last) {
    groupnorm_init(rb->gn1_gamma, rb->gn1_beta, rb->C_in);
    conv2d_init(&rb->conv1, rng, 0);
    init_uniform(rb->temb_w, (size_t)rb->T_emb * rb->C_out, rb->T_emb, rng);
    init_uniform(rb->temb_b, (size_t)rb->C_out, rb->T_emb, rng);
    groupnorm_init(rb->gn2_gamma, rb->gn2_beta, rb->C_out);
    conv2d_init(&rb->conv2, rng, zero_last);
    if (rb->has_skip) conv2d_init(&rb->skip, rng, 0);
}

/* The scratch of a block: [conv scratch | a | s | g1 | g2], with a a group norm's output,
 * s = SiLU(a) the input of a conv, and g1, g2 the gradients passed along inside the
 * backward (each (N, max(C_in, C_out), H, W)). The convs get the front part, which they
 * use for one image's im2col. */
static size_t resblock_conv_scratch(const ResBlock *rb) {
    size_t s = conv2d_scratch_size(rb->C_in, rb->C_out, rb->H, rb->W, 3, 1);
    s = max_size(s, conv2d_scratch_size(rb->C_out, rb->C_out, rb->H, rb->W, 3, 1));
    return max_size(s, conv2d_scratch_size(rb->C_in, rb->C_out, rb->H, rb->W, 1, 1));
}
static size_t resblock_big(const ResBlock *rb) {
    return (size_t)rb->max_batch * (size_t)(rb->C_in > rb->C_out ? rb->C_in : rb->C_out) *
           rb->H * rb->W;
}

size_t resblock_scratch_size(const ResBlock *rb) {
    return resblock_conv_scratch(rb) + 4 * resblock_big(rb);
}

void resblock_forward(ResBlock *rb, real *out, real *scratch, const real *x,
                      const real *temb_act, int N) {
    int Ci = rb->C_in, Co = rb->C_out, H = rb->H, W = rb->W, HW = H * W, G = rb->G;
    real *a = scratch + resblock_conv_scratch(rb), *s = a + resblock_big(rb);
    real *g1 = s + resblock_big(rb);
    /* a = a1 = GN1(x); s = SiLU(a1) */
    groupnorm_forward(a, rb->gn1_mean, rb->gn1_rstd, x, rb->gn1_gamma, rb->gn1_beta,
                      N, Ci, HW, G);
    silu_forward(s, a, (size_t)N * Ci * HW);
    /* h = conv1(s) + tproj[n, c],  tproj = Linear(temb_act) */
    conv2d_forward(rb->h, scratch, s, rb->conv1.w, rb->conv1.b, N, Ci, Co, H, W, 3, 1);
    linear_forward(rb->tproj, temb_act, rb->temb_w, rb->temb_b, N, rb->T_emb, Co);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Co; c++) {
            real *h_nc = rb->h + ((size_t)n * Co + c) * HW;   /* seek to h[n, c, :] */
            real tp = rb->tproj[n * Co + c];
            for (int p = 0; p < HW; p++) h_nc[p] += tp;
        }
    /* a = a2 = GN2(h); s = SiLU(a2) */
    groupnorm_forward(a, rb->gn2_mean, rb->gn2_rstd, rb->h, rb->gn2_gamma, rb->gn2_beta,
                      N, Co, HW, G);
    silu_forward(s, a, (size_t)N * Co * HW);
    /* out = conv2(s) + skip(x) */
    conv2d_forward(out, scratch, s, rb->conv2.w, rb->conv2.b, N, Co, Co, H, W, 3, 1);
    size_t n_out = (size_t)N * Co * HW;
    if (rb->has_skip) {
        /* the 1×1 skip conv goes through g1 (free during the forward) and is added */
        conv2d_forward(g1, scratch, x, rb->skip.w, rb->skip.b, N, Ci, Co, H, W, 1, 1);
        for (size_t i = 0; i < n_out; i++) out[i] += g1[i];
    } else {
        for (size_t i = 0; i < n_out; i++) out[i] += x[i];
    }
}

void resblock_backward(ResBlock *rb, real *dx, real *dtemb_act, real *scratch,
                       const real *dout, const real *x, const real *temb_act, int N) {
    int Ci = rb->C_in, Co = rb->C_out, H = rb->H, W = rb->W, HW = H * W, G = rb->G;
    size_t n_in = (size_t)N * Ci * HW, n_out = (size_t)N * Co * HW;
    real *a = scratch + resblock_conv_scratch(rb), *s = a + resblock_big(rb);
    real *g1 = s + resblock_big(rb), *g2 = g1 + resblock_big(rb);
    /* forward: out = conv2(s2) + skip(x), s2 = SiLU(a2), a2 = GN2(h): recomputed into s, a */
    if (rb->has_skip)
        conv2d_backward(dx, rb->skip.dw, rb->skip.db, scratch, dout, x, rb->skip.w,
                        N, Ci, Co, H, W, 1, 1);
    else
        for (size_t i = 0; i < n_in; i++) dx[i] += dout[i];
    groupnorm_apply(a, rb->gn2_mean, rb->gn2_rstd, rb->h, rb->gn2_gamma, rb->gn2_beta,
                    N, Co, HW, G);
    silu_forward(s, a, n_out);
    real *ds2 = g1;
    memset(ds2, 0, n_out * sizeof(real));
    conv2d_backward(ds2, rb->conv2.dw, rb->conv2.db, scratch, dout, s, rb->conv2.w,
                    N, Co, Co, H, W, 3, 1);
    /* forward: s2 = SiLU(a2) */
    real *da2 = g2;
    memset(da2, 0, n_out * sizeof(real));
    silu_backward(da2, ds2, a, n_out);
    /* forward: a2 = GN2(h) */
    real *dh = g1;
    memset(dh, 0, n_out * sizeof(real));
    groupnorm_backward(dh, rb->dgn2_gamma, rb->dgn2_beta, da2, rb->gn2_mean, rb->gn2_rstd,
                       rb->h, rb->gn2_gamma, N, Co, HW, G);
    /* forward: h[n, c, p] = conv1(s1)[n, c, p] + tproj[n, c]
     *   dtproj[n, c] = Σ_p dh[n, c, p];  tproj = Linear(temb_act) */
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Co; c++) {
            const real *dh_nc = dh + ((size_t)n * Co + c) * HW;
            real sum = 0;
            for (int p = 0; p < HW; p++) sum += dh_nc[p];
            rb->dtproj[n * Co + c] = sum;
        }
    linear_backward(dtemb_act, rb->dtemb_w, rb->dtemb_b, rb->dtproj, temb_act, rb->temb_w,
                    N, rb->T_emb, Co);
    /* forward: h = conv1(s1) + …, s1 = SiLU(a1), a1 = GN1(x): recomputed into s, a */
    groupnorm_apply(a, rb->gn1_mean, rb->gn1_rstd, x, rb->gn1_gamma, rb->gn1_beta,
                    N, Ci, HW, G);
    silu_forward(s, a, n_in);
    real *ds1 = g2;
    memset(ds1, 0, n_in * sizeof(real));
    conv2d_backward(ds1, rb->conv1.dw, rb->conv1.db, scratch, dh, s, rb->conv1.w,
                    N, Ci, Co, H, W, 3, 1);
    /* forward: s1 = SiLU(a1) */
    real *da1 = g1;
    memset(da1, 0, n_in * sizeof(real));
    silu_backward(da1, ds1, a, n_in);
    /* forward: a1 = GN1(x) */
    groupnorm_backward(dx, rb->dgn1_gamma, rb->dgn1_beta, da1, rb->gn1_mean, rb->gn1_rstd,
                       x, rb->gn1_gamma, N, Ci, HW, G);
}

void resblock_free(ResBlock *rb) {
    free(rb->gn1_mean); free(rb->gn1_rstd); free(rb->tproj);
    free(rb->h); free(rb->gn2_mean); free(rb->gn2_rstd); free(rb->dtproj);
    memset(rb, 0, sizeof *rb);
}

/* ========================================================================================
 * Attention block. Per image the matrices are (C, HW) with HW = P positions; the two
 * products are matmul calls that read the transposes in place:
 *   S (P, P) = qᵀ (P, C) · k (C, P) / √C          o (C, P) = v (C, P) · Probᵀ (P, P) */

void attention_create(AttnBlock *ab, ParamSet *ps, const char *name, int C, int G, int H,
                      int W, int max_batch) {
    memset(ab, 0, sizeof *ab);
    ab->C = C; ab->G = G; ab->H = H; ab->W = W; ab->max_batch = max_batch;
    groupnorm_declare(&ab->gn_gamma, &ab->dgn_gamma, &ab->gn_beta, &ab->dgn_beta,
                      ps, name, "gn", C);
    conv2d_declare(&ab->q, ps, name, "q", C, C, 1, 1);
    conv2d_declare(&ab->k, ps, name, "k", C, C, 1, 1);
    conv2d_declare(&ab->v, ps, name, "v", C, C, 1, 1);
    conv2d_declare(&ab->proj, ps, name, "proj", C, C, 1, 1);
    size_t NB = (size_t)max_batch, HW = (size_t)H * W, n = NB * C * HW;
    ab->gn_mean = alloc_reals(NB * G, "attention gn mean");
    ab->gn_rstd = alloc_reals(NB * G, "attention gn rstd");
    ab->a = alloc_reals(n, "attention a");
    ab->qx = alloc_reals(n, "attention q");
    ab->kx = alloc_reals(n, "attention k");
    ab->vx = alloc_reals(n, "attention v");
    ab->prob = alloc_reals(NB * HW * HW, "attention probabilities");
    ab->o = alloc_reals(n, "attention o");
    for (int i = 0; i < 4; i++) ab->g[i] = alloc_reals(n, "attention gradient buffer");
}

void attention_init_weights(AttnBlock *ab, Rng *rng, int zero_last) {
    groupnorm_init(ab->gn_gamma, ab->gn_beta, ab->C);
    conv2d_init(&ab->q, rng, 0);
    conv2d_init(&ab->k, rng, 0);
    conv2d_init(&ab->v, rng, 0);
    conv2d_init(&ab->proj, rng, zero_last);
}

size_t attention_scratch_size(const AttnBlock *ab) {
    size_t P = (size_t)ab->H * ab->W;
    size_t core = P * P;                             /* dProb, then dS (backward) */
    return max_size(core, conv2d_scratch_size(ab->C, ab->C, ab->H, ab->W, 1, 1));
}

void attention_forward(AttnBlock *ab, real *out, real *scratch, const real *x, int N) {
    int C = ab->C, H = ab->H, W = ab->W, P = H * W;
    /* a = GN(x); q, k, v = 1×1 convs of a */
    groupnorm_forward(ab->a, ab->gn_mean, ab->gn_rstd, x, ab->gn_gamma, ab->gn_beta,
                      N, C, P, ab->G);
    conv2d_forward(ab->qx, scratch, ab->a, ab->q.w, ab->q.b, N, C, C, H, W, 1, 1);
    conv2d_forward(ab->kx, scratch, ab->a, ab->k.w, ab->k.b, N, C, C, H, W, 1, 1);
    conv2d_forward(ab->vx, scratch, ab->a, ab->v.w, ab->v.b, N, C, C, H, W, 1, 1);
    real scale = (real)(1.0 / sqrt((double)C));
    for (int n = 0; n < N; n++) {
        size_t off = (size_t)n * C * P;        /* seek to q[n], k[n], v[n], o[n] */
        real *prob = ab->prob + (size_t)n * P * P;   /* seek to prob[n, :, :] */
        /* S = qᵀ k / √C, written into prob and turned into probabilities row by row */
        matmul(prob, P, ab->qx + off, P, 1, ab->kx + off, P, 0, P, P, C, 0);
        for (int i = 0; i < P; i++) {
            real *row = prob + (size_t)i * P;  /* S[i, :] → softmax_j(S[i, j]) */
            real mx = row[0] * scale;
            for (int j = 0; j < P; j++) { row[j] *= scale; if (row[j] > mx) mx = row[j]; }
            double sum = 0.0;
            for (int j = 0; j < P; j++) { row[j] = (real)exp((double)(row[j] - mx)); sum += row[j]; }
            real inv = (real)(1.0 / sum);
            for (int j = 0; j < P; j++) row[j] *= inv;
        }
        /* o (C, P) = v (C, P) · Probᵀ (P, P) */
        real *o_n = ab->o + off;
        matmul(o_n, P, ab->vx + off, P, 0, prob, P, 1, C, P, P, 0);
    }
    /* out = x + proj(o) */
    conv2d_forward(out, scratch, ab->o, ab->proj.w, ab->proj.b, N, C, C, H, W, 1, 1);
    size_t n_all = (size_t)N * C * P;
    for (size_t i = 0; i < n_all; i++) out[i] += x[i];
}

void attention_backward(AttnBlock *ab, real *dx, real *scratch, const real *dout,
                        const real *x, int N) {
    int C = ab->C, H = ab->H, W = ab->W, P = H * W;
    size_t n_all = (size_t)N * C * P;
    real scale = (real)(1.0 / sqrt((double)C));
    /* forward: out = x + proj(o) */
    for (size_t i = 0; i < n_all; i++) dx[i] += dout[i];
    real *d_o = ab->g[0], *dq = ab->g[1], *dk = ab->g[2], *dv = ab->g[3];
    memset(d_o, 0, n_all * sizeof(real));
    conv2d_backward(d_o, ab->proj.dw, ab->proj.db, scratch, dout, ab->o, ab->proj.w,
                    N, C, C, H, W, 1, 1);
    memset(dq, 0, n_all * sizeof(real));
    memset(dk, 0, n_all * sizeof(real));
    memset(dv, 0, n_all * sizeof(real));
    real *dP = scratch;                        /* (P, P): dProb, then dS in place */
    for (int n = 0; n < N; n++) {
        size_t off = (size_t)n * C * P;
        const real *prob = ab->prob + (size_t)n * P * P;
        /* forward: o = v Probᵀ, i.e. o[c, i] = Σ_j Prob[i, j] v[c, j]
         *   dv (C, P) += do (C, P) · Prob (P, P)
         *   dProb (P, P) = doᵀ (P, C) · v (C, P) */
        matmul(dv + off, P, d_o + off, P, 0, prob, P, 0, C, P, P, 1);
        matmul(dP, P, d_o + off, P, 1, ab->vx + off, P, 0, P, P, C, 0);
        /* forward: Prob[i, :] = softmax(S[i, :])
         *   dS[i, j] = Prob[i, j] (dProb[i, j] − Σ_j' Prob[i, j'] dProb[i, j']) */
        for (int i = 0; i < P; i++) {
            const real *p_i = prob + (size_t)i * P;
            real *d_i = dP + (size_t)i * P;
            double dot = 0.0;
            for (int j = 0; j < P; j++) dot += (double)p_i[j] * d_i[j];
            for (int j = 0; j < P; j++) d_i[j] = p_i[j] * (d_i[j] - (real)dot) * scale;
        }
        /* forward: S = qᵀ k / √C (the 1/√C is folded into dS above)
         *   dq (C, P) += k (C, P) · dSᵀ (P, P),   dk (C, P) += q (C, P) · dS (P, P) */
        matmul(dq + off, P, ab->kx + off, P, 0, dP, P, 1, C, P, P, 1);
        matmul(dk + off, P, ab->qx + off, P, 0, dP, P, 0, C, P, P, 1);
    }
    /* forward: q, k, v = 1×1 convs of a; the three paths add into da */
    real *da = d_o;
    memset(da, 0, n_all * sizeof(real));
    conv2d_backward(da, ab->v.dw, ab->v.db, scratch, dv, ab->a, ab->v.w, N, C, C, H, W, 1, 1);
    conv2d_backward(da, ab->k.dw, ab->k.db, scratch, dk, ab->a, ab->k.w, N, C, C, H, W, 1, 1);
    conv2d_backward(da, ab->q.dw, ab->q.db, scratch, dq, ab->a, ab->q.w, N, C, C, H, W, 1, 1);
    /* forward: a = GN(x) */
    groupnorm_backward(dx, ab->dgn_gamma, ab->dgn_beta, da, ab->gn_mean, ab->gn_rstd, x,
                       ab->gn_gamma, N, C, P, ab->G);
}

void attention_free(AttnBlock *ab) {
    free(ab->gn_mean); free(ab->gn_rstd); free(ab->a); free(ab->qx); free(ab->kx);
    free(ab->vx); free(ab->prob); free(ab->o);
    for (int i = 0; i < 4; i++) free(ab->g[i]);
    memset(ab, 0, sizeof *ab);
}

/* ========================================================================================
 * U-Net configuration. */

UnetConfig unet_default_config(int C, int H, int W) {
    UnetConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.C = C; cfg.H = H; cfg.W = W;
    cfg.base = 32;
    /* three levels (28, 14, 7 for MNIST) when H and W halve twice, else as many as fit */
    cfg.levels = 1;
    while (cfg.levels < 3 && H % (1 << cfg.levels) == 0 && W % (1 << cfg.levels) == 0)
        cfg.levels++;
    int mult[3] = {1, 2, 2};
    for (int l = 0; l < cfg.levels; l++) cfg.mult[l] = mult[l];
    cfg.num_res_blocks = 2;
    cfg.n_attn = 1;
    cfg.attn_res[0] = H >> (cfg.levels - 1);   /* the lowest resolution: 7 for 28×28 */
    cfg.mid_attn = 1;
    cfg.groups = 8;
    cfg.max_batch = 32;
    return cfg;
}

int unet_config_check(const UnetConfig *cfg, char *msg, size_t msg_len) {
#define BAD(...) do { snprintf(msg, msg_len, __VA_ARGS__); return -1; } while (0)
    if (cfg->C < 1 || cfg->H < 1 || cfg->W < 1)
        BAD("image size %d×%d×%d: channels and sides must be >= 1", cfg->C, cfg->H, cfg->W);
    if (cfg->levels < 1 || cfg->levels > UNET_MAX_LEVELS)
        BAD("levels = %d: use 1..%d", cfg->levels, UNET_MAX_LEVELS);
    int f = 1 << (cfg->levels - 1);
    if (cfg->H % f || cfg->W % f)
        BAD("H = %d, W = %d not divisible by 2^(levels-1) = %d: use fewer levels or pad "
            "the images", cfg->H, cfg->W, f);
    if (cfg->base < 2 || cfg->base % 2)
        BAD("base = %d: must be even and >= 2 (it is also the sinusoidal embedding size)",
            cfg->base);
    if (cfg->groups < 1) BAD("groups = %d: must be >= 1", cfg->groups);
    if (cfg->learned_var != 0 && cfg->learned_var != 1)
        BAD("learned_var = %d: must be 0 or 1", cfg->learned_var);
    for (int l = 0; l < cfg->levels; l++) {
        if (cfg->mult[l] < 1) BAD("mult[%d] = %d: must be >= 1", l, cfg->mult[l]);
        if ((cfg->base * cfg->mult[l]) % cfg->groups)
            BAD("channels base·mult[%d] = %d not divisible by groups = %d: change groups or "
                "base", l, cfg->base * cfg->mult[l], cfg->groups);
    }
    if (cfg->num_res_blocks < 1 || cfg->num_res_blocks > UNET_MAX_RES)
        BAD("num_res_blocks = %d: use 1..%d", cfg->num_res_blocks, UNET_MAX_RES);
    if (cfg->n_attn < 0 || cfg->n_attn > UNET_MAX_ATTN)
        BAD("n_attn = %d: use 0..%d", cfg->n_attn, UNET_MAX_ATTN);
    if (cfg->max_batch < 1) BAD("max_batch = %d: must be >= 1", cfg->max_batch);
    if (cfg->num_classes < 0) BAD("num_classes = %d: must be >= 0", cfg->num_classes);
    return 0;
#undef BAD
}

/* ========================================================================================
 * U-Net construction. This is where the architecture is spelled out (Ho et al., app. B):
 *
 *   temb = Linear(SiLU(Linear(sinusoidal(t, base)))) [+ label_emb[y]]  (N, 4·base)
 *   h = conv_in(x)                                       push h
 *   for l = 0 .. L−1:  for b < num_res_blocks:  h = Res(h) [; h = Attn(h)]   push h
 *                      if l < L−1:  h = Down(h)  (stride-2 3×3)           push h
 *   h = Res(h); [h = Attn(h);] h = Res(h)                                  middle
 *   for l = L−1 .. 0:  for b ≤ num_res_blocks:  h = Res(concat(h, pop)) [; h = Attn(h)]
 *                      if l > 0:  h = conv3×3(nearest×2(h))
 *   out = conv_out(SiLU(GN(h)))                                             (N, C, H, W)
 *
 * Every Res block also receives SiLU(temb). The skip stack is simulated here once, and
 * each block records the Act it reads, so forward and backward follow the same wiring.
 * Each layer with weights is declared by an add_ helper that also appends it to the block
 * list (unet.h); after params_alloc, one walk over the list draws the weights in that order
 * and sizes the shared scratch, and unet_free and unet_macs_per_image walk it too. */

/* transient: the gradient is one of the two shared buffers (see Act in unet.h) */
static void act_alloc(Unet *u, Act *a, int C, int H, int W, int transient) {
    if (u->n_acts == UNET_MAX_ACTS) die("unet: more than %d activations, raise UNET_MAX_ACTS",
                                        UNET_MAX_ACTS);
    size_t n = (size_t)u->cfg.max_batch * C * H * W;
    a->C = C; a->H = H; a->W = W;
    a->transient = transient;
    a->x = alloc_reals(n, "U-Net activation");
    a->dx = transient ? NULL : alloc_reals(n, "U-Net activation gradient");
    if (transient) u->dx_shared_size = max_size(u->dx_shared_size, n);
    u->acts[u->n_acts++] = a;
}

static int level_has_attn(const UnetConfig *cfg, int H) {
    for (int i = 0; i < cfg->n_attn; i++) if (cfg->attn_res[i] == H) return 1;
    return 0;
}

/* ---- the block list (unet.h): each add_ declares a layer's weights and appends its entry */

static void block_push(Unet *u, UnetBlock blk) {
    if (u->n_blocks == UNET_MAX_BLOCKS) die("unet: more than %d blocks, raise UNET_MAX_BLOCKS",
                                            UNET_MAX_BLOCKS);
    u->blocks[u->n_blocks++] = blk;
}

/* w (n_in, n_out), b (n_out) as "name.w", "name.b" */
static void add_linear(Unet *u, real **w, real **dw, real **b, real **db, const char *name,
                       int n_in, int n_out) {
    char pname[PARAM_NAME_LEN];
    name_param(pname, name, "w");
    params_add(u->params, w, dw, pname, 2, n_in, n_out);
    name_param(pname, name, "b");
    params_add(u->params, b, db, pname, 1, n_out);
    block_push(u, (UnetBlock){ .kind = UNET_LINEAR, .w = w, .b = b, .n_in = n_in,
                               .n_out = n_out });
}

/* a conv reading an H×W map */
static void add_conv(Unet *u, Conv2d *conv, const char *prefix, const char *what, int C_in,
                     int C_out, int k, int stride, int H, int W, int zero_init) {
    conv2d_declare(conv, u->params, prefix, what, C_in, C_out, k, stride);
    block_push(u, (UnetBlock){ .kind = UNET_CONV, .conv = conv, .H = H, .W = W,
                               .zero_init = zero_init });
}

static void add_groupnorm(Unet *u, real **gamma, real **dgamma, real **beta, real **dbeta,
                          const char *prefix, const char *what, int C) {
    groupnorm_declare(gamma, dgamma, beta, dbeta, u->params, prefix, what, C);
    block_push(u, (UnetBlock){ .kind = UNET_GROUPNORM, .w = gamma, .b = beta, .n_out = C });
}

/* a residual block at the resolution H×W; its conv2 starts at zero */
static void add_res(Unet *u, ResBlock *rb, const char *name, int C_in, int C_out, int H, int W) {
    resblock_create(rb, u->params, name, C_in, C_out, u->T_emb, u->cfg.groups, H, W,
                    u->cfg.max_batch);
    block_push(u, (UnetBlock){ .kind = UNET_RES, .res = rb, .zero_init = 1 });
}

/* an attention block at H×W; its proj starts at zero */
static void add_attn(Unet *u, AttnBlock *ab, const char *name, int C, int H, int W) {
    attention_create(ab, u->params, name, C, u->cfg.groups, H, W, u->cfg.max_batch);
    block_push(u, (UnetBlock){ .kind = UNET_ATTN, .attn = ab, .zero_init = 1 });
}

/* a table (rows, n_out) as "name" */
static void add_embedding(Unet *u, real **w, real **dw, const char *name, int rows, int n_out) {
    params_add(u->params, w, dw, name, 2, rows, n_out);
    block_push(u, (UnetBlock){ .kind = UNET_EMBEDDING, .w = w, .n_in = rows, .n_out = n_out });
}

/* ---- walks over the block list */

/* the weights of one block, drawn from rng */
static void block_init(const UnetBlock *blk, Rng *rng) {
    switch (blk->kind) {
    case UNET_LINEAR:      /* PyTorch's default U(±1/√fan_in), fan_in = n_in */
        init_uniform(*blk->w, (size_t)blk->n_in * blk->n_out, blk->n_in, rng);
        init_uniform(*blk->b, (size_t)blk->n_out, blk->n_in, rng);
        break;
    case UNET_CONV: conv2d_init(blk->conv, rng, blk->zero_init); break;
    case UNET_GROUPNORM: groupnorm_init(*blk->w, *blk->b, blk->n_out); break;
    case UNET_RES: resblock_init_weights(blk->res, rng, blk->zero_init); break;
    case UNET_ATTN: attention_init_weights(blk->attn, rng, blk->zero_init); break;
    case UNET_EMBEDDING:   /* N(0, 1), as the common embedding layers start */
        for (size_t i = 0; i < (size_t)blk->n_in * blk->n_out; i++)
            (*blk->w)[i] = (real)rng_normal(rng);
        break;
    }
}

/* reals of the shared scratch that the block's forward and backward use */
static size_t block_scratch_size(const UnetBlock *blk) {
    const Conv2d *c = blk->conv;
    switch (blk->kind) {
    case UNET_CONV:
        return conv2d_scratch_size(c->C_in, c->C_out, blk->H, blk->W, c->k, c->stride);
    case UNET_RES: return resblock_scratch_size(blk->res);
    case UNET_ATTN: return attention_scratch_size(blk->attn);
    case UNET_LINEAR: case UNET_GROUPNORM: case UNET_EMBEDDING: return 0;
    }
    return 0;
}

/* what a block allocated beside its weights: its caches */
static void block_free(const UnetBlock *blk) {
    if (blk->kind == UNET_RES) resblock_free(blk->res);
    if (blk->kind == UNET_ATTN) attention_free(blk->attn);
}


int unet_init(Unet *u, const UnetConfig *cfg, ParamSet *ps, Rng *rng) {
    char msg[256], name[PARAM_NAME_LEN];
    if (unet_config_check(cfg, msg, sizeof msg)) {
        fprintf(stderr, "error: unet config: %s\n", msg);
        return -1;
    }
    memset(u, 0, sizeof *u);
    u->cfg = *cfg;
    u->params = ps;
    int L = cfg->levels, R = cfg->num_res_blocks, G = cfg->groups, NB = cfg->max_batch;
    int base = cfg->base, T_emb = 4 * base;
    u->T_emb = T_emb;

    /* timestep embedding: sinusoidal(t, base) → Linear(base, 4·base) → SiLU → Linear */
    add_linear(u, &u->temb1_w, &u->dtemb1_w, &u->temb1_b, &u->dtemb1_b, "temb.fc1", base, T_emb);
    add_linear(u, &u->temb2_w, &u->dtemb2_w, &u->temb2_b, &u->dtemb2_b, "temb.fc2", T_emb, T_emb);
    u->x_in = alloc_reals((size_t)NB * cfg->C * cfg->H * cfg->W, "copy of the input x");
    u->t_real = alloc_reals((size_t)NB, "t");
    u->y = xmalloc((size_t)NB * sizeof(int), "U-Net labels");
    u->temb0 = alloc_reals((size_t)NB * base, "temb0");
    size_t ne = (size_t)NB * T_emb;
    u->temb1 = alloc_reals(ne, "temb1");           u->dtemb1 = alloc_reals(ne, "dtemb1");
    u->temb1_act = alloc_reals(ne, "temb1_act");   u->dtemb1_act = alloc_reals(ne, "dtemb1_act");
    u->temb = alloc_reals(ne, "temb");             u->dtemb = alloc_reals(ne, "dtemb");
    u->temb_act = alloc_reals(ne, "temb_act");     u->dtemb_act = alloc_reals(ne, "dtemb_act");

    /* conv_in, and the skip stack that the down path fills and the up path empties */
    Act *stack[1 + UNET_MAX_LEVELS * (UNET_MAX_RES + 1)];
    int top = 0;
    add_conv(u, &u->conv_in, "in", "conv", cfg->C, base, 3, 1, cfg->H, cfg->W, 0);
    act_alloc(u, &u->h_in, base, cfg->H, cfg->W, 0);
    Act *h = &u->h_in;
    stack[top++] = h;

    /* down path */
    for (int l = 0; l < L; l++) {
        UnetLevel *lv = &u->level[l];
        lv->C = base * cfg->mult[l];
        lv->H = cfg->H >> l;
        lv->W = cfg->W >> l;
        lv->has_attn = level_has_attn(cfg, lv->H);
        for (int b = 0; b < R; b++) {
            snprintf(name, sizeof name, "down%d.res%d", l, b);
            add_res(u, &lv->down_res[b], name, h->C, lv->C, lv->H, lv->W);
            lv->down_in[b] = h;
            act_alloc(u, &lv->down_res_out[b], lv->C, lv->H, lv->W, 0);
            h = &lv->down_res_out[b];
            if (lv->has_attn) {
                snprintf(name, sizeof name, "down%d.attn%d", l, b);
                add_attn(u, &lv->down_attn[b], name, lv->C, lv->H, lv->W);
                act_alloc(u, &lv->down_attn_out[b], lv->C, lv->H, lv->W, 0);
                h = &lv->down_attn_out[b];
            }
            stack[top++] = h;
        }
        if (l < L - 1) {
            snprintf(name, sizeof name, "down%d", l);
            add_conv(u, &lv->down, name, "down", lv->C, lv->C, 3, 2, lv->H, lv->W, 0);
            act_alloc(u, &lv->down_out, lv->C, lv->H / 2, lv->W / 2, 0);
            h = &lv->down_out;
            stack[top++] = h;
        }
    }

    /* middle */
    add_res(u, &u->mid1, "mid.res1", h->C, h->C, h->H, h->W);
    act_alloc(u, &u->mid1_out, h->C, h->H, h->W, 1);
    if (cfg->mid_attn) {
        add_attn(u, &u->mid_attn, "mid.attn", h->C, h->H, h->W);
        act_alloc(u, &u->mid_attn_out, h->C, h->H, h->W, 1);
    }
    add_res(u, &u->mid2, "mid.res2", h->C, h->C, h->H, h->W);
    act_alloc(u, &u->mid2_out, h->C, h->H, h->W, 1);
    h = &u->mid2_out;

    /* up path */
    for (int l = L - 1; l >= 0; l--) {
        UnetLevel *lv = &u->level[l];
        for (int b = 0; b <= R; b++) {
            Act *skip = stack[--top];
            lv->up_in[b] = h;
            lv->up_skip[b] = skip;
            act_alloc(u, &lv->up_cat[b], h->C + skip->C, lv->H, lv->W, 1);
            snprintf(name, sizeof name, "up%d.res%d", l, b);
            add_res(u, &lv->up_res[b], name, h->C + skip->C, lv->C, lv->H, lv->W);
            act_alloc(u, &lv->up_res_out[b], lv->C, lv->H, lv->W, 1);
            h = &lv->up_res_out[b];
            if (lv->has_attn) {
                snprintf(name, sizeof name, "up%d.attn%d", l, b);
                add_attn(u, &lv->up_attn[b], name, lv->C, lv->H, lv->W);
                act_alloc(u, &lv->up_attn_out[b], lv->C, lv->H, lv->W, 1);
                h = &lv->up_attn_out[b];
            }
        }
        if (l > 0) {
            act_alloc(u, &lv->up_near, lv->C, 2 * lv->H, 2 * lv->W, 1);
            snprintf(name, sizeof name, "up%d", l);
            add_conv(u, &lv->up, name, "up", lv->C, lv->C, 3, 1, 2 * lv->H, 2 * lv->W, 0);
            act_alloc(u, &lv->up_out, lv->C, 2 * lv->H, 2 * lv->W, 1);
            h = &lv->up_out;
        }
    }
    if (top != 0) die("unet: internal error, %d skips left on the stack", top);

    /* out: GN → SiLU → conv3×3 (base → C), the conv zero: the untrained net predicts 0 */
    add_groupnorm(u, &u->out_gn_gamma, &u->dout_gn_gamma, &u->out_gn_beta, &u->dout_gn_beta,
                  "out", "gn", base);
    u->out_gn_mean = alloc_reals((size_t)NB * G, "out gn mean");
    u->out_gn_rstd = alloc_reals((size_t)NB * G, "out gn rstd");
    act_alloc(u, &u->out_a, base, cfg->H, cfg->W, 1);
    act_alloc(u, &u->out_s, base, cfg->H, cfg->W, 1);
    add_conv(u, &u->conv_out, "out", "conv", base, cfg->C * (1 + cfg->learned_var), 3, 1,
             cfg->H, cfg->W, 1);
    /* the label embedding, one row per class and ∅ (declared last: K = 0 is unchanged) */
    int K = cfg->num_classes;
    if (K > 0) add_embedding(u, &u->label_emb, &u->dlabel_emb, "label_emb", K + 1, T_emb);

    /* every tensor is declared: place them, then walk the list to initialize them in the
     * same order and to size the scratch that every block shares */
    params_alloc(ps);
    size_t scratch = 0;
    for (int i = 0; i < u->n_blocks; i++) {
        block_init(&u->blocks[i], rng);
        scratch = max_size(scratch, block_scratch_size(&u->blocks[i]));
    }
    u->scratch_size = scratch;
    u->scratch = alloc_reals(scratch, "U-Net scratch (im2col, attention)");
    for (int i = 0; i < 2; i++)
        u->dx_shared[i] = alloc_reals(u->dx_shared_size, "U-Net transient gradients");
    return 0;
}

void unet_free(Unet *u) {
    for (int i = 0; i < u->n_blocks; i++) block_free(&u->blocks[i]);
    for (int i = 0; i < u->n_acts; i++) {
        free(u->acts[i]->x);
        if (!u->acts[i]->transient) free(u->acts[i]->dx);
    }
    free(u->dx_shared[0]); free(u->dx_shared[1]);
    free(u->x_in); free(u->t_real); free(u->y); free(u->temb0);
    free(u->temb1); free(u->dtemb1); free(u->temb1_act); free(u->dtemb1_act);
    free(u->temb); free(u->dtemb); free(u->temb_act); free(u->dtemb_act);
    free(u->out_gn_mean); free(u->out_gn_rstd);
    free(u->scratch);
    memset(u, 0, sizeof *u);
}

/* ========================================================================================
 * U-Net forward. */

/* The gradient of a transient Act (unet.h), about to be written by the backward step that
 * follows: the other shared buffer than the one handed out last, zeroed. The one handed
 * out last holds the gradient this step reads; the one taken here held the gradient the
 * step before read, which nothing needs any more. Every transient gradient is read only
 * by the step right after the one that writes it, so two buffers are enough. */
static real *fresh_dx(Unet *u, Act *a, int N) {
    if (!a->transient) die("unet: internal error, fresh_dx of an Act with its own gradient");
    u->dx_turn = 1 - u->dx_turn;
    a->dx = u->dx_shared[u->dx_turn];
    memset(a->dx, 0, (size_t)N * a->C * a->H * a->W * sizeof(real));
    return a->dx;
}

static void check_batch(const Unet *u, int N, const char *where) {
    if (N < 1 || N > u->cfg.max_batch)
        die("%s: batch N = %d outside 1..%d (max_batch of the config: raise it, or split "
            "the batch)", where, N, u->cfg.max_batch);
}

void unet_forward(Unet *u, real *out, const real *x, const int *t, const int *y, int N) {
    const UnetConfig *cfg = &u->cfg;
    int L = cfg->levels, R = cfg->num_res_blocks, G = cfg->groups, base = cfg->base;
    int T_emb = u->T_emb;
    size_t ne = (size_t)N * T_emb;
    real *scratch = u->scratch;
    check_batch(u, N, "unet_forward");
    if (y && cfg->num_classes == 0) die("unet_forward: labels given to an unconditional U-Net");
    u->last_N = N;

    /* 1. timestep embedding: temb_act = SiLU(Linear(SiLU(Linear(sinusoidal(t))))) */
    for (int n = 0; n < N; n++) u->t_real[n] = (real)t[n];
    timestep_embedding_forward(u->temb0, u->t_real, N, base);
    linear_forward(u->temb1, u->temb0, u->temb1_w, u->temb1_b, N, base, T_emb);
    silu_forward(u->temb1_act, u->temb1, ne);
    linear_forward(u->temb, u->temb1_act, u->temb2_w, u->temb2_b, N, T_emb, T_emb);
    if (cfg->num_classes > 0) {   /* temb += label_emb[y]; the labels kept for the backward */
        for (int n = 0; n < N; n++) u->y[n] = y ? y[n] : cfg->num_classes;
        label_embedding_forward(u->temb, u->label_emb, u->y, cfg->num_classes, N, T_emb);
    }
    silu_forward(u->temb_act, u->temb, ne);   /* the SiLU of each block's Linear(SiLU(temb)) */

    /* 2. conv_in (x is copied: its backward needs it for dw) */
    memcpy(u->x_in, x, (size_t)N * cfg->C * cfg->H * cfg->W * sizeof(real));
    conv2d_forward(u->h_in.x, scratch, u->x_in, u->conv_in.w, u->conv_in.b,
                   N, cfg->C, base, cfg->H, cfg->W, 3, 1);

    /* 3. down path */
    for (int l = 0; l < L; l++) {
        UnetLevel *lv = &u->level[l];
        for (int b = 0; b < R; b++) {
            resblock_forward(&lv->down_res[b], lv->down_res_out[b].x, scratch,
                             lv->down_in[b]->x, u->temb_act, N);
            if (lv->has_attn)
                attention_forward(&lv->down_attn[b], lv->down_attn_out[b].x, scratch,
                                  lv->down_res_out[b].x, N);
        }
        if (l < L - 1) {
            const Act *h = lv->has_attn ? &lv->down_attn_out[R - 1] : &lv->down_res_out[R - 1];
            conv2d_forward(lv->down_out.x, scratch, h->x, lv->down.w, lv->down.b,
                           N, lv->C, lv->C, lv->H, lv->W, 3, 2);
        }
    }

    /* 4. middle: Res, Attn, Res at the lowest resolution */
    UnetLevel *lo = &u->level[L - 1];
    const Act *h = lo->has_attn ? &lo->down_attn_out[R - 1] : &lo->down_res_out[R - 1];
    resblock_forward(&u->mid1, u->mid1_out.x, scratch, h->x, u->temb_act, N);
    h = &u->mid1_out;
    if (cfg->mid_attn) {
        attention_forward(&u->mid_attn, u->mid_attn_out.x, scratch, h->x, N);
        h = &u->mid_attn_out;
    }
    resblock_forward(&u->mid2, u->mid2_out.x, scratch, h->x, u->temb_act, N);

    /* 5. up path: each block reads concat(h, skip) */
    for (int l = L - 1; l >= 0; l--) {
        UnetLevel *lv = &u->level[l];
        int HW = lv->H * lv->W;
        for (int b = 0; b <= R; b++) {
            const Act *in = lv->up_in[b], *skip = lv->up_skip[b];
            concat_forward(lv->up_cat[b].x, in->x, skip->x, N, in->C, skip->C, HW);
            resblock_forward(&lv->up_res[b], lv->up_res_out[b].x, scratch, lv->up_cat[b].x,
                             u->temb_act, N);
            if (lv->has_attn)
                attention_forward(&lv->up_attn[b], lv->up_attn_out[b].x, scratch,
                                  lv->up_res_out[b].x, N);
        }
        if (l > 0) {
            const Act *hl = lv->has_attn ? &lv->up_attn_out[R] : &lv->up_res_out[R];
            upsample_forward(lv->up_near.x, hl->x, N, lv->C, lv->H, lv->W);
            conv2d_forward(lv->up_out.x, scratch, lv->up_near.x, lv->up.w, lv->up.b,
                           N, lv->C, lv->C, 2 * lv->H, 2 * lv->W, 3, 1);
        }
    }

    /* 6. out = conv_out(SiLU(GN(h))) */
    UnetLevel *top = &u->level[0];
    h = top->has_attn ? &top->up_attn_out[R] : &top->up_res_out[R];
    int HW = cfg->H * cfg->W;
    groupnorm_forward(u->out_a.x, u->out_gn_mean, u->out_gn_rstd, h->x, u->out_gn_gamma,
                      u->out_gn_beta, N, base, HW, G);
    silu_forward(u->out_s.x, u->out_a.x, (size_t)N * base * HW);
    conv2d_forward(out, scratch, u->out_s.x, u->conv_out.w, u->conv_out.b,
                   N, base, u->conv_out.C_out, cfg->H, cfg->W, 3, 1);   /* C or 2 C */
}

/* ========================================================================================
 * U-Net backward: the forward's calls in exact reverse order. Every Act's gradient dx is
 * zeroed first, because a skip's gradient is the sum of two paths (its next block and
 * the up-path concat) and every layer backward adds. */

void unet_backward(Unet *u, real *dx, const real *dout, int N) {
    const UnetConfig *cfg = &u->cfg;
    int L = cfg->levels, R = cfg->num_res_blocks, G = cfg->groups, base = cfg->base;
    int T_emb = u->T_emb;
    size_t ne = (size_t)N * T_emb;
    real *scratch = u->scratch;
    check_batch(u, N, "unet_backward");
    if (N != u->last_N)
        die("unet_backward: N = %d but the last forward had N = %d (call forward first)",
            N, u->last_N);
    for (int i = 0; i < u->n_acts; i++) {        /* the transient ones: by fresh_dx */
        Act *a = u->acts[i];
        if (!a->transient) memset(a->dx, 0, (size_t)N * a->C * a->H * a->W * sizeof(real));
    }
    memset(u->dtemb_act, 0, ne * sizeof(real));
    memset(u->dtemb, 0, ne * sizeof(real));
    memset(u->dtemb1_act, 0, ne * sizeof(real));
    memset(u->dtemb1, 0, ne * sizeof(real));

    /* 6. forward: out = conv_out(s), s = SiLU(a), a = GN(h) */
    UnetLevel *top = &u->level[0];
    Act *h = top->has_attn ? &top->up_attn_out[R] : &top->up_res_out[R];
    int HW = cfg->H * cfg->W;
    conv2d_backward(fresh_dx(u, &u->out_s, N), u->conv_out.dw, u->conv_out.db, scratch, dout,
                    u->out_s.x, u->conv_out.w, N, base, u->conv_out.C_out, cfg->H, cfg->W, 3, 1);
    silu_backward(fresh_dx(u, &u->out_a, N), u->out_s.dx, u->out_a.x, (size_t)N * base * HW);
    groupnorm_backward(fresh_dx(u, h, N), u->dout_gn_gamma, u->dout_gn_beta, u->out_a.dx,
                       u->out_gn_mean, u->out_gn_rstd, h->x, u->out_gn_gamma, N, base, HW, G);

    /* 5. up path, levels 0 .. L−1 and blocks R .. 0 */
    for (int l = 0; l < L; l++) {
        UnetLevel *lv = &u->level[l];
        int HWl = lv->H * lv->W;
        if (l > 0) {
            Act *hl = lv->has_attn ? &lv->up_attn_out[R] : &lv->up_res_out[R];
            conv2d_backward(fresh_dx(u, &lv->up_near, N), lv->up.dw, lv->up.db, scratch,
                            lv->up_out.dx, lv->up_near.x, lv->up.w, N, lv->C, lv->C, 2 * lv->H,
                            2 * lv->W, 3, 1);
            upsample_backward(fresh_dx(u, hl, N), lv->up_near.dx, N, lv->C, lv->H, lv->W);
        }
        for (int b = R; b >= 0; b--) {
            if (lv->has_attn)
                attention_backward(&lv->up_attn[b], fresh_dx(u, &lv->up_res_out[b], N),
                                   scratch, lv->up_attn_out[b].dx, lv->up_res_out[b].x, N);
            resblock_backward(&lv->up_res[b], fresh_dx(u, &lv->up_cat[b], N), u->dtemb_act,
                              scratch, lv->up_res_out[b].dx, lv->up_cat[b].x, u->temb_act, N);
            Act *in = lv->up_in[b], *skip = lv->up_skip[b];
            concat_backward(fresh_dx(u, in, N), skip->dx, lv->up_cat[b].dx, N, in->C, skip->C,
                            HWl);
        }
    }

    /* 4. middle, reversed: Res2, Attn, Res1 */
    UnetLevel *lo = &u->level[L - 1];
    Act *hm = cfg->mid_attn ? &u->mid_attn_out : &u->mid1_out;
    resblock_backward(&u->mid2, fresh_dx(u, hm, N), u->dtemb_act, scratch, u->mid2_out.dx,
                      hm->x, u->temb_act, N);
    if (cfg->mid_attn)
        attention_backward(&u->mid_attn, fresh_dx(u, &u->mid1_out, N), scratch,
                           u->mid_attn_out.dx, u->mid1_out.x, N);
    Act *hd = lo->has_attn ? &lo->down_attn_out[R - 1] : &lo->down_res_out[R - 1];
    resblock_backward(&u->mid1, hd->dx, u->dtemb_act, scratch, u->mid1_out.dx, hd->x,
                      u->temb_act, N);

    /* 3. down path, levels L−1 .. 0 and blocks R−1 .. 0 */
    for (int l = L - 1; l >= 0; l--) {
        UnetLevel *lv = &u->level[l];
        if (l < L - 1) {
            Act *hl = lv->has_attn ? &lv->down_attn_out[R - 1] : &lv->down_res_out[R - 1];
            conv2d_backward(hl->dx, lv->down.dw, lv->down.db, scratch, lv->down_out.dx, hl->x,
                            lv->down.w, N, lv->C, lv->C, lv->H, lv->W, 3, 2);
        }
        for (int b = R - 1; b >= 0; b--) {
            if (lv->has_attn)
                attention_backward(&lv->down_attn[b], lv->down_res_out[b].dx, scratch,
                                   lv->down_attn_out[b].dx, lv->down_res_out[b].x, N);
            Act *in = lv->down_in[b];
            resblock_backward(&lv->down_res[b], in->dx, u->dtemb_act, scratch,
                              lv->down_res_out[b].dx, in->x, u->temb_act, N);
        }
    }

    /* 2. forward: h_in = conv_in(x) */
    if (dx) memset(dx, 0, (size_t)N * cfg->C * HW * sizeof(real));
    conv2d_backward(dx, u->conv_in.dw, u->conv_in.db, scratch, u->h_in.dx, u->x_in, u->conv_in.w,
                    N, cfg->C, base, cfg->H, cfg->W, 3, 1);

    /* 1. timestep embedding, reversed (t itself is an integer: no gradient) */
    silu_backward(u->dtemb, u->dtemb_act, u->temb, ne);
    if (cfg->num_classes > 0)     /* forward: temb += label_emb[y] */
        label_embedding_backward(u->dlabel_emb, u->dtemb, u->y, cfg->num_classes, N, T_emb);
    linear_backward(u->dtemb1_act, u->dtemb2_w, u->dtemb2_b, u->dtemb, u->temb1_act, u->temb2_w,
                    N, T_emb, T_emb);
    silu_backward(u->dtemb1, u->dtemb1_act, u->temb1, ne);
    linear_backward(NULL, u->dtemb1_w, u->dtemb1_b, u->dtemb1, u->temb0, u->temb1_w,
                    N, base, T_emb);
}

/* ========================================================================================
 * The Denoiser glue (ddpm.h), sizes and a summary. */

static void unet_forward_fn(void *self, real *out, const real *x, const int *t, const int *y,
                            int N) {
    unet_forward((Unet *)self, out, x, t, y, N);
}

static void unet_backward_fn(void *self, real *dx, const real *dout, int N) {
    unet_backward((Unet *)self, dx, dout, N);
}

Denoiser unet_denoiser(Unet *u) {
    return (Denoiser){ .self = u, .D = u->cfg.C * u->cfg.H * u->cfg.W,
                       .max_batch = u->cfg.max_batch, .params = u->params,
                       .learned_var = u->cfg.learned_var,
                       .forward = unet_forward_fn, .backward = unet_backward_fn };
}

long unet_param_count(const Unet *u) { return (long)u->params->total; }

/* multiply-adds of a conv per image: every output number sums C_in·k·k products */
static double conv_macs(const Conv2d *conv, int H, int W) {
    double P = (double)conv2d_out_size(H, conv->k, conv->stride) *
               conv2d_out_size(W, conv->k, conv->stride);
    return P * conv->C_out * conv->C_in * conv->k * conv->k;
}

static double resblock_macs(const ResBlock *rb) {
    double m = conv_macs(&rb->conv1, rb->H, rb->W) + conv_macs(&rb->conv2, rb->H, rb->W);
    m += (double)rb->T_emb * rb->C_out;
    if (rb->has_skip) m += conv_macs(&rb->skip, rb->H, rb->W);
    return m;
}

static double attention_macs(const AttnBlock *ab) {
    double P = (double)ab->H * ab->W;
    return 4 * conv_macs(&ab->q, ab->H, ab->W) + 2 * P * P * ab->C;  /* q k v proj; S, o */
}

/* multiply-adds of a block per image */
static double block_macs(const UnetBlock *blk) {
    switch (blk->kind) {
    case UNET_LINEAR: return (double)blk->n_in * blk->n_out;
    case UNET_CONV: return conv_macs(blk->conv, blk->H, blk->W);
    case UNET_RES: return resblock_macs(blk->res);
    case UNET_ATTN: return attention_macs(blk->attn);
    case UNET_GROUPNORM: case UNET_EMBEDDING: return 0;   /* no products (a lookup) */
    }
    return 0;
}

double unet_macs_per_image(const Unet *u) {
    double m = 0;
    for (int i = 0; i < u->n_blocks; i++) m += block_macs(&u->blocks[i]);
    return m;
}

void unet_print_summary(FILE *f, const Unet *u) {
    const UnetConfig *cfg = &u->cfg;
    fprintf(f, "U-Net for %d×%d×%d images (real = %s)\n", cfg->C, cfg->H, cfg->W, REAL_NAME);
    fprintf(f, "  base %d, mult (", cfg->base);
    for (int l = 0; l < cfg->levels; l++) fprintf(f, "%s%d", l ? ", " : "", cfg->mult[l]);
    fprintf(f, "), %d residual block%s per level, groups %d, ", cfg->num_res_blocks,
            cfg->num_res_blocks == 1 ? "" : "s", cfg->groups);
    if (cfg->n_attn == 0 && !cfg->mid_attn) fprintf(f, "no attention");
    else fprintf(f, "attention at");
    for (int i = 0; i < cfg->n_attn; i++) fprintf(f, "%s %d", i ? "," : "", cfg->attn_res[i]);
    if (cfg->mid_attn) fprintf(f, "%s", cfg->n_attn ? " and in the middle" : " the middle");
    fprintf(f, "\n");
    fprintf(f, "  timestep embedding: sinusoidal(%d) → Linear(%d, %d) → SiLU → Linear(%d, %d)\n",
            cfg->base, cfg->base, u->T_emb, u->T_emb, u->T_emb);
    for (int l = 0; l < cfg->levels; l++) {
        const UnetLevel *lv = &u->level[l];
        fprintf(f, "  level %d: %3d channels at %d×%d%s\n", l, lv->C, lv->H, lv->W,
                lv->has_attn ? ", attention" : "");
    }
    size_t act = 0, grad = 2 * u->dx_shared_size;   /* reals; the two shared buffers */
    for (int i = 0; i < u->n_acts; i++) {
        size_t n = (size_t)cfg->max_batch * u->acts[i]->C * u->acts[i]->H * u->acts[i]->W;
        act += n;
        if (!u->acts[i]->transient) grad += n;
    }
    fprintf(f, "  parameters: %ld in %d tensors\n", unet_param_count(u), u->params->count);
    fprintf(f, "  forward: %.1f M multiply-adds per image\n", unet_macs_per_image(u) / 1e6);
    fprintf(f, "  max batch %d; block outputs %.1f MB, their gradients %.1f MB, + caches\n",
            cfg->max_batch, (double)act * sizeof(real) / 1e6, (double)grad * sizeof(real) / 1e6);
}
