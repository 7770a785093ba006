/*
 * lpm_prefixes.c - prefix slots and the hash map (network, len) -> slot id.
 *
 * Strategy
 * --------
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
 *
 * Slots grow by half again when full (an mremap for large arrays, see
 * lpm_region.h); freed slots are reused first.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "lpm_prefixes.h"
#include "lpm_region.h"

/* ------------------------------------------------------------------------ */
/* Hash map                                                                  */

void
hash_delete(PrefixSet *s, uint32_t sid)
{
    uint32_t network = s->slots[sid].network, mask = s->buckets_cap - 1;
    uint32_t i = home_of(s, network);
    while (s->buckets[i].tag != sid + 1) {
        if (s->buckets[i].tag == 0) {
            /* Not migrated yet: bury it in the old array. */
            uint32_t old_mask = s->old_cap - 1;
            uint32_t j = home_at(s->old_shift, network);
            while (s->old[j].tag != sid + 1)
                j = (j + 1) & old_mask;
            s->old[j].tag = TOMBSTONE;
            return;
        }
        i = (i + 1) & mask;
    }
    /* Shift later members of the probe run back so no lookup stops early. */
    for (uint32_t j = (i + 1) & mask; s->buckets[j].tag != 0; j = (j + 1) & mask) {
        uint32_t home = home_of(s, s->buckets[j].network);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            s->buckets[i] = s->buckets[j];
            i = j;
        }
    }
    s->buckets[i].tag = 0;
}

void
hash_migrate(PrefixSet *s, uint32_t steps)
{
    if (s->old == NULL)
        return;
    uint32_t stop = s->old_cap - s->migrated > steps ? s->migrated + steps : s->old_cap;
    for (uint32_t i = s->migrated; i < stop; i++) {
        Bucket *b = &s->old[i];
        if (b->tag != 0 && b->tag != TOMBSTONE) {
            bucket_put(s, b->network, b->tag);
            b->tag = TOMBSTONE;
        }
    }
    s->migrated = stop;
    if (stop == s->old_cap) {
        region_free(s->old, (size_t)s->old_cap * sizeof(Bucket));
        s->old = NULL;
        s->old_cap = 0;
    }
}

/* Room for `want` prefixes at load <= 1/2, starting a migration if needed. */
int
hash_reserve(PrefixSet *s, uint32_t want)
{
    uint64_t cap = 16;
    unsigned bits = 4;
    while (cap < (uint64_t)want * 2) {
        cap <<= 1;
        bits++;
    }
    if (s->buckets != NULL && cap <= s->buckets_cap)
        return 0;
    Bucket *buckets = region_alloc((size_t)cap * sizeof(Bucket));
    if (buckets == NULL)
        return -1;
    hash_migrate(s, UINT32_MAX); /* finish a previous growth (not reached in practice) */
    s->old = s->buckets;
    s->old_cap = s->buckets_cap;
    s->old_shift = s->hash_shift;
    s->migrated = 0;
    s->buckets = buckets;
    s->buckets_cap = (uint32_t)cap;
    s->hash_shift = 64 - bits;
    if (s->old_cap == 0)
        s->old = NULL;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Slots                                                                     */

int
slots_reserve(PrefixSet *s, uint32_t want)
{
    if (want <= s->slots_cap)
        return 0;
    uint64_t cap = s->slots_cap ? s->slots_cap : (want > 16 ? want : 16);
    while (cap < want)
        cap += cap / 2;
    Prefix *slots = region_grow(s->slots, (size_t)s->slots_cap * sizeof(Prefix),
                                (size_t)cap * sizeof(Prefix));
    if (slots == NULL)
        return -1;
    s->slots = slots;
    s->slots_cap = (uint32_t)cap;
    return 0;
}

void
slot_release(PrefixSet *s, uint32_t sid)
{
    s->len_count[s->slots[sid].len]--;
    s->count--;
    s->slots[sid] = (Prefix){.network = 0, .value = s->free_head, .len = FREE_SLOT};
    s->free_head = (int32_t)sid;
}

/* ------------------------------------------------------------------------ */
/* The whole set                                                             */

void
prefixes_init(PrefixSet *s)
{
    memset(s, 0, sizeof(*s));
    s->free_head = -1;
}

void
prefixes_free(PrefixSet *s)
{
    region_free(s->slots, (size_t)s->slots_cap * sizeof(Prefix));
    region_free(s->buckets, (size_t)s->buckets_cap * sizeof(Bucket));
    region_free(s->old, (size_t)s->old_cap * sizeof(Bucket));
    memset(s, 0, sizeof(*s));
}

size_t
prefixes_memory(const PrefixSet *s)
{
    return (size_t)s->slots_cap * sizeof(Prefix)
           + ((size_t)s->buckets_cap + s->old_cap) * sizeof(Bucket);
}

const char *
prefixes_check(const PrefixSet *s)
{
    uint32_t live = 0, per_len[33] = {0};
    for (uint32_t sid = 0; sid < s->slots_used; sid++) {
        const Prefix *p = &s->slots[sid];
        if (p->len == FREE_SLOT)
            continue;
        live++;
        CHECK(p->len <= 32);
        per_len[p->len]++;
        CHECK(hash_find(s, p->network, p->len) == sid);
    }
    CHECK(live == s->count);
    CHECK(memcmp(per_len, s->len_count, sizeof(per_len)) == 0);
    uint32_t occupied = 0;
    for (uint32_t i = 0; i < s->buckets_cap; i++) {
        CHECK(s->buckets[i].tag != TOMBSTONE);
        occupied += s->buckets[i].tag != 0;
    }
    for (uint32_t i = 0; s->old != NULL && i < s->old_cap; i++) {
        CHECK(i >= s->migrated || s->old[i].tag == 0 || s->old[i].tag == TOMBSTONE);
        occupied += s->old[i].tag != 0 && s->old[i].tag != TOMBSTONE;
    }
    CHECK(occupied == s->count && (uint64_t)s->count * 2 <= s->buckets_cap);
    return NULL;
}
