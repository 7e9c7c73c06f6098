/* frechet.c: cyclic Jacobi eigen-solver and the Fréchet distance (see frechet.h).
 *
 * Reading order: one Jacobi rotation, the sweeps, the matrix square root, the distance.
 */
#include "frechet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================================
 * Jacobi: a rotation J in the (p, q) plane, A ← Jᵀ A J, chosen so that A[p][q] becomes 0.
 * With θ = (a_qq − a_pp) / (2 a_pq), t = tan φ is the smaller root of t² + 2θt − 1 = 0,
 *   t = sign(θ) / (|θ| + √(θ² + 1)),  c = 1/√(t² + 1),  s = t c,
 * and then a_pp ← a_pp − t a_pq, a_qq ← a_qq + t a_pq, a_pq ← 0; every other row and
 * column r mixes as  a_rp ← c a_rp − s a_rq,  a_rq ← s a_rp + c a_rq. The sum of squares
 * off the diagonal falls by 2 a_pq² each time, so sweeps over all pairs converge (and
 * quadratically at the end). */

static void jacobi_rotate(double *a, double *v, int n, int p, int q) {
    double apq = a[p * n + q];
    double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
    double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
    double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
    for (int r = 0; r < n; r++) {                  /* columns p and q: A ← A J */
        double arp = a[r * n + p], arq = a[r * n + q];
        a[r * n + p] = c * arp - s * arq;
        a[r * n + q] = s * arp + c * arq;
    }
    for (int r = 0; r < n; r++) {                  /* rows p and q: A ← Jᵀ A */
        double apr = a[p * n + r], aqr = a[q * n + r];
        a[p * n + r] = c * apr - s * aqr;
        a[q * n + r] = s * apr + c * aqr;
    }
    a[p * n + q] = a[q * n + p] = 0.0;             /* exactly zero, not rounding noise */
    if (v)
        for (int r = 0; r < n; r++) {              /* V ← V J: the vectors are columns */
            double vrp = v[r * n + p], vrq = v[r * n + q];
            v[r * n + p] = c * vrp - s * vrq;
            v[r * n + q] = s * vrp + c * vrq;
        }
}

int jacobi_eigen(double *a, int n, double *eigval, double *eigvec) {
    if (eigvec)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) eigvec[i * n + j] = i == j;
    double total = 0;
    for (int i = 0; i < n * n; i++) total += a[i] * a[i];
    int sweeps = -1;
    for (int sweep = 1; sweep <= JACOBI_MAX_SWEEPS; sweep++) {
        double off = 0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += 2 * a[p * n + q] * a[p * n + q];
        /* converged when what is left off the diagonal is below rounding of the whole */
        if (off <= 1e-30 * total || off == 0) { sweeps = sweep - 1; break; }
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                if (a[p * n + q] != 0) jacobi_rotate(a, eigvec, n, p, q);
    }
    if (sweeps < 0) return -1;
    /* eigenvalues from the diagonal, sorted increasing with their vectors (insertion) */
    for (int i = 0; i < n; i++) eigval[i] = a[i * n + i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && eigval[j - 1] > eigval[j]; j--) {
            double t = eigval[j]; eigval[j] = eigval[j - 1]; eigval[j - 1] = t;
            if (eigvec)
                for (int r = 0; r < n; r++) {
                    double u = eigvec[r * n + j];
                    eigvec[r * n + j] = eigvec[r * n + j - 1];
                    eigvec[r * n + j - 1] = u;
                }
        }
    return sweeps;
}

/* ========================================================================================
 * Feature statistics */

void feature_stats(double *mean, double *cov, const real *f, int N, int D) {
    for (int d = 0; d < D; d++) mean[d] = 0;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mean[d] += f[(size_t)i * D + d];
    for (int d = 0; d < D; d++) mean[d] /= N;
    memset(cov, 0, (size_t)D * D * sizeof(double));
    double *x = xmalloc((size_t)D * sizeof(double), "centred feature");
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < D; d++) x[d] = f[(size_t)i * D + d] - mean[d];
        for (int r = 0; r < D; r++)                /* cov[r, :] += x[r] x[:] */
            for (int c = 0; c < D; c++) cov[r * D + c] += x[r] * x[c];
    }
    for (int i = 0; i < D * D; i++) cov[i] /= (N - 1);
    free(x);
}

