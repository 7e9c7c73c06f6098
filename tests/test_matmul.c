/* test_matmul.c: the blocked, packed, register-tiled matmul against the plain triple loop.
 *
 * matmul promises the plain loop's result bit for bit: every C(i, j) summed over
 * k = 0 … K−1 in order, one fused multiply-add per term. So the check is exact equality
 * with that loop, on shapes that are 1 × 1, primes, and one less / one more than the
 * register tile (MR × NR) and the cache blocks (NC, KC), for the four transpose
 * choices, with and without accumulation, with row strides wider than the matrices
 * (the numbers between rows must stay untouched). The naive loop itself is checked
 * against a sum in long double (it reads the operands the way matmul.h says).
 * The Makefile builds this test three times: with real = double (like every test), with
 * real = float, the programs' precision (test_matmul_float), and with OpenMP, run on two
 * threads by `make test-threads` (test_matmul_omp): the same bits whatever the threads.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "../matmul.h"

/* the naive loop vs a long-double sum: each of K fused steps rounds once, so
 * |error| ≤ K ε Σ_k |A(i,k) B(k,j)| (a standard bound, with margin); ε of `real` */
#ifdef DDPM_DOUBLE
#define REAL_EPS 2.220446049250313e-16
#else
#define REAL_EPS 1.1920929e-7
#endif
#define SENTINEL ((real)-12345.0)   /* fills the gaps between rows of C: must survive */

static real A_of(const real *a, int lda, int trans, int i, int k) {
    return trans ? a[(size_t)k * lda + i] : a[(size_t)i * lda + k];
}
static real B_of(const real *b, int ldb, int trans, int k, int j) {
    return trans ? b[(size_t)j * ldb + k] : b[(size_t)k * ldb + j];
}

/* one shape, one choice of transposes and accumulation: returns 1 if all exact */
static int check_shape(int M, int N, int K, int a_trans, int b_trans, int accumulate,
                       Rng *rng, double *worst_naive) {
    int pad = 3;                                   /* row strides wider than the rows */
    int lda = (a_trans ? M : K) + pad, ldb = (b_trans ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(a_trans ? K : M) * lda, nb = (size_t)(b_trans ? N : K) * ldb;
    size_t nc = (size_t)M * ldc;
    real *a = xmalloc((na + 1) * sizeof(real), "A"), *b = xmalloc((nb + 1) * sizeof(real), "B");
    real *c = xmalloc(nc * sizeof(real), "C"), *ref = xmalloc(nc * sizeof(real), "C ref");
    rng_fill_normal(rng, a, na);
    rng_fill_normal(rng, b, nb);
    for (size_t i = 0; i < nc; i++) c[i] = SENTINEL;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) c[(size_t)i * ldc + j] = (real)rng_normal(rng);
    memcpy(ref, c, nc * sizeof(real));
    for (int i = 0; i < M; i++)                    /* the plain loop, the definition */
        for (int j = 0; j < N; j++) {
            real s = accumulate ? ref[(size_t)i * ldc + j] : 0;
            long double exact = s, bound = 0;
            for (int k = 0; k < K; k++) {
                real x = A_of(a, lda, a_trans, i, k), y = B_of(b, ldb, b_trans, k, j);
                s = real_fma(x, y, s);
                exact += (long double)x * y;
                bound += fabsl((long double)x * y);
            }
            ref[(size_t)i * ldc + j] = s;
            double err = (double)fabsl((long double)s - exact);
            double allowed = (K + 1) * REAL_EPS * (double)(bound + fabsl((long double)s));
            if (err > allowed && err - allowed > *worst_naive) *worst_naive = err - allowed;
        }
    matmul(c, ldc, a, lda, a_trans, b, ldb, b_trans, M, N, K, accumulate);
    int same = memcmp(c, ref, nc * sizeof(real)) == 0;   /* bits, sentinels included */
    free(a); free(b); free(c); free(ref);
    return same;
}

static void test_shapes(void) {
    enum { MR = MATMUL_MR, NR = MATMUL_NR, KC = MATMUL_KC, NC = MATMUL_NC };
    static const int shapes[][3] = {   /* M, N, K */
        {1, 1, 1}, {1, 1, 7}, {2, 3, 5}, {7, 13, 1}, {MR, NR, 3}, {MR - 1, NR - 1, 11},
        {MR + 1, NR + 1, 17}, {13, 31, 37}, {60, NC, KC}, {61, NC + 1, KC + 1},
        {59, NC - 1, KC - 1}, {61, 127, 2 * KC + 3}, {123, 67, 29},
        {3, 2 * NC + 5, 41}, {127, 2, 97}, {1, 200, 300}, {200, 1, 19}, {256, 2, 128},
        {33, 9, 50}, {600, 15, 7}, {17, 16, 3},      /* narrow: computed as Cᵀ */
    };
    Rng rng;
    rng_seed(&rng, 2024);
    int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < n_shapes; s++)
        for (int variant = 0; variant < 8; variant++) {
            int a_trans = variant & 1, b_trans = (variant >> 1) & 1, acc = (variant >> 2) & 1;
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            double worst = 0;
            int same = check_shape(M, N, K, a_trans, b_trans, acc, &rng, &worst);
            CHECK(same, "matmul %s M %d N %d K %d (A%s, B%s) differs from the plain loop",
                  acc ? "+=" : "=", M, N, K, a_trans ? "ᵀ" : "", b_trans ? "ᵀ" : "");
            CHECK(worst == 0, "plain loop M %d N %d K %d beyond its rounding bound by %g",
                  M, N, K, worst);
        }
}

/* K = 0: C = 0 (accumulate 0) or untouched (accumulate 1) */
static void test_empty_sum(void) {
    real c[4] = { 1, 2, 3, 4 }, a[1] = { 5 }, b[1] = { 6 };
    matmul(c, 2, a, 1, 0, b, 2, 0, 2, 2, 0, 1);
    CHECK(c[0] == 1 && c[3] == 4, "K = 0 with accumulate must leave C as it was");
    matmul(c, 2, a, 1, 0, b, 2, 0, 2, 2, 0, 0);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0, "K = 0 without accumulate: C = 0");
}

int main(void) {
    test_shapes();
    test_empty_sum();
#if defined(_OPENMP)
    return test_summary("test_matmul_omp");    /* make test-threads: on 2 threads */
#elif defined(DDPM_DOUBLE)
    return test_summary("test_matmul");
#else
    return test_summary("test_matmul_float");
#endif
}
