/*
 * The C ABI between the Apache module (the C files in apache/) and the Swift core (libIDToken.so).
 *
 * Rules of the boundary:
 *  - Plain C types only. The core never sees an Apache type; the module never sees OpenID Connect.
 *  - Strings going in are NUL-terminated and owned by the caller (usually an APR pool); the core copies
 *    what it keeps. A NULL string means "absent".
 *  - Messages coming out (errors and warnings of the configuration calls) are malloc'd by the core and
 *    released by the caller with idt_free().
 *  - A decision is written into memory the caller lends for it (idt_request.alloc: the request pool), so
 *    it lives as long as the request and nothing in it is freed by hand.
 *  - Values the store callbacks return are lent by the module until its next store call; the core
 *    copies them at once.
 *  - No function here traps on bad input: a failure is reported through the return value.
 *  - Threads: idt_site_*, idt_setting_check and idt_metrics_setup run single-threaded at configuration
 *    time (before fork). idt_child_init runs once per child. idt_decide and idt_metrics_render may be
 *    called from many threads of a child at once.
 */
#ifndef IDTOKEN_ABI_H
#define IDTOKEN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes; the module refuses a library of another version. */
#define IDT_ABI_VERSION 11

/* The release (semantic versioning), written here only: the Makefile, the .deb and both halves read it.
 * CHANGELOG.md says what each one changed for admins. */
#define IDT_VERSION "0.9.0"

int32_t idt_abi_version(void);

/* The release the library was built as (IDT_VERSION of its build). Static: never freed. */
const char *idt_version(void);

/* Releases a string returned by the core. NULL is fine. */
void idt_free(char *p);

/* ---- Configuration time ------------------------------------------------------------------------- */

/* One directive's value, checked the moment Apache reads it so that `apachectl configtest` points at
 * the line. `name` is the directive as written in the command table (e.g. "IDTokenClientID"); an
 * unknown name is refused. NULL when the value is acceptable, otherwise a message (free with idt_free)
 * that the module prefixes with the directive's name. */
char *idt_setting_check(const char *name, const char *value);

/* A directive and its value, once per directive name. Directives that take a list (ITERATE) arrive
 * with their words joined by single spaces; repeated lines in one context append to the list, and a
 * virtual host's value replaces the main server's. */
typedef struct {
    const char *name;
    const char *value;
} idt_setting;

/* One protected site: the IDToken* directives of a virtual host, after Apache merged them with the
 * main server's (a vhost inherits every directive it does not set itself). */
typedef struct {
    const char *site_name;        /* for messages, e.g. "localhost:8080" */
    const char *default_scheme;   /* "http" or "https": the vhost's own scheme */
    const char *default_host;     /* the vhost's ServerName[:port] */
    const idt_setting *settings;
    size_t settings_count;
    /* The paths of this vhost's <Location>/<Directory> blocks with `AuthType IDToken`, so the core can
     * check that the redirect URI lies inside one of them. */
    const char *const *protected_paths;
    size_t protected_paths_count;
    /* The vhost's LimitRequestFieldSize: the session's cookies must fit one Cookie header line. */
    int32_t limit_request_field_size;
} idt_site_config;

/* Forgets every registered site and directory block. Called in pre_config, at the start of each
 * configuration pass (httpd reads its configuration several times in the same process), before any
 * directive is read. */
void idt_sites_reset(void);

/* Per-directory settings (directives allowed in <Location> and <Directory>, never in .htaccess).
 * Registers the settings a block holds so far and returns a handle >= 0, or -1 with *error set (free
 * with idt_free). The module calls it again each time a directive adds to the block, and keeps the
 * newest handle; merging a child block onto its parent concatenates their handle lists, parent
 * first, and the core applies them in that order (the child wins). Configuration time only. */
int32_t idt_dir_register(const idt_setting *settings, size_t settings_count, char **error);

/* `Require idtoken-claim ...`: parses the require line when Apache reads it (regular expressions
 * compiled once) and returns a handle >= 0 for idt_require_eval, or -1 with *error set (free with
 * idt_free). Configuration time only; handles are forgotten by idt_sites_reset like sites. */
int32_t idt_require_register(const char *require_line, char **error);

/* Checks the site's settings together (reads the key file) and registers it.
 * Returns a handle >= 0, or -1 with *error set. *warning may be set in both cases (log it).
 * Both out-parameters are freed with idt_free. */
int32_t idt_site_register(const idt_site_config *config, char **error, char **warning);

