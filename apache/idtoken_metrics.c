/*
 * Metrics: the numbers the core counts (idt_metrics_shape), kept in memory every process of the server
 * shares, and the two handlers that show them: `SetHandler idtoken-metrics` (Prometheus) and
 * `SetHandler idtoken-status` (JSON, for health checks). What the numbers mean, and how they are shown,
 * is the core's: this file only adds, keeps the latest, sums and hands over.
 *
 * The memory is made by the parent in post_config, anonymous and shared, so every child inherits it
 * through fork; it is kept in ap_retained_data, so a graceful restart (and -k restart) keeps the counts
 * and old and new children add to the same numbers. It holds one row of counters per process slot: a
 * child claims a slot of its own at child_init, and its threads add to the row with atomic adds (no
 * lock, and no cache line shared with another process); a scrape sums the rows. A row is never reset:
 * a child that exits leaves its counts behind for the next one to add to. Per site, a few times (the
 * last provider fetch that worked and that failed) are kept as the latest reported (atomic max).
 * docs/internals.md draws the layout.
 */
#include "idtoken_internal.h"

#include "apr_shm.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#define RETAINED_METRICS "auth_idtoken-metrics"
#define METRICS_MAGIC "IDTMETR1"
/* Sites whose provider times are kept; further sites show none. */
#define METRICS_SITES 64
#define CACHE_LINE 64
#define HANDLER_PREFIX "idtoken-"
#define HANDLER_METRICS HANDLER_PREFIX "metrics"
#define HANDLER_STATUS HANDLER_PREFIX "status"

typedef struct {
    char magic[8];
    uint32_t counters;          /* the core's, per row */
    uint32_t row_words;         /* counters rounded up to a cache line */
    uint32_t slots;
    uint32_t site_gauges;
    uint32_t sites;
    uint32_t block_words;       /* a site's block: its key, then its gauges, rounded up to a cache line */
    uint64_t size;
    int64_t started_at;
} metrics_header;

/* The memory of every generation, and where its parts are. */
typedef struct {
    apr_shm_t *shm;
    metrics_header *header;
} retained_metrics;

/* IDTokenMetrics; reset by metrics_pre_config on every pass. */
static int metrics_enabled = 1;
/* Set in post_config by the parent, inherited by the children: NULL while nothing is counted. */
static metrics_header *header;
static int32_t *owners;             /* slots: the pid of the process using each, 0 for none */
static uint64_t *rows;              /* slots x row_words */
static uint64_t *site_blocks;       /* sites x block_words: key, gauges */
/* This child's row, and its slot (-1: no slot of its own was free; it shares one). */
static uint64_t *my_row;
static int my_slot = -1;

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

void metrics_pre_config(void)
{
    metrics_enabled = 1;
    header = NULL;
    owners = NULL;
    rows = NULL;
    site_blocks = NULL;
    my_row = NULL;
    my_slot = -1;
}

/* IDTokenMetrics On|Off */
const char *set_metrics(cmd_parms *cmd, void *dummy, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)dummy;

    if (err) {
        return err;
    }
    metrics_enabled = on;
    return NULL;
}

/* ---- The memory ----------------------------------------------------------------------------------- */

static void locate(metrics_header *h)
{
    char *base = (char *)h;
    size_t at = round_up(sizeof(*h), CACHE_LINE);

    header = h;
    owners = (int32_t *)(base + at);
    at += round_up(h->slots * sizeof(int32_t), CACHE_LINE);
    rows = (uint64_t *)(base + at);
    at += (size_t)h->slots * h->row_words * sizeof(uint64_t);
    site_blocks = (uint64_t *)(base + at);
}

static size_t layout_size(uint32_t slots, uint32_t row_words, uint32_t sites, uint32_t block_words)
{
    return round_up(sizeof(metrics_header), CACHE_LINE) + round_up(slots * sizeof(int32_t), CACHE_LINE)
           + (size_t)slots * row_words * sizeof(uint64_t) + (size_t)sites * block_words * sizeof(uint64_t);
}

