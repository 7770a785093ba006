/*
 * lpm_chunks.c - chunk maintenance for the interval store: directory
 * growth, inserting and deleting one start, splits, merges and bulk loading.
 * Layout and search in lpm_chunks.h.
 *
 * Keeping the fences right is the one subtle duty: after any change to a
 * chunk's keys from position pos on, chunk_refence(c, pos) rewrites the
 * fences of the blocks at and after pos (and only those still in use).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

#include "lpm_chunks.h"

static int
chunks_reserve(Intervals *iv, uint32_t want)
{
    if (want <= iv->chunks_cap)
        return 0;
    uint64_t cap = iv->chunks_cap ? iv->chunks_cap : 8;
    while (cap < want)
        cap *= 2;
    Chunk **chunks = PyMem_RawRealloc(iv->chunks, (size_t)cap * sizeof(Chunk *));
    if (chunks == NULL)
        return -1;
    iv->chunks = chunks;
    uint32_t *first_keys = PyMem_RawRealloc(iv->first_keys, (size_t)cap * sizeof(uint32_t));
    if (first_keys == NULL)
        return -1;
    iv->first_keys = first_keys;
    iv->chunks_cap = (uint32_t)cap;
    return 0;
}

static Chunk *
chunk_alloc(void)
{
    _Static_assert(sizeof(Chunk) % 64 == 0, "chunks are whole cache lines");
    return aligned_alloc(64, sizeof(Chunk));
}

/* Refresh the fences of the blocks whose keys changed from position pos on. */
static void
chunk_refence(Chunk *c, uint32_t pos)
{
    for (uint32_t j = pos / FENCE_STRIDE; j * FENCE_STRIDE < c->n; j++)
        c->fence[j] = c->keys[j * FENCE_STRIDE];
}

static int
spares_reserve(Intervals *iv)
{
    while (iv->nspare < 2) {
        Chunk *c = chunk_alloc();
        if (c == NULL)
            return -1;
        iv->spare[iv->nspare++] = c;
    }
    return 0;
}

int
intervals_reserve(Intervals *iv)
{
    if (chunks_reserve(iv, iv->nchunks + 2) < 0 || spares_reserve(iv) < 0)
        return -1;
    return 0;
}

static void
chunk_discard(Intervals *iv, Chunk *c)
{
    if (iv->nspare < 2)
        iv->spare[iv->nspare++] = c;
    else
        free(c);
}

static void
directory_insert(Intervals *iv, uint32_t at, Chunk *c)
{
    size_t tail = iv->nchunks - at;
    memmove(&iv->chunks[at + 1], &iv->chunks[at], tail * sizeof(Chunk *));
    memmove(&iv->first_keys[at + 1], &iv->first_keys[at], tail * sizeof(uint32_t));
    iv->chunks[at] = c;
    iv->first_keys[at] = c->keys[0];
    iv->nchunks++;
}

static void
directory_delete(Intervals *iv, uint32_t at)
{
    size_t tail = iv->nchunks - at - 1;
    chunk_discard(iv, iv->chunks[at]);
    memmove(&iv->chunks[at], &iv->chunks[at + 1], tail * sizeof(Chunk *));
    memmove(&iv->first_keys[at], &iv->first_keys[at + 1], tail * sizeof(uint32_t));
    iv->nchunks--;
}

/* Move the upper half of full chunk ci into a spare chunk placed after it. */
static void
chunk_split(Intervals *iv, uint32_t ci)
{
    Chunk *left = iv->chunks[ci];
    Chunk *right = iv->spare[--iv->nspare];
    uint32_t keep = left->n / 2;
    right->n = left->n - keep;
    memcpy(right->keys, &left->keys[keep], right->n * sizeof(uint32_t));
    memcpy(right->owners, &left->owners[keep], right->n * sizeof(uint32_t));
    left->n = keep;
    chunk_refence(right, 0);
    directory_insert(iv, ci + 1, right);
}

void
chunk_insert(Intervals *iv, uint32_t ci, uint32_t pos, uint32_t key, uint32_t owner)
{
    Chunk *c = iv->chunks[ci];
    if (c->n == CHUNK_CAP) {
        chunk_split(iv, ci);
        if (pos > c->n) {
            pos -= c->n;
            c = iv->chunks[ci + 1];
        }
    }
    size_t tail = c->n - pos;
    memmove(&c->keys[pos + 1], &c->keys[pos], tail * sizeof(uint32_t));
    memmove(&c->owners[pos + 1], &c->owners[pos], tail * sizeof(uint32_t));
    c->keys[pos] = key;
    c->owners[pos] = owner;
    c->n++;
    chunk_refence(c, pos);
}

/* Append the first k entries of src to dst. */
static void
chunk_append(Chunk *dst, const Chunk *src, uint32_t k)
{
    memcpy(&dst->keys[dst->n], src->keys, k * sizeof(uint32_t));
    memcpy(&dst->owners[dst->n], src->owners, k * sizeof(uint32_t));
    uint32_t old_n = dst->n;
    dst->n += k;
    chunk_refence(dst, old_n);
}

