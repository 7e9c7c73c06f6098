/* gradcheck.h: central finite differences against a hand-written backward, in double.
 *
 * The tests build every source with real = double. The numeric gradient is the five-point
 * central difference
 *     (8 (L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h
 * (Richardson's combination of the steps h and 2h), whose truncation error is O(h⁴ L⁽⁵⁾)
 * and rounding error about δ/h, δ the rounding of one evaluation of L. The plain central
 * difference (L(x+h) − L(x−h)) / 2h errs by h² L‴/6 and cannot do as well: on the whole
 * U-Net of test_unet.c (30 layers, L‴ up to ~10 along a conv weight of the first block) it
 * erred by 1.3e-10 absolute at h = 1e-5 (truncation: 1.5e-9 at 3e-5), by 2e-10 at 3e-6
 * (rounding: δ ≈ 1e-15 there), never under ~1e-10, which is 1e-6 relative at the floor
 * below, the tolerance itself. With five points and h = 3e-4 both errors are ~1e-12 to
 * 4e-12, and analytic and numeric gradients agree to ~4e-8 relative at worst. A check
 * compares
 *     err = |analytic - numeric| / max(|analytic|, |numeric|, GRAD_FLOOR)
 * where the floor keeps gradients that are zero up to rounding from dividing by ~0.
 * Rounding in L(x ± h) is ~ε_mach |L| per evaluation, so the numeric gradient carries an
 * absolute noise of ~ε_mach |L| / h that grows with the loss itself (a KL-weighted loss at
 * t = 1 is ~1e3): the floor is GRAD_FLOOR · max(1, |L|), i.e. a gradient counts as zero
 * when it is below 1e-4 of the loss scale, far above that noise (~1e-11 |L|).
 */
#ifndef GRADCHECK_H
#define GRADCHECK_H

#include "harness.h"
#include "../tensor.h"

#define GRAD_H     3e-4   /* step of the five-point difference, see above */
#define GRAD_TOL   1e-6   /* relative error allowed: 25x the worst 4e-8 measured */
#define GRAD_FLOOR 1e-4   /* relative to max(1, |L|): below it a gradient counts as zero */

typedef double (*LossFn)(void *ctx);   /* recomputes the loss from the current x */

/* Checks up to max_checks entries of x (evenly strided; all if n <= max_checks) against
 * analytic[i] = dL/dx[i]. Returns the worst error seen; counts as one check (per tensor). */
static double gradcheck(const char *what, real *x, const real *analytic, size_t n,
                        LossFn loss, void *ctx, size_t max_checks) {
    size_t stride = (n <= max_checks || max_checks == 0) ? 1 : n / max_checks;
    double floor = GRAD_FLOOR * fmax(1.0, fabs(loss(ctx)));
    double worst = 0.0;
    int failures = 0;
    for (size_t i = 0; i < n; i += stride) {
        real saved = x[i];
        x[i] = saved + GRAD_H; double lp = loss(ctx);
        x[i] = saved - GRAD_H; double lm = loss(ctx);
        x[i] = saved + 2 * GRAD_H; double lpp = loss(ctx);
        x[i] = saved - 2 * GRAD_H; double lmm = loss(ctx);
        x[i] = saved;
        double numeric = (8.0 * (lp - lm) - (lpp - lmm)) / (12.0 * GRAD_H);
        double a = (double)analytic[i];
        double err = fabs(a - numeric) / fmax(fmax(fabs(a), fabs(numeric)), floor);
        if (err > worst) worst = err;
        if (err > GRAD_TOL && failures++ < 5)
            fprintf(stderr, "FAIL gradcheck %s[%zu]: analytic %.10g numeric %.10g err %.3g\n",
                    what, i, a, numeric, err);
    }
    if (failures) test_failed_count++; else test_passed_count++;
    return worst;
}

#endif
