/*
 * The module's own store (apache/idtoken_table.c), driven directly: no httpd, no lock (one process).
 * It includes the table's sources to see its internals, so that after every kind of damage it can
 * check the whole file adds up. Run by Tests/e2e/test_store.py:
 *
 *   cc -O2 -o store_test Tests/store/store_test.c && ./store_test DIR
 *
 * DIR is an empty folder for the store files. Prints one "capacity:" line (sessions of the demo
 * token's size that fit the default size before the first one gives way) and "ok"; any failed check
 * prints "FAIL: ..." and exits 1.
 */
#include "../../apache/idtoken_table.c"
#include "../../apache/idtoken_table_file.c"
#include "../../apache/idtoken_table_repair.c"

#include <stdarg.h>
#include <time.h>

/* What one login with the demo provider writes (measured through the module with Redis): the nonce
 * mark, the session (1590 bytes sealed), and the sid and sub index entries. */
#define SESSION_VALUE 1590
#define MARK_LIFE 360
#define IDLE_TIMEOUT 3600
#define LIFETIME 28800
#define LOGINS_PER_SECOND 20
#define DEFAULT_SIZE ((uint64_t)128 << 20)
/* Rounds of damage and repair (-DDAMAGE_ROUNDS=100000 for a longer shake). */
#ifndef DAMAGE_ROUNDS
#define DAMAGE_ROUNDS 3000
#endif

static const char *dir;

static void fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
    exit(1);
}

#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static const char *path_of(const char *name)
{
    static char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* A key as the core makes them: "idtoken:<section>:" and 43 base64url characters. */
static size_t make_key(unsigned char *out, const char *section, uint64_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = (size_t)sprintf((char *)out, "idtoken:%s:", section);
    uint64_t x = n * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    int i;

    for (i = 0; i < 43; ++i) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 32;
        out[len++] = (unsigned char)alphabet[x & 63];
    }
    return len;
}

/* The value of session n: bytes anyone can recompute, so 50,000 of them need not be kept. */
static void make_value(unsigned char *out, size_t len, uint64_t n)
{
    uint64_t x = n + 1;
    size_t i;

    for (i = 0; i < len; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (unsigned char)(x >> 56);
    }
}

/* ---- The whole file adds up ------------------------------------------------------------------------ */

/* Every block below `fresh` is in exactly one entry or on the free list, the counts say so, every
 * entry is whole and in its bucket, and the eviction order holds exactly the evictable entries,
 * oldest first. */
static void check_whole(idtoken_table *t, const char *when)
{
    table_header *h = t->h;
    unsigned char *used = calloc(t->blocks / 8 + 1, 1);
    uint32_t entries = 0, evictable = 0, free_seen = 0, b, idx, steps;
    int64_t last = INT64_MIN;

    CHECK(used != NULL, "out of memory");
    CHECK(h->dirty == 0, "%s: left dirty", when);
    CHECK(h->fresh >= 1 && h->fresh <= t->blocks + 1, "%s: fresh %u out of range", when, h->fresh);
    for (b = 0; b < t->buckets; ++b) {
        for (idx = t->bucket[b], steps = 0; idx != 0; ++steps) {
            entry_head *e = (entry_head *)block_at(t, idx);

            CHECK(steps <= t->blocks, "%s: a bucket chain loops", when);
            CHECK(e != NULL && idtoken_table_entry_whole(t, idx, b, h->fresh, used), "%s: entry %u in bucket %u is not whole",
                  when, idx, b);
            ++entries;
            evictable += (e->flags & IDTOKEN_TABLE_MAY_EVICT) != 0;
            idx = e->chain;
        }
    }
    for (idx = h->free_head, steps = 0; idx != 0; ++steps) {
        block_head *blk = block_at(t, idx);

        CHECK(steps < t->blocks && blk != NULL && blk->kind == KIND_FREE && idx < h->fresh && !BIT_GET(used, idx),
              "%s: free list broken at block %u", when, idx);
        BIT_SET(used, idx);
        ++free_seen;
        idx = blk->next;
    }
    CHECK(free_seen == h->free_count, "%s: free list holds %u blocks, count says %u", when, free_seen, h->free_count);
    for (idx = 1; idx < h->fresh; ++idx) {
        CHECK(BIT_GET(used, idx), "%s: block %u is in no entry and not free (lost)", when, idx);
    }
    CHECK(entries == h->entries, "%s: %u entries found, count says %u", when, entries, h->entries);
    CHECK(evictable == h->evictable, "%s: %u evictable found, count says %u", when, evictable, h->evictable);
    steps = 0;
    for (idx = h->lru_head; idx != 0; idx = ((entry_head *)block_at(t, idx))->lru_next) {
        entry_head *e = head_at(t, idx);

        CHECK(e != NULL && (e->flags & IDTOKEN_TABLE_MAY_EVICT) && ++steps <= evictable,
              "%s: the eviction order is broken at %u", when, idx);
        CHECK(e->written_at >= last, "%s: the eviction order is not oldest first", when);
        last = e->written_at;
        if (e->lru_next == 0) {
            CHECK(h->lru_tail == idx, "%s: the eviction order's tail is wrong", when);
        }
    }
    CHECK(steps == evictable, "%s: the eviction order holds %u of %u evictable entries", when, steps, evictable);
    free(used);
}