/* Two per process the MPM may run (old and new children overlap during a graceful restart). */
static uint32_t slot_count(void)
{
    int limit = 0;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1) {
        limit = 16;
    }
    return (uint32_t)(limit > 2048 ? 4096 : 2 * limit + 2);
}

static int layout_fits(const metrics_header *h, const idt_metrics_shape *shape)
{
    return h && memcmp(h->magic, METRICS_MAGIC, 8) == 0 && h->counters == shape->counters
           && h->site_gauges == shape->site_gauges && h->sites == METRICS_SITES;
}

static apr_status_t make_memory(server_rec *s, const idt_metrics_shape *shape, retained_metrics *kept)
{
    uint32_t row_words = (uint32_t)round_up(shape->counters, CACHE_LINE / sizeof(uint64_t));
    uint32_t block_words = (uint32_t)round_up(1 + shape->site_gauges, CACHE_LINE / sizeof(uint64_t));
    uint32_t slots = slot_count();
    size_t size = layout_size(slots, row_words, METRICS_SITES, block_words);
    apr_shm_t *shm = NULL;
    metrics_header *h;
    apr_status_t rv;

    /* Anonymous: nothing on disk, and children get it through fork. In the process pool: it lives as
     * long as the parent, across graceful restarts. */
    rv = apr_shm_create(&shm, size, NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    h = apr_shm_baseaddr_get(shm);
    memset(h, 0, size);
    memcpy(h->magic, METRICS_MAGIC, 8);
    h->counters = shape->counters;
    h->row_words = row_words;
    h->slots = slots;
    h->site_gauges = shape->site_gauges;
    h->sites = METRICS_SITES;
    h->block_words = block_words;
    h->size = size;
    h->started_at = apr_time_sec(apr_time_now());
    kept->shm = shm;
    kept->header = h;
    return APR_SUCCESS;
}

/* A site's identity across restarts: its settings. A block whose site changed (another vhost at that
 * handle, other settings) starts over, so one provider's times are never shown for another's. */
static uint64_t site_key(const auth_idtoken_srv_conf *conf)
{
    uint64_t hash = 1469598103934665603ULL;
    int i;

    for (i = 0; i < conf->settings->nelts; ++i) {
        const idt_setting *setting = &APR_ARRAY_IDX(conf->settings, i, idt_setting);
        const char *parts[2];
        int k;

        parts[0] = setting->name;
        parts[1] = setting->value;
        for (k = 0; k < 2; ++k) {
            const unsigned char *c = (const unsigned char *)(parts[k] ? parts[k] : "");

            do {
                hash = (hash ^ *c) * 1099511628211ULL;
            } while (*c++);
        }
    }
    return hash ? hash : 1;
}

static void claim_site_blocks(server_rec *s)
{
    server_rec *vs;

    for (vs = s; vs; vs = vs->next) {
        const auth_idtoken_srv_conf *conf = srv_conf(vs);
        uint64_t *block;
        uint64_t key;

        if (conf == NULL || conf->site < 0 || conf->site >= METRICS_SITES) {
            continue;
        }
        block = site_blocks + (size_t)conf->site * header->block_words;
        key = site_key(conf);
        if (__atomic_load_n(&block[0], __ATOMIC_RELAXED) != key) {
            memset(block + 1, 0, header->site_gauges * sizeof(uint64_t));
            __atomic_store_n(&block[0], key, __ATOMIC_RELAXED);
        }
    }
}

/* After the sites are registered (check_config). Not on the first pass of a start (it only checks
 * the configuration) and not under configtest (which stops before post_config). */
int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    retained_metrics *kept;
    idt_metrics_shape shape;
    apr_status_t rv;
    (void)pconf;
    (void)plog;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || abi_mismatch(ptemp) != NULL) {
        return OK;
    }
    memset(&shape, 0, sizeof(shape));
    idt_metrics_setup(metrics_enabled, &shape);
    if (!metrics_enabled) {
        ap_log_error(APLOG_MARK, APLOG_INFO | APLOG_STARTUP, 0, s, IDTLOGNO(0601) "IDTokenMetrics Off: nothing is counted");
        return OK;
    }
    kept = ap_retained_data_get(RETAINED_METRICS);
    if (kept == NULL) {
        kept = ap_retained_data_create(RETAINED_METRICS, sizeof(*kept));
    }
    if (!layout_fits(kept->header, &shape)) {
        if (kept->header) {
            /* A module of another layout after a graceful restart: new counts beside the old ones. */
            ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                         IDTLOGNO(0602) "the metrics' layout changed: counting starts again from zero");
        }
        rv = make_memory(s, &shape, kept);
        if (rv != APR_SUCCESS) {
            /* Counting is worth no refusal to start. */
            ap_log_error(APLOG_MARK, APLOG_ERR | APLOG_STARTUP, rv, s,
                         IDTLOGNO(0603) "cannot make the metrics' shared memory: nothing is counted");
            kept->header = NULL;
            return OK;
        }
    }
    locate(kept->header);
    claim_site_blocks(s);
    return OK;
}

