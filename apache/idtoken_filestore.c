/*
 * IDTokenCache file: the module's own store, a table in one file that every process maps
 * (idtoken_table.c), behind the idt_store callbacks. The file is made or checked in post_config, by
 * the parent, as root; children use the mapping they inherit, so after setuid they need no right to
 * the file, which stays 0600. It outlives graceful and full restarts; what happens when it is full is
 * IDTokenCacheFull's choice, logged and counted.
 */
#include "idtoken_internal.h"
#include "idtoken_table.h"

#include <errno.h>

/* In DefaultRuntimeDir. 128 MiB: room for about 57,000 sessions of a typical ID token (1.6 KB sealed,
 * with their index entries) at 20 logins a second (docs/configuration.md). */
#define DEFAULT_NAME "idtoken-store"
#define DEFAULT_SIZE ((apr_uint64_t)128 << 20)
/* A typical session: its key and sealed value (the demo provider's token, measured), and the two
 * index entries written with it; for the capacity the start-up line announces. */
#define TYPICAL_KEY 53
#define TYPICAL_SESSION 1590
#define TYPICAL_INDEX_BLOCKS 2
/* At most one line a minute about sessions evicted and writes refused, for all processes together. */
#define FULL_REPORT_INTERVAL 60

/* Set by IDTokenCache and IDTokenCacheFull; reset by filestore_pre_config on every pass. */
static const char *file_path;           /* as written; NULL: DEFAULT_NAME */
static apr_uint64_t file_size;          /* 0: DEFAULT_SIZE */
static idtoken_table_policy full_policy;
static int full_policy_set;
/* Mapped in post_config; children inherit the mapping. */
static idtoken_table *table;
static const char *table_path;          /* resolved, for messages */

void filestore_pre_config(void)
{
    file_path = NULL;
    file_size = 0;
    full_policy = IDTOKEN_TABLE_EVICT_IDLE;
    full_policy_set = 0;
    table = NULL;
    table_path = NULL;
}

/* ---- Configuration ------------------------------------------------------------------------------ */

/* "64M", "512K", "1G", or bytes. 0 when it is none of those, or out of range. */
static apr_uint64_t parse_size(const char *text)
{
    apr_uint64_t n = 0, unit = 1;
    const char *p = text;

    if (!apr_isdigit(*p)) {
        return 0;
    }
    for (; apr_isdigit(*p); ++p) {
        if (n > IDTOKEN_TABLE_SIZE_MAX) {
            return 0;
        }
        n = n * 10 + (apr_uint64_t)(*p - '0');
    }
    switch (apr_toupper(*p)) {
    case '\0': break;
    case 'K': unit = (apr_uint64_t)1 << 10; ++p; break;
    case 'M': unit = (apr_uint64_t)1 << 20; ++p; break;
    case 'G': unit = (apr_uint64_t)1 << 30; ++p; break;
    default: return 0;
    }
    if (*p != '\0' || n > IDTOKEN_TABLE_SIZE_MAX / unit) {
        return 0;
    }
    n *= unit;
    return n >= IDTOKEN_TABLE_SIZE_MIN && n <= IDTOKEN_TABLE_SIZE_MAX ? n : 0;
}

/* IDTokenCache file[:path][(size)]: `args` is what follows "file". The path is resolved against
 * DefaultRuntimeDir in post_config, when the whole configuration (DefaultRuntimeDir too) is read. */
const char *filestore_configure(cmd_parms *cmd, const char *args)
{
    const char *open_paren = strrchr(args, '(');
    const char *path_end = args + strlen(args);

    file_path = NULL;
    file_size = 0;
    if (open_paren) {
        const char *close_paren = strrchr(args, ')');
        char *size_text;

        if (close_paren == NULL || close_paren < open_paren || close_paren[1] != '\0') {
            return apr_psprintf(cmd->pool, "%s: file%s: the size goes last, in parentheses: file:path(64M)",
                                cmd->cmd->name, args);
        }
        size_text = apr_pstrmemdup(cmd->temp_pool, open_paren + 1, close_paren - open_paren - 1);
        file_size = parse_size(size_text);
        if (file_size == 0) {
            return apr_psprintf(cmd->pool, "%s: file%s: the size must be bytes, or a number with K, M or G, "
                                "from 64K to 64G", cmd->cmd->name, args);
        }
        path_end = open_paren;
    }
    if (*args == ':') {
        ++args;
    }
    if (args < path_end) {
        file_path = apr_pstrmemdup(cmd->pool, args, path_end - args);
    }
    return NULL;
}

/* IDTokenCacheFull evict-idle|refuse */
const char *set_cache_full(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)dummy;

    if (err) {
        return err;
    }
    if (strcasecmp(arg, "evict-idle") == 0) {
        full_policy = IDTOKEN_TABLE_EVICT_IDLE;
    }
    else if (strcasecmp(arg, "refuse") == 0) {
        full_policy = IDTOKEN_TABLE_REFUSE;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: must be evict-idle (the session idle longest gives way) or "
                            "refuse (the new login fails with 503)", cmd->cmd->name);
    }
    full_policy_set = 1;
    return NULL;
}

