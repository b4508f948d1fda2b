/*
 * Each child's side of the module's Redis store (idtoken_redis.c has the directives and start-up): a
 * small pool of connections opened when a request first needs one (never before fork), each used by one
 * thread at a time and kept for the next request; Sentinel (where the master is, and whether it moved);
 * the down state: when Redis cannot be reached the child stops trying for a while (100 ms, doubling to
 * 1 s) and every store call fails at once meanwhile, and one line says so for the whole server, then at
 * most one a minute, then one when it is back. idtoken_redis_store.c turns the idt_store callbacks
 * into commands sent through redis_run.
 */
#include "idtoken_internal.h"
#include "idtoken_redis.h"

#include "apr_thread_mutex.h"

#include <openssl/crypto.h>

#define BACKOFF_FIRST apr_time_from_msec(100)
#define BACKOFF_MAX apr_time_from_sec(1)
/* With Sentinel, how often a busy child asks whether the master has moved. A failover leaves the old
 * master up, and a master, for several seconds (until Sentinel reconfigures it and closes its clients):
 * without asking, a child would go on writing there. */
#define MASTER_CHECK_INTERVAL apr_time_from_sec(1)
/* At most one line a minute about an unreachable store, or a command Redis refused, for the server. */
#define REPORT_INTERVAL 60

typedef idtoken_redis_addr redis_addr;

/* Per child. */
typedef struct {
    idtoken_redis_conn *conn;
    unsigned generation;
} pooled;

static struct {
    apr_thread_mutex_t *lock;
    pooled *idle;
    int idle_count, idle_max;
    unsigned generation;            /* bumped when the master moves: older connections are closed */
    int down;                       /* calls fail at once until retry_at */
    apr_time_t retry_at;
    apr_interval_time_t backoff;
    int probing;                    /* one thread reconnects while down; the others fail at once */
    char last_error[320];
    char master_host[256];          /* Sentinel: the master last found, "" when to ask again */
    int master_port;
    int next_sentinel;              /* the one that answered last is asked first */
    idtoken_redis_conn *sentinel;   /* a connection to it, kept; taken out while in use */
    apr_time_t checked_at;          /* when the master was last asked for */
    int checking;
} pool;

/* ---- The child's start ------------------------------------------------------------------------------ */

static apr_status_t close_idle(void *data)
{
    (void)data;
    while (pool.idle_count > 0) {
        idtoken_redis_close(pool.idle[--pool.idle_count].conn);
    }
    idtoken_redis_close(pool.sentinel);
    pool.sentinel = NULL;
    return APR_SUCCESS;
}

/* Each child: its lock and room for one idle connection per thread. No connection yet. */
void redis_child_init(apr_pool_t *p, server_rec *s)
{
    int threads = 1;
    apr_status_t rv;

    memset(&pool, 0, sizeof(pool));
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1) {
        threads = 1;
    }
    pool.idle_max = threads;
    pool.idle = apr_pcalloc(p, sizeof(pooled) * (apr_size_t)threads);
    rv = apr_thread_mutex_create(&pool.lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        pool.lock = NULL;
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, IDTLOGNO(0329) "IDTokenCache %s: cannot make this child's "
                     "lock: every store call will fail", idtoken_redis_cfg.spec);
        return;
    }
    apr_pool_cleanup_register(p, NULL, close_idle, apr_pool_cleanup_null);
}

/* ---- Reporting ------------------------------------------------------------------------------------ */

static apr_int64_t now_sec(void)
{
    return apr_time_sec(apr_time_now());
}

/* A store call failed because this child could not reach Redis (`why`). `attempted`: it tried (a
 * connection or a command failed), rather than failing at once while waiting to retry. The first child
 * whose attempt fails says so for the server; after that, one line a minute while it lasts. A call that
 * failed at once starts nothing: another child may already have said Redis is back. */
