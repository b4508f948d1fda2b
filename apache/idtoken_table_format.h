/*
 * The file store's format and the helpers its three files share (idtoken_table.c: the calls,
 * idtoken_table_repair.c, idtoken_table_file.c: making and mapping the file). Not for the rest of the
 * module: idtoken_table.h is the interface. docs/internals.md draws the layout.
 */
#ifndef IDTOKEN_TABLE_FORMAT_H
#define IDTOKEN_TABLE_FORMAT_H

#include "idtoken_table.h"

#include <stddef.h>

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
    int64_t created_at;         /* written once, with the layout */
    uint64_t layout_check;      /* a hash of the fields above */

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

/* FNV-1a, seeded, with a final mix so that bucket = hash % buckets spreads well. */
static inline uint32_t hash_bytes(uint32_t seed, const unsigned char *p, size_t n)
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

/* Block idx, or NULL (and t->bad) when it is out of range: every block number read from the file goes
 * through here or head_at. */
static inline block_head *block_at(idtoken_table *t, uint32_t idx)
{
    if (idx == 0 || idx > t->blocks) {
        t->bad = 1;
        return NULL;
    }
    return (block_head *)(t->block_area + (uint64_t)(idx - 1) * BLOCK_SIZE);
}

/* Block idx if it is the first block of an entry. */
static inline entry_head *head_at(idtoken_table *t, uint32_t idx)
{
    block_head *b = block_at(t, idx);

    if (b == NULL || b->kind != KIND_HEAD) {
        t->bad = 1;
        return NULL;
    }
    return (entry_head *)b;
}

static inline void give_block(idtoken_table *t, uint32_t idx, block_head *b)
{
    b->kind = KIND_FREE;
    b->next = t->h->free_head;
    t->h->free_head = idx;
    ++t->h->free_count;
}

/* idtoken_table.c */
void idtoken_table_lru_append(idtoken_table *t, uint32_t idx, entry_head *e);

/* idtoken_table_repair.c: under the lock. Keeps every whole entry and rebuilds the rest; returns the
 * entries it dropped. */
uint32_t idtoken_table_repair(idtoken_table *t);
/* Whether entry idx, met in bucket b, is whole; marks its blocks in `used` when it is. */
int idtoken_table_entry_whole(idtoken_table *t, uint32_t idx, uint32_t b, uint32_t fresh, unsigned char *used);

#define BIT_GET(map, i) ((map)[(i) >> 3] & (1u << ((i) & 7)))
#define BIT_SET(map, i) ((map)[(i) >> 3] |= (unsigned char)(1u << ((i) & 7)))
#define BIT_CLEAR(map, i) ((map)[(i) >> 3] &= (unsigned char)~(1u << ((i) & 7)))

#endif /* IDTOKEN_TABLE_FORMAT_H */
