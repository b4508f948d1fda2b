/*
 * The module's own store: a hash table of fixed-size blocks in a file every process maps. The file
 * outlives processes and restarts, and any process may die halfway through a change, so nothing read
 * from it is trusted: every block number is checked before use, every walk is bounded, and what does
 * not add up is repaired (idtoken_table_repair.c) rather than followed. This file: the calls, under the
 * caller's lock.
 */
#include "idtoken_table_format.h"

#include <string.h>

uint32_t idtoken_table_blocks_for(size_t key_len, size_t value_len)
{
    size_t total = key_len + value_len;

    if (total <= HEAD_ROOM) {
        return 1;
    }
    return (uint32_t)(1 + (total - HEAD_ROOM + BODY_ROOM - 1) / BODY_ROOM);
}

/* ---- Blocks --------------------------------------------------------------------------------------- */

static uint32_t blocks_available(idtoken_table *t)
{
    table_header *h = t->h;

    if (h->fresh == 0 || h->fresh > t->blocks + 1 || h->free_count > t->blocks) {
        t->bad = 1;
        return 0;
    }
    return h->free_count + (t->blocks + 1 - h->fresh);
}

static uint32_t take_block(idtoken_table *t)
{
    table_header *h = t->h;

    if (h->free_count > 0) {
        uint32_t idx = h->free_head;
        block_head *b = block_at(t, idx);

        if (b == NULL || b->kind != KIND_FREE) {
            t->bad = 1;
            return 0;
        }
        h->free_head = b->next;
        --h->free_count;
        return idx;
    }
    if (h->fresh >= 1 && h->fresh <= t->blocks) {
        return h->fresh++;
    }
    t->bad = 1;
    return 0;
}

/* ---- Entries -------------------------------------------------------------------------------------- */

static uint32_t *bucket_of(idtoken_table *t, uint32_t hash)
{
    return &t->bucket[hash % t->buckets];
}

/* The entry with this key, and the link that points at it; 0 when absent (or t->bad). */
static uint32_t find(idtoken_table *t, const unsigned char *key, size_t key_len, uint32_t hash,
                     uint32_t **link_out)
{
    uint32_t *link = bucket_of(t, hash);
    uint32_t steps = 0;
    uint32_t idx;

    while ((idx = *link) != 0) {
        entry_head *e = head_at(t, idx);

        if (e == NULL || ++steps > t->blocks) {
            t->bad = 1;
            return 0;
        }
        if (e->hash == hash && e->key_len == key_len
            && memcmp((const unsigned char *)(e + 1), key, key_len) == 0) {
            if (link_out) {
                *link_out = link;
            }
            return idx;
        }
        link = &e->chain;
    }
    return 0;
}

/* The link that points at entry idx, found from its bucket. */
static uint32_t *link_to(idtoken_table *t, uint32_t idx, const entry_head *e)
{
    uint32_t *link = bucket_of(t, e->hash);
    uint32_t steps = 0;

    while (*link != 0) {
        entry_head *other;

        if (*link == idx) {
            return link;
        }
        other = head_at(t, *link);
        if (other == NULL || ++steps > t->blocks) {
            break;
        }
        link = &other->chain;
    }
    t->bad = 1;
    return NULL;
}

static void lru_unlink(idtoken_table *t, uint32_t idx, entry_head *e)
{
    table_header *h = t->h;

    if (!(e->flags & IDTOKEN_TABLE_MAY_EVICT)) {
        return;
    }
    if (e->lru_prev) {
        entry_head *p = head_at(t, e->lru_prev);

        if (p == NULL || p->lru_next != idx) {
            t->bad = 1;
            return;
        }
        p->lru_next = e->lru_next;
    }
    else if (h->lru_head == idx) {
        h->lru_head = e->lru_next;
    }
    else {
        t->bad = 1;
        return;
    }
    if (e->lru_next) {
        entry_head *n = head_at(t, e->lru_next);

        if (n == NULL || n->lru_prev != idx) {
            t->bad = 1;
            return;
        }
        n->lru_prev = e->lru_prev;
    }
    else if (h->lru_tail == idx) {
        h->lru_tail = e->lru_prev;
    }
    else {
        t->bad = 1;
        return;
    }
    e->lru_prev = e->lru_next = 0;
    e->flags &= (uint16_t)~IDTOKEN_TABLE_MAY_EVICT;
    --h->evictable;
}

void idtoken_table_lru_append(idtoken_table *t, uint32_t idx, entry_head *e)
{
    table_header *h = t->h;

    e->flags |= IDTOKEN_TABLE_MAY_EVICT;
    e->lru_next = 0;
    e->lru_prev = h->lru_tail;
    if (h->lru_tail) {
        entry_head *tail = head_at(t, h->lru_tail);

        if (tail == NULL) {
            return;
        }
        tail->lru_next = idx;
    }
    else {
        h->lru_head = idx;
    }
    h->lru_tail = idx;
    ++h->evictable;
}

