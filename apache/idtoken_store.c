/*
 * The shared store behind the idt_store callbacks: which one (IDTokenCache: the module's own file
 * store by default, the module's Redis client, one of Apache's socache providers, or none), the
 * "idtoken-cache" mutex that serialises it, the per-connection read buffer, and the socache adapter
 * itself. The file store's callbacks are in idtoken_filestore.c, Redis's in idtoken_redis.c.
 */
#include "idtoken_internal.h"

#include "apr_shm.h"
#include "apr_thread_mutex.h"

typedef enum {
    STORE_FILE = 0,     /* the module's own (idtoken_filestore.c): the default */
    STORE_SOCACHE,
    STORE_REDIS,        /* the module's own client (idtoken_redis.c): redis: and redis-sentinel: */
    STORE_NONE
} store_kind;

/* IDTokenCache is global, so like mod_authn_socache these are process-wide; store_pre_config resets
 * them at the start of each configuration pass. */
static store_kind kind;
static const ap_socache_provider_t *store_provider;
static ap_socache_instance_t *store_instance;
static apr_global_mutex_t *store_mutex;
/* Per child: the threads of a child queue here before one of them takes the cross-process mutex.
 * apr_global_mutex has such a lock of its own only for mechanisms whose locks belong to processes
 * (fcntl, flock); with APR's default on Linux, a process-shared pthread mutex (what a stock Debian
 * apache2.conf gives every mutex), all threads of all children met on the one futex: with cache
 * sessions, which then read the store on every request, that cost 34 µs of CPU per request where the
 * fcntl mutex cost 17 (bench/README.md, "Where the time goes"). Logins, logouts and the first request
 * of a session after a write still take it. */
static apr_thread_mutex_t *store_queue;
static int store_ready;             /* the store is set up for this generation */
/* How many writes the store has taken, in memory every process of the server shares: the core reads
 * it before it reads a session, and lets that session through again without reading it while the
 * count has not moved (idt_store.writes). NULL for the stores other servers write too (Redis,
 * memcache): a session kept there is read on every request. */
static apr_uint64_t *store_writes;

/* The mutex outlives configuration passes (ap_retained_data), unlike the rest: during a graceful
 * restart the old generation's children still write the file store while the new one's start, and
 * both must take the same lock. */
#define RETAINED_MUTEX "auth_idtoken-store-mutex"
typedef struct {
    apr_global_mutex_t *mutex;
} retained_mutex;

/* The write count, kept like the mutex: the old generation's children write the same store during a
 * graceful restart, and the new one's must see it move. Its own key, not a field of retained_mutex: a
 * graceful restart into a newer module finds the older one's retained_mutex, of the older size. */
#define RETAINED_WRITES "auth_idtoken-store-writes"
typedef struct {
    apr_shm_t *shm;
    apr_uint64_t *writes;
} retained_writes;

/* Before the directives of a pass are read: the Mutex directive only accepts registered types, and
 * IDTokenCache starts over from "not given". */
apr_status_t store_pre_config(apr_pool_t *pconf)
{
    kind = STORE_FILE;
    store_provider = NULL;
    store_instance = NULL;
    store_mutex = NULL;
    store_writes = NULL;
    store_ready = 0;
    filestore_pre_config();
    redis_pre_config();
    return ap_mutex_register(pconf, STORE_ID, NULL, APR_LOCK_DEFAULT, 0);
}

/* "file", "file:path", "file(size)", "file:path(size)": the rest after the name, else NULL. */
static const char *file_store_args(const char *arg)
{
    if (strncasecmp(arg, "file", 4) != 0) {
        return NULL;
    }
    return (arg[4] == '\0' || arg[4] == ':' || arg[4] == '(') ? arg + 4 : NULL;
}

/* "redis:..." and "redis-sentinel:...": the module's own client (mod_socache_redis, which had the
 * name before, is not used: it has no password, TLS, database or Sentinel, and no add-if-absent). */