static void report_failure(server_rec *s, const char *why, int attempted)
{
    apr_int64_t now = now_sec(), last;

    if (idtoken_redis_shared == NULL) {
        return;
    }
    __atomic_add_fetch(&idtoken_redis_shared->failed_calls, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&idtoken_redis_shared->down_since, __ATOMIC_ACQUIRE) == 0) {
        if (!attempted) {
            return;
        }
        apr_int64_t expected = 0;

        if (__atomic_compare_exchange_n(&idtoken_redis_shared->down_since, &expected, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&idtoken_redis_shared->last_line, now, __ATOMIC_RELEASE);
            __atomic_store_n(&idtoken_redis_shared->failed_calls, 0, __ATOMIC_RELAXED);
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         IDTLOGNO(0320) "IDTokenCache %s: cannot reach Redis: %s. Until it is back, cache "
                         "sessions get 503 and logins follow IDTokenReplayCheckFailure; each child tries again "
                         "at least once a second; at most one line a minute says it lasts", idtoken_redis_cfg.spec, why);
        }
        return;
    }
    last = __atomic_load_n(&idtoken_redis_shared->last_line, __ATOMIC_ACQUIRE);
    if (now - last >= REPORT_INTERVAL
        && __atomic_compare_exchange_n(&idtoken_redis_shared->last_line, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        apr_uint64_t failed = __atomic_exchange_n(&idtoken_redis_shared->failed_calls, 0, __ATOMIC_RELAXED);
        apr_int64_t since = __atomic_load_n(&idtoken_redis_shared->down_since, __ATOMIC_ACQUIRE);

        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     IDTLOGNO(0321) "IDTokenCache %s: Redis still cannot be reached after %" APR_INT64_T_FMT
                     " s; %" APR_UINT64_T_FMT " store calls failed since the last line; the last error: %s",
                     idtoken_redis_cfg.spec, since ? now - since : 0, failed, why);
    }
}

/* This child reached Redis again. The first child to see it says so. */
static void report_recovery(server_rec *s, const char *peer)
{
    apr_int64_t since;

    if (idtoken_redis_shared == NULL || (since = __atomic_load_n(&idtoken_redis_shared->down_since, __ATOMIC_ACQUIRE)) == 0) {
        return;
    }
    if (__atomic_compare_exchange_n(&idtoken_redis_shared->down_since, &since, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        apr_uint64_t failed = __atomic_exchange_n(&idtoken_redis_shared->failed_calls, 0, __ATOMIC_RELAXED);

        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     IDTLOGNO(0322) "IDTokenCache %s: Redis reachable again at %s after %" APR_INT64_T_FMT " s; %"
                     APR_UINT64_T_FMT " store calls failed meanwhile", idtoken_redis_cfg.spec, peer, now_sec() - since, failed);
    }
}

/* Redis answered a command with an error (no room: OOM; no right: NOPERM; ...): counted, and at most
 * one line a minute for the server. */
static void report_refused(server_rec *s, const char *command, const char *reply)
{
    apr_int64_t now = now_sec(), last;

    if (idtoken_redis_shared == NULL) {
        return;
    }
    __atomic_add_fetch(&idtoken_redis_shared->refused_calls, 1, __ATOMIC_RELAXED);
    last = __atomic_load_n(&idtoken_redis_shared->refused_line, __ATOMIC_ACQUIRE);
    if (now - last >= REPORT_INTERVAL
        && __atomic_compare_exchange_n(&idtoken_redis_shared->refused_line, &last, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        apr_uint64_t refused = __atomic_exchange_n(&idtoken_redis_shared->refused_calls, 0, __ATOMIC_RELAXED);

        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     IDTLOGNO(0323) "IDTokenCache %s: Redis refused %s: %.200s (%" APR_UINT64_T_FMT " refusals "
                     "since the last such line; at most one a minute)", idtoken_redis_cfg.spec, command, reply, refused);
    }
}

/* ---- Connections ---------------------------------------------------------------------------------- */

static void endpoint_for(idtoken_redis_endpoint *ep, const char *host, int port)
{
    ep->host = host;
    ep->port = port;
    ep->tls = idtoken_redis_cfg.tls ? idtoken_redis_tls : NULL;
    ep->tls_name = idtoken_redis_cfg.server_name_off ? NULL : idtoken_redis_cfg.server_name ? idtoken_redis_cfg.server_name : host;
    ep->connect_timeout_ms = idtoken_redis_cfg.connect_timeout_ms;
    ep->command_timeout_ms = idtoken_redis_cfg.command_timeout_ms;
}

