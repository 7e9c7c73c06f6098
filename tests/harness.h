/* harness.h: a tiny test harness, plain C. Each test file includes it once.
 *
 *   CHECK(cond, fmt, ...)         one check; prints the message on failure
 *   CHECK_CLOSE(a, b, tol, what)  |a - b| <= tol
 *   CHECK_REL(a, b, tol, what)    |a - b| / max(|a|, |b|, 1e-12) <= tol
 *   return test_summary("name");  prints "name: N passed, N failed", non-zero on failure
 *
 * Every tolerance passed here is a named constant with its reason at the top of the test.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <math.h>
#include <stdio.h>

static int test_passed_count = 0, test_failed_count = 0;

#define CHECK(cond, ...) do {                                                   \
    if (cond) { test_passed_count++; }                                          \
    else { test_failed_count++;                                                 \
           fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
           fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); }               \
} while (0)

#define CHECK_CLOSE(a, b, tol, what) do {                                       \
    double ca_ = (double)(a), cb_ = (double)(b);                                \
    CHECK(fabs(ca_ - cb_) <= (tol), "%s: %.12g vs %.12g (|diff| %.3g > %.3g)",  \
          (what), ca_, cb_, fabs(ca_ - cb_), (double)(tol));                    \
} while (0)

static inline double rel_err(double a, double b) {
    double m = fmax(fmax(fabs(a), fabs(b)), 1e-12);
    return fabs(a - b) / m;
}

#define CHECK_REL(a, b, tol, what) do {                                         \
    double ra_ = (double)(a), rb_ = (double)(b);                                \
    CHECK(rel_err(ra_, rb_) <= (tol), "%s: %.12g vs %.12g (rel %.3g > %.3g)",  \
          (what), ra_, rb_, rel_err(ra_, rb_), (double)(tol));                  \
} while (0)

static int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed_count, test_failed_count);
    return test_failed_count ? 1 : 0;
}

#endif
