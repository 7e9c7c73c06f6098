/* crc_bitwise.h: CRC-32 by its definition, one bit at a time, for the tests that check
 * crc32.c (test_crc32) and the files written with it (test_plot's PNG chunks,
 * test_checkpoint's trailer) by a route independent of crc32.c's nibble table.
 *
 * The register starts at all ones, each bit shifts out with the reflected polynomial
 * 0xEDB88320 xored in when it is 1, and the result is complemented. */
#ifndef CRC_BITWISE_H
#define CRC_BITWISE_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t crc_bitwise(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

#endif
