/* fuzz_gz.c: libFuzzer target for the gzip reader (gz.c).
 *
 * Each input goes to gunzip_memory (the gzip wrapper, members, CRC-32 and length) and to
 * inflate_memory (raw DEFLATE), with an output limit of 1 MiB. Either may refuse it with
 * one line in err; neither may crash, hang, leak, read or write out of bounds (ASan +
 * UBSan), return more than the limit, or leave err empty on a refusal. Built by
 * `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../gz.h"

#define OUT_LIMIT ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *out;
    size_t out_n, used;
    char err[GZ_ERR_MAX];
    err[0] = '\0';
    if (gunzip_memory(data, size, OUT_LIMIT, &out, &out_n, err) == 0) {
        if (out_n > OUT_LIMIT) __builtin_trap();
        free(out);
    } else if (err[0] == '\0') {
        __builtin_trap();
    }
    err[0] = '\0';
    if (inflate_memory(data, size, OUT_LIMIT, &used, &out, &out_n, err) == 0) {
        if (out_n > OUT_LIMIT || used > size) __builtin_trap();
        free(out);
    } else if (err[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
