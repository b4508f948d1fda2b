/*
 * What the parts of the module's Redis store share (idtoken_redis.c: the directives and start-up, in
 * the parent; idtoken_redis_pool.c: each child's connections; idtoken_redis_store.c: the idt_store
 * callbacks as commands): the settings, the password and the TLS context read and made at start-up,
 * the page every child of a generation shares for the "unreachable" lines, and the call that sends a
 * command. Include idtoken_internal.h first.
 */
#ifndef IDTOKEN_REDIS_H
#define IDTOKEN_REDIS_H

#include "idtoken_redis_conn.h"

#define IDTOKEN_REDIS_MAX_ADDRESSES 16

typedef struct {
    const char *host;
    int port;
} idtoken_redis_addr;

/* Set by the directives; reset by redis_pre_config on every pass. */
typedef struct {
    const char *spec;               /* what followed IDTokenCache, for messages */
    int sentinel;
    const char *master_name;        /* redis-sentinel: */
    idtoken_redis_addr addrs[IDTOKEN_REDIS_MAX_ADDRESSES]; /* the server, or the Sentinels */
    int addr_count;
    const char *user;
    const char *password_file;
    int tls;
    const char *ca_file;
    const char *cert_file, *key_file;
    const char *server_name;        /* NULL: each server's host as addressed */
    int server_name_off;
    int database;
    int command_timeout_ms, connect_timeout_ms;
    const char *prefix;
    size_t prefix_len;
    const char *first_directive;    /* the first IDTokenRedis* directive given, for the check */
} idtoken_redis_settings;
extern idtoken_redis_settings idtoken_redis_cfg;

/* Made by check_config in the parent, inherited by the children. The password lives in pconf and is
 * wiped when the pass ends; NULL without IDTokenRedisPasswordFile. */
extern char *idtoken_redis_password;
extern size_t idtoken_redis_password_len;
extern SSL_CTX *idtoken_redis_tls;

/* Shared by every child of one generation (an anonymous shared mapping made in post_config), so the
 * "unreachable" lines are one for the server, not one per process. */
typedef struct {
    volatile apr_int64_t down_since;    /* 0: reachable as far as anyone knows */
    volatile apr_int64_t last_line;     /* the last line about it */
    volatile apr_uint64_t failed_calls; /* since the last line */
    volatile apr_int64_t refused_line;  /* the last line about a refused command */
    volatile apr_uint64_t refused_calls;
} idtoken_redis_shared_state;
extern idtoken_redis_shared_state *idtoken_redis_shared;

/* One command on a connection of this child's pool (idtoken_redis_pool.c), with the key already
 * prefixed. The reply (freeReplyObject), never an error reply; NULL when the call failed (logged there).
 * `idempotent`: may be sent again on a new connection when a kept one turns out to have died (a SET NX
 * must not: the first may have been done). */
redisReply *redis_run(store_ctx *ctx, int argc, const char **argv, size_t *lens, int idempotent);

#endif /* IDTOKEN_REDIS_H */
