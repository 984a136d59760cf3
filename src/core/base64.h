/*
 * base64.h: strict base64 and base64url decoding (RFC 4648 §4 and §5), and
 * the matching encoder.
 * Thread: any. Pointers: nothing is kept; out belongs to the caller.
 */
#ifndef SY_BASE64_H
#define SY_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

/* Decodes in into out, refusing every spelling but the canonical one:
 * only the chosen alphabet (A-Z a-z 0-9 and + / or, for url_alphabet,
 * - _), no whitespace, and the unused bits of the last character zero.
 * With require_padding the length is a multiple of 4 and the text ends in
 * the "=" or "==" RFC 4648 §3.2 calls for; without it "=" is refused
 * anywhere (JOSE's unpadded base64url). Empty text decodes to zero bytes.
 * false when malformed or when the result would exceed cap (nothing past
 * cap is written); *out_len is set only on success. */
bool sy_base64_decode(sy_slice_t in, bool url_alphabet, bool require_padding, unsigned char *out,
                      size_t cap, size_t *out_len);

/* Encodes len bytes into out, which holds 4 * ((len + 2) / 3) + 1 bytes,
 * and NUL-terminates it. With pad the text ends in the "=" or "==" RFC 4648
 * §3.2 calls for; without, those are left off (JOSE). Returns the length
 * written, without the NUL. Whatever it writes, sy_base64_decode reads
 * back with the same choices. */
size_t sy_base64_encode(const unsigned char *in, size_t len, bool url_alphabet, bool pad,
                        char *out);

#endif
