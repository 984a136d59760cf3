/*
 * credentials.h: the AWS default credential chain (environment, web
 * identity, shared files, ECS container endpoint, EC2 IMDSv2, in the SDKs'
 * order), cached and refreshed before temporary credentials expire; and the
 * region. The parsers are public so each provider's format is unit-tested.
 * Thread: any (the cache is under a mutex); resolving may block on the
 * network, so call it from the control plane only. Pointers: credentials
 * handed out are copies the caller frees with sy_aws_credentials_free.
 */
#ifndef SY_AWS_CREDENTIALS_H
#define SY_AWS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "aws/sigv4.h"
#include "core/common.h"

/* Refresh this long before Expiration. */
#define SY_AWS_CREDENTIALS_REFRESH_S 300

/* The current credentials (a copy), resolving or refreshing them first when
 * needed. source (optional, 32 bytes) names the provider: "environment",
 * "web-identity", "shared-files", "container", "imds". False with err set
 * when no provider has credentials and no unexpired ones are cached. */
bool sy_aws_credentials_get(sy_aws_credentials_t *out, char source[32], sy_error_t *err);

/* Forgets the cached credentials (tests; a 403 that says the token
 * expired). */
void sy_aws_credentials_reset(void);

/* AWS_REGION, AWS_DEFAULT_REGION, the profile's region in the config file,
 * else "us-east-1". Copied into out. */
void sy_aws_region(char *out, size_t cap);

/* ---- provider formats (tests) ---- */

/* Shared files: [profile] in the credentials file (sections "name"), then
 * in the config file (sections "profile name", or "default"). Either text
 * may be NULL. False when neither holds keys for the profile. */
bool sy_aws_parse_shared_files(const char *credentials_text, const char *config_text,
                               const char *profile, sy_aws_credentials_t *out, sy_error_t *err);

/* One key of one INI section (the section header spelled as in the file,
 * e.g. "profile dev"), malloc'd; NULL when absent. Comments (# ;) and
 * blank lines are skipped; keys and values trimmed. */
char *sy_aws_ini_get(const char *text, const char *section, const char *key);

/* The ECS container endpoint's and IMDS's JSON: AccessKeyId,
 * SecretAccessKey, Token, Expiration (RFC 3339); IMDS's "Code" must be
 * "Success" when present. *expiration is 0 when absent. */
bool sy_aws_parse_credentials_json(const char *text, size_t len, sy_aws_credentials_t *out,
                                   time_t *expiration, sy_error_t *err);

/* STS AssumeRoleWithWebIdentity XML answer. An <ErrorResponse> becomes
 * "STS: Code: Message". */
bool sy_aws_parse_sts_xml(const char *text, size_t len, sy_aws_credentials_t *out,
                          time_t *expiration, sy_error_t *err);

/* "2024-05-01T12:00:00Z" (fraction and numeric offset allowed) → UTC
 * seconds; 0 when malformed. */
time_t sy_aws_parse_time(const char *s);

#endif
