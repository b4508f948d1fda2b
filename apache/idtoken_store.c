/*
 * The shared store: Apache's socache (IDTokenCache, shmcb by default) behind the idt_store callbacks,
 * serialized by the "idtoken-cache" mutex where the provider needs it. Set up in post_config, attached
 * to in each child, lent to the core for one request at a time.
 */
#include "idtoken_internal.h"

/* IDTokenCache is global, so like mod_authn_socache these are process-wide; store_pre_config resets
 * them at the start of each configuration pass. */
static const ap_socache_provider_t *store_provider;
static ap_socache_instance_t *store_instance;
static const char *store_spec;      /* IDTokenCache as written, NULL when not given */
static apr_global_mutex_t *store_mutex;
static int store_ready;             /* the instance is initialised for this generation */

/* Before the directives of a pass are read: the Mutex directive only accepts registered types, and
 * IDTokenCache starts over from "not given". */
apr_status_t store_pre_config(apr_pool_t *pconf)
{
    store_provider = NULL;
    store_instance = NULL;
    store_spec = NULL;
    store_mutex = NULL;
    store_ready = 0;
    return ap_mutex_register(pconf, STORE_ID, NULL, APR_LOCK_DEFAULT, 0);
}

/* IDTokenCache provider[:args] | none. The instance is created here, where a bad argument can still
 * point at the line, and initialised in post_config (as mod_authn_socache does). */
const char *set_cache(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *sep = ap_strchr_c(arg, ':');
    const char *name = sep ? apr_pstrmemdup(cmd->temp_pool, arg, sep - arg) : arg;
    (void)dummy;

    if (err) {
        return err;
    }
    store_spec = arg;
    store_provider = NULL;
    store_instance = NULL;
    if (strcasecmp(arg, "none") == 0) {
        return NULL;
    }

    store_provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                        AP_SOCACHE_PROVIDER_VERSION);
    if (store_provider == NULL) {
        return apr_psprintf(cmd->pool, "%s: unknown socache provider '%s' (load mod_socache_%s "
                            "before this line?)", cmd->cmd->name, name, name);
    }
    err = store_provider->create(&store_instance, sep ? sep + 1 : NULL, cmd->temp_pool, cmd->pool);
    if (err) {
        store_provider = NULL;
        store_instance = NULL;
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    return NULL;
}

static apr_status_t forget_store_mutex(void *data)
{
    (void)data;
    if (store_mutex) {
        apr_global_mutex_destroy(store_mutex);
        store_mutex = NULL;
    }
    return APR_SUCCESS;
}

static apr_status_t destroy_store(void *data)
{
    if (store_instance) {
        store_provider->destroy(store_instance, data);
        store_instance = NULL;
    }
    store_ready = 0;
    return APR_SUCCESS;
}

/* Sets up the store once the configuration is known (not under configtest, which stops before
 * post_config). Only when some server is a site: otherwise no shared memory, no mutex. */
int auth_idtoken_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                    server_rec *s)
{
    /* Sizes only steer how shmcb splits its memory into subcaches: short keys, and values from tiny
     * single-use marks to sessions of a few KB (an entry must fit one subcache's data area). */
    static const struct ap_socache_hints hints = {64, 2048, apr_time_from_sec(600)};
    /* Start-up runs a first pass only to check; say which store is used on the pass that serves. */
    int announce = ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG;
    const char *label = store_spec;
    const char *err;
    apr_status_t rv;
    (void)plog;

    if (sites_registered() == 0) {
        return OK;
    }

    if (store_spec == NULL) {
        store_provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                            AP_SOCACHE_PROVIDER_VERSION);
        if (store_provider) {
            /* 8 MB in the runtime directory: shmcb's own default (about 0.5 MB) splits into data
             * areas of 10 KB, too small for a session with a big ID token. */
            err = store_provider->create(&store_instance,
                                         ap_runtime_dir_relative(pconf, "idtoken-cache(8388608)"),
                                         ptemp, pconf);
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                             IDTLOGNO(0301) "IDTokenCache shmcb (the default): %s", err);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            label = "shmcb (the default)";
        }
    }
    if (store_provider == NULL) {
        if (announce) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                         IDTLOGNO(0302) "IDTokenCache none: replayed login responses are caught only within one "
                         "process; load mod_socache_shmcb");
        }
        return OK;
    }

    /* Every add takes the mutex, so the mutex exists whatever the provider. */
    rv = ap_global_mutex_create(&store_mutex, NULL, STORE_ID, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0303) "IDTokenCache: cannot create the %s mutex", STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, forget_store_mutex, apr_pool_cleanup_null);

    rv = store_provider->init(store_instance, STORE_ID, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0304) "IDTokenCache %s: cannot initialise the cache", label);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, destroy_store, apr_pool_cleanup_null);
    store_ready = 1;

    if (announce) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0305) "IDTokenCache %s: single-use marks are shared by every process of the server",
                     label);
    }
    return OK;
}