static int is_redis(const char *arg)
{
    return strncasecmp(arg, "redis:", 6) == 0 || strncasecmp(arg, "redis-sentinel:", 15) == 0;
}

/* IDTokenCache file[:path][(size)] | redis:... | redis-sentinel:... | provider[:args] | none. A socache instance is created here,
 * where a bad argument can still point at the line, and initialised in post_config (as
 * mod_authn_socache does). */
const char *set_cache(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *sep = ap_strchr_c(arg, ':');
    const char *name = sep ? apr_pstrmemdup(cmd->temp_pool, arg, sep - arg) : arg;
    const char *file_args = file_store_args(arg);
    (void)dummy;

    if (err) {
        return err;
    }
    store_provider = NULL;
    store_instance = NULL;
    if (strcasecmp(arg, "none") == 0) {
        kind = STORE_NONE;
        return NULL;
    }
    if (file_args) {
        kind = STORE_FILE;
        return filestore_configure(cmd, file_args);
    }
    if (is_redis(arg)) {
        kind = STORE_REDIS;
        return redis_configure(cmd, arg);
    }

    kind = STORE_SOCACHE;
    store_provider = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name,
                                        AP_SOCACHE_PROVIDER_VERSION);
    if (store_provider == NULL) {
        return apr_psprintf(cmd->pool, "%s: unknown store '%s': file, none, or a socache provider "
                            "(load mod_socache_%s before this line?)", cmd->cmd->name, name, name);
    }
    err = store_provider->create(&store_instance, sep ? sep + 1 : NULL, cmd->temp_pool, cmd->pool);
    if (err) {
        store_provider = NULL;
        store_instance = NULL;
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    return NULL;
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

/* The mutex of every generation: made once, in the process pool, at the first pass that needs it. */
static apr_status_t store_mutex_init(server_rec *s)
{
    retained_mutex *kept = ap_retained_data_get(RETAINED_MUTEX);
    apr_status_t rv;

    if (kept == NULL) {
        kept = ap_retained_data_create(RETAINED_MUTEX, sizeof(*kept));
    }
    if (kept->mutex == NULL) {
        rv = ap_global_mutex_create(&kept->mutex, NULL, STORE_ID, NULL, s, s->process->pool, 0);
        if (rv != APR_SUCCESS || kept->mutex == NULL) {
            kept->mutex = NULL;
            return rv != APR_SUCCESS ? rv : APR_EINIT;
        }
    }
    store_mutex = kept->mutex;
    return APR_SUCCESS;
}

/* Only stores no other server writes to: the module's file (one server's, under its mutex) and shmcb. */
static int writes_counted_here(void)
{
    return kind == STORE_FILE || (kind == STORE_SOCACHE && strcmp(store_provider->name, "shmcb") == 0);
}

/* The write count of every generation, made once in the process pool (anonymous: children get it
 * through fork). Without it (it could not be made) every request reads its session, as before. */
static void store_writes_init(server_rec *s)
{
    retained_writes *kept = ap_retained_data_get(RETAINED_WRITES);

    store_writes = NULL;
    if (!writes_counted_here()) {
        return;
    }
    if (kept == NULL) {
        kept = ap_retained_data_create(RETAINED_WRITES, sizeof(*kept));
    }
    if (kept->writes == NULL) {
        if (apr_shm_create(&kept->shm, sizeof(apr_uint64_t), NULL, s->process->pool) != APR_SUCCESS) {
            kept->shm = NULL;
            return;
        }
        kept->writes = apr_shm_baseaddr_get(kept->shm);
        *kept->writes = 0;
    }
    store_writes = kept->writes;
}

/* After every call that may have changed an entry (a write, an eviction, a repair), before the mutex
 * is released: a reader that sees the new count also sees the change. */
void store_changed(void)
{
    if (store_writes) {
        __atomic_add_fetch(store_writes, 1, __ATOMIC_RELEASE);
    }
}

static uint64_t store_write_count(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(store_writes, __ATOMIC_ACQUIRE);
}

apr_status_t store_mutex_lock(void)
{
    return store_mutex ? apr_global_mutex_lock(store_mutex) : APR_EINIT;
}

apr_status_t store_mutex_unlock(void)
{
    return store_mutex ? apr_global_mutex_unlock(store_mutex) : APR_EINIT;
}

static int socache_post_config(apr_pool_t *pconf, server_rec *s, int announce)
{
    /* Sizes only steer how shmcb splits its memory into subcaches: short keys, and values from tiny
     * single-use marks to sessions of a few KB (an entry must fit one subcache's data area). */
    static const struct ap_socache_hints hints = {64, 2048, apr_time_from_sec(600)};
    apr_status_t rv = store_provider->init(store_instance, STORE_ID, &hints, s, pconf);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0304) "IDTokenCache %s: cannot initialise the cache", store_provider->name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, destroy_store, apr_pool_cleanup_null);
    if (announce) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0305) "IDTokenCache %s: single-use marks are shared by every process of the server",
                     store_provider->name);
    }
    return OK;
}

