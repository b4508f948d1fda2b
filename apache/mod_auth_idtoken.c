/*
 * mod_auth_idtoken: AuthType IDToken for Apache httpd 2.4.
 *
 * This file is the thin Apache side only. It gathers the facts of a request into an idt_request,
 * asks the core library (libIDToken, see CShim/include/idtoken.h) for an idt_decision and applies
 * it. What a login is, which cookies and headers mean what: all of that lives in the core.
 *
 *   IDTokenDiscoveryURL   https://login.example.com/.well-known/openid-configuration
 *   IDTokenClientID       my-client
 *   IDTokenRedirectURI    /protected/callback
 *   IDTokenSessionKeyFile /etc/apache2/idtoken.key
 *   <Location "/protected">
 *       AuthType IDToken
 *       Require valid-user
 *   </Location>
 */

#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_tables.h"

#include "ap_config.h"
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_core.h"           /* ap_response_code_string() */

#include "idtoken.h"

#include <string.h>

APLOG_USE_MODULE(auth_idtoken);

#define IDTOKEN_AUTH_TYPE "IDToken"

typedef struct {
    const char *discovery_url;
    const char *client_id;
    const char *redirect_uri;
    const char *session_key_file;
    const char *scope;
    unsigned int discovery_url_set:1;
    unsigned int client_id_set:1;
    unsigned int redirect_uri_set:1;
    unsigned int session_key_file_set:1;
    unsigned int scope_set:1;
    /* Handle from idt_site_register, -1 when this server is not a site. Set by check_config on
     * every configuration pass, never merged: each virtual host is a site of its own. */
    int32_t site;
} auth_idtoken_srv_conf;

static void *create_auth_idtoken_srv_config(apr_pool_t *p, server_rec *s)
{
    auth_idtoken_srv_conf *conf = apr_pcalloc(p, sizeof(*conf));
    (void)s;

    conf->site = -1;
    /* scope stays NULL: the core applies its default ("openid email profile"). */
    return conf;
}

static void *merge_auth_idtoken_srv_config(apr_pool_t *p, void *basev, void *addv)
{
    auth_idtoken_srv_conf *new = apr_pcalloc(p, sizeof(*new));
    auth_idtoken_srv_conf *add = addv;
    auth_idtoken_srv_conf *base = basev;

    new->discovery_url = add->discovery_url_set ? add->discovery_url : base->discovery_url;
    new->discovery_url_set = add->discovery_url_set || base->discovery_url_set;
    new->client_id = add->client_id_set ? add->client_id : base->client_id;
    new->client_id_set = add->client_id_set || base->client_id_set;
    new->redirect_uri = add->redirect_uri_set ? add->redirect_uri : base->redirect_uri;
    new->redirect_uri_set = add->redirect_uri_set || base->redirect_uri_set;
    new->session_key_file = add->session_key_file_set ? add->session_key_file
                                                      : base->session_key_file;
    new->session_key_file_set = add->session_key_file_set || base->session_key_file_set;
    new->scope = add->scope_set ? add->scope : base->scope;
    new->scope_set = add->scope_set || base->scope_set;
    new->site = -1;

    return new;
}

static int any_directive_set(const auth_idtoken_srv_conf *conf)
{
    return conf->discovery_url_set || conf->client_id_set || conf->redirect_uri_set
        || conf->session_key_file_set || conf->scope_set;
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

/* Rejects a bad value while the directive is read, so configtest points at its line. */
static const char *check_setting(cmd_parms *cmd, idt_setting setting, const char *value)
{
    const char *err = abi_mismatch(cmd->pool);
    char *msg;

    if (err == NULL) {
        msg = idt_setting_check(setting, value);
        if (msg == NULL) {
            return NULL;
        }
        err = apr_pstrdup(cmd->pool, msg);
        idt_free(msg);
    }
    return apr_psprintf(cmd->pool, "%s: %s", cmd->directive->directive, err);
}

static auth_idtoken_srv_conf *srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &auth_idtoken_module);
}

static const char *set_discovery_url(cmd_parms *cmd, void *dummy, const char *arg)
{
    auth_idtoken_srv_conf *conf = srv_conf(cmd->server);
    const char *err = check_setting(cmd, IDT_SETTING_DISCOVERY_URL, arg);
    (void)dummy;

    if (err) {
        return err;
    }
    conf->discovery_url = arg;
    conf->discovery_url_set = 1;
    return NULL;
}

static const char *set_client_id(cmd_parms *cmd, void *dummy, const char *arg)
{
    auth_idtoken_srv_conf *conf = srv_conf(cmd->server);
    const char *err = check_setting(cmd, IDT_SETTING_CLIENT_ID, arg);
    (void)dummy;

    if (err) {
        return err;
    }
    conf->client_id = arg;
    conf->client_id_set = 1;
    return NULL;
}

