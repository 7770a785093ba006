/* sip_reply.h - the fast path's replies to requests sip_scan() accepted. */
#ifndef SIP_REPLY_H
#define SIP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "sip_scan.h"

/* A growable output buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} Out;

/* One reply appended to `out`: `status_line` (with CRLF) then the request's Vias (the
 * top one stamped with received=/rport= for source ip:port), From, To (with our tag
 * when `tagged` and it has none), Call-ID, CSeq, `fixed` (Server and extra headers,
 * each with CRLF) and Content-Length: 0. Returns 0, or -1 when out of memory. */
int sip_reply(Out *out, const SipRequest *req, const char *ip, unsigned port,
              const char *status_line, size_t status_len, const char *fixed,
              size_t fixed_len, bool tagged);

/* Where the reply goes (RFC 3261 18.2.2, RFC 3581): the source port when rport was
 * asked for, else the Via's port, else 5060. */
unsigned sip_reply_port(const SipRequest *req, unsigned source_port);

#endif
