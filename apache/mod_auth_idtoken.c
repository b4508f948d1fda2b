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
 * The core keeps single-use marks in a store shared by every process of the server: Apache's
 * socache (IDTokenCache, shmcb by default), serialized by the "idtoken-cache" mutex.
 */

#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_tables.h"
#include "apr_global_mutex.h"

#include "ap_config.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"
#include "mod_core.h"           /* ap_response_code_string() */
#include "util_cfgtree.h"       /* ap_conftree */
#include "util_mutex.h"

#include "idtoken.h"

#include <limits.h>
#include <string.h>

APLOG_USE_MODULE(auth_idtoken);

#define IDTOKEN_AUTH_TYPE "IDToken"
/* A pass that sent a Set-Cookie marks its request; the filter then keeps the response private. */
#define NOTE_PRIVATE "auth_idtoken-private"
#define FILTER_PRIVATE "AUTH_IDTOKEN_PRIVATE"

typedef struct {
    /* idt_setting, one per directive set in this server's own context; after the merge, the
     * vhost's own plus those it inherits. Names come from the command table, values live in the
     * configuration pool. */
    apr_array_header_t *settings;
    /* Handle from idt_site_register, -1 when this server is not a site. Set by check_config on
     * every configuration pass, never merged: each virtual host is a site of its own. */
    int32_t site;
} auth_idtoken_srv_conf;

/* A <Location>/<Directory> block. Blocks are merged by the core, not here: the module only hands
 * it the handles of the blocks a request falls in, outermost first. */
typedef struct {
    /* idt_setting of this block's own directives, as for a server. */
    apr_array_header_t *settings;
    /* int32_t: this block's newest handle from idt_dir_register (none without directives); after
     * a merge, the enclosing blocks' handles followed by the inner one's. */
    apr_array_header_t *handles;
} auth_idtoken_dir_conf;

/* What an authenticated IDT_PASS leaves for the rest of the request (request_config): the claims
 * `Require idtoken-claim` is answered from, in r->pool (where the decision lives). None for an
 * anonymous pass. */
typedef struct {
    const idt_pair *claims;
    size_t claims_count;
} auth_idtoken_req_conf;

/* The shared store. IDTokenCache is global, so like mod_authn_socache these are process-wide;
 * pre_config resets them at the start of each configuration pass. */
#define STORE_ID "idtoken-cache"    /* the Mutex type and the socache consumer name */
static const ap_socache_provider_t *store_provider;
static ap_socache_instance_t *store_instance;
static const char *store_spec;      /* IDTokenCache as written, NULL when not given */
static apr_global_mutex_t *store_mutex;
static int store_ready;             /* the instance is initialised for this generation */
static int site_count;              /* sites registered by the last check_config */

static void *create_auth_idtoken_srv_config(apr_pool_t *p, server_rec *s)
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

static void *merge_auth_idtoken_srv_config(apr_pool_t *p, void *basev, void *addv)
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

static void *create_auth_idtoken_dir_config(apr_pool_t *p, char *dir)
{
    auth_idtoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));
    (void)dir;

    conf->settings = apr_array_make(p, 2, sizeof(idt_setting));
    conf->handles = apr_array_make(p, 1, sizeof(int32_t));
    return conf;
}

static void *merge_auth_idtoken_dir_config(apr_pool_t *p, void *basev, void *addv)
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
static const char *abi_mismatch(apr_pool_t *p)
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

static auth_idtoken_srv_conf *srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &auth_idtoken_module);
}

/* cmd->info of the directives whose value is a file: resolved against ServerRoot, so the core
 * sees the path httpd means whatever its working directory. */
#define VALUE_IS_PATH ((void *)1)

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

/* IDTokenCache provider[:args] | none. The instance is created here, where a bad argument can still
 * point at the line, and initialised in post_config (as mod_authn_socache does). */
static const char *set_cache(cmd_parms *cmd, void *dummy, const char *arg)
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

