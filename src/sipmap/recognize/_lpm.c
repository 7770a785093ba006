/*
 * _lpm.c - IPv4 longest-prefix-match table (sipmap.recognize._lpm.Table4).
 *
 * Strategy
 * --------
 * The set of prefixes is kept in two forms:
 *
 *  1. Prefix slots: an array of (network, length, value), indexed by a slot
 *     id, with an open-addressing hash map (network, length) -> slot id.
 *     Values live only here, so replacing a value is O(1).
 *
 *  2. Disjoint address intervals: the address space 0..2^32-1 cut into
 *     intervals, each tagged with the slot id of the longest prefix covering
 *     it (its "owner") or NO_OWNER. Only interval START addresses are stored,
 *     sorted; an interval runs up to the next start. The first start is
 *     always 0. The form is canonical: two neighbouring intervals never have
 *     the same owner, so the layout depends only on the prefix set.
 *
 * The interval starts are stored in fixed-capacity chunks (480 keys with a
 * parallel owner array, plus a one-cache-line index of every 32nd key) and a
 * directory holding each chunk's first key: a small B+-tree. A lookup is a
 * binary search in the directory (tens of KB at a million prefixes, cache
 * resident), then in the chunk's index line and one 32-key block, then one
 * read of the owner and one of its slot. It allocates nothing but the
 * returned int. Memory: ~8 bytes per interval (a prefix adds at most two),
 * 12 per slot, 16-32 per prefix of hash buckets: about 50 per prefix.
 *
 * Insert P = [a, b] of length L: cut intervals at a and b+1, then every
 * interval inside [a, b] that has no owner or an owner shorter than L now
 * belongs to P. Remove P: every interval owned by P goes to P's parent (the
 * longest present prefix strictly containing P; see lpm_parent() for how the
 * owners just outside P usually spare the hash probes), then the cuts at a
 * and b+1 are dropped if the owners on both sides became equal. Both walk
 * every interval inside P, so a short prefix covering many longer ones (a /8
 * over 100k /32s) costs time proportional to what it covers; /32 and /24
 * writes touch one or two chunks. Chunks split when full and merge with (or
 * borrow from) a neighbour when under a quarter full. The hash map grows
 * incrementally (see its section), so no single write pays for a rehash.
 *
 * Atomicity: every mutation (insert, remove) runs entirely inside one C call
 * holding the GIL and calls no Python code, so any Python thread sees the
 * table before or after it, never half-updated. All memory an insert may
 * need (slot, hash growth, directory room, two spare chunks for splits) is
 * reserved BEFORE the first change, so an allocation failure raises
 * MemoryError with the table untouched; a remove allocates nothing.
 * Table4.build() fills a new table that no other thread can see yet, which
 * is why it may release the GIL.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define HAVE_MMAP 1
#endif

#define FENCE_STRIDE 32u                  /* keys per block: two cache lines */
#define NFENCES 15u                       /* blocks per chunk */
#define CHUNK_CAP (FENCE_STRIDE * NFENCES) /* 480 interval starts per chunk */
#define CHUNK_MIN (CHUNK_CAP / 4)         /* below this a chunk rebalances */
#define CHUNK_MERGE (CHUNK_CAP * 3 / 4)   /* two chunks merge if they fit in this */
#define BUILD_FILL (CHUNK_CAP * 7 / 8)    /* fill of chunks made by build() */
#define NO_OWNER UINT32_MAX
#define FREE_SLOT 0xFFu                   /* Prefix.len of a free slot */
#define TOMBSTONE UINT32_MAX              /* Bucket.tag of a bucket emptied during migration */
#define MIGRATE_STEP 8u                   /* old buckets moved per write while the hash grows */
#define REGION_MIN ((size_t)1 << 20)      /* arrays this large are mapped directly */
#define MAX_PREFIXES (UINT32_MAX / 4)     /* keeps slot ids and hash sizes in range */
#define RECORD_SIZE 12                    /* struct '<IB3xi' */

/* ------------------------------------------------------------------------ */
/* Data                                                                      */

typedef struct {
    uint32_t network;
    int32_t value;   /* free slot: id of the next free slot, or -1 */
    uint8_t len;     /* FREE_SLOT for a free slot */
} Prefix;

/*
 * A chunk is 64-byte aligned and its first cache line holds n and the fences
 * (the first key of each 32-key block), so a search reads that line, then one
 * block of keys (two lines), then one owner: four cache lines in all.
 */
typedef struct {
    uint32_t n;
    uint32_t fence[NFENCES];     /* fence[j] == keys[j * FENCE_STRIDE] for blocks in use */
    uint32_t keys[CHUNK_CAP];    /* interval starts, strictly increasing */
    uint32_t owners[CHUNK_CAP];  /* slot id or NO_OWNER */
} Chunk;

/* A hash bucket keeps the network next to the slot id so probes rarely touch slots. */
typedef struct {
    uint32_t network;
    uint32_t tag;    /* 0: empty; TOMBSTONE; otherwise slot id + 1 */
} Bucket;

typedef struct {
    Prefix *slots;
    uint32_t slots_cap;
    uint32_t slots_used;    /* high-water mark: slots[0..slots_used) are live or free */
    int32_t free_head;      /* -1 when no slot is free */
    uint32_t count;         /* live prefixes */
    uint32_t len_count[33]; /* live prefixes per length, to skip empty lengths */

    Bucket *buckets;        /* capacity is a power of two */
    uint32_t buckets_cap;
    unsigned hash_shift;    /* 64 - log2(buckets_cap) */
    Bucket *old;            /* while growing: the previous array, being migrated */
    uint32_t old_cap;
    unsigned old_shift;
    uint32_t migrated;      /* old[0..migrated) have been moved */

    Chunk **chunks;
    uint32_t *first_keys;   /* first_keys[i] == chunks[i]->keys[0]; first_keys[0] == 0 */
    uint32_t nchunks;
    uint32_t chunks_cap;
    Chunk *spare[2];        /* reserved for the splits of one insert */
    unsigned nspare;
} Lpm;

