/* sip_cache.c - the fast path's decision cache (see sip_cache.h). */
#include "sip_cache.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int
cache_init(Cache *cache)
{
    cache->slots = malloc(CACHE_SLOTS * sizeof(CacheEntry));
    if (cache->slots == NULL)
        return -1;
    for (int i = 0; i < CACHE_SLOTS; i++)
        cache->slots[i].generation = -1;
    return 0;
}

void
cache_free(Cache *cache)
{
    free(cache->slots);
    cache->slots = NULL;
}

/* FNV-1a, 64 bits */
static uint64_t
mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The part of a Request-URI a decision depends on. Recognition and the responder's
 * rules read only its host (recognize/uri.py, request_uri_host), which in a sip: or
 * sips: URI is read from what follows the first '@' after the scheme: requests to
 * different users at one host share a decision. Any other URI is its own key. (The
 * reduced key starts with '@'; a whole URI starting with '@' has its host read the
 * same way, so the two never disagree.) */
static Span
uri_key(Span uri)
{
    size_t scheme = 0;
    if (uri.n >= 4 && strncasecmp(uri.p, "sip:", 4) == 0)
        scheme = 4;
    else if (uri.n >= 5 && strncasecmp(uri.p, "sips:", 5) == 0)
        scheme = 5;
    if (scheme == 0)
        return uri;
    const char *at = memchr(uri.p + scheme, '@', uri.n - scheme);
    if (at == NULL)
        return uri;
    return (Span){at, (size_t)(uri.p + uri.n - at)};
}

bool
cache_key(CacheKey *key, int family, const void *ip, Span method, Span uri)
{
    uri = uri_key(uri);
    if (method.n + uri.n > CACHE_TEXT)
        return false;
    key->family = (unsigned char)family;
    key->ip_len = family == AF_INET ? 4 : 16;
    key->ip = ip;
    key->method = method;
    key->uri = uri;
    uint64_t h = mix(0xcbf29ce484222325ULL, &key->family, 1);
    h = mix(h, ip, key->ip_len);
    h = mix(h, method.p, method.n);
    h = mix(h, " ", 1);
    key->hash = mix(h, uri.p, uri.n);
    return true;
}

static CacheEntry *
slot_of(Cache *cache, uint64_t hash)
{
    return &cache->slots[(hash ^ (hash >> 32)) % CACHE_SLOTS];
}

CacheEntry *
cache_find(Cache *cache, const CacheKey *key, long long generation)
{
    if (cache->slots == NULL)
        return NULL;
    CacheEntry *e = slot_of(cache, key->hash);
    if (e->generation != generation || e->hash != key->hash || e->family != key->family ||
        e->method_len != key->method.n || e->uri_len != key->uri.n ||
        memcmp(e->ip, key->ip, key->ip_len) != 0 ||
        memcmp(e->text, key->method.p, key->method.n) != 0 ||
        memcmp(e->text + key->method.n, key->uri.p, key->uri.n) != 0)
        return NULL;
    return e;
}

void
cache_store(Cache *cache, const CacheKey *key, long long generation, int index,
            const uint16_t *counters, int ncounters)
{
    if (cache->slots == NULL || ncounters > CACHE_COUNTERS)
        return;
    CacheEntry *e = slot_of(cache, key->hash);
    e->generation = generation;
    e->hash = key->hash;
    e->family = key->family;
    e->ip_len = key->ip_len;
    memcpy(e->ip, key->ip, key->ip_len);
    e->method_len = (uint16_t)key->method.n;
    e->uri_len = (uint16_t)key->uri.n;
    memcpy(e->text, key->method.p, key->method.n);
    memcpy(e->text + key->method.n, key->uri.p, key->uri.n);
    e->index = index;
    e->ncounters = ncounters;
    memcpy(e->counters, counters, (size_t)ncounters * sizeof *counters);
}
