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

/* What czlib_inflate returns when the stream is good so far but `out` is full before its end. */
#define CZLIB_OUTPUT_FULL (-2)

/* Decompresses `in` into `out`. Returns the length; CZLIB_OUTPUT_FULL when `out` filled up before the
 * stream ended (the caller may try again with more room, up to its bound on what a value may expand
 * to, so a crafted stream cannot make us allocate without end); -1 when the input is not a complete
 * deflate stream made with that dictionary. */
long czlib_inflate(const uint8_t *in, size_t in_len, const uint8_t *dict, size_t dict_len,
                   uint8_t *out, size_t out_cap);

#endif
