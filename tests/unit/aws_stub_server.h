/*
 * aws_stub_server.h: a one-connection-at-a-time HTTP stub on loopback for
 * the AWS client tests: it records each request and answers from a script.
 * Test-only; header-only so each test binary gets its own copy.
 */
#ifndef SY_TEST_AWS_STUB_SERVER_H
#define SY_TEST_AWS_STUB_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_MAX 16

typedef struct {
    int fd;
    int port;
    pthread_t thread;
    const char *answers[STUB_MAX]; /* full HTTP responses, in order */
    int answer_count;
    char *requests[STUB_MAX]; /* raw requests received */
    int request_count;
} stub_server_t;

static size_t stub_content_length(const char *req)
{
    const char *p = strcasestr(req, "\r\ncontent-length:");
    return p ? strtoul(p + 17, NULL, 10) : 0;
}

static void *stub_run(void *arg)
{
    stub_server_t *s = arg;
    for (int i = 0; i < s->answer_count; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        char *buf = calloc(1, 1 << 20);
        size_t n = 0;
        for (;;) {
            ssize_t got = read(c, buf + n, (1 << 20) - 1 - n);
            if (got <= 0)
                break;
            n += (size_t)got;
            buf[n] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end && n >= (size_t)(end + 4 - buf) + stub_content_length(buf))
                break;
        }
        s->requests[s->request_count++] = buf;
        const char *a = s->answers[i];
        ssize_t w = write(c, a, strlen(a));
        (void)w;
        close(c);
    }
    return NULL;
}

static void stub_start(stub_server_t *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->fd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    listen(s->fd, 8);
    pthread_create(&s->thread, NULL, stub_run, s);
}

static void stub_stop(stub_server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void stub_free(stub_server_t *s)
{
    for (int i = 0; i < s->request_count; i++)
        free(s->requests[i]);
}

#endif
