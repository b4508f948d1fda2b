/*
 * IDTokenCache redis:... and redis-sentinel:...: the module's own Redis client behind the idt_store
 * callbacks, for several servers sharing one store. This file: the IDTokenRedis* directives and their
 * checks at start-up (the password file read by the parent, as root; the TLS context made there, so a
 * bad file stops configtest), and the page the children share for their lines about an outage. Each
 * child's connections, Sentinel, the down state and the callbacks: idtoken_redis_pool.c. The bytes on
 * the wire: idtoken_redis_conn.c.
 */
#include "idtoken_internal.h"
#include "idtoken_redis.h"

#include <openssl/err.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379
#define DEFAULT_COMMAND_TIMEOUT_MS 1000
#define DEFAULT_CONNECT_TIMEOUT_MS 1000
#define PASSWORD_MAX 4096
#define MAX_ADDRESSES IDTOKEN_REDIS_MAX_ADDRESSES

typedef idtoken_redis_addr redis_addr;

idtoken_redis_settings idtoken_redis_cfg;
char *idtoken_redis_password;
size_t idtoken_redis_password_len;
SSL_CTX *idtoken_redis_tls;
idtoken_redis_shared_state *idtoken_redis_shared;

void redis_pre_config(void)
{
    memset(&idtoken_redis_cfg, 0, sizeof(idtoken_redis_cfg));
    idtoken_redis_cfg.command_timeout_ms = DEFAULT_COMMAND_TIMEOUT_MS;
    idtoken_redis_cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    idtoken_redis_password = NULL;
    idtoken_redis_password_len = 0;
    idtoken_redis_tls = NULL;
    idtoken_redis_shared = NULL;
}

/* ---- Configuration ------------------------------------------------------------------------------ */

/* host[:port] or [v6]:port into *addr. NULL or the reason. */
static const char *parse_addr(apr_pool_t *p, const char *text, int default_port, redis_addr *addr)
{
    const char *port = NULL;
    char *host;

    if (*text == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL || close == text + 1 || (close[1] != '\0' && close[1] != ':')) {
            return "an IPv6 address goes in brackets: [::1]:6379";
        }
        host = apr_pstrmemdup(p, text + 1, close - text - 1);
        port = close[1] == ':' ? close + 2 : NULL;
    }
    else {
        const char *colon = strchr(text, ':');

        if (colon && strchr(colon + 1, ':')) {
            return "an IPv6 address goes in brackets: [::1]:6379";
        }
        host = colon ? apr_pstrmemdup(p, text, colon - text) : apr_pstrdup(p, text);
        port = colon ? colon + 1 : NULL;
    }
    if (*host == '\0' || strlen(host) > 253 || strpbrk(host, " \t/@,") != NULL) {
        return "the host is missing or not a host name or address";
    }
    addr->host = host;
    addr->port = default_port;
    if (port) {
        char *end;
        long n = strtol(port, &end, 10);

        if (*port == '\0' || *end != '\0' || n < 1 || n > 65535) {
            return "the port must be a number from 1 to 65535";
        }
        addr->port = (int)n;
    }
    return NULL;
}

/* IDTokenCache redis:host[:port] | redis-sentinel:master@host[:port][,host[:port]]... */
const char *redis_configure(cmd_parms *cmd, const char *arg)
{
    const char *list, *why;
    char *copy, *item, *state;

    idtoken_redis_cfg.spec = apr_pstrdup(cmd->pool, arg);
    idtoken_redis_cfg.addr_count = 0;
    idtoken_redis_cfg.master_name = NULL;
    idtoken_redis_cfg.sentinel = strncasecmp(arg, "redis-sentinel:", 15) == 0;
    if (idtoken_redis_cfg.sentinel) {
        const char *at = strchr(arg + 15, '@');

        if (at == NULL || at == arg + 15) {
            return apr_psprintf(cmd->pool, "%s %s: redis-sentinel: takes the master's name, then @ and the "
                                "Sentinels: redis-sentinel:mymaster@10.0.0.1:26379,10.0.0.2:26379",
                                cmd->cmd->name, arg);
        }
        idtoken_redis_cfg.master_name = apr_pstrmemdup(cmd->pool, arg + 15, at - (arg + 15));
        if (strpbrk(idtoken_redis_cfg.master_name, " \t,:") != NULL) {
            return apr_psprintf(cmd->pool, "%s %s: the master's name '%s' has a character Sentinel names "
                                "do not", cmd->cmd->name, arg, idtoken_redis_cfg.master_name);
        }
        list = at + 1;
    }
    else {
        list = arg + 6;
    }
    copy = apr_pstrdup(cmd->temp_pool, list);
    for (item = apr_strtok(copy, ",", &state); item; item = apr_strtok(NULL, ",", &state)) {
        if (idtoken_redis_cfg.addr_count == MAX_ADDRESSES || (!idtoken_redis_cfg.sentinel && idtoken_redis_cfg.addr_count == 1)) {
            return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name, arg, idtoken_redis_cfg.sentinel
                                ? "at most 16 Sentinels" : "one server (for several, use redis-sentinel:)");
        }
        why = parse_addr(cmd->pool, item, idtoken_redis_cfg.sentinel ? DEFAULT_SENTINEL_PORT : DEFAULT_PORT,
                         &idtoken_redis_cfg.addrs[idtoken_redis_cfg.addr_count]);
        if (why) {
            return apr_psprintf(cmd->pool, "%s %s: '%s': %s", cmd->cmd->name, arg, item, why);
        }
        ++idtoken_redis_cfg.addr_count;
    }
    if (idtoken_redis_cfg.addr_count == 0) {
        return apr_psprintf(cmd->pool, "%s %s: no address: redis:host[:port] or "
                            "redis-sentinel:master@host[:port][,host[:port]]...", cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *redis_directive(cmd_parms *cmd)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err == NULL && idtoken_redis_cfg.first_directive == NULL) {
        idtoken_redis_cfg.first_directive = cmd->cmd->name;
    }
    return err;
}

