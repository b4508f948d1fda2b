#include "ccurl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int too_large;
} buffer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    buffer *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > b->max) {
        b->too_large = 1;
        return 0; /* makes curl abort the transfer: a provider cannot make us buffer without bound */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

void ccurl_global_init(void) {
    static int done = 0;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

void ccurl_get(const char *url, long connect_timeout_ms, long total_timeout_ms, size_t max_bytes,
               ccurl_result *out) {
    memset(out, 0, sizeof(*out));
    buffer b = {0};
    b.max = max_bytes;
    CURL *c = curl_easy_init();
    if (!c) {
        strncpy(out->error, "curl_easy_init failed", sizeof(out->error) - 1);
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_timeout_ms);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* Metadata and keys are fetched from the exact URL configured or discovered: no redirects. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mod_auth_idtoken");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, out->error);

    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        out->ok = 1;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        char *ct = NULL;
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) out->content_type = strdup(ct);
    } else {
        out->timed_out = (rc == CURLE_OPERATION_TIMEDOUT);
        out->too_large = b.too_large || rc == CURLE_FILESIZE_EXCEEDED;
        if (!out->error[0]) strncpy(out->error, curl_easy_strerror(rc), sizeof(out->error) - 1);
    }
    if (out->ok) {
        out->body = b.data ? b.data : calloc(1, 1);
        out->body_len = b.len;
    } else {
        free(b.data);
    }
    curl_easy_cleanup(c);
}

void ccurl_result_free(ccurl_result *r) {
    free(r->body);
    free(r->content_type);
    r->body = NULL;
    r->content_type = NULL;
}