/* Sets up the store once the configuration is known (not under configtest, which stops before
 * post_config). Only when some server is a site: otherwise no file, no mutex. */
int auth_idtoken_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                    server_rec *s)
{
    /* Start-up runs a first pass only to check; say which store is used on the pass that serves. */
    int announce = ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG;
    apr_status_t rv;
    int rc;
    (void)plog;
    (void)ptemp;

    if (sites_registered() == 0) {
        return OK;
    }
    if (kind == STORE_NONE) {
        if (announce) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                         IDTLOGNO(0302) "IDTokenCache none: replayed login responses are caught only within one "
                         "process; remove IDTokenCache none to use the shared file store");
        }
        return OK;
    }

    if (kind == STORE_REDIS) {
        /* Redis serialises its own commands: no mutex. */
        rc = redis_post_config(pconf, s, announce);
        store_ready = rc == OK;
        return rc;
    }
    /* Every other store's add takes the mutex, so the mutex exists whatever the store. */
    rv = store_mutex_init(s);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0303) "IDTokenCache: cannot create the %s mutex", STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    rc = kind == STORE_FILE ? filestore_post_config(pconf, s, announce)
                            : socache_post_config(pconf, s, announce);
    store_writes_init(s);
    store_ready = rc == OK;
    return rc;
}

/* Each child attaches to the mutex its parent created. */
void store_child_init(apr_pool_t *p, server_rec *s)
{
    if (store_ready && kind == STORE_REDIS) {
        redis_child_init(p, s);
    }
    if (store_mutex) {
        const char *lockfile = apr_global_mutex_lockfile(store_mutex);
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex, lockfile, p);

        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         IDTLOGNO(0306) "IDTokenCache: cannot attach to the %s mutex in this child", STORE_ID);
        }
        /* Without it (it could not be made) the threads go to the global mutex directly, as before. */
        if (apr_thread_mutex_create(&store_queue, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
            store_queue = NULL;
        }
    }
}

/* The server (or vhost) whose sessions live in the store, if any. */
static server_rec *cache_session_site(server_rec *s)
{
    for (; s; s = s->next) {
        const auth_idtoken_srv_conf *conf = srv_conf(s);
        int i;

        for (i = 0; conf && conf->site >= 0 && i < conf->settings->nelts; ++i) {
            const idt_setting *setting = &APR_ARRAY_IDX(conf->settings, i, idt_setting);

            if (strcmp(setting->name, "IDTokenSessionStore") == 0 && strcasecmp(setting->value, "cache") == 0) {
                return s;
            }
        }
    }
    return NULL;
}

/* httpd -X, ONE_PROCESS, an MPM that does not fork, or one allowed a single child. */
static int serves_from_one_process(int *daemons)
{
    int forked = AP_MPMQ_NOT_SUPPORTED;

    *daemons = 0;
    if (ap_exists_config_define("ONE_PROCESS") || ap_exists_config_define("DEBUG")) {
        return 1;
    }
    if (ap_mpm_query(AP_MPMQ_IS_FORKED, &forked) != APR_SUCCESS || forked == AP_MPMQ_NOT_SUPPORTED) {
        return 1;
    }
    return ap_mpm_query(AP_MPMQ_MAX_DAEMONS, daemons) == APR_SUCCESS && *daemons == 1;
}