static const char *path_arg(cmd_parms *cmd, const char *arg, const char **out)
{
    *out = ap_server_root_relative(cmd->pool, arg);
    return *out ? NULL : apr_psprintf(cmd->pool, "%s: invalid file path '%s'", cmd->cmd->name, arg);
}

const char *set_redis_user(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    if (err) {
        return err;
    }
    if (*arg == '\0' || strpbrk(arg, " \t\r\n") != NULL) {
        return apr_psprintf(cmd->pool, "%s: an ACL user name, without spaces", cmd->cmd->name);
    }
    idtoken_redis_cfg.user = arg;
    return NULL;
}

const char *set_redis_password_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    return err ? err : path_arg(cmd, arg, &idtoken_redis_cfg.password_file);
}

const char *set_redis_tls(cmd_parms *cmd, void *dummy, int on)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    idtoken_redis_cfg.tls = on;
    return err;
}

const char *set_redis_ca_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    return err ? err : path_arg(cmd, arg, &idtoken_redis_cfg.ca_file);
}

const char *set_redis_certificate(cmd_parms *cmd, void *dummy, const char *cert, const char *key)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    if (err || (err = path_arg(cmd, cert, &idtoken_redis_cfg.cert_file)) != NULL) {
        return err;
    }
    idtoken_redis_cfg.key_file = idtoken_redis_cfg.cert_file;
    return key ? path_arg(cmd, key, &idtoken_redis_cfg.key_file) : NULL;
}

const char *set_redis_server_name(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    (void)dummy;

    if (err) {
        return err;
    }
    idtoken_redis_cfg.server_name = NULL;
    idtoken_redis_cfg.server_name_off = strcasecmp(arg, "off") == 0;
    if (!idtoken_redis_cfg.server_name_off) {
        if (*arg == '\0' || strlen(arg) > 253 || strpbrk(arg, " \t/@,:") != NULL) {
            return apr_psprintf(cmd->pool, "%s: a host name or an IP address that the server's certificate "
                                "carries, or off", cmd->cmd->name);
        }
        idtoken_redis_cfg.server_name = arg;
    }
    return NULL;
}

static int parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    long n;

    if (!apr_isdigit(*text)) {
        return 0;
    }
    errno = 0;
    n = strtol(text, &end, 10);
    if (*end != '\0' || errno != 0 || n < lo || n > hi) {
        return 0;
    }
    *out = n;
    return 1;
}

const char *set_redis_database(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    long n;
    (void)dummy;

    if (err) {
        return err;
    }
    if (!parse_int(arg, 0, 1000000, &n)) {
        return apr_psprintf(cmd->pool, "%s: a database number, 0 or more", cmd->cmd->name);
    }
    idtoken_redis_cfg.database = (int)n;
    return NULL;
}

const char *set_redis_timeout(cmd_parms *cmd, void *dummy, const char *command, const char *connect)
{
    const char *err = redis_directive(cmd);
    long c, k = DEFAULT_CONNECT_TIMEOUT_MS;
    (void)dummy;

    if (err) {
        return err;
    }
    if (!parse_int(command, 10, 60000, &c) || (connect && !parse_int(connect, 10, 60000, &k))) {
        return apr_psprintf(cmd->pool, "%s: milliseconds from 10 to 60000: command [connect]", cmd->cmd->name);
    }
    idtoken_redis_cfg.command_timeout_ms = (int)c;
    idtoken_redis_cfg.connect_timeout_ms = (int)k;
    return NULL;
}