static const command_rec auth_idtoken_cmds[] =
{
    AP_INIT_TAKE1("IDTokenDiscoveryURL", set_value, NULL, RSRC_CONF,
                  "URL of the provider's discovery document; no default"),
    AP_INIT_TAKE1("IDTokenIssuer", set_value, NULL, RSRC_CONF,
                  "The provider's issuer; default: from the discovery document"),
    AP_INIT_TAKE1("IDTokenAuthorizationEndpoint", set_value, NULL, RSRC_CONF,
                  "URL the browser is sent to for the login; default: from the discovery document"),
    AP_INIT_TAKE1("IDTokenJWKSURI", set_value, NULL, RSRC_CONF,
                  "URL of the provider's signing keys; default: from the discovery document"),
    AP_INIT_TAKE1("IDTokenEndSessionEndpoint", set_value, NULL, RSRC_CONF,
                  "URL for logging out at the provider; default: from the discovery document"),
    AP_INIT_TAKE1("IDTokenClientID", set_value, NULL, RSRC_CONF,
                  "The client ID registered at the provider; no default"),
    AP_INIT_TAKE1("IDTokenClientSecret", set_value, NULL, RSRC_CONF,
                  "The client secret registered at the provider; default: none"),
    AP_INIT_TAKE1("IDTokenRedirectURI", set_value, NULL, RSRC_CONF,
                  "Path or absolute URL the provider sends the login back to; no default"),
    AP_INIT_TAKE1("IDTokenSessionKeyFile", set_value, VALUE_IS_PATH, RSRC_CONF,
                  "File (relative to ServerRoot) with the session cookie keys; no default"),
    AP_INIT_TAKE1("IDTokenClockSkew", set_value, NULL, RSRC_CONF,
                  "Seconds of clock difference tolerated; default 60"),
    AP_INIT_TAKE1("IDTokenMaxAge", set_value, NULL, RSRC_CONF,
                  "Seconds a login at the provider stays acceptable; default: no limit"),
    AP_INIT_TAKE1("IDTokenStateLifetime", set_value, NULL, RSRC_CONF,
                  "Seconds a started login may take to complete; default 300"),
    AP_INIT_TAKE1("IDTokenMaxStateCookies", set_value, NULL, RSRC_CONF,
                  "Logins a browser may have in progress at once; default 5"),
    AP_INIT_TAKE1("IDTokenMetadataLifetime", set_value, NULL, RSRC_CONF,
                  "Seconds the discovery document is cached; default 86400"),
    AP_INIT_TAKE1("IDTokenKeysLifetime", set_value, NULL, RSRC_CONF,
                  "Seconds the signing keys are cached; default 3600"),
    AP_INIT_TAKE1("IDTokenKeyRefetchInterval", set_value, NULL, RSRC_CONF,
                  "Minimum seconds between fetches of the keys for an unknown one; default 30"),
    AP_INIT_TAKE1("IDTokenSessionLifetime", set_value, NULL, RSRC_CONF,
                  "Seconds a session lasts; default 28800"),
    AP_INIT_ITERATE("IDTokenScope", add_word, NULL, RSRC_CONF,
                    "Scopes to request; default openid email profile"),
    AP_INIT_ITERATE("IDTokenSignatureAlgorithms", add_word, NULL, RSRC_CONF,
                    "Token signature algorithms accepted; default: every asymmetric one"),
    AP_INIT_ITERATE("IDTokenTrustedAudiences", add_word, NULL, RSRC_CONF,
                    "Audiences trusted in tokens; default: none"),
    AP_INIT_TAKE1("IDTokenSessionStore", set_value, NULL, RSRC_CONF,
                  "Where sessions live: cookie (sealed in the browser) or cache (IDTokenCache); "
                  "default cookie"),
    AP_INIT_TAKE1("IDTokenSessionIdleTimeout", set_value, NULL, RSRC_CONF,
                  "Seconds of inactivity that end a session, 0 for none; default 3600"),
    AP_INIT_TAKE1("IDTokenSessionRefreshInterval", set_value, NULL, RSRC_CONF,
                  "At most how often an active session is re-issued, in seconds; default 60"),
    AP_INIT_TAKE1("IDTokenSessionCapToTokenExpiry", set_value, NULL, RSRC_CONF,
                  "On: a session ends no later than its ID token expires; default Off"),
    AP_INIT_TAKE1("IDTokenCookiePath", set_value, NULL, RSRC_CONF,
                  "Path of the session cookie; default /"),
    AP_INIT_TAKE1("IDTokenCookieDomain", set_value, NULL, RSRC_CONF,
                  "Domain of the session cookie; default none (host-only)"),
    AP_INIT_TAKE1("IDTokenCookieSameSite", set_value, NULL, RSRC_CONF,
                  "SameSite of the session cookie: Lax, Strict or None; default Lax"),
    AP_INIT_ITERATE("IDTokenClaimsKeep", add_word, NULL, RSRC_CONF,
                    "Only these claims are kept in the session for the application; default: all"),
    AP_INIT_ITERATE("IDTokenClaimsDrop", add_word, NULL, RSRC_CONF,
                    "Claims not kept in the session; default: none"),
    AP_INIT_ITERATE("IDTokenLogoutRedirectAllowed", add_word, NULL, RSRC_CONF,
                    "Origins besides the site's own that a logout may return to; default: none"),
    AP_INIT_TAKE1("IDTokenLogoutIDTokenHint", set_value, NULL, RSRC_CONF,
                  "On: keep the ID token to send as id_token_hint at logout; default On"),
    AP_INIT_TAKE12("IDTokenHTTPTimeout", set_words, NULL, RSRC_CONF,
                   "Seconds for a request to the provider: total [connect]; default 10 3"),
    AP_INIT_TAKE12("IDTokenRemoteUserClaim", set_words, NULL, RSRC_CONF,
                   "Claim that becomes the user name: claim [regex whose first group is the "
                   "name]; default sub"),
    AP_INIT_TAKE1("IDTokenClaimDelimiter", set_value, NULL, RSRC_CONF,
                  "Separator between the values of a list claim passed to the application; "
                  "default ,"),
    /* Per directory: <Location>, <Directory>, <Files>, never .htaccess (the core registers a block
     * at configuration time only). */
    AP_INIT_TAKE1("IDTokenUnauthAction", set_dir_value, NULL, ACCESS_CONF,
                  "Without a session: auth (log in at the provider), pass (let through without "
                  "a user), 401 or 410; default auth"),
    AP_INIT_TAKE1("IDTokenPassClaimsAs", set_dir_value, NULL, ACCESS_CONF,
                  "How claims reach the application: both, headers, environment or none; "
                  "default both"),
    AP_INIT_TAKE1("IDTokenClaimEncoding", set_dir_value, NULL, ACCESS_CONF,
                  "Encoding of claim values passed to the application: none, base64url or "
                  "latin1; default none"),
    AP_INIT_TAKE1("IDTokenPassIDToken", set_dir_value, NULL, ACCESS_CONF,
                  "Pass the ID token to the application: off, payload or serialized; "
                  "default off"),
    AP_INIT_ITERATE("IDTokenAuthRequestParams", add_dir_word, NULL, ACCESS_CONF,
                    "Extra parameters of the login request to the provider, name=value ... "
                    "(e.g. prompt=login max_age=300); default: none"),
    AP_INIT_TAKE1("IDTokenCache", set_cache, NULL, RSRC_CONF,
                  "socache provider[:args] for single-use marks, or none; default shmcb when "
                  "mod_socache_shmcb is loaded, else none"),
    {NULL}
};

