/*
 * test_credentials.c: each credential provider's format (shared INI files,
 * the container endpoint's and IMDS's JSON, STS's XML), the time parser,
 * and the chain's environment provider and cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "aws/http.h"

static void test_ini(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "[default]\n"
                       "aws_access_key_id = AKIDDEFAULT\n"
                       "  aws_secret_access_key=  secret/default+x  \n"
                       "\n"
                       "[dev]\n"
                       "; another comment\n"
                       "aws_access_key_id=AKIDDEV\n"
                       "aws_secret_access_key = dev=secret\n"
                       "aws_session_token = tok\r\n"
                       "[ profile prod ]\n"
                       "region = eu-west-1\n";
    char *v = sy_aws_ini_get(text, "default", "aws_secret_access_key");
    assert_string_equal(v, "secret/default+x");
    free(v);
    v = sy_aws_ini_get(text, "dev", "aws_secret_access_key");
    assert_string_equal(v, "dev=secret"); /* only the first '=' splits */
    free(v);
    v = sy_aws_ini_get(text, "dev", "aws_session_token");
    assert_string_equal(v, "tok");
    free(v);
    v = sy_aws_ini_get(text, "profile prod", "region");
    assert_string_equal(v, "eu-west-1");
    free(v);
    assert_null(sy_aws_ini_get(text, "dev", "region"));
    assert_null(sy_aws_ini_get(text, "nope", "aws_access_key_id"));
    /* A key of another section is not leaked into this one. */
    assert_null(sy_aws_ini_get(text, "profile prod", "aws_access_key_id"));
}

static void test_shared_files(void **state)
{
    (void)state;
    const char *creds = "[default]\naws_access_key_id=A1\naws_secret_access_key=S1\n";
    const char *config = "[default]\nregion=us-west-2\n"
                         "[profile cfgonly]\naws_access_key_id=A2\naws_secret_access_key=S2\n"
                         "aws_session_token=T2\n"
                         "[cfgonly]\naws_access_key_id=WRONG\naws_secret_access_key=WRONG\n";
    sy_aws_credentials_t c;
    sy_error_t err = {{0}};
    assert_true(sy_aws_parse_shared_files(creds, config, "default", &c, &err));
    assert_string_equal(c.access_key_id, "A1");
    assert_string_equal(c.secret_access_key, "S1");
    assert_null(c.session_token);
    sy_aws_credentials_free(&c);
    /* In the config file a profile is "[profile NAME]", never "[NAME]". */
    assert_true(sy_aws_parse_shared_files(NULL, config, "cfgonly", &c, &err));
    assert_string_equal(c.access_key_id, "A2");
    assert_string_equal(c.session_token, "T2");
    sy_aws_credentials_free(&c);
    assert_false(sy_aws_parse_shared_files(creds, config, "missing", &c, &err));
    assert_non_null(strstr(err.message, "missing"));
    const char *half = "[x]\naws_access_key_id=A\n";
    assert_false(sy_aws_parse_shared_files(half, NULL, "x", &c, &err));
}

static void test_container_json(void **state)
{
    (void)state;
    const char *ecs = "{\"RoleArn\":\"arn:aws:iam::1:role/r\",\"AccessKeyId\":\"ASIAX\","
                      "\"SecretAccessKey\":\"sec\",\"Token\":\"tok\","
                      "\"Expiration\":\"2030-01-02T03:04:05Z\"}";
    sy_aws_credentials_t c;
    time_t exp;
    sy_error_t err = {{0}};
    assert_true(sy_aws_parse_credentials_json(ecs, strlen(ecs), &c, &exp, &err));
    assert_string_equal(c.access_key_id, "ASIAX");
    assert_string_equal(c.secret_access_key, "sec");
    assert_string_equal(c.session_token, "tok");
    assert_int_equal(exp, 1893553445);
    sy_aws_credentials_free(&c);

    const char *imds = "{\"Code\":\"Success\",\"LastUpdated\":\"2030-01-01T00:00:00Z\","
                       "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAY\",\"SecretAccessKey\":\"s\","
                       "\"Token\":\"t\",\"Expiration\":\"2030-01-02T03:04:05.123+01:00\"}";
    assert_true(sy_aws_parse_credentials_json(imds, strlen(imds), &c, &exp, &err));
    assert_int_equal(exp, 1893553445 - 3600);
    sy_aws_credentials_free(&c);

    static const char *const bad[] = {
        ("{\"Code\":\"Failure\",\"Message\":\"no role\",\"AccessKeyId\":\"a\","
         "\"SecretAccessKey\":\"s\"}"),
        "{\"AccessKeyId\":\"a\"}",
        "{\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\"}",
        "{\"AccessKeyId\":1,\"SecretAccessKey\":\"s\"}",
        "{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"s\",\"Expiration\":\"tomorrow\"}",
        "{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"s\",\"Token\":5}",
        "[]",
        "{\"AccessKeyId\":\"a\",",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_error_clear(&err);
        assert_false(sy_aws_parse_credentials_json(bad[i], strlen(bad[i]), &c, &exp, &err));
        assert_true(err.message[0] != '\0');
        assert_null(c.access_key_id);
    }
}

