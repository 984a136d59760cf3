// sources: src/aws/credentials.c src/aws/http.c src/aws/sigv4.c src/core/common.c src/core/log.c
// covers: src/aws/credentials.c
// functions: parse|ini_get|config_get|creds_set
/*
 * fuzz_aws_credentials.c: libFuzzer target for the formats the AWS
 * credential chain reads: the shared credentials/config INI files (written
 * by hand, by `aws configure` and by SSO tools, so anything goes), the
 * container/IMDS credentials JSON, STS's XML answer and RFC 3339 times.
 * Nothing here touches the network or the environment.
 *
 * The first byte picks what the rest is:
 *   0: credentials text NUL config text NUL profile name (missing parts are
 *      NULL texts / "default"), read as the shared files, and the INI
 *      getter asked for every section header and key spelled in the text;
 *   1: credentials JSON; 2: STS XML; 3: a time.
 * Besides crashes and sanitizer reports it checks promises: an INI value
 * has no surrounding blanks and no line break; credentials that parse have
 * a non-empty key id and secret; a parsed time is never 0.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v)
{
    if (!v)
        return;
    size_t n = strlen(v);
    if (strchr(v, '\n') ||
        (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))))
        abort();
}

static void check_creds(bool ok, sy_aws_credentials_t *c)
{
    if (ok && (!c->access_key_id || !*c->access_key_id || !c->secret_access_key ||
               !*c->secret_access_key))
        abort();
    if (!ok && (c->access_key_id || c->secret_access_key || c->session_token))
        abort(); /* a failed parse must not hand out half a credential */
    sy_aws_credentials_free(c);
}

/* Asks the getter for each "[...]" header of text, with the keys the chain
 * reads and with each key spelled before a '=' on the following lines. */
static void probe_sections(const char *text)
{
    static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key",
                                       "aws_session_token", "region", ""};
    const char *p = text;
    int sections = 0;
    while ((p = strchr(p, '[')) && sections++ < 8) {
        const char *close = strpbrk(p + 1, "]\n");
        if (!close || *close != ']') {
            p++;
            continue;
        }
        char section[128];
        size_t n = (size_t)(close - (p + 1));
        if (n >= sizeof section)
            n = sizeof section - 1;
        memcpy(section, p + 1, n);
        section[n] = '\0';
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char *v = sy_aws_ini_get(text, section, keys[i]);
            check_value(v);
            free(v);
        }
        const char *eq = strchr(close, '=');
        if (eq) {
            const char *ks = eq;
            while (ks > close + 1 && ks[-1] != '\n')
                ks--;
            char key[64];
            size_t kn = (size_t)(eq - ks);
            if (kn >= sizeof key)
                kn = sizeof key - 1;
            memcpy(key, ks, kn);
            key[kn] = '\0';
            char *v = sy_aws_ini_get(text, section, key);
            check_value(v);
            free(v);
        }
        p = close;
    }
}

static void fuzz_shared_files(const char *text, size_t len)
{
    const char *creds = text;
    const char *config = NULL, *profile = "default";
    size_t first = strlen(creds);
    if (first < len) {
        config = text + first + 1;
        size_t second = strlen(config);
        if (first + 1 + second < len && text[first + 1 + second + 1])
            profile = config + second + 1;
    }
    sy_aws_credentials_t c;
    sy_error_t err = {{0}};
    check_creds(sy_aws_parse_shared_files(creds, config, profile, &c, &err), &c);
    probe_sections(creds);
    if (config)
        probe_sections(config);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    /* A NUL-terminated copy, with one more NUL so the "text NUL text NUL
     * profile" split never reads past the end. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    text[size] = '\0';
    size_t len = size - 1;
    sy_aws_credentials_t c;
    sy_error_t err = {{0}};
    time_t exp = 0;
    switch (data[0] % 4) {
    case 0:
        fuzz_shared_files(text, len);
        break;
    case 1:
        check_creds(sy_aws_parse_credentials_json(text, len, &c, &exp, &err), &c);
        break;
    case 2: {
        bool ok = sy_aws_parse_sts_xml(text, len, &c, &exp, &err);
        if (ok && exp == 0)
            abort();
        check_creds(ok, &c);
        break;
    }
    case 3:
        (void)sy_aws_parse_time(text);
        break;
    }
    free(text);
    return 0;
}