/* Shift the entries of c by delta positions (negative: drop the first -delta). */
static void
chunk_shift(Chunk *c, int32_t delta)
{
    uint32_t from = delta < 0 ? (uint32_t)-delta : 0, to = delta < 0 ? 0 : (uint32_t)delta;
    uint32_t k = c->n - from;
    memmove(&c->keys[to], &c->keys[from], k * sizeof(uint32_t));
    memmove(&c->owners[to], &c->owners[from], k * sizeof(uint32_t));
    c->n = to + k;
    chunk_refence(c, 0);
}

/* Chunk ci fell under CHUNK_MIN: merge it with a neighbour or borrow from it. */
static void
chunk_rebalance(Intervals *iv, uint32_t ci)
{
    if (iv->chunks[ci]->n >= CHUNK_MIN || iv->nchunks == 1)
        return;
    uint32_t li = (ci + 1 < iv->nchunks) ? ci : ci - 1;
    Chunk *left = iv->chunks[li], *right = iv->chunks[li + 1];
    uint32_t total = left->n + right->n;
    if (total <= CHUNK_MERGE) {
        chunk_append(left, right, right->n);
        directory_delete(iv, li + 1);
    }
    else if (left->n < right->n) {
        uint32_t move = total / 2 - left->n;
        chunk_append(left, right, move);
        chunk_shift(right, -(int32_t)move);
        iv->first_keys[li + 1] = right->keys[0];
    }
    else {
        uint32_t move = total / 2 - right->n;
        chunk_shift(right, (int32_t)move);
        memcpy(right->keys, &left->keys[left->n - move], move * sizeof(uint32_t));
        memcpy(right->owners, &left->owners[left->n - move], move * sizeof(uint32_t));
        left->n -= move;
        chunk_refence(right, 0);
        iv->first_keys[li + 1] = right->keys[0];
    }
    iv->first_keys[li] = left->keys[0];
}

void
chunk_delete(Intervals *iv, uint32_t ci, uint32_t pi)
{
    Chunk *c = iv->chunks[ci];
    size_t tail = c->n - pi - 1;
    memmove(&c->keys[pi], &c->keys[pi + 1], tail * sizeof(uint32_t));
    memmove(&c->owners[pi], &c->owners[pi + 1], tail * sizeof(uint32_t));
    c->n--;
    chunk_refence(c, pi);
    if (pi == 0 && c->n > 0)
        iv->first_keys[ci] = c->keys[0];
    chunk_rebalance(iv, ci);
}

/* ------------------------------------------------------------------------ */
/* The whole store                                                           */

int
intervals_init(Intervals *iv, uint32_t owner)
{
    if (chunks_reserve(iv, 1) < 0)
        return -1;
    Chunk *c = chunk_alloc();
    if (c == NULL)
        return -1;
    c->n = 1;
    c->keys[0] = 0;
    c->owners[0] = owner;
    chunk_refence(c, 0);
    iv->chunks[0] = c;
    iv->first_keys[0] = 0;
    iv->nchunks = 1;
    return 0;
}

int
intervals_load(Intervals *iv, const uint32_t *keys, const uint32_t *owners, size_t n)
{
    uint32_t nchunks = (uint32_t)((n + BUILD_FILL - 1) / BUILD_FILL);
    if (chunks_reserve(iv, nchunks) < 0)
        return -1;
    size_t pos = 0;
    for (uint32_t ci = 0; ci < nchunks; ci++) {
        Chunk *c = chunk_alloc();
        if (c == NULL)
            return -1;
        /* Spread evenly: chunk ci gets entries [n*ci/nchunks, n*(ci+1)/nchunks). */
        size_t stop = n * (ci + 1) / nchunks;
        c->n = (uint32_t)(stop - pos);
        memcpy(c->keys, &keys[pos], c->n * sizeof(uint32_t));
        memcpy(c->owners, &owners[pos], c->n * sizeof(uint32_t));
        chunk_refence(c, 0);
        iv->chunks[ci] = c;
        iv->first_keys[ci] = c->keys[0];
        iv->nchunks++;
        pos = stop;
    }
    return 0;
}

void
intervals_free(Intervals *iv)
{
    for (uint32_t i = 0; i < iv->nchunks; i++)
        free(iv->chunks[i]);
    for (unsigned i = 0; i < iv->nspare; i++)
        free(iv->spare[i]);
    PyMem_RawFree(iv->chunks);
    PyMem_RawFree(iv->first_keys);
    memset(iv, 0, sizeof(*iv));
}

size_t
intervals_memory(const Intervals *iv)
{
    return (size_t)iv->chunks_cap * (sizeof(Chunk *) + sizeof(uint32_t))
           + ((size_t)iv->nchunks + iv->nspare) * sizeof(Chunk);
}
