/*
 * The module's own store: a hash table of fixed-size blocks in a file every process maps. The file
 * outlives processes and restarts, and any process may die halfway through a change, so nothing read
 * from it is trusted: every block number is checked before use, every walk is bounded, and what does
 * not add up is repaired (or, failing that, emptied) rather than followed. The layout is read once, at
 * attach, and kept in the process; only the changing state is read back from the file.
 */
#include "idtoken_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAGIC "IDTSTORE"
#define FORMAT_VERSION 1u
#define HEADER_SIZE 4096u
#define BLOCK_SIZE 256u
#define PAGE 4096u

/* What a block is, in its second word: a zeroed block (never used) is none of these. */
#define KIND_FREE 0x45455246u   /* "FREE" */
#define KIND_HEAD 0x44414548u   /* "HEAD": the first block of an entry */
#define KIND_BODY 0x59444f42u   /* "BODY": a later block of an entry */

typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t file_size;
    uint32_t block_size;
    uint32_t blocks;            /* numbered 1..blocks; 0 is "none" */
    uint32_t buckets;
    uint32_t seed;              /* of the key hash, random per file */
    uint64_t buckets_offset;
    uint64_t blocks_offset;
    uint64_t layout_check;      /* a hash of the fields above */
    int64_t created_at;

    /* The changing state: read back only through bounds checks. */
    uint32_t dirty;             /* set while a change is under way: a writer that died leaves it set */
    uint32_t free_head;
    uint32_t free_count;        /* blocks on the free list */
    uint32_t fresh;             /* blocks fresh..blocks have never been used: free without a list */
    uint32_t lru_head;          /* entries that may be evicted, least recently written first */
    uint32_t lru_tail;
    uint32_t entries;
    uint32_t evictable;
    int64_t next_expiry;        /* no entry expires before this: until then a sweep finds nothing */
    int64_t swept_at;
    uint64_t evicted;
    uint64_t refused;
    uint64_t reclaimed;
    uint64_t repairs;
    int64_t reported_at;
    uint64_t evicted_reported;
    uint64_t refused_reported;
} table_header;

/* Every block starts with these two words. */
typedef struct {
    uint32_t next;              /* the entry's next block, or the next free block */
    uint32_t kind;
} block_head;

typedef struct {
    uint32_t next;
    uint32_t kind;              /* KIND_HEAD */
    uint32_t chain;             /* the next entry of the same bucket */
    uint32_t lru_prev;
    uint32_t lru_next;
    uint32_t hash;
    uint32_t value_len;
    uint16_t key_len;
    uint16_t flags;             /* IDTOKEN_TABLE_MAY_EVICT */
    uint32_t nblocks;
    uint32_t unused;
    int64_t expires_at;
    int64_t written_at;
    /* the key, then the value, continued in the BODY blocks */
} entry_head;

#define HEAD_ROOM (BLOCK_SIZE - sizeof(entry_head))
#define BODY_ROOM (BLOCK_SIZE - sizeof(block_head))

typedef char header_fits[sizeof(table_header) <= HEADER_SIZE ? 1 : -1];
typedef char key_fits_head[IDTOKEN_TABLE_KEY_MAX <= HEAD_ROOM ? 1 : -1];

struct idtoken_table {
    unsigned char *base;
    uint64_t size;              /* of the mapping */
    uint32_t blocks;
    uint32_t buckets;
    uint32_t seed;
    table_header *h;
    uint32_t *bucket;
    unsigned char *block_area;
    int bad;                    /* an inconsistency met during this call (under the lock) */
};

/* ---- Layout ---------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t file_size;
    uint32_t blocks;
    uint32_t buckets;
    uint64_t buckets_offset;
    uint64_t blocks_offset;
} layout;

static uint64_t round_up(uint64_t n, uint64_t to)
{
    return (n + to - 1) / to * to;
}

/* About two buckets per three blocks' worth of entries: an entry takes one block at least, so chains
 * stay short whatever the mix. */
