/*
 * Start-up: which virtual hosts are sites (they carry IDToken* settings), which of their blocks use
 * AuthType IDToken (to check that the redirect URI lies inside one), and registering each site with
 * the core. Runs on every configuration pass, configtest included.
 */
#include "idtoken_internal.h"

static int site_count;              /* sites registered by the last check_config */

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

const char *server_where(apr_pool_t *p, const server_rec *s)
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
int auth_idtoken_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                     server_rec *s)
{
    auth_idtoken_srv_conf *main_conf = srv_conf(s);
    const char *mismatch = abi_mismatch(ptemp);
    auth_type_reader reader;
    server_rec *vs;
    (void)plog;

    site_count = 0;
    if (mismatch) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s, IDTLOGNO(0201) "%s", mismatch);
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
                             IDTLOGNO(0202) "AuthType IDToken is used in %s of %s but no IDTokenDiscoveryURL/"
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
        site.limit_request_field_size = vs->limit_req_fieldsize;

        handle = idt_site_register(&site, &error, &warning);
        if (warning) {
            ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, vs, IDTLOGNO(0203) "%s: %s",
                         server_where(ptemp, vs), warning);
            idt_free(warning);
        }
        if (handle < 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, vs, IDTLOGNO(0204) "%s: %s",
                         server_where(ptemp, vs), error ? error : "the site was refused");
            idt_free(error);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        idt_free(error);
        conf->site = handle;
        ++site_count;
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, vs, IDTLOGNO(0205) "%s: registered as site %d",
                     server_where(ptemp, vs), (int)handle);
    }
    if (site_count > 0 && reader.authn_core && reader.auth_type && !reader.usable) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0206) "an AuthType is an expression: which blocks use AuthType IDToken is known "
                     "only per request, so it is not checked at start-up");
    }
    return OK;
}

/* Before the directives of each pass are read: the Mutex directive only accepts registered types,
 * IDTokenCache starts over from "not given", and the core forgets the sites and blocks of the
 * previous pass (a <Location> registers itself as it is read). */
int auth_idtoken_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    apr_status_t rv = store_pre_config(pconf);

    if (rv != APR_SUCCESS) {
        ap_log_perror(APLOG_MARK, APLOG_CRIT, rv, plog, IDTLOGNO(0207) "failed to register the %s mutex",
                      STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* A library of another ABI is reported by the first directive or by check_config. */
    if (abi_mismatch(ptemp) == NULL) {
        idt_sites_reset();
    }
    site_count = 0;
    return OK;
}

/* What each site has to say at start-up (which proxies it trusts), once per start: in post_config, as
 * the error log is open only then, and not on the first of the two start-up passes, which only checks.
 * Never per request: a header from an untrusted peer is just ignored. */
int sites_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    server_rec *vs;
    (void)pconf;
    (void)plog;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    for (vs = s; vs; vs = vs->next) {
        auth_idtoken_srv_conf *conf = srv_conf(vs);
        char *notice;

        if (conf->site < 0) {
            continue;
        }
        notice = idt_site_notice(conf->site);
        if (notice) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, vs, IDTLOGNO(0220) "%s: %s",
                         server_where(ptemp, vs), notice);
            idt_free(notice);
        }
    }
    return OK;
}

int sites_registered(void)
{
    return site_count;
}