/* ---- Configuration time ------------------------------------------------------------------------ */

/* The port of ServerName, else of <VirtualHost addr:port>: a vhost whose ServerName has no port
 * still answers on its address's port. 0 when neither says. */
static apr_port_t server_port(const server_rec *s)
{
    if (s->port) {
        return s->port;
    }
    return s->addrs ? s->addrs->host_port : 0;
}

static int server_is_https(const server_rec *s)
{
    return server_port(s) == DEFAULT_HTTPS_PORT
        || (s->server_scheme && strcasecmp(s->server_scheme, "https") == 0);
}

/* "host:port" for messages, plus where the server was defined so that an admin finds it. */
static const char *server_label(apr_pool_t *p, const server_rec *s)
{
    const char *name = s->server_hostname ? s->server_hostname : "localhost";
    apr_port_t port = server_port(s);

    if (port) {
        name = apr_psprintf(p, "%s:%u", name, (unsigned)port);
    }
    return name;
}

static const char *server_where(apr_pool_t *p, const server_rec *s)
{
    if (s->is_virtual && s->defn_name) {
        return apr_psprintf(p, "virtual host %s (%s:%u)", server_label(p, s), s->defn_name,
                            s->defn_line_number);
    }
    return apr_psprintf(p, "%s %s", s->is_virtual ? "virtual host" : "main server",
                        server_label(p, s));
}

/* ServerName[:port] as a browser would write it; the port only when it is not the scheme's own. */
static const char *server_default_host(apr_pool_t *p, const server_rec *s, int https)
{
    const char *name = s->server_hostname ? s->server_hostname : "localhost";
    apr_port_t port = server_port(s);

    if (ap_strchr_c(name, ':') && name[0] != '[') {
        name = apr_pstrcat(p, "[", name, "]", NULL);    /* an IPv6 literal */
    }
    if (port && port != (https ? DEFAULT_HTTPS_PORT : DEFAULT_HTTP_PORT)) {
        name = apr_psprintf(p, "%s:%u", name, (unsigned)port);
    }
    return name;
}

/* Which <Location>/<Directory> blocks use AuthType IDToken. Since 2.4 AuthType belongs to
 * mod_authn_core, whose per-directory struct is private (core_dir_config no longer has it), and
 * since 2.4.13 it is an expression: mod_authn_core's optional function reads it, given a request.
 * A constant needs nothing from the request but its configuration, so a stand-in request does;
 * anything else can only be evaluated per request, and then no block can be judged here. */
typedef struct {
    module *authn_core;
    APR_OPTIONAL_FN_TYPE(authn_ap_auth_type) *auth_type;
    int usable;     /* every AuthType line is a constant */
} auth_type_reader;

/* Whether some AuthType line is more than a constant word ("%{...}", "$1", escapes). */
static int auth_type_is_dynamic(const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (d->directive && strcasecmp(d->directive, "AuthType") == 0 && d->args
            && strpbrk(d->args, "%$\\") != NULL) {
            return 1;
        }
        if (auth_type_is_dynamic(d->first_child)) {
            return 1;
        }
    }
    return 0;
}

static void auth_type_reader_init(auth_type_reader *reader)
{
    reader->authn_core = ap_find_linked_module("mod_authn_core.c");
    reader->auth_type = APR_RETRIEVE_OPTIONAL_FN(authn_ap_auth_type);
    reader->usable = reader->authn_core && reader->auth_type
                     && !auth_type_is_dynamic(ap_conftree);
}

/* Whether the section's own AuthType (not one it would inherit) is IDToken. */
static int section_uses_idtoken(const auth_type_reader *reader, apr_pool_t *p, server_rec *s,
                                const ap_conf_vector_t *section)
{
    void *authn_conf = ap_get_module_config(section, reader->authn_core);
    const char *type;
    request_rec r;

    if (authn_conf == NULL) {
        return 0;   /* no mod_authn_core directive in this section */
    }
    /* The stand-in holds only what reading a constant touches: the section's mod_authn_core
     * configuration alone (nothing inherited), a pool, and a log configuration. */
    memset(&r, 0, sizeof(r));
    r.pool = p;
    r.server = s;
    r.log = &s->log;
    r.per_dir_config = ap_create_per_dir_config(p);
    ap_set_module_config(r.per_dir_config, reader->authn_core, authn_conf);
    type = reader->auth_type(&r);
    return type != NULL && strcasecmp(type, IDTOKEN_AUTH_TYPE) == 0;
}

/* Adds the paths of the literal <Location> sections in `sections` (core_server_config's sec_url)
 * that use AuthType IDToken to `paths` (NULL for <Directory> sections: filesystem paths and regexes
 * say nothing about where a URL lies); *first names the first such section of any kind. */
static void add_protected(const auth_type_reader *reader, apr_pool_t *p, server_rec *s,
                          const apr_array_header_t *sections, const char *kind,
                          apr_array_header_t *paths, const char **first)
{
    int i;

    for (i = 0; sections && i < sections->nelts; ++i) {
        const ap_conf_vector_t *section = APR_ARRAY_IDX(sections, i, ap_conf_vector_t *);
        const core_dir_config *core = ap_get_core_module_config(section);

        if (core == NULL || core->d == NULL || !section_uses_idtoken(reader, p, s, section)) {
            continue;
        }
        if (paths && core->r == NULL) {
            APR_ARRAY_PUSH(paths, const char *) = core->d;
        }
        if (*first == NULL) {
            *first = apr_psprintf(p, "<%s%s %s>", kind, core->r ? "Match" : "", core->d);
        }
    }
}