/* A command whose reply must not be an error: 1, or 0 with `err` saying what failed. */
static int handshake_step(idtoken_redis_conn *c, int argc, const char **argv, const size_t *lens,
                          const char *what, redisReply **out, char *err, size_t err_len)
{
    char why[256];
    redisReply *reply = idtoken_redis_command(c, argc, argv, lens, why, sizeof(why));

    if (reply == NULL) {
        snprintf(err, err_len, "%s: %s: %s", idtoken_redis_conn_peer(c), what, why);
        return 0;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, err_len, "%s: %s refused: %.200s", idtoken_redis_conn_peer(c), what, reply->str);
        freeReplyObject(reply);
        return 0;
    }
    if (out) {
        *out = reply;
    }
    else {
        freeReplyObject(reply);
    }
    return 1;
}

static int authenticate(idtoken_redis_conn *c, char *err, size_t err_len)
{
    const char *argv[3];
    size_t lens[3];
    int argc = 0;
    char what[200];

    argv[argc] = "AUTH";
    lens[argc++] = 4;
    if (idtoken_redis_cfg.user) {
        argv[argc] = idtoken_redis_cfg.user;
        lens[argc++] = strlen(idtoken_redis_cfg.user);
    }
    argv[argc] = idtoken_redis_password;
    lens[argc++] = idtoken_redis_password_len;
    /* The message names the user and the file, never the password. */
    snprintf(what, sizeof(what), "authentication as %s%.64s%s (password from IDTokenRedisPasswordFile)",
             idtoken_redis_cfg.user ? "user '" : "the default user", idtoken_redis_cfg.user ? idtoken_redis_cfg.user : "", idtoken_redis_cfg.user ? "'" : "");
    return handshake_step(c, argc, argv, lens, what, NULL, err, err_len);
}

/* A data connection to host:port, ready for commands: authenticated, its database selected, and with
 * Sentinel checked to be the master (a Sentinel can name a master that has just stepped down). */
static idtoken_redis_conn *open_server(const char *host, int port, char *err, size_t err_len)
{
    idtoken_redis_endpoint ep;
    idtoken_redis_conn *c;
    char why[256];
    redisReply *reply = NULL;

    endpoint_for(&ep, host, port);
    if (idtoken_redis_connect(&ep, &c, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "%s%s%s:%d: %s", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                 port, why);
        return NULL;
    }
    if (idtoken_redis_password && !authenticate(c, err, err_len)) {
        idtoken_redis_close(c);
        return NULL;
    }
    if (idtoken_redis_cfg.database != 0) {
        char db[16];
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, 0};

        lens[1] = (size_t)snprintf(db, sizeof(db), "%d", idtoken_redis_cfg.database);
        if (!handshake_step(c, 2, argv, lens, "SELECT (IDTokenRedisDatabase)", NULL, err, err_len)) {
            idtoken_redis_close(c);
            return NULL;
        }
    }
    if (idtoken_redis_cfg.sentinel) {
        const char *argv[1] = {"ROLE"};
        size_t lens[1] = {4};

        if (!handshake_step(c, 1, argv, lens, "ROLE", &reply, err, err_len)) {
            idtoken_redis_close(c);
            return NULL;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING
            || strcmp(reply->element[0]->str, "master") != 0) {
            snprintf(err, err_len, "%s: Sentinel named it the master of '%s', but it is not (yet) the master",
                     idtoken_redis_conn_peer(c), idtoken_redis_cfg.master_name);
            freeReplyObject(reply);
            idtoken_redis_close(c);
            return NULL;
        }
        freeReplyObject(reply);
    }
    else if (!idtoken_redis_password && idtoken_redis_cfg.database == 0) {
        /* Nothing was said yet: a PING shows now, not at the first real command, that the server
         * answers (and wants no password). */
        const char *argv[1] = {"PING"};
        size_t lens[1] = {4};

        if (!handshake_step(c, 1, argv, lens, "PING", NULL, err, err_len)) {
            idtoken_redis_close(c);
            return NULL;
        }
    }
    return c;
}

