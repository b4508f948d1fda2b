#include "czlib.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

/* The smallest raw window (2^9 to 2^15 bytes) that holds the dictionary and the input: every match
 * the full 32 KiB window would find is still in reach, and zlib allocates (and partly clears) four
 * times the window instead of 160 KiB for every session sealed. Raw inflate with a 32 KiB window reads
 * streams made with any smaller one. */
static int window_bits_for(size_t total)
{
    int bits = 9;

    while (bits < 15 && ((size_t)1 << bits) < total) {
        ++bits;
    }
    return bits;
}

size_t czlib_deflate(const uint8_t *in, size_t in_len, const uint8_t *dict, size_t dict_len,
                     uint8_t *out, size_t out_cap)
{
    z_stream z;
    size_t produced = 0;
    int bits = window_bits_for(in_len + dict_len);
    /* The hash table in step with the window (6 at the full window, as before). */
    int mem_level = bits - 8 < 1 ? 1 : bits - 8 > 6 ? 6 : bits - 8;

    if (in_len > UINT_MAX || out_cap > UINT_MAX || dict_len > UINT_MAX) {
        return 0;
    }
    memset(&z, 0, sizeof(z));
    /* Negative bits: raw deflate. memLevel at most 6, not 9: deflateInit clears a hash table of
     * 2^(memLevel+8) bytes, 128 KiB at 9, which cost more than compressing a session's token (about
     * 130,000 instructions of a login's 1.5 million). On ID tokens of 0.3 to 14 KB the output is byte
     * for byte the same as with a 32 KiB window and memLevel 6 (and as long as at 9). Level 9 is kept:
     * 6 gives about 2 % more on large tokens. */
    if (deflateInit2(&z, 9, Z_DEFLATED, -bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
        return 0;
    }
    if (dict_len > 0 && deflateSetDictionary(&z, dict, (uInt)dict_len) != Z_OK) {
        deflateEnd(&z);
        return 0;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_cap;
    if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
        produced = out_cap - z.avail_out;
    }
    deflateEnd(&z);
    return produced;
}

long czlib_inflate(const uint8_t *in, size_t in_len, const uint8_t *dict, size_t dict_len,
                   uint8_t *out, size_t out_cap)
{
    z_stream z;
    long produced = -1;
    int rc;

    if (in_len > UINT_MAX || out_cap > UINT_MAX || out_cap > LONG_MAX || dict_len > UINT_MAX) {
        return -1;
    }
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK) {
        return -1;
    }
    /* A raw stream asks for no dictionary: it is set before the first byte. */
    if (dict_len > 0 && inflateSetDictionary(&z, dict, (uInt)dict_len) != Z_OK) {
        inflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_cap;
    rc = inflate(&z, Z_FINISH);
    /* Only a stream that ends exactly at the end of the input: trailing bytes mean it is not ours. */
    if (rc == Z_STREAM_END && z.avail_in == 0) {
        produced = (long)(out_cap - z.avail_out);
    }
    else if (rc == Z_BUF_ERROR && z.avail_out == 0) {
        produced = CZLIB_OUTPUT_FULL;
    }
    inflateEnd(&z);
    return produced;
}
