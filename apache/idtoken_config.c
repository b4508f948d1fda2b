/*
 * The configuration: per-server and per-directory structs and their merges, and the directive
 * setters. Every IDToken* directive but IDTokenCache, IDTokenCacheFull and IDTokenRedis* (the store's, in
 * idtoken_store.c, idtoken_filestore.c and idtoken_redis.c) and IDTokenMetrics (idtoken_metrics.c) is
 * parsed by the core as Apache reads it (so configtest
 * names a bad line); the command table is generated from the core's directive specs
 * (apache/directives.inc).
 */
#include "idtoken_internal.h"

void *create_auth_idtoken_srv_config(apr_pool_t *p, server_rec *s)
{
    auth_idtoken_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    (void)s;

    /* Nothing set means the core's defaults. */
    conf->settings = apr_array_make(p, 4, sizeof(idt_setting));
    conf->site = -1;
    return conf;
}

static idt_setting *find_setting(const apr_array_header_t *settings, const char *name)
{
    int i;

    for (i = 0; i < settings->nelts; ++i) {
        idt_setting *setting = &APR_ARRAY_IDX(settings, i, idt_setting);

        if (strcmp(setting->name, name) == 0) {
            return setting;
        }
    }
    return NULL;
}

/* Sets `name`, replacing an earlier value: the later directive wins. */
static void put_setting(apr_array_header_t *settings, const char *name, const char *value)
{
    idt_setting *setting = find_setting(settings, name);

    if (setting == NULL) {
        setting = apr_array_push(settings);
        setting->name = name;
    }
    setting->value = value;
}

void *merge_auth_idtoken_srv_config(apr_pool_t *p, void *basev, void *addv)
{
    auth_idtoken_srv_conf *new = apr_pcalloc(p, sizeof(*new));
    const auth_idtoken_srv_conf *add = addv;
    const auth_idtoken_srv_conf *base = basev;
    int i;

    /* The main server's settings, each one the vhost sets replaced by the vhost's (a list too:
     * a vhost's IDTokenScope is its whole scope, not an addition). */
    new->settings = apr_array_copy(p, base->settings);
    for (i = 0; i < add->settings->nelts; ++i) {
        const idt_setting *setting = &APR_ARRAY_IDX(add->settings, i, idt_setting);

        put_setting(new->settings, setting->name, setting->value);
    }
    new->site = -1;

    return new;
}

void *create_auth_idtoken_dir_config(apr_pool_t *p, char *dir)
{
    auth_idtoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));
    (void)dir;

    conf->settings = apr_array_make(p, 2, sizeof(idt_setting));
    conf->handles = apr_array_make(p, 1, sizeof(int32_t));
    return conf;
}

void *merge_auth_idtoken_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    auth_idtoken_dir_conf *new = apr_palloc(p, sizeof(*new));
    const auth_idtoken_dir_conf *add = addv;
    const auth_idtoken_dir_conf *base = basev;

    /* Parent first: the core applies the handles in order, so the inner block wins. Arrays are
     * never changed once merged (a directive replaces its block's array), so they can be shared. */
    if (base->handles->nelts == 0) {
        new->handles = add->handles;
    }
    else if (add->handles->nelts == 0) {
        new->handles = base->handles;
    }
    else {
        new->handles = apr_array_append(p, base->handles, add->handles);
    }
    /* The core has each block's settings already; a merged configuration only needs handles. */
    new->settings = add->settings;
    return new;
}

/* NULL when the loaded library speaks our ABI. Checked by the directives too, since they call into
 * the library before check_config runs. */
const char *abi_mismatch(apr_pool_t *p)
{
    int32_t version = idt_abi_version();

    if (version == IDT_ABI_VERSION) {
        return NULL;
    }
    return apr_psprintf(p, "the IDToken library speaks ABI version %d but this module was built "
                        "for version %d: install the module and the library from the same build",
                        (int)version, IDT_ABI_VERSION);
}

/* Rejects a bad value while the directive is read, so configtest points at its line. The name is
 * the command table's (cmd->cmd->name), not the line's: Apache matches directives in any case. */
static const char *check_value(cmd_parms *cmd, const char *value)
{
    const char *err = abi_mismatch(cmd->pool);
    char *msg;

    if (err == NULL) {
        msg = idt_setting_check(cmd->cmd->name, value);
        if (msg == NULL) {
            return NULL;
        }
        err = apr_pstrdup(cmd->pool, msg);
        idt_free(msg);
    }
    return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
}

auth_idtoken_srv_conf *srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &auth_idtoken_module);
}

/* TAKE1 */
static const char *set_value(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err;
    (void)dummy;

    if (cmd->info == VALUE_IS_PATH) {
        const char *path = ap_server_root_relative(cmd->pool, arg);

        if (path == NULL) {
            return apr_psprintf(cmd->pool, "%s: invalid file path '%s'", cmd->cmd->name, arg);
        }
        arg = path;
    }
    if ((err = check_value(cmd, arg)) != NULL) {
        return err;
    }
    put_setting(srv_conf(cmd->server)->settings, cmd->cmd->name, arg);
    return NULL;
}

/* Every line of a list directive in one context adds to the same list, which the core receives
 * space-joined. */
static void append_word(apr_pool_t *p, apr_array_header_t *settings, const char *name,
                        const char *word)
{
    idt_setting *setting = find_setting(settings, name);

    if (setting == NULL) {
        put_setting(settings, name, word);
    }
    else {
        setting->value = apr_pstrcat(p, setting->value, " ", word, NULL);
    }
}