/* The literal <Location> paths of s (its own and, for a vhost, the main server's it inherits) whose
 * AuthType is IDToken; *first also considers <LocationMatch> and <Directory> sections. */
static apr_array_header_t *protected_paths(const auth_type_reader *reader, apr_pool_t *p,
                                           server_rec *s, const char **first)
{
    core_server_config *sconf = ap_get_core_module_config(s->module_config);
    apr_array_header_t *paths = apr_array_make(p, 2, sizeof(const char *));

    *first = NULL;
    if (reader->usable && sconf) {
        add_protected(reader, p, s, sconf->sec_url, "Location", paths, first);
        add_protected(reader, p, s, sconf->sec_dir, "Directory", NULL, first);
    }
    return paths;
}

/* Runs after the virtual hosts are merged, under `apachectl -t` as well, and again on every pass
 * over the configuration (start-up reads it twice, each restart once more); pre_config has emptied
 * the core's set of sites before the pass. */
static int auth_idtoken_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                     server_rec *s)
{
    auth_idtoken_srv_conf *main_conf = srv_conf(s);
    const char *mismatch = abi_mismatch(ptemp);
    auth_type_reader reader;
    server_rec *vs;
    (void)plog;

    site_count = 0;
    if (mismatch) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s, "%s", mismatch);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    auth_type_reader_init(&reader);

    for (vs = s; vs; vs = vs->next) {
        auth_idtoken_srv_conf *conf = srv_conf(vs);
        idt_site_config site;
        apr_array_header_t *paths;
        const char *first_path;
        char *error = NULL;
        char *warning = NULL;
        int https;
        int32_t handle;

        /* A vhost read before this module was loaded shares the main server's struct; give it its
         * own so that each server keeps its own handle. */
        if (vs != s && conf == main_conf) {
            conf = apr_pmemdup(pconf, main_conf, sizeof(*conf));
            ap_set_module_config(vs->module_config, &auth_idtoken_module, conf);
        }
        conf->site = -1;
        paths = protected_paths(&reader, ptemp, vs, &first_path);
        if (conf->settings->nelts == 0) {
            /* Caught here rather than by every request to it. */
            if (first_path) {
                ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, vs,
                             "AuthType IDToken is used in %s of %s but no IDTokenDiscoveryURL/"
                             "IDTokenClientID/... is configured for it", first_path,
                             server_where(ptemp, vs));
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            continue;
        }

        https = server_is_https(vs);
        memset(&site, 0, sizeof(site));
        site.site_name = server_label(ptemp, vs);
        site.default_scheme = https ? "https" : "http";
        site.default_host = server_default_host(ptemp, vs, https);
        /* The merged array lives in pconf, as long as this configuration. */
        site.settings = (const idt_setting *)conf->settings->elts;
        site.settings_count = (size_t)conf->settings->nelts;
        site.protected_paths = (const char *const *)paths->elts;
        site.protected_paths_count = (size_t)paths->nelts;

        handle = idt_site_register(&site, &error, &warning);
        if (warning) {
            ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, vs, "%s: %s",
                         server_where(ptemp, vs), warning);
            idt_free(warning);
        }
        if (handle < 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, vs, "%s: %s",
                         server_where(ptemp, vs), error ? error : "the site was refused");
            idt_free(error);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        idt_free(error);
        conf->site = handle;
        ++site_count;
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, vs, "%s: registered as site %d",
                     server_where(ptemp, vs), (int)handle);
    }
    if (site_count > 0 && reader.authn_core && reader.auth_type && !reader.usable) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     "an AuthType is an expression: which blocks use AuthType IDToken is known "
                     "only per request, so it is not checked at start-up");
    }
    return OK;
}

/* Before the directives of each pass are read: the Mutex directive only accepts registered types,
 * IDTokenCache starts over from "not given", and the core forgets the sites and blocks of the
 * previous pass (a <Location> registers itself as it is read). */
static int auth_idtoken_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_status_t rv = ap_mutex_register(pconf, STORE_ID, NULL, APR_LOCK_DEFAULT, 0);

    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_CRIT, rv, plog, "failed to register the %s mutex",
                      STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* A library of another ABI is reported by the first directive or by check_config. */
    if (abi_mismatch(ptemp) == NULL) {
        idt_sites_reset();
    }
    store_provider = NULL;
    store_instance = NULL;
    store_spec = NULL;
    store_mutex = NULL;
    store_ready = 0;
    site_count = 0;
    return OK;
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
static int auth_idtoken_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
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

    if (site_count == 0) {
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
                             "IDTokenCache shmcb (the default): %s", err);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            label = "shmcb (the default)";
        }
    }
    if (store_provider == NULL) {
        if (announce) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                         "IDTokenCache none: replayed login responses are caught only within one "
                         "process; load mod_socache_shmcb");
        }
        return OK;
    }

    /* Every add takes the mutex, so the mutex exists whatever the provider. */
    rv = ap_global_mutex_create(&store_mutex, NULL, STORE_ID, NULL, s, pconf, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     "IDTokenCache: cannot create the %s mutex", STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, NULL, forget_store_mutex, apr_pool_cleanup_null);

    rv = store_provider->init(store_instance, STORE_ID, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     "IDTokenCache %s: cannot initialise the cache", label);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, s, destroy_store, apr_pool_cleanup_null);
    store_ready = 1;

    if (announce) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     "IDTokenCache %s: single-use marks are shared by every process of the server",
                     label);
    }
    return OK;
}

