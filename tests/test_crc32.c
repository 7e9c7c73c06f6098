/* test_crc32.c: the one CRC-32 (crc32.c) against published check values and against the
 * definition computed the slow way, one bit at a time (crc_bitwise.h).
 *
 * Check values: "123456789" → 0xCBF43926 is the catalogue check value of CRC-32/ISO-HDLC
 * (the CRC of zlib, PNG and gzip); "" → 0; "a" → 0xE8B7BE43 and "The quick brown fox jumps
 * over the lazy dog" → 0x414FA339 are what zlib.crc32 returns for them.
 */
#include "crc_bitwise.h"
#include "harness.h"
#include "../crc32.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void test_check_values(void) {
    const char *fox = "The quick brown fox jumps over the lazy dog";
    CHECK(crc32_update(0, "123456789", 9) == 0xCBF43926u, "check value of \"123456789\": %08X",
          (unsigned)crc32_update(0, "123456789", 9));
    CHECK(crc32_update(0, "", 0) == 0, "empty input");
    CHECK(crc32_update(0, "a", 1) == 0xE8B7BE43u, "\"a\": %08X", (unsigned)crc32_update(0, "a", 1));
    CHECK(crc32_update(0, fox, strlen(fox)) == 0x414FA339u, "the fox: %08X",
          (unsigned)crc32_update(0, fox, strlen(fox)));
    CHECK(crc32_update(0x12345678u, "", 0) == 0x12345678u, "no bytes leave the CRC as it was");
    CHECK(crc_bitwise((const unsigned char *)"123456789", 9) == 0xCBF43926u,
          "the bitwise definition's check value");
}

/* Chaining: every split of "123456789" into two pieces, and byte by byte. */
static void test_chaining(void) {
    const char *digits = "123456789";
    int all_splits = 1;
    for (size_t k = 0; k <= 9; k++)
        all_splits &= crc32_update(crc32_update(0, digits, k), digits + k, 9 - k) == 0xCBF43926u;
    CHECK(all_splits, "CRC of a then b = CRC of a‖b at every split point");
    uint32_t c = 0;
    for (size_t k = 0; k < 9; k++) c = crc32_update(c, digits + k, 1);
    CHECK(c == 0xCBF43926u, "one byte at a time: %08X", (unsigned)c);
}

/* Against the bitwise definition: every single byte, and 100000 pseudo-random bytes fed
 * in uneven pieces. */
static void test_against_definition(void) {
    int every_byte = 1;
    for (int b = 0; b < 256; b++) {
        unsigned char one = (unsigned char)b;
        every_byte &= crc32_update(0, &one, 1) == crc_bitwise(&one, 1);
    }
    CHECK(every_byte, "all 256 one-byte messages");

    enum { N = 100000 };
    unsigned char *buf = malloc(N);
    if (!buf) { CHECK(0, "out of memory"); return; }
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) { s = s * 1664525u + 1013904223u; buf[i] = (unsigned char)(s >> 24); }
    uint32_t c = 0;
    for (size_t at = 0, piece = 1; at < N; at += piece, piece = piece * 3 + 1) {
        size_t k = N - at < piece ? N - at : piece;
        c = crc32_update(c, buf + at, k);
    }
    CHECK(c == crc_bitwise(buf, N), "100000 bytes in pieces of 1, 4, 13, ...: %08X vs %08X",
          (unsigned)c, (unsigned)crc_bitwise(buf, N));
    free(buf);
}

int main(void) {
    test_check_values();
    test_chaining();
    test_against_definition();
    return test_summary("test_crc32");
}
