/*
 * The file store's file: its layout for a size, making it (reserved whole, formatted, renamed into
 * place), and mapping an existing one only when it is a private regular file of this user, of the
 * expected size, with a valid header.
 */
#include "idtoken_table_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

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

/* One bucket per two blocks: an entry takes a block at least (a session seven), so chains stay short
 * whatever the mix of entries. */
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

static uint64_t layout_check(const table_header *h)
{
    /* Everything from the magic to the time the file was made, as bytes. */
    size_t n = offsetof(table_header, layout_check);
    uint64_t lo = hash_bytes(0x1d70c0deu, (const unsigned char *)h, n);
    uint64_t hi = hash_bytes(0x5eedf11eu, (const unsigned char *)h, n);

    return (hi << 32) | lo;
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
    h->created_at = now;
    h->layout_check = layout_check(h);
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