/* Threads and connections must start after fork (see FIELD-NOTES): the core does that here. */
static void auth_idtoken_child_init(apr_pool_t *p, server_rec *s)
{
    if (store_mutex) {
        const char *lockfile = apr_global_mutex_lockfile(store_mutex);
        apr_status_t rv = apr_global_mutex_child_init(&store_mutex, lockfile, p);

        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "IDTokenCache: cannot attach to the %s mutex in this child", STORE_ID);
        }
    }
    idt_child_init();
}

/* ---- Every request ------------------------------------------------------------------------------ */

/* Whether a header name starts with IDT_HEADER_PREFIX, in any case, '_' standing for '-'
 * (CGI and several proxies turn both into the same variable). */
static int has_reserved_prefix(const char *name)
{
    const char *p;

    for (p = IDT_HEADER_PREFIX; *p; ++p, ++name) {
        char a = *name;
        char b = *p;

        if (a == '\0') {
            return 0;
        }
        if (a == '_') {
            a = '-';
        }
        if (b == '_') {
            b = '-';
        }
        if (apr_tolower((unsigned char)a) != apr_tolower((unsigned char)b)) {
            return 0;
        }
    }
    return 1;
}

typedef struct {
    apr_pool_t *pool;
    apr_array_header_t *names;  /* created on the first match: most requests have none */
} reserved_headers;

static int collect_reserved(void *rec, const char *key, const char *value)
{
    reserved_headers *found = rec;
    (void)value;

    if (key && has_reserved_prefix(key)) {
        if (found->names == NULL) {
            found->names = apr_array_make(found->pool, 2, sizeof(const char *));
        }
        APR_ARRAY_PUSH(found->names, const char *) = key;
    }
    return 1;
}

/* A client's `Connection: IDToken-Claim-groups` would make mod_proxy drop that header (hop-by-hop)
 * after the module set it: the application could then no longer trust that a missing claim header
 * means a missing claim. Such tokens are taken out of the Connection header. */
static void strip_reserved_connection_tokens(request_rec *r)
{
    const char *value = apr_table_get(r->headers_in, "Connection");
    const char *rest;
    char *token;
    char *kept = NULL;
    int dropped = 0;

    if (value == NULL) {
        return;
    }
    rest = value;
    while (*rest) {
        token = ap_get_list_item(r->pool, &rest);   /* next comma-separated item, trimmed */
        if (token == NULL) {
            break;
        }
        if (has_reserved_prefix(token)) {
            ++dropped;
            continue;
        }
        kept = kept ? apr_pstrcat(r->pool, kept, ", ", token, NULL) : token;
    }
    if (!dropped) {
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "removed %d reserved header name(s) from the client's Connection header", dropped);
    if (kept) {
        apr_table_setn(r->headers_in, "Connection", kept);
    }
    else {
        apr_table_unset(r->headers_in, "Connection");
    }
}

/* Drops client-sent headers that could pose as the ones the core sets for the application.
 * Only the request read from the client is cleaned: an internal redirect shares its headers_in
 * with the request before it, which may already hold the headers this module set on purpose. */
static int auth_idtoken_post_read_request(request_rec *r)
{
    reserved_headers found;
    int i;

    if (r->prev || r->main) {
        return DECLINED;
    }
    strip_reserved_connection_tokens(r);

    found.pool = r->pool;
    found.names = NULL;
    apr_table_do(collect_reserved, &found, r->headers_in, NULL);
    if (found.names == NULL) {
        return DECLINED;
    }
    for (i = 0; i < found.names->nelts; ++i) {
        const char *name = APR_ARRAY_IDX(found.names, i, const char *);

        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "removed the request header %s sent by the client (reserved for the module)",
                      name);
        apr_table_unset(r->headers_in, name);
    }
    return DECLINED;
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
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, ctx->r, "IDTokenCache (%s): %s", store_provider->name,
                  what);
    return IDT_STORE_ERROR;
}

/* Providers not safe across processes (shmcb) need the mutex around every call. */
static int store_needs_lock(void)
{
    return (store_provider->flags & AP_SOCACHE_FLAG_NOTMPSAFE) != 0;
}

static int store_lock(const store_ctx *ctx)
{
    apr_status_t rv = apr_global_mutex_lock(store_mutex);

    if (rv != APR_SUCCESS) {
        store_failed(ctx, rv, "cannot take the " STORE_ID " mutex");
        return 0;
    }
    return 1;
}

static int store_unlock(const store_ctx *ctx)
{
    apr_status_t rv = apr_global_mutex_unlock(store_mutex);

    if (rv != APR_SUCCESS) {
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
    int locked = 0;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)) {
        return IDT_STORE_ERROR;
    }
    ++ctx->calls;
    if (store_needs_lock()) {
        if (!store_lock(ctx)) {
            return IDT_STORE_ERROR;
        }
        locked = 1;
    }
    rv = store_store(ctx, key, key_len, value, value_len, expires_at);
    if (locked && !store_unlock(ctx)) {
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
    int locked = 0;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len)) {
        return IDT_STORE_ERROR;
    }
    ++ctx->calls;
    if (store_needs_lock()) {
        if (!store_lock(ctx)) {
            return IDT_STORE_ERROR;
        }
        locked = 1;
    }
    rv = store_retrieve(ctx, key, key_len, &found, &found_len);
    if (locked && !store_unlock(ctx)) {
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
    /* Lent from r->pool: valid as long as the request, which outlives the idt_decide call. */
    *value = found;
    *value_len = found_len;
    return IDT_STORE_OK;
}

