/*
 * dechunk.c: in-place chunked decoding over the stateful chunk decoder of
 * parser.h (see dechunk.h).
 */
#include "http/dechunk.h"

#include <string.h>

ssize_t sy_http_dechunk_in_place(sy_http_chunked_t *dec, char *buf, size_t from, size_t *end,
                                 bool *done, sy_http_reject_t *reject)
{
    size_t w = from, r = from;
    while (r < *end) {
        size_t used = 0;
        sy_slice_t data = {0};
        sy_chunked_result_t res =
            sy_http_chunked_decode(dec, buf + r, *end - r, &used, &data, reject);
        if (res == SY_CHUNKED_ERROR)
            return -1;
        if (res == SY_CHUNKED_DATA) {
            memmove(buf + w, data.ptr, data.len);
            w += data.len;
        }
        r += used;
        if (res == SY_CHUNKED_DONE) {
            *done = true;
            break;
        }
        if (res == SY_CHUNKED_NEED_MORE)
            break;
    }
    memmove(buf + w, buf + r, *end - r);
    *end -= r - w;
    return (ssize_t)(w - from);
}
