/* sip_blake2b.h - BLAKE2b (RFC 7693), unkeyed, for the To tags of the fast path:
 * hashlib.blake2b(data, digest_size=n) computed in C, so the fast path's tags equal
 * the Python responder's. */
#ifndef SIP_BLAKE2B_H
#define SIP_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t h[8];
    uint64_t t[2];       /* bytes hashed so far */
    uint8_t buf[128];
    size_t filled;
    size_t outlen;
} Blake2b;

void blake2b_init(Blake2b *s, size_t outlen); /* 1..64 */
void blake2b_update(Blake2b *s, const void *data, size_t n);
void blake2b_final(Blake2b *s, uint8_t *out);

#endif
