/*
 * What the files of mod_auth_idtoken share: Apache's headers, the module's config structs, and the
 * functions one file offers the others. Nothing here knows OpenID Connect; that is libIDToken's
 * (CShim/include/idtoken.h).
 */
#ifndef IDTOKEN_INTERNAL_H
#define IDTOKEN_INTERNAL_H

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
#include "ap_mpm.h"

#include "idtoken.h"

#include <limits.h>
#include <string.h>

APLOG_USE_MODULE(auth_idtoken);
extern module AP_MODULE_DECLARE_DATA auth_idtoken_module;

/* Every line the module logs starts with a number of its own, as httpd's APLOGNO does ("AH00052"), so
 * an admin can search for it: IDT00xx the release, 01xx configuration, 02xx start-up, 03xx the store, 04xx requests,
 * 05xx Require, 06xx metrics. Numbers are never reused for another message. */
#define IDTLOGNO(n) "IDT" #n ": "

#define IDTOKEN_AUTH_TYPE "IDToken"
/* A pass that sent a Set-Cookie marks its request; the filter then keeps the response private. */
#define NOTE_PRIVATE "auth_idtoken-private"
#define FILTER_PRIVATE "AUTH_IDTOKEN_PRIVATE"
/* The Mutex type and the socache consumer name. */
#define STORE_ID "idtoken-cache"
/* cmd->info of the directives whose value is a file: resolved against ServerRoot, so the core sees
 * the path httpd means whatever its working directory. */
#define VALUE_IS_PATH ((void *)1)

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

/* idtoken_config.c */
extern const command_rec auth_idtoken_cmds[];
void *create_auth_idtoken_srv_config(apr_pool_t *p, server_rec *s);
void *merge_auth_idtoken_srv_config(apr_pool_t *p, void *basev, void *addv);
void *create_auth_idtoken_dir_config(apr_pool_t *p, char *dir);
void *merge_auth_idtoken_dir_config(apr_pool_t *p, void *basev, void *addv);
auth_idtoken_srv_conf *srv_conf(const server_rec *s);
/* NULL when the loaded library speaks this module's ABI, else the message saying so. */
const char *abi_mismatch(apr_pool_t *p);

/* idtoken_sites.c */
int auth_idtoken_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int auth_idtoken_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
/* "virtual host name:port (file:line)" for messages. */
const char *server_where(apr_pool_t *p, const server_rec *s);
/* Sites registered by the last check_config. */
int sites_registered(void);
/* The start-up lines of the sites (idt_site_notice). */
int sites_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);

/* idtoken_store.c */
const char *set_cache(cmd_parms *cmd, void *dummy, const char *arg);
apr_status_t store_pre_config(apr_pool_t *pconf);
int auth_idtoken_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
int store_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void store_child_init(apr_pool_t *p, server_rec *s);
/* The store lent to the core for this request; NULL without one. */
const idt_store *request_store(request_rec *r);
/* Store calls made through a store request_store lent. */
unsigned int store_calls(const idt_store *store);
/* For the request's trace line: the file store's counters ("" for another store). */
const char *store_trace_note(apr_pool_t *p);

/* One request's view of the store, whichever it is. The callbacks log against r and allocate from
 * r->pool: the core calls them during idt_decide, on the thread that called it. */
typedef struct {
    request_rec *r;
    unsigned int calls;         /* store calls for this request, for the trace line */
} store_ctx;
/* What every callback shares (idtoken_store.c): the mutex around a call, the checks of what the core
 * passes, the connection's read buffer (IDT_STORE_VALUE_MAX bytes), one error line. */