const char *set_redis_key_prefix(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = redis_directive(cmd);
    const char *p;
    (void)dummy;

    if (err) {
        return err;
    }
    for (p = arg; *p; ++p) {
        if (*p <= ' ' || *p == 0x7f) {
            break;
        }
    }
    if (*arg == '\0' || *p != '\0' || strlen(arg) > 64) {
        return apr_psprintf(cmd->pool, "%s: up to 64 printable characters without spaces, e.g. shop:",
                            cmd->cmd->name);
    }
    idtoken_redis_cfg.prefix = arg;
    idtoken_redis_cfg.prefix_len = strlen(arg);
    return NULL;
}

/* ---- Start-up ------------------------------------------------------------------------------------- */

static apr_status_t wipe_password(void *data)
{
    (void)data;
    if (idtoken_redis_password) {
        OPENSSL_cleanse(idtoken_redis_password, idtoken_redis_password_len);
    }
    idtoken_redis_password = NULL;
    idtoken_redis_password_len = 0;
    return APR_SUCCESS;
}

static apr_status_t free_tls(void *data)
{
    (void)data;
    if (idtoken_redis_tls) {
        SSL_CTX_free(idtoken_redis_tls);
        idtoken_redis_tls = NULL;
    }
    return APR_SUCCESS;
}

/* The password file's first line, without its line ending. Its text is never logged. */
static int read_password(apr_pool_t *pconf, server_rec *s)
{
    apr_file_t *f;
    apr_finfo_t info;
    char *buf;
    apr_size_t len = PASSWORD_MAX + 1;
    apr_status_t rv;

    rv = apr_file_open(&f, idtoken_redis_cfg.password_file, APR_FOPEN_READ, 0, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0326) "IDTokenRedisPasswordFile %s: cannot open it", idtoken_redis_cfg.password_file);
        return 0;
    }
    buf = apr_palloc(pconf, len + 1);
    rv = apr_file_read_full(f, buf, len, &len);
    if (apr_file_info_get(&info, APR_FINFO_PROT, f) == APR_SUCCESS && (info.protection & APR_FPROT_WREAD)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0330) "IDTokenRedisPasswordFile %s can be read by every user of this machine: "
                     "chmod 600 it (httpd reads it as root at start-up)", idtoken_redis_cfg.password_file);
    }
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, rv, s,
                     IDTLOGNO(0326) "IDTokenRedisPasswordFile %s: cannot read it", idtoken_redis_cfg.password_file);
        return 0;
    }
    buf[len] = '\0';
    idtoken_redis_password_len = strcspn(buf, "\r\n");
    if (idtoken_redis_password_len == 0 || idtoken_redis_password_len > PASSWORD_MAX) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0326) "IDTokenRedisPasswordFile %s: %s", idtoken_redis_cfg.password_file, idtoken_redis_password_len == 0
                     ? "its first line is empty: it holds the password on one line"
                     : "the password is longer than 4096 bytes");
        OPENSSL_cleanse(buf, len);
        idtoken_redis_password_len = 0;
        return 0;
    }
    OPENSSL_cleanse(buf + idtoken_redis_password_len, len - idtoken_redis_password_len);
    idtoken_redis_password = buf;
    apr_pool_cleanup_register(pconf, NULL, wipe_password, apr_pool_cleanup_null);
    return 1;
}

static int tls_setup(apr_pool_t *pconf, server_rec *s)
{
    char why[256];
    const char *step;

    ERR_clear_error();
    idtoken_redis_tls = SSL_CTX_new(TLS_client_method());
    if (idtoken_redis_tls == NULL) {
        step = "cannot make a TLS context";
        goto fail;
    }
    apr_pool_cleanup_register(pconf, NULL, free_tls, apr_pool_cleanup_null);
    SSL_CTX_set_min_proto_version(idtoken_redis_tls, TLS1_2_VERSION);
    SSL_CTX_set_verify(idtoken_redis_tls, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(idtoken_redis_tls, SSL_MODE_AUTO_RETRY);
    if (idtoken_redis_cfg.ca_file ? SSL_CTX_load_verify_locations(idtoken_redis_tls, idtoken_redis_cfg.ca_file, NULL) != 1
                    : SSL_CTX_set_default_verify_paths(idtoken_redis_tls) != 1) {
        step = idtoken_redis_cfg.ca_file ? apr_psprintf(pconf, "IDTokenRedisTLSCAFile %s: no certificate in it can be read", idtoken_redis_cfg.ca_file)
                           : "cannot load the system's CA certificates";
        goto fail;
    }
    if (idtoken_redis_cfg.cert_file) {
        if (SSL_CTX_use_certificate_chain_file(idtoken_redis_tls, idtoken_redis_cfg.cert_file) != 1) {
            step = apr_psprintf(pconf, "IDTokenRedisTLSCertificate %s: cannot read a certificate (PEM) from it",
                                idtoken_redis_cfg.cert_file);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(idtoken_redis_tls, idtoken_redis_cfg.key_file, SSL_FILETYPE_PEM) != 1) {
            step = apr_psprintf(pconf, "IDTokenRedisTLSCertificate: cannot read a private key (PEM) from %s",
                                idtoken_redis_cfg.key_file);
            goto fail;
        }
        if (SSL_CTX_check_private_key(idtoken_redis_tls) != 1) {
            step = apr_psprintf(pconf, "IDTokenRedisTLSCertificate: the key in %s is not the certificate's",
                                idtoken_redis_cfg.key_file);
            goto fail;
        }
    }
    return 1;
fail:
    {
        unsigned long e = ERR_peek_last_error();

        if (e) {
            ERR_error_string_n(e, why, sizeof(why));
        }
        ERR_clear_error();
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s, IDTLOGNO(0326) "%s%s%s", step,
                     e ? ": " : "", e ? why : "");
    }
    return 0;
}