/* ITERATE: called once per word. */
static const char *add_word(cmd_parms *cmd, void *dummy, const char *word)
{
    const char *err;
    (void)dummy;

    if ((err = check_value(cmd, word)) != NULL) {
        return err;
    }
    append_word(cmd->pool, srv_conf(cmd->server)->settings, cmd->cmd->name, word);
    return NULL;
}

/* TAKE12: one value of one or two words, checked and stored space-joined. */
static const char *set_words(cmd_parms *cmd, void *dummy, const char *first, const char *second)
{
    const char *value = second ? apr_pstrcat(cmd->pool, first, " ", second, NULL) : first;
    const char *err;
    (void)dummy;

    if ((err = check_value(cmd, value)) != NULL) {
        return err;
    }
    put_setting(srv_conf(cmd->server)->settings, cmd->cmd->name, value);
    return NULL;
}

/* Hands the block's settings, as they stand after this directive, to the core. The newest handle
 * covers every directive of the block read so far, so it is the block's only one. */
static const char *register_block(cmd_parms *cmd, auth_idtoken_dir_conf *conf)
{
    char *error = NULL;
    const char *msg;
    int32_t handle;

    handle = idt_dir_register((const idt_setting *)conf->settings->elts,
                              (size_t)conf->settings->nelts, &error);
    if (handle < 0) {
        msg = apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name,
                           error ? error : "the IDToken library refused the setting");
        idt_free(error);
        return msg;
    }
    idt_free(error);
    /* A new array rather than the old one emptied: merged configurations may share the old. */
    conf->handles = apr_array_make(cmd->pool, 1, sizeof(int32_t));
    APR_ARRAY_PUSH(conf->handles, int32_t) = handle;
    return NULL;
}

/* TAKE1 in a <Location>/<Directory> block. */
static const char *set_dir_value(cmd_parms *cmd, void *dconf, const char *arg)
{
    auth_idtoken_dir_conf *conf = dconf;
    const char *err;

    if ((err = check_value(cmd, arg)) != NULL) {
        return err;
    }
    put_setting(conf->settings, cmd->cmd->name, arg);
    return register_block(cmd, conf);
}

/* ITERATE in a <Location>/<Directory> block: once per word. */
static const char *add_dir_word(cmd_parms *cmd, void *dconf, const char *word)
{
    auth_idtoken_dir_conf *conf = dconf;
    const char *err;

    if ((err = check_value(cmd, word)) != NULL) {
        return err;
    }
    append_word(cmd->pool, conf->settings, cmd->cmd->name, word);
    return register_block(cmd, conf);
}

const command_rec auth_idtoken_cmds[] =
{
#include "directives.inc"
    /* The directives the module handles itself: the core never sees the store or the shared counters. */
    AP_INIT_TAKE1("IDTokenCache", set_cache, NULL, RSRC_CONF,
                  "The shared store: file[:path][(size)], redis:host[:port], "
                  "redis-sentinel:master@host[:port][,host[:port]]..., a socache provider[:args], or none; "
                  "default file (idtoken-store in DefaultRuntimeDir, 128M)"),
    AP_INIT_TAKE1("IDTokenCacheFull", set_cache_full, NULL, RSRC_CONF,
                  "When the file store is full: evict-idle (the session idle longest gives way) or "
                  "refuse (the new login fails with 503); default evict-idle"),
    AP_INIT_FLAG("IDTokenMetrics", set_metrics, NULL, RSRC_CONF,
                 "On: count logins, sessions, requests, provider fetches and store calls for SetHandler "
                 "idtoken-metrics (in memory every process shares); default On"),
    AP_INIT_TAKE1("IDTokenRedisUser", set_redis_user, NULL, RSRC_CONF,
                  "The Redis ACL user the module logs in as; default none (the default user)"),
    AP_INIT_TAKE1("IDTokenRedisPasswordFile", set_redis_password_file, NULL, RSRC_CONF,
                  "File (relative to ServerRoot) whose first line is the Redis password; default none"),
    AP_INIT_FLAG("IDTokenRedisTLS", set_redis_tls, NULL, RSRC_CONF,
                 "On: connect to Redis (and Sentinel) over TLS; default Off"),
    AP_INIT_TAKE1("IDTokenRedisTLSCAFile", set_redis_ca_file, NULL, RSRC_CONF,
                  "CA certificates (PEM) the Redis server's certificate is checked against; default the system's"),
    AP_INIT_TAKE12("IDTokenRedisTLSCertificate", set_redis_certificate, NULL, RSRC_CONF,
                   "Client certificate for Redis: certificate file [key file] (PEM); default none"),
    AP_INIT_TAKE1("IDTokenRedisTLSServerName", set_redis_server_name, NULL, RSRC_CONF,
                  "Name the Redis server's certificate must carry, or off; default the host as addressed"),
    AP_INIT_TAKE1("IDTokenRedisDatabase", set_redis_database, NULL, RSRC_CONF,
                  "The Redis database number; default 0"),
    AP_INIT_TAKE12("IDTokenRedisTimeout", set_redis_timeout, NULL, RSRC_CONF,
                   "Milliseconds for a Redis command [and for connecting]; default 1000 1000"),
    AP_INIT_TAKE1("IDTokenRedisKeyPrefix", set_redis_key_prefix, NULL, RSRC_CONF,
                  "Prefix of every key the module writes in Redis; default none"),
    {NULL}
};
