/* sip_cache.h - the fast path's decision cache: (source IP, method, Request-URI's host
 * part) -> what `decide` answered, valid for one generation of the recogniser's state.
 *
 * A decision is a pure function of those three and of the recogniser's state (the
 * edge's configuration is fixed), so it can be reused until the state changes, which
 * bumps the generation. Fixed size, direct-mapped: a key that collides overwrites
 * the slot, so hostile traffic can only evict, never grow it or pick an answer. */
#ifndef SIP_CACHE_H
#define SIP_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "sip_scan.h"

#define CACHE_SLOTS 1024
#define CACHE_TEXT 240 /* method + URI; longer keys are not cached */
#define CACHE_COUNTERS 4

typedef struct {
    long long generation; /* -1: empty */
    uint64_t hash;
    unsigned char family, ip_len;
    unsigned char ip[16];
    uint16_t method_len, uri_len;
    char text[CACHE_TEXT];
    int index; /* the answer, or -1 (nothing to send) */
    int ncounters;
    uint16_t counters[CACHE_COUNTERS]; /* counter ids, each incremented per hit */
} CacheEntry;

typedef struct {
    CacheEntry *slots; /* NULL: caching off */
} Cache;

typedef struct {
    unsigned char family, ip_len;
    const unsigned char *ip;
    Span method, uri;
    uint64_t hash;
} CacheKey;

int cache_init(Cache *cache); /* 0, or -1 out of memory */
void cache_free(Cache *cache);
/* false when the key is too long to cache */
bool cache_key(CacheKey *key, int family, const void *ip, Span method, Span uri);
CacheEntry *cache_find(Cache *cache, const CacheKey *key, long long generation);
void cache_store(Cache *cache, const CacheKey *key, long long generation, int index,
                 const uint16_t *counters, int ncounters);

#endif
