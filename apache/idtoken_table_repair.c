/*
 * The file store after a writer died halfway through a change (it left the dirty mark) or after a call
 * met something that does not add up: every whole entry reachable from the buckets is kept, and the
 * rest (free list, eviction order, counts) is rebuilt around them.
 */
#include "idtoken_table_format.h"

#include <stdlib.h>
#include <string.h>

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

/* Whether entry idx, met in bucket b, is whole: fields in range, the hash its key's, its chain of
 * blocks of the right kinds and length, none below `fresh` or used by another entry. Marks its blocks
 * in `used` when it is. */
int idtoken_table_entry_whole(idtoken_table *t, uint32_t idx, uint32_t b, uint32_t fresh, unsigned char *used)
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
uint32_t idtoken_table_repair(idtoken_table *t)
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
            if (!idtoken_table_entry_whole(t, idx, b, fresh, used)) {
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
        idtoken_table_lru_append(t, order[evictable].idx, e);
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