/* After the sites are registered and the MPM has settled its limits (APR_HOOK_LAST), so that
 * configtest refuses what could not work: cache sessions kept per process under an MPM that spreads
 * a browser's requests over several, and a policy for when the store is full that only the file store
 * has. */
int store_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *site;
    int daemons;
    int rc;
    (void)plog;

    if ((rc = redis_check_config(pconf, s, kind == STORE_REDIS)) != OK) {
        return rc;
    }
    if (filestore_full_policy_set() && kind != STORE_FILE) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0309) "IDTokenCacheFull applies to the module's own store (IDTokenCache file) "
                     "only; %s", kind == STORE_NONE ? "IDTokenCache is none"
                     : kind == STORE_REDIS ? "Redis evicts entries by its own maxmemory-policy"
                     : apr_psprintf(ptemp, "%s evicts entries by its own rules", store_provider->name));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (kind != STORE_NONE || (site = cache_session_site(s)) == NULL || serves_from_one_process(&daemons)) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, site,
                 IDTLOGNO(0308) "%s: IDTokenSessionStore cache needs a store that every process of the "
                 "server shares, but IDTokenCache is none: the %s MPM runs up to %d processes, each would "
                 "keep its own sessions, and most requests would miss them. Remove IDTokenCache none (the "
                 "default store, file, is shared), name a shared one (IDTokenCache file, shmcb, redis:...), "
                 "or use IDTokenSessionStore cookie", server_where(ptemp, site), ap_show_mpm(), daemons);
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- The shared store ---------------------------------------------------------------------------- */

/* shmcb passes over an entry longer than the reader's buffer as if it were absent: `add` would then
 * write over a mark it did not see. So nothing longer than IDT_STORE_VALUE_MAX is written, and every
 * read goes through a buffer that long: one per connection, made on its first read and reused by
 * every later one (the core copies a value at once), so a request costs no 64 KiB per lookup. */
#define STORE_VALUE_MAX IDT_STORE_VALUE_MAX

unsigned char *store_read_buffer(request_rec *r)
{
    conn_rec *c = r->connection;
    unsigned char *buffer = ap_get_module_config(c->conn_config, &auth_idtoken_module);

    if (buffer == NULL) {
        buffer = apr_palloc(c->pool, STORE_VALUE_MAX);
        ap_set_module_config(c->conn_config, &auth_idtoken_module, buffer);
    }
    return buffer;
}

int32_t store_failed(const store_ctx *ctx, apr_status_t rv, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, ctx->r, IDTLOGNO(0307) "IDTokenCache (%s): %s",
                  kind == STORE_FILE ? "file" : kind == STORE_REDIS ? "redis" : store_provider->name, what);
    return IDT_STORE_ERROR;
}

/* Every call goes in and out through these: the call is counted, and the mutex is held around it
 * where the store is not safe across processes (the file store, shmcb), or `always` (add's
 * look-then-write). store_enter returns 0 when the mutex could not be taken; store_leave when it
 * could not be released (the call's result is then not trusted). */
int store_enter(store_ctx *ctx, int always, int *locked)
{
    apr_status_t rv;

    ++ctx->calls;
    *locked = always || kind == STORE_FILE || (store_provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) != 0;
    if (!*locked) {
        return 1;
    }
    if (store_queue && apr_thread_mutex_lock(store_queue) != APR_SUCCESS) {
        store_failed(ctx, APR_EGENERAL, "cannot take this child's " STORE_ID " queue");
        *locked = 0;
        return 0;
    }
    rv = store_mutex ? apr_global_mutex_lock(store_mutex) : APR_EINIT;
    if (rv != APR_SUCCESS) {
        if (store_queue) {
            apr_thread_mutex_unlock(store_queue);
        }
        store_failed(ctx, rv, "cannot take the " STORE_ID " mutex");
        *locked = 0;
        return 0;
    }
    return 1;
}

