/* bench_matmul.c: GFLOP/s of unet.c's matmul on the shapes the default 28×28 U-Net
 * uses (per image: forward w·col, backward col·doutᵀ for dw and wᵀ·dout for dcol).
 *   cc -std=c11 -ffp-contract=off -O3 -march=native dev/bench_matmul.c tensor.c -o /tmp/bench_matmul -lm
 * It includes unet.c itself to reach the static helper. CPU time, best of 25 (the machine
 * is shared: the best of many short runs is the least disturbed). */
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#include "../unet.c"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    static const int shapes[][3] = {   /* M, K, Nc */
        {32, 288, 784}, {32, 576, 784}, {64, 576, 196}, {64, 1152, 196}, {64, 1152, 49},
        {288, 784, 32}, {576, 784, 32}, {576, 196, 64}, {1152, 196, 64}, {1152, 49, 64},
        {288, 32, 784}, {576, 32, 784}, {576, 64, 196}, {1152, 64, 196}, {1152, 64, 49},
    };
    const char *what[] = {"forward", "forward", "forward", "forward", "forward",
                          "dw", "dw", "dw", "dw", "dw", "dcol", "dcol", "dcol", "dcol", "dcol"};
    size_t big = 2000000;
    real *A = xmalloc(big * sizeof(real), "A"), *B = xmalloc(big * sizeof(real), "B");
    real *C = xmalloc(big * sizeof(real), "C"), *panel = xmalloc(big * sizeof(real), "panel");
    for (size_t i = 0; i < big; i++) { A[i] = (real)(i % 13) * 0.01f; B[i] = (real)(i % 7) * 0.02f; C[i] = 0; }
    double total = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], K = shapes[s][1], Nc = shapes[s][2];
        double flop = 2.0 * M * K * Nc, best = 1e9;
        int is_dcol = what[s][1] == 'c';    /* dcol = wᵀ · dout overwrites */
        int reps = (int)(5e7 / flop) + 1;
        for (int t = 0; t < 25; t++) {
            double t0 = now();
            for (int r = 0; r < reps; r++) matmul(C, A, B, M, K, Nc, panel, !is_dcol);
            double dt = (now() - t0) / reps;
            if (dt < best) best = dt;
        }
        total += best;
        printf("%-8s M %5d K %5d Nc %4d: %5.1f GFLOP/s\n", what[s], M, K, Nc, flop / best / 1e9);
    }
    printf("sum of best times %.2f ms\n", total * 1e3);
    free(A); free(B); free(C); free(panel);
    return 0;
}