/* What a registered site has to say at start-up beyond warnings (which proxies it trusts), one line
 * per '\n'; NULL when nothing. Free with idt_free. Configuration time only. */
char *idt_site_notice(int32_t handle);

/* Once in each child process, after fork: the place for anything that must not exist before fork. */
void idt_child_init(void);

/* ---- The shared store ---------------------------------------------------------------------------- */

/* A small key-value store shared by every process of the server (and, with Redis or memcache, by every
 * server), supplied by the module: its own file-backed table (IDTokenCache file, the default), its own
 * Redis client (IDTokenCache redis:...) or one of Apache's socache providers. The core keeps there the single-use marks (a login
 * response, a logout token is accepted once), server-side sessions (IDTokenSessionStore cache), their
 * tombstones, and the sid/sub index back-channel logout ends them by. Keys (4 to 128 bytes) and values
 * (at most IDT_STORE_VALUE_MAX bytes) are bytes; entries expire at `expires_at` (Unix seconds). The
 * callbacks are valid only during the idt_decide call they came with, and only on its thread (they use
 * the request's pool). `add` is atomic across the processes of one httpd, and with the module's Redis
 * client (one SET NX) across every server sharing it; socache has no add-if-absent, so servers sharing
 * memcache can each win a race once. The file store keeps its entries across restarts; shmcb forgets
 * them on every restart.
 * Each callback returns an idt_store_status. */
/* The largest value the store holds: shmcb passes over a longer entry as if it were absent. */
#define IDT_STORE_VALUE_MAX 65536

/* put's flags. MAY_EVICT: the entry may give way to newer ones when the store is full (a session:
 * losing it logs one user out); entries without it are never dropped before they expire, since a
 * single-use mark or a tombstone that vanished would let something through. The file store honours
 * it (IDTokenCacheFull); socache providers evict by their own rules. */
#define IDT_STORE_MAY_EVICT 1u

typedef enum {
    IDT_STORE_OK = 0,
    IDT_STORE_NOT_FOUND = 1,   /* get, remove: no such entry */
    IDT_STORE_EXISTS = 2,      /* add: the key is already there (nothing was written) */
    IDT_STORE_ERROR = 3        /* the store failed or is full; the core fails closed */
} idt_store_status;

typedef struct {
    void *ctx;
    /* Adds the entry only if the key is absent, atomically with respect to every other process. */
    int32_t (*add)(void *ctx, const unsigned char *key, size_t key_len,
                   const unsigned char *value, size_t value_len, int64_t expires_at);
    /* Sets the entry, replacing any previous one. `flags`: IDT_STORE_MAY_EVICT or 0. */
    int32_t (*put)(void *ctx, const unsigned char *key, size_t key_len,
                   const unsigned char *value, size_t value_len, int64_t expires_at, uint32_t flags);
    /* On IDT_STORE_OK points *value at the entry (lent by the module, valid until its next store call)
     * and sets *value_len. */
    int32_t (*get)(void *ctx, const unsigned char *key, size_t key_len,
                   const unsigned char **value, size_t *value_len);
    int32_t (*remove)(void *ctx, const unsigned char *key, size_t key_len);
    /* How many calls that may change an entry (add, put, remove, and anything that evicts or repairs)
     * the store has taken so far, for a store only this server's processes write to (the file store,
     * shmcb); NULL for one other servers write too (Redis, memcache). Read before a get, the same count
     * later means no entry has changed since: the core then lets an already-read session through
     * without reading it again. The count moves before the changing call returns. */
    uint64_t (*writes)(void *ctx);
} idt_store;

/* ---- Metrics --------------------------------------------------------------------------------------- */

/* What the core counts is its own business: the module keeps `counters` numbers per process in memory
 * every process shares, adds to them what each decision reports (idt_decision.metrics), sums them over
 * the processes when asked (SetHandler idtoken-metrics / idtoken-status), and has the core render the
 * sums. It also keeps, per site, `site_gauges` times (Unix seconds) of which it remembers the latest
 * reported. Both numbers are fixed for the library's lifetime (it is never unloaded). */
typedef struct {
    uint32_t counters;
    uint32_t site_gauges;
} idt_metrics_shape;

/* IDTokenMetrics: `enabled` 0 makes the core record nothing. Configuration time, before fork. */
void idt_metrics_setup(int32_t enabled, idt_metrics_shape *shape);