/* One Sentinel's answer for the master on connection c: 1 with host and port, else 0 with why. */
static int sentinel_answer(idtoken_redis_conn *c, char *host, size_t host_len, int *port, char *why, size_t why_len)
{
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", idtoken_redis_cfg.master_name};
    size_t lens[3] = {8, 23, strlen(idtoken_redis_cfg.master_name)};
    redisReply *reply = idtoken_redis_command(c, 3, argv, lens, why, why_len);
    int ok = 0;

    if (reply && reply->type == REDIS_REPLY_ERROR && idtoken_redis_password && strncmp(reply->str, "NOAUTH", 6) == 0) {
        /* A Sentinel with a password of its own: the same user and password. */
        freeReplyObject(reply);
        reply = NULL;
        if (authenticate(c, why, why_len)) {
            reply = idtoken_redis_command(c, 3, argv, lens, why, why_len);
        }
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
        long p = strtol(reply->element[1]->str, NULL, 10);

        if (p > 0 && p < 65536 && reply->element[0]->len < host_len) {
            apr_cpystrn(host, reply->element[0]->str, host_len);
            *port = (int)p;
            ok = 1;
        }
    }
    if (!ok && reply) {
        snprintf(why, why_len, "%s", reply->type == REDIS_REPLY_NIL ? "knows no master of that name"
                 : reply->type == REDIS_REPLY_ERROR ? reply->str : "an answer that is no address");
    }
    if (reply) {
        freeReplyObject(reply);
    }
    return ok;
}

/* Asks the Sentinels where the master is: on the child's kept connection to the one that answered last,
 * else each in turn from that one on. The connection that answered is kept for the next time. */
static int ask_sentinels(char *host, size_t host_len, int *port, char *err, size_t err_len)
{
    int i, n = idtoken_redis_cfg.addr_count, first;
    char last[320] = "", why[256];
    idtoken_redis_conn *c;

    apr_thread_mutex_lock(pool.lock);
    first = pool.next_sentinel;
    c = pool.sentinel;
    pool.sentinel = NULL;
    apr_thread_mutex_unlock(pool.lock);
    if (c && (!idtoken_redis_idle_ok(c) || !sentinel_answer(c, host, host_len, port, why, sizeof(why)))) {
        idtoken_redis_close(c);
        c = NULL;
    }
    for (i = 0; c == NULL && i < n; ++i) {
        int k = (first + i) % n;
        const redis_addr *a = &idtoken_redis_cfg.addrs[k];
        idtoken_redis_endpoint ep;

        endpoint_for(&ep, a->host, a->port);
        if (idtoken_redis_connect(&ep, &c, why, sizeof(why)) != 0) {
            snprintf(last, sizeof(last), "Sentinel %s:%d: %s", a->host, a->port, why);
            c = NULL;
            continue;
        }
        if (!sentinel_answer(c, host, host_len, port, why, sizeof(why))) {
            snprintf(last, sizeof(last), "Sentinel %s:%d: %s", a->host, a->port, why);
            idtoken_redis_close(c);
            c = NULL;
            continue;
        }
        apr_thread_mutex_lock(pool.lock);
        pool.next_sentinel = k;
        apr_thread_mutex_unlock(pool.lock);
    }
    if (c == NULL) {
        snprintf(err, err_len, "no Sentinel named the master '%s' (%s)", idtoken_redis_cfg.master_name, last);
        return 0;
    }
    apr_thread_mutex_lock(pool.lock);
    if (pool.sentinel == NULL) {
        pool.sentinel = c;
        c = NULL;
    }
    apr_thread_mutex_unlock(pool.lock);
    idtoken_redis_close(c);
    return 1;
}

/* Records where the master is; 1 when it moved (then older connections are not reused). */
static int note_master(server_rec *s, const char *host, int port)
{
    int moved;

    apr_thread_mutex_lock(pool.lock);
    moved = strcmp(pool.master_host, host) != 0 || pool.master_port != port;
    if (moved) {
        apr_cpystrn(pool.master_host, host, sizeof(pool.master_host));
        pool.master_port = port;
        ++pool.generation;
    }
    apr_thread_mutex_unlock(pool.lock);
    if (moved) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     IDTLOGNO(0327) "IDTokenCache %s: the master is at %s%s%s:%d (as Sentinel says; pid %d follows it)",
                     idtoken_redis_cfg.spec, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port, (int)getpid());
    }
    return moved;
}

/* With Sentinel, at most once a second per child (by whichever thread comes first): has the master
 * moved? Sentinel not answering changes nothing here. */