static inline uint32_t
prefix_mask(unsigned len)
{
    return len == 0 ? 0 : UINT32_MAX << (32 - len);
}

static inline uint32_t
prefix_end(uint32_t network, unsigned len)
{
    return network | ~prefix_mask(len);
}

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

/* ------------------------------------------------------------------------ */
/* Large arrays                                                              */

/*
 * Arrays of REGION_MIN bytes or more (hash buckets, prefix slots, build
 * scratch) are mapped directly where mmap exists: the kernel zeroes their
 * pages lazily, so a new bucket array costs no up-front memset; growing one
 * is an mremap, not a copy; and freeing returns the memory at once instead of
 * leaving a hole in the heap. Callers pass the size back when freeing.
 */
static void *
region_alloc(size_t size)
{
#ifdef HAVE_MMAP
    if (size >= REGION_MIN) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    return PyMem_RawCalloc(1, size ? size : 1);
}

static void
region_free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef HAVE_MMAP
    if (size >= REGION_MIN) {
        munmap(p, size);
        return;
    }
#endif
    (void)size;
    PyMem_RawFree(p);
}

/* Grow p from old_size to new_size bytes; the new bytes are not zeroed. */
static void *
region_grow(void *p, size_t old_size, size_t new_size)
{
#if defined(HAVE_MMAP) && defined(MREMAP_MAYMOVE)
    if (old_size >= REGION_MIN) {
        void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
#endif
    if (new_size < REGION_MIN)
        return PyMem_RawRealloc(p, new_size);
    void *q = region_alloc(new_size);
    if (q != NULL && p != NULL) {
        memcpy(q, p, old_size);
        region_free(p, old_size);
    }
    return q;
}

/* ------------------------------------------------------------------------ */
/* Hash map (network, len) -> slot id                                        */

/*
 * Linear probing with backward-shift deletion, at most half full. The home
 * bucket depends on the network only, so the (at most 33) prefixes sharing a
 * network share a probe run and moving a bucket needs no slot access.
 *
 * Growth is incremental so no single write pays for a rehash: the full array
 * becomes `old`, a twice larger zeroed one takes its place, and every write
 * then moves MIGRATE_STEP old buckets (leaving TOMBSTONEs so the old probe
 * runs stay intact). Lookups probe the new array, then the old one. A growth
 * happens after at least old_cap/2 more inserts, by when the migration
 * (old_cap/MIGRATE_STEP writes) is long finished.
 */

static inline uint32_t
home_at(unsigned shift, uint32_t network)
{
    return (uint32_t)(((uint64_t)network * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
}

static inline uint32_t
home_of(const Lpm *t, uint32_t network)
{
    return home_at(t->hash_shift, network);
}

static inline void
prefetch(const void *p)
{
#if defined(__GNUC__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

static uint32_t
probe_array(const Lpm *t, const Bucket *b, uint32_t cap, uint32_t i, uint32_t network,
            unsigned len)
{
    for (;; i = (i + 1) & (cap - 1)) {
        uint32_t tag = b[i].tag;
        if (tag == 0)
            return NO_OWNER;
        if (tag != TOMBSTONE && b[i].network == network && t->slots[tag - 1].len == len)
            return tag - 1;
    }
}

/* Slot of (network, len) or NO_OWNER; home is its bucket in the current array. */
static uint32_t
probe(const Lpm *t, uint32_t home, uint32_t network, unsigned len)
{
    uint32_t sid = probe_array(t, t->buckets, t->buckets_cap, home, network, len);
    if (sid == NO_OWNER && t->old != NULL)
        sid = probe_array(t, t->old, t->old_cap, home_at(t->old_shift, network), network, len);
    return sid;
}

static uint32_t
hash_find(const Lpm *t, uint32_t network, unsigned len)
{
    return probe(t, home_of(t, network), network, len);
}

static void
bucket_put(Lpm *t, uint32_t network, uint32_t tag)
{
    uint32_t mask = t->buckets_cap - 1;
    uint32_t i = home_of(t, network);
    while (t->buckets[i].tag != 0)
        i = (i + 1) & mask;
    t->buckets[i] = (Bucket){.network = network, .tag = tag};
}

static void
hash_put(Lpm *t, uint32_t sid)
{
    bucket_put(t, t->slots[sid].network, sid + 1);
}

static void
hash_delete(Lpm *t, uint32_t sid)
{
    uint32_t network = t->slots[sid].network, mask = t->buckets_cap - 1;
    uint32_t i = home_of(t, network);
    while (t->buckets[i].tag != sid + 1) {
        if (t->buckets[i].tag == 0) {
            /* Not migrated yet: bury it in the old array. */
            uint32_t old_mask = t->old_cap - 1;
            uint32_t j = home_at(t->old_shift, network);
            while (t->old[j].tag != sid + 1)
                j = (j + 1) & old_mask;
            t->old[j].tag = TOMBSTONE;
            return;
        }
        i = (i + 1) & mask;
    }
    /* Shift later members of the probe run back so no lookup stops early. */
    for (uint32_t j = (i + 1) & mask; t->buckets[j].tag != 0; j = (j + 1) & mask) {
        uint32_t home = home_of(t, t->buckets[j].network);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->buckets[i] = t->buckets[j];
            i = j;
        }
    }
    t->buckets[i].tag = 0;
}

/* Move up to `steps` old buckets into the current array. */
static void
hash_migrate(Lpm *t, uint32_t steps)
{
    if (t->old == NULL)
        return;
    uint32_t stop = t->old_cap - t->migrated > steps ? t->migrated + steps : t->old_cap;
    for (uint32_t i = t->migrated; i < stop; i++) {
        Bucket *b = &t->old[i];
        if (b->tag != 0 && b->tag != TOMBSTONE) {
            bucket_put(t, b->network, b->tag);
            b->tag = TOMBSTONE;
        }
    }
    t->migrated = stop;
    if (stop == t->old_cap) {
        region_free(t->old, (size_t)t->old_cap * sizeof(Bucket));
        t->old = NULL;
        t->old_cap = 0;
    }
}

/* Make room for `want` prefixes at load <= 1/2, starting a migration if needed. */
static int
hash_reserve(Lpm *t, uint32_t want)
{
    uint64_t cap = 16;
    unsigned bits = 4;
    while (cap < (uint64_t)want * 2) {
        cap <<= 1;
        bits++;
    }
    if (t->buckets != NULL && cap <= t->buckets_cap)
        return 0;
    Bucket *buckets = region_alloc((size_t)cap * sizeof(Bucket));
    if (buckets == NULL)
        return -1;
    hash_migrate(t, UINT32_MAX); /* finish a previous growth (not reached in practice) */
    t->old = t->buckets;
    t->old_cap = t->buckets_cap;
    t->old_shift = t->hash_shift;
    t->migrated = 0;
    t->buckets = buckets;
    t->buckets_cap = (uint32_t)cap;
    t->hash_shift = 64 - bits;
    if (t->old_cap == 0)
        t->old = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Prefix slots                                                              */

static int
slots_reserve(Lpm *t, uint32_t want)
{
    if (want <= t->slots_cap)
        return 0;
    uint64_t cap = t->slots_cap ? t->slots_cap : (want > 16 ? want : 16);
    while (cap < want)
        cap += cap / 2;
    Prefix *slots = region_grow(t->slots, (size_t)t->slots_cap * sizeof(Prefix),
                                (size_t)cap * sizeof(Prefix));
    if (slots == NULL)
        return -1;
    t->slots = slots;
    t->slots_cap = (uint32_t)cap;
    return 0;
}

/* Take a slot; the caller reserved room for it. */
static uint32_t
slot_take(Lpm *t, uint32_t network, unsigned len, int32_t value)
{
    uint32_t sid;
    if (t->free_head >= 0) {
        sid = (uint32_t)t->free_head;
        t->free_head = t->slots[sid].value;
    }
    else {
        sid = t->slots_used++;
    }
    t->slots[sid] = (Prefix){.network = network, .value = value, .len = (uint8_t)len};
    t->len_count[len]++;
    t->count++;
    return sid;
}

static void
slot_release(Lpm *t, uint32_t sid)
{
    t->len_count[t->slots[sid].len]--;
    t->count--;
    t->slots[sid] = (Prefix){.network = 0, .value = t->free_head, .len = FREE_SLOT};
    t->free_head = (int32_t)sid;
}

/* ------------------------------------------------------------------------ */
/* Interval chunks                                                           */

static int
chunks_reserve(Lpm *t, uint32_t want)
{
    if (want <= t->chunks_cap)
        return 0;
    uint64_t cap = t->chunks_cap ? t->chunks_cap : 8;
    while (cap < want)
        cap *= 2;
    Chunk **chunks = PyMem_RawRealloc(t->chunks, (size_t)cap * sizeof(Chunk *));
    if (chunks == NULL)
        return -1;
    t->chunks = chunks;
    uint32_t *first_keys = PyMem_RawRealloc(t->first_keys, (size_t)cap * sizeof(uint32_t));
    if (first_keys == NULL)
        return -1;
    t->first_keys = first_keys;
    t->chunks_cap = (uint32_t)cap;
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

/* Index of the last key <= x in chunk c, given c->keys[0] <= x. */
static inline uint32_t
chunk_find(const Chunk *c, uint32_t x)
{
    uint32_t block = last_le(c->fence, (c->n + FENCE_STRIDE - 1) / FENCE_STRIDE, x);
    uint32_t start = block * FENCE_STRIDE;
    uint32_t len = c->n - start < FENCE_STRIDE ? c->n - start : FENCE_STRIDE;
    return start + last_le(&c->keys[start], len, x);
}

static int
spares_reserve(Lpm *t)
{
    while (t->nspare < 2) {
        Chunk *c = chunk_alloc();
        if (c == NULL)
            return -1;
        t->spare[t->nspare++] = c;
    }
    return 0;
}

static void
chunk_discard(Lpm *t, Chunk *c)
{
    if (t->nspare < 2)
        t->spare[t->nspare++] = c;
    else
        free(c);
}

static void
directory_insert(Lpm *t, uint32_t at, Chunk *c)
{
    size_t tail = t->nchunks - at;
    memmove(&t->chunks[at + 1], &t->chunks[at], tail * sizeof(Chunk *));
    memmove(&t->first_keys[at + 1], &t->first_keys[at], tail * sizeof(uint32_t));
    t->chunks[at] = c;
    t->first_keys[at] = c->keys[0];
    t->nchunks++;
}

static void
directory_delete(Lpm *t, uint32_t at)
{
    size_t tail = t->nchunks - at - 1;
    chunk_discard(t, t->chunks[at]);
    memmove(&t->chunks[at], &t->chunks[at + 1], tail * sizeof(Chunk *));
    memmove(&t->first_keys[at], &t->first_keys[at + 1], tail * sizeof(uint32_t));
    t->nchunks--;
}

/* Where the interval containing addr is: chunk ci, position pi. */
static inline void
locate(const Lpm *t, uint32_t addr, uint32_t *ci, uint32_t *pi)
{
    *ci = last_le(t->first_keys, t->nchunks, addr);
    *pi = chunk_find(t->chunks[*ci], addr);
}

/* Move the upper half of full chunk ci into a spare chunk placed after it. */
static void
chunk_split(Lpm *t, uint32_t ci)
{
    Chunk *left = t->chunks[ci];
    Chunk *right = t->spare[--t->nspare];
    uint32_t keep = left->n / 2;
    right->n = left->n - keep;
    memcpy(right->keys, &left->keys[keep], right->n * sizeof(uint32_t));
    memcpy(right->owners, &left->owners[keep], right->n * sizeof(uint32_t));
    left->n = keep;
    chunk_refence(right, 0);
    directory_insert(t, ci + 1, right);
}

/* Insert (key, owner) at position pos >= 1 of chunk ci. */
static void
chunk_insert(Lpm *t, uint32_t ci, uint32_t pos, uint32_t key, uint32_t owner)
{
    Chunk *c = t->chunks[ci];
    if (c->n == CHUNK_CAP) {
        chunk_split(t, ci);
        if (pos > c->n) {
            pos -= c->n;
            c = t->chunks[ci + 1];
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
chunk_rebalance(Lpm *t, uint32_t ci)
{
    if (t->chunks[ci]->n >= CHUNK_MIN || t->nchunks == 1)
        return;
    uint32_t li = (ci + 1 < t->nchunks) ? ci : ci - 1;
    Chunk *left = t->chunks[li], *right = t->chunks[li + 1];
    uint32_t total = left->n + right->n;
    if (total <= CHUNK_MERGE) {
        chunk_append(left, right, right->n);
        directory_delete(t, li + 1);
    }
    else if (left->n < right->n) {
        uint32_t move = total / 2 - left->n;
        chunk_append(left, right, move);
        chunk_shift(right, -(int32_t)move);
        t->first_keys[li + 1] = right->keys[0];
    }
    else {
        uint32_t move = total / 2 - right->n;
        chunk_shift(right, (int32_t)move);
        memcpy(right->keys, &left->keys[left->n - move], move * sizeof(uint32_t));
        memcpy(right->owners, &left->owners[left->n - move], move * sizeof(uint32_t));
        left->n -= move;
        chunk_refence(right, 0);
        t->first_keys[li + 1] = right->keys[0];
    }
    t->first_keys[li] = left->keys[0];
}

/* Owner of the interval just before position (ci, pi), which is not (0, 0). */
static uint32_t
owner_before(const Lpm *t, uint32_t ci, uint32_t pi)
{
    const Chunk *c = pi > 0 ? t->chunks[ci] : t->chunks[ci - 1];
    return c->owners[pi > 0 ? pi - 1 : c->n - 1];
}

/* Make sure an interval starts at addr (splitting the one containing it). */
static void
cut_at(Lpm *t, uint32_t addr)
{
    uint32_t ci, pi;
    locate(t, addr, &ci, &pi);
    const Chunk *c = t->chunks[ci];
    if (c->keys[pi] != addr)
        chunk_insert(t, ci, pi + 1, addr, c->owners[pi]);
}

/* Drop the interval start addr (> 0) if the interval before has the same owner. */
static void
uncut_at(Lpm *t, uint32_t addr)
{
    uint32_t ci, pi;
    locate(t, addr, &ci, &pi);
    Chunk *c = t->chunks[ci];
    if (c->keys[pi] != addr)
        return;
    if (owner_before(t, ci, pi) != c->owners[pi])
        return;
    size_t tail = c->n - pi - 1;
    memmove(&c->keys[pi], &c->keys[pi + 1], tail * sizeof(uint32_t));
    memmove(&c->owners[pi], &c->owners[pi + 1], tail * sizeof(uint32_t));
    c->n--;
    chunk_refence(c, pi);
    if (pi == 0 && c->n > 0)
        t->first_keys[ci] = c->keys[0];
    chunk_rebalance(t, ci);
}

/*
 * Visit every interval from position (ci, pi) on whose start is <= hi and
 * replace its owner by new_owner where should_change() says so.
 */
typedef bool (*owner_test)(const Lpm *t, uint32_t owner, uint32_t arg);

static void
reassign(Lpm *t, uint32_t ci, uint32_t pi, uint32_t hi, owner_test should_change, uint32_t arg,
         uint32_t new_owner)
{
    for (; ci < t->nchunks; ci++, pi = 0) {
        Chunk *c = t->chunks[ci];
        for (; pi < c->n; pi++) {
            if (c->keys[pi] > hi)
                return;
            if (should_change(t, c->owners[pi], arg))
                c->owners[pi] = new_owner;
        }
    }
}

static bool
is_shorter_or_none(const Lpm *t, uint32_t owner, uint32_t len)
{
    return owner == NO_OWNER || t->slots[owner].len < len;
}

static bool
is_owner(const Lpm *t, uint32_t owner, uint32_t sid)
{
    (void)t;
    return owner == sid;
}

/* ------------------------------------------------------------------------ */
/* Table operations                                                          */

static void
lpm_free(Lpm *t)
{
    for (uint32_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    for (unsigned i = 0; i < t->nspare; i++)
        free(t->spare[i]);
    PyMem_RawFree(t->chunks);
    PyMem_RawFree(t->first_keys);
    region_free(t->slots, (size_t)t->slots_cap * sizeof(Prefix));
    region_free(t->buckets, (size_t)t->buckets_cap * sizeof(Bucket));
    region_free(t->old, (size_t)t->old_cap * sizeof(Bucket));
    memset(t, 0, sizeof(*t));
}

/* An empty table: one chunk holding the single interval [0, 2^32) with no owner. */
static int
lpm_init_empty(Lpm *t)
{
    memset(t, 0, sizeof(*t));
    t->free_head = -1;
    if (hash_reserve(t, 0) < 0 || chunks_reserve(t, 1) < 0)
        return -1;
    Chunk *c = chunk_alloc();
    if (c == NULL)
        return -1;
    c->n = 1;
    c->keys[0] = 0;
    c->owners[0] = NO_OWNER;
    chunk_refence(c, 0);
    t->chunks[0] = c;
    t->first_keys[0] = 0;
    t->nchunks = 1;
    return 0;
}

static inline uint32_t
lpm_lookup(const Lpm *t, uint32_t addr)
{
    uint32_t ci, pi;
    locate(t, addr, &ci, &pi);
    return t->chunks[ci]->owners[pi];
}

/*
 * A write's first cache misses are independent: the prefix's hash bucket and
 * its place among the intervals. Starting the bucket load before searching
 * the chunk makes the two overlap instead of queueing.
 */
static void
prefetch_write(const Lpm *t, uint32_t network)
{
    prefetch(&t->buckets[home_of(t, network)]);
    uint32_t ci, pi;
    locate(t, network, &ci, &pi);
    prefetch(&t->chunks[ci]->owners[pi]);
}

/* Insert or replace. Returns -1 (table unchanged) if memory ran out. */
static int
lpm_insert(Lpm *t, uint32_t network, unsigned len, int32_t value)
{
    prefetch_write(t, network);
    uint32_t sid = hash_find(t, network, len);
    if (sid != NO_OWNER) {
        t->slots[sid].value = value;
        return 0;
    }
    if (t->count >= MAX_PREFIXES || slots_reserve(t, t->slots_used + 1) < 0
        || hash_reserve(t, t->count + 1) < 0 || chunks_reserve(t, t->nchunks + 2) < 0
        || spares_reserve(t) < 0)
        return -1;
    /* From here on nothing can fail. */
    sid = slot_take(t, network, len, value);
    hash_put(t, sid);
    uint32_t end = prefix_end(network, len);
    if (end != UINT32_MAX)
        cut_at(t, end + 1);
    cut_at(t, network);
    uint32_t ci, pi;
    locate(t, network, &ci, &pi);
    reassign(t, ci, pi, end, is_shorter_or_none, len, sid);
    hash_migrate(t, MIGRATE_STEP);
    return 0;
}

static inline bool
contains(const Prefix *q, uint32_t network, unsigned len)
{
    return q->len < len && (network & prefix_mask(q->len)) == q->network;
}

/*
 * The parent of P = [a, b] is the longest present prefix strictly containing
 * it. A parent Q contains a-1 or b+1 (it is larger than P), so the owner of
 * that address, `left` or `right` (NO_OWNER past either end of the address
 * space), lies in Q's subtree. Hence:
 *  - both NO_OWNER: P has no parent, nothing to probe (the usual lone prefix);
 *  - one of them contains P: the parent is the longer such one or a prefix
 *    longer still, so only the lengths in between need probing;
 *  - otherwise probe every shorter length holding any prefix, longest first.
 * The probes' home buckets are prefetched together so their misses overlap.
 */
static uint32_t
lpm_parent(const Lpm *t, uint32_t network, unsigned len, uint32_t left, uint32_t right)
{
    if (left == NO_OWNER && right == NO_OWNER)
        return NO_OWNER;
    uint32_t best = NO_OWNER;
    const uint32_t sides[2] = {left, right};
    for (int i = 0; i < 2; i++) {
        uint32_t o = sides[i];
        if (o != NO_OWNER && contains(&t->slots[o], network, len)
            && (best == NO_OWNER || t->slots[o].len > t->slots[best].len))
            best = o;
    }
    unsigned lo = best == NO_OWNER ? 0 : t->slots[best].len + 1u;
    uint32_t homes[32];
    unsigned lens[32], n = 0;
    for (unsigned l = len; l-- > lo;) {
        if (t->len_count[l] == 0)
            continue;
        homes[n] = home_of(t, network & prefix_mask(l));
        prefetch(&t->buckets[homes[n]]);
        lens[n++] = l;
    }
    for (unsigned k = 0; k < n; k++) {
        uint32_t sid = probe(t, homes[k], network & prefix_mask(lens[k]), lens[k]);
        if (sid != NO_OWNER)
            return sid;
    }
    return best;
}

/* Returns whether the prefix was present. Never allocates. */
static bool
lpm_remove(Lpm *t, uint32_t network, unsigned len)
{
    prefetch(&t->buckets[home_of(t, network)]);
    uint32_t ci, pi, cj, pj;
    locate(t, network, &ci, &pi);
    uint32_t sid = hash_find(t, network, len);
    if (sid == NO_OWNER)
        return false;
    /* P is present, so intervals start at network and (unless it is the top) end + 1. */
    uint32_t end = prefix_end(network, len);
    uint32_t left = network == 0 ? NO_OWNER : owner_before(t, ci, pi);
    uint32_t right = NO_OWNER;
    if (end != UINT32_MAX) {
        locate(t, end + 1, &cj, &pj);
        right = t->chunks[cj]->owners[pj];
    }
    reassign(t, ci, pi, end, is_owner, sid, lpm_parent(t, network, len, left, right));
    if (end != UINT32_MAX)
        uncut_at(t, end + 1);
    if (network != 0)
        uncut_at(t, network);
    hash_delete(t, sid);
    slot_release(t, sid);
    hash_migrate(t, MIGRATE_STEP);
    return true;
}

static size_t
lpm_memory(const Lpm *t)
{
    return (size_t)t->slots_cap * sizeof(Prefix)
           + ((size_t)t->buckets_cap + t->old_cap) * sizeof(Bucket)
           + (size_t)t->chunks_cap * (sizeof(Chunk *) + sizeof(uint32_t))
           + ((size_t)t->nchunks + t->nspare) * sizeof(Chunk);
}

/* ------------------------------------------------------------------------ */
/* Bulk build (runs without the GIL: plain C, raw allocator only)           */

typedef struct {
    uint32_t network;
    int32_t value;
    uint8_t len;
} Record;

typedef enum { BUILD_OK, BUILD_NOMEM, BUILD_BADLEN, BUILD_HOSTBITS, BUILD_BADVALUE } BuildStatus;

static uint32_t
read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Stable LSD radix sort by (network, len): a pass on len, then 4 on network bytes. */
static void
radix_sort(Record *recs, Record *tmp, size_t n)
{
    for (int pass = 0; pass < 5; pass++) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++) {
            unsigned b = pass == 0 ? recs[i].len : (recs[i].network >> (8 * (pass - 1))) & 0xFF;
            count[b + 1]++;
        }
        if (count[1 + (pass == 0 ? recs[0].len : (recs[0].network >> (8 * (pass - 1))) & 0xFF)]
            == n)
            continue; /* every record has the same byte: the pass would not move anything */
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) {
            unsigned b = pass == 0 ? recs[i].len : (recs[i].network >> (8 * (pass - 1))) & 0xFF;
            tmp[count[b]++] = recs[i];
        }
        memcpy(recs, tmp, n * sizeof(Record));
    }
}

/* Append an interval start, keeping the list canonical (no equal neighbours). */
static void
emit(uint32_t *keys, uint32_t *owners, size_t *n, uint32_t key, uint32_t owner)
{
    size_t last = *n - 1;
    if (keys[last] == key) {
        owners[last] = owner;
        if (last > 0 && owners[last - 1] == owner)
            (*n)--;
    }
    else if (owners[last] != owner) {
        keys[*n] = key;
        owners[*n] = owner;
        (*n)++;
    }
}

/*
 * Sweep the prefixes sorted by (start, length): this is a depth-first walk of
 * the containment tree, so a stack of open prefixes (at most 33 deep, as
 * nested distinct prefixes have distinct lengths) gives the owner of every
 * point where ownership can change.
 */
static size_t
sweep_intervals(const Lpm *t, uint32_t *keys, uint32_t *owners)
{
    uint32_t stack[33];
    unsigned depth = 0;
    size_t n = 1;
    keys[0] = 0;
    owners[0] = NO_OWNER;
    for (uint32_t sid = 0; sid < t->slots_used; sid++) {
        uint32_t start = t->slots[sid].network;
        while (depth > 0) {
            const Prefix *top = &t->slots[stack[depth - 1]];
            uint32_t end = prefix_end(top->network, top->len);
            if (end >= start)
                break;
            depth--;
            emit(keys, owners, &n, end + 1, depth ? stack[depth - 1] : NO_OWNER);
        }
        emit(keys, owners, &n, start, sid);
        stack[depth++] = sid;
    }
    while (depth > 0) {
        const Prefix *top = &t->slots[stack[--depth]];
        uint32_t end = prefix_end(top->network, top->len);
        if (end != UINT32_MAX)
            emit(keys, owners, &n, end + 1, depth ? stack[depth - 1] : NO_OWNER);
    }
    return n;
}

/* Fill the empty (zeroed) table t from packed records. */
static BuildStatus
lpm_build(Lpm *t, const unsigned char *data, size_t n, size_t *bad_index)
{
    BuildStatus status = BUILD_NOMEM;
    size_t rec_bytes = n * sizeof(Record), int_bytes = 0;
    Record *recs = region_alloc(rec_bytes);
    Record *tmp = region_alloc(rec_bytes);
    uint32_t *keys = NULL, *owners = NULL;
    t->free_head = -1;
    if (recs == NULL || tmp == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = data + i * RECORD_SIZE;
        Record r = {.network = read_le32(p), .value = (int32_t)read_le32(p + 8), .len = p[4]};
        *bad_index = i;
        if (r.len > 32) {
            status = BUILD_BADLEN;
            goto done;
        }
        if (r.network & ~prefix_mask(r.len)) {
            status = BUILD_HOSTBITS;
            goto done;
        }
        if (r.value < 0) {
            status = BUILD_BADVALUE;
            goto done;
        }
        recs[i] = r;
    }
    if (n > 0)
        radix_sort(recs, tmp, n);

    /* Dedupe (the last of equal keys wins: the sort is stable) into slots. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && recs[m - 1].network == recs[i].network && recs[m - 1].len == recs[i].len)
            recs[m - 1] = recs[i];
        else
            recs[m++] = recs[i];
    }
    if (slots_reserve(t, (uint32_t)(m ? m : 1)) < 0 || hash_reserve(t, (uint32_t)m) < 0)
        goto done;
    for (size_t i = 0; i < m; i++) {
        slot_take(t, recs[i].network, recs[i].len, recs[i].value);
        hash_put(t, (uint32_t)i);
    }

    int_bytes = (2 * m + 1) * sizeof(uint32_t);
    keys = region_alloc(int_bytes);
    owners = region_alloc(int_bytes);
    if (keys == NULL || owners == NULL)
        goto done;
    size_t nint = sweep_intervals(t, keys, owners);

    uint32_t nchunks = (uint32_t)((nint + BUILD_FILL - 1) / BUILD_FILL);
    if (chunks_reserve(t, nchunks) < 0)
        goto done;
    size_t pos = 0;
    for (uint32_t ci = 0; ci < nchunks; ci++) {
        Chunk *c = chunk_alloc();
        if (c == NULL)
            goto done;
        /* Spread evenly: chunk ci gets intervals [nint*ci/nchunks, nint*(ci+1)/nchunks). */
        size_t stop = nint * (ci + 1) / nchunks;
        c->n = (uint32_t)(stop - pos);
        memcpy(c->keys, &keys[pos], c->n * sizeof(uint32_t));
        memcpy(c->owners, &owners[pos], c->n * sizeof(uint32_t));
        chunk_refence(c, 0);
        t->chunks[ci] = c;
        t->first_keys[ci] = c->keys[0];
        t->nchunks++;
        pos = stop;
    }
    status = BUILD_OK;
done:
    region_free(recs, rec_bytes);
    region_free(tmp, rec_bytes);
    region_free(keys, int_bytes);
    region_free(owners, int_bytes);
    return status;
}

/* ------------------------------------------------------------------------ */
/* Address parsing                                                           */

/*
 * Strict dotted quad, as Python's ipaddress accepts it: exactly four decimal
 * octets of 1..3 ASCII digits, each <= 255, no leading zero (except "0").
 */
static int
parse_dotted_quad(const char *s, Py_ssize_t n, uint32_t *out)
{
    uint32_t addr = 0;
    Py_ssize_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        Py_ssize_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - start == 3)
                return -1;
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return -1;
        addr = (addr << 8) | v;
    }
    if (i != n)
        return -1;
    *out = addr;
    return 0;
}

/* A dotted quad, optionally behind "::ffff:" (any case). */
static int
parse_address(const char *s, Py_ssize_t n, uint32_t *out)
{
    static const char mapped[] = "::ffff:";
    const Py_ssize_t mlen = (Py_ssize_t)sizeof(mapped) - 1;
    if (n > mlen && s[0] == ':') {
        for (Py_ssize_t i = 0; i < mlen; i++) {
            char c = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + ('a' - 'A')) : s[i];
            if (c != mapped[i])
                return -1;
        }
        return parse_dotted_quad(s + mlen, n - mlen, out);
    }
    return parse_dotted_quad(s, n, out);
}

/* ------------------------------------------------------------------------ */
/* Python argument conversion                                                */

static int
to_u32(PyObject *obj, const char *what, uint32_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be in 0..%s", what,
                     strcmp(what, "value") == 0 ? "2**31-1" : "2**32-1");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* network and prefix_len, checked together: host bits must be zero. */
static int
to_prefix(PyObject *net_obj, PyObject *len_obj, uint32_t *network, unsigned *len)
{
    uint32_t l;
    if (to_u32(net_obj, "network", network) < 0)
        return -1;
    if (!PyLong_Check(len_obj)) {
        PyErr_Format(PyExc_TypeError, "prefix_len must be an int, not %.100s",
                     Py_TYPE(len_obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(len_obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > 32) {
        PyErr_SetString(PyExc_ValueError, "prefix_len must be in 0..32");
        return -1;
    }
    l = (uint32_t)v;
    if (*network & ~prefix_mask(l)) {
        PyErr_Format(PyExc_ValueError, "network has host bits set for prefix length %u", l);
        return -1;
    }
    *len = l;
    return 0;
}

static int
to_value(PyObject *obj, int32_t *out)
{
    uint32_t v;
    if (to_u32(obj, "value", &v) < 0)
        return -1;
    if (v > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "value must be in 0..2**31-1");
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/*
 * Unpack exactly n arguments given by position or keyword (METH_FASTCALL |
 * METH_KEYWORDS). The common all-positional call costs one comparison.
 */
static int
unpack_args(const char *fname, const char *const *names, Py_ssize_t n, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    if (kwnames == NULL && nargs == n) {
        memcpy(out, args, (size_t)n * sizeof(PyObject *));
        return 0;
    }
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", fname, n, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == n || out[i] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         i == n ? "%s() got an unexpected keyword argument '%U'"
                                : "%s() got multiple values for argument '%U'",
                         fname, key);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The Table4 type                                                           */

typedef struct {
    PyObject_HEAD
    Lpm lpm;
} Table4Object;

static PyTypeObject Table4Type;

static PyObject *
Table4_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Table4() takes no arguments");
        return NULL;
    }
    Table4Object *self = (Table4Object *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (lpm_init_empty(&self->lpm) < 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void
Table4_dealloc(Table4Object *self)
{
    lpm_free(&self->lpm);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *const PREFIX_ARGS[] = {"network", "prefix_len", "value"};

static PyObject *
Table4_insert(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3];
    uint32_t network;
    unsigned len;
    int32_t value;
    if (unpack_args("insert", PREFIX_ARGS, 3, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0 || to_value(a[2], &value) < 0)
        return NULL;
    if (lpm_insert(&self->lpm, network, len, value) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *
Table4_remove(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    uint32_t network;
    unsigned len;
    if (unpack_args("remove", PREFIX_ARGS, 2, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0)
        return NULL;
    return PyBool_FromLong(lpm_remove(&self->lpm, network, len));
}

static PyObject *
Table4_get(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    uint32_t network;
    unsigned len;
    if (unpack_args("get", PREFIX_ARGS, 2, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0)
        return NULL;
    uint32_t sid = hash_find(&self->lpm, network, len);
    return PyLong_FromLong(sid == NO_OWNER ? -1 : self->lpm.slots[sid].value);
}

static inline PyObject *
owner_value(const Lpm *t, uint32_t owner)
{
    return PyLong_FromLong(owner == NO_OWNER ? -1 : t->slots[owner].value);
}

static PyObject *
Table4_lookup(Table4Object *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "address must be a str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0)
        return NULL;
#endif
    uint32_t addr;
    /* Only ASCII strings can be addresses; their characters are bytes. */
    if (!PyUnicode_IS_ASCII(arg)
        || parse_address((const char *)PyUnicode_DATA(arg), PyUnicode_GET_LENGTH(arg), &addr) < 0)
        return PyLong_FromLong(-2);
    return owner_value(&self->lpm, lpm_lookup(&self->lpm, addr));
}

static PyObject *
Table4_lookup_int(Table4Object *self, PyObject *arg)
{
    uint32_t addr;
    if (to_u32(arg, "address", &addr) < 0)
        return NULL;
    return owner_value(&self->lpm, lpm_lookup(&self->lpm, addr));
}

static PyObject *
Table4_memory_bytes(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(sizeof(Table4Object) + lpm_memory(&self->lpm));
}

static PyObject *
Table4_items(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    const Lpm *t = &self->lpm;
    size_t n = t->count, rec_bytes = n * sizeof(Record);
    Record *recs = region_alloc(rec_bytes);
    Record *tmp = region_alloc(rec_bytes);
    PyObject *list = NULL;
    if (recs == NULL || tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size_t k = 0;
    for (uint32_t sid = 0; sid < t->slots_used; sid++) {
        const Prefix *p = &t->slots[sid];
        if (p->len != FREE_SLOT)
            recs[k++] = (Record){.network = p->network, .value = p->value, .len = p->len};
    }
    if (n > 0)
        radix_sort(recs, tmp, n);
    list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue("(kIi)", (unsigned long)recs[i].network,
                                       (unsigned int)recs[i].len, (int)recs[i].value);
        if (item == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
done:
    region_free(recs, rec_bytes);
    region_free(tmp, rec_bytes);
    return list;
}

static PyObject *
Table4_build(PyObject *Py_UNUSED(cls), PyObject *arg)
{
    Py_buffer view;
    if (PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "entries must be bytes-like, not str");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Table4Object *self = NULL;
    if (view.len % RECORD_SIZE != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "entries must be a whole number of '<IB3xi' records (12 bytes each)");
        goto done;
    }
    size_t n = (size_t)view.len / RECORD_SIZE;
    if (n > MAX_PREFIXES) {
        PyErr_SetString(PyExc_ValueError, "too many entries");
        goto done;
    }
    self = (Table4Object *)Table4Type.tp_alloc(&Table4Type, 0);
    if (self == NULL)
        goto done;
    size_t bad = 0;
    BuildStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = lpm_build(&self->lpm, view.buf, n, &bad);
    Py_END_ALLOW_THREADS
    if (status != BUILD_OK) {
        if (status == BUILD_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_ValueError, "entry %zu: %s", bad,
                         status == BUILD_BADLEN     ? "prefix_len must be in 0..32"
                         : status == BUILD_HOSTBITS ? "network has host bits set"
                                                    : "value must be in 0..2**31-1");
        Py_CLEAR(self);
    }
done:
    PyBuffer_Release(&view);
    return (PyObject *)self;
}

static Py_ssize_t
Table4_len(Table4Object *self)
{
    return (Py_ssize_t)self->lpm.count;
}

/* Debug aid for tests and the benchmark: verify every structural invariant
 * (AssertionError on a breach) and return a few figures about the layout. */
static PyObject *
Table4_check(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    const Lpm *t = &self->lpm;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            PyErr_SetString(PyExc_AssertionError, "Table4 invariant: " #cond);   \
            return NULL;                                                         \
        }                                                                        \
    } while (0)
    CHECK(t->nchunks >= 1 && t->first_keys[0] == 0);
    uint32_t prev_key = 0, prev_owner = NO_OWNER;
    bool first = true;
    for (uint32_t ci = 0; ci < t->nchunks; ci++) {
        const Chunk *c = t->chunks[ci];
        CHECK(c->n >= 1 && c->n <= CHUNK_CAP);
        CHECK(t->nchunks == 1 || c->n >= CHUNK_MIN);
        CHECK(t->first_keys[ci] == c->keys[0]);
        for (uint32_t j = 0; j * FENCE_STRIDE < c->n; j++)
            CHECK(c->fence[j] == c->keys[j * FENCE_STRIDE]);
        for (uint32_t pi = 0; pi < c->n; pi++) {
            uint32_t owner = c->owners[pi];
            CHECK(owner == NO_OWNER || (owner < t->slots_used && t->slots[owner].len != FREE_SLOT));
            if (first)
                CHECK(c->keys[pi] == 0);
            else
                CHECK(c->keys[pi] > prev_key && owner != prev_owner);
            first = false;
            prev_key = c->keys[pi];
            prev_owner = owner;
        }
    }
    uint32_t live = 0, per_len[33] = {0};
    for (uint32_t sid = 0; sid < t->slots_used; sid++) {
        const Prefix *p = &t->slots[sid];
        if (p->len == FREE_SLOT)
            continue;
        live++;
        CHECK(p->len <= 32);
        per_len[p->len]++;
        CHECK(hash_find(t, p->network, p->len) == sid);
    }
    CHECK(live == t->count);
    CHECK(memcmp(per_len, t->len_count, sizeof(per_len)) == 0);
    uint32_t occupied = 0;
    for (uint32_t i = 0; i < t->buckets_cap; i++) {
        CHECK(t->buckets[i].tag != TOMBSTONE);
        occupied += t->buckets[i].tag != 0;
    }
    for (uint32_t i = 0; t->old != NULL && i < t->old_cap; i++) {
        CHECK(i >= t->migrated || t->old[i].tag == 0 || t->old[i].tag == TOMBSTONE);
        occupied += t->old[i].tag != 0 && t->old[i].tag != TOMBSTONE;
    }
    CHECK(occupied == t->count && (uint64_t)t->count * 2 <= t->buckets_cap);
#undef CHECK
    size_t intervals = 0;
    for (uint32_t ci = 0; ci < t->nchunks; ci++)
        intervals += t->chunks[ci]->n;
    return Py_BuildValue("{sIsnsO}", "chunks", (unsigned int)t->nchunks, "intervals",
                         (Py_ssize_t)intervals, "migrating", t->old != NULL ? Py_True : Py_False);
}

static PyMethodDef Table4_methods[] = {
    {"insert", (PyCFunction)(void (*)(void))Table4_insert, METH_FASTCALL | METH_KEYWORDS,
     "insert(network, prefix_len, value): add a prefix or replace its value."},
    {"remove", (PyCFunction)(void (*)(void))Table4_remove, METH_FASTCALL | METH_KEYWORDS,
     "remove(network, prefix_len) -> bool: False if the prefix was absent."},
    {"get", (PyCFunction)(void (*)(void))Table4_get, METH_FASTCALL | METH_KEYWORDS,
     "get(network, prefix_len) -> int: the exact entry's value, or -1."},
    {"lookup", (PyCFunction)Table4_lookup, METH_O,
     "lookup(address: str) -> int: value of the longest matching prefix, -1 if none, "
     "-2 if the string is not an IPv4 (or ::ffff:-mapped) address."},
    {"lookup_int", (PyCFunction)Table4_lookup_int, METH_O,
     "lookup_int(address: int) -> int: like lookup() for an int address."},
    {"memory_bytes", (PyCFunction)Table4_memory_bytes, METH_NOARGS,
     "Bytes of C memory held by the table."},
    {"items", (PyCFunction)Table4_items, METH_NOARGS,
     "Sorted list of (network, prefix_len, value)."},
    {"build", (PyCFunction)Table4_build, METH_O | METH_STATIC,
     "build(entries: bytes) -> Table4 from packed '<IB3xi' records; releases the GIL."},
    {"_check", (PyCFunction)Table4_check, METH_NOARGS,
     "Verify internal invariants (AssertionError on a breach); return layout figures."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Table4_as_sequence = {
    .sq_length = (lenfunc)Table4_len,
};

static PyTypeObject Table4Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipmap.recognize._lpm.Table4",
    .tp_doc = "IPv4 longest-prefix-match table mapping networks to int values.",
    .tp_basicsize = sizeof(Table4Object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Table4_new,
    .tp_dealloc = (destructor)Table4_dealloc,
    .tp_methods = Table4_methods,
    .tp_as_sequence = &Table4_as_sequence,
};

static struct PyModuleDef lpm_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sipmap.recognize._lpm",
    .m_doc = "IPv4 longest-prefix-match table in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__lpm(void)
{
    if (PyType_Ready(&Table4Type) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&lpm_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Table4", (PyObject *)&Table4Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