static int layout_for(uint64_t size, layout *l)
{
    uint64_t blocks;

    if (size < IDTOKEN_TABLE_SIZE_MIN || size > IDTOKEN_TABLE_SIZE_MAX) {
        return 0;
    }
    blocks = (size - HEADER_SIZE - PAGE) / (BLOCK_SIZE + 2);
    for (;;) {
        uint64_t buckets = blocks / 2 + 1;
        uint64_t bucket_bytes = round_up(buckets * sizeof(uint32_t), PAGE);
        uint64_t total = HEADER_SIZE + bucket_bytes + blocks * BLOCK_SIZE;

        if (total <= size || blocks == 0) {
            if (blocks == 0 || blocks > UINT32_MAX - 1) {
                return 0;
            }
            l->blocks = (uint32_t)blocks;
            l->buckets = (uint32_t)buckets;
            l->buckets_offset = HEADER_SIZE;
            l->blocks_offset = HEADER_SIZE + bucket_bytes;
            l->file_size = total;
            return 1;
        }
        --blocks;
    }
}

uint64_t idtoken_table_file_size(uint64_t size)
{
    layout l;

    return layout_for(size, &l) ? l.file_size : 0;
}

uint32_t idtoken_table_blocks_for(size_t key_len, size_t value_len)
{
    size_t total = key_len + value_len;

    if (total <= HEAD_ROOM) {
        return 1;
    }
    return (uint32_t)(1 + (total - HEAD_ROOM + BODY_ROOM - 1) / BODY_ROOM);
}