static int32_t store_remove(void *ctxv, const unsigned char *key, size_t key_len)
{
    store_ctx *ctx = ctxv;
    int locked = 0;
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len)) {
        return IDT_STORE_ERROR;
    }
    ++ctx->calls;
    if (store_needs_lock()) {
        if (!store_lock(ctx)) {
            return IDT_STORE_ERROR;
        }
        locked = 1;
    }
    rv = store_provider->remove(ctx->instance, ctx->r->server, key, (unsigned int)key_len,
                                ctx->r->pool);
    if (locked && !store_unlock(ctx)) {
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
    apr_status_t rv;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)
        || !store_lock(ctx)) {
        return IDT_STORE_ERROR;
    }
    ++ctx->calls;
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
    if (!store_unlock(ctx)) {
        return IDT_STORE_ERROR;
    }
    return status;
}

/* NULL without a store: the core then falls back on what one process can see. */
static const idt_store *request_store(request_rec *r)
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

/* ---- AuthType IDToken ---------------------------------------------------------------------------- */

/* host[:port] as the client wrote it. */
static const char *request_host(request_rec *r)
{
    const char *host = apr_table_get(r->headers_in, "Host");
    const char *name;
    apr_port_t port;

    if (host && *host) {
        return host;
    }
    /* HTTP/1.0 without Host: r->hostname when known, else ServerName; IPv6 in brackets. */
    name = ap_get_server_name_for_url(r);
    port = ap_get_server_port(r);
    if (ap_is_default_port(port, r)) {
        return name;
    }
    return apr_psprintf(r->pool, "%s:%u", name, (unsigned)port);
}

/* The decision's memory: the request pool, so it goes away with the request. */
static void *pool_alloc(void *pool, size_t size)
{
    return apr_palloc((apr_pool_t *)pool, size);
}

static void fill_request(request_rec *r, int32_t site, idt_request *req)
{
    memset(req, 0, sizeof(*req));
    req->site = site;
    req->method = r->method;
    req->scheme = ap_http_scheme(r);
    req->host = request_host(r);
    req->uri = r->unparsed_uri;
    req->cookie = apr_table_get(r->headers_in, "Cookie");
    req->content_type = apr_table_get(r->headers_in, "Content-Type");
    req->accept = apr_table_get(r->headers_in, "Accept");
    req->sec_fetch_mode = apr_table_get(r->headers_in, "Sec-Fetch-Mode");
    req->sec_fetch_dest = apr_table_get(r->headers_in, "Sec-Fetch-Dest");
    req->x_requested_with = apr_table_get(r->headers_in, "X-Requested-With");
    req->sec_fetch_site = apr_table_get(r->headers_in, "Sec-Fetch-Site");
    req->origin = apr_table_get(r->headers_in, "Origin");
    req->referer = apr_table_get(r->headers_in, "Referer");
    req->alloc = pool_alloc;
    req->alloc_ctx = r->pool;
}

/* Reads at most `limit` bytes of the body into req. Never reads past the limit: the core answers
 * an oversized body itself, and httpd discards the rest at the end of the request. Returns OK, or the
 * status to answer when the body cannot be read at all. */
static int read_body(request_rec *r, apr_size_t limit, idt_request *req)
{
    char chunk[HUGE_STRING_LEN];
    char *buf = NULL;
    apr_size_t len = 0;
    apr_size_t cap = 0;
    long n;
    int rc;

    req->body = NULL;
    req->body_len = 0;
    req->body_read = 0;
    req->body_too_large = 0;

    if (limit > APR_SIZE_MAX - 1) {
        limit = APR_SIZE_MAX - 1;   /* room for the trailing NUL */
    }

    rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        /* Beyond LimitRequestBody: too large for the core's limit as well. */
        req->body_too_large = 1;
        return OK;
    }
    if (rc != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "cannot read the request body (HTTP status %d)", rc);
        return rc;
    }
    /* A declared length over the limit: refuse without reading a byte. */
    if (!r->read_chunked && r->remaining > 0 && (apr_uint64_t)r->remaining > (apr_uint64_t)limit) {
        req->body_too_large = 1;
        return OK;
    }

    if (ap_should_client_block(r)) {
        if (!r->read_chunked && r->remaining > 0) {
            cap = (apr_size_t)r->remaining;
            buf = apr_palloc(r->pool, cap + 1);
        }
        while ((n = ap_get_client_block(r, chunk, sizeof(chunk))) > 0) {
            if ((apr_size_t)n > limit - len) {
                req->body_too_large = 1;
                return OK;
            }
            if ((apr_size_t)n > cap - len) {
                apr_size_t want = len + (apr_size_t)n;
                apr_size_t newcap = cap ? cap : sizeof(chunk);
                char *grown;

                while (newcap < want) {
                    newcap = newcap > limit / 2 ? limit : newcap * 2;
                }
                if (newcap > limit) {
                    newcap = limit;
                }
                grown = apr_palloc(r->pool, newcap + 1);
                if (len) {
                    memcpy(grown, buf, len);
                }
                buf = grown;
                cap = newcap;
            }
            memcpy(buf + len, chunk, (apr_size_t)n);
            len += (apr_size_t)n;
        }
        if (n < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "reading the request body failed after %" APR_SIZE_T_FMT " bytes", len);
            /* Bad chunk framing, or a client gone mid-body: nothing to decide on. */
            return HTTP_BAD_REQUEST;
        }
    }

    if (buf == NULL) {
        buf = apr_palloc(r->pool, 1);
    }
    buf[len] = '\0';
    req->body = buf;
    req->body_len = len;
    req->body_read = 1;
    return OK;
}