int filestore_full_policy_set(void)
{
    return full_policy_set;
}

static const char *policy_name(void)
{
    return full_policy == IDTOKEN_TABLE_REFUSE ? "refuse" : "evict-idle";
}

/* ---- Start-up ------------------------------------------------------------------------------------- */

static apr_status_t detach_table(void *data)
{
    idtoken_table_detach(data);
    if (table == data) {
        table = NULL;
    }
    return APR_SUCCESS;
}

/* Maps the file (making, replacing or repairing it as needed) under the mutex: during a graceful
 * restart the old generation's children may be writing it. */
int filestore_post_config(apr_pool_t *pconf, server_rec *s, int announce)
{
    apr_uint64_t size = file_size ? file_size : DEFAULT_SIZE;
    idtoken_table_stats st;
    apr_uint32_t dropped = 0;
    char note[512];
    apr_status_t rv;
    int err;

    table_path = ap_runtime_dir_relative(pconf, file_path ? file_path : DEFAULT_NAME);
    if (table_path == NULL) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0310) "IDTokenCache file:%s: invalid path", file_path ? file_path : DEFAULT_NAME);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if ((rv = store_mutex_lock()) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0316) "IDTokenCache file:%s: cannot take the %s mutex", table_path, STORE_ID);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    err = idtoken_table_attach(table_path, size, apr_time_sec(apr_time_now()), &table, note, sizeof(note));
    if (err == 0) {
        dropped = idtoken_table_recover(table);
    }
    store_mutex_unlock();
    if (err != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, APR_FROM_OS_ERROR(err), s,
                     IDTLOGNO(0311) "IDTokenCache file:%s(%" APR_UINT64_T_FMT "): %s; give IDTokenCache "
                     "another folder or a smaller size, e.g. IDTokenCache file:/var/cache/apache2/idtoken-store(64M)",
                     table_path, size, note);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, table, detach_table, apr_pool_cleanup_null);

    if (strncmp(note, "replaced", 8) == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0312) "IDTokenCache file:%s was %s: made anew, empty (sessions kept in it are gone)",
                     table_path, note);
    }
    if (dropped > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0313) "IDTokenCache file:%s was left halfway through a change (a process died "
                     "while writing it): repaired, %u entries dropped", table_path, (unsigned)dropped);
    }
    if (announce) {
        char made[APR_CTIME_LEN];

        idtoken_table_read_stats(table, &st);
        /* Checked with the header, and kept within years a time formatter takes all the same. */
        apr_ctime(made, apr_time_from_sec(st.created_at > 0 && st.created_at < 253402300800 ? st.created_at : 0));
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0314) "IDTokenCache file:%s: %" APR_UINT64_T_FMT " bytes, room for about %u sessions "
                     "of %d bytes sealed; %u entries; when full: %s; %" APR_UINT64_T_FMT " evicted, %"
                     APR_UINT64_T_FMT " refused since the file was made (%s)",
                     table_path, st.file_size,
                     (unsigned)(st.blocks / (idtoken_table_blocks_for(TYPICAL_KEY, TYPICAL_SESSION)
                                             + TYPICAL_INDEX_BLOCKS)),
                     TYPICAL_SESSION, (unsigned)st.entries, policy_name(), st.evicted, st.refused, made);
    }
    return OK;
}

/* ---- The callbacks -------------------------------------------------------------------------------- */

static int64_t now_sec(void)
{
    return apr_time_sec(apr_time_now());
}

/* The mutex is released before anything is logged. */
typedef struct {
    int due;
    uint64_t evicted, refused;
    idtoken_table_stats stats;
} full_report;

static void report_full(const store_ctx *ctx, const full_report *report)
{
    if (!report->due) {
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, ctx->r,
                  IDTLOGNO(0315) "IDTokenCache file:%s is full: %" APR_UINT64_T_FMT " sessions gave way (those "
                  "idle longest) and %" APR_UINT64_T_FMT " writes were refused since the last such line "
                  "(IDTokenCacheFull %s); %" APR_UINT64_T_FMT " and %" APR_UINT64_T_FMT " since the file was "
                  "made. Give it more room: IDTokenCache file(size)",
                  table_path, report->evicted, report->refused, policy_name(), report->stats.evicted,
                  report->stats.refused);
}