/* FNV-1a, seeded, with a final mix so that bucket = hash % buckets spreads well. */
static uint32_t hash_bytes(uint32_t seed, const unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u ^ seed;
    size_t i;

    for (i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint64_t layout_check(const table_header *h)
{
    /* Everything from the magic to the offsets, as bytes. */
    size_t n = offsetof(table_header, layout_check);
    uint64_t lo = hash_bytes(0x1d70c0deu, (const unsigned char *)h, n);
    uint64_t hi = hash_bytes(0x5eedf11eu, (const unsigned char *)h, n);

    return (hi << 32) | lo;
}

/* ---- Blocks --------------------------------------------------------------------------------------- */

static block_head *block_at(idtoken_table *t, uint32_t idx)
{
    if (idx == 0 || idx > t->blocks) {
        t->bad = 1;
        return NULL;
    }
    return (block_head *)(t->block_area + (uint64_t)(idx - 1) * BLOCK_SIZE);
}

static entry_head *head_at(idtoken_table *t, uint32_t idx)
{
    block_head *b = block_at(t, idx);

    if (b == NULL || b->kind != KIND_HEAD) {
        t->bad = 1;
        return NULL;
    }
    return (entry_head *)b;
}

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

static void give_block(idtoken_table *t, uint32_t idx, block_head *b)
{
    b->kind = KIND_FREE;
    b->next = t->h->free_head;
    t->h->free_head = idx;
    ++t->h->free_count;
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

static void lru_append(idtoken_table *t, uint32_t idx, entry_head *e)
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
        lru_append(t, first, e);
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

/* ---- Repair -------------------------------------------------------------------------------------- */

typedef struct {
    int64_t written_at;
    uint32_t idx;
} lru_item;

static int lru_item_order(const void *a, const void *b)
{
    const lru_item *x = a, *y = b;

    if (x->written_at != y->written_at) {
        return x->written_at < y->written_at ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

#define BIT_GET(map, i) ((map)[(i) >> 3] & (1u << ((i) & 7)))
#define BIT_SET(map, i) ((map)[(i) >> 3] |= (unsigned char)(1u << ((i) & 7)))
#define BIT_CLEAR(map, i) ((map)[(i) >> 3] &= (unsigned char)~(1u << ((i) & 7)))

/* Whether entry idx, met in bucket b, is whole: fields in range, the hash its key's, its chain of
 * blocks of the right kinds and length, none below `fresh` or used by another entry. Marks its blocks
 * in `used` when it is. */
static int entry_whole(idtoken_table *t, uint32_t idx, uint32_t b, uint32_t fresh, unsigned char *used)
{
    entry_head *e = (entry_head *)block_at(t, idx);
    uint32_t cur = idx;
    uint32_t i, marked = 0;
    int ok = 1;

    if (e == NULL || e->kind != KIND_HEAD || e->key_len == 0 || e->key_len > IDTOKEN_TABLE_KEY_MAX
        || e->value_len > IDTOKEN_TABLE_VALUE_MAX || (e->flags & ~IDTOKEN_TABLE_MAY_EVICT) != 0
        || e->nblocks != idtoken_table_blocks_for(e->key_len, e->value_len)
        || e->hash != hash_bytes(t->seed, (const unsigned char *)(e + 1), e->key_len)
        || e->hash % t->buckets != b) {
        return 0;
    }
    for (i = 0; i < e->nblocks; ++i) {
        block_head *blk;

        if (cur == 0 || cur >= fresh || BIT_GET(used, cur)) {
            ok = 0;
            break;
        }
        blk = block_at(t, cur);
        if (blk == NULL || blk->kind != (i == 0 ? KIND_HEAD : KIND_BODY)) {
            ok = 0;
            break;
        }
        BIT_SET(used, cur);
        ++marked;
        cur = blk->next;
    }
    if (ok && cur != 0) {
        ok = 0;
    }
    if (!ok) {
        cur = idx;
        for (i = 0; i < marked; ++i) {
            BIT_CLEAR(used, cur);
            cur = ((block_head *)block_at(t, cur))->next;
        }
    }
    return ok;
}

/* Everything on a clean slate: no entries, every block fresh. */
static void wipe(idtoken_table *t)
{
    table_header *h = t->h;

    memset(t->bucket, 0, (size_t)t->buckets * sizeof(uint32_t));
    h->free_head = 0;
    h->free_count = 0;
    h->fresh = 1;
    h->lru_head = h->lru_tail = 0;
    h->entries = h->evictable = 0;
    h->next_expiry = INT64_MAX;
    h->swept_at = 0;
}

/* Keeps every whole entry reachable from the buckets, and rebuilds around them: the free list, the
 * eviction order (by time written), the counts. Returns the entries it dropped. */
static uint32_t repair(idtoken_table *t)
{
    table_header *h = t->h;
    uint32_t fresh = h->fresh;
    uint32_t before = h->entries;
    unsigned char *used;
    lru_item *order = NULL;
    size_t order_len = 0, order_cap = 0;
    uint32_t kept = 0, evictable = 0, b, idx;
    int64_t soonest = INT64_MAX;

    /* A repair is a change too: one cut short is started over by the next caller. */
    h->dirty = 1;
    t->bad = 0;
    if (fresh == 0 || fresh > t->blocks + 1) {
        fresh = t->blocks + 1;
    }
    used = calloc((size_t)t->blocks / 8 + 1, 1);
    if (used == NULL) {
        wipe(t);
        goto done;
    }
    for (b = 0; b < t->buckets; ++b) {
        uint32_t *link = &t->bucket[b];
        uint32_t steps = 0;

        while ((idx = *link) != 0) {
            entry_head *e;

            if (idx > t->blocks || ++steps > t->blocks) {
                *link = 0;
                break;
            }
            e = (entry_head *)block_at(t, idx);
            if (!entry_whole(t, idx, b, fresh, used)) {
                /* Skip it; what it pointed at is checked in turn (or cut off by the step bound). */
                *link = e->kind == KIND_HEAD && e->chain != idx ? e->chain : 0;
                continue;
            }
            ++kept;
            if (e->expires_at < soonest) {
                soonest = e->expires_at;
            }
            e->lru_prev = e->lru_next = 0;
            if (e->flags & IDTOKEN_TABLE_MAY_EVICT) {
                if (order_len == order_cap) {
                    size_t cap = order_cap ? order_cap * 2 : 1024;
                    lru_item *grown = realloc(order, cap * sizeof(*order));

                    if (grown == NULL) {
                        free(order);
                        free(used);
                        wipe(t);
                        goto done;
                    }
                    order = grown;
                    order_cap = cap;
                }
                order[order_len].written_at = e->written_at;
                order[order_len].idx = idx;
                ++order_len;
            }
            link = &e->chain;
        }
    }

    h->free_head = 0;
    h->free_count = 0;
    h->fresh = fresh;
    for (idx = fresh - 1; idx >= 1; --idx) {
        if (!BIT_GET(used, idx)) {
            give_block(t, idx, block_at(t, idx));
        }
    }

    qsort(order, order_len, sizeof(*order), lru_item_order);
    h->lru_head = h->lru_tail = 0;
    h->evictable = 0;
    for (evictable = 0; evictable < order_len; ++evictable) {
        entry_head *e = (entry_head *)block_at(t, order[evictable].idx);

        e->flags &= (uint16_t)~IDTOKEN_TABLE_MAY_EVICT;
        lru_append(t, order[evictable].idx, e);
    }
    h->entries = kept;
    h->next_expiry = soonest;
    h->swept_at = 0;
    free(order);
    free(used);
done:
    ++h->repairs;
    h->dirty = 0;
    t->bad = 0;
    return before > h->entries ? before - h->entries : 0;
}

/* ---- Calls ----------------------------------------------------------------------------------------- */

uint32_t idtoken_table_recover(idtoken_table *t)
{
    return t->h->dirty ? repair(t) : 0;
}

/* A change starts: a writer that died halfway left the table to be repaired first. */
static void begin(idtoken_table *t)
{
    if (t->h->dirty) {
        repair(t);
    }
    t->bad = 0;
    t->h->dirty = 1;
}

static idtoken_table_status end(idtoken_table *t, idtoken_table_status status)
{
    if (t->bad) {
        repair(t);
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
        repair(t);
    }
    t->bad = 0;
    idx = find(t, key, key_len, hash_bytes(t->seed, key, key_len), NULL);
    if (t->bad) {
        repair(t);
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
        repair(t);
        return IDTOKEN_TABLE_CORRUPT;
    }
    if (e->value_len > capacity) {
        return IDTOKEN_TABLE_INVALID;
    }
    *value_len = read_value(t, e, buffer);
    if (t->bad) {
        repair(t);
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

/* ---- The file ------------------------------------------------------------------------------------- */

static uint32_t random_seed(void)
{
    uint32_t seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        if (read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed)) {
            seed = 0;
        }
        close(fd);
    }
    return seed ^ (uint32_t)getpid() ^ (uint32_t)(uintptr_t)&seed;
}

static void handle_init(idtoken_table *t, unsigned char *base, const layout *l, uint32_t seed)
{
    memset(t, 0, sizeof(*t));
    t->base = base;
    t->size = l->file_size;
    t->blocks = l->blocks;
    t->buckets = l->buckets;
    t->seed = seed;
    t->h = (table_header *)base;
    t->bucket = (uint32_t *)(base + l->buckets_offset);
    t->block_area = base + l->blocks_offset;
}

/* NULL when the header describes exactly this layout, else why not. */
static const char *header_mismatch(const table_header *h, const layout *l)
{
    if (memcmp(h->magic, MAGIC, sizeof(h->magic)) != 0) {
        return "not a store file (no magic number)";
    }
    if (h->version != FORMAT_VERSION) {
        return "another format version";
    }
    if (h->layout_check != layout_check(h)) {
        return "its header is damaged";
    }
    if (h->header_size != HEADER_SIZE || h->block_size != BLOCK_SIZE || h->file_size != l->file_size
        || h->blocks != l->blocks || h->buckets != l->buckets || h->buckets_offset != l->buckets_offset
        || h->blocks_offset != l->blocks_offset) {
        return "made for another size";
    }
    return NULL;
}

static void format(unsigned char *base, const layout *l, int64_t now)
{
    table_header *h = (table_header *)base;

    memset(h, 0, HEADER_SIZE);
    memcpy(h->magic, MAGIC, sizeof(h->magic));
    h->version = FORMAT_VERSION;
    h->header_size = HEADER_SIZE;
    h->file_size = l->file_size;
    h->block_size = BLOCK_SIZE;
    h->blocks = l->blocks;
    h->buckets = l->buckets;
    h->seed = random_seed();
    h->buckets_offset = l->buckets_offset;
    h->blocks_offset = l->blocks_offset;
    h->layout_check = layout_check(h);
    h->created_at = now;
    h->fresh = 1;
    h->next_expiry = INT64_MAX;
    /* posix_fallocate gives zeroed blocks: every bucket empty, every block fresh. */
}

/* A new file beside the path, sized and formatted, then renamed over it. */
static int create(const char *path, const layout *l, int64_t now, unsigned char **base_out,
                  char *note, size_t note_len)
{
    char tmp[4096];
    unsigned char *base;
    int fd, rv;

    if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(note, note_len, "the path is too long");
        return ENAMETOOLONG;
    }
    unlink(tmp);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv = errno;
        snprintf(note, note_len, "cannot create a new file beside it");
        return rv;
    }
    if (fchmod(fd, 0600) != 0) {
        rv = errno;
        snprintf(note, note_len, "cannot make the new file private (0600)");
        goto fail;
    }
    rv = posix_fallocate(fd, 0, (off_t)l->file_size);
    if (rv != 0) {
        struct statvfs fs;

        if (fstatvfs(fd, &fs) == 0) {
            snprintf(note, note_len, "cannot reserve %llu bytes for it (%llu free there)",
                     (unsigned long long)l->file_size,
                     (unsigned long long)fs.f_bavail * (unsigned long long)fs.f_frsize);
        }
        else {
            snprintf(note, note_len, "cannot reserve %llu bytes for it", (unsigned long long)l->file_size);
        }
        goto fail;
    }
    base = mmap(NULL, (size_t)l->file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rv = errno;
        snprintf(note, note_len, "cannot map it");
        goto fail;
    }
    format(base, l, now);
    if (rename(tmp, path) != 0) {
        rv = errno;
        munmap(base, (size_t)l->file_size);
        snprintf(note, note_len, "cannot rename the new file over it");
        goto fail;
    }
    close(fd);
    *base_out = base;
    return 0;
fail:
    close(fd);
    unlink(tmp);
    return rv;
}

/* The existing file mapped; else NULL, with `why` set when it must be replaced (NULL: there is none)
 * or *err when it cannot even be looked at. */
static unsigned char *open_existing(const char *path, const layout *l, const char **why, int *err)
{
    struct stat st;
    unsigned char *base;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

    *err = 0;
    if (fd < 0) {
        if (errno == ENOENT) {
            *why = NULL;
        }
        else if (errno == ELOOP) {
            *why = "it is a symbolic link";
        }
        else {
            *err = errno;
            *why = NULL;
        }
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = "it is not a regular file";
    }
    else if (st.st_uid != geteuid()) {
        *why = "it belongs to another user";
    }
    else if ((st.st_mode & 077) != 0) {
        *why = "others may read or write it";
    }
    else if ((uint64_t)st.st_size != l->file_size) {
        *why = "it has another size";
    }
    else {
        base = mmap(NULL, (size_t)l->file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (base == MAP_FAILED) {
            *why = "it cannot be mapped";
            return NULL;
        }
        *why = header_mismatch((const table_header *)base, l);
        if (*why == NULL) {
            return base;
        }
        munmap(base, (size_t)l->file_size);
        return NULL;
    }
    close(fd);
    return NULL;
}

int idtoken_table_attach(const char *path, uint64_t size, int64_t now, idtoken_table **out,
                         char *note, size_t note_len)
{
    layout l;
    const char *why = NULL;
    unsigned char *base;
    idtoken_table *t;
    int err;

    *out = NULL;
    if (!layout_for(size, &l)) {
        snprintf(note, note_len, "the size %llu is out of range", (unsigned long long)size);
        return EINVAL;
    }
    t = malloc(sizeof(*t));
    if (t == NULL) {
        snprintf(note, note_len, "out of memory");
        return ENOMEM;
    }
    base = open_existing(path, &l, &why, &err);
    if (base != NULL) {
        snprintf(note, note_len, "kept");
    }
    else if (err != 0) {
        snprintf(note, note_len, "cannot open it");
        free(t);
        return err;
    }
    else {
        err = create(path, &l, now, &base, note, note_len);
        if (err != 0) {
            free(t);
            return err;
        }
        if (why) {
            snprintf(note, note_len, "replaced (%s)", why);
        }
        else {
            snprintf(note, note_len, "created");
        }
    }
    handle_init(t, base, &l, ((table_header *)base)->seed);
    *out = t;
    return 0;
}

void idtoken_table_detach(idtoken_table *t)
{
    if (t) {
        munmap(t->base, (size_t)t->size);
        free(t);
    }
}