/* What a decision carries whatever its action: cookies, environment, a log line. */
static void apply_side_effects(request_rec *r, const idt_decision *d)
{
    apr_size_t i;

    /* The decision already lives in r->pool (idt_request.alloc), so the tables take its strings as
     * they are (the ...n variants copy nothing). err_headers_out survives error and redirect
     * responses, headers_out does not. */
    for (i = 0; i < d->set_cookies_count; ++i) {
        if (d->set_cookies[i]) {
            apr_table_addn(r->err_headers_out, "Set-Cookie", d->set_cookies[i]);
        }
    }
    for (i = 0; i < d->env_count; ++i) {
        if (d->env[i].name && d->env[i].value) {
            apr_table_setn(r->subprocess_env, d->env[i].name, d->env[i].value);
        }
    }
    if (d->log_level != IDT_LOG_NONE && d->log_message) {
        int level = d->log_level;

        if (level < APLOG_ERR) {
            level = APLOG_ERR;
        }
        if (level > APLOG_DEBUG) {
            level = APLOG_DEBUG;
        }
        ap_log_rerror(APLOG_MARK, level, 0, r, "%s", d->log_message);
    }
}

/* Keeps the claims of an authenticated IDT_PASS for `Require idtoken-claim`, which runs later in the
 * request (and in its subrequests). They are in r->pool already. */
static void keep_claims(request_rec *r, const idt_decision *d)
{
    auth_idtoken_req_conf *kept = apr_pcalloc(r->pool, sizeof(*kept));

    kept->claims = d->claims;
    kept->claims_count = d->claims ? d->claims_count : 0;
    ap_set_module_config(r->request_config, &auth_idtoken_module, kept);
}

static int apply_decision(request_rec *r, const idt_decision *d)
{
    apr_size_t i;

    switch (d->action) {
    case IDT_DECLINE:
        return DECLINED;

    case IDT_PASS:
        if (d->remote_user == NULL) {
            /* Through without an identity (IDTokenUnauthAction pass). httpd insists on a user
             * once authentication succeeded: the empty one, as mod_auth_openidc does. No headers,
             * no claims: `Require idtoken-claim` treats it as no user. */
            r->user = "";
            return OK;
        }
        if (*d->remote_user == '\0') {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library let the request pass with an empty user name");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        r->user = d->remote_user;
        r->ap_auth_type = IDTOKEN_AUTH_TYPE;
        keep_claims(r, d);
        if (d->set_cookies_count > 0) {
            apr_table_setn(r->notes, NOTE_PRIVATE, "1");
        }
        for (i = 0; i < d->headers_count; ++i) {
            const char *name = d->headers[i].name;

            /* Only the reserved prefix is ever set: it is what post_read_request strips, so the
             * application can trust these names. */
            if (name == NULL || d->headers[i].value == NULL || !has_reserved_prefix(name)) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              "ignored request header %s from the IDToken library: it does not "
                              "start with " IDT_HEADER_PREFIX, name ? name : "(null)");
                continue;
            }
            apr_table_setn(r->headers_in, name, d->headers[i].value);
        }
        return OK;

    case IDT_REDIRECT:
        if (d->location == NULL || d->status < 300 || d->status > 399) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library asked for an invalid redirect (status %d)",
                          (int)d->status);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_table_setn(r->headers_out, "Location", d->location);
        apr_table_set(r->err_headers_out, "Cache-Control", "no-store");
        return d->status;

    case IDT_RESPOND:
        if (d->content_type) {
            /* A body of the core's own (a back-channel logout answer, a "logged out" page): sent as
             * it is, and the request ends here. DONE tells httpd the response is complete. */
            if (d->status < 200 || d->status > 599 || d->page == NULL) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              "the IDToken library asked for an invalid response status %d",
                              (int)d->status);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            r->status = d->status;
            apr_table_set(r->err_headers_out, "Cache-Control", "no-store");
            ap_set_content_type(r, d->content_type);
            ap_set_content_length(r, (apr_off_t)strlen(d->page));
            if (!r->header_only) {
                ap_rwrite(d->page, (int)strlen(d->page), r);
            }
            return DONE;
        }
        if (d->status < 400 || d->status > 599) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library asked for an invalid response status %d",
                          (int)d->status);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_table_set(r->err_headers_out, "Cache-Control", "no-store");
        /* An admin's ErrorDocument wins over the core's page. */
        if (d->page && ap_response_code_string(r, ap_index_of_response(d->status)) == NULL) {
            const char *page = d->page;

            /* ap_custom_response() takes a text starting with '/' or "scheme:" for a redirect
             * target; a leading space keeps it text. It copies the string into r->pool. */
            if (*page == '/' || ap_is_url(page)) {
                page = apr_pstrcat(r->pool, " ", page, NULL);
            }
            ap_custom_response(r, d->status, page);
        }
        return d->status;

    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "the IDToken library returned an unknown action %d", (int)d->action);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

static int auth_idtoken_check_authn(request_rec *r)
{
    const char *type = ap_auth_type(r);
    const auth_idtoken_dir_conf *dconf;
    auth_idtoken_srv_conf *conf;
    const idt_store *store;
    idt_request req;
    idt_decision d;
    unsigned int lookups, opens;

    if (type == NULL || strcasecmp(type, IDTOKEN_AUTH_TYPE) != 0) {
        return DECLINED;
    }

    /* Subrequests and internal redirects (ErrorDocument, RewriteRule, FallbackResource...) reach this
     * hook only when their configuration differs from the request they came from, so that
     * authentication is decided again: from the request's own cookies, never by taking over a user set
     * by another module or the anonymous pass (that would let `Require valid-user` through). */
    conf = srv_conf(r->server);
    if (conf->site < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "AuthType IDToken used in %s but no IDToken* directive (IDTokenClientID, "
                      "...) applies there", server_where(r->pool, r->server));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    fill_request(r, conf->site, &req);
    req.internal = !ap_is_initial_req(r);
    store = request_store(r);
    req.store = store;
    dconf = ap_get_module_config(r->per_dir_config, &auth_idtoken_module);
    if (dconf && dconf->handles->nelts > 0) {
        req.dir_configs = (const int32_t *)dconf->handles->elts;
        req.dir_configs_count = (size_t)dconf->handles->nelts;
    }
    memset(&d, 0, sizeof(d));
    idt_decide(&req, &d);
    apply_side_effects(r, &d);
    lookups = d.work_cookie_lookups;
    opens = d.work_sealed_opens;

    if (d.action == IDT_READ_BODY) {
        int status = read_body(r, d.body_limit, &req);

        if (status != OK) {
            return status;
        }
        memset(&d, 0, sizeof(d));
        idt_decide(&req, &d);
        apply_side_effects(r, &d);
        lookups += d.work_cookie_lookups;
        opens += d.work_sealed_opens;
        if (d.action == IDT_READ_BODY) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library asked for the request body twice");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* What the request cost in work that a client could try to multiply: counts, not time, so a test
     * can show an amplification attack failing on any machine. */
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "request work: %u cookie lookups, %u sealed opens, %u store calls",
                  lookups, opens, store ? ((const store_ctx *)store->ctx)->calls : 0);

    return apply_decision(r, &d);
}