/* check_config, on every pass (configtest too): the settings together, the password file, the TLS
 * files. `used`: IDTokenCache is redis. */
int redis_check_config(apr_pool_t *pconf, server_rec *s, int used)
{
    if (!used) {
        if (idtoken_redis_cfg.first_directive) {
            ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                         IDTLOGNO(0328) "%s applies to the module's Redis store only (IDTokenCache redis:... or "
                         "redis-sentinel:...)", idtoken_redis_cfg.first_directive);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        return OK;
    }
    if (!idtoken_redis_cfg.tls && (idtoken_redis_cfg.ca_file || idtoken_redis_cfg.cert_file || idtoken_redis_cfg.server_name || idtoken_redis_cfg.server_name_off)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0328) "IDTokenRedisTLSCAFile, IDTokenRedisTLSCertificate and IDTokenRedisTLSServerName "
                     "need IDTokenRedisTLS on");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (idtoken_redis_cfg.user && !idtoken_redis_cfg.password_file) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0328) "IDTokenRedisUser %s needs IDTokenRedisPasswordFile: an ACL user logs in "
                     "with a password", idtoken_redis_cfg.user);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (idtoken_redis_cfg.password_file && !read_password(pconf, s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (idtoken_redis_cfg.tls && !tls_setup(pconf, s)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

static apr_status_t unmap_shared(void *data)
{
    munmap(data, sizeof(idtoken_redis_shared_state));
    if (idtoken_redis_shared == data) {
        idtoken_redis_shared = NULL;
    }
    return APR_SUCCESS;
}

static const char *describe(apr_pool_t *p)
{
    return apr_psprintf(p, "%s%s%s%s%s, database %d%s%s%s",
                        idtoken_redis_cfg.tls ? "TLS (" : "no TLS",
                        idtoken_redis_cfg.tls ? (idtoken_redis_cfg.ca_file ? idtoken_redis_cfg.ca_file : "the system's CA certificates") : "",
                        idtoken_redis_cfg.tls ? (idtoken_redis_cfg.server_name_off ? ", any name" : idtoken_redis_cfg.server_name
                                   ? apr_pstrcat(p, ", name ", idtoken_redis_cfg.server_name, NULL) : ", name verified") : "",
                        idtoken_redis_cfg.tls ? (idtoken_redis_cfg.cert_file ? ", client certificate)" : ")") : "",
                        idtoken_redis_password ? apr_psprintf(p, ", %s with the password in %s", idtoken_redis_cfg.user ? idtoken_redis_cfg.user : "default user",
                                                idtoken_redis_cfg.password_file) : ", no password",
                        idtoken_redis_cfg.database,
                        idtoken_redis_cfg.prefix ? ", keys prefixed '" : "", idtoken_redis_cfg.prefix ? idtoken_redis_cfg.prefix : "", idtoken_redis_cfg.prefix ? "'" : "");
}

int redis_post_config(apr_pool_t *pconf, server_rec *s, int announce)
{
    void *map = mmap(NULL, sizeof(idtoken_redis_shared_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (map == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_EMERG | APLOG_STARTUP, APR_FROM_OS_ERROR(errno), s,
                     IDTLOGNO(0329) "IDTokenCache %s: cannot map a page of shared memory", idtoken_redis_cfg.spec);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(map, 0, sizeof(idtoken_redis_shared_state));
    idtoken_redis_shared = map;
    apr_pool_cleanup_register(pconf, map, unmap_shared, apr_pool_cleanup_null);
    if (announce) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE | APLOG_STARTUP, 0, s,
                     IDTLOGNO(0325) "IDTokenCache %s: %s; each child connects when a request first needs it",
                     idtoken_redis_cfg.spec, describe(pconf));
    }
    return OK;
}
