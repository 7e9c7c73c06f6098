/* fuzz_cifar.c: libFuzzer target for the CIFAR-10 loader (data.c).
 *
 * Each input is a whole file in memory, plain or gzipped, given to load_cifar10_mem with
 * and without a max_n. It may refuse it with one line; it may not crash, hang, leak, read
 * out of bounds or overflow (ASan + UBSan). What is loaded: labels 0..9, pixels in
 * [−1, 1]. Built by `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int max_n = 0; max_n <= 1; max_n++) {
        real *x;
        int *lab, N;
        if (load_cifar10_mem(data, size, "fuzz", &x, &lab, &N, max_n) == 0) {
            if (N < 1 || (max_n && N > max_n)) __builtin_trap();
            for (int i = 0; i < N; i++)
                if (lab[i] < 0 || lab[i] > 9) __builtin_trap();
            for (size_t i = 0; i < (size_t)N * 3 * 32 * 32; i++)
                if (!(x[i] >= -1 && x[i] <= 1)) __builtin_trap();
            data_free(x);
            data_free(lab);
        }
    }
    return 0;
}
