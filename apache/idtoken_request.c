/*
 * Every request: the client's IDToken-* headers removed, the request's facts handed to the core,
 * the body read when the core asks for it, and the decision applied (pass with headers, redirect,
 * error page); responses that carry a refreshed session kept out of shared caches.
 */
#include "idtoken_internal.h"

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
                  IDTLOGNO(0401) "removed %d reserved header name(s) from the client's Connection header", dropped);
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
int auth_idtoken_post_read_request(request_rec *r)
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
                      IDTLOGNO(0402) "removed the request header %s sent by the client (reserved for the module)",
                      name);
        apr_table_unset(r->headers_in, name);
    }
    return DECLINED;
}

/* ---- AuthType IDToken ---------------------------------------------------------------------------- */

/* host[:port] for a request without a Host header (HTTP/1.0): r->hostname when known, else
 * ServerName; IPv6 in brackets. */
static const char *request_host_fallback(request_rec *r)
{
    const char *name = ap_get_server_name_for_url(r);
    apr_port_t port = ap_get_server_port(r);

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

/* The request headers the core reads, picked in one pass over headers_in: an apr_table_get for each
 * would scan the table fourteen times. The first of a name wins, as with apr_table_get. */
static void pick_header(idt_request *req, const char *key, const char *value)
{
    const char **slot = NULL;

    switch (apr_tolower((unsigned char)key[0])) {
    case 'a':
        slot = strcasecmp(key, "Accept") == 0 ? &req->accept : NULL;
        break;
    case 'c':
        slot = strcasecmp(key, "Cookie") == 0 ? &req->cookie
             : strcasecmp(key, "Content-Type") == 0 ? &req->content_type : NULL;
        break;
    case 'f':
        slot = strcasecmp(key, "Forwarded") == 0 ? &req->forwarded : NULL;
        break;
    case 'h':
        slot = strcasecmp(key, "Host") == 0 ? &req->host : NULL;
        break;
    case 'o':
        slot = strcasecmp(key, "Origin") == 0 ? &req->origin : NULL;
        break;
    case 'r':
        slot = strcasecmp(key, "Referer") == 0 ? &req->referer : NULL;
        break;
    case 's':
        slot = strcasecmp(key, "Sec-Fetch-Mode") == 0 ? &req->sec_fetch_mode
             : strcasecmp(key, "Sec-Fetch-Dest") == 0 ? &req->sec_fetch_dest
             : strcasecmp(key, "Sec-Fetch-Site") == 0 ? &req->sec_fetch_site : NULL;
        break;
    case 'x':
        slot = strcasecmp(key, "X-Requested-With") == 0 ? &req->x_requested_with
             : strcasecmp(key, "X-Forwarded-Proto") == 0 ? &req->x_forwarded_proto
             : strcasecmp(key, "X-Forwarded-Host") == 0 ? &req->x_forwarded_host
             : strcasecmp(key, "X-Forwarded-Port") == 0 ? &req->x_forwarded_port : NULL;
        break;
    default:
        break;
    }
    if (slot && *slot == NULL) {
        *slot = value;
    }
}

static void pick_headers(const apr_table_t *headers, idt_request *req)
{
    const apr_array_header_t *elts = apr_table_elts(headers);
    const apr_table_entry_t *e = (const apr_table_entry_t *)elts->elts;
    int i;

    for (i = 0; i < elts->nelts; ++i) {
        if (e[i].key && e[i].val) {
            pick_header(req, e[i].key, e[i].val);
        }
    }
}

static void fill_request(request_rec *r, int32_t site, idt_request *req)
{
    memset(req, 0, sizeof(*req));
    req->site = site;
    req->method = r->method;
    req->scheme = ap_http_scheme(r);
    req->uri = r->unparsed_uri;
    pick_headers(r->headers_in, req);
    if (req->host == NULL || *req->host == '\0') {
        req->host = request_host_fallback(r);
    }
    /* The TCP peer, whatever mod_remoteip made of r->useragent_ip: the proxy that sent these headers. */
    req->peer_ip = r->connection->client_ip;
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
                      IDTLOGNO(0403) "cannot read the request body (HTTP status %d)", rc);
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
                          IDTLOGNO(0404) "reading the request body failed after %" APR_SIZE_T_FMT " bytes", len);
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