/* ========================================================================================
 * The Fréchet distance. Σ₁^{1/2} = V diag(√λ) Vᵀ from Σ₁ = V diag(λ) Vᵀ; then
 * M = Σ₁^{1/2} Σ₂ Σ₁^{1/2} is symmetric positive semi-definite, and
 * Tr(M^{1/2}) = Σ_k √λ_k(M). (M has the eigenvalues of Σ₁ Σ₂, which is why the formula
 * is symmetric although it does not look it.) */

/* out (D, D) = a (D, D) b (D, D) */
static void matmul_dd(double *out, const double *a, const double *b, int D) {
    memset(out, 0, (size_t)D * D * sizeof(double));
    for (int i = 0; i < D; i++)
        for (int k = 0; k < D; k++) {
            double aik = a[i * D + k];
            for (int j = 0; j < D; j++) out[i * D + j] += aik * b[k * D + j];
        }
}

static void eigen_or_die(double *a, int D, double *lam, double *vec) {
    if (jacobi_eigen(a, D, lam, vec) < 0)
        die("frechet_distance: Jacobi did not converge in %d sweeps (a NaN in the features?)",
            JACOBI_MAX_SWEEPS);
}

double frechet_distance(const double *mu1, const double *cov1, const double *mu2,
                        const double *cov2, int D) {
    size_t DD = (size_t)D * D;
    double *a = xmalloc(DD * sizeof(double), "Frechet work");
    double *vec = xmalloc(DD * sizeof(double), "Frechet eigenvectors");
    double *root = xmalloc(DD * sizeof(double), "Frechet sqrt(cov1)");
    double *m = xmalloc(DD * sizeof(double), "Frechet M");
    double *lam = xmalloc((size_t)D * sizeof(double), "Frechet eigenvalues");

    /* Σ₁^{1/2} */
    memcpy(a, cov1, DD * sizeof(double));
    eigen_or_die(a, D, lam, vec);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += vec[i * D + k] * sqrt(fmax(lam[k], 0.0)) * vec[j * D + k];
            root[i * D + j] = s;
        }
    /* M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}, symmetrized against rounding */
    matmul_dd(a, root, cov2, D);
    matmul_dd(m, a, root, D);
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++)
            m[i * D + j] = m[j * D + i] = 0.5 * (m[i * D + j] + m[j * D + i]);
    eigen_or_die(m, D, lam, NULL);
    double tr_sqrt = 0;
    for (int k = 0; k < D; k++) tr_sqrt += sqrt(fmax(lam[k], 0.0));

    double dmu2 = 0, tr1 = 0, tr2 = 0;
    for (int d = 0; d < D; d++) {
        dmu2 += (mu1[d] - mu2[d]) * (mu1[d] - mu2[d]);
        tr1 += cov1[d * D + d];
        tr2 += cov2[d * D + d];
    }
    free(lam); free(m); free(root); free(vec); free(a);
    return dmu2 + tr1 + tr2 - 2.0 * tr_sqrt;
}

double frechet_distance_sets(const real *a, int na, const real *b, int nb, int D) {
    double *mu1 = xmalloc((size_t)D * sizeof(double), "mean");
    double *mu2 = xmalloc((size_t)D * sizeof(double), "mean");
    double *c1 = xmalloc((size_t)D * D * sizeof(double), "cov");
    double *c2 = xmalloc((size_t)D * D * sizeof(double), "cov");
    feature_stats(mu1, c1, a, na, D);
    feature_stats(mu2, c2, b, nb, D);
    double fd = frechet_distance(mu1, c1, mu2, c2, D);
    free(c2); free(c1); free(mu2); free(mu1);
    return fd;
}