static const char sts_ok[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
    "    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn>"
    "<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>FwoG&amp;token</SessionToken>\n"
    "      <SecretAccessKey>wJal/secret</SecretAccessKey>\n"
    "      <Expiration>2030-01-02T03:04:05Z</Expiration>\n"
    "      <AccessKeyId>ASIASTS</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <Audience>sts.amazonaws.com</Audience>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata><RequestId>abc</RequestId></ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

static void test_sts_xml(void **state)
{
    (void)state;
    sy_aws_credentials_t c;
    time_t exp;
    sy_error_t err = {{0}};
    assert_true(sy_aws_parse_sts_xml(sts_ok, strlen(sts_ok), &c, &exp, &err));
    assert_string_equal(c.access_key_id, "ASIASTS");
    assert_string_equal(c.secret_access_key, "wJal/secret");
    assert_string_equal(c.session_token, "FwoG&token");
    assert_int_equal(exp, 1893553445);
    sy_aws_credentials_free(&c);

    const char *error = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                        "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                        "<Message>Couldn't retrieve verification key</Message></Error>"
                        "<RequestId>x</RequestId></ErrorResponse>";
    assert_false(sy_aws_parse_sts_xml(error, strlen(error), &c, &exp, &err));
    assert_string_equal(err.message,
                        "STS: InvalidIdentityToken: Couldn't retrieve verification key");

    /* Strict: a duplicated key, a missing token, markup inside a value. */
    char *dup = malloc(sizeof sts_ok + 64);
    strcpy(dup, sts_ok);
    char *at = strstr(dup, "<AccessKeyId>");
    memmove(at + 31, at, strlen(at) + 1);
    memcpy(at, "<AccessKeyId>EVIL</AccessKeyId>", 31);
    assert_false(sy_aws_parse_sts_xml(dup, strlen(dup), &c, &exp, &err));
    free(dup);
    const char *no_token = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                           "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
                           "</SecretAccessKey><Expiration>2030-01-02T03:04:05Z</Expiration>"
                           "</Credentials></AssumeRoleWithWebIdentityResult>"
                           "</AssumeRoleWithWebIdentityResponse>";
    assert_false(sy_aws_parse_sts_xml(no_token, strlen(no_token), &c, &exp, &err));
    const char *markup = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                         "<Credentials><AccessKeyId>A<b/></AccessKeyId><SecretAccessKey>S"
                         "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>"
                         "2030-01-02T03:04:05Z</Expiration></Credentials>"
                         "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
    assert_false(sy_aws_parse_sts_xml(markup, strlen(markup), &c, &exp, &err));
    assert_null(c.access_key_id);
}

static void test_parse_time(void **state)
{
    (void)state;
    assert_int_equal(sy_aws_parse_time("1970-01-01T00:00:00Z"), 0); /* 0 doubles as error */
    assert_int_equal(sy_aws_parse_time("2015-08-30T12:36:00Z"), 1440938160);
    assert_int_equal(sy_aws_parse_time("2015-08-30T12:36:00.5Z"), 1440938160);
    assert_int_equal(sy_aws_parse_time("2015-08-30T14:36:00+02:00"), 1440938160);
    assert_int_equal(sy_aws_parse_time("2015-08-30T12:36:00"), 0);
    assert_int_equal(sy_aws_parse_time("2015-13-30T12:36:00Z"), 0);
    assert_int_equal(sy_aws_parse_time("2015-08-30 12:36:00Z"), 0);
    assert_int_equal(sy_aws_parse_time("2015-08-30T12:36:00Zjunk"), 0);
}

static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_ROLE_ARN",
                                       "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_STS",
                                       "AWS_ENDPOINT_URL_SSO"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", "/nonexistent-home", 1);
    sy_aws_credentials_reset();
}

/* A refusal drops the cached keys only while they are the refused ones:
 * two calls refused the same keys cause one read of the source. */
