/*
 * One connection to Redis: TCP (non-blocking, waited on with poll against a deadline), TLS through
 * OpenSSL, RESP through hiredis (redisFormatCommandArgv writes a command, a redisReader parses the
 * replies). hiredis 0.14, Debian 12's, has no TLS of its own, so it carries no socket here: this file
 * moves the bytes, hiredis says what they mean. SIGPIPE: plain sockets write with MSG_NOSIGNAL; OpenSSL
 * writes with write(2), which httpd's children survive because every MPM ignores SIGPIPE.
 */
#include "idtoken_redis_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

struct idtoken_redis_conn {
    int fd;
    SSL *ssl;
    redisReader *reader;
    int command_timeout_ms;
    char peer[300];
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        long long left = deadline - now_ms();
        int rc;

        if (left <= 0) {
            return 0;
        }
        rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}

static void set_err(char *err, size_t err_len, const char *fmt, const char *a, const char *b)
{
    snprintf(err, err_len, fmt, a ? a : "", b ? b : "");
}

/* The newest OpenSSL error of this thread, and the queue emptied. */
static const char *tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0) {
        snprintf(buf, len, "%s", "the connection was closed during the TLS handshake");
    }
    else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

static int tcp_connect(const idtoken_redis_endpoint *ep, long long deadline, char *err, size_t err_len)
{
    struct addrinfo hints, *found = NULL, *ai;
    char port[16];
    int rc, fd = -1, last_errno = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", ep->port);
    rc = getaddrinfo(ep->host, port, &hints, &found);
    if (rc != 0) {
        set_err(err, err_len, "cannot resolve the name: %s%s", gai_strerror(rc), NULL);
        return -1;
    }
    for (ai = found; ai; ai = ai->ai_next) {
        int one = 1, soerr = 0;
        socklen_t soerr_len = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        if (errno == EINPROGRESS) {
            rc = wait_fd(fd, POLLOUT, deadline);
            if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0 && soerr == 0) {
                break;
            }
            last_errno = rc == 0 ? ETIMEDOUT : (rc < 0 ? errno : soerr);
        }
        else {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    if (fd < 0) {
        set_err(err, err_len, "cannot connect: %s%s",
                last_errno == ETIMEDOUT ? "timed out (IDTokenRedisTimeout)" : strerror(last_errno), NULL);
    }
    return fd;
}

static int is_ip_address(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static int tls_handshake(idtoken_redis_conn *c, const idtoken_redis_endpoint *ep, long long deadline,
                         char *err, size_t err_len)
{
    char buf[256];

    ERR_clear_error();
    c->ssl = SSL_new(ep->tls);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        set_err(err, err_len, "TLS: %s%s", tls_error(buf, sizeof(buf)), NULL);
        return -1;
    }
    if (ep->tls_name) {
        if (is_ip_address(ep->tls_name)) {
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ep->tls_name) != 1) {
                set_err(err, err_len, "TLS: %s%s", tls_error(buf, sizeof(buf)), NULL);
                return -1;
            }
        }
        else if (SSL_set1_host(c->ssl, ep->tls_name) != 1
                 || SSL_set_tlsext_host_name(c->ssl, ep->tls_name) != 1) {
            set_err(err, err_len, "TLS: %s%s", tls_error(buf, sizeof(buf)), NULL);
            return -1;
        }
    }
    for (;;) {
        int rc = SSL_connect(c->ssl), w;

        if (rc == 1) {
            return 0;
        }
        switch (SSL_get_error(c->ssl, rc)) {
        case SSL_ERROR_WANT_READ:
            w = wait_fd(c->fd, POLLIN, deadline);
            break;
        case SSL_ERROR_WANT_WRITE:
            w = wait_fd(c->fd, POLLOUT, deadline);
            break;
        default: {
            long verify = SSL_get_verify_result(c->ssl);

            if (verify != X509_V_OK) {
                ERR_clear_error();
                set_err(err, err_len, "TLS: the server's certificate is not trusted: %s%s",
                        X509_verify_cert_error_string(verify),
                        verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
                            ? " (IDTokenRedisTLSServerName names what it must carry)" : "");
            }
            else {
                set_err(err, err_len, "TLS handshake failed: %s%s", tls_error(buf, sizeof(buf)), NULL);
            }
            return -1;
        }
        }
        if (w <= 0) {
            ERR_clear_error();
            set_err(err, err_len, "TLS handshake %s%s", w == 0 ? "timed out (IDTokenRedisTimeout)" : strerror(errno), NULL);
            return -1;
        }
    }
}

