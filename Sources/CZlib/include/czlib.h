/* Raw deflate and inflate through zlib with a preset dictionary, in one call each: zlib's init
 * functions are macros Swift cannot call, and a session is small enough to go through in one step. */
#ifndef CZLIB_H
#define CZLIB_H

#include <stddef.h>
#include <stdint.h>

/* Compresses `in` into `out` (level 9, raw deflate, no header: the sealed value already says what it
 * is). Returns the compressed length, or 0 when it did not fit in `out_cap` or zlib failed. */
size_t czlib_deflate(const uint8_t *in, size_t in_len, const uint8_t *dict, size_t dict_len,
                     uint8_t *out, size_t out_cap);

/* Decompresses `in` into `out`. Returns the length, or -1 when the input is not a complete deflate
 * stream made with that dictionary, or when it would expand past `out_cap` (a bound on what a value
 * may expand to, so a crafted stream cannot make us allocate without end). */
long czlib_inflate(const uint8_t *in, size_t in_len, const uint8_t *dict, size_t dict_len,
                   uint8_t *out, size_t out_cap);

#endif