/* Frees entry idx, which *link points at. */
static void drop(idtoken_table *t, uint32_t *link, uint32_t idx, entry_head *e)
{
    uint32_t n = e->nblocks;
    uint32_t cur = idx;
    uint32_t i;

    *link = e->chain;
    lru_unlink(t, idx, e);
    if (e->key_len > IDTOKEN_TABLE_KEY_MAX || n != idtoken_table_blocks_for(e->key_len, e->value_len)) {
        t->bad = 1;
        n = 1;
    }
    for (i = 0; i < n && cur != 0; ++i) {
        block_head *b = block_at(t, cur);
        uint32_t next;

        if (b == NULL || b->kind != (i == 0 ? KIND_HEAD : KIND_BODY)) {
            t->bad = 1;
            break;
        }
        next = b->next;
        give_block(t, cur, b);
        cur = next;
    }
    --t->h->entries;
}

static int expired(const entry_head *e, int64_t now)
{
    return e->expires_at <= now;
}

/* The evictable entry written least recently, passing over `keep` (the entry a write replaces: it
 * neither expires nor gives way meanwhile, so a write that fails leaves it as it was). 0 for none. */
static uint32_t oldest(idtoken_table *t, uint32_t keep)
{
    uint32_t idx = t->h->lru_head;

    if (idx != 0 && idx == keep) {
        entry_head *e = head_at(t, idx);

        idx = e ? e->lru_next : 0;
    }
    return idx;
}

/* Frees expired entries but `keep`: first those at the front of the eviction order (where sessions
 * that ran out of idle time gather), then, when some entry is due, a sweep of every bucket, at most
 * once a second. */
static void reclaim(idtoken_table *t, int64_t now, uint32_t keep, idtoken_table_effects *fx)
{
    table_header *h = t->h;
    uint32_t steps = 0;
    uint32_t b;
    int64_t soonest = INT64_MAX;

    while (!t->bad && steps++ <= t->blocks) {
        uint32_t idx = oldest(t, keep);
        entry_head *e = idx ? head_at(t, idx) : NULL;
        uint32_t *link;

        if (e == NULL || !expired(e, now) || (link = link_to(t, idx, e)) == NULL) {
            break;
        }
        drop(t, link, idx, e);
        ++h->reclaimed;
        ++fx->reclaimed;
    }
    if (t->bad || now < h->next_expiry || now == h->swept_at) {
        return;
    }
    for (b = 0; b < t->buckets && !t->bad; ++b) {
        uint32_t *link = &t->bucket[b];

        steps = 0;
        while (*link != 0) {
            uint32_t idx = *link;
            entry_head *e = head_at(t, idx);

            if (e == NULL || ++steps > t->blocks) {
                t->bad = 1;
                break;
            }
            if (idx != keep && expired(e, now)) {
                drop(t, link, idx, e);
                ++h->reclaimed;
                ++fx->reclaimed;
                if (t->bad) {
                    break;
                }
                continue;
            }
            if (e->expires_at < soonest) {
                soonest = e->expires_at;
            }
            link = &e->chain;
        }
    }
    if (!t->bad) {
        h->next_expiry = soonest;
        h->swept_at = now;
    }
}

/* Makes room for `need` blocks by evicting the least recently written evictable entries but `keep`. */
static void evict(idtoken_table *t, uint32_t need, uint32_t keep, idtoken_table_effects *fx)
{
    uint32_t steps = 0;

    while (blocks_available(t) < need && !t->bad && steps++ <= t->blocks) {
        uint32_t idx = oldest(t, keep);
        entry_head *e = idx ? head_at(t, idx) : NULL;
        uint32_t *link;

        if (e == NULL || (link = link_to(t, idx, e)) == NULL) {
            return;
        }
        drop(t, link, idx, e);
        ++t->h->evicted;
        ++fx->evicted;
    }
}