#define IDT_METRIC_ADD    0u   /* counters[index] += value */
#define IDT_METRIC_LATEST 1u   /* the request's site's gauge `index` = max(itself, value) */

typedef struct {
    uint32_t kind;       /* IDT_METRIC_ADD or IDT_METRIC_LATEST */
    uint32_t index;      /* < counters, or < site_gauges */
    int64_t value;       /* >= 0 */
} idt_metric;

/* What the module gathered for idt_metrics_render. */
typedef struct {
    const uint64_t *counters;   /* summed over every process; NULL when nothing is counted */
    size_t counters_count;
    const int64_t *site_gauges; /* site_gauges per site, by site handle (0 = never); may be NULL */
    size_t sites_count;         /* sites whose gauges are given */
    int64_t now;                /* Unix seconds */
    int64_t counting_since;     /* when the counters started from zero; 0 when nothing is counted */
    uint32_t slots;             /* process slots of the counters, and how many hold any count */
    uint32_t slots_used;
    const char *store_kind;     /* "file", a socache provider's name, "none" */
    int32_t store_reachable;    /* 1 a call just now answered, 0 it failed, -1 no store */
    int32_t store_has_file_counts;  /* the file store: the five below are set */
    uint64_t store_entries;
    uint64_t store_bytes;
    uint64_t store_free_bytes;
    uint64_t store_evicted;
    uint64_t store_refused;
    const char *module_version; /* IDT_VERSION and IDT_ABI_VERSION of the module's build */
    int32_t module_abi;
} idt_metrics_facts;

#define IDT_METRICS_PROMETHEUS 0   /* text/plain; version=0.0.4: the Prometheus text exposition format */
#define IDT_METRICS_STATUS     1   /* application/json: the health view */

/* Renders the facts as `format` into memory from alloc (NUL-terminated), and the HTTP status to answer
 * with in *status. NULL when alloc failed. */
char *idt_metrics_render(const idt_metrics_facts *facts, int32_t format, int32_t *status,
                         void *(*alloc)(void *alloc_ctx, size_t size), void *alloc_ctx);

/* ---- Request time -------------------------------------------------------------------------------- */

typedef struct {
    int32_t site;              /* handle from idt_site_register */
    const char *method;        /* "GET", "POST", ... */
    const char *scheme;        /* "http" or "https", as the client reached us */
    const char *host;          /* host[:port] the client used (Host header, else the vhost's) */
    const char *uri;           /* the request target as sent: path and query, still percent-encoded */
    const char *cookie;        /* the Cookie header, NULL when absent */
    const char *content_type;  /* the Content-Type header, NULL when absent */
    const char *accept;        /* Accept */
    const char *sec_fetch_mode;   /* Sec-Fetch-Mode */
    const char *sec_fetch_dest;   /* Sec-Fetch-Dest */
    const char *x_requested_with; /* X-Requested-With */
    const char *sec_fetch_site;   /* Sec-Fetch-Site: where a navigation came from (logout CSRF) */
    const char *origin;           /* Origin */
    const char *referer;          /* Referer */
    /* The connection's peer (c->client_ip: the proxy in front, if any; mod_remoteip never changes it)
     * and the headers a trusted proxy describes the browser's request with. The core believes them
     * only from a peer its site trusts (IDTokenTrustedProxies); it takes them as they are. */
    const char *peer_ip;
    const char *forwarded;         /* Forwarded (RFC 7239) */
    const char *x_forwarded_proto; /* X-Forwarded-Proto */
    const char *x_forwarded_host;  /* X-Forwarded-Host */
    const char *x_forwarded_port;  /* X-Forwarded-Port */
    int32_t internal;          /* 1 for a subrequest or internal redirect: decided afresh from its cookies,
                                  but never a callback and never a session refresh */
    int32_t cannot_redirect;   /* 1 when a redirect to the provider could not reach the browser (a
                                  subrequest; the internal redirect to an ErrorDocument): no login
                                  starts, a request without a session gets 401 */
    const char *body;          /* the request body, once the core asked for it (IDT_READ_BODY) */
    size_t body_len;
    int32_t body_read;         /* 1 when body/body_len hold the whole body (possibly empty) */
    int32_t body_too_large;    /* 1 when the body was longer than the limit the core gave */
    const idt_store *store;    /* the shared store, NULL when none is available */
    const int32_t *dir_configs;   /* the merged per-directory handles, parent first; may be empty */
    size_t dir_configs_count;
    /* Memory for the decision (apr_palloc on the request pool): never NULL for size > 0. Everything
     * the decision points to comes from here, so the module can hand the strings to Apache's tables
     * as they are (apr_table_setn) and nothing is freed by hand. */
    void *(*alloc)(void *alloc_ctx, size_t size);
    void *alloc_ctx;
} idt_request;

