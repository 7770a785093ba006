/* sip_scan.h - the fast path's request scanner, plain C.
 *
 * sip_scan() accepts only a conservative subset of SIP requests: the ones for which
 * the Python parser and responder are known to produce exactly what sip_reply()
 * (sip_reply.h) writes (see the comment atop sip_scan.c). Anything else - responses, odd bytes,
 * folded or compact-comma headers, Route, an unusual Via - is refused, and the caller
 * hands the datagram to the Python path untouched. */
#ifndef SIP_SCAN_H
#define SIP_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#define SIP_MAX_VIAS 16
#define SIP_MAX_HEADERS 256 /* the Python parser's MAX_HEADERS */
#define SIP_MAX_START_LINE 4000

typedef struct {
    const char *p;
    size_t n;
} Span;

typedef struct {
    Span method, uri;
    Span via[SIP_MAX_VIAS]; /* every Via line's value, in order; via[0] is the top */
    int nvia;
    Span from, to, call_id, cseq; /* each header's first value */
    /* the top Via: "SIP/2.0/T host[:port]" then its parameters */
    Span via_sent;   /* from "SIP/2.0/" to the end of the port */
    Span via_host;
    Span via_params; /* ";a=b;c" or empty */
    unsigned via_port; /* 0: none */
    bool via_rport;   /* an rport parameter, with or without a value */
} SipRequest;

/* `s` equals `lower` (written in lower case) ignoring ASCII case. */
bool span_is(Span s, const char *lower);
/* `a` and `b` hold the same bytes. */
bool span_eq(Span a, Span b);

/* 1 when `data` is a request of the subset (filled in `req`), 0 otherwise. */
int sip_scan(const char *data, size_t len, size_t max_message, SipRequest *req);

#endif
