/*
 * A key-value table in one file mapped MAP_SHARED: the module's own store (IDTokenCache file). It
 * knows nothing of httpd (Tests/store builds it alone); the caller serialises every call but
 * idtoken_table_attach/detach and idtoken_table_read_stats with one lock shared by all the processes that
 * map the file. docs/internals.md describes the format and why it is so.
 */
#ifndef IDTOKEN_TABLE_H
#define IDTOKEN_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* The longest key and value the table takes. A key lives whole in its entry's first block. */
#define IDTOKEN_TABLE_KEY_MAX 128
#define IDTOKEN_TABLE_VALUE_MAX 65536
/* The file's size, in bytes: what IDTokenCache file(size) accepts. */
#define IDTOKEN_TABLE_SIZE_MIN ((uint64_t)64 << 10)
#define IDTOKEN_TABLE_SIZE_MAX ((uint64_t)64 << 30)

typedef enum {
    IDTOKEN_TABLE_OK = 0,
    IDTOKEN_TABLE_NOT_FOUND = 1,
    IDTOKEN_TABLE_EXISTS = 2,    /* put with IDTOKEN_TABLE_ONLY_IF_ABSENT: a live entry has the key */
    IDTOKEN_TABLE_FULL = 3,      /* no room without dropping a live entry the policy keeps */
    IDTOKEN_TABLE_INVALID = 4,   /* a key, value or buffer the table cannot take */
    IDTOKEN_TABLE_CORRUPT = 5    /* the file was found inconsistent: repaired, but this call not done */
} idtoken_table_status;

/* What gives way when a write finds no room, once expired entries are gone. */
typedef enum {
    IDTOKEN_TABLE_EVICT_IDLE = 0,   /* the entry written least recently among those marked MAY_EVICT */
    IDTOKEN_TABLE_REFUSE = 1        /* nothing: the write fails with IDTOKEN_TABLE_FULL */
} idtoken_table_policy;

/* Flags of idtoken_table_put. */
#define IDTOKEN_TABLE_MAY_EVICT 1u       /* this entry may give way to others when the table is full */
#define IDTOKEN_TABLE_ONLY_IF_ABSENT 2u  /* write only if no live entry has the key (atomic under the lock) */

typedef struct idtoken_table idtoken_table;

/* Counters and the layout, for logs. Read without the lock: a snapshot, not exact. */
typedef struct {
    uint64_t file_size;
    uint32_t block_size;
    uint32_t blocks;
    uint32_t free_blocks;        /* on the free list or never used */
    uint32_t entries;            /* expired ones included until reclaimed */
    uint64_t evicted;            /* live entries that gave way (IDTOKEN_TABLE_EVICT_IDLE) */
    uint64_t refused;            /* writes that found no room */
    uint64_t reclaimed;          /* expired entries freed to make room */
    uint64_t repairs;            /* times the file was found inconsistent and repaired */
    int64_t created_at;
} idtoken_table_stats;

/* What one write did to other entries. */
typedef struct {
    uint32_t evicted;
    uint32_t reclaimed;
} idtoken_table_effects;

/* Blocks an entry of this key and value length takes (for capacity estimates). */
uint32_t idtoken_table_blocks_for(size_t key_len, size_t value_len);

/* The file size a table of at most `size` bytes really has; 0 when `size` is out of range. */
uint64_t idtoken_table_file_size(uint64_t size);

/* Maps the table at `path`, sized `size` (within the limits above), creating it when absent and
 * replacing it (a new file renamed over the old: processes still mapping the old one are not
 * disturbed) when it is not a regular 0600 file of this user of that size with a valid header. A new
 * file has its whole size reserved (posix_fallocate), so that no write to the mapping can fail for
 * lack of space (SIGBUS). `note` says what happened ("created", "kept", "replaced: <why>"). Returns 0,
 * or an errno with `note` saying what failed. Needs the lock only when other processes may be using
 * the file (repairs and replacement are then not racing anyone else's write). */
int idtoken_table_attach(const char *path, uint64_t size, int64_t now, idtoken_table **out,
                     char *note, size_t note_len);

/* Unmaps the table (this process only). */
void idtoken_table_detach(idtoken_table *t);

/* Under the lock: repairs the table if a writer died halfway through a change. Returns the number
 * of entries the repair dropped, 0 when there was nothing to repair. */
uint32_t idtoken_table_recover(idtoken_table *t);

/* Under the lock, as are the three below. Copies the value of a live entry into `buffer` (at most
 * `capacity` bytes: IDTOKEN_TABLE_INVALID when it is longer). */
idtoken_table_status idtoken_table_get(idtoken_table *t, const unsigned char *key, size_t key_len, int64_t now,
                               unsigned char *buffer, size_t capacity, size_t *value_len);

/* Writes the entry, replacing any with the same key. When there is no room, expired entries are
 * freed first; then, under IDTOKEN_TABLE_EVICT_IDLE, entries marked IDTOKEN_TABLE_MAY_EVICT give way, least
 * recently written first. A write that fails leaves the previous entry as it was. */
idtoken_table_status idtoken_table_put(idtoken_table *t, const unsigned char *key, size_t key_len,
                               const unsigned char *value, size_t value_len, int64_t expires_at,
                               int64_t now, unsigned flags, idtoken_table_policy policy,
                               idtoken_table_effects *effects);

idtoken_table_status idtoken_table_remove(idtoken_table *t, const unsigned char *key, size_t key_len);

/* Under the lock: whether a line about evictions and refusals is due, at most one per `interval`
 * seconds for all the processes. When it is, *evicted and *refused say how many happened since the
 * last line, and the line counts as written. */
int idtoken_table_report_due(idtoken_table *t, int64_t now, int64_t interval, uint64_t *evicted,
                         uint64_t *refused);

void idtoken_table_read_stats(const idtoken_table *t, idtoken_table_stats *stats);

#endif /* IDTOKEN_TABLE_H */
