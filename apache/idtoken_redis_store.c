/*
 * The idt_store callbacks of the module's Redis store as Redis commands (idtoken_redis_pool.c sends
 * them, on this child's connections). Keys carry IDTokenRedisKeyPrefix; entries expire with Redis's own
 * EX. A single-use mark is one `SET key value NX EX ttl`: atomic across servers.
 */
#include "idtoken_internal.h"
#include "idtoken_redis.h"

/* The prefixed key in the request pool. */
static const char *full_key(store_ctx *ctx, const unsigned char *key, size_t key_len, size_t *len)
{
    char *k = apr_palloc(ctx->r->pool, idtoken_redis_cfg.prefix_len + key_len + 1);

    if (idtoken_redis_cfg.prefix_len) {
        memcpy(k, idtoken_redis_cfg.prefix, idtoken_redis_cfg.prefix_len);
    }
    memcpy(k + idtoken_redis_cfg.prefix_len, key, key_len);
    k[idtoken_redis_cfg.prefix_len + key_len] = '\0';
    *len = idtoken_redis_cfg.prefix_len + key_len;
    return k;
}

/* Seconds to live from now, at least 1 (Redis refuses EX 0). */
static const char *ttl_text(store_ctx *ctx, int64_t expires_at, size_t *len)
{
    int64_t ttl = expires_at - apr_time_sec(apr_time_now());
    const char *text = apr_psprintf(ctx->r->pool, "%" APR_INT64_T_FMT, (apr_int64_t)(ttl < 1 ? 1 : ttl));

    *len = strlen(text);
    return text;
}

/* GET or DEL of one key (both idempotent: sent again if a kept connection died). */
static redisReply *key_command(store_ctx *ctx, const char *command, const unsigned char *key, size_t key_len)
{
    const char *argv[2];
    size_t lens[2];

    argv[0] = command;
    lens[0] = strlen(command);
    argv[1] = full_key(ctx, key, key_len, &lens[1]);
    return redis_run(ctx, 2, argv, lens, 1);
}

static int32_t write_entry(store_ctx *ctx, const unsigned char *key, size_t key_len, const unsigned char *value,
                           size_t value_len, int64_t expires_at, int only_if_absent)
{
    static const char empty[1] = "";
    const char *argv[6];
    size_t lens[6];
    redisReply *reply;
    int32_t status;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)) {
        return IDT_STORE_ERROR;
    }
    argv[0] = "SET";
    lens[0] = 3;
    argv[1] = full_key(ctx, key, key_len, &lens[1]);
    argv[2] = value ? (const char *)value : empty;
    lens[2] = value_len;
    argv[3] = only_if_absent ? "NX" : "EX";
    lens[3] = 2;
    if (only_if_absent) {
        argv[4] = "EX";
        lens[4] = 2;
        argv[5] = ttl_text(ctx, expires_at, &lens[5]);
    }
    else {
        argv[4] = ttl_text(ctx, expires_at, &lens[4]);
    }
    reply = redis_run(ctx, only_if_absent ? 6 : 5, argv, lens, !only_if_absent);
    if (reply == NULL) {
        return IDT_STORE_ERROR;
    }
    if (reply->type == REDIS_REPLY_STATUS) {
        status = IDT_STORE_OK;
    }
    else if (reply->type == REDIS_REPLY_NIL && only_if_absent) {
        status = IDT_STORE_EXISTS;
    }
    else {
        status = IDT_STORE_ERROR;
    }
    freeReplyObject(reply);
    return status;
}

/* SET NX EX: one atomic command, so of two servers adding the same key at once exactly one wins. */
static int32_t redis_add(void *ctxv, const unsigned char *key, size_t key_len, const unsigned char *value,
                         size_t value_len, int64_t expires_at)
{
    return write_entry(ctxv, key, key_len, value, value_len, expires_at, 1);
}

/* Redis evicts by its own maxmemory-policy: the flags mean nothing to it (docs: noeviction). */
static int32_t redis_put(void *ctxv, const unsigned char *key, size_t key_len, const unsigned char *value,
                         size_t value_len, int64_t expires_at, uint32_t flags)
{
    (void)flags;
    return write_entry(ctxv, key, key_len, value, value_len, expires_at, 0);
}

static int32_t redis_get(void *ctxv, const unsigned char *key, size_t key_len, const unsigned char **value,
                         size_t *value_len)
{
    store_ctx *ctx = ctxv;
    redisReply *reply;
    int32_t status;

    if (!store_key_ok(ctx, key, key_len)) {
        return IDT_STORE_ERROR;
    }
    if (value == NULL || value_len == NULL) {
        return store_failed(ctx, APR_EINVAL, "get: no place for the result");
    }
    reply = key_command(ctx, "GET", key, key_len);
    if (reply == NULL) {
        return IDT_STORE_ERROR;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        status = IDT_STORE_NOT_FOUND;
    }
    else if (reply->type == REDIS_REPLY_STRING && reply->len <= IDT_STORE_VALUE_MAX) {
        /* Lent from the connection's read buffer until the next store call; the core copies it. */
        unsigned char *buffer = store_read_buffer(ctx->r);

        memcpy(buffer, reply->str, reply->len);
        *value = buffer;
        *value_len = reply->len;
        status = IDT_STORE_OK;
    }
    else {
        status = IDT_STORE_ERROR;
    }
    freeReplyObject(reply);
    return status;
}

static int32_t redis_remove(void *ctxv, const unsigned char *key, size_t key_len)
{
    store_ctx *ctx = ctxv;
    redisReply *reply;
    int32_t status;

    if (!store_key_ok(ctx, key, key_len)) {
        return IDT_STORE_ERROR;
    }
    reply = key_command(ctx, "DEL", key, key_len);
    if (reply == NULL) {
        return IDT_STORE_ERROR;
    }
    status = reply->type != REDIS_REPLY_INTEGER ? IDT_STORE_ERROR
             : reply->integer > 0 ? IDT_STORE_OK : IDT_STORE_NOT_FOUND;
    freeReplyObject(reply);
    return status;
}

void redis_callbacks(idt_store *store)
{
    store->add = redis_add;
    store->put = redis_put;
    store->get = redis_get;
    store->remove = redis_remove;
}