typedef enum {
    IDT_DECLINE = 0,   /* not the module's business: let Apache carry on */
    IDT_PASS = 1,      /* let the request through: authenticated (remote_user set: set it, the headers
                          and env), or anonymously (remote_user NULL: `IDTokenUnauthAction pass`) */
    IDT_REDIRECT = 2,  /* answer `status` (302/303) with `location` */
    IDT_RESPOND = 3,   /* answer `status` with `page`: with content_type set, `page` is the body as it is
                          (any status; the request ends there); without, an error response (4xx/5xx)
                          whose page Apache replaces with an ErrorDocument when one is set */
    IDT_READ_BODY = 4  /* read at most body_limit bytes of the request body, then call idt_decide again */
} idt_action;

/* A name and a value, NUL-terminated; the lengths say where each really ends (a claim name is never
 * read as a C string where a NUL inside could cut it short). */
typedef struct {
    char *name;
    char *value;
    size_t name_len;
    size_t value_len;
} idt_pair;

/* APLOG-compatible levels for log_level. */
#define IDT_LOG_NONE   (-1)
#define IDT_LOG_ERR      3
#define IDT_LOG_WARNING  4
#define IDT_LOG_NOTICE   5
#define IDT_LOG_INFO     6
#define IDT_LOG_DEBUG    7

typedef struct {
    int32_t action;            /* idt_action */
    int32_t status;            /* HTTP status for IDT_REDIRECT and IDT_RESPOND */
    char *location;            /* IDT_REDIRECT */
    char *remote_user;         /* IDT_PASS */
    idt_pair *headers;         /* IDT_PASS: request headers to set for the application */
    size_t headers_count;
    idt_pair *env;             /* subprocess environment (claims on IDT_PASS, error details otherwise) */
    size_t env_count;
    char **set_cookies;        /* Set-Cookie values to send, with any action */
    size_t set_cookies_count;
    char *page;                /* IDT_RESPOND: a short HTML page, already escaped; or the body */
    char *content_type;        /* IDT_RESPOND: the body's type, or NULL for an error page */
    int32_t log_level;         /* IDT_LOG_*; IDT_LOG_NONE when there is nothing to log */
    char *log_message;         /* for the error log; never holds a token or key */
    size_t body_limit;         /* IDT_READ_BODY */
    idt_pair *claims;          /* IDT_PASS: each claim's name and JSON value, kept by the module for
                                  the request (and its subrequests) to answer `Require idtoken-claim`
                                  (already in the request pool: kept as they are) */
    size_t claims_count;
    /* What deciding cost, for the module's trace line: searches of the Cookie header for a name, and
     * AES-GCM opens of sealed values. Grows with what the client sends only within fixed bounds. */
    uint32_t work_cookie_lookups;
    uint32_t work_sealed_opens;
    idt_pair *response_headers;  /* headers of the response to the browser, with any action (CORS, a
                                    framing policy): set as they are */
    size_t response_headers_count;
    /* What the request did, for the metrics (idt_metrics_shape): the module applies each one, with any
     * action, unless IDTokenMetrics is Off. */
    idt_metric *metrics;
    size_t metrics_count;
} idt_decision;

/* Every request header the core sets for the application starts with this prefix. The module removes
 * incoming headers that match it (any case, '-' or '_') from every request, protected or not, so a
 * client can never pose as the module. */
#define IDT_HEADER_PREFIX "IDToken-"
/* Every environment variable the core sets for a pass starts with this prefix. Within one decision the
 * header names are distinct (any case), and so are the environment names: the module may add them
 * without looking for its own earlier ones. */
#define IDT_ENV_PREFIX "IDTOKEN_"

/* Fills *out (zeroed by the caller), from request->alloc. */
void idt_decide(const idt_request *request, idt_decision *out);

/* A registered `Require idtoken-claim` line against the claims of an IDT_PASS decision (name, JSON;
 * read by their lengths). Returns 1 granted, 0 denied, -1 for an unknown handle (logged by the caller). */
int32_t idt_require_eval(int32_t handle, const idt_pair *claims, size_t claims_count);

#ifdef __cplusplus
}
#endif

#endif /* IDTOKEN_ABI_H */
