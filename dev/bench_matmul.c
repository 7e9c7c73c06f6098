/* bench_matmul.c: GFLOP/s of matmul.c on the shapes the default 28×28 U-Net and the 2D MLP
 * use (per image: forward w·col, backward dout·colᵀ for dw and wᵀ·dout for dcol).
 *   make build/float/matmul.o build/float/tensor.o
 *   cc -std=c11 -ffp-contract=off -O3 -march=native dev/bench_matmul.c build/float/matmul.o \
 *      build/float/tensor.o -o /tmp/bench_matmul -lm
 * CPU time, best of 15 (the machine is shared: the best of many short runs is the least
 * disturbed). */
#define _POSIX_C_SOURCE 199309L
#include <time.h>
#include <stdlib.h>
#include "../matmul.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    static const struct { const char *what; int M, N, K, a_trans, b_trans; } shapes[] = {
        {"conv fwd", 32, 784, 288, 0, 0},   {"conv fwd", 64, 196, 576, 0, 0},
        {"conv fwd", 128, 49, 1152, 0, 0},  {"conv dw", 32, 288, 784, 0, 1},
        {"conv dw", 64, 576, 196, 0, 1},    {"conv dw", 128, 1152, 49, 0, 1},
        {"conv dcol", 288, 784, 32, 1, 0},  {"conv dcol", 576, 196, 64, 1, 0},
        {"conv dcol", 1152, 49, 128, 1, 0}, {"mlp fwd", 256, 128, 128, 0, 0},
        {"mlp dw", 128, 128, 256, 1, 0},    {"mlp din", 256, 128, 128, 0, 1},
    };
    size_t big = 2000000;
    real *A = xmalloc(big * sizeof(real), "A"), *B = xmalloc(big * sizeof(real), "B");
    real *C = xmalloc(big * sizeof(real), "C");
    for (size_t i = 0; i < big; i++) { A[i] = (real)(i % 13) * 0.01f; B[i] = (real)(i % 7) * 0.02f; C[i] = 0; }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        int at = shapes[s].a_trans, bt = shapes[s].b_trans;
        double flop = 2.0 * M * K * N, best = 1e9;
        int reps = (int)(2e7 / flop) + 1;
        for (int t = 0; t < 15; t++) {
            double t0 = now();
            for (int r = 0; r < reps; r++)
                matmul(C, N, A, at ? M : K, at, B, bt ? K : N, bt, M, N, K, 1);
            double dt = (now() - t0) / reps;
            if (dt < best) best = dt;
        }
        printf("%-9s M %5d N %5d K %5d: %5.1f GFLOP/s\n", shapes[s].what, M, N, K, flop / best / 1e9);
    }
    free(A); free(B); free(C);
    return 0;
}
