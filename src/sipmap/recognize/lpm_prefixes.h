/*
 * lpm_prefixes.h - the prefixes of an LPM table: slots and a hash map.
 *
 * Each prefix lives in a slot, an array entry (network, length, value)
 * indexed by a slot id; values live only here, so replacing one is O(1).
 * Freed slots form a free list threaded through their value field. An
 * open-addressing hash map finds the slot of (network, length); see
 * lpm_prefixes.c for its probing and incremental growth. Lookups and
 * additions are inline here: every table write and get() looks a prefix up,
 * and a bulk build adds one per entry.
 *
 * Nothing here needs the GIL; allocation failures are reported as -1 with
 * the set untouched, so callers can reserve room before changing anything.
 */
#ifndef SIPMAP_LPM_PREFIXES_H
#define SIPMAP_LPM_PREFIXES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NO_OWNER UINT32_MAX           /* no slot: a free interval, a prefix not found */
#define FREE_SLOT 0xFFu               /* Prefix.len of a free slot */
#define TOMBSTONE UINT32_MAX          /* Bucket.tag of a bucket emptied during migration */
#define MIGRATE_STEP 8u               /* old buckets moved per write while the hash grows */
#define MAX_PREFIXES (UINT32_MAX / 4) /* keeps slot ids and hash sizes in range */

typedef struct {
    uint32_t network;
    int32_t value;   /* free slot: id of the next free slot, or -1 */
    uint8_t len;     /* FREE_SLOT for a free slot */
} Prefix;

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
} PrefixSet;

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

/* ------------------------------------------------------------------------ */
/* Hash lookups                                                              */

static inline uint32_t
home_at(unsigned shift, uint32_t network)
{
    return (uint32_t)(((uint64_t)network * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
}

/* The home bucket of network in the current array. */
static inline uint32_t
home_of(const PrefixSet *s, uint32_t network)
{
    return home_at(s->hash_shift, network);
}

static inline uint32_t
probe_array(const PrefixSet *s, const Bucket *b, uint32_t cap, uint32_t i, uint32_t network,
            unsigned len)
{
    for (;; i = (i + 1) & (cap - 1)) {
        uint32_t tag = b[i].tag;
        if (tag == 0)
            return NO_OWNER;
        if (tag != TOMBSTONE && b[i].network == network && s->slots[tag - 1].len == len)
            return tag - 1;
    }
}

/* Slot of (network, len) or NO_OWNER; home is its bucket in the current array. */
static inline uint32_t
probe(const PrefixSet *s, uint32_t home, uint32_t network, unsigned len)
{
    uint32_t sid = probe_array(s, s->buckets, s->buckets_cap, home, network, len);
    if (sid == NO_OWNER && s->old != NULL)
        sid = probe_array(s, s->old, s->old_cap, home_at(s->old_shift, network), network, len);
    return sid;
}

/* Slot of (network, len) or NO_OWNER. */
static inline uint32_t
hash_find(const PrefixSet *s, uint32_t network, unsigned len)
{
    return probe(s, home_of(s, network), network, len);
}

/* ------------------------------------------------------------------------ */
/* Adding a prefix (inline: a bulk build calls these once per entry)         */

static inline void
bucket_put(PrefixSet *s, uint32_t network, uint32_t tag)
{
    uint32_t mask = s->buckets_cap - 1;
    uint32_t i = home_of(s, network);
    while (s->buckets[i].tag != 0)
        i = (i + 1) & mask;
    s->buckets[i] = (Bucket){.network = network, .tag = tag};
}

/* Add slot sid, already filled, to the hash; the caller reserved room. */
static inline void
hash_put(PrefixSet *s, uint32_t sid)
{
    bucket_put(s, s->slots[sid].network, sid + 1);
}

/* Take a slot for a new prefix; the caller reserved room. Returns its id. */
static inline uint32_t
slot_take(PrefixSet *s, uint32_t network, unsigned len, int32_t value)
{
    uint32_t sid;
    if (s->free_head >= 0) {
        sid = (uint32_t)s->free_head;
        s->free_head = s->slots[sid].value;
    }
    else {
        sid = s->slots_used++;
    }
    s->slots[sid] = (Prefix){.network = network, .value = value, .len = (uint8_t)len};
    s->len_count[len]++;
    s->count++;
    return sid;
}

/* ------------------------------------------------------------------------ */
/* Other changes (lpm_prefixes.c)                                            */

/* Make room for `want` prefixes in the hash (0, or -1 if memory ran out). */
int hash_reserve(PrefixSet *s, uint32_t want);

/* Remove live slot sid from the hash. */
void hash_delete(PrefixSet *s, uint32_t sid);

/* Move up to `steps` buckets of a growing hash into its new array. */
void hash_migrate(PrefixSet *s, uint32_t steps);

/* Make room for `want` slots (0, or -1 if memory ran out). */
int slots_reserve(PrefixSet *s, uint32_t want);

/* Free slot sid (the caller removed it from the hash). */
void slot_release(PrefixSet *s, uint32_t sid);

/* An empty set with no arrays yet (hash_reserve() makes the first). */
void prefixes_init(PrefixSet *s);

void prefixes_free(PrefixSet *s);

/* Bytes allocated for slots and buckets. */
size_t prefixes_memory(const PrefixSet *s);

/* The first broken invariant of the slots and the hash, as C source, or NULL. */
const char *prefixes_check(const PrefixSet *s);

/* In a *_check function: return the source text of the first condition that fails. */
#define CHECK(cond)       \
    do {                  \
        if (!(cond))      \
            return #cond; \
    } while (0)

#endif