/* Each child attaches to the mutex its parent created. */
void store_child_init(apr_pool_t *p, server_rec *s)
{
    if (store_mutex) {
        const char *lockfile = apr_global_mutex_lockfile(store_mutex);
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex, lockfile, p);

        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         IDTLOGNO(0306) "IDTokenCache: cannot attach to the %s mutex in this child", STORE_ID);
        }
    }
}

/* ---- The shared store ---------------------------------------------------------------------------- */

/* shmcb passes over an entry longer than the reader's buffer as if it were absent: `add` would then
 * write over a mark it did not see. So nothing longer than IDT_STORE_VALUE_MAX is written, and every
 * read goes through a buffer that long: one per connection, made on its first read and reused by
 * every later one (the core copies a value at once), so a request costs no 64 KiB per lookup. */
#define STORE_VALUE_MAX IDT_STORE_VALUE_MAX

/* One request's view of the store. The callbacks log against r and allocate from r->pool: the core
 * calls them during idt_decide, on the thread that called it. */
typedef struct {
    request_rec *r;
    ap_socache_instance_t *instance;
    unsigned int calls;         /* socache calls for this request, for the trace line */
} store_ctx;

static int32_t store_failed(const store_ctx *ctx, apr_status_t rv, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, ctx->r, IDTLOGNO(0307) "IDTokenCache (%s): %s", store_provider->name,
                  what);
    return IDT_STORE_ERROR;
}

/* Every call goes in and out through these: the call is counted, and the mutex is held around it
 * where the provider is not safe across processes (shmcb), or `always` (add's look-then-write).
 * store_enter returns 0 when the mutex could not be taken; store_leave when it could not be released
 * (the call's result is then not trusted). */
static int store_enter(store_ctx *ctx, int always, int *locked)
{
    apr_status_t rv;

    ++ctx->calls;
    *locked = always || (store_provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) != 0;
    if (!*locked) {
        return 1;
    }
    if ((rv = apr_global_mutex_lock(store_mutex)) != APR_SUCCESS) {
        store_failed(ctx, rv, "cannot take the " STORE_ID " mutex");
        *locked = 0;
        return 0;
    }
    return 1;
}

static int store_leave(const store_ctx *ctx, int locked)
{
    apr_status_t rv;

    if (locked && (rv = apr_global_mutex_unlock(store_mutex)) != APR_SUCCESS) {
        store_failed(ctx, rv, "cannot release the " STORE_ID " mutex");
        return 0;
    }
    return 1;
}

/* socache lengths are unsigned int. */
static int store_key_ok(const store_ctx *ctx, const unsigned char *key, size_t key_len)
{
    if (key == NULL || key_len == 0 || key_len > UINT_MAX) {
        store_failed(ctx, APR_EINVAL, "invalid key");
        return 0;
    }
    return 1;
}

static int store_value_ok(const store_ctx *ctx, const unsigned char *value, size_t value_len,
                          int64_t expires_at)
{
    if ((value == NULL && value_len > 0) || value_len > STORE_VALUE_MAX) {
        store_failed(ctx, APR_EINVAL,
                     apr_psprintf(ctx->r->pool, "refused a value of %" APR_SIZE_T_FMT " bytes",
                                  (apr_size_t)value_len));
        return 0;
    }
    if (expires_at < 0 || expires_at > APR_INT64_MAX / APR_USEC_PER_SEC) {
        store_failed(ctx, APR_EINVAL, "invalid expiry time");
        return 0;
    }
    return 1;
}

/* The unlocked calls. */
static apr_status_t store_retrieve(const store_ctx *ctx, const unsigned char *key, size_t key_len,
                                   unsigned char **found, unsigned int *found_len)
{
    conn_rec *c = ctx->r->connection;
    unsigned char *buffer = ap_get_module_config(c->conn_config, &auth_idtoken_module);

    if (buffer == NULL) {
        buffer = apr_palloc(c->pool, STORE_VALUE_MAX);
        ap_set_module_config(c->conn_config, &auth_idtoken_module, buffer);
    }
    *found = buffer;
    *found_len = STORE_VALUE_MAX;
    return store_provider->retrieve(ctx->instance, ctx->r->server, key, (unsigned int)key_len,
                                    *found, found_len, ctx->r->pool);
}

