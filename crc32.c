/* crc32.c: CRC-32 (see crc32.h). */
#include "crc32.h"

/* The remainder of the message (bit-reversed) divided by the polynomial 0xEDB88320. The
 * bitwise step is c = (c & 1) ? (c >> 1) ^ 0xEDB88320 : c >> 1; four such steps on a
 * 4-bit value i give nibble_crc[i], so each byte takes two table look-ups. The ones'
 * complement on entry and exit is what lets the caller start from 0 and chain calls. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t n) {
    static const uint32_t nibble_crc[16] = {
        0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC, 0x76DC4190, 0x6B6B51F4,
        0x4DB26158, 0x5005713C, 0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
        0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C,
    };
    const unsigned char *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble_crc[crc & 15];   // low nibble
        crc = (crc >> 4) ^ nibble_crc[crc & 15];   // high nibble
    }
    return ~crc;
}
