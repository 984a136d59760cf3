/*
 * credentials.h: the AWS default credential chain (environment, web
 * identity, shared files, ECS container endpoint, EC2 IMDSv2, in the SDKs'
 * order), cached and refreshed before temporary credentials expire; and the
 * region. A shared-files profile may hold keys, or assume a role (role_arn
 * with source_profile or credential_source, through STS AssumeRole), or
 * use IAM Identity Center (SSO, from the AWS CLI's token cache), or run a
 * credential_process. The parsers and the profile resolution are public so
 * each format is unit-tested.
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
 * "web-identity", "shared-files", "assume-role", "sso", "process",
 * "container", "imds". An explicit AWS_PROFILE skips the environment keys
 * (as the JavaScript v3 and Go v2 SDKs do), so a profile with
 * credential_source = Environment assumes its role. False with err set
 * when no provider has credentials and no unexpired ones are cached. */
bool sy_aws_credentials_get(sy_aws_credentials_t *out, char source[32], sy_error_t *err);

/* Forgets the cached credentials (tests). */
void sy_aws_credentials_reset(void);

/* A service refused the credentials with access key access_key_id
 * (InvalidAccessKeyId, ExpiredToken, UnrecognizedClientException...): the
 * cache is dropped, so the next sy_aws_credentials_get reads the source
 * again, but only while it still holds those keys. Another call that was
 * refused the same keys, or one whose keys were already replaced, causes
 * no second read: the source is asked once per refusal, never in a loop.
 * why (the service's error) goes into the warning logged. True when the
 * cache was dropped. */
bool sy_aws_credentials_refused(const char *access_key_id, const char *why);

/* AWS_REGION, AWS_DEFAULT_REGION, the profile's region in the config file,
 * else the instance's region from EC2 IMDSv2 (unless
 * AWS_EC2_METADATA_DISABLED). Copied into out. With none of them, false
 * with err naming how to set one: requests are never signed for a guessed
 * region. */
bool sy_aws_region(char *out, size_t cap, sy_error_t *err);

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

/* The same for any STS action answering <ACTIONResponse><ACTIONResult>
 * <Credentials> ("AssumeRole", "AssumeRoleWithWebIdentity"). */
bool sy_aws_parse_sts_answer(const char *text, size_t len, const char *action,
                             sy_aws_credentials_t *out, time_t *expiration, sy_error_t *err);

/* ---- profiles (shared config and credentials files) ---- */

/* Longest role chain (source_profile hops) followed. */
#define SY_AWS_MAX_ROLE_CHAIN 8

typedef enum {
    SY_AWS_SOURCE_NONE = 0,    /* the profile holds no credential settings */
    SY_AWS_SOURCE_STATIC,      /* aws_access_key_id / aws_secret_access_key */
    SY_AWS_SOURCE_ENVIRONMENT, /* credential_source = Environment */
    SY_AWS_SOURCE_IMDS,        /* credential_source = Ec2InstanceMetadata */
    SY_AWS_SOURCE_CONTAINER,   /* credential_source = EcsContainer */
    SY_AWS_SOURCE_PROCESS,     /* credential_process */
    SY_AWS_SOURCE_SSO,         /* sso_session, or the legacy sso_start_url */
    /* role_arn + web_identity_token_file: roles[0] is assumed with
     * AssumeRoleWithWebIdentity, the rest with AssumeRole */
    SY_AWS_SOURCE_WEB_IDENTITY,
} sy_aws_source_kind_t;

typedef struct {
    char *role_arn;
    char *session_name; /* NULL: "switchyard-<unix time>" */
    char *external_id;  /* NULL: none sent */
    long duration_s;    /* 0: STS's default (one hour) */
    char profile[128];  /* the profile that names this role */
} sy_aws_role_step_t;

/* How a profile's credentials are obtained: a source, then each role of
 * roles[] assumed in order (roles[0] with the source's credentials, each
 * next one with the previous role's). */
typedef struct {
    sy_aws_source_kind_t kind;
    char source_profile[128];      /* the profile that holds the source */
    sy_aws_credentials_t creds;    /* STATIC */
    char *process;                 /* PROCESS: the command line */
    char *web_identity_token_file; /* WEB_IDENTITY */
    char *sso_start_url, *sso_region, *sso_account_id, *sso_role_name;
    char *sso_session; /* NULL for a legacy SSO profile */
    sy_aws_role_step_t roles[SY_AWS_MAX_ROLE_CHAIN];
    size_t role_count;
} sy_aws_profile_plan_t;

/* Resolves `profile` against both files' texts (either may be NULL); the
 * credentials file's section wins key by key over the config file's. True
 * with kind NONE when the profile holds no credential settings at all.
 * False with err for a profile that can't work: a source_profile loop or
 * missing source, role_arn without exactly one of source_profile,
 * credential_source and web_identity_token_file, an unknown credential_source, mfa_serial (no one
 * to type the code), a bad duration_seconds, incomplete SSO settings. */
bool sy_aws_profile_plan(const char *credentials_text, const char *config_text, const char *profile,
                         sy_aws_profile_plan_t *out, sy_error_t *err);
void sy_aws_profile_plan_free(sy_aws_profile_plan_t *plan);

/* credential_process output, Version 1: {"Version": 1, "AccessKeyId",
 * "SecretAccessKey", "SessionToken"?, "Expiration"?}. */
bool sy_aws_parse_process_json(const char *text, size_t len, sy_aws_credentials_t *out,
                               time_t *expiration, sy_error_t *err);

/* Splits a credential_process command line into argv the way the AWS
 * documentation spells it: words separated by blanks, "double" or 'single'
 * quotes group a word (a path or argument with spaces), a backslash
 * escapes the next character outside single quotes. No shell: no variables,
 * globs, pipes or ~. NULL-terminated, malloc'd; free with
 * sy_aws_argv_free. */
char **sy_aws_split_command(const char *cmd, sy_error_t *err);
void sy_aws_argv_free(char **argv);

/* The AWS CLI's SSO token cache file name for a key (the sso-session name,
 * or the start URL of a legacy profile): hex SHA-1 + ".json". */
void sy_aws_sso_cache_name(const char *key, char out[46]);

/* The token cache JSON: accessToken and expiresAt ("…Z" or the CLI v1's
 * "…UTC"). The token is malloc'd. */
bool sy_aws_parse_sso_token(const char *text, size_t len, char **token, time_t *expires_at,
                            sy_error_t *err);

/* The portal's GetRoleCredentials answer: {"roleCredentials":
 * {"accessKeyId", "secretAccessKey", "sessionToken", "expiration" (ms)}}. */
bool sy_aws_parse_sso_credentials(const char *text, size_t len, sy_aws_credentials_t *out,
                                  time_t *expiration, sy_error_t *err);

/* "2024-05-01T12:00:00Z" (fraction and numeric offset allowed) → UTC
 * seconds; 0 when malformed. */
time_t sy_aws_parse_time(const char *s);

#endif