static int32_t status_of(store_ctx *ctx, idtoken_table_status rc)
{
    switch (rc) {
    case IDTOKEN_TABLE_OK: return IDT_STORE_OK;
    case IDTOKEN_TABLE_NOT_FOUND: return IDT_STORE_NOT_FOUND;
    case IDTOKEN_TABLE_EXISTS: return IDT_STORE_EXISTS;
    case IDTOKEN_TABLE_FULL:
        /* Counted and reported once a minute (report_full); the core logs the refused login. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, ctx->r, IDTLOGNO(0317) "IDTokenCache file: full, a write "
                      "was refused (IDTokenCacheFull %s)", policy_name());
        return IDT_STORE_ERROR;
    case IDTOKEN_TABLE_CORRUPT:
        return store_failed(ctx, APR_EGENERAL, "the store file was found inconsistent (a process died while "
                            "writing it?) and has been repaired; this call failed");
    default:
        return store_failed(ctx, APR_EINVAL, "the store refused the call (a key over 128 bytes?)");
    }
}

static int32_t file_write(store_ctx *ctx, const unsigned char *key, size_t key_len,
                          const unsigned char *value, size_t value_len, int64_t expires_at, unsigned flags)
{
    static const unsigned char empty[1];
    idtoken_table_effects fx;
    idtoken_table_status rc;
    full_report report = {0, 0, 0, {0}};
    int64_t now = now_sec();
    int locked;

    if (!store_key_ok(ctx, key, key_len) || !store_value_ok(ctx, value, value_len, expires_at)
        || !store_enter(ctx, 1, &locked)) {
        return IDT_STORE_ERROR;
    }
    rc = idtoken_table_put(table, key, key_len, value ? value : empty, value_len, expires_at, now, flags,
                           full_policy, &fx);
    store_changed();
    if ((fx.evicted > 0 || rc == IDTOKEN_TABLE_FULL)
        && idtoken_table_report_due(table, now, FULL_REPORT_INTERVAL, &report.evicted, &report.refused)) {
        report.due = 1;
        idtoken_table_read_stats(table, &report.stats);
    }
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    report_full(ctx, &report);
    return status_of(ctx, rc);
}

static int32_t file_put(void *ctxv, const unsigned char *key, size_t key_len,
                        const unsigned char *value, size_t value_len, int64_t expires_at, uint32_t flags)
{
    return file_write(ctxv, key, key_len, value, value_len, expires_at,
                      (flags & IDT_STORE_MAY_EVICT) ? IDTOKEN_TABLE_MAY_EVICT : 0);
}

/* Atomic: the look and the write happen under the mutex, in one call. */
static int32_t file_add(void *ctxv, const unsigned char *key, size_t key_len,
                        const unsigned char *value, size_t value_len, int64_t expires_at)
{
    return file_write(ctxv, key, key_len, value, value_len, expires_at, IDTOKEN_TABLE_ONLY_IF_ABSENT);
}

static int32_t file_get(void *ctxv, const unsigned char *key, size_t key_len,
                        const unsigned char **value, size_t *value_len)
{
    store_ctx *ctx = ctxv;
    unsigned char *buffer;
    size_t found_len = 0;
    idtoken_table_status rc;
    int locked;

    if (!store_key_ok(ctx, key, key_len)) {
        return IDT_STORE_ERROR;
    }
    if (value == NULL || value_len == NULL) {
        return store_failed(ctx, APR_EINVAL, "get: no place for the result");
    }
    buffer = store_read_buffer(ctx->r);
    if (!store_enter(ctx, 1, &locked)) {
        return IDT_STORE_ERROR;
    }
    rc = idtoken_table_get(table, key, key_len, now_sec(), buffer, IDT_STORE_VALUE_MAX, &found_len);
    if (rc == IDTOKEN_TABLE_CORRUPT) {
        store_changed();    /* the repair may have dropped entries */
    }
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    if (rc == IDTOKEN_TABLE_OK) {
        /* Lent from the connection's read buffer until the next store call; the core copies it. */
        *value = buffer;
        *value_len = found_len;
    }
    return status_of(ctx, rc);
}

static int32_t file_remove(void *ctxv, const unsigned char *key, size_t key_len)
{
    store_ctx *ctx = ctxv;
    idtoken_table_status rc;
    int locked;

    if (!store_key_ok(ctx, key, key_len) || !store_enter(ctx, 1, &locked)) {
        return IDT_STORE_ERROR;
    }
    rc = idtoken_table_remove(table, key, key_len);
    store_changed();
    if (!store_leave(ctx, locked)) {
        return IDT_STORE_ERROR;
    }
    return status_of(ctx, rc);
}

void filestore_callbacks(idt_store *store)
{
    store->add = file_add;
    store->put = file_put;
    store->get = file_get;
    store->remove = file_remove;
}

/* Read without the mutex: counters for a trace line, not exact. */
const char *filestore_trace_note(apr_pool_t *p)
{
    idtoken_table_stats st;

    if (table == NULL) {
        return "";
    }
    idtoken_table_read_stats(table, &st);
    return apr_psprintf(p, "; store: %u entries, %" APR_UINT64_T_FMT " evicted, %" APR_UINT64_T_FMT " refused",
                        (unsigned)st.entries, st.evicted, st.refused);
}

/* Read without the mutex, like the trace note: a snapshot for the metrics. */
int filestore_counts(store_counts *out)
{
    idtoken_table_stats st;

    if (table == NULL) {
        return 0;
    }
    idtoken_table_read_stats(table, &st);
    out->entries = st.entries;
    out->bytes = st.file_size;
    out->free_bytes = (uint64_t)st.free_blocks * st.block_size;
    out->evicted = st.evicted;
    out->refused = st.refused;
    return 1;
}