static apr_status_t store_store(const store_ctx *ctx, const unsigned char *key, size_t key_len,
                                const unsigned char *value, size_t value_len, int64_t expires_at)
{
    /* An empty value may come as NULL (Swift's empty arrays have no address). store() takes a
     * non-const buffer but only copies from it. */
    static unsigned char empty[1];

    return store_provider->store(ctx->instance, ctx->r->server, key, (unsigned int)key_len,
                                 apr_time_from_sec(expires_at),
                                 value ? (unsigned char *)value : empty,
                                 (unsigned int)value_len, ctx->r->pool);
}

static int32_t store_put(void *ctxv, const unsigned char *key, size_t key_len,
                         const unsigned char *value, size_t value_len, int64_t expires_at)
{
    store_ctx *ctx = ctxv;
    int locked;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)
        || !store_enter(ctx, 0, &locked)) {
        return IDT_STORE_ERROR;
    }
    rv = store_store(ctx, key, key_len, value, value_len, expires_at);
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    return rv == APR_SUCCESS ? IDT_STORE_OK : store_failed(ctx, rv, "put failed");
}

static int32_t store_get(void *ctxv, const unsigned char *key, size_t key_len,
                         const unsigned char **value, size_t *value_len)
{
    store_ctx *ctx = ctxv;
    unsigned char *found;
    unsigned int found_len;
    int locked;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_enter(ctx, 0, &locked)) {
        return IDT_STORE_ERROR;
    }
    rv = store_retrieve(ctx, key, key_len, &found, &found_len);
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return IDT_STORE_NOT_FOUND;
    }
    if (rv != APR_SUCCESS) {
        return store_failed(ctx, rv, "get failed");
    }
    if (value == NULL || value_len == NULL) {
        return store_failed(ctx, APR_EINVAL, "get: no place for the result");
    }
    /* Lent from the connection's read buffer until the next store call; the core copies it at once. */
    *value = found;
    *value_len = found_len;
    return IDT_STORE_OK;
}

static int32_t store_remove(void *ctxv, const unsigned char *key, size_t key_len)
{
    store_ctx *ctx = ctxv;
    int locked;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_enter(ctx, 0, &locked)) {
        return IDT_STORE_ERROR;
    }
    rv = store_provider->remove(ctx->instance, ctx->r->server, key, (unsigned int)key_len,
                                ctx->r->pool);
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return IDT_STORE_NOT_FOUND;
    }
    return rv == APR_SUCCESS ? IDT_STORE_OK : store_failed(ctx, rv, "remove failed");
}

/* socache has no add-if-absent: look, then write, with the mutex held throughout so no other
 * process of this server slips in between. (Servers sharing a networked provider each have their
 * own mutex.) */
static int32_t store_add(void *ctxv, const unsigned char *key, size_t key_len,
                         const unsigned char *value, size_t value_len, int64_t expires_at)
{
    store_ctx *ctx = ctxv;
    unsigned char *found;
    unsigned int found_len;
    int32_t status;
    int locked;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)
        || !store_enter(ctx, 1, &locked)) {
        return IDT_STORE_ERROR;
    }
    rv = store_retrieve(ctx, key, key_len, &found, &found_len);
    if (rv == APR_SUCCESS) {
        status = IDT_STORE_EXISTS;
    }
    else if (!APR_STATUS_IS_NOTFOUND(rv)) {
        status = store_failed(ctx, rv, "add: the look-up failed");
    }
    else if ((rv = store_store(ctx, key, key_len, value, value_len, expires_at)) != APR_SUCCESS) {
        status = store_failed(ctx, rv, "add failed");
    }
    else {
        status = IDT_STORE_OK;
    }
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    return status;
}

/* NULL without a store: the core then falls back on what one process can see. */
const idt_store *request_store(request_rec *r)
{
    store_ctx *ctx;
    idt_store *store;

    if (!store_ready) {
        return NULL;
    }
    ctx = apr_palloc(r->pool, sizeof(*ctx));
    ctx->r = r;
    ctx->instance = store_instance;
    ctx->calls = 0;
    store = apr_palloc(r->pool, sizeof(*store));
    store->ctx = ctx;
    store->add = store_add;
    store->put = store_put;
    store->get = store_get;
    store->remove = store_remove;
    return store;
}

unsigned int store_calls(const idt_store *store)
{
    return store ? ((const store_ctx *)store->ctx)->calls : 0;
}
