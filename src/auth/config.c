/*
 * config.c: one typed parser per auth policy type. The policy loader
 * (src/policy/policy.c) hands each auth_policies entry here and gets back
 * a finished, immutable sy_auth_config_t: every field validated, defaults
 * applied, Basic users and JWT keys built. Nothing else reads an auth
 * policy's JSON, so a rule or a default lives in exactly one place.
 *
 * Parsing does no network I/O and starts no thread: a jwks_uri is only
 * recorded here, and its fetcher source is registered by sy_auth_activate
 * when a snapshot holding the policy is published. `switchyard check`, the
 * routes CLI and the fuzzers parse policies without ever touching the
 * network. (A ca_file is checked to be a readable file, as for
 * destinations: a typo must fail the load, not the first fetch.)
 *
 * Messages name the field under the caller's `where` prefix, e.g.
 * "auth_policies.users.algorithms[1]: duplicate algorithm RS256".
 */
#include "auth/config.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "core/log.h"
#include "core/redact.h"
#include "http/headers.h"

#define WHERE_MAX SY_WHERE_MAX

static _Atomic uint64_t next_config_id = 1;

static bool fail(sy_error_t *err, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(sy_error_t *err, const char *where, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sy_error_set(err, "%s: %s", where, msg);
    return false;
}

static bool check_known(const json_t *obj, const char *where, const char *const known[],
                        sy_error_t *err)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        if (!ok) {
            char list[256] = "", w[WHERE_MAX];
            size_t used = 0;
            for (size_t i = 0; known[i] && used < sizeof list; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                         known[i]);
            return fail(err, sy_where_key(w, where, key), "unknown field (expected one of: %s)",
                        list);
        }
    }
    return true;
}

static bool get_string(const json_t *obj, const char *where, const char *key, bool required,
                       const char **out, sy_error_t *err)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return !required || fail(err, sy_where_key(w, where, key), "required field is missing");
    if (!json_is_string(v))
        return fail(err, sy_where_key(w, where, key), "expected a string");
    *out = json_string_value(v);
    return true;
}

