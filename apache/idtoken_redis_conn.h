/*
 * One connection to a Redis server (or a Sentinel): TCP, optionally TLS with OpenSSL, commands
 * written by hiredis' RESP formatter and replies parsed by its reader. Blocking from the caller's
 * point of view, with a deadline on every step (the socket itself is non-blocking and waited on with
 * poll). No httpd and no APR here: idtoken_redis.c decides when to connect, whom, and what a failure
 * means; a connection belongs to one thread at a time.
 */
#ifndef IDTOKEN_REDIS_CONN_H
#define IDTOKEN_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

typedef struct idtoken_redis_conn idtoken_redis_conn;

typedef struct {
    const char *host;           /* a name or an address (IPv6 without brackets) */
    int port;
    SSL_CTX *tls;               /* NULL: plain TCP */
    /* With TLS: the name the server's certificate must carry (a DNS name or an IP address, also sent
     * as SNI when it is a name); NULL: the chain is checked but not the name. */
    const char *tls_name;
    int connect_timeout_ms;     /* TCP connect and TLS handshake, each */
    int command_timeout_ms;     /* one command: writing it and reading its reply */
} idtoken_redis_endpoint;

/* Connects (and completes the TLS handshake). 0 and *out set, or -1 with a message in err (never
 * anything secret: there is nothing secret here yet). */
int idtoken_redis_connect(const idtoken_redis_endpoint *endpoint, idtoken_redis_conn **out,
                          char *err, size_t err_len);

/* One command; its reply (freeReplyObject), which may be an error reply. NULL when the connection
 * failed (timeout, closed, TLS error, a reply that does not parse): err says how, and the connection
 * must be closed. */
redisReply *idtoken_redis_command(idtoken_redis_conn *conn, int argc, const char **argv,
                                  const size_t *argv_len, char *err, size_t err_len);

/* Whether an idle connection still looks usable: nothing to read (an idle connection that can be
 * read has been closed by the server, or holds a reply nobody asked for). */
int idtoken_redis_idle_ok(idtoken_redis_conn *conn);

/* Closes (a TLS close_notify is sent without waiting) and frees. NULL is fine. */
void idtoken_redis_close(idtoken_redis_conn *conn);

/* The endpoint as "host:port" for messages, in buf. */
const char *idtoken_redis_conn_peer(const idtoken_redis_conn *conn);

#endif /* IDTOKEN_REDIS_CONN_H */
