// sources: src/http/parser.c src/http/headers.c src/core/common.c
// covers: src/http/parser.c
// functions: chunked|hex_value|is_ows|is_class
/*
 * fuzz_chunked.c: libFuzzer target for the chunked-body decoder. The input
 * is decoded three ways: whole, split at a fuzz-chosen point, and one byte
 * at a time. All three must yield the same body bytes, the same verdict,
 * the same reason and the same number of consumed bytes; every data slice
 * must lie inside the piece it was decoded from; a failed or finished
 * decoder must keep its verdict. The whole input is the body (the seeds are
 * plain chunked bodies); the split point is a checksum of the input, so the
 * fuzzer moves it by mutating; trailer limits of 1024 and 8 are both tried.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parser.h"

typedef struct {
    sy_chunked_result_t result;
    sy_http_reject_t reject;
    size_t consumed;
    size_t out_len;
    char *out;
} outcome_t;

static void decode(const char *in, size_t len, size_t step, size_t split, size_t max_trailer,
                   outcome_t *o)
{
    sy_http_chunked_t dec;
    sy_http_chunked_init(&dec, max_trailer);
    o->result = SY_CHUNKED_NEED_MORE;
    o->reject = SY_REJECT_NONE;
    o->out_len = 0;
    size_t start = 0;
    while (start < len || start == 0) {
        size_t end = step ? start + step : (start < split ? split : len);
        if (end > len)
            end = len;
        size_t off = start;
        for (;;) {
            size_t consumed;
            sy_slice_t data;
            sy_http_reject_t rej;
            sy_chunked_result_t r =
                sy_http_chunked_decode(&dec, in + off, end - off, &consumed, &data, &rej);
            if (consumed > end - off)
                abort();
            off += consumed;
            o->consumed = off;
            if (r == SY_CHUNKED_DATA) {
                if (data.len == 0 || data.ptr < in + start || data.ptr + data.len > in + end)
                    abort();
                memcpy(o->out + o->out_len, data.ptr, data.len);
                o->out_len += data.len;
                continue;
            }
            if (data.len != 0)
                abort();
            if (r == SY_CHUNKED_NEED_MORE) {
                if (off != end || rej != SY_REJECT_NONE)
                    abort();
                break;
            }
            if ((r == SY_CHUNKED_ERROR) != (rej != SY_REJECT_NONE))
                abort();
            o->result = r;
            o->reject = rej;
            sy_http_reject_t again;
            if (sy_http_chunked_decode(&dec, "0\r\n\r\n", 5, &consumed, &data, &again) != r ||
                again != rej || consumed != 0)
                abort();
            return;
        }
        if (end == len)
            break;
        start = end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size;
    size_t sum = 0;
    for (size_t i = 0; i < size; i++)
        sum = sum * 31 + data[i];
    size_t split = sum % (len + 1);
    char *in = malloc(len ? len : 1);
    char *bufs[3] = {malloc(len + 1), malloc(len + 1), malloc(len + 1)};
    if (!in || !bufs[0] || !bufs[1] || !bufs[2])
        abort();
    memcpy(in, data, len);

    static const size_t trailer_limits[2] = {1024, 8};
    for (int t = 0; t < 2; t++) {
        outcome_t o[3] = {{.out = bufs[0]}, {.out = bufs[1]}, {.out = bufs[2]}};
        decode(in, len, 0, len, trailer_limits[t], &o[0]);
        decode(in, len, 0, split, trailer_limits[t], &o[1]);
        decode(in, len, 1, 0, trailer_limits[t], &o[2]);
        for (int i = 1; i < 3; i++)
            if (o[i].result != o[0].result || o[i].reject != o[0].reject ||
                o[i].consumed != o[0].consumed || o[i].out_len != o[0].out_len ||
                memcmp(o[i].out, o[0].out, o[0].out_len) != 0)
                abort();
        if (o[0].out_len > len)
            abort();
    }
    free(in);
    for (int i = 0; i < 3; i++)
        free(bufs[i]);
    return 0;
}