static bool get_object(const json_t *obj, const char *where, const char *key, bool required,
                       json_t **out, sy_error_t *err)
{
    char w[WHERE_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return !required || fail(err, sy_where_key(w, where, key), "required field is missing");
    if (!json_is_object(v))
        return fail(err, sy_where_key(w, where, key), "expected an object");
    *out = v;
    return true;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_token(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!is_alnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool oom(sy_error_t *err)
{
    sy_error_set(err, "out of memory");
    return false;
}

/* ---- basic ---- */

static bool parse_basic(sy_auth_config_t *c, const char *name, const json_t *obj, const char *where,
                        sy_error_t *err)
{
    static const char *const known[] = {"type", "realm", "users", NULL};
    char w[WHERE_MAX], uw[WHERE_MAX];
    const char *s;
    json_t *users;
    if (!check_known(obj, where, known, err) || !get_string(obj, where, "realm", false, &s, err))
        return false;
    if (s) {
        /* The realm goes inside a quoted-string of WWW-Authenticate. */
        size_t n = strlen(s);
        bool ok = n >= 1 && n <= 100;
        for (size_t i = 0; i < n && ok; i++)
            ok = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\';
        if (!ok)
            return fail(err, sy_where_key(w, where, "realm"),
                        "expected 1-100 printable ASCII characters without '\"' or '\\'");
    }
    if (!(c->realm = strdup(s ? s : name)))
        return oom(err);
    snprintf(c->challenge, sizeof c->challenge, "Basic realm=\"%.100s\"", c->realm);
    c->challenge_len = strlen(c->challenge);
    if (!get_object(obj, where, "users", true, &users, err))
        return false;
    sy_where_key(uw, where, "users");
    const char *user;
    json_t *hash;
    json_object_foreach(users, user, hash)
    {
        bool ok = user[0] != '\0' && strlen(user) <= 128;
        for (const char *u = user; *u && ok; u++)
            ok = (unsigned char)*u >= 0x20 && *u != 0x7f && *u != ':';
        if (!ok)
            return fail(err, sy_where_key(w, uw, user),
                        "user names are 1-128 characters without ':' or control characters");
        if (!json_is_string(hash))
            return fail(err, sy_where_key(w, uw, user), "expected a crypt hash string");
    }
    /* Hash shapes and cost ceilings: basic.c's rule, with its messages. */
    sy_error_t berr;
    if (!(c->users = sy_basic_users_build(name, users, &berr))) {
        sy_error_set(err, "%s.%s", where, berr.message); /* "users.alice: ..." */
        return false;
    }
    return true;
}

/* ---- jwt ---- */

static const char *const jwt_algorithms[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                             "PS512", "ES256", "ES384", "ES512", "EdDSA",
                                             "HS256", "HS384", "HS512", NULL};

/* Decoded length of base64 or base64url text (padding optional), or -1. */
static long base64_decoded_len(const char *s)
{
    size_t n = strlen(s), data = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '=')
            pad++;
        else if (pad || !(is_alnum(ch) || ch == '+' || ch == '/' || ch == '-' || ch == '_'))
            return -1;
        else
            data++;
    }
    if (pad > 2 || data % 4 == 1 || (pad && (data + pad) % 4 != 0))
        return -1;
    return (long)(data * 6 / 8);
}

/* hs_secret_base64: base64 or base64url, padding optional. */
static unsigned char *decode_secret(const char *text, size_t *len)
{
    size_t n = strlen(text);
    char *url = malloc(n + 1);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    size_t m = 0;
    bool ok = url && out;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = text[i];
        if (ch == '=')
            break;
        url[m++] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    ok = ok && sy_base64url_decode(sy_slice(url, m), out, n / 4 * 3 + 3, len);
    free(url);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

static bool jwks_uri_ok(const char *s)
{
    sy_url_parts_t url;
    if (!sy_url_split(sy_slice_cstr(s), &url) || !url.https)
        return false;
    char *host = sy_host_normalise(url.host, SY_HOST_IP);
    bool ok = host != NULL && !memchr(url.rest.ptr, '#', url.rest.len);
    free(host);
    return ok;
}

static bool readable_file(const char *where, const char *path, sy_error_t *err)
{
    struct stat st;
    char buf[128];
    if (!path[0])
        return fail(err, where, "expected a file path");
    if (stat(path, &st) != 0 || access(path, R_OK) != 0)
        return fail(err, where, "cannot read %.200s: %s", path, strerror_r(errno, buf, sizeof buf));
    if (!S_ISREG(st.st_mode))
        return fail(err, where, "%.200s is not a regular file", path);
    return true;
}

static bool parse_algorithms(sy_auth_config_t *c, const json_t *obj, const char *where,
                             const char *secret, long secret_len, sy_error_t *err)
{
    char w[WHERE_MAX], iw[WHERE_MAX];
    /* Algorithms are pinned per key source: an HMAC algorithm next to a
     * public key set is the classic confusion attack (the public key used
     * as an HMAC secret). */
    sy_where_key(w, where, "algorithms");
    json_t *v = json_object_get(obj, "algorithms");
    if (!v)
        return fail(err, w, "required field is missing");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(err, w, "expected a non-empty array of algorithm names");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *name = json_string_value(json_array_get(v, i));
        size_t k;
        sy_where_index(iw, w, i);
        for (k = 0; name && jwt_algorithms[k] && strcmp(name, jwt_algorithms[k]) != 0; k++)
            ;
        sy_jwt_alg_t alg;
        if (!name || !jwt_algorithms[k] || !sy_jwt_alg_parse(sy_slice(name, strlen(name)), &alg))
            return fail(err, iw,
                        "expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, "
                        "ES384, ES512, EdDSA, HS256, HS384, HS512 (\"none\" is never "
                        "accepted)");
        if (c->algs & SY_JWT_ALG_BIT(alg))
            return fail(err, iw, "duplicate algorithm %s", name);
        c->algs |= SY_JWT_ALG_BIT(alg);
        bool hmac = name[0] == 'H';
        if (hmac && !secret)
            return fail(err, iw, "%s needs hs_secret_base64 (HMAC algorithms never use a JWK set)",
                        name);
        if (!hmac && secret)
            return fail(err, iw, "%s needs jwks_uri or jwks, not hs_secret_base64", name);
        long need = atol(name + 2) / 8; /* RFC 7518 §3.2: key at least the hash size */
        if (hmac && secret_len < need)
            return fail(err, sy_where_key(iw, where, "hs_secret_base64"),
                        "%s needs a secret of at least %ld bytes (RFC 7518 §3.2); this one has "
                        "%ld",
                        name, need, secret_len);
    }
    return true;
}

static bool parse_claim_rules(sy_auth_config_t *c, const json_t *obj, const char *where,
                              sy_error_t *err)
{
    char w[WHERE_MAX], iw[WHERE_MAX];
    json_t *claims, *v;
    const char *claim;
    if (!get_object(obj, where, "required_claims", false, &claims, err))
        return false;
    if (claims) {
        sy_where_key(w, where, "required_claims");
        json_object_foreach(claims, claim, v)
        {
            if (!claim[0])
                return fail(err, w, "claim names must not be empty");
            if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v))
                return fail(err, sy_where_key(iw, w, claim),
                            "expected a string, integer or boolean");
        }
        if (!(c->required_claims = json_deep_copy(claims)))
            return oom(err);
    }

    if (!get_object(obj, where, "forward_claims", false, &claims, err))
        return false;
    if (!claims)
        return true;
    sy_where_key(w, where, "forward_claims");
    json_object_foreach(claims, claim, v)
    {
        sy_where_key(iw, w, claim);
        if (!claim[0])
            return fail(err, w, "claim names must not be empty");
        const char *header = json_string_value(v);
        if (!header || !is_token(header))
            return fail(err, iw, "expected a header name");
        /* Claims must never choose framing, routing or the headers
         * switchyard itself vouches for upstream. */
        if (sy_header_lookup(sy_slice_cstr(header)) != SY_HDR_OTHER)
            return fail(err, iw, "header %s is set by switchyard and can't carry a claim", header);
        for (size_t k = 0; k < c->forward_count; k++)
            if (sy_slice_eq_nocase(c->forward_header[k], sy_slice_cstr(header)))
                return fail(err, iw, "header %s is already set from claim %s", header,
                            c->forward_claim[k]);
        if (c->forward_count == SY_AUTH_MAX_FORWARD)
            return fail(err, w, "at most %d claims", SY_AUTH_MAX_FORWARD);
        size_t k = c->forward_count++;
        char *h = strdup(header);
        c->forward_claim[k] = strdup(claim);
        c->forward_claim_len[k] = strlen(claim);
        c->forward_header[k] = sy_slice(h, h ? strlen(h) : 0);
        if (!c->forward_claim[k] || !h)
            return oom(err);
    }
    return true;
}

