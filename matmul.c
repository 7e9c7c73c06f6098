/* matmul.c: C += op(A) · op(B), the only heavy loop of the project (see matmul.h).
 *
 * The plain loop is three lines:
 *
 *     for i < M:  for j < N:  for k < K:  C(i, j) = fma(A(i, k), B(k, j), C(i, j))
 *
 * and this file computes exactly that, every C(i, j) summed over k = 0, 1, …, K−1 in that
 * order, so the result is bit for bit the plain loop's. What changes is where the numbers
 * are when they are needed. A core does two 8-wide fused multiply-adds per cycle, but
 * only if both operands are in registers or the fastest cache; the plain loop instead
 * fetches A(i, k) and B(k, j) from memory for each single multiply-add.
 *
 * 1. The register tile. A tile of MR × NR numbers of C (5 × 32 here) is kept in
 *    registers, as the local array acc, while k runs over its whole range. Each step k
 *    reads one column of A's rows (MR numbers) and one row of B's columns (NR numbers)
 *    and does MR · NR multiply-adds, the outer product of the two:
 *
 *                      B panel: NR columns, k down
 *                      k=0  b b b b b b b b … b
 *                      k=1  b b b b b b b b … b      acc(i, j) += a(i, k) · b(k, j)
 *                      …                             for the MR × NR tile at once;
 *       A, in place    +----------------------+      j is the inner loop: NR numbers in
 *       a a … a  i=0   | acc acc acc … acc    |      a row of acc, contiguous, so one
 *       a a … a  i=1   | acc acc acc … acc    |      vector instruction does 8 (or 16)
 *       …              | …                    |      of them
 *       a a … a  i=MR-1| acc acc acc … acc    |
 *       k=0 1 …        +----------------------+
 *
 *    Per step that is MR + NR = 37 loads for 160 multiply-adds. The size is chosen so that
 *    the accumulators (5 × 32 floats = 20 vectors of 8, or 10 of 16) fit in the vector
 *    registers, and so that gcc and clang both really keep acc in registers: other sizes
 *    (8 × 16, 6 × 16 …) made one of the two compilers spill acc to memory at every step,
 *    which runs ten times slower (check: `objdump -d build/float/matmul.o | grep vfmadd`
 *    shows one fused multiply-add per vector of acc, with register operands). The tile
 *    loads its MR × NR numbers of C before the loop over k and stores them after it, as
 *    whole vectors; a tile at the bottom or right edge of C, which has fewer rows or
 *    columns, runs on a full-size copy of its part of C instead.
 *
 * 2. A is read where it lies, B is packed. The tile needs, at each k, MR single numbers
 *    of A (each broadcast to a whole vector: any address will do) and NR numbers of B side
 *    by side (one contiguous run, to be read as vectors). So A is read in place, whatever
 *    its layout, through two strides: A(i, k) = a[i · a_is + k · a_ks] (only a tile at
 *    the bottom edge, with fewer than MR rows, copies its rows). B is copied ("packed") into the order the tile reads it, in
 *    micro-panels of NR columns, k-major (b(k, 0) b(k, 1) … b(k, NR−1), then k+1), with
 *    zeros right of N. Packed B is read by every row of A, so its copy costs 1/M of the
 *    product; when B is transposed (Bᵀ given, the backward passes) the copy is a
 *    transpose, done row of b by row of b.
 *
 * 3. Cache blocks. B is packed KC = 256 values of k at a time and NC = 512 columns at a
 *    time (512 KB of floats, in the second-level cache), and every micro-panel of A's rows
 *    passes over it:
 *
 *        for each NC-column group of C
 *          for each KC-slice of k, in increasing order     (C's tile is reloaded, so the
 *            pack B(slice, group)                            order over k is unchanged)
 *            for each MR-row micro-panel of A, for each NR-column micro-panel of B
 *              the register tile: C tile += A panel · B panel over the slice
 *
 *    The A panel (MR × KC, 5 KB) stays in the first-level cache while it meets every B
 *    panel of the group.
 *
 * Threads (make OMP=1) split C into bands of columns (or of rows, when C is narrow), and
 * each band is computed as above by one thread: every number of C is still the same chain
 * of multiply-adds, so any number of threads gives the same bits. Called from inside a
 * parallel region (conv2d gives each thread its own images or rows), matmul runs on the
 * calling thread alone.
 */