static const char *set_redirect_uri(cmd_parms *cmd, void *dummy, const char *arg)
{
    auth_idtoken_srv_conf *conf = srv_conf(cmd->server);
    const char *err = check_setting(cmd, IDT_SETTING_REDIRECT_URI, arg);
    (void)dummy;

    if (err) {
        return err;
    }
    conf->redirect_uri = arg;
    conf->redirect_uri_set = 1;
    return NULL;
}

static const char *set_session_key_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    auth_idtoken_srv_conf *conf = srv_conf(cmd->server);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    const char *err;
    (void)dummy;

    if (path == NULL) {
        return apr_psprintf(cmd->pool, "%s: invalid file path '%s'",
                            cmd->directive->directive, arg);
    }
    if ((err = check_setting(cmd, IDT_SETTING_SESSION_KEY_FILE, path)) != NULL) {
        return err;
    }
    conf->session_key_file = path;
    conf->session_key_file_set = 1;
    return NULL;
}

static const char *set_scope(cmd_parms *cmd, void *dummy, const char *arg)
{
    auth_idtoken_srv_conf *conf = srv_conf(cmd->server);
    const char *err = check_setting(cmd, IDT_SETTING_SCOPE, arg);
    (void)dummy;

    if (err) {
        return err;
    }
    conf->scope = arg;
    conf->scope_set = 1;
    return NULL;
}

static const command_rec auth_idtoken_cmds[] =
{
    AP_INIT_TAKE1("IDTokenDiscoveryURL", set_discovery_url, NULL, RSRC_CONF,
                  "The provider's discovery document, e.g. https://login.example.com/"
                  ".well-known/openid-configuration. Required for AuthType IDToken; no default"),
    AP_INIT_TAKE1("IDTokenClientID", set_client_id, NULL, RSRC_CONF,
                  "The client ID registered at the provider. Required; no default"),
    AP_INIT_TAKE1("IDTokenRedirectURI", set_redirect_uri, NULL, RSRC_CONF,
                  "Where the provider posts the login back: a path on the host the browser used "
                  "(e.g. /protected/callback) or an absolute URL. Required; no default"),
    AP_INIT_TAKE1("IDTokenSessionKeyFile", set_session_key_file, NULL, RSRC_CONF,
                  "File (relative to ServerRoot unless absolute) holding the random key that seals "
                  "the session cookies, one key per line. Required; no default"),
    AP_INIT_TAKE1("IDTokenScope", set_scope, NULL, RSRC_CONF,
                  "Space-separated scopes to request, quoted. Default \"openid email profile\""),
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

/* Runs after the virtual hosts are merged, under `apachectl -t` as well, and again on every pass
 * over the configuration (start-up reads it twice, each restart once more): it starts from an empty
 * set of sites each time. */
static int auth_idtoken_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                     server_rec *s)
{
    auth_idtoken_srv_conf *main_conf = srv_conf(s);
    const char *mismatch = abi_mismatch(ptemp);
    server_rec *vs;
    (void)plog;

    if (mismatch) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s, "%s", mismatch);
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    idt_sites_reset();

    for (vs = s; vs; vs = vs->next) {
        auth_idtoken_srv_conf *conf = srv_conf(vs);
        idt_site_config site;
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
        if (!any_directive_set(conf)) {
            continue;
        }

        https = server_is_https(vs);
        memset(&site, 0, sizeof(site));
        site.site_name = server_label(ptemp, vs);
        site.default_scheme = https ? "https" : "http";
        site.default_host = server_default_host(ptemp, vs, https);
        site.discovery_url = conf->discovery_url;
        site.client_id = conf->client_id;
        site.redirect_uri = conf->redirect_uri;
        site.session_key_file = conf->session_key_file;
        site.scope = conf->scope;

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
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, vs, "%s: registered as site %d",
                     server_where(ptemp, vs), (int)handle);
    }
    return OK;
}

/* Threads and connections must start after fork (see FIELD-NOTES): the core does that here. */
static void auth_idtoken_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    (void)s;
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
}

/* Reads at most `limit` bytes of the body into req. Never reads past the limit: the core answers
 * an oversized body itself, and httpd discards the rest at the end of the request. */
static void read_body(request_rec *r, apr_size_t limit, idt_request *req)
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
    if (rc != OK) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "cannot read the request body (HTTP status %d)", rc);
        return;
    }
    /* A declared length over the limit: refuse without reading a byte. */
    if (!r->read_chunked && r->remaining > 0 && (apr_uint64_t)r->remaining > (apr_uint64_t)limit) {
        req->body_too_large = 1;
        return;
    }

    if (ap_should_client_block(r)) {
        if (!r->read_chunked && r->remaining > 0) {
            cap = (apr_size_t)r->remaining;
            buf = apr_palloc(r->pool, cap + 1);
        }
        while ((n = ap_get_client_block(r, chunk, sizeof(chunk))) > 0) {
            if ((apr_size_t)n > limit - len) {
                req->body_too_large = 1;
                return;
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
            return;
        }
    }

    if (buf == NULL) {
        buf = apr_palloc(r->pool, 1);
    }
    buf[len] = '\0';
    req->body = buf;
    req->body_len = len;
    req->body_read = 1;
}