static bool parse_jwt(sy_auth_config_t *c, const json_t *obj, const char *where, sy_error_t *err)
{
    static const char *const known[] = {"type",
                                        "issuer",
                                        "audiences",
                                        "jwks_uri",
                                        "jwks",
                                        "hs_secret_base64",
                                        "algorithms",
                                        "clock_skew_seconds",
                                        "required_claims",
                                        "forward_claims",
                                        "ca_file",
                                        NULL};
    char w[WHERE_MAX], iw[WHERE_MAX];
    const char *s, *jwks_uri, *secret, *ca_file;
    json_t *v, *jwks;
    if (!check_known(obj, where, known, err))
        return false;

    if (!get_string(obj, where, "issuer", true, &s, err))
        return false;
    if (!s[0])
        return fail(err, sy_where_key(w, where, "issuer"), "expected a non-empty string");
    if (!(c->issuer = strdup(s)))
        return oom(err);

    sy_where_key(w, where, "audiences");
    if ((v = json_object_get(obj, "audiences"))) {
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail(err, w, "expected a non-empty array of strings");
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *aud = json_array_get(v, i);
            if (!json_is_string(aud) || json_string_length(aud) == 0)
                return fail(err, sy_where_index(iw, w, i), "expected a non-empty string");
        }
        if (!(c->audiences = json_deep_copy(v)))
            return oom(err);
    }

    if (!get_string(obj, where, "jwks_uri", false, &jwks_uri, err) ||
        !get_object(obj, where, "jwks", false, &jwks, err) ||
        !get_string(obj, where, "hs_secret_base64", false, &secret, err))
        return false;
    if ((jwks_uri != NULL) + (jwks != NULL) + (secret != NULL) != 1)
        return fail(err, where,
                    "exactly one key source is required: jwks_uri, jwks or hs_secret_base64");
    if (jwks_uri && !jwks_uri_ok(jwks_uri)) {
        char shown[104]; /* the error is printed: no credentials in it */
        sy_redact_url(shown, sizeof shown, sy_slice_cstr(jwks_uri));
        return fail(err, sy_where_key(w, where, "jwks_uri"),
                    "expected an https:// URL without userinfo or fragment (got \"%s\")", shown);
    }
    if (jwks) {
        sy_where_key(w, where, "jwks");
        json_t *keys = json_object_get(jwks, "keys");
        if (!json_is_array(keys) || json_array_size(keys) == 0)
            return fail(err, w, "expected a JWK set: {\"keys\": [...]} with at least one key");
        for (size_t i = 0; i < json_array_size(keys); i++) {
            json_t *key = json_array_get(keys, i);
            char kw[WHERE_MAX];
            if (!json_is_object(key) || !json_is_string(json_object_get(key, "kty")))
                return fail(err, sy_where_index(iw, sy_where_key(kw, w, "keys"), i),
                            "expected a JWK object with a \"kty\" string");
        }
    }
    long secret_len = secret ? base64_decoded_len(secret) : 0;
    if (secret && secret_len < 0)
        return fail(err, sy_where_key(w, where, "hs_secret_base64"), "expected base64 text");

    if (!parse_algorithms(c, obj, where, secret, secret_len, err))
        return false;

    v = json_object_get(obj, "clock_skew_seconds");
    c->skew = 60;
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 600)
            return fail(err, sy_where_key(w, where, "clock_skew_seconds"),
                        "expected an integer 0-600");
        c->skew = (long)json_integer_value(v);
    }

    if (!parse_claim_rules(c, obj, where, err))
        return false;

    if (!get_string(obj, where, "ca_file", false, &ca_file, err))
        return false;
    if (ca_file && !readable_file(sy_where_key(w, where, "ca_file"), ca_file, err))
        return false;

    /* The keys, built once here. */
    sy_error_t kerr;
    if (secret) {
        size_t len;
        unsigned char *bytes = decode_secret(secret, &len);
        if (!bytes)
            return fail(err, sy_where_key(w, where, "hs_secret_base64"), "expected base64 text");
        c->static_keys = sy_jwk_set_from_secret(bytes, len, &kerr);
        OPENSSL_cleanse(bytes, len);
        free(bytes);
        if (!c->static_keys)
            return fail(err, sy_where_key(w, where, "hs_secret_base64"), "%s", kerr.message);
    } else if (jwks) {
        c->static_keys = sy_jwk_set_parse(jwks, true, &kerr);
        if (!c->static_keys) {
            /* kerr names the key: "keys[0]: RSA key: ..." */
            sy_error_set(err, "%s.jwks.%s", where, kerr.message);
            return false;
        }
    } else {
        /* Only recorded: the fetcher learns of it at publish time. */
        if (!(c->jwks_uri = strdup(jwks_uri)) || (ca_file && !(c->ca_file = strdup(ca_file))))
            return oom(err);
    }
    if (c->static_keys) {
        /* Every allowed algorithm must have a key that fits it, or the
         * policy silently refuses every token of that kind. */
        for (int a = 0; a < SY_JWT_ALG__COUNT; a++) {
            if (!(c->algs & SY_JWT_ALG_BIT(a)))
                continue;
            bool fits = false;
            for (size_t k = 0; k < c->static_keys->count && !fits; k++)
                fits = sy_jwt_key_fits(&c->static_keys->keys[k], (sy_jwt_alg_t)a);
            if (!fits)
                return fail(err, sy_where_key(w, where, "algorithms"), "no key in %s fits %s",
                            secret ? "hs_secret_base64" : "jwks", sy_jwt_alg_name(a));
        }
    }
    return true;
}