static void check_master(server_rec *s)
{
    apr_time_t now = apr_time_now();
    char host[256], err[320];
    int port;

    apr_thread_mutex_lock(pool.lock);
    if (pool.checking || pool.master_host[0] == '\0' || now - pool.checked_at < MASTER_CHECK_INTERVAL) {
        apr_thread_mutex_unlock(pool.lock);
        return;
    }
    pool.checking = 1;
    pool.checked_at = now;
    apr_thread_mutex_unlock(pool.lock);
    if (ask_sentinels(host, sizeof(host), &port, err, sizeof(err))) {
        note_master(s, host, port);
        apr_thread_mutex_lock(pool.lock);
    }
    else {
        /* No Sentinel answers: go on with the master known, and ask again in 5 s, not every second
         * (each try may cost a request a connect timeout per Sentinel). */
        apr_thread_mutex_lock(pool.lock);
        pool.checked_at = apr_time_now() + 4 * MASTER_CHECK_INTERVAL;
    }
    pool.checking = 0;
    apr_thread_mutex_unlock(pool.lock);
}

/* A new data connection: to the server, or to the master Sentinel names. */
static idtoken_redis_conn *open_connection(server_rec *s, char *err, size_t err_len)
{
    char host[256];
    int port;
    idtoken_redis_conn *c;

    if (!idtoken_redis_cfg.sentinel) {
        return open_server(idtoken_redis_cfg.addrs[0].host, idtoken_redis_cfg.addrs[0].port, err, err_len);
    }
    apr_thread_mutex_lock(pool.lock);
    apr_cpystrn(host, pool.master_host, sizeof(host));
    port = pool.master_port;
    apr_thread_mutex_unlock(pool.lock);
    if (host[0] != '\0' && (c = open_server(host, port, err, err_len)) != NULL) {
        return c;
    }
    /* No master known yet, or the one known is gone or stepped down: ask again. */
    if (!ask_sentinels(host, sizeof(host), &port, err, err_len)) {
        return NULL;
    }
    c = open_server(host, port, err, err_len);
    if (c) {
        note_master(s, host, port);
        apr_thread_mutex_lock(pool.lock);
        pool.checked_at = apr_time_now();
        apr_thread_mutex_unlock(pool.lock);
    }
    return c;
}

/* A connection for one command: an idle one of this child, or a new one. NULL while Redis is
 * unreachable (at once, between retries) or when connecting failed. *fresh: just opened. */
static idtoken_redis_conn *borrow(server_rec *s, int *fresh, unsigned *generation)
{
    idtoken_redis_conn *c = NULL;
    char err[320];
    int came_back = 0, now_down = 0;
    apr_time_t now;

    *fresh = 0;
    if (pool.lock == NULL) {
        return NULL;
    }
    if (idtoken_redis_cfg.sentinel) {
        check_master(s);
    }
    for (;;) {
        pooled got = {NULL, 0};

        apr_thread_mutex_lock(pool.lock);
        while (pool.idle_count > 0) {
            got = pool.idle[--pool.idle_count];
            if (got.generation == pool.generation) {
                break;
            }
            idtoken_redis_close(got.conn);
            got.conn = NULL;
        }
        *generation = pool.generation;
        apr_thread_mutex_unlock(pool.lock);
        if (got.conn == NULL) {
            break;
        }
        if (idtoken_redis_idle_ok(got.conn)) {
            return got.conn;
        }
        /* Closed by the server while idle (its `timeout`, a restart, a failover): the next one. */
        idtoken_redis_close(got.conn);
    }

    now = apr_time_now();
    apr_thread_mutex_lock(pool.lock);
    if (pool.down && (now < pool.retry_at || pool.probing)) {
        apr_cpystrn(err, pool.last_error, sizeof(err));
        apr_thread_mutex_unlock(pool.lock);
        report_failure(s, err, 0);
        return NULL;
    }
    pool.probing = pool.down;
    apr_thread_mutex_unlock(pool.lock);

    c = open_connection(s, err, sizeof(err));

    apr_thread_mutex_lock(pool.lock);
    pool.probing = 0;
    if (c) {
        came_back = pool.down;
        pool.down = 0;
        pool.backoff = 0;
        *generation = pool.generation;
    }
    else {
        now_down = 1;
        pool.down = 1;
        pool.backoff = pool.backoff ? (pool.backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : pool.backoff * 2) : BACKOFF_FIRST;
        pool.retry_at = apr_time_now() + pool.backoff;
        apr_cpystrn(pool.last_error, err, sizeof(pool.last_error));
        if (idtoken_redis_cfg.sentinel) {
            pool.master_host[0] = '\0';
        }
    }
    apr_thread_mutex_unlock(pool.lock);
    if (now_down) {
        report_failure(s, err, 1);
    }
    else {
        (void)came_back;
        report_recovery(s, idtoken_redis_conn_peer(c));
        *fresh = 1;
    }
    return c;
}