/* What a decision carries whatever its action: cookies, environment, a log line. */
static void apply_side_effects(request_rec *r, const idt_decision *d)
{
    apr_size_t i;

    /* apr_table_add/set copy key and value into the table's pool (r->pool). err_headers_out
     * survives error and redirect responses, headers_out does not. */
    for (i = 0; i < d->set_cookies_count; ++i) {
        if (d->set_cookies[i]) {
            apr_table_add(r->err_headers_out, "Set-Cookie", d->set_cookies[i]);
        }
    }
    for (i = 0; i < d->env_count; ++i) {
        if (d->env[i].name && d->env[i].value) {
            apr_table_set(r->subprocess_env, d->env[i].name, d->env[i].value);
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

static int apply_decision(request_rec *r, const idt_decision *d)
{
    apr_size_t i;

    switch (d->action) {
    case IDT_DECLINE:
        return DECLINED;

    case IDT_PASS:
        if (d->remote_user == NULL || *d->remote_user == '\0') {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library let the request pass without a user");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        r->user = apr_pstrdup(r->pool, d->remote_user);
        r->ap_auth_type = IDTOKEN_AUTH_TYPE;
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
            apr_table_set(r->headers_in, name, d->headers[i].value);
        }
        return OK;

    case IDT_REDIRECT:
        if (d->location == NULL || d->status < 300 || d->status > 399) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library asked for an invalid redirect (status %d)",
                          (int)d->status);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        apr_table_set(r->headers_out, "Location", d->location);
        apr_table_set(r->err_headers_out, "Cache-Control", "no-store");
        return d->status;

    case IDT_RESPOND:
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
    auth_idtoken_srv_conf *conf;
    idt_request req;
    idt_decision d;
    int status;

    if (type == NULL || strcasecmp(type, IDTOKEN_AUTH_TYPE) != 0) {
        return DECLINED;
    }

    /* Subrequests and internal redirects (ErrorDocument, rewrites) inherit the login of the request
     * they came from: deciding again could read a body that is already gone. */
    if (!ap_is_initial_req(r)) {
        const request_rec *from = r->main ? r->main : r->prev;

        if (from && from->user) {
            r->user = from->user;
            r->ap_auth_type = from->ap_auth_type;
            return OK;
        }
    }

    conf = srv_conf(r->server);
    if (conf->site < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "AuthType IDToken used in %s but no IDTokenDiscoveryURL, IDTokenClientID, "
                      "IDTokenRedirectURI or IDTokenSessionKeyFile is configured there",
                      server_where(r->pool, r->server));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    fill_request(r, conf->site, &req);
    memset(&d, 0, sizeof(d));
    idt_decide(&req, &d);
    apply_side_effects(r, &d);

    if (d.action == IDT_READ_BODY) {
        apr_size_t limit = d.body_limit;

        idt_decision_free(&d);
        read_body(r, limit, &req);
        memset(&d, 0, sizeof(d));
        idt_decide(&req, &d);
        apply_side_effects(r, &d);
        if (d.action == IDT_READ_BODY) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "the IDToken library asked for the request body twice");
            idt_decision_free(&d);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    status = apply_decision(r, &d);
    idt_decision_free(&d);
    return status;
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_check_config(auth_idtoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(auth_idtoken_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* First, so no other module (mod_setenvif, mod_headers "early", ...) sees a forged header. */
    ap_hook_post_read_request(auth_idtoken_post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_check_authn(auth_idtoken_check_authn, NULL, NULL, APR_HOOK_MIDDLE,
                        AP_AUTH_INTERNAL_PER_CONF);
}

module AP_MODULE_DECLARE_DATA auth_idtoken_module =
{
    STANDARD20_MODULE_STUFF,
    NULL,                               /* dir config creater */
    NULL,                               /* dir merger --- default is to override */
    create_auth_idtoken_srv_config,     /* server config */
    merge_auth_idtoken_srv_config,      /* merge server config */
    auth_idtoken_cmds,                  /* command apr_table_t */
    register_hooks,                     /* register hooks */
#if AP_MODULE_MAGIC_AT_LEAST(AP_MODULE_FLAGS_MMN_MAJOR, AP_MODULE_FLAGS_MMN_MINOR)
    AP_MODULE_FLAG_NONE                 /* flags */
#endif
};
