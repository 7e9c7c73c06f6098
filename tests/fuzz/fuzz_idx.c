/* fuzz_idx.c: libFuzzer target for the IDX loaders (data.c), images and labels.
 *
 * Each input is a whole file in memory, plain or gzipped, given to load_idx_images_mem
 * and load_idx_labels_mem, with and without a max_n. Either may refuse it with one line;
 * neither may crash, hang, leak, read out of bounds or overflow (ASan + UBSan). What is
 * loaded must be what the header declares, in [−1, 1]. Built by `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int max_n = 0; max_n <= 1; max_n++) {
        real *x;
        int N, H, W;
        if (load_idx_images_mem(data, size, "fuzz", &x, &N, &H, &W, max_n) == 0) {
            if (N < 1 || H < 1 || W < 1 || (max_n && N > max_n)) __builtin_trap();
            for (size_t i = 0; i < (size_t)N * H * W; i++)
                if (!(x[i] >= -1 && x[i] <= 1)) __builtin_trap();
            data_free(x);
        }
        int *lab;
        if (load_idx_labels_mem(data, size, "fuzz", &lab, &N, max_n) == 0) {
            if (N < 1 || (max_n && N > max_n)) __builtin_trap();
            for (int i = 0; i < N; i++)
                if (lab[i] < 0 || lab[i] > 255) __builtin_trap();
            data_free(lab);
        }
    }
    return 0;
}
