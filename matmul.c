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
 *       A panel        +----------------------+      j is the inner loop: NR numbers in
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
 *    shows one fused multiply-add per vector of acc, with register operands).
 *
 * 2. Packing. The tile reads A down a column and B along a row. To make both reads
 *    contiguous whatever the layout (and whether a transpose is asked for), a block of A
 *    and a block of B are first copied into the order the tile reads them ("packed"):
 *    A in micro-panels of MR rows, stored k-major (a(0,k) a(1,k) … a(MR−1,k), then k+1),
 *    and B in micro-panels of NR columns, also k-major. Missing rows and columns at the
 *    edges are packed as zeros, so the loop over k never tests a bound; only the loads
 *    and stores of an edge tile of C are cut short.
 *
 * 3. Cache blocks. The copies are taken KC = 256 values of k at a time: NC = 512 columns
 *    of B (512 KB of floats, in the second-level cache, packed once per slice and used by
 *    every row of A) and MC = 60 rows of A (60 KB, used by every micro-panel of B):
 *
 *        for each NC-column group of C
 *          for each KC-slice of k, in increasing order     (C's tile is reloaded, so the
 *            pack B(slice, group)                            order over k is unchanged)
 *            for each MC-row block of C
 *              pack A(block, slice)
 *              for each MR-row micro-panel of A, for each NR-column micro-panel of B
 *                the register tile: C tile += A panel · B panel over the slice
 *
 * Threads (make OMP=1) split C into bands of columns (or of rows, when C is narrow), and
 * each band is computed as above by one thread: every number of C is still the same chain
 * of multiply-adds, so any number of threads gives the same bits.
 */
#include "matmul.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { MR = MATMUL_MR, NR = MATMUL_NR, KC = MATMUL_KC, MC = MATMUL_MC, NC = MATMUL_NC };
enum { NARROW_MAX = 8192 };   /* reals of the transposed copy of a narrow C (32 KB) */

static int round_up(int n, int multiple) { return (n + multiple - 1) / multiple * multiple; }

/* The register tile: c (rows, cols) += a (rows, kc) · b (kc, cols), rows ≤ MR, cols ≤ NR,
 * with a and b packed k-major (a[k·MR + i] = A(i, k), b[k·NR + j] = B(k, j), zero-padded
 * to the full tile) and rows of c ldc apart. The loop over k always does the full MR × NR
 * tile; at the edges of C only the loads and stores are cut to rows × cols. */
static void tile(real *c, int ldc, const real *a, const real *b, int kc, int rows, int cols) {
    real acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = i < rows && j < cols ? c[(size_t)i * ldc + j] : 0;
    for (int k = 0; k < kc; k++) {
        const real *a_k = a + (size_t)k * MR, *b_k = b + (size_t)k * NR;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] = real_fma(a_k[i], b_k[j], acc[i][j]);
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            if (i < rows && j < cols) c[(size_t)i * ldc + j] = acc[i][j];
}

/* pa = A(i0 … i0+mc−1, k0 … k0+kc−1) in micro-panels of MR rows, k-major, zero rows below M */
static void pack_a(real *pa, const real *a, int lda, int a_trans, int i0, int mc, int k0,
                   int kc) {
    for (int ip = 0; ip < mc; ip += MR) {
        real *panel = pa + (size_t)ip * kc;                  /* seek to micro-panel ip/MR */
        int rows = mc - ip < MR ? mc - ip : MR;
        for (int k = 0; k < kc; k++) {
            for (int r = 0; r < rows; r++) {
                size_t i = (size_t)(i0 + ip + r), kk = (size_t)(k0 + k);
                panel[(size_t)k * MR + r] = a_trans ? a[kk * lda + i] : a[i * lda + kk];
            }
            for (int r = rows; r < MR; r++) panel[(size_t)k * MR + r] = 0;
        }
    }
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
        for (int k = 0; k < kc; k++)
            for (int j = cols; j < NR; j++) panel[(size_t)k * NR + j] = 0;
    }
}

/* The part of C in rows i_lo … i_hi−1 and columns j_lo … j_hi−1, all of k: for each
 * NC-wide group of columns and each KC-slice of k (in increasing order), B's slice is
 * packed once, then every MC-row block of A is packed and passes over it, tile by tile. */
static void part(real *c, int ldc, const real *a, int lda, int a_trans, const real *b,
                 int ldb, int b_trans, int i_lo, int i_hi, int j_lo, int j_hi, int K) {
    real pa[MC * KC], pb[KC * NC];   /* packed copies: 60 KB and 512 KB of floats */
    for (int j0 = j_lo; j0 < j_hi; j0 += NC) {
        int nc = j_hi - j0 < NC ? j_hi - j0 : NC;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            pack_b(pb, b, ldb, b_trans, k0, kc, j0, nc);
            for (int i0 = i_lo; i0 < i_hi; i0 += MC) {
                int mc = i_hi - i0 < MC ? i_hi - i0 : MC;
                pack_a(pa, a, lda, a_trans, i0, mc, k0, kc);
                for (int ip = 0; ip < mc; ip += MR)
                    for (int jp = 0; jp < nc; jp += NR) {
                        real *c_tile = c + (size_t)(i0 + ip) * ldc + j0 + jp;   /* C(i, j) */
                        const real *a_panel = pa + (size_t)ip * kc;
                        const real *b_panel = pb + (size_t)jp * kc;
                        int rows = mc - ip < MR ? mc - ip : MR;
                        int cols = nc - jp < NR ? nc - jp : NR;
                        tile(c_tile, ldc, a_panel, b_panel, kc, rows, cols);
                    }
            }
        }
    }
}

void matmul(real *c, int ldc, const real *a, int lda, int a_trans, const real *b, int ldb,
            int b_trans, int M, int N, int K, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (!accumulate)                                 /* C = 0, then C += A · B */
        for (int i = 0; i < M; i++) memset(c + (size_t)i * ldc, 0, (size_t)N * sizeof(real));
    if (K <= 0) return;
    if (2 * N <= NR && M > N && (size_t)M * N <= NARROW_MAX) {
        /* Narrow C (e.g. the 2 outputs of the MLP): a tile NR columns wide would be mostly
         * padding, so compute Cᵀ (N, M) = op(B)ᵀ · op(A)ᵀ instead, in a copy that starts
         * from Cᵀ. Each number gets the same chain of fused multiply-adds
         * (fma(x, y, s) = fma(y, x, s)), so the bits are the same. */
        real ct[NARROW_MAX];                                     /* Cᵀ (N, M) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) ct[(size_t)j * M + i] = c[(size_t)i * ldc + j];
        matmul(ct, M, b, ldb, !b_trans, a, lda, !a_trans, N, M, K, 1);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) c[(size_t)i * ldc + j] = ct[(size_t)j * M + i];
        return;
    }
    /* Threads split C into bands: of columns if C is wide enough (each band a multiple of
     * NR), else of rows (multiples of MR). A band is computed exactly as the whole C would
     * be, so how C is split changes no bit. */
    int bands = 1;
#ifdef _OPENMP
    if ((double)M * N * K > 5e5) bands = omp_get_max_threads();
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
            part(c, ldc, a, lda, a_trans, b, ldb, b_trans, 0, M, lo, hi, K);
        else
            part(c, ldc, a, lda, a_trans, b, ldb, b_trans, lo, hi, 0, N, K);
    }
}
