/* Fixed-signature wrappers around libcurl's easy API: curl_easy_setopt is variadic and cannot be
 * called from Swift. One blocking GET, no signals (CURLOPT_NOSIGNAL: safe in threaded httpd children),
 * TLS verification left on, bounded in time and size. */
#ifndef CCURL_H
#define CCURL_H

#include <stddef.h>

typedef struct {
    int ok;                 /* 1 when an HTTP response was received (any status) */
    long status;            /* HTTP status */
    int timed_out;          /* 1 when the connect or total timeout fired */
    int too_large;          /* 1 when the body exceeded max_bytes */
    char *body;             /* malloc'd, NUL-terminated; free with ccurl_result_free */
    size_t body_len;
    char *content_type;     /* malloc'd or NULL */
    char error[256];        /* curl's message when !ok */
} ccurl_result;

/* Performs a GET. Always fills *out; free it with ccurl_result_free. */
void ccurl_get(const char *url, long connect_timeout_ms, long total_timeout_ms, size_t max_bytes,
               ccurl_result *out);
void ccurl_result_free(ccurl_result *r);

/* curl_global_init; idempotent and safe before fork. */
void ccurl_global_init(void);

#endif
