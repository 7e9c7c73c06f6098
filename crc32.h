/* crc32.h: the one CRC-32 of the project (PNG chunks, checkpoints, gzip members).
 *
 * The CRC-32 of zlib, PNG and gzip (ISO-HDLC: reflected polynomial 0xEDB88320, register
 * started at and finally xored with all ones), with zlib's calling convention: start from
 * 0 and feed the bytes in any number of pieces,
 *   crc32_update(0, buf, n)                               the CRC-32 of buf,
 *   crc32_update(crc32_update(0, a, n), b, m)             the CRC-32 of a followed by b.
 * Check value: crc32_update(0, "123456789", 9) = 0xCBF43926.
 */
#ifndef CRC32_H
#define CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32_update(uint32_t crc, const void *buf, size_t n);

#endif
