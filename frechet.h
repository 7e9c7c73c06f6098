/* frechet.h: the Fréchet distance between two Gaussians, and the symmetric eigen-solver
 * it needs (cyclic Jacobi), both in double.
 *
 * What is here:
 *   - jacobi_eigen: all eigenvalues and eigenvectors of a symmetric matrix by plane
 *     rotations (Jacobi 1846; Golub & Van Loan, Matrix Computations, §8.5);
 *   - feature statistics: the mean and covariance of a set of feature vectors;
 *   - the Fréchet distance of Dowson & Landau (1982) between N(μ_r, Σ_r) and N(μ_g, Σ_g),
 *       FD = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r^{1/2} Σ_g Σ_r^{1/2})^{1/2}),
 *     the formula behind FID (Heusel et al., 2017). Fed with the features of the project's
 *     own small classifier (classifier.h) it is "FID in miniature", not FID: FID uses
 *     Inception-v3's 2048 features on ImageNet-like images.
 * What is not: no network, no images; any feature vectors will do.
 *
 * Sizes: D = feature dimension, N = number of feature vectors. Matrices are (D, D)
 * row-major.
 */
#ifndef FRECHET_H
#define FRECHET_H

#include "tensor.h"

/* Eigen-decomposition A = V diag(λ) Vᵀ of the symmetric a (n, n), which is overwritten.
 * eigval (n) gets λ in increasing order, eigvec (n, n) or NULL the orthonormal
 * eigenvectors as COLUMNS (eigvec[i·n + k] is component i of the k-th vector). Returns
 * the number of sweeps taken, or −1 if it did not converge in JACOBI_MAX_SWEEPS. */
#define JACOBI_MAX_SWEEPS 100
int jacobi_eigen(double *a, int n, double *eigval, double *eigvec);

/* mean (D) and cov (D, D) of the N rows of f (N, D), cov with the 1/(N − 1) of the
 * unbiased estimate (as FID implementations use). N ≥ 2. */
void feature_stats(double *mean, double *cov, const real *f, int N, int D);

/* The Fréchet distance between N(mu1, cov1) and N(mu2, cov2), D dimensions; the square
 * root of Σ₁ and of Σ₁^{1/2} Σ₂ Σ₁^{1/2} by jacobi_eigen, negative eigenvalues (rounding
 * of a singular covariance) clipped to 0. Symmetric in its two Gaussians, 0 for identical
 * ones. die()s if Jacobi does not converge (it always does for finite input). */
double frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                        const double *cov2, int D);

/* The same from two sets of feature vectors a (na, D) and b (nb, D). */
double frechet_distance_sets(const real *a, int na, const real *b, int nb, int D);

#endif