/* What a decision carries whatever its action: its metrics, cookies, environment, a log line. */
/* Whether a table has a key starting with prefix, in any case. */
static int table_has_prefix(const apr_table_t *t, const char *prefix)
{
    const apr_array_header_t *elts = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)elts->elts;
    apr_size_t len = strlen(prefix);
    int i;

    for (i = 0; i < elts->nelts; ++i) {
        if (e[i].key && strncasecmp(e[i].key, prefix, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static void apply_side_effects(request_rec *r, const idt_decision *d)
{
    apr_size_t i;
    int fresh;

    metrics_apply(srv_conf(r->server)->site, d);
    /* The decision already lives in r->pool (idt_request.alloc), so the tables take its strings as
     * they are (the ...n variants copy nothing). err_headers_out survives error and redirect
     * responses, headers_out does not. */
    for (i = 0; i < d->set_cookies_count; ++i) {
        if (d->set_cookies[i]) {
            apr_table_addn(r->err_headers_out, "Set-Cookie", d->set_cookies[i]);
        }
    }
    /* apr_table_setn compares each name with every entry, and all of ours share their first letters
     * (the table's quick checksum): with twenty claims that was the module's largest cost per request.
     * So the pass's variables are added, unless something already set one of the prefix. */
    fresh = d->action == IDT_PASS && !table_has_prefix(r->subprocess_env, IDT_ENV_PREFIX);
    for (i = 0; i < d->env_count; ++i) {
        if (d->env[i].name && d->env[i].value) {
            if (fresh) {
                apr_table_addn(r->subprocess_env, d->env[i].name, d->env[i].value);
            }
            else {
                apr_table_setn(r->subprocess_env, d->env[i].name, d->env[i].value);
            }
        }
    }
    for (i = 0; i < d->response_headers_count; ++i) {
        if (d->response_headers[i].name && d->response_headers[i].value) {
            apr_table_setn(r->err_headers_out, d->response_headers[i].name, d->response_headers[i].value);
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
        ap_log_rerror(APLOG_MARK, level, 0, r, IDTLOGNO(0405) "%s", d->log_message);
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
    int fresh;

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
                          IDTLOGNO(0406) "the IDToken library let the request pass with an empty user name");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        r->user = d->remote_user;
        r->ap_auth_type = IDTOKEN_AUTH_TYPE;
        /* The request read from the client had every header of the prefix removed
         * (post_read_request), so its names are new there: added, not compared with every entry.
         * An internal redirect shares headers_in with a request this module already served. */
        fresh = r->prev == NULL && r->main == NULL && !table_has_prefix(r->headers_in, IDT_HEADER_PREFIX);
        keep_claims(r, d);
        if (d->set_cookies_count > 0) {
            apr_table_setn(r->notes, NOTE_PRIVATE, "1");
        }
        for (i = 0; i < d->headers_count; ++i) {
            const char *name = d->headers[i].name;

            /* Only the reserved prefix is ever set: it is what post_read_request strips, so the
             * application can trust these names. */
            if (name == NULL || d->headers[i].value == NULL
                || strncasecmp(name, IDT_HEADER_PREFIX, sizeof(IDT_HEADER_PREFIX) - 1) != 0) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              IDTLOGNO(0407) "ignored request header %s from the IDToken library: it does not "
                              "start with " IDT_HEADER_PREFIX, name ? name : "(null)");
                continue;
            }
            if (fresh) {
                apr_table_addn(r->headers_in, name, d->headers[i].value);
            }
            else {
                apr_table_setn(r->headers_in, name, d->headers[i].value);
            }
        }
        return OK;

    case IDT_REDIRECT:
        if (d->location == NULL || d->status < 300 || d->status > 399) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          IDTLOGNO(0408) "the IDToken library asked for an invalid redirect (status %d)",
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
                              IDTLOGNO(0409) "the IDToken library asked for an invalid response status %d",
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
                          IDTLOGNO(0410) "the IDToken library asked for an invalid response status %d",
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
                      IDTLOGNO(0411) "the IDToken library returned an unknown action %d", (int)d->action);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

int auth_idtoken_check_authn(request_rec *r)
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
                      IDTLOGNO(0412) "AuthType IDToken used in %s but no IDToken* directive (IDTokenClientID, "
                      "...) applies there", server_where(r->pool, r->server));
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    fill_request(r, conf->site, &req);
    req.internal = !ap_is_initial_req(r);
    /* httpd answers an ErrorDocument's own redirect with the original error (dropping the Location),
     * and mod_dir's FallbackResource copies a subrequest's headers after freeing it: in neither can a
     * login redirect reach the browser, only leave a state cookie behind. */
    req.cannot_redirect = r->main != NULL || (r->prev != NULL && ap_is_HTTP_ERROR(r->prev->status));
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
                          IDTLOGNO(0413) "the IDToken library asked for the request body twice");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    /* What the request cost in work that a client could try to multiply: counts, not time, so a test
     * can show an amplification attack failing on any machine. */
    if (APLOGrtrace1(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      IDTLOGNO(0414) "request work: %u cookie lookups, %u sealed opens, %u store calls%s",
                      lookups, opens, store_calls(store), store_trace_note(r->pool));
    }

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

apr_status_t private_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;

    /* The handler has set its headers by the time its first brigade passes. Both tables: httpd sends
     * the two merged. */
    make_private(r, r->headers_out, apr_table_get(r->err_headers_out, "Cache-Control") == NULL);
    make_private(r, r->err_headers_out, 0);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

void auth_idtoken_insert_filter(request_rec *r)
{
    if (has_private_note(r)) {
        ap_add_output_filter(FILTER_PRIVATE, NULL, r, r->connection);
    }
}
