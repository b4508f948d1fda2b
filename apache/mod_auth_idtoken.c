/*
 * mod_auth_idtoken: AuthType IDToken for Apache httpd 2.4.
 *
 * This file is the thin Apache side only. It gathers the facts of a request into an idt_request,
 * asks the core library (libIDToken, see CShim/include/idtoken.h) for an idt_decision and applies
 * it. What a login is, which cookies and headers mean what: all of that lives in the core. The
 * IDToken* directives are handed to the core as (name, value) pairs, checked by the core as they
 * are read; the module only knows their shape (one word, a list, one or two words) and where they
 * may appear. Those of a <Location>/<Directory> block are registered with the core as the block is
 * read; a request carries the handles of the blocks that apply to it. `Require idtoken-claim` is
 * checked and evaluated by the core too, against the claims kept from the request's login.
 *
 *   IDTokenDiscoveryURL   https://login.example.com/.well-known/openid-configuration
 *   IDTokenClientID       my-client
 *   IDTokenRedirectURI    /protected/callback
 *   IDTokenSessionKeyFile /etc/apache2/idtoken.key
 *   <Location "/protected">
 *       AuthType IDToken
 *       Require valid-user
 *   </Location>
 *   <Location "/protected/admin">
 *       IDTokenAuthRequestParams prompt=login
 *       Require idtoken-claim groups:admins
 *   </Location>
 *
 * The files: idtoken_config.c (directives, merges), idtoken_sites.c (start-up checks, sites),
 * idtoken_store.c (which store, its mutex, the socache adapter), idtoken_filestore.c and
 * idtoken_table.c (the module's own store in a file), idtoken_redis.c, idtoken_redis_pool.c and
 * idtoken_redis_conn.c (the module's Redis client), idtoken_request.c (every request),
 * idtoken_authz.c (`Require idtoken-claim`), idtoken_metrics.c (the counters and their handlers), and this
 * one: the module record and the table of hooks. docs/internals.md tells
 * how the Swift runtime lives inside httpd.
 */

#include "idtoken_internal.h"

/* The release in the server's signature (`Server:` with ServerTokens Full, the status page) and in
 * one notice per start. A graceful restart keeps the library already loaded (it is never unloaded):
 * after an upgrade the module and the library can then differ until httpd is stopped and started,
 * and the notice says so. */
static int version_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    const char *library = idt_version();
    (void)plog;
    (void)ptemp;

    ap_add_version_component(pconf, "mod_auth_idtoken/" IDT_VERSION);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || abi_mismatch(ptemp) != NULL) {
        return OK;
    }
    if (library == NULL || strcmp(library, IDT_VERSION) != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0001) "mod_auth_idtoken %s runs with libIDToken %s, still loaded from before a "
                     "graceful restart: stop and start httpd to load the new library", IDT_VERSION,
                     library ? library : "(unknown)");
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0002) "mod_auth_idtoken %s (ABI %d) loaded", IDT_VERSION, IDT_ABI_VERSION);
    }
    return OK;
}

static int metrics_pre_config_hook(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    metrics_pre_config();
    return OK;
}

/* Threads and connections must start after fork (docs/internals.md): the core does that here. */
static void auth_idtoken_child_init(apr_pool_t *p, server_rec *s)
{
    store_child_init(p, s);
    metrics_child_init(p, s);
    idt_child_init();
}

static void register_hooks(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "idtoken-claim", AUTHZ_PROVIDER_VERSION,
                              &idtoken_claim_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_pre_config(auth_idtoken_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(auth_idtoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* After the sites and the MPM's own limits are known. */
    ap_hook_check_config(store_check_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_post_config(auth_idtoken_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(sites_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(version_post_config, NULL, NULL, APR_HOOK_LAST);
    ap_hook_pre_config(metrics_pre_config_hook, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* SetHandler idtoken-metrics, idtoken-status */
    ap_hook_handler(metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(auth_idtoken_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* First, so no other module (mod_setenvif, mod_headers "early", ...) sees a forged header. */
    ap_hook_post_read_request(auth_idtoken_post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_check_authn(auth_idtoken_check_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_insert_filter(auth_idtoken_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    /* Before mod_cache's CACHE_SAVE filter, so it sees the response as private too. */
    ap_register_output_filter(FILTER_PRIVATE, private_filter, NULL, AP_FTYPE_CONTENT_SET - 2);
}

module AP_MODULE_DECLARE_DATA auth_idtoken_module =
{
    STANDARD20_MODULE_STUFF,
    create_auth_idtoken_dir_config,     /* dir config creater */
    merge_auth_idtoken_dir_config,      /* dir merger */
    create_auth_idtoken_srv_config,     /* server config */
    merge_auth_idtoken_srv_config,      /* merge server config */
    auth_idtoken_cmds,                  /* command apr_table_t */
    register_hooks,                     /* register hooks */
#if AP_MODULE_MAGIC_AT_LEAST(AP_MODULE_FLAGS_MMN_MAJOR, AP_MODULE_FLAGS_MMN_MINOR)
    AP_MODULE_FLAG_NONE                 /* flags */
#endif
};