/* ---- Responses that carry a refreshed session ------------------------------------------------------- */

/* A pass that re-issued the session sends its Set-Cookie on the application's response. If that
 * response says `Cache-Control: public`, a shared cache could keep the cookie and hand one user's
 * session to others: such a response is made private. The note is looked for on the request and on
 * those it was redirected from (an internal redirect gets a fresh filter chain). */

static int has_private_note(const request_rec *r)
{
    for (; r; r = r->prev) {
        if (apr_table_get(r->notes, NOTE_PRIVATE)) {
            return 1;
        }
    }
    return 0;
}

/* Cache-Control without `public` and `s-maxage=...`, with `private`; the other directives kept. */
static void make_private(request_rec *r, apr_table_t *headers, int always)
{
    const char *value = apr_table_get(headers, "Cache-Control");
    const char *rest;
    char *token;
    char *kept = NULL;
    int has_private = 0;

    if (value == NULL) {
        if (always) {
            apr_table_setn(headers, "Cache-Control", "private");
        }
        return;
    }
    rest = value;
    while (*rest) {
        token = ap_get_list_item(r->pool, &rest);
        if (token == NULL) {
            break;
        }
        if (strcasecmp(token, "public") == 0 || strncasecmp(token, "s-maxage", 8) == 0) {
            continue;
        }
        if (strcasecmp(token, "private") == 0 || strncasecmp(token, "private=", 8) == 0
            || strcasecmp(token, "no-store") == 0) {
            has_private = 1;
        }
        kept = kept ? apr_pstrcat(r->pool, kept, ", ", token, NULL) : token;
    }
    if (!has_private) {
        kept = kept ? apr_pstrcat(r->pool, "private, ", kept, NULL) : "private";
    }
    apr_table_setn(headers, "Cache-Control", kept);
}

static apr_status_t private_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;

    /* The handler has set its headers by the time its first brigade passes. Both tables: httpd sends
     * the two merged. */
    make_private(r, r->headers_out, apr_table_get(r->err_headers_out, "Cache-Control") == NULL);
    make_private(r, r->err_headers_out, 0);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void auth_idtoken_insert_filter(request_rec *r)
{
    if (has_private_note(r)) {
        ap_add_output_filter(FILTER_PRIVATE, NULL, r, r->connection);
    }
}

/* ---- Require idtoken-claim ----------------------------------------------------------------------- */

/* The line is checked by the core when Apache reads it, so configtest names it. It is evaluated
 * as written, without ap_expr expansion, which would mangle email~^.*@example\.org$ and such. */
static const char *idtoken_claim_parse(cmd_parms *cmd, const char *require_line,
                                       const void **parsed)
{
    const char *err = abi_mismatch(cmd->pool);
    char *msg;
    (void)parsed;

    if (err == NULL) {
        msg = idt_require_check(require_line);
        if (msg == NULL) {
            return NULL;
        }
        err = apr_pstrdup(cmd->pool, msg);
        idt_free(msg);
    }
    return apr_pstrcat(cmd->pool, "Require idtoken-claim: ", err, NULL);
}

static authz_status idtoken_claim_check(request_rec *r, const char *require_line,
                                        const void *parsed)
{
    const auth_idtoken_req_conf *kept;
    int32_t result;
    (void)parsed;

    /* The empty user of an anonymous pass is no one either: mod_authz_core then asks for
     * authentication, or answers 401 after it. */
    if (r->user == NULL || *r->user == '\0') {
        return AUTHZ_DENIED_NO_USER;
    }
    kept = ap_get_module_config(r->request_config, &auth_idtoken_module);
    if (kept == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "user %s: Require idtoken-claim %s: no ID token claims for this request "
                      "(not authenticated by AuthType IDToken?)", r->user, require_line);
        return AUTHZ_DENIED;
    }

    result = idt_require_eval(require_line, kept->claims, kept->claims_count);
    switch (result) {
    case 1:
        return AUTHZ_GRANTED;
    case 0:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "user %s: Require idtoken-claim %s not satisfied", r->user, require_line);
        return AUTHZ_DENIED;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "user %s: Require idtoken-claim %s could not be evaluated", r->user,
                      require_line);
        return AUTHZ_GENERAL_ERROR;
    }
}

static const authz_provider idtoken_claim_provider =
{
    &idtoken_claim_check,
    &idtoken_claim_parse,
};

static void register_hooks(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "idtoken-claim", AUTHZ_PROVIDER_VERSION,
                              &idtoken_claim_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_pre_config(auth_idtoken_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(auth_idtoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(auth_idtoken_post_config, NULL, NULL, APR_HOOK_MIDDLE);
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