static void write_entry(idtoken_table *t, const unsigned char *key, size_t key_len,
                        const unsigned char *value, size_t value_len, uint32_t hash,
                        int64_t expires_at, int64_t now, unsigned flags, uint32_t nblocks)
{
    table_header *h = t->h;
    uint32_t first = take_block(t);
    entry_head *e;
    block_head *cur;
    size_t room, n, done;
    uint32_t i;
    uint32_t *link;

    if (first == 0) {
        return;
    }
    e = (entry_head *)block_at(t, first);
    memset(e, 0, sizeof(*e));
    e->kind = KIND_HEAD;
    e->hash = hash;
    e->key_len = (uint16_t)key_len;
    e->value_len = (uint32_t)value_len;
    e->nblocks = nblocks;
    e->expires_at = expires_at;
    e->written_at = now;
    memcpy((unsigned char *)(e + 1), key, key_len);
    room = HEAD_ROOM - key_len;
    n = value_len < room ? value_len : room;
    if (n > 0) {
        memcpy((unsigned char *)(e + 1) + key_len, value, n);
    }
    done = n;
    cur = (block_head *)e;
    for (i = 1; i < nblocks; ++i) {
        uint32_t idx = take_block(t);
        block_head *b = idx ? block_at(t, idx) : NULL;

        if (b == NULL) {
            /* Counted blocks ran out: the table is inconsistent; the repair frees this half entry. */
            cur->next = 0;
            return;
        }
        cur->next = idx;
        b->kind = KIND_BODY;
        b->next = 0;
        n = value_len - done < BODY_ROOM ? value_len - done : BODY_ROOM;
        memcpy((unsigned char *)(b + 1), value + done, n);
        done += n;
        cur = b;
    }
    cur->next = 0;

    link = bucket_of(t, hash);
    e->chain = *link;
    *link = first;
    ++h->entries;
    if (flags & IDTOKEN_TABLE_MAY_EVICT) {
        idtoken_table_lru_append(t, first, e);
    }
    if (expires_at < h->next_expiry) {
        h->next_expiry = expires_at;
    }
}

static size_t read_value(idtoken_table *t, const entry_head *e, unsigned char *out)
{
    size_t len = e->value_len;
    size_t room = HEAD_ROOM - e->key_len;
    size_t n = len < room ? len : room;
    size_t done;
    uint32_t cur = e->next;
    uint32_t i;

    memcpy(out, (const unsigned char *)(e + 1) + e->key_len, n);
    done = n;
    for (i = 1; i < e->nblocks && done < len; ++i) {
        block_head *b = block_at(t, cur);

        if (b == NULL || b->kind != KIND_BODY) {
            t->bad = 1;
            return 0;
        }
        n = len - done < BODY_ROOM ? len - done : BODY_ROOM;
        memcpy(out + done, (const unsigned char *)(b + 1), n);
        done += n;
        cur = b->next;
    }
    if (done != len) {
        t->bad = 1;
    }
    return done;
}

/* ---- Calls ----------------------------------------------------------------------------------------- */

uint32_t idtoken_table_recover(idtoken_table *t)
{
    return t->h->dirty ? idtoken_table_repair(t) : 0;
}

/* A change starts: a writer that died halfway left the table to be repaired first. */
static void begin(idtoken_table *t)
{
    if (t->h->dirty) {
        idtoken_table_repair(t);
    }
    t->bad = 0;
    t->h->dirty = 1;
}

static idtoken_table_status end(idtoken_table *t, idtoken_table_status status)
{
    if (t->bad) {
        idtoken_table_repair(t);
        return IDTOKEN_TABLE_CORRUPT;
    }
    t->h->dirty = 0;
    return status;
}

static int key_ok(const unsigned char *key, size_t key_len)
{
    return key != NULL && key_len > 0 && key_len <= IDTOKEN_TABLE_KEY_MAX;
}

idtoken_table_status idtoken_table_get(idtoken_table *t, const unsigned char *key, size_t key_len,
                                       int64_t now, unsigned char *buffer, size_t capacity,
                                       size_t *value_len)
{
    uint32_t idx;
    entry_head *e;

    if (!key_ok(key, key_len) || buffer == NULL || value_len == NULL) {
        return IDTOKEN_TABLE_INVALID;
    }
    if (t->h->dirty) {
        idtoken_table_repair(t);
    }
    t->bad = 0;
    idx = find(t, key, key_len, hash_bytes(t->seed, key, key_len), NULL);
    if (t->bad) {
        idtoken_table_repair(t);
        return IDTOKEN_TABLE_CORRUPT;
    }
    if (idx == 0) {
        return IDTOKEN_TABLE_NOT_FOUND;
    }
    e = head_at(t, idx);
    if (e == NULL || expired(e, now)) {
        return IDTOKEN_TABLE_NOT_FOUND;
    }
    if (e->value_len > IDTOKEN_TABLE_VALUE_MAX
        || e->nblocks != idtoken_table_blocks_for(e->key_len, e->value_len)) {
        idtoken_table_repair(t);
        return IDTOKEN_TABLE_CORRUPT;
    }
    if (e->value_len > capacity) {
        return IDTOKEN_TABLE_INVALID;
    }
    *value_len = read_value(t, e, buffer);
    if (t->bad) {
        idtoken_table_repair(t);
        return IDTOKEN_TABLE_CORRUPT;
    }
    return IDTOKEN_TABLE_OK;
}

