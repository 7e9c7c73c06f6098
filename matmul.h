/* matmul.h: the one matrix multiply; every linear layer and convolution is a call to it.
 *
 *   C (M, N) += op(A) (M, K) · op(B) (K, N)      (or C = op(A) · op(B) with accumulate 0)
 *
 * op(X) is X itself or its transpose Xᵀ, chosen by a flag: the transposes of a backward
 * pass are handled by how the operands are read, never by a transposed copy.
 * All matrices are row-major with a row stride ("leading dimension") ld ≥ their width:
 *   A(i, k) = a_trans ? a[k·lda + i] : a[i·lda + k]
 *   B(k, j) = b_trans ? b[j·ldb + k] : b[k·ldb + j]
 *   C(i, j) = c[i·ldc + j]
 * Every C(i, j) is summed in the order k = 0, 1, …, K−1 with one fused multiply-add per
 * term, c = fma(A(i, k), B(k, j), c), exactly what the plain triple loop would compute,
 * whatever the matrix sizes, the blocking and the number of threads.
 */
#ifndef MATMUL_H
#define MATMUL_H

#include "tensor.h"

void matmul(real *c, int ldc, const real *a, int lda, int a_trans, const real *b, int ldb,
            int b_trans, int M, int N, int K, int accumulate);

/* The register tile and cache blocks (see matmul.c for what they are), exported for the
 * tests, which pick shapes that are and are not multiples of them. */
enum { MATMUL_MR = 5, MATMUL_NR = 32, MATMUL_KC = 256, MATMUL_NC = 512 };

#endif