/* ---- One login's writes ------------------------------------------------------------------------- */

static idtoken_table_status login(idtoken_table *t, uint64_t n, int64_t now, idtoken_table_policy policy,
                                  idtoken_table_effects *total)
{
    unsigned char key[128], value[SESSION_VALUE], sid[64];
    size_t key_len, sid_len;
    idtoken_table_effects fx;
    idtoken_table_status rc;

    key_len = make_key(key, "used", n);
    rc = idtoken_table_put(t, key, key_len, (const unsigned char *)"\1", 1, now + MARK_LIFE, now,
                           IDTOKEN_TABLE_ONLY_IF_ABSENT, policy, &fx);
    total->evicted += fx.evicted;
    total->reclaimed += fx.reclaimed;
    if (rc != IDTOKEN_TABLE_OK) {
        return rc;
    }
    key_len = make_key(key, "s", n);
    make_value(value, sizeof(value), n);
    rc = idtoken_table_put(t, key, key_len, value, sizeof(value), now + IDLE_TIMEOUT, now,
                           IDTOKEN_TABLE_MAY_EVICT, policy, &fx);
    total->evicted += fx.evicted;
    total->reclaimed += fx.reclaimed;
    if (rc != IDTOKEN_TABLE_OK) {
        return rc;
    }
    sid_len = make_key(sid, "x", n) - strlen("idtoken:x:");
    memmove(sid, sid + strlen("idtoken:x:"), sid_len);
    key_len = make_key(key, "sid", n);
    rc = idtoken_table_put(t, key, key_len, sid, sid_len, now + LIFETIME, now, 0, policy, &fx);
    total->evicted += fx.evicted;
    total->reclaimed += fx.reclaimed;
    if (rc != IDTOKEN_TABLE_OK) {
        return rc;
    }
    key_len = make_key(key, "sub", n);
    rc = idtoken_table_put(t, key, key_len, sid, sid_len, now + LIFETIME, now, 0, policy, &fx);
    total->evicted += fx.evicted;
    total->reclaimed += fx.reclaimed;
    return rc;
}

static int session_is_there(idtoken_table *t, uint64_t n, int64_t now)
{
    static unsigned char buffer[IDTOKEN_TABLE_VALUE_MAX];
    unsigned char key[128], expect[SESSION_VALUE];
    size_t key_len = make_key(key, "s", n), len = 0;
    idtoken_table_status rc = idtoken_table_get(t, key, key_len, now, buffer, sizeof(buffer), &len);

    if (rc == IDTOKEN_TABLE_NOT_FOUND) {
        return 0;
    }
    CHECK(rc == IDTOKEN_TABLE_OK, "get of session %llu: status %d", (unsigned long long)n, rc);
    make_value(expect, sizeof(expect), n);
    CHECK(len == sizeof(expect) && memcmp(buffer, expect, len) == 0, "session %llu came back altered",
          (unsigned long long)n);
    return 1;
}