static void test_refused_drops_only_those_keys(void **state)
{
    (void)state;
    clear_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIDONE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-one", 1);
    sy_aws_credentials_t c;
    sy_error_t err = {{0}};
    assert_true(sy_aws_credentials_get(&c, NULL, &err));
    assert_string_equal(c.access_key_id, "AKIDONE");
    sy_aws_credentials_free(&c);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTWO", 1);
    assert_false(sy_aws_credentials_refused("AKIDOTHER", "refused"));
    assert_false(sy_aws_credentials_refused(NULL, NULL));
    assert_true(sy_aws_credentials_get(&c, NULL, &err));
    assert_string_equal(c.access_key_id, "AKIDONE"); /* still cached */
    sy_aws_credentials_free(&c);
    assert_true(sy_aws_credentials_refused("AKIDONE", "UnrecognizedClientException"));
    assert_false(sy_aws_credentials_refused("AKIDONE", "UnrecognizedClientException"));
    assert_true(sy_aws_credentials_get(&c, NULL, &err));
    assert_string_equal(c.access_key_id, "AKIDTWO"); /* read again */
    sy_aws_credentials_free(&c);
    /* The second refusal of the old keys came after the new ones were read. */
    assert_false(sy_aws_credentials_refused("AKIDONE", "late"));
    assert_true(sy_aws_credentials_get(&c, NULL, &err));
    assert_string_equal(c.access_key_id, "AKIDTWO");
    sy_aws_credentials_free(&c);
    clear_env();
}