int store_leave(const store_ctx *ctx, int locked)
{
    apr_status_t rv;

    if (!locked) {
        return 1;
    }
    rv = apr_global_mutex_unlock(store_mutex);
    if (store_queue) {
        apr_thread_mutex_unlock(store_queue);
    }
    if (rv != APR_SUCCESS) {
        store_failed(ctx, rv, "cannot release the " STORE_ID " mutex");
        return 0;
    }
    return 1;
}

/* socache lengths are unsigned int. */
int store_key_ok(const store_ctx *ctx, const unsigned char *key, size_t key_len)
{
    if (key == NULL || key_len == 0 || key_len > UINT_MAX) {
        store_failed(ctx, APR_EINVAL, "invalid key");
        return 0;
    }
    return 1;
}

int store_value_ok(const store_ctx *ctx, const unsigned char *value, size_t value_len, int64_t expires_at)
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

/* ---- The socache adapter -------------------------------------------------------------------------- */

/* mod_socache_shmcb picks one of its subcaches by a key's first byte (and filters by its second):
 * every key of ours starts with "idtoken:", so they all went to one subcache, a 32nd of the cache or
 * less, and a few logins later the oldest sessions and single-use marks were gone. Two bytes of a hash
 * of the key go in front. Only for shmcb: its entries do not outlive a restart, so no one is logged out
 * by the change, where memcache's would be. */
static const unsigned char *socache_key(const store_ctx *ctx, const unsigned char *key, size_t key_len,
                                        unsigned int *len)
{
    unsigned char *spread;
    apr_uint32_t h = 2166136261u;
    size_t i;

    *len = (unsigned int)key_len;
    if (strcmp(store_provider->name, "shmcb") != 0) {
        return key;
    }
    for (i = 0; i < key_len; ++i) {
        h = (h ^ key[i]) * 16777619u;
    }
    spread = apr_palloc(ctx->r->pool, key_len + 2);
    spread[0] = (unsigned char)(h >> 24);
    spread[1] = (unsigned char)(h >> 16);
    memcpy(spread + 2, key, key_len);
    *len = (unsigned int)key_len + 2;
    return spread;
}

/* The unlocked calls. */
static apr_status_t socache_retrieve(const store_ctx *ctx, const unsigned char *key, size_t key_len,
                                     unsigned char **found, unsigned int *found_len)
{
    unsigned int len;
    const unsigned char *k = socache_key(ctx, key, key_len, &len);

    *found = store_read_buffer(ctx->r);
    *found_len = STORE_VALUE_MAX;
    return store_provider->retrieve(store_instance, ctx->r->server, k, len, *found, found_len, ctx->r->pool);
}

static apr_status_t socache_store(const store_ctx *ctx, const unsigned char *key, size_t key_len,
                                  const unsigned char *value, size_t value_len, int64_t expires_at)
{
    /* An empty value may come as NULL (Swift's empty arrays have no address). store() takes a
     * non-const buffer but only copies from it. */
    static unsigned char empty[1];
    unsigned int len;
    const unsigned char *k = socache_key(ctx, key, key_len, &len);

    return store_provider->store(store_instance, ctx->r->server, k, len,
                                 apr_time_from_sec(expires_at),
                                 value ? (unsigned char *)value : empty,
                                 (unsigned int)value_len, ctx->r->pool);
}

/* socache chooses for itself what to evict: the flags mean nothing to it. */
static int32_t socache_put(void *ctxv, const unsigned char *key, size_t key_len,
                           const unsigned char *value, size_t value_len, int64_t expires_at,
                           uint32_t flags)
{
    store_ctx *ctx = ctxv;
    int locked;
    apr_status_t rv;
    (void)flags;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)
        || !store_enter(ctx, 0, &locked)) {
        return IDT_STORE_ERROR;
    }
    rv = socache_store(ctx, key, key_len, value, value_len, expires_at);
    store_changed();
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    return rv == APR_SUCCESS ? IDT_STORE_OK : store_failed(ctx, rv, "put failed");
}

