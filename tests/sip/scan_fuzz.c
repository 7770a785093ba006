/* scan_fuzz.c - the fast path's C parts (sip_scan, sip_reply, sip_cache, sip_blake2b) over
 * mutated SIP requests, built with AddressSanitizer and UndefinedBehaviorSanitizer by
 * test_fast.py::test_the_scanner_under_sanitizers: any out-of-bounds access, overflow
 * or undefined behaviour aborts the run.
 *
 *     scan_fuzz ITERATIONS SEED
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sip_cache.h"
#include "sip_reply.h"
#include "sip_scan.h"

static const char *SEEDS[] = {
    "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5061;branch=z9hG4bK-1234-1-0;rport\r\n"
    "From: <sip:bench@127.0.0.2:5061>;tag=1234-1\r\n"
    "To: <sip:127.0.0.1:5060>\r\n"
    "Call-ID: 1-1234@127.0.0.2\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n",
    "INVITE sip:+1555@acme.sip.twilio.com SIP/2.0\r\n"
    "v: SIP/2.0/UDP pbx.example.com:5070;received=1.2.3.4;branch=z9hG4bK-9\r\n"
    "Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK-a\r\n"
    "f: \"A\" <sip:a@b>;tag=1\r\n"
    "t: <sip:x@y>;tag=\r\n"
    "i: c\r\n"
    "CSeq: 4294967295 INVITE\r\n"
    "l: 4\r\n\r\nv=0\r\n",
};
static const char *CHUNKS[] = {
    ":", "\r\n", " ", ";", ",", "<", ">", "[", "=", "\0", "\xff", "Via: ", "l: 9", "tag=",
    "rport", "received=", "\r\n\r\n", "99999", "SIP/2.0/", "Route: <sip:x>\r\n", "\t",
};

static unsigned long long state;

static unsigned
next(unsigned n)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return n ? (unsigned)((state >> 33) % n) : 0;
}

int
main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    static char data[8192];
    Cache cache;
    Out out = {NULL, 0, 0};
    long accepted = 0;
    if (cache_init(&cache) < 0)
        return 2;
    for (long it = 0; it < iterations; it++) {
        const char *seed = SEEDS[next(2)];
        size_t len = strlen(seed);
        memcpy(data, seed, len);
        for (unsigned m = next(4); m > 0; m--) {
            size_t at = next((unsigned)len + 1);
            const char *chunk = CHUNKS[next(sizeof CHUNKS / sizeof *CHUNKS)];
            size_t n = chunk[0] ? strlen(chunk) : 1;
            switch (next(3)) {
            case 0: /* insert */
                if (len + n < sizeof data) {
                    memmove(data + at + n, data + at, len - at);
                    memcpy(data + at, chunk, n);
                    len += n;
                }
                break;
            case 1: /* delete */
                n = next(40) + 1;
                if (at + n > len)
                    n = len - at;
                memmove(data + at, data + at + n, len - at - n);
                len -= n;
                break;
            default: /* a byte replaced */
                if (at < len)
                    data[at] = (char)next(256);
            }
        }
        /* an exact-size copy, so reading one byte past the datagram is caught */
        char *exact = malloc(len ? len : 1);
        memcpy(exact, data, len);
        SipRequest req;
        if (sip_scan(exact, len, 4096, &req)) {
            accepted++;
            out.n = 0;
            if (sip_reply(&out, &req, "127.0.0.2", 5061, "SIP/2.0 200 OK\r\n", 16,
                          "Server: x\r\n", 11, next(2)) < 0)
                return 2;
            if (out.n < 4 || memcmp(out.p + out.n - 4, "\r\n\r\n", 4) != 0) {
                fprintf(stderr, "a reply without its end\n");
                return 1;
            }
            unsigned char ip[4] = {127, 0, 0, (unsigned char)next(4)};
            CacheKey key;
            if (cache_key(&key, AF_INET, ip, req.method, req.uri)) {
                uint16_t ids[2] = {1, 2};
                if (cache_find(&cache, &key, 1) == NULL)
                    cache_store(&cache, &key, 1, 0, ids, 2);
                CacheEntry *hit = cache_find(&cache, &key, 1);
                if (hit == NULL || hit->ncounters != 2) {
                    fprintf(stderr, "stored, then not found\n");
                    return 1;
                }
            }
        }
        free(exact);
    }
    free(out.p);
    cache_free(&cache);
    printf("%ld of %ld accepted\n", accepted, iterations);
    return accepted > 0 ? 0 : 1;
}
