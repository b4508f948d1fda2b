/*
 * `Require idtoken-claim ...`: the line is parsed once by the core when Apache reads it (a handle in
 * httpd's parsed slot, regular expressions compiled then) and evaluated against the claims the
 * request's login left, as mod_authz_core's own providers do with parsed_require_line.
 */
#include "idtoken_internal.h"

/* The line is evaluated as written, without ap_expr expansion, which would mangle
 * email~^.*@example\.org$ and such. The handle is kept in pool memory behind `parsed`. */
static const char *idtoken_claim_parse(cmd_parms *cmd, const char *require_line, const void **parsed)
{
    const char *err = abi_mismatch(cmd->pool);
    char *msg = NULL;
    int32_t *handle;

    if (err == NULL) {
        handle = apr_palloc(cmd->pool, sizeof(*handle));
        *handle = idt_require_register(require_line, &msg);
        if (*handle >= 0) {
            *parsed = handle;
            return NULL;
        }
        err = apr_pstrdup(cmd->pool, msg ? msg : "the IDToken library refused the line");
        idt_free(msg);
    }
    return apr_pstrcat(cmd->pool, "Require idtoken-claim: ", err, NULL);
}

static authz_status idtoken_claim_check(request_rec *r, const char *require_line, const void *parsed)
{
    const auth_idtoken_req_conf *kept;
    const int32_t *handle = parsed;
    int32_t result;

    /* The empty user of an anonymous pass is no one either: mod_authz_core then asks for
     * authentication, or answers 401 after it. */
    if (r->user == NULL || *r->user == '\0') {
        return AUTHZ_DENIED_NO_USER;
    }
    kept = ap_get_module_config(r->request_config, &auth_idtoken_module);
    if (kept == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, IDTLOGNO(0501)
                      "user %s: Require idtoken-claim %s: no ID token claims for this request "
                      "(not authenticated by AuthType IDToken?)", r->user, require_line);
        return AUTHZ_DENIED;
    }

    result = handle ? idt_require_eval(*handle, kept->claims, kept->claims_count) : -1;
    switch (result) {
    case 1:
        return AUTHZ_GRANTED;
    case 0:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, IDTLOGNO(0502)
                      "user %s: Require idtoken-claim %s not satisfied", r->user, require_line);
        return AUTHZ_DENIED;
    default:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, IDTLOGNO(0503)
                      "user %s: Require idtoken-claim %s could not be evaluated", r->user,
                      require_line);
        return AUTHZ_GENERAL_ERROR;
    }
}

const authz_provider idtoken_claim_provider =
{
    &idtoken_claim_check,
    &idtoken_claim_parse,
};