/* ---- Each child ------------------------------------------------------------------------------------ */

static int process_gone(int32_t pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static apr_status_t release_slot(void *data)
{
    int32_t me = (int32_t)getpid();
    (void)data;

    if (owners && my_slot >= 0) {
        __atomic_compare_exchange_n(&owners[my_slot], &me, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
    my_row = NULL;
    my_slot = -1;
    return APR_SUCCESS;
}

/* A slot no process uses, else one whose process is gone, else (more processes than slots) one shared
 * by pid: adds are atomic, so sharing costs speed, never counts. */
void metrics_child_init(apr_pool_t *p, server_rec *s)
{
    int32_t me = (int32_t)getpid();
    uint32_t i;
    int pass;
    (void)s;

    if (header == NULL) {
        return;
    }
    for (pass = 0; pass < 2 && my_slot < 0; ++pass) {
        for (i = 0; i < header->slots; ++i) {
            int32_t owner = __atomic_load_n(&owners[i], __ATOMIC_RELAXED);

            if (pass == 0 ? owner != 0 : (owner == 0 || !process_gone(owner))) {
                continue;
            }
            if (__atomic_compare_exchange_n(&owners[i], &owner, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                my_slot = (int)i;
                break;
            }
        }
    }
    my_row = rows + (size_t)(my_slot >= 0 ? (uint32_t)my_slot : (uint32_t)me % header->slots) * header->row_words;
    apr_pool_cleanup_register(p, NULL, release_slot, apr_pool_cleanup_null);
}

/* ---- The request path -------------------------------------------------------------------------------- */

static void keep_latest(int64_t *gauge, int64_t value)
{
    int64_t seen = __atomic_load_n(gauge, __ATOMIC_RELAXED);

    while (seen < value
           && !__atomic_compare_exchange_n(gauge, &seen, value, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* What a decision reports: added to this process's row, no lock. */
void metrics_apply(int32_t site, const idt_decision *d)
{
    size_t i;

    if (my_row == NULL || d->metrics == NULL) {
        return;
    }
    for (i = 0; i < d->metrics_count; ++i) {
        const idt_metric *m = &d->metrics[i];

        if (m->kind == IDT_METRIC_ADD && m->index < header->counters && m->value > 0) {
            __atomic_fetch_add(&my_row[m->index], (uint64_t)m->value, __ATOMIC_RELAXED);
        }
        else if (m->kind == IDT_METRIC_LATEST && m->index < header->site_gauges && site >= 0 && site < METRICS_SITES) {
            keep_latest((int64_t *)&site_blocks[(size_t)site * header->block_words + 1 + m->index], m->value);
        }
    }
}

/* ---- The handlers ------------------------------------------------------------------------------------ */

static void *pool_alloc(void *pool, size_t size)
{
    return apr_palloc((apr_pool_t *)pool, size);
}

/* The rows summed, and how many rows hold any count. */
static uint64_t *sum_rows(apr_pool_t *p, uint32_t *used)
{
    uint64_t *sums = apr_pcalloc(p, header->counters * sizeof(uint64_t));
    uint32_t slot, i;

    *used = 0;
    for (slot = 0; slot < header->slots; ++slot) {
        const uint64_t *row = rows + (size_t)slot * header->row_words;
        int any = 0;

        for (i = 0; i < header->counters; ++i) {
            uint64_t v = __atomic_load_n(&row[i], __ATOMIC_RELAXED);

            sums[i] += v;
            any |= v != 0;
        }
        *used += (uint32_t)any;
    }
    return sums;
}

static int64_t *site_gauges(apr_pool_t *p, size_t *count)
{
    size_t sites = (size_t)sites_registered();
    int64_t *gauges;
    size_t site;
    uint32_t g;

    if (sites > METRICS_SITES) {
        sites = METRICS_SITES;
    }
    *count = sites;
    gauges = apr_pcalloc(p, (sites ? sites : 1) * header->site_gauges * sizeof(int64_t));
    for (site = 0; site < sites; ++site) {
        const uint64_t *block = site_blocks + site * header->block_words;

        for (g = 0; g < header->site_gauges; ++g) {
            gauges[site * header->site_gauges + g] = (int64_t)__atomic_load_n(&block[1 + g], __ATOMIC_RELAXED);
        }
    }
    return gauges;
}

static void gather(request_rec *r, idt_metrics_facts *f)
{
    store_counts st;

    memset(f, 0, sizeof(*f));
    f->now = apr_time_sec(apr_time_now());
    if (header) {
        f->counters = sum_rows(r->pool, &f->slots_used);
        f->counters_count = header->counters;
        f->site_gauges = site_gauges(r->pool, &f->sites_count);
        f->counting_since = header->started_at;
        f->slots = header->slots;
    }
    f->store_kind = store_kind_name();
    f->store_reachable = store_probe(r);
    if (store_file_counts(&st)) {
        f->store_has_file_counts = 1;
        f->store_entries = st.entries;
        f->store_bytes = st.bytes;
        f->store_free_bytes = st.free_bytes;
        f->store_evicted = st.evicted;
        f->store_refused = st.refused;
    }
    f->module_version = IDT_VERSION;
    f->module_abi = IDT_ABI_VERSION;
}

int metrics_handler(request_rec *r)
{
    int32_t format, status = 500;
    idt_metrics_facts facts;
    char *text;

    /* Asked of every request that reaches a handler (httpd names a static file's handler after its
     * content type): its first letter, then the common prefix. */
    if (r->handler == NULL || r->handler[0] != 'i'
        || strncmp(r->handler, HANDLER_PREFIX, sizeof(HANDLER_PREFIX) - 1) != 0) {
        return DECLINED;
    }
    if (strcmp(r->handler, HANDLER_METRICS) == 0) {
        format = IDT_METRICS_PROMETHEUS;
    }
    else if (strcmp(r->handler, HANDLER_STATUS) == 0) {
        format = IDT_METRICS_STATUS;
    }
    else {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (abi_mismatch(r->pool) != NULL) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (format == IDT_METRICS_PROMETHEUS && header == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, IDTLOGNO(0604) "%s: nothing is counted (IDTokenMetrics Off)",
                      HANDLER_METRICS);
        return HTTP_NOT_FOUND;
    }
    gather(r, &facts);
    text = idt_metrics_render(&facts, format, &status, pool_alloc, r->pool);
    if (text == NULL || status < 200 || status > 599) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    r->status = status;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_type(r, format == IDT_METRICS_PROMETHEUS ? "text/plain; version=0.0.4; charset=utf-8"
                                                            : "application/json");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only) {
        ap_rputs(text, r);
    }
    return OK;
}