int store_enter(store_ctx *ctx, int always, int *locked);
int store_leave(const store_ctx *ctx, int locked);
void store_changed(void);
int store_key_ok(const store_ctx *ctx, const unsigned char *key, size_t key_len);
int store_value_ok(const store_ctx *ctx, const unsigned char *value, size_t value_len, int64_t expires_at);
unsigned char *store_read_buffer(request_rec *r);
int32_t store_failed(const store_ctx *ctx, apr_status_t rv, const char *what);
/* The mutex, outside a request (start-up). */
apr_status_t store_mutex_lock(void);
apr_status_t store_mutex_unlock(void);

/* idtoken_filestore.c: IDTokenCache file, the module's own store (idtoken_table.c) */
void filestore_pre_config(void);
/* `args`: what follows "file" in IDTokenCache file[:path][(size)]. */
const char *filestore_configure(cmd_parms *cmd, const char *args);
const char *set_cache_full(cmd_parms *cmd, void *dummy, const char *arg);
int filestore_full_policy_set(void);
int filestore_post_config(apr_pool_t *pconf, server_rec *s, int announce);
void filestore_callbacks(idt_store *store);
const char *filestore_trace_note(apr_pool_t *p);

/* The file store's counts, for the metrics. */
typedef struct {
    uint64_t entries, bytes, free_bytes, evicted, refused;
} store_counts;
/* "file", the socache provider's name, or "none". */
const char *store_kind_name(void);
/* A call to the store just now: 1 it answered, 0 it failed, -1 there is no store. */
int store_probe(request_rec *r);
/* 1 and *out filled with the file store in use, else 0. */
int store_file_counts(store_counts *out);
int filestore_counts(store_counts *out);

/* idtoken_metrics.c: the counters the core reports, in memory every process shares, and the handlers */
void metrics_pre_config(void);
const char *set_metrics(cmd_parms *cmd, void *dummy, int on);
int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void metrics_child_init(apr_pool_t *p, server_rec *s);
/* What a decision reports (idt_decision.metrics), added for the request's site. */
void metrics_apply(int32_t site, const idt_decision *d);
int metrics_handler(request_rec *r);

/* idtoken_redis.c: IDTokenCache redis:... and redis-sentinel:..., the module's own Redis client
 * (idtoken_redis_conn.c moves the bytes) */
void redis_pre_config(void);
/* `arg`: the whole IDTokenCache value, "redis:..." or "redis-sentinel:...". */
const char *redis_configure(cmd_parms *cmd, const char *arg);
const char *set_redis_user(cmd_parms *cmd, void *dummy, const char *arg);
const char *set_redis_password_file(cmd_parms *cmd, void *dummy, const char *arg);
const char *set_redis_tls(cmd_parms *cmd, void *dummy, int on);
const char *set_redis_ca_file(cmd_parms *cmd, void *dummy, const char *arg);
const char *set_redis_certificate(cmd_parms *cmd, void *dummy, const char *cert, const char *key);
const char *set_redis_server_name(cmd_parms *cmd, void *dummy, const char *arg);
const char *set_redis_database(cmd_parms *cmd, void *dummy, const char *arg);
const char *set_redis_timeout(cmd_parms *cmd, void *dummy, const char *command, const char *connect);
const char *set_redis_key_prefix(cmd_parms *cmd, void *dummy, const char *arg);
/* `used`: IDTokenCache names Redis (otherwise the IDTokenRedis* directives are refused). */
int redis_check_config(apr_pool_t *pconf, server_rec *s, int used);
int redis_post_config(apr_pool_t *pconf, server_rec *s, int announce);
void redis_child_init(apr_pool_t *p, server_rec *s);
void redis_callbacks(idt_store *store);
const char *redis_trace_note(apr_pool_t *p);

/* idtoken_request.c */
int auth_idtoken_post_read_request(request_rec *r);
int auth_idtoken_check_authn(request_rec *r);
void auth_idtoken_insert_filter(request_rec *r);
apr_status_t private_filter(ap_filter_t *f, apr_bucket_brigade *bb);

/* idtoken_authz.c */
extern const authz_provider idtoken_claim_provider;

#endif /* IDTOKEN_INTERNAL_H */