int idtoken_redis_connect(const idtoken_redis_endpoint *ep, idtoken_redis_conn **out, char *err, size_t err_len)
{
    long long deadline = now_ms() + ep->connect_timeout_ms;
    idtoken_redis_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL) {
        set_err(err, err_len, "out of memory%s%s", NULL, NULL);
        return -1;
    }
    c->command_timeout_ms = ep->command_timeout_ms;
    snprintf(c->peer, sizeof(c->peer), strchr(ep->host, ':') ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
    c->fd = tcp_connect(ep, deadline, err, err_len);
    if (c->fd < 0) {
        free(c);
        return -1;
    }
    if (ep->tls) {
        /* The handshake has a deadline of its own, as long as the connect's. */
        if (tls_handshake(c, ep, now_ms() + ep->connect_timeout_ms, err, err_len) != 0) {
            idtoken_redis_close(c);
            return -1;
        }
    }
    c->reader = redisReaderCreate();
    if (c->reader == NULL) {
        set_err(err, err_len, "out of memory%s%s", NULL, NULL);
        idtoken_redis_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* Writes all of buf before the deadline. */
static int write_all(idtoken_redis_conn *c, const char *buf, size_t len, long long deadline, char *err, size_t err_len)
{
    char tls_buf[256];

    while (len > 0) {
        short wait_for = POLLOUT;
        int w;

        if (c->ssl) {
            int n;

            ERR_clear_error();
            n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
            if (n > 0) {
                buf += n;
                len -= (size_t)n;
                continue;
            }
            switch (SSL_get_error(c->ssl, n)) {
            case SSL_ERROR_WANT_READ: wait_for = POLLIN; break;
            case SSL_ERROR_WANT_WRITE: break;
            default:
                set_err(err, err_len, "TLS write failed: %s%s", tls_error(tls_buf, sizeof(tls_buf)), NULL);
                return -1;
            }
        }
        else {
            ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

            if (n > 0) {
                buf += n;
                len -= (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                set_err(err, err_len, "write failed: %s%s", strerror(errno), NULL);
                return -1;
            }
        }
        w = wait_fd(c->fd, wait_for, deadline);
        if (w <= 0) {
            set_err(err, err_len, "%s%s", w == 0 ? "no answer in time (IDTokenRedisTimeout)" : strerror(errno), NULL);
            return -1;
        }
    }
    return 0;
}

/* Reads what is there (waiting until the deadline for something) into the reader. */
static int read_some(idtoken_redis_conn *c, long long deadline, char *err, size_t err_len)
{
    char buf[16384], tls_buf[256];

    for (;;) {
        short wait_for = POLLIN;
        int w;

        if (c->ssl) {
            int n;

            ERR_clear_error();
            n = SSL_read(c->ssl, buf, sizeof(buf));
            if (n > 0) {
                return redisReaderFeed(c->reader, buf, (size_t)n) == REDIS_OK ? 0 : -1;
            }
            switch (SSL_get_error(c->ssl, n)) {
            case SSL_ERROR_WANT_READ: break;
            case SSL_ERROR_WANT_WRITE: wait_for = POLLOUT; break;
            case SSL_ERROR_ZERO_RETURN:
                set_err(err, err_len, "the server closed the connection%s%s", NULL, NULL);
                return -1;
            default:
                set_err(err, err_len, "TLS read failed: %s%s", tls_error(tls_buf, sizeof(tls_buf)), NULL);
                return -1;
            }
        }
        else {
            ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

            if (n > 0) {
                return redisReaderFeed(c->reader, buf, (size_t)n) == REDIS_OK ? 0 : -1;
            }
            if (n == 0) {
                set_err(err, err_len, "the server closed the connection%s%s", NULL, NULL);
                return -1;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                set_err(err, err_len, "read failed: %s%s", strerror(errno), NULL);
                return -1;
            }
        }
        w = wait_fd(c->fd, wait_for, deadline);
        if (w <= 0) {
            set_err(err, err_len, "%s%s", w == 0 ? "no answer in time (IDTokenRedisTimeout)" : strerror(errno), NULL);
            return -1;
        }
    }
}

redisReply *idtoken_redis_command(idtoken_redis_conn *c, int argc, const char **argv, const size_t *argv_len,
                                  char *err, size_t err_len)
{
    long long deadline = now_ms() + c->command_timeout_ms;
    char *cmd = NULL;
    void *reply = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argv_len);

    if (len < 0 || cmd == NULL) {
        set_err(err, err_len, "cannot format the command%s%s", NULL, NULL);
        return NULL;
    }
    if (write_all(c, cmd, (size_t)len, deadline, err, err_len) != 0) {
        redisFreeCommand(cmd);
        return NULL;
    }
    redisFreeCommand(cmd);
    for (;;) {
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            set_err(err, err_len, "the reply does not parse: %s%s", c->reader->errstr, NULL);
            return NULL;
        }
        if (reply) {
            return reply;
        }
        if (read_some(c, deadline, err, err_len) != 0) {
            if (c->reader->err) {
                set_err(err, err_len, "the reply does not parse: %s%s", c->reader->errstr, NULL);
            }
            return NULL;
        }
    }
}

int idtoken_redis_idle_ok(idtoken_redis_conn *c)
{
    struct pollfd p = {c->fd, POLLIN | POLLRDHUP, 0};

    if (poll(&p, 1, 0) == 0) {
        return c->ssl == NULL || SSL_pending(c->ssl) == 0;
    }
    if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) || c->ssl == NULL) {
        return 0;
    }
    /* TLS 1.3 servers send session tickets after the handshake: records that are no reply. Let OpenSSL
     * take them; anything it hands on as data, or a close, means the connection is not idle. */
    for (;;) {
        char byte;
        int n;

        ERR_clear_error();
        n = SSL_read(c->ssl, &byte, 1);
        if (n > 0) {
            return 0;
        }
        if (SSL_get_error(c->ssl, n) != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            return 0;
        }
        p.revents = 0;
        if (poll(&p, 1, 0) == 0) {
            return SSL_pending(c->ssl) == 0;
        }
        if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) {
            return 0;
        }
    }
}

void idtoken_redis_close(idtoken_redis_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->ssl) {
        /* One close_notify, not waited for. */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
        SSL_free(c->ssl);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->reader) {
        redisReaderFree(c->reader);
    }
    free(c);
}

const char *idtoken_redis_conn_peer(const idtoken_redis_conn *c)
{
    return c->peer;
}
