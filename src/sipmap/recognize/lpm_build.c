/*
 * lpm_build.c - bulk build of an LPM table (Table4.build()). It runs without
 * the GIL, so it is plain C using only the raw allocator.
 *
 * Strategy
 * --------
 * Validate and decode the records, radix-sort them by (network, length),
 * drop duplicates (the last wins) and give the survivors slots 0..m-1 in that
 * order. Sorted by start then length, the prefixes come in the order of a
 * depth-first walk of their containment tree, so one sweep with a stack of
 * open prefixes yields the canonical interval list, which is then cut into
 * evenly filled chunks. Every step is linear but the sort's five passes.
 */

#include <string.h>

#include "lpm_build.h"
#include "lpm_region.h"

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

void
lpm_records(const PrefixSet *s, Record *recs, Record *tmp)
{
    size_t k = 0;
    for (uint32_t sid = 0; sid < s->slots_used; sid++) {
        const Prefix *p = &s->slots[sid];
        if (p->len != FREE_SLOT)
            recs[k++] = (Record){.network = p->network, .value = p->value, .len = p->len};
    }
    if (k > 0)
        radix_sort(recs, tmp, k);
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
sweep_intervals(const PrefixSet *s, uint32_t *keys, uint32_t *owners)
{
    uint32_t stack[33];
    unsigned depth = 0;
    size_t n = 1;
    keys[0] = 0;
    owners[0] = NO_OWNER;
    for (uint32_t sid = 0; sid < s->slots_used; sid++) {
        uint32_t start = s->slots[sid].network;
        while (depth > 0) {
            const Prefix *top = &s->slots[stack[depth - 1]];
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
        const Prefix *top = &s->slots[stack[--depth]];
        uint32_t end = prefix_end(top->network, top->len);
        if (end != UINT32_MAX)
            emit(keys, owners, &n, end + 1, depth ? stack[depth - 1] : NO_OWNER);
    }
    return n;
}

BuildStatus
lpm_build(Lpm *t, const unsigned char *data, size_t n, size_t *bad_index)
{
    BuildStatus status = BUILD_NOMEM;
    PrefixSet *s = &t->set;
    size_t rec_bytes = n * sizeof(Record), int_bytes = 0;
    Record *recs = region_alloc(rec_bytes);
    Record *tmp = region_alloc(rec_bytes);
    uint32_t *keys = NULL, *owners = NULL;
    prefixes_init(s);
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
    if (slots_reserve(s, (uint32_t)(m ? m : 1)) < 0 || hash_reserve(s, (uint32_t)m) < 0)
        goto done;
    for (size_t i = 0; i < m; i++) {
        slot_take(s, recs[i].network, recs[i].len, recs[i].value);
        hash_put(s, (uint32_t)i);
    }

    int_bytes = (2 * m + 1) * sizeof(uint32_t);
    keys = region_alloc(int_bytes);
    owners = region_alloc(int_bytes);
    if (keys == NULL || owners == NULL)
        goto done;
    size_t nint = sweep_intervals(s, keys, owners);
    if (intervals_load(&t->iv, keys, owners, nint) < 0)
        goto done;
    status = BUILD_OK;
done:
    region_free(recs, rec_bytes);
    region_free(tmp, rec_bytes);
    region_free(keys, int_bytes);
    region_free(owners, int_bytes);
    return status;
}