/* ---- entry points ---- */

sy_auth_config_t *sy_auth_config_parse(const char *name, const json_t *obj, const char *where,
                                       sy_error_t *err)
{
    static const char *const bare[] = {"type", NULL};
    char w[WHERE_MAX];
    const char *type;
    if (!json_is_object(obj)) {
        fail(err, where, "expected an object");
        return NULL;
    }
    if (!get_string(obj, where, "type", true, &type, err))
        return NULL;
    sy_auth_config_t *c = calloc(1, sizeof *c);
    if (!c) {
        oom(err);
        return NULL;
    }
    c->id = atomic_fetch_add(&next_config_id, 1);
    bool ok;
    if (strcmp(type, "none") == 0 || strcmp(type, "iam") == 0) {
        c->type = type[0] == 'n' ? SY_AUTH_NONE : SY_AUTH_IAM;
        ok = check_known(obj, where, bare, err);
    } else if (strcmp(type, "basic") == 0) {
        c->type = SY_AUTH_BASIC;
        ok = parse_basic(c, name, obj, where, err);
    } else if (strcmp(type, "jwt") == 0) {
        c->type = SY_AUTH_JWT;
        ok = parse_jwt(c, obj, where, err);
    } else {
        ok = fail(err, sy_where_key(w, where, "type"),
                  "expected \"none\", \"basic\", \"jwt\" or \"iam\" (got \"%.40s\")", type);
    }
    if (!ok) {
        sy_auth_config_free(c);
        return NULL;
    }
    return c;
}