#include "matmul.h"

#include <stddef.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { MR = MATMUL_MR, NR = MATMUL_NR, KC = MATMUL_KC, NC = MATMUL_NC };
enum { NARROW_MAX = 8192 };   /* reals of the transposed copy of a narrow C (32 KB) */

static int round_up(int n, int multiple) { return (n + multiple - 1) / multiple * multiple; }

/* The register tile on a full MR × NR block of C (rows ldc apart):
 * C += A(MR rows, kc) · B(kc, NR), with A(i, k) = a[i · a_is + k · a_ks] and B packed
 * k-major (b[k·NR + j] = B(k, j)). Starts from C, or from 0 if !load. */
static void tile(real *c, int ldc, const real *a, ptrdiff_t a_is, ptrdiff_t a_ks,
                 const real *b, int kc, int load) {
    real acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = load ? c[(size_t)i * ldc + j] : 0;
    for (int k = 0; k < kc; k++) {
        const real *a_k = a + k * a_ks, *b_k = b + (size_t)k * NR;
        for (int i = 0; i < MR; i++) {
            real a_ik = a_k[i * a_is];
            for (int j = 0; j < NR; j++) acc[i][j] = real_fma(a_ik, b_k[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[(size_t)i * ldc + j] = acc[i][j];
}

/* A tile at the edge of C (rows ≤ MR, cols ≤ NR): the same tile on full-size copies, of
 * its part of C and (if rows < MR) of its rows of A, k-major with zero rows below */
static void edge_tile(real *c, int ldc, const real *a, ptrdiff_t a_is, ptrdiff_t a_ks,
                      const real *b, int kc, int load, int rows, int cols) {
    real part_c[MR * NR] = { 0 }, part_a[MR * KC];
    if (load)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) part_c[i * NR + j] = c[(size_t)i * ldc + j];
    if (rows < MR) {
        for (int k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++) part_a[k * MR + i] = i < rows ? a[i * a_is + k * a_ks] : 0;
        a = part_a, a_is = 1, a_ks = MR;
    }
    tile(part_c, NR, a, a_is, a_ks, b, kc, 1);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) c[(size_t)i * ldc + j] = part_c[i * NR + j];
}

/* pb = B(k0 … k0+kc−1, j0 … j0+nc−1) in micro-panels of NR columns, k-major, zero columns
 * right of N */
static void pack_b(real *pb, const real *b, int ldb, int b_trans, int k0, int kc, int j0,
                   int nc) {
    for (int jp = 0; jp < nc; jp += NR) {
        real *panel = pb + (size_t)jp * kc;                  /* seek to micro-panel jp/NR */
        int cols = nc - jp < NR ? nc - jp : NR;
        if (b_trans)                /* B(k, j) = b[j·ldb + k]: read each row of b along k */
            for (int j = 0; j < cols; j++) {
                const real *b_j = b + (size_t)(j0 + jp + j) * ldb + k0;
                for (int k = 0; k < kc; k++) panel[(size_t)k * NR + j] = b_j[k];
            }
        else if (cols == NR)        /* a full panel: NR numbers per k, a fixed-size copy */
            for (int k = 0; k < kc; k++) {
                const real *b_k = b + (size_t)(k0 + k) * ldb + j0 + jp;
                real *p_k = panel + (size_t)k * NR;
                for (int j = 0; j < NR; j++) p_k[j] = b_k[j];
            }
        else
            for (int k = 0; k < kc; k++) {
                const real *b_k = b + (size_t)(k0 + k) * ldb + j0 + jp;
                for (int j = 0; j < cols; j++) panel[(size_t)k * NR + j] = b_k[j];
            }
        if (cols < NR)
            for (int k = 0; k < kc; k++)
                for (int j = cols; j < NR; j++) panel[(size_t)k * NR + j] = 0;
    }
}

/* The part of C in rows i_lo … i_hi−1 and columns j_lo … j_hi−1, all of k: for each
 * NC-wide group of columns and each KC-slice of k (in increasing order), B's slice is
 * packed once, then every MR-row panel of A passes over it, tile by tile. */
static void part(real *c, int ldc, const real *a, int lda, int a_trans, const real *b,
                 int ldb, int b_trans, int i_lo, int i_hi, int j_lo, int j_hi, int K,
                 int accumulate) {
    real pb[KC * NC];                            /* packed B: 512 KB of floats */
    /* A(i, k) = a[i · a_is + k · a_ks] */
    ptrdiff_t a_is = a_trans ? 1 : lda, a_ks = a_trans ? lda : 1;
    for (int j0 = j_lo; j0 < j_hi; j0 += NC) {
        int nc = j_hi - j0 < NC ? j_hi - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            int load = accumulate || k0 > 0;      /* else C starts from 0 */
            pack_b(pb, b, ldb, b_trans, k0, kc, j0, nc);
            for (int i0 = i_lo; i0 < i_hi; i0 += MR) {
                int rows = i_hi - i0 < MR ? i_hi - i0 : MR;
                const real *a_panel = a + i0 * a_is + k0 * a_ks;         /* A(i0, k0) */
                for (int jp = 0; jp < nc; jp += NR) {
                    real *c_tile = c + (size_t)i0 * ldc + j0 + jp;           /* C(i0, j) */
                    const real *b_panel = pb + (size_t)jp * kc;
                    int cols = nc - jp < NR ? nc - jp : NR;
                    if (rows == MR && cols == NR)
                        tile(c_tile, ldc, a_panel, a_is, a_ks, b_panel, kc, load);
                    else
                        edge_tile(c_tile, ldc, a_panel, a_is, a_ks, b_panel, kc, load, rows,
                                  cols);
                }
            }
        }
    }
}

void matmul(real *c, int ldc, const real *a, int lda, int a_trans, const real *b, int ldb,
            int b_trans, int M, int N, int K, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)                                   /* an empty sum: C = 0 */
            for (int i = 0; i < M; i++) memset(c + (size_t)i * ldc, 0, (size_t)N * sizeof(real));
        return;
    }
    if (2 * N <= NR && M > N && (size_t)M * N <= NARROW_MAX) {
        /* Narrow C (e.g. the 2 outputs of the MLP): a tile NR columns wide would be mostly
         * padding, so compute Cᵀ (N, M) = op(B)ᵀ · op(A)ᵀ instead, in a copy that starts
         * from Cᵀ. Each number gets the same chain of fused multiply-adds
         * (fma(x, y, s) = fma(y, x, s)), so the bits are the same. */
        real ct[NARROW_MAX];                                     /* Cᵀ (N, M) */
        if (accumulate)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) ct[(size_t)j * M + i] = c[(size_t)i * ldc + j];
        matmul(ct, M, b, ldb, !b_trans, a, lda, !a_trans, N, M, K, accumulate);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) c[(size_t)i * ldc + j] = ct[(size_t)j * M + i];
        return;
    }
    /* Threads split C into bands: of columns if C is wide enough (each band a multiple of
     * NR), else of rows (multiples of MR). A band is computed exactly as the whole C would
     * be, so how C is split changes no bit. */
    int bands = 1;
#ifdef _OPENMP
    /* (called by one thread of a parallel region, e.g. conv2d's: that thread does it all) */
    if ((double)M * N * K > 5e5 && !omp_in_parallel()) bands = omp_get_max_threads();
#endif
    int by_columns = N >= bands * 2 * NR || N >= M;
    int unit = by_columns ? NR : MR, size = by_columns ? N : M;
    int width = round_up((size + bands - 1) / bands, unit);
    bands = (size + width - 1) / width;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (bands > 1)
#endif
    for (int band = 0; band < bands; band++) {
        int lo = band * width, hi = lo + width < size ? lo + width : size;
        if (by_columns)
            part(c, ldc, a, lda, a_trans, b, ldb, b_trans, 0, M, lo, hi, K, accumulate);
        else
            part(c, ldc, a, lda, a_trans, b, ldb, b_trans, lo, hi, 0, N, K, accumulate);
    }
}
