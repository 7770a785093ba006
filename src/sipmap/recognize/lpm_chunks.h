/*
 * lpm_chunks.h - the interval store of an LPM table: a sorted sequence of
 * (start address, owner) pairs kept in chunks under a directory.
 *
 * Strategy
 * --------
 * The starts are stored in fixed-capacity chunks (480 keys with a parallel
 * owner array, plus a one-cache-line index of every 32nd key) and a directory
 * holding each chunk's first key: a small B+-tree. A search is a binary
 * search in the directory (tens of KB at a million prefixes, cache resident),
 * then in the chunk's index line and one 32-key block. The search is inline
 * here because every lookup is one. Chunks split when full and merge with (or
 * borrow from) a neighbour when under a quarter full; a bulk load fills them
 * to 7/8, leaving room for inserts.
 *
 * The store knows nothing of prefixes: an owner is an opaque uint32_t. Two
 * spare chunks can be reserved ahead so that an insert cannot fail halfway.
 */
#ifndef SIPMAP_LPM_CHUNKS_H
#define SIPMAP_LPM_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#define FENCE_STRIDE 32u                   /* keys per block: two cache lines */
#define NFENCES 15u                        /* blocks per chunk */
#define CHUNK_CAP (FENCE_STRIDE * NFENCES) /* 480 interval starts per chunk */
#define CHUNK_MIN (CHUNK_CAP / 4)          /* below this a chunk rebalances */
#define CHUNK_MERGE (CHUNK_CAP * 3 / 4)    /* two chunks merge if they fit in this */
#define BUILD_FILL (CHUNK_CAP * 7 / 8)     /* fill of chunks made by intervals_load() */

/*
 * A chunk is 64-byte aligned and its first cache line holds n and the fences
 * (the first key of each 32-key block), so a search reads that line, then one
 * block of keys (two lines), then one owner: four cache lines in all.
 */
typedef struct {
    uint32_t n;
    uint32_t fence[NFENCES];     /* fence[j] == keys[j * FENCE_STRIDE] for blocks in use */
    uint32_t keys[CHUNK_CAP];    /* interval starts, strictly increasing */
    uint32_t owners[CHUNK_CAP];
} Chunk;

typedef struct {
    Chunk **chunks;
    uint32_t *first_keys;   /* first_keys[i] == chunks[i]->keys[0]; first_keys[0] == 0 */
    uint32_t nchunks;
    uint32_t chunks_cap;
    Chunk *spare[2];        /* reserved for the splits of one insert */
    unsigned nspare;
} Intervals;

/* Index of the last element <= x in a[0..n), given n >= 1 and a[0] <= x. */
static inline uint32_t
last_le(const uint32_t *a, uint32_t n, uint32_t x)
{
    const uint32_t *base = a;
    while (n > 1) {
        uint32_t half = n / 2;
        base = (base[half] <= x) ? base + half : base;
        n -= half;
    }
    return (uint32_t)(base - a);
}

/* Index of the last key <= x in chunk c, given c->keys[0] <= x. */
static inline uint32_t
chunk_find(const Chunk *c, uint32_t x)
{
    uint32_t block = last_le(c->fence, (c->n + FENCE_STRIDE - 1) / FENCE_STRIDE, x);
    uint32_t start = block * FENCE_STRIDE;
    uint32_t len = c->n - start < FENCE_STRIDE ? c->n - start : FENCE_STRIDE;
    return start + last_le(&c->keys[start], len, x);
}

/* Where the interval containing addr is: chunk ci, position pi. */
static inline void
locate(const Intervals *iv, uint32_t addr, uint32_t *ci, uint32_t *pi)
{
    *ci = last_le(iv->first_keys, iv->nchunks, addr);
    *pi = chunk_find(iv->chunks[*ci], addr);
}

/* One interval [0, 2^32) owned by `owner` (0, or -1 if memory ran out). */
int intervals_init(Intervals *iv, uint32_t owner);

/* Fill an empty store from n >= 1 sorted starts (keys[0] == 0) and their owners. */
int intervals_load(Intervals *iv, const uint32_t *keys, const uint32_t *owners, size_t n);

void intervals_free(Intervals *iv);

/* Bytes allocated for chunks and the directory. */
size_t intervals_memory(const Intervals *iv);

/* Reserve what inserting two starts may need: directory room and two spare chunks. */
int intervals_reserve(Intervals *iv);

/* Insert (key, owner) at position pos >= 1 of chunk ci; the caller reserved room. */
void chunk_insert(Intervals *iv, uint32_t ci, uint32_t pos, uint32_t key, uint32_t owner);

/* Delete the entry at position pi of chunk ci; never the store's first (start 0). */
void chunk_delete(Intervals *iv, uint32_t ci, uint32_t pi);

#endif