void sy_auth_config_free(sy_auth_config_t *c)
{
    if (!c)
        return;
    free(c->realm);
    sy_basic_users_free(c->users);
    free(c->issuer);
    json_decref(c->audiences);
    json_decref(c->required_claims);
    sy_jwk_set_release(c->static_keys);
    free(c->jwks_uri);
    free(c->ca_file);
    sy_jwks_source_put(atomic_load(&c->jwks_source));
    for (size_t i = 0; i < c->forward_count; i++) {
        free(c->forward_claim[i]);
        free((char *)c->forward_header[i].ptr);
    }
    free(c);
}

sy_auth_type_t sy_auth_config_type(const sy_auth_config_t *c)
{
    return c ? c->type : SY_AUTH_NONE;
}

size_t sy_auth_config_forward_headers(const sy_auth_config_t *c, const sy_slice_t **names)
{
    *names = c && c->type == SY_AUTH_JWT ? c->forward_header : NULL;
    return *names ? c->forward_count : 0;
}

const char *sy_auth_config_realm(const sy_auth_config_t *c)
{
    return c ? c->realm : NULL;
}

json_t *sy_auth_config_describe(const sy_auth_config_t *c)
{
    json_t *obj = json_object();
    if (!c || !obj)
        return obj;
    if (c->type == SY_AUTH_BASIC) {
        json_object_set_new(obj, "realm", json_string(c->realm));
        json_object_set_new(obj, "users", sy_basic_users_names(c->users));
    } else if (c->type == SY_AUTH_JWT) {
        json_object_set_new(obj, "issuer", json_string(c->issuer));
        if (c->audiences)
            json_object_set_new(obj, "audiences", json_deep_copy(c->audiences));
    }
    return obj;
}

void sy_auth_activate(const sy_auth_policy_t *policies, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        sy_auth_config_t *c = policies[i].config;
        if (!c || !c->jwks_uri || atomic_load(&c->jwks_source))
            continue;
        sy_error_t err;
        sy_jwks_source_t *s = sy_jwks_source_get(c->jwks_uri, c->ca_file, &err);
        if (!s) {
            /* Fail closed: tokens for this policy are refused until a later
             * publish registers the source. */
            sy_log(SY_LOG_ERROR, "jwks source not registered", "policy", policies[i].name, "error",
                   err.message, NULL);
            continue;
        }
        atomic_store(&c->jwks_source, s);
    }
}