static int32_t socache_get(void *ctxv, const unsigned char *key, size_t key_len,
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
    rv = socache_retrieve(ctx, key, key_len, &found, &found_len);
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

static int32_t socache_remove(void *ctxv, const unsigned char *key, size_t key_len)
{
    store_ctx *ctx = ctxv;
    unsigned int len;
    int locked;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_enter(ctx, 0, &locked)) {
        return IDT_STORE_ERROR;
    }
    key = socache_key(ctx, key, key_len, &len);
    rv = store_provider->remove(store_instance, ctx->r->server, key, len, ctx->r->pool);
    store_changed();
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
static int32_t socache_add(void *ctxv, const unsigned char *key, size_t key_len,
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
    rv = socache_retrieve(ctx, key, key_len, &found, &found_len);
    if (rv == APR_SUCCESS) {
        status = IDT_STORE_EXISTS;
    }
    else if (!APR_STATUS_IS_NOTFOUND(rv)) {
        status = store_failed(ctx, rv, "add: the look-up failed");
    }
    else if ((rv = socache_store(ctx, key, key_len, value, value_len, expires_at)) != APR_SUCCESS) {
        status = store_failed(ctx, rv, "add failed");
    }
    else {
        status = IDT_STORE_OK;
    }
    store_changed();
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    return status;
}

/* ---- Lending it ------------------------------------------------------------------------------------ */

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
    ctx->calls = 0;
    store = apr_palloc(r->pool, sizeof(*store));
    store->ctx = ctx;
    store->writes = store_writes ? store_write_count : NULL;
    if (kind == STORE_FILE) {
        filestore_callbacks(store);
    }
    else if (kind == STORE_REDIS) {
        redis_callbacks(store);
    }
    else {
        store->add = socache_add;
        store->put = socache_put;
        store->get = socache_get;
        store->remove = socache_remove;
    }
    return store;
}

unsigned int store_calls(const idt_store *store)
{
    return store ? ((const store_ctx *)store->ctx)->calls : 0;
}

const char *store_trace_note(apr_pool_t *p)
{
    return !store_ready ? "" : kind == STORE_FILE ? filestore_trace_note(p)
           : kind == STORE_REDIS ? redis_trace_note(p) : "";
}

/* ---- For the metrics ------------------------------------------------------------------------------- */

const char *store_kind_name(void)
{
    if (sites_registered() == 0 || kind == STORE_NONE) {
        return "none";
    }
    switch (kind) {
    case STORE_FILE:
        return "file";
    case STORE_REDIS:
        return "redis";
    default:
        return store_provider ? store_provider->name : "none";
    }
}

/* A write of a key of its own, read back: a dead socache provider may answer a read with "not found"
 * (mod_socache_redis does, once it has marked its server down), so a read alone proves nothing. The
 * file store takes its mutex for both; a networked one makes two round trips. */
int store_probe(request_rec *r)
{
    static const unsigned char key[] = "idtoken:status-probe";
    const idt_store *store;
    const unsigned char *value = NULL;
    size_t value_len = 0;

    if (sites_registered() == 0 || kind == STORE_NONE) {
        return -1;
    }
    store = request_store(r);
    if (store == NULL) {
        return 0;
    }
    if (store->put(store->ctx, key, sizeof(key) - 1, (const unsigned char *)"1", 1,
                   apr_time_sec(apr_time_now()) + 60, 0) != IDT_STORE_OK) {
        return 0;
    }
    return store->get(store->ctx, key, sizeof(key) - 1, &value, &value_len) == IDT_STORE_OK;
}

int store_file_counts(store_counts *out)
{
    return store_ready && kind == STORE_FILE && filestore_counts(out);
}
