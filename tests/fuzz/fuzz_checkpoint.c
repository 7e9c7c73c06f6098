/* fuzz_checkpoint.c: libFuzzer target for the checkpoint reader (checkpoint.c).
 *
 * Each input is a whole file in memory: its header is read (checkpoint_read_header_mem),
 * then it is loaded into the small model the seeds were saved from (checkpoint_load_mem),
 * which walks every tensor against a model. Either call may refuse the input with one
 * line; neither may crash, hang, leak, read out of bounds or overflow (ASan + UBSan).
 * A refused load must leave the model untouched. A mutated file almost never has a valid
 * CRC-32, so each input is tried twice: as it is (the frame checks), and with its size
 * field and checksum made right (everything behind them). Built by `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../checkpoint.h"
#include "../../crc32.h"
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_file(const uint8_t *data, size_t size) {
    static CkptHeader h;           /* 64 settings of 300 bytes: off the stack */
    char err[1024];
    checkpoint_read_header_mem(data, size, "fuzz", &h, err, sizeof err);

    ParamSet ps;
    fuzz_model(&ps);
    Rng rng;
    rng_seed(&rng, 1);
    real w0 = ps.w[0];
    if (checkpoint_load_mem(data, size, "fuzz", &h, &ps, &rng, err, sizeof err) != 0 &&
        memcmp(&w0, &ps.w[0], sizeof w0) != 0)
        __builtin_trap();          /* a refused load wrote into the model */
    params_free(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_file(data, size);
    if (size < 32 || size > 1 << 20) return 0;
    static uint8_t fixed[1 << 20];
    memcpy(fixed, data, size);
    for (int k = 0; k < 8; k++) fixed[12 + k] = (uint8_t)((uint64_t)size >> (8 * k));
    uint32_t crc = crc32_update(0, fixed, size - 4);
    for (int k = 0; k < 4; k++) fixed[size - 4 + k] = (uint8_t)(crc >> (8 * k));
    try_file(fixed, size);
    return 0;
}
