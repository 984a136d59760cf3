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
                                       "AWS_DEFAULT_REGION"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", "/nonexistent-home", 1);
    sy_aws_credentials_reset();
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

    /* Environment comes first; the cached answer stays until reset. */
    setenv("AWS_ACCESS_KEY_ID", "AENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SENV", 1);
    assert_true(sy_aws_credentials_get(&c, source, &err));
    assert_string_equal(c.access_key_id, "AFILE");
    sy_aws_credentials_free(&c);
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
    sy_aws_region(r, sizeof r);
    assert_string_equal(r, "us-east-1");
    setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
    sy_aws_region(r, sizeof r);
    assert_string_equal(r, "eu-central-1");
    setenv("AWS_REGION", "ap-south-1", 1);
    sy_aws_region(r, sizeof r);
    assert_string_equal(r, "ap-south-1");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_shared_files),
        cmocka_unit_test(test_container_json),
        cmocka_unit_test(test_sts_xml),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_chain_environment_and_files),
        cmocka_unit_test(test_region),
        cmocka_unit_test(test_endpoint_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
