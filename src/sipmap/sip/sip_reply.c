/* sip_reply.c - the fast path's replies, written as responder._reply writes them.
 *
 * Only for requests sip_scan() accepted, whose every part is already in the form the
 * Python serializer would write, so most of a reply is copied from the request. */
#include "sip_reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip_blake2b.h"

static int
put(Out *out, const char *p, size_t n)
{
    if (out->cap - out->n < n) {
        size_t cap = out->cap ? out->cap : 4096;
        while (cap - out->n < n)
            cap *= 2;
        char *grown = realloc(out->p, cap);
        if (grown == NULL)
            return -1;
        out->p = grown;
        out->cap = cap;
    }
    memcpy(out->p + out->n, p, n);
    out->n += n;
    return 0;
}

#define PUT(s, n) do { if (put(out, (s), (n)) < 0) return -1; } while (0)
#define PUTS(literal) PUT(literal, sizeof(literal) - 1)
#define PUTSPAN(span) PUT((span).p, (span).n)

/* message.tag_of: the first `tag` parameter after the URI, if it has a value. */
static bool
has_tag(Span value)
{
    const char *p = value.p, *end = value.p + value.n;
    for (const char *c = end; c > p; c--)
        if (c[-1] == '>') {
            p = c;
            break;
        }
    const char *semi = memchr(p, ';', (size_t)(end - p));
    while (semi != NULL) {
        const char *param = semi + 1;
        semi = memchr(param, ';', (size_t)(end - param));
        const char *stop = semi ? semi : end;
        const char *eq = memchr(param, '=', (size_t)(stop - param));
        const char *key = param, *key_end = eq ? eq : stop;
        while (key < key_end && *key == ' ')
            key++;
        while (key_end > key && key_end[-1] == ' ')
            key_end--;
        if (span_is((Span){key, (size_t)(key_end - key)}, "tag")) {
            if (eq == NULL)
                return false;
            for (const char *t = eq + 1; t < stop; t++)
                if (*t != ' ')
                    return true;
            return false;
        }
    }
    return false;
}

int
sip_reply(Out *out, const SipRequest *req, const char *ip, unsigned port,
          const char *status_line, size_t status_len, const char *fixed, size_t fixed_len,
          bool tagged)
{
    char digits[8];
    size_t ip_len = strlen(ip);
    PUT(status_line, status_len);
    /* The top Via, stamped as responder._stamp does: received= when the sent-by host
     * is not the source (or rport was asked for), rport= filled in when empty. */
    bool received = !span_eq(req->via_host, (Span){ip, ip_len}) || req->via_rport;
    int port_len = 0;
    for (unsigned rest = port; port_len == 0 || rest; rest /= 10)
        digits[sizeof digits - 1 - port_len++] = (char)('0' + rest % 10);
    PUTS("Via: ");
    PUTSPAN(req->via_sent);
    const char *q = req->via_params.p, *end = q + req->via_params.n;
    bool seen_received = false;
    while (q < end) {
        const char *param = q + 1; /* after ';' */
        const char *stop = memchr(param, ';', (size_t)(end - param));
        if (stop == NULL)
            stop = end;
        const char *eq = memchr(param, '=', (size_t)(stop - param));
        Span name = {param, (size_t)((eq ? eq : stop) - param)};
        if (received && span_is(name, "received")) {
            seen_received = true;
            PUTS(";received=");
            PUT(ip, ip_len);
        } else if (eq == NULL && span_is(name, "rport")) {
            PUTS(";rport=");
            PUT(digits + sizeof digits - port_len, (size_t)port_len);
        } else {
            PUT(q, (size_t)(stop - q));
        }
        q = stop;
    }
    if (received && !seen_received) {
        PUTS(";received=");
        PUT(ip, ip_len);
    }
    PUTS("\r\n");
    for (int i = 1; i < req->nvia; i++) {
        PUTS("Via: ");
        PUTSPAN(req->via[i]);
        PUTS("\r\n");
    }
    PUTS("From: ");
    PUTSPAN(req->from);
    PUTS("\r\nTo: ");
    PUTSPAN(req->to);
    if (tagged && !has_tag(req->to)) {
        /* responder._digest(call_id, top via): blake2b, 8 bytes; its first 12 hex digits */
        uint8_t hash[8];
        char hex[12];
        Blake2b s;
        blake2b_init(&s, sizeof hash);
        blake2b_update(&s, req->call_id.p, req->call_id.n);
        blake2b_update(&s, "", 1);
        blake2b_update(&s, req->via[0].p, req->via[0].n);
        blake2b_final(&s, hash);
        for (int i = 0; i < 6; i++) {
            hex[2 * i] = "0123456789abcdef"[hash[i] >> 4];
            hex[2 * i + 1] = "0123456789abcdef"[hash[i] & 15];
        }
        PUTS(";tag=sm");
        PUT(hex, sizeof hex);
    }
    PUTS("\r\nCall-ID: ");
    PUTSPAN(req->call_id);
    PUTS("\r\nCSeq: ");
    PUTSPAN(req->cseq);
    PUTS("\r\n");
    PUT(fixed, fixed_len);
    PUTS("Content-Length: 0\r\n\r\n");
    return 0;
}

unsigned
sip_reply_port(const SipRequest *req, unsigned source_port)
{
    if (req->via_rport)
        return source_port;
    return req->via_port ? req->via_port : 5060;
}
