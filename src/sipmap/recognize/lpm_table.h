/*
 * lpm_table.h - the IPv4 longest-prefix-match table: its prefixes
 * (lpm_prefixes.h) and the address intervals they own (lpm_chunks.h).
 *
 * The address space 0..2^32-1 is cut into disjoint intervals, each owned by
 * the slot id of the longest prefix covering it or NO_OWNER. Only interval
 * START addresses are stored, sorted; an interval runs up to the next start.
 * The first start is always 0. The form is canonical: two neighbouring
 * intervals never have the same owner, so the layout depends only on the
 * prefix set. A lookup is one search of the interval store, then one read of
 * the owner and one of its slot; it allocates nothing.
 * Memory: ~8 bytes per interval (a prefix adds at most two), 12 per slot,
 * 16-32 per prefix of hash buckets: about 50 per prefix.
 *
 * Nothing here calls Python code or needs the GIL; callers hold the GIL (or
 * own the table exclusively) so that each write is atomic.
 */
#ifndef SIPMAP_LPM_TABLE_H
#define SIPMAP_LPM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lpm_chunks.h"
#include "lpm_prefixes.h"

typedef struct {
    PrefixSet set; /* the prefixes */
    Intervals iv;  /* the intervals; owners are slot ids in set */
} Lpm;

/* Slot id of the longest prefix containing addr, or NO_OWNER. */
static inline uint32_t
lpm_lookup(const Lpm *t, uint32_t addr)
{
    uint32_t ci, pi;
    locate(&t->iv, addr, &ci, &pi);
    return t->iv.chunks[ci]->owners[pi];
}

/* An empty table: the single interval [0, 2^32) with no owner. 0, or -1 if memory ran
 * out (lpm_free() then releases what was allocated). */
int lpm_init_empty(Lpm *t);

void lpm_free(Lpm *t);

/* Insert or replace. Returns -1 (table unchanged) if memory ran out. */
int lpm_insert(Lpm *t, uint32_t network, unsigned len, int32_t value);

/* Returns whether the prefix was present. Never allocates. */
bool lpm_remove(Lpm *t, uint32_t network, unsigned len);

/* Bytes of C memory held by the table, not counting the Lpm itself. */
size_t lpm_memory(const Lpm *t);

/* The first broken structural invariant, as C source, or NULL. */
const char *lpm_check(const Lpm *t);

#endif