static void test_chain_environment_and_files(void **state)
{
    (void)state;
    clear_env();
    sy_aws_credentials_t c;
    char source[32];
    sy_error_t err = {{0}};
    assert_false(sy_aws_credentials_get(&c, source, &err));
    assert_non_null(strstr(err.message, "none found"));

    /* Shared files, with AWS_PROFILE and AWS_SHARED_CREDENTIALS_FILE. */
    char path[] = "/tmp/sy-creds-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "[ci]\naws_access_key_id=AFILE\naws_secret_access_key=SFILE\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_PROFILE", "ci", 1);
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(source, "shared-files");
    assert_string_equal(c.access_key_id, "AFILE");
    sy_aws_credentials_free(&c);

    /* An explicit AWS_PROFILE wins over environment keys; the cached
     * answer stays until reset. */
    setenv("AWS_ACCESS_KEY_ID", "AENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(c.access_key_id, "AFILE");
    sy_aws_credentials_free(&c);
    sy_aws_credentials_reset();
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(source, "shared-files");
    assert_string_equal(c.access_key_id, "AFILE");
    sy_aws_credentials_free(&c);
    /* Without AWS_PROFILE the environment comes first. */
    unsetenv("AWS_PROFILE");
    sy_aws_credentials_reset();
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(source, "environment");
    assert_string_equal(c.access_key_id, "AENV");
    assert_null(c.session_token);
    sy_aws_credentials_free(&c);

    /* A named profile that doesn't exist is an error, not a fall-through. */
    clear_env();
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    setenv("AWS_PROFILE", "nope", 1);
    assert_false(sy_aws_credentials_get(&c, source, &err));
    assert_non_null(strstr(err.message, "nope"));
    unlink(path);

    /* A full container URI in clear text to a non-local host is refused. */
    clear_env();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example.com/creds", 1);
    assert_false(sy_aws_credentials_get(&c, source, &err));
    assert_non_null(strstr(err.message, "https"));
    clear_env();
}

static void test_region(void **state)
{
    (void)state;
    clear_env();
    char r[64];
    sy_error_t err = {{0}};
    /* Nowhere: an error naming how to set it, never a guess. */
    assert_false(sy_aws_region(r, sizeof r, &err));
    assert_non_null(strstr(err.message, "AWS_REGION"));
    assert_non_null(strstr(err.message, "region ="));
    char path[] = "/tmp/sy-config-XXXXXX";
    write_temp(path, "[default]\nregion = us-west-2\n[profile eu]\nregion=eu-north-1\n"
                     "[profile bad]\nregion = eu-west-1.evil.com/\n");
    setenv("AWS_CONFIG_FILE", path, 1);
    assert_true(sy_aws_region(r, sizeof r, &err));
    assert_string_equal(r, "us-west-2");
    setenv("AWS_PROFILE", "eu", 1);
    assert_true(sy_aws_region(r, sizeof r, &err));
    assert_string_equal(r, "eu-north-1");
    setenv("AWS_PROFILE", "bad", 1);
    assert_false(sy_aws_region(r, sizeof r, &err));
    assert_non_null(strstr(err.message, "not an AWS region"));
    setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
    assert_true(sy_aws_region(r, sizeof r, &err));
    assert_string_equal(r, "eu-central-1");
    setenv("AWS_REGION", "ap-south-1", 1);
    assert_true(sy_aws_region(r, sizeof r, &err));
    assert_string_equal(r, "ap-south-1");
    setenv("AWS_REGION", "x y", 1);
    assert_false(sy_aws_region(r, sizeof r, &err));
    assert_non_null(strstr(err.message, "AWS_REGION"));
    unlink(path);
    clear_env();
}

static void test_endpoint_override(void **state)
{
    (void)state;
    char buf[256];
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
    assert_null(sy_aws_endpoint_override("S3", buf, sizeof buf));
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
    assert_string_equal(sy_aws_endpoint_override("S3", buf, sizeof buf), "http://127.0.0.1:4566");
    setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000", 1);
    assert_string_equal(sy_aws_endpoint_override("S3", buf, sizeof buf), "http://127.0.0.1:9000");
    assert_string_equal(sy_aws_endpoint_override("DYNAMODB", buf, sizeof buf),
                        "http://127.0.0.1:4566");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_S3");
}

/* ---- profiles ---- */

static void plan_fails(const char *ct, const char *ft, const char *profile, const char *needle)
{
    sy_aws_profile_plan_t plan;
    sy_error_t err = {{0}};
    assert_false(sy_aws_profile_plan(ct, ft, profile, &plan, &err));
    if (!strstr(err.message, needle))
        fail_msg("\"%s\" not in: %s", needle, err.message);
}

static void test_profile_plan_roles(void **state)
{
    (void)state;
    const char *creds = "[base]\naws_access_key_id=ABASE\naws_secret_access_key=SBASE\n"
                        "[self]\naws_access_key_id=ASELF\naws_secret_access_key=SSELF\n";
    const char *config = "[profile base]\nregion=eu-west-1\n"
                         "[profile mid]\nrole_arn=arn:aws:iam::1:role/mid\nsource_profile=base\n"
                         "external_id = ext-1\nrole_session_name=mid-session\n"
                         "duration_seconds = 1800\n"
                         "[profile top]\nrole_arn=arn:aws:iam::2:role/top\nsource_profile=mid\n"
                         "[profile self]\nrole_arn=arn:aws:iam::3:role/self\nsource_profile=self\n"
                         "[profile env]\nrole_arn=arn:aws:iam::4:role/env\n"
                         "credential_source=Environment\n"
                         "[profile ecs]\nrole_arn=arn:aws:iam::4:role/ecs\n"
                         "credential_source = EcsContainer\n"
                         "[profile loop-a]\nrole_arn=arn:aws:iam::5:role/a\nsource_profile=loop-b\n"
                         "[profile loop-b]\nrole_arn=arn:aws:iam::5:role/b\nsource_profile=loop-a\n"
                         "[profile self-nokeys]\nrole_arn=arn:aws:iam::5:role/s\n"
                         "source_profile=self-nokeys\n"
                         "[profile both]\nrole_arn=arn:aws:iam::6:role/x\nsource_profile=base\n"
                         "credential_source=Environment\n"
                         "[profile neither]\nrole_arn=arn:aws:iam::6:role/x\n"
                         "[profile weird]\nrole_arn=arn:aws:iam::6:role/x\n"
                         "credential_source=environment\n"
                         "[profile mfa]\nrole_arn=arn:aws:iam::6:role/x\nsource_profile=base\n"
                         "mfa_serial=arn:aws:iam::6:mfa/me\n"
                         "[profile short]\nrole_arn=arn:aws:iam::6:role/x\nsource_profile=base\n"
                         "duration_seconds=60\n"
                         "[profile dangling]\nrole_arn=arn:aws:iam::6:role/x\n"
                         "source_profile=nowhere\n"
                         "[profile empty-src]\nrole_arn=arn:aws:iam::6:role/x\n"
                         "source_profile=regiononly\n"
                         "[profile regiononly]\nregion=eu-west-1\n"
                         "[profile web]\nrole_arn=arn:aws:iam::7:role/web\n"
                         "web_identity_token_file=/var/run/token\nrole_session_name=ci\n"
                         "[profile after-web]\nrole_arn=arn:aws:iam::8:role/next\n"
                         "source_profile=web\n";
    sy_aws_profile_plan_t plan;
    sy_error_t err = {{0}};

    /* Two hops: base's keys assume mid, mid's credentials assume top. */
    assert_true(sy_aws_profile_plan(creds, config, "top", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_STATIC);
    assert_string_equal(plan.source_profile, "base");
    assert_string_equal(plan.creds.access_key_id, "ABASE");
    assert_int_equal(plan.role_count, 2);
    assert_string_equal(plan.roles[0].role_arn, "arn:aws:iam::1:role/mid");
    assert_string_equal(plan.roles[0].external_id, "ext-1");
    assert_string_equal(plan.roles[0].session_name, "mid-session");
    assert_int_equal(plan.roles[0].duration_s, 1800);
    assert_string_equal(plan.roles[1].role_arn, "arn:aws:iam::2:role/top");
    assert_null(plan.roles[1].external_id);
    assert_null(plan.roles[1].session_name);
    assert_int_equal(plan.roles[1].duration_s, 0);
    assert_string_equal(plan.roles[1].profile, "top");
    sy_aws_profile_plan_free(&plan);

    /* A profile may name itself as the source when it holds keys. */
    assert_true(sy_aws_profile_plan(creds, config, "self", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_STATIC);
    assert_string_equal(plan.creds.access_key_id, "ASELF");
    assert_int_equal(plan.role_count, 1);
    sy_aws_profile_plan_free(&plan);

    assert_true(sy_aws_profile_plan(creds, config, "env", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_ENVIRONMENT);
    assert_int_equal(plan.role_count, 1);
    sy_aws_profile_plan_free(&plan);
    assert_true(sy_aws_profile_plan(creds, config, "ecs", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_CONTAINER);
    sy_aws_profile_plan_free(&plan);

    /* Plain keys; nothing at all. */
    assert_true(sy_aws_profile_plan(creds, config, "base", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_STATIC);
    assert_int_equal(plan.role_count, 0);
    sy_aws_profile_plan_free(&plan);
    assert_true(sy_aws_profile_plan(creds, config, "regiononly", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_NONE);
    sy_aws_profile_plan_free(&plan);
    assert_true(sy_aws_profile_plan(creds, config, "absent", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_NONE);

    /* role_arn + web_identity_token_file: that role is assumed with the
     * token; a role on top of it with AssumeRole. */
    assert_true(sy_aws_profile_plan(creds, config, "after-web", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_WEB_IDENTITY);
    assert_string_equal(plan.web_identity_token_file, "/var/run/token");
    assert_int_equal(plan.role_count, 2);
    assert_string_equal(plan.roles[0].role_arn, "arn:aws:iam::7:role/web");
    assert_string_equal(plan.roles[0].session_name, "ci");
    assert_string_equal(plan.roles[1].role_arn, "arn:aws:iam::8:role/next");
    sy_aws_profile_plan_free(&plan);

    plan_fails(creds, config, "loop-a", "loop: loop-a -> loop-b -> loop-a");
    plan_fails(creds, config, "self-nokeys", "loop");
    plan_fails(creds, config, "both",
               "exactly one of source_profile, credential_source and web_identity_token_file");
    plan_fails(creds, config, "neither", "exactly one of");
    plan_fails(creds, config, "weird", "not one of Environment, Ec2InstanceMetadata");
    plan_fails(creds, config, "mfa", "mfa_serial");
    plan_fails(creds, config, "short", "900 to 43200");
    plan_fails(creds, config, "dangling", "\"nowhere\" is in neither file");
    plan_fails(creds, config, "empty-src", "has no credentials");

    /* A chain longer than the limit. */
    char big[8192];
    size_t o = 0;
    for (int i = 0; i < SY_AWS_MAX_ROLE_CHAIN + 2; i++)
        o += (size_t)snprintf(
            big + o, sizeof big - o,
            "[profile p%d]\nrole_arn=arn:aws:iam::1:role/r%d\nsource_profile=p%d\n", i, i, i + 1);
    snprintf(big + o, sizeof big - o,
             "[profile p%d]\naws_access_key_id=A\n"
             "aws_secret_access_key=S\n",
             SY_AWS_MAX_ROLE_CHAIN + 2);
    plan_fails(NULL, big, "p0", "more than");
}

static void test_profile_plan_sso_process(void **state)
{
    (void)state;
    const char *creds = "[proc]\nregion=ignored\n";
    const char *config = "[profile dev]\nsso_session = my-sso\nsso_account_id = 111122223333\n"
                         "sso_role_name = ReadOnly\nregion = eu-west-1\n"
                         "[sso-session my-sso]\nsso_start_url = https://x.awsapps.com/start\n"
                         "sso_region = us-east-1\nsso_registration_scopes = sso:account:access\n"
                         "[profile legacy]\nsso_start_url = https://legacy.awsapps.com/start\n"
                         "sso_region = eu-central-1\nsso_account_id = 444455556666\n"
                         "sso_role_name = Admin\n"
                         "[profile nosession]\nsso_session = gone\nsso_account_id=1\n"
                         "sso_role_name=R\n"
                         "[profile partial]\nsso_session = my-sso\nsso_account_id=1\n"
                         "[profile proc]\ncredential_process = \"/opt/my tools/creds\" --role x\n"
                         "[profile sso-role]\nrole_arn=arn:aws:iam::9:role/deploy\n"
                         "source_profile=dev\n";
    sy_aws_profile_plan_t plan;
    sy_error_t err = {{0}};
    assert_true(sy_aws_profile_plan(creds, config, "dev", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_SSO);
    assert_string_equal(plan.sso_session, "my-sso");
    assert_string_equal(plan.sso_start_url, "https://x.awsapps.com/start");
    assert_string_equal(plan.sso_region, "us-east-1");
    assert_string_equal(plan.sso_account_id, "111122223333");
    assert_string_equal(plan.sso_role_name, "ReadOnly");
    sy_aws_profile_plan_free(&plan);

    assert_true(sy_aws_profile_plan(creds, config, "legacy", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_SSO);
    assert_null(plan.sso_session);
    assert_string_equal(plan.sso_start_url, "https://legacy.awsapps.com/start");
    assert_string_equal(plan.sso_region, "eu-central-1");
    sy_aws_profile_plan_free(&plan);

    /* An SSO profile as the source of a role. */
    assert_true(sy_aws_profile_plan(creds, config, "sso-role", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_SSO);
    assert_string_equal(plan.source_profile, "dev");
    assert_int_equal(plan.role_count, 1);
    sy_aws_profile_plan_free(&plan);

    plan_fails(creds, config, "nosession", "[sso-session gone]");
    plan_fails(creds, config, "partial", "sso_role_name");

    assert_true(sy_aws_profile_plan(creds, config, "proc", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_PROCESS);
    assert_string_equal(plan.process, "\"/opt/my tools/creds\" --role x");
    sy_aws_profile_plan_free(&plan);

    /* The credentials file's value wins key by key. */
    const char *c2 = "[k]\naws_access_key_id=FROMCREDS\naws_secret_access_key=S\n";
    const char *f2 = "[profile k]\naws_access_key_id=FROMCONFIG\naws_secret_access_key=S2\n"
                     "credential_process=/bin/false\n";
    assert_true(sy_aws_profile_plan(c2, f2, "k", &plan, &err));
    assert_int_equal(plan.kind, SY_AWS_SOURCE_STATIC);
    assert_string_equal(plan.creds.access_key_id, "FROMCREDS");
    sy_aws_profile_plan_free(&plan);
}

static void test_split_command(void **state)
{
    (void)state;
    sy_error_t err = {{0}};
    char **argv = sy_aws_split_command("  \"/opt/my tools/creds\" plain \"with space\" "
                                       "'single \"q\"' a\\ b x\"y z\"w  ",
                                       &err);
    assert_non_null(argv);
    assert_string_equal(argv[0], "/opt/my tools/creds");
    assert_string_equal(argv[1], "plain");
    assert_string_equal(argv[2], "with space");
    assert_string_equal(argv[3], "single \"q\"");
    assert_string_equal(argv[4], "a b");
    assert_string_equal(argv[5], "xy zw");
    assert_null(argv[6]);
    sy_aws_argv_free(argv);
    /* No shell: $VAR, ~ and ; are just characters. */
    argv = sy_aws_split_command("/bin/echo $HOME ~ ;", &err);
    assert_string_equal(argv[1], "$HOME");
    assert_string_equal(argv[2], "~");
    assert_string_equal(argv[3], ";");
    sy_aws_argv_free(argv);
    assert_null(sy_aws_split_command("   ", &err));
    assert_non_null(strstr(err.message, "empty"));
    assert_null(sy_aws_split_command("/bin/x \"open", &err));
    assert_non_null(strstr(err.message, "unterminated"));
}

static void test_process_json(void **state)
{
    (void)state;
    sy_aws_credentials_t c;
    time_t exp;
    sy_error_t err = {{0}};
    const char *ok = "{\"Version\": 1, \"AccessKeyId\": \"AP\", \"SecretAccessKey\": \"SP\", "
                     "\"SessionToken\": \"TP\", \"Expiration\": \"2030-01-01T00:00:00Z\"}";
    assert_true(sy_aws_parse_process_json(ok, strlen(ok), &c, &exp, &err));
    assert_string_equal(c.access_key_id, "AP");
    assert_string_equal(c.session_token, "TP");
    assert_int_equal(exp, 1893456000);
    sy_aws_credentials_free(&c);
    const char *lasting = "{\"Version\":1,\"AccessKeyId\":\"AP\",\"SecretAccessKey\":\"SP\"}";
    assert_true(sy_aws_parse_process_json(lasting, strlen(lasting), &c, &exp, &err));
    assert_null(c.session_token);
    assert_int_equal(exp, 0);
    sy_aws_credentials_free(&c);
    const char *v2 = "{\"Version\":2,\"AccessKeyId\":\"AP\",\"SecretAccessKey\":\"SP\"}";
    assert_false(sy_aws_parse_process_json(v2, strlen(v2), &c, &exp, &err));
    assert_non_null(strstr(err.message, "Version"));
    const char *noversion = "{\"AccessKeyId\":\"AP\",\"SecretAccessKey\":\"SP\"}";
    assert_false(sy_aws_parse_process_json(noversion, strlen(noversion), &c, &exp, &err));
    const char *badexp = "{\"Version\":1,\"AccessKeyId\":\"AP\",\"SecretAccessKey\":\"SP\","
                         "\"Expiration\":\"tomorrow\"}";
    assert_false(sy_aws_parse_process_json(badexp, strlen(badexp), &c, &exp, &err));
    assert_non_null(strstr(err.message, "Expiration"));
    const char *nosecret = "{\"Version\":1,\"AccessKeyId\":\"AP\"}";
    assert_false(sy_aws_parse_process_json(nosecret, strlen(nosecret), &c, &exp, &err));
    assert_false(sy_aws_parse_process_json("nope", 4, &c, &exp, &err));
}

static void test_sso_formats(void **state)
{
    (void)state;
    char name[46];
    sy_aws_sso_cache_name("my-sso", name);
    assert_string_equal(name, "0ad374308c5a4e22f723adf10145eafad7c4031c.json");
    sy_aws_sso_cache_name("https://my-sso-portal.awsapps.com/start", name);
    assert_string_equal(name, "c7aaaf71fcc8777ae2475525ed049d39fe16c484.json");

    char *token;
    time_t exp;
    sy_error_t err = {{0}};
    const char *cache = "{\"startUrl\":\"https://x\",\"region\":\"us-east-1\","
                        "\"accessToken\":\"tok-1\",\"expiresAt\":\"2030-01-01T00:00:00Z\","
                        "\"refreshToken\":\"r\"}";
    assert_true(sy_aws_parse_sso_token(cache, strlen(cache), &token, &exp, &err));
    assert_string_equal(token, "tok-1");
    assert_int_equal(exp, 1893456000);
    free(token);
    const char *v1 = "{\"accessToken\":\"tok-2\",\"expiresAt\":\"2030-01-01T00:00:00UTC\"}";
    assert_true(sy_aws_parse_sso_token(v1, strlen(v1), &token, &exp, &err));
    assert_int_equal(exp, 1893456000);
    free(token);
    const char *none = "{\"expiresAt\":\"2030-01-01T00:00:00Z\"}";
    assert_false(sy_aws_parse_sso_token(none, strlen(none), &token, &exp, &err));
    const char *badtime = "{\"accessToken\":\"t\",\"expiresAt\":\"soon\"}";
    assert_false(sy_aws_parse_sso_token(badtime, strlen(badtime), &token, &exp, &err));

    sy_aws_credentials_t c;
    const char *answer = "{\"roleCredentials\":{\"accessKeyId\":\"ASSO\",\"secretAccessKey\":"
                         "\"SSSO\",\"sessionToken\":\"TSSO\",\"expiration\":1893456000000}}";
    assert_true(sy_aws_parse_sso_credentials(answer, strlen(answer), &c, &exp, &err));
    assert_string_equal(c.access_key_id, "ASSO");
    assert_string_equal(c.session_token, "TSSO");
    assert_int_equal(exp, 1893456000);
    sy_aws_credentials_free(&c);
    const char *partial = "{\"roleCredentials\":{\"accessKeyId\":\"ASSO\"}}";
    assert_false(sy_aws_parse_sso_credentials(partial, strlen(partial), &c, &exp, &err));
}

static void test_sts_assume_role_xml(void **state)
{
    (void)state;
    const char *xml = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                      "<AssumeRoleResult><AssumedRoleUser><Arn>a</Arn></AssumedRoleUser>"
                      "<Credentials><AccessKeyId>ASIAROLE</AccessKeyId>"
                      "<SecretAccessKey>s</SecretAccessKey><SessionToken>t&amp;u</SessionToken>"
                      "<Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>"
                      "</AssumeRoleResult></AssumeRoleResponse>";
    sy_aws_credentials_t c;
    time_t exp;
    sy_error_t err = {{0}};
    assert_true(sy_aws_parse_sts_answer(xml, strlen(xml), "AssumeRole", &c, &exp, &err));
    assert_string_equal(c.access_key_id, "ASIAROLE");
    assert_string_equal(c.session_token, "t&u");
    sy_aws_credentials_free(&c);
    /* The web identity reader does not take an AssumeRole answer. */
    assert_false(sy_aws_parse_sts_xml(xml, strlen(xml), &c, &exp, &err));
    assert_non_null(strstr(err.message, "AssumeRoleWithWebIdentityResult"));
}

/* The chain running a credential_process (no shell: the JSON is echo's
 * argument), and its failures. */
static void test_chain_process(void **state)
{
    (void)state;
    clear_env();
    char path[] = "/tmp/sy-config-XXXXXX";
    write_temp(path,
               "[profile ok]\ncredential_process = /bin/echo "
               "\"{\\\"Version\\\": 1, \\\"AccessKeyId\\\": \\\"APROC\\\", "
               "\\\"SecretAccessKey\\\": \\\"SPROC\\\", \\\"SessionToken\\\": \\\"T P\\\"}\"\n"
               "[profile fails]\ncredential_process = /bin/sh -c \"echo denied >&2; exit 3\"\n"
               "[profile huge]\ncredential_process = /usr/bin/head -c 100000 /dev/zero\n"
               "[profile missing]\ncredential_process = /nonexistent/creds-tool\n"
               "[profile garbage]\ncredential_process = /bin/echo not-json\n");
    setenv("AWS_CONFIG_FILE", path, 1);
    sy_aws_credentials_t c;
    char source[32];
    sy_error_t err = {{0}};
    setenv("AWS_PROFILE", "ok", 1);
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(source, "process");
    assert_string_equal(c.access_key_id, "APROC");
    assert_string_equal(c.session_token, "T P");
    sy_aws_credentials_free(&c);
    static const struct {
        const char *profile, *needle;
    } bad[] = {{"fails", "exit status 3: denied"},
               {"huge", "more than"},
               {"missing", "can't run /nonexistent/creds-tool"},
               {"garbage", "not JSON"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sy_aws_credentials_reset();
        setenv("AWS_PROFILE", bad[i].profile, 1);
        assert_false(sy_aws_credentials_get(&c, source, &err));
        if (!strstr(err.message, bad[i].needle))
            fail_msg("%s: \"%s\" not in: %s", bad[i].profile, bad[i].needle, err.message);
    }
    unlink(path);
    clear_env();
}

/* Failures that need no network: an expired SSO token, a missing token
 * file, a role with no region for STS. */
static void test_chain_sso_and_role_errors(void **state)
{
    (void)state;
    clear_env();
    char home[] = "/tmp/sy-home-XXXXXX";
    assert_non_null(mkdtemp(home));
    char dir[256], file[400], config[300];
    snprintf(dir, sizeof dir, "%s/.aws", home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/.aws/sso", home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/.aws/sso/cache", home);
    mkdir(dir, 0700);
    snprintf(config, sizeof config, "%s/.aws/config", home);
    FILE *f = fopen(config, "w");
    fputs("[profile dev]\nsso_session = my-sso\nsso_account_id = 1\nsso_role_name = R\n"
          "[sso-session my-sso]\nsso_start_url = https://x.awsapps.com/start\n"
          "sso_region = us-east-1\n"
          "[profile role]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = keys\n"
          "[profile keys]\naws_access_key_id = A\naws_secret_access_key = S\n",
          f);
    fclose(f);
    setenv("HOME", home, 1);
    setenv("AWS_PROFILE", "dev", 1);
    sy_aws_credentials_t c;
    sy_error_t err = {{0}};
    assert_false(sy_aws_credentials_get(&c, NULL, &err));
    assert_non_null(strstr(err.message, "aws sso login --sso-session my-sso"));
    assert_non_null(strstr(err.message, "missing"));
    char name[46];
    sy_aws_sso_cache_name("my-sso", name);
    snprintf(file, sizeof file, "%s/%s", dir, name);
    f = fopen(file, "w");
    fputs("{\"accessToken\":\"t\",\"expiresAt\":\"2020-01-01T00:00:00Z\"}", f);
    fclose(f);
    assert_false(sy_aws_credentials_get(&c, NULL, &err));
    assert_non_null(strstr(err.message, "expired at 2020-01-01T00:00:00Z"));
    assert_non_null(strstr(err.message, "aws sso login"));
    /* AssumeRole with no region anywhere: the region error, no request. */
    setenv("AWS_PROFILE", "role", 1);
    assert_false(sy_aws_credentials_get(&c, NULL, &err));
    assert_non_null(strstr(err.message, "no AWS region"));
    unlink(file);
    unlink(config);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/.aws/sso", home);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/.aws", home);
    rmdir(dir);
    rmdir(home);
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_shared_files),
        cmocka_unit_test(test_container_json),
        cmocka_unit_test(test_sts_xml),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_refused_drops_only_those_keys),
        cmocka_unit_test(test_chain_environment_and_files),
        cmocka_unit_test(test_region),
        cmocka_unit_test(test_endpoint_override),
        cmocka_unit_test(test_profile_plan_roles),
        cmocka_unit_test(test_profile_plan_sso_process),
        cmocka_unit_test(test_split_command),
        cmocka_unit_test(test_process_json),
        cmocka_unit_test(test_sso_formats),
        cmocka_unit_test(test_sts_assume_role_xml),
        cmocka_unit_test(test_chain_process),
        cmocka_unit_test(test_chain_sso_and_role_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