idtoken_table_status idtoken_table_put(idtoken_table *t, const unsigned char *key, size_t key_len,
                                       const unsigned char *value, size_t value_len,
                                       int64_t expires_at, int64_t now, unsigned flags,
                                       idtoken_table_policy policy, idtoken_table_effects *effects)
{
    idtoken_table_effects ignored;
    idtoken_table_effects *fx = effects ? effects : &ignored;
    uint32_t hash, need, old, have;
    uint32_t *link = NULL;
    entry_head *e;

    fx->evicted = fx->reclaimed = 0;
    if (!key_ok(key, key_len) || (value == NULL && value_len > 0) || value_len > IDTOKEN_TABLE_VALUE_MAX
        || (flags & ~(IDTOKEN_TABLE_MAY_EVICT | IDTOKEN_TABLE_ONLY_IF_ABSENT)) != 0) {
        return IDTOKEN_TABLE_INVALID;
    }
    begin(t);
    hash = hash_bytes(t->seed, key, key_len);
    need = idtoken_table_blocks_for(key_len, value_len);
    old = find(t, key, key_len, hash, &link);
    e = old ? head_at(t, old) : NULL;
    if (t->bad) {
        return end(t, IDTOKEN_TABLE_CORRUPT);
    }
    if (e && (flags & IDTOKEN_TABLE_ONLY_IF_ABSENT) && !expired(e, now)) {
        return end(t, IDTOKEN_TABLE_EXISTS);
    }
    have = blocks_available(t) + (e ? e->nblocks : 0);
    if (have < need && !t->bad) {
        reclaim(t, now, old, fx);
        if (policy == IDTOKEN_TABLE_EVICT_IDLE && !t->bad) {
            evict(t, need - (e ? e->nblocks : 0), old, fx);
        }
        have = blocks_available(t) + (e ? e->nblocks : 0);
        if (t->bad) {
            return end(t, IDTOKEN_TABLE_CORRUPT);
        }
        if (have < need) {
            ++t->h->refused;
            return end(t, IDTOKEN_TABLE_FULL);
        }
        /* Sweeps and evictions may have moved the link that pointed at it. */
        if (old && (find(t, key, key_len, hash, &link) != old || t->bad)) {
            return end(t, IDTOKEN_TABLE_CORRUPT);
        }
    }
    if (e) {
        drop(t, link, old, e);
    }
    if (!t->bad) {
        write_entry(t, key, key_len, value, value_len, hash, expires_at, now,
                    flags & IDTOKEN_TABLE_MAY_EVICT, need);
    }
    return end(t, IDTOKEN_TABLE_OK);
}

idtoken_table_status idtoken_table_remove(idtoken_table *t, const unsigned char *key, size_t key_len)
{
    uint32_t *link = NULL;
    uint32_t idx;
    entry_head *e;

    if (!key_ok(key, key_len)) {
        return IDTOKEN_TABLE_INVALID;
    }
    begin(t);
    idx = find(t, key, key_len, hash_bytes(t->seed, key, key_len), &link);
    if (idx == 0 || t->bad) {
        return end(t, IDTOKEN_TABLE_NOT_FOUND);
    }
    e = head_at(t, idx);
    if (e != NULL) {
        drop(t, link, idx, e);
    }
    return end(t, IDTOKEN_TABLE_OK);
}

int idtoken_table_report_due(idtoken_table *t, int64_t now, int64_t interval, uint64_t *evicted,
                             uint64_t *refused)
{
    table_header *h = t->h;

    if (h->evicted == h->evicted_reported && h->refused == h->refused_reported) {
        return 0;
    }
    if (h->reported_at != 0 && now - h->reported_at < interval && now >= h->reported_at) {
        return 0;
    }
    *evicted = h->evicted - h->evicted_reported;
    *refused = h->refused - h->refused_reported;
    h->evicted_reported = h->evicted;
    h->refused_reported = h->refused;
    h->reported_at = now;
    return 1;
}

void idtoken_table_read_stats(const idtoken_table *t, idtoken_table_stats *st)
{
    const table_header *h = t->h;
    uint32_t fresh = h->fresh;

    memset(st, 0, sizeof(*st));
    st->file_size = t->size;
    st->block_size = BLOCK_SIZE;
    st->blocks = t->blocks;
    st->free_blocks = h->free_count + (fresh >= 1 && fresh <= t->blocks + 1 ? t->blocks + 1 - fresh : 0);
    st->entries = h->entries;
    st->evicted = h->evicted;
    st->refused = h->refused;
    st->reclaimed = h->reclaimed;
    st->repairs = h->repairs;
    st->created_at = h->created_at;
}
