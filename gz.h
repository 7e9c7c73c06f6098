/* gz.h: reading gzip files without zlib — a small, readable inflate.
 *
 * What is here:
 *   - inflate: the DEFLATE format of RFC 1951 (stored blocks, fixed Huffman blocks, dynamic
 *     Huffman blocks with their code-length code), decoded one bit at a time from canonical
 *     Huffman codes, so that the code reads like the RFC;
 *   - gunzip: the gzip wrapper of RFC 1952 around it (header with the FEXTRA, FNAME,
 *     FCOMMENT and FHCRC fields, trailer with the CRC-32 and the length mod 2^32, both
 *     checked), several members one after the other as `cat a.gz b.gz` makes them.
 * What is not: no compressor (the PNG writer uses stored blocks), no streaming: the whole
 * compressed input is in memory and the whole output is built in memory.
 *
 * Safety: every read is bounds-checked against the input, every back-reference against the
 * output written so far, the output against a size limit the caller gives. Bad input gets
 * ONE line in err, starting with the kind of problem: "truncated: ...", "bad CRC: ...",
 * "bad block: ...", "bad header: ...", "bad length: ...", "trailing garbage: ...",
 * "too large: ...". Nothing is left allocated on failure.
 */
#ifndef GZ_H
#define GZ_H

#include <stddef.h>

#define GZ_ERR_MAX 160   /* size of the message buffer the functions fill on failure */

/* 1 if the n bytes at p start with the gzip magic 1f 8b, else 0. */
int gz_is_gzip(const unsigned char *p, size_t n);

/* Decompress the gzip file image in (n bytes): *out (*out_n bytes, malloc'ed; free it) is
 * the concatenated contents of its members (never NULL on success). Output beyond max_out
 * bytes is refused (a few kilobytes of DEFLATE can claim gigabytes). Returns 0, or -1
 * with one line in err. */
int gunzip_memory(const unsigned char *in, size_t n, size_t max_out,
                  unsigned char **out, size_t *out_n, char err[GZ_ERR_MAX]);

/* Decompress one raw DEFLATE stream (RFC 1951, no wrapper) at in: *used = bytes of in it
 * took (up to the end of the final block, rounded up to a whole byte); *out is never NULL
 * on success, even for no output. Returns 0, or -1 with one line in err. */
int inflate_memory(const unsigned char *in, size_t n, size_t max_out, size_t *used,
                   unsigned char **out, size_t *out_n, char err[GZ_ERR_MAX]);

#endif
