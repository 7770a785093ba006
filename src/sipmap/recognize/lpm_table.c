/*
 * lpm_table.c - writes to the LPM table: how inserting or removing a prefix
 * changes the owners of the intervals (layout in lpm_table.h).
 *
 * Strategy
 * --------
 * Insert P = [a, b] of length L: cut intervals at a and b+1, then every
 * interval inside [a, b] that has no owner or an owner shorter than L now
 * belongs to P. Remove P: every interval owned by P goes to P's parent (the
 * longest present prefix strictly containing P; see lpm_parent() for how the
 * owners just outside P usually spare the hash probes), then the cuts at a
 * and b+1 are dropped if the owners on both sides became equal. Both walk
 * every interval inside P, so a short prefix covering many longer ones (a /8
 * over 100k /32s) costs time proportional to what it covers; /32 and /24
 * writes touch one or two chunks. The hash map grows incrementally (see
 * lpm_prefixes.c), so no single write pays for a rehash.
 *
 * All memory an insert may need (slot, hash growth, directory room, two
 * spare chunks for splits) is reserved BEFORE the first change, so an
 * allocation failure leaves the table untouched; a remove allocates nothing.
 */

#include <string.h>

#include "lpm_table.h"

static inline void
prefetch(const void *p)
{
#if defined(__GNUC__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/* ------------------------------------------------------------------------ */
/* Intervals                                                                 */

/* Owner of the interval just before position (ci, pi), which is not (0, 0). */
static uint32_t
owner_before(const Intervals *iv, uint32_t ci, uint32_t pi)
{
    const Chunk *c = pi > 0 ? iv->chunks[ci] : iv->chunks[ci - 1];
    return c->owners[pi > 0 ? pi - 1 : c->n - 1];
}

/* Make sure an interval starts at addr (splitting the one containing it). */
static void
cut_at(Intervals *iv, uint32_t addr)
{
    uint32_t ci, pi;
    locate(iv, addr, &ci, &pi);
    const Chunk *c = iv->chunks[ci];
    if (c->keys[pi] != addr)
        chunk_insert(iv, ci, pi + 1, addr, c->owners[pi]);
}

/* Drop the interval start addr (> 0) if the interval before has the same owner. */
static void
uncut_at(Intervals *iv, uint32_t addr)
{
    uint32_t ci, pi;
    locate(iv, addr, &ci, &pi);
    const Chunk *c = iv->chunks[ci];
    if (c->keys[pi] != addr)
        return;
    if (owner_before(iv, ci, pi) != c->owners[pi])
        return;
    chunk_delete(iv, ci, pi);
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
    for (; ci < t->iv.nchunks; ci++, pi = 0) {
        Chunk *c = t->iv.chunks[ci];
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
    return owner == NO_OWNER || t->set.slots[owner].len < len;
}

static bool
is_owner(const Lpm *t, uint32_t owner, uint32_t sid)
{
    (void)t;
    return owner == sid;
}

/* ------------------------------------------------------------------------ */
/* Table operations                                                          */

void
lpm_free(Lpm *t)
{
    intervals_free(&t->iv);
    prefixes_free(&t->set);
}

int
lpm_init_empty(Lpm *t)
{
    memset(t, 0, sizeof(*t));
    prefixes_init(&t->set);
    if (hash_reserve(&t->set, 0) < 0 || intervals_init(&t->iv, NO_OWNER) < 0)
        return -1;
    return 0;
}

/*
 * A write's first cache misses are independent: the prefix's hash bucket and
 * its place among the intervals. Starting the bucket load before searching
 * the chunk makes the two overlap instead of queueing.
 */
static void
prefetch_write(const Lpm *t, uint32_t network)
{
    prefetch(&t->set.buckets[home_of(&t->set, network)]);
    uint32_t ci, pi;
    locate(&t->iv, network, &ci, &pi);
    prefetch(&t->iv.chunks[ci]->owners[pi]);
}

int
lpm_insert(Lpm *t, uint32_t network, unsigned len, int32_t value)
{
    PrefixSet *s = &t->set;
    prefetch_write(t, network);
    uint32_t sid = hash_find(s, network, len);
    if (sid != NO_OWNER) {
        s->slots[sid].value = value;
        return 0;
    }
    if (s->count >= MAX_PREFIXES || slots_reserve(s, s->slots_used + 1) < 0
        || hash_reserve(s, s->count + 1) < 0 || intervals_reserve(&t->iv) < 0)
        return -1;
    /* From here on nothing can fail. */
    sid = slot_take(s, network, len, value);
    hash_put(s, sid);
    uint32_t end = prefix_end(network, len);
    if (end != UINT32_MAX)
        cut_at(&t->iv, end + 1);
    cut_at(&t->iv, network);
    uint32_t ci, pi;
    locate(&t->iv, network, &ci, &pi);
    reassign(t, ci, pi, end, is_shorter_or_none, len, sid);
    hash_migrate(s, MIGRATE_STEP);
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
lpm_parent(const PrefixSet *s, uint32_t network, unsigned len, uint32_t left, uint32_t right)
{
    if (left == NO_OWNER && right == NO_OWNER)
        return NO_OWNER;
    uint32_t best = NO_OWNER;
    const uint32_t sides[2] = {left, right};
    for (int i = 0; i < 2; i++) {
        uint32_t o = sides[i];
        if (o != NO_OWNER && contains(&s->slots[o], network, len)
            && (best == NO_OWNER || s->slots[o].len > s->slots[best].len))
            best = o;
    }
    unsigned lo = best == NO_OWNER ? 0 : s->slots[best].len + 1u;
    uint32_t homes[32];
    unsigned lens[32], n = 0;
    for (unsigned l = len; l-- > lo;) {
        if (s->len_count[l] == 0)
            continue;
        homes[n] = home_of(s, network & prefix_mask(l));
        prefetch(&s->buckets[homes[n]]);
        lens[n++] = l;
    }
    for (unsigned k = 0; k < n; k++) {
        uint32_t sid = probe(s, homes[k], network & prefix_mask(lens[k]), lens[k]);
        if (sid != NO_OWNER)
            return sid;
    }
    return best;
}

bool
lpm_remove(Lpm *t, uint32_t network, unsigned len)
{
    PrefixSet *s = &t->set;
    Intervals *iv = &t->iv;
    prefetch(&s->buckets[home_of(s, network)]);
    uint32_t ci, pi, cj, pj;
    locate(iv, network, &ci, &pi);
    uint32_t sid = hash_find(s, network, len);
    if (sid == NO_OWNER)
        return false;
    /* P is present, so intervals start at network and (unless it is the top) end + 1. */
    uint32_t end = prefix_end(network, len);
    uint32_t left = network == 0 ? NO_OWNER : owner_before(iv, ci, pi);
    uint32_t right = NO_OWNER;
    if (end != UINT32_MAX) {
        locate(iv, end + 1, &cj, &pj);
        right = iv->chunks[cj]->owners[pj];
    }
    reassign(t, ci, pi, end, is_owner, sid, lpm_parent(s, network, len, left, right));
    if (end != UINT32_MAX)
        uncut_at(iv, end + 1);
    if (network != 0)
        uncut_at(iv, network);
    hash_delete(s, sid);
    slot_release(s, sid);
    hash_migrate(s, MIGRATE_STEP);
    return true;
}

size_t
lpm_memory(const Lpm *t)
{
    return prefixes_memory(&t->set) + intervals_memory(&t->iv);
}

const char *
lpm_check(const Lpm *t)
{
    const PrefixSet *s = &t->set;
    const Intervals *iv = &t->iv;
    CHECK(iv->nchunks >= 1 && iv->first_keys[0] == 0);
    uint32_t prev_key = 0, prev_owner = NO_OWNER;
    bool first = true;
    for (uint32_t ci = 0; ci < iv->nchunks; ci++) {
        const Chunk *c = iv->chunks[ci];
        CHECK(c->n >= 1 && c->n <= CHUNK_CAP);
        CHECK(iv->nchunks == 1 || c->n >= CHUNK_MIN);
        CHECK(iv->first_keys[ci] == c->keys[0]);
        for (uint32_t j = 0; j * FENCE_STRIDE < c->n; j++)
            CHECK(c->fence[j] == c->keys[j * FENCE_STRIDE]);
        for (uint32_t pi = 0; pi < c->n; pi++) {
            uint32_t owner = c->owners[pi];
            CHECK(owner == NO_OWNER || (owner < s->slots_used && s->slots[owner].len != FREE_SLOT));
            if (first)
                CHECK(c->keys[pi] == 0);
            else
                CHECK(c->keys[pi] > prev_key && owner != prev_owner);
            first = false;
            prev_key = c->keys[pi];
            prev_owner = owner;
        }
    }
    return prefixes_check(s);
}
