/*
 * base64.c: one strict base64 decoder for every caller (Basic credentials,
 * JWS segments, JWK members), and the encoder that writes the one spelling
 * it accepts (tests and fuzz targets build tokens and headers with it).
 *
 * Written by hand rather than with OpenSSL's EVP_DecodeBlock because the
 * common decoders accept whitespace, missing or extra padding and non-zero
 * trailing bits. Each of those gives one byte string several spellings,
 * and a token or credential cache keyed by the text would then hold several
 * entries for one secret. So this decoder accepts exactly one spelling per
 * byte string and the alphabet and padding rule are the caller's choice.
 */
#include "core/base64.h"

#include <stdint.h>

static int digit_value(unsigned char c, bool url_alphabet)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url_alphabet ? '-' : '+'))
        return 62;
    if (c == (url_alphabet ? '_' : '/'))
        return 63;
    return -1;
}

bool sy_base64_decode(sy_slice_t in, bool url_alphabet, bool require_padding, unsigned char *out,
                      size_t cap, size_t *out_len)
{
    size_t data = in.len;
    if (require_padding) {
        if (in.len % 4 != 0)
            return false;
        /* At most two: a third '=' is left in the data and refused there. */
        while (in.len - data < 2 && data > 0 && in.ptr[data - 1] == '=')
            data--;
    }
    /* One character left over holds 6 bits, not a byte: no encoder makes it. */
    if (data % 4 == 1)
        return false;
    size_t need = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
    if (need > cap)
        return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < data; i++) {
        int v = digit_value((unsigned char)in.ptr[i], url_alphabet);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, or two spellings decode alike. */
    if (acc != 0)
        return false;
    *out_len = n;
    return true;
}

size_t sy_base64_encode(const unsigned char *in, size_t len, bool url_alphabet, bool pad, char *out)
{
    const char *digits = url_alphabet
                             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = digits[(v >> 18) & 63];
        out[o++] = digits[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = digits[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (i + 2 < len)
            out[o++] = digits[v & 63];
        else if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}