static int64_t login_time(int64_t t0, uint64_t n)
{
    return t0 + (int64_t)(n / LOGINS_PER_SECOND);
}

/* 50,000 logins into a table of the default size, then every session read back; then more logins
 * until the first session gives way, which measures the capacity. */
static void test_fifty_thousand(void)
{
    const uint64_t wanted = 50000;
    idtoken_table *t;
    idtoken_table_effects fx = {0, 0};
    idtoken_table_stats st;
    char note[512];
    int64_t t0 = 1700000000;
    uint64_t n, i;
    int rv = idtoken_table_attach(path_of("fill"), DEFAULT_SIZE, t0, &t, note, sizeof(note));

    CHECK(rv == 0, "attach: %s (%s)", note, strerror(rv));
    for (n = 0; n < wanted; ++n) {
        idtoken_table_status rc = login(t, n, login_time(t0, n), IDTOKEN_TABLE_EVICT_IDLE, &fx);

        CHECK(rc == IDTOKEN_TABLE_OK, "login %llu: status %d", (unsigned long long)n, rc);
        CHECK(fx.evicted == 0, "login %llu evicted a live session: the default size holds fewer than %llu",
              (unsigned long long)n, (unsigned long long)wanted);
    }
    for (n = 0; n < wanted; ++n) {
        CHECK(session_is_there(t, n, login_time(t0, wanted)), "session %llu of %llu is gone",
              (unsigned long long)n, (unsigned long long)wanted);
    }
    check_whole(t, "after 50,000 logins");
    for (; fx.evicted == 0; ++n) {
        CHECK(login(t, n, login_time(t0, n), IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_OK, "login %llu failed",
              (unsigned long long)n);
        CHECK(n < 10 * wanted, "nothing ever gave way");
    }
    /* Those that gave way (one login's writes may need two) are the oldest. */
    idtoken_table_read_stats(t, &st);
    CHECK(st.evicted == fx.evicted && st.evicted <= 4 && st.refused == 0, "counters: %llu evicted, %llu refused",
          (unsigned long long)st.evicted, (unsigned long long)st.refused);
    for (i = 0; i <= st.evicted; ++i) {
        CHECK(session_is_there(t, i, login_time(t0, n)) == (i == st.evicted),
              "session %llu: the %llu oldest sessions, and only they, should have given way", (unsigned long long)i,
              (unsigned long long)st.evicted);
    }
    check_whole(t, "after the first eviction");
    printf("capacity: %llu sessions in %llu bytes (%.0f per MiB), %u blocks of %u bytes, %u blocks per login\n",
           (unsigned long long)(n - 1), (unsigned long long)st.file_size,
           (double)(n - 1) / ((double)st.file_size / 1048576.0), st.blocks, st.block_size,
           idtoken_table_blocks_for(53, SESSION_VALUE) + 2);
    idtoken_table_detach(t);
    unlink(path_of("fill"));
}

/* ---- Small tables: what gives way ---------------------------------------------------------------- */

static void put_session(idtoken_table *t, uint64_t n, int64_t now, int64_t expires, idtoken_table_policy policy,
                        idtoken_table_status want, idtoken_table_effects *fx)
{
    unsigned char key[128], value[SESSION_VALUE];
    size_t key_len = make_key(key, "s", n);
    idtoken_table_status rc;

    make_value(value, sizeof(value), n);
    rc = idtoken_table_put(t, key, key_len, value, sizeof(value), expires, now, IDTOKEN_TABLE_MAY_EVICT, policy, fx);
    CHECK(rc == want, "put of session %llu: status %d, expected %d", (unsigned long long)n, rc, want);
}

static idtoken_table *small_table(const char *name, uint64_t *fits)
{
    idtoken_table *t;
    char note[512];
    int rv;

    unlink(path_of(name));
    rv = idtoken_table_attach(path_of(name), IDTOKEN_TABLE_SIZE_MIN, 1000, &t, note, sizeof(note));
    CHECK(rv == 0 && strcmp(note, "created") == 0, "attach %s: %s (%s)", name, note, strerror(rv));
    *fits = t->blocks / idtoken_table_blocks_for(53, SESSION_VALUE);
    CHECK(*fits >= 8, "a minimum-size table should hold a few sessions, holds %llu", (unsigned long long)*fits);
    return t;
}

static void test_evict_idle(void)
{
    uint64_t fits, n, present;
    idtoken_table_effects fx;
    idtoken_table *t = small_table("evict", &fits);
    unsigned char key[128];
    size_t key_len;
    idtoken_table_stats st;

    for (n = 0; n < fits; ++n) {
        put_session(t, n, 1000 + (int64_t)n, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
        CHECK(fx.evicted == 0, "session %llu of %llu evicted another", (unsigned long long)n, (unsigned long long)fits);
    }
    /* Session 0 is refreshed: session 1 is now the one idle longest. */
    put_session(t, 0, 2000, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
    CHECK(fx.evicted == 0, "a refresh in place evicted something");
    put_session(t, fits, 2001, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
    CHECK(fx.evicted == 1, "one session should have given way, %u did", fx.evicted);
    CHECK(!session_is_there(t, 1, 2001), "the session idle longest (1) should be the one that gave way");
    CHECK(session_is_there(t, 0, 2001) && session_is_there(t, fits, 2001), "the refreshed and the new session must be there");
    for (n = 2; n < fits; ++n) {
        CHECK(session_is_there(t, n, 2001), "session %llu should still be there", (unsigned long long)n);
    }
    /* A mark (not evictable) is written only when sessions can give way for it, and never gives way. */
    key_len = make_key(key, "used", 1);
    CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"\1", 1, 99999, 2002, IDTOKEN_TABLE_ONLY_IF_ABSENT,
                            IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_OK, "the mark was refused");
    for (n = fits + 1; n < fits + 3 * fits; ++n) {
        put_session(t, n, 2003 + (int64_t)n, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
    }
    CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"\1", 1, 99999, 9000, IDTOKEN_TABLE_ONLY_IF_ABSENT,
                            IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_EXISTS, "the mark gave way to sessions");
    /* Every session written and no longer there was counted, and only those. */
    for (present = 0, n = 0; n < fits + 3 * fits; ++n) {
        present += (uint64_t)session_is_there(t, n, 9000);
    }
    idtoken_table_read_stats(t, &st);
    CHECK(st.evicted == 4 * fits - present && st.refused == 0, "counters: %llu evicted (expected %llu), %llu refused",
          (unsigned long long)st.evicted, (unsigned long long)(4 * fits - present), (unsigned long long)st.refused);
    check_whole(t, "evict-idle");
    idtoken_table_detach(t);
}

static void test_refuse(void)
{
    uint64_t fits, n;
    idtoken_table_effects fx;
    idtoken_table *t = small_table("refuse", &fits);
    idtoken_table_stats st;
    unsigned char key[128], big[4000];
    size_t key_len;

    for (n = 0; n < fits; ++n) {
        put_session(t, n, 1000, 99999, IDTOKEN_TABLE_REFUSE, IDTOKEN_TABLE_OK, &fx);
    }
    put_session(t, fits, 1001, 99999, IDTOKEN_TABLE_REFUSE, IDTOKEN_TABLE_FULL, &fx);
    CHECK(fx.evicted == 0, "refuse evicted a session");
    for (n = 0; n < fits; ++n) {
        CHECK(session_is_there(t, n, 1001), "session %llu is gone though the policy is refuse", (unsigned long long)n);
    }
    CHECK(!session_is_there(t, fits, 1001), "the refused session is there");
    /* A refresh in place still works when full; one that grows and cannot fit leaves the old value. */
    put_session(t, 3, 1002, 99999, IDTOKEN_TABLE_REFUSE, IDTOKEN_TABLE_OK, &fx);
    key_len = make_key(key, "s", 4);
    memset(big, 'x', sizeof(big));
    CHECK(idtoken_table_put(t, key, key_len, big, sizeof(big), 99999, 1003, IDTOKEN_TABLE_MAY_EVICT,
                            IDTOKEN_TABLE_REFUSE, &fx) == IDTOKEN_TABLE_FULL, "a grown refresh should not fit");
    CHECK(session_is_there(t, 4, 1003), "a refused refresh lost the session it would have replaced");
    idtoken_table_read_stats(t, &st);
    CHECK(st.refused == 2 && st.evicted == 0, "counters: %llu refused (expected 2), %llu evicted",
          (unsigned long long)st.refused, (unsigned long long)st.evicted);
    check_whole(t, "refuse");
    idtoken_table_detach(t);
}

/* Expired entries give way before any live one, under either policy. */
static void test_expired_first(void)
{
    uint64_t fits, n;
    idtoken_table_effects fx;
    idtoken_table *t = small_table("expired", &fits);
    unsigned char key[128];
    size_t key_len;
    idtoken_table_policy policy;

    for (policy = IDTOKEN_TABLE_EVICT_IDLE; policy <= IDTOKEN_TABLE_REFUSE; ++policy) {
        uint64_t base = policy * 1000;

        for (n = 0; n < fits; ++n) {
            /* Every other one runs out at 1500; written most recently, so the eviction order alone
             * would keep them. */
            put_session(t, base + n, n % 2 ? 1200 + (int64_t)n : 1000 + (int64_t)n, n % 2 ? 1500 : 99999, policy,
                        IDTOKEN_TABLE_OK, &fx);
        }
        /* A mark that runs out too: only a sweep finds it. */
        key_len = make_key(key, "used", base);
        CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"\1", 1, 1500, 1100, 0, policy, &fx)
              == IDTOKEN_TABLE_OK || policy == IDTOKEN_TABLE_REFUSE, "mark refused");
        /* (A second after the last sweep: a table sweeps at most once a second.) */
        put_session(t, base + fits, 2000 + policy, 99999, policy, IDTOKEN_TABLE_OK, &fx);
        CHECK(fx.evicted == 0 && fx.reclaimed >= 1, "policy %d: %u evicted, %u reclaimed: expired entries must go first",
              policy, fx.evicted, fx.reclaimed);
        for (n = 0; n < fits; n += 2) {
            CHECK(session_is_there(t, base + n, 2000 + policy), "live session %llu gave way", (unsigned long long)(base + n));
        }
        check_whole(t, "expired first");
        /* Empty it for the next policy. */
        for (n = 0; n <= fits; ++n) {
            key_len = make_key(key, "s", base + n);
            idtoken_table_remove(t, key, key_len);
        }
        key_len = make_key(key, "used", base);
        idtoken_table_remove(t, key, key_len);
        CHECK(t->h->entries == 0, "%u entries left after removing all", t->h->entries);
    }
    idtoken_table_detach(t);
}

static void test_add_get_remove(void)
{
    uint64_t fits;
    idtoken_table *t = small_table("calls", &fits);
    idtoken_table_effects fx;
    unsigned char key[128], buffer[IDTOKEN_TABLE_VALUE_MAX], huge[IDTOKEN_TABLE_VALUE_MAX + 1];
    size_t key_len = make_key(key, "used", 7), len = 99;
    uint64_t evicted, refused;

    CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"a", 1, 2000, 1000, IDTOKEN_TABLE_ONLY_IF_ABSENT,
                            IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_OK, "add");
    CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"b", 1, 2000, 1001, IDTOKEN_TABLE_ONLY_IF_ABSENT,
                            IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_EXISTS, "add of a live key");
    CHECK(idtoken_table_put(t, key, key_len, (const unsigned char *)"c", 1, 3000, 2000, IDTOKEN_TABLE_ONLY_IF_ABSENT,
                            IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_OK, "add over an expired entry");
    CHECK(idtoken_table_get(t, key, key_len, 2001, buffer, sizeof(buffer), &len) == IDTOKEN_TABLE_OK && len == 1
          && buffer[0] == 'c', "get after add");
    CHECK(idtoken_table_get(t, key, key_len, 3000, buffer, sizeof(buffer), &len) == IDTOKEN_TABLE_NOT_FOUND,
          "an entry is gone at its expiry");
    CHECK(idtoken_table_get(t, key, key_len, 2001, buffer, 0, &len) == IDTOKEN_TABLE_INVALID, "a buffer too short");
    CHECK(idtoken_table_put(t, key, key_len, NULL, 0, 5000, 2001, 0, IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_OK
          && idtoken_table_get(t, key, key_len, 2002, buffer, sizeof(buffer), &len) == IDTOKEN_TABLE_OK && len == 0,
          "an empty value");
    CHECK(idtoken_table_remove(t, key, key_len) == IDTOKEN_TABLE_OK, "remove");
    CHECK(idtoken_table_remove(t, key, key_len) == IDTOKEN_TABLE_NOT_FOUND, "remove twice");
    CHECK(idtoken_table_put(t, key, 0, buffer, 1, 5000, 2001, 0, IDTOKEN_TABLE_EVICT_IDLE, &fx) == IDTOKEN_TABLE_INVALID,
          "an empty key");
    CHECK(idtoken_table_put(t, key, IDTOKEN_TABLE_KEY_MAX + 1, buffer, 1, 5000, 2001, 0, IDTOKEN_TABLE_EVICT_IDLE, &fx)
          == IDTOKEN_TABLE_INVALID, "a key too long");
    CHECK(idtoken_table_put(t, key, key_len, huge, sizeof(huge), 5000, 2001, 0, IDTOKEN_TABLE_EVICT_IDLE, &fx)
          == IDTOKEN_TABLE_INVALID, "a value too long");
    /* A value bigger than the whole table is refused, and counted. */
    CHECK(idtoken_table_put(t, key, key_len, huge, IDTOKEN_TABLE_VALUE_MAX, 5000, 2001, 0, IDTOKEN_TABLE_EVICT_IDLE, &fx)
          == IDTOKEN_TABLE_FULL, "a value larger than the table");
    /* One report per interval, with what happened since the last. */
    CHECK(idtoken_table_report_due(t, 2001, 60, &evicted, &refused) && refused == 1 && evicted == 0, "first report");
    CHECK(!idtoken_table_report_due(t, 2002, 60, &evicted, &refused), "nothing new to report");
    CHECK(idtoken_table_put(t, key, key_len, huge, IDTOKEN_TABLE_VALUE_MAX, 5000, 2003, 0, IDTOKEN_TABLE_REFUSE, &fx)
          == IDTOKEN_TABLE_FULL, "refused again");
    CHECK(!idtoken_table_report_due(t, 2030, 60, &evicted, &refused), "a second report within the interval");
    CHECK(idtoken_table_report_due(t, 2061, 60, &evicted, &refused) && refused == 1, "the report after the interval");
    check_whole(t, "calls");
    idtoken_table_detach(t);
}

/* ---- The file ------------------------------------------------------------------------------------- */

static void test_file(void)
{
    idtoken_table *t;
    idtoken_table_effects fx;
    char note[512], target[4096];
    struct stat st;
    uint64_t n;
    int fd;

    unlink(path_of("file"));
    CHECK(idtoken_table_attach(path_of("file"), 1 << 20, 1000, &t, note, sizeof(note)) == 0
          && strcmp(note, "created") == 0, "create: %s", note);
    CHECK(stat(path_of("file"), &st) == 0 && (st.st_mode & 0777) == 0600, "the file should be 0600");
    CHECK((uint64_t)st.st_size == idtoken_table_file_size(1 << 20) && st.st_size <= (1 << 20), "file size %lld",
          (long long)st.st_size);
    for (n = 0; n < 20; ++n) {
        put_session(t, n, 1000, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
    }
    /* The largest value, chained over 265 blocks, comes back whole. */
    {
        static unsigned char big[IDTOKEN_TABLE_VALUE_MAX], back[IDTOKEN_TABLE_VALUE_MAX];
        unsigned char key[128];
        size_t key_len = make_key(key, "s", 424242), len = 0;

        make_value(big, sizeof(big), 424242);
        CHECK(idtoken_table_put(t, key, key_len, big, sizeof(big), 99999, 1000, 0, IDTOKEN_TABLE_REFUSE, &fx)
              == IDTOKEN_TABLE_OK, "a 64 KiB value refused by a 1 MiB table");
        CHECK(idtoken_table_get(t, key, key_len, 1000, back, sizeof(back), &len) == IDTOKEN_TABLE_OK
              && len == sizeof(big) && memcmp(big, back, len) == 0, "the 64 KiB value came back altered");
        CHECK(idtoken_table_remove(t, key, key_len) == IDTOKEN_TABLE_OK, "remove the 64 KiB value");
    }
    idtoken_table_detach(t);

    /* Kept as it is: the same size finds the sessions again. */
    CHECK(idtoken_table_attach(path_of("file"), 1 << 20, 1000, &t, note, sizeof(note)) == 0 && strcmp(note, "kept") == 0,
          "reattach: %s", note);
    CHECK(idtoken_table_recover(t) == 0, "a clean file needs no repair");
    for (n = 0; n < 20; ++n) {
        CHECK(session_is_there(t, n, 1001), "session %llu lost across detach and attach", (unsigned long long)n);
    }
    check_whole(t, "reattached");
    idtoken_table_detach(t);

    /* Another size: a new, empty file. */
    CHECK(idtoken_table_attach(path_of("file"), 2 << 20, 1000, &t, note, sizeof(note)) == 0
          && strstr(note, "replaced") && strstr(note, "size"), "resize: %s", note);
    CHECK(t->h->entries == 0 && !session_is_there(t, 0, 1001), "a replaced file starts empty");
    idtoken_table_detach(t);

    /* Not ours to trust: others may read it. */
    CHECK(chmod(path_of("file"), 0644) == 0, "chmod");
    CHECK(idtoken_table_attach(path_of("file"), 2 << 20, 1000, &t, note, sizeof(note)) == 0
          && strstr(note, "others may read"), "a world-readable file: %s", note);
    idtoken_table_detach(t);
    CHECK(stat(path_of("file"), &st) == 0 && (st.st_mode & 0777) == 0600, "the replacement should be 0600");

    /* A damaged header. */
    fd = open(path_of("file"), O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, "X", 1, 20) == 1, "damage the header");
    close(fd);
    CHECK(idtoken_table_attach(path_of("file"), 2 << 20, 1000, &t, note, sizeof(note)) == 0
          && strstr(note, "damaged"), "a damaged header: %s", note);
    idtoken_table_detach(t);

    /* Not a store at all; and a symbolic link, which is replaced, never followed. */
    fd = open(path_of("file"), O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5, "overwrite");
    close(fd);
    CHECK(idtoken_table_attach(path_of("file"), 2 << 20, 1000, &t, note, sizeof(note)) == 0
          && strstr(note, "replaced"), "a file of another kind: %s", note);
    idtoken_table_detach(t);
    unlink(path_of("file"));
    snprintf(target, sizeof(target), "%s", path_of("elsewhere"));
    CHECK(symlink(target, path_of("file")) == 0, "symlink");
    CHECK(idtoken_table_attach(path_of("file"), 2 << 20, 1000, &t, note, sizeof(note)) == 0
          && strstr(note, "symbolic link"), "a symbolic link: %s", note);
    CHECK(lstat(path_of("file"), &st) == 0 && S_ISREG(st.st_mode) && access(target, F_OK) != 0,
          "the link must be replaced by a file, and its target never made");
    idtoken_table_detach(t);
    unlink(path_of("file"));

    CHECK(idtoken_table_attach(path_of("file"), IDTOKEN_TABLE_SIZE_MIN - 1, 1000, &t, note, sizeof(note)) == EINVAL,
          "a size under the minimum");
    CHECK(idtoken_table_attach("/nonexistent-dir/x", 1 << 20, 1000, &t, note, sizeof(note)) != 0,
          "a folder that does not exist");
}

/* A writer killed halfway, and bytes scribbled anywhere past the layout: no call may crash or loop,
 * and after the repair the whole file adds up. */
static void test_damage(void)
{
    idtoken_table *t;
    idtoken_table_effects fx;
    char note[512];
    unsigned char key[128], buffer[IDTOKEN_TABLE_VALUE_MAX];
    uint64_t n, round;
    uint64_t rng = 42;
    size_t len;

    memset(buffer, 'v', sizeof(buffer));
    unlink(path_of("damage"));
    CHECK(idtoken_table_attach(path_of("damage"), 256 << 10, 1000, &t, note, sizeof(note)) == 0, "attach: %s", note);

    /* Died halfway: the dirty mark is left and an entry half unlinked. */
    for (n = 0; n < 20; ++n) {
        put_session(t, n, 1000 + (int64_t)n, 99999, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
    }
    t->h->dirty = 1;
    t->h->free_count += 3;
    CHECK(idtoken_table_recover(t) == 0, "nothing should be lost to a count gone wrong");
    check_whole(t, "after a recovery");
    for (n = 0; n < 20; ++n) {
        CHECK(session_is_there(t, n, 1100), "session %llu lost by a recovery", (unsigned long long)n);
    }

    for (round = 0; round < DAMAGE_ROUNDS; ++round) {
        uint64_t span = t->size - offsetof(table_header, dirty);
        int i;

        for (i = 0; i < 1 + (int)(round % 4); ++i) {
            uint64_t off;

            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            off = offsetof(table_header, dirty) + (rng >> 20) % span;
            /* Mostly plausible numbers (small block indexes), sometimes anything. */
            if (off + 4 <= t->size && (rng & 3) != 0) {
                uint32_t v = (uint32_t)((rng >> 8) % (t->blocks + 2));

                memcpy(t->base + (off & ~(uint64_t)3), &v, 4);
            }
            else {
                t->base[off] = (unsigned char)(rng >> 40);
            }
        }
        /* Calls on damaged data: any status but a crash. */
        for (n = 0; n < 24; ++n) {
            len = make_key(key, "s", (n * 7 + round) % 30);
            switch ((n + round) % 3) {
            case 0:
                (void)idtoken_table_put(t, key, len, buffer, 1 + (n * 97 + round) % 3000, 99999, 2000,
                                        n % 2 ? IDTOKEN_TABLE_MAY_EVICT : 0, IDTOKEN_TABLE_EVICT_IDLE, &fx);
                break;
            case 1:
                (void)idtoken_table_get(t, key, len, 2000 + (int64_t)round, buffer, sizeof(buffer), &len);
                break;
            default:
                (void)idtoken_table_remove(t, key, len);
            }
        }
        /* Force a full repair, then everything must add up. */
        t->h->dirty = 1;
        idtoken_table_recover(t);
        check_whole(t, "after damage and repair");
        put_session(t, 999, 3000 + (int64_t)round, 4000 + (int64_t)round, IDTOKEN_TABLE_EVICT_IDLE, IDTOKEN_TABLE_OK, &fx);
        CHECK(session_is_there(t, 999, 3000 + (int64_t)round), "a repaired table does not keep a new session");
    }
    idtoken_table_detach(t);
    unlink(path_of("damage"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    test_add_get_remove();
    test_evict_idle();
    test_refuse();
    test_expired_first();
    test_file();
    test_damage();
    test_fifty_thousand();
    puts("ok");
    return 0;
}