static void give_back(idtoken_redis_conn *c, unsigned generation)
{
    apr_thread_mutex_lock(pool.lock);
    if (generation == pool.generation && pool.idle_count < pool.idle_max) {
        pool.idle[pool.idle_count].conn = c;
        pool.idle[pool.idle_count].generation = generation;
        ++pool.idle_count;
        c = NULL;
    }
    apr_thread_mutex_unlock(pool.lock);
    idtoken_redis_close(c);
}

/* A connection that failed mid-command: closed, and Redis counted unreachable from this child until
 * a reconnection works (with Sentinel, the master is asked for again). */
static void failed(server_rec *s, idtoken_redis_conn *c, const char *why)
{
    char err[320];

    snprintf(err, sizeof(err), "%s: %s", idtoken_redis_conn_peer(c), why);
    idtoken_redis_close(c);
    apr_thread_mutex_lock(pool.lock);
    pool.down = 1;
    pool.backoff = BACKOFF_FIRST;
    pool.retry_at = apr_time_now() + pool.backoff;
    apr_cpystrn(pool.last_error, err, sizeof(pool.last_error));
    if (idtoken_redis_cfg.sentinel) {
        pool.master_host[0] = '\0';
        ++pool.generation;
    }
    apr_thread_mutex_unlock(pool.lock);
    report_failure(s, err, 1);
}

/* One command, with the key prefixed. The reply (freeReplyObject), never an error reply; NULL when the
 * call failed (logged as above). `idempotent`: may be sent again on a new connection when a kept one
 * turns out to have died (a SET NX must not: the first may have been done). */
redisReply *redis_run(store_ctx *ctx, int argc, const char **argv, size_t *lens, int idempotent)
{
    server_rec *s = ctx->r->server;
    int attempt, fresh;
    unsigned generation;
    char why[256];

    ++ctx->calls;
    for (attempt = 0; attempt < 2; ++attempt) {
        idtoken_redis_conn *c = borrow(s, &fresh, &generation);
        redisReply *reply;

        if (c == NULL) {
            return NULL;
        }
        reply = idtoken_redis_command(c, argc, argv, lens, why, sizeof(why));
        if (reply == NULL) {
            if (!fresh && idempotent && attempt == 0) {
                idtoken_redis_close(c);
                continue;
            }
            failed(s, c, why);
            return NULL;
        }
        if (reply->type == REDIS_REPLY_ERROR && idtoken_redis_cfg.sentinel && attempt == 0
            && strncmp(reply->str, "READONLY", 8) == 0) {
            /* The master this child knew stepped down (a failover its once-a-second check has not seen
             * yet). Nothing was written, so even a SET NX may be sent again: to the master Sentinel
             * names now, found by the next connection. Without this, the child would wait out its
             * retry backoff, answering 503, although the new master is already serving. */
            freeReplyObject(reply);
            idtoken_redis_close(c);
            apr_thread_mutex_lock(pool.lock);
            pool.master_host[0] = '\0';
            ++pool.generation;
            apr_thread_mutex_unlock(pool.lock);
            continue;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            /* A master that stepped down (READONLY), is loading its data (LOADING), or lost its
             * replicas' quorum (MASTERDOWN, NOREPLICAS): as if it could not be reached. */
            if (strncmp(reply->str, "READONLY", 8) == 0 || strncmp(reply->str, "LOADING", 7) == 0
                || strncmp(reply->str, "MASTERDOWN", 10) == 0 || strncmp(reply->str, "NOAUTH", 6) == 0) {
                snprintf(why, sizeof(why), "%.200s", reply->str);
                freeReplyObject(reply);
                failed(s, c, why);
                return NULL;
            }
            report_refused(s, argv[0], reply->str);
            freeReplyObject(reply);
            give_back(c, generation);
            return NULL;
        }
        give_back(c, generation);
        return reply;
    }
    return NULL;
}

/* For the request's trace line. */
const char *redis_trace_note(apr_pool_t *p)
{
    int idle, down;

    if (pool.lock == NULL) {
        return "";
    }
    apr_thread_mutex_lock(pool.lock);
    idle = pool.idle_count;
    down = pool.down;
    apr_thread_mutex_unlock(pool.lock);
    return apr_psprintf(p, "; redis: %d idle connections in this child%s", idle, down ? ", unreachable" : "");
}
