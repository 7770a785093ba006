/* sip_scan.c - the fast path's request scanner.
 *
 * Strategy: accept only requests whose every byte means the same to the Python
 * parser (parser.py) and responder (responder.py) as it does here, so that the reply
 * sip_reply.c writes is byte for byte the one responder._reply builds; refuse the rest
 * (the caller then runs the Python path). The subset:
 * - no leading CR/LF, at most max_message bytes, a header block of printable ASCII
 *   (0x20-0x7e) whose every line ends in CRLF (no bare CR or LF, no tab, no UTF-8),
 *   ended by the first CRLFCRLF; the body is not looked at beyond its length;
 * - start line "METHOD SP URI SP SIP/2.0", the method a token of letters, digits,
 *   '-' and '.' (as _is_token), the URI without spaces, at most 4000 bytes;
 * - header lines "Name:value", the name of RFC 3261 token characters directly before
 *   the colon (so name.strip() changes nothing), no folding, at most 256 lines; the
 *   value trimmed of spaces (the only whitespace the first rule lets through, so it
 *   is what str.strip() removes);
 * - no Route header (in-dialog requests take the Python path), no comma in any Via
 *   (split_commas would have to agree), at most SIP_MAX_VIAS Via lines;
 * - Via, From, To, Call-ID and CSeq present; CSeq "DIGITS{1,10} METHOD" with the
 *   start line's method; Content-Length, if any, DIGITS{1,9} within the datagram;
 * - the top Via in the form Via.parse and str(Via) leave unchanged:
 *   "SIP/2.0/UPPER host[:port](;name[=value])*", the host of letters, digits, '.',
 *   '-', '_', the port 1-65535 without leading zeros, lower-case parameter names,
 *   non-empty values without spaces, received and rport at most once each.
 * Header names are compared without case, compact forms included (message.CANONICAL).
 */
#include "sip_scan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static bool
is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 3261 token characters */
static bool
is_token(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("-.!%*_+`'~", c) != NULL);
}

bool
span_is(Span s, const char *lower)
{
    size_t n = strlen(lower);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lower[i])
            return false;
    }
    return true;
}

bool
span_eq(Span a, Span b)
{
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static bool
all_digits(Span s, size_t max)
{
    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!is_digit((unsigned char)s.p[i]))
            return false;
    return true;
}

/* The top Via: see the subset above. */
static int
scan_via(SipRequest *req)
{
    Span v = req->via[0];
    const char *p = v.p, *end = v.p + v.n;
    if (v.n < 9 || memcmp(p, "SIP/2.0/", 8) != 0)
        return 0;
    const char *q = p + 8;
    while (q < end && *q >= 'A' && *q <= 'Z')
        q++;
    if (q == p + 8 || q == end || *q != ' ')
        return 0;
    q++;
    const char *host = q;
    while (q < end && (is_alnum((unsigned char)*q) || *q == '.' || *q == '-' || *q == '_'))
        q++;
    if (q == host)
        return 0;
    req->via_host = (Span){host, (size_t)(q - host)};
    req->via_port = 0;
    if (q < end && *q == ':') {
        const char *digits = ++q;
        unsigned long port = 0;
        while (q < end && is_digit((unsigned char)*q) && q - digits < 6)
            port = port * 10 + (unsigned long)(*q++ - '0');
        if (q == digits || *digits == '0' || port > 65535)
            return 0;
        req->via_port = (unsigned)port;
    }
    req->via_sent = (Span){p, (size_t)(q - p)};
    req->via_params = (Span){q, (size_t)(end - q)};
    req->via_rport = false;
    bool received = false;
    while (q < end) {
        if (*q != ';')
            return 0;
        const char *name = ++q;
        while (q < end && is_token((unsigned char)*q) && !(*q >= 'A' && *q <= 'Z'))
            q++;
        Span n = {name, (size_t)(q - name)};
        if (n.n == 0)
            return 0;
        if (q < end && *q == '=') {
            const char *value = ++q;
            while (q < end && *q != ';' && *q != ' ' && *q != ',')
                q++;
            if (q == value)
                return 0;
        }
        if (q < end && *q != ';')
            return 0;
        if (span_is(n, "rport")) {
            if (req->via_rport)
                return 0;
            req->via_rport = true;
        } else if (span_is(n, "received")) {
            if (received)
                return 0;
            received = true;
        }
    }
    return 1;
}

enum { H_OTHER, H_VIA, H_FROM, H_TO, H_CALL_ID, H_CSEQ, H_LENGTH, H_ROUTE };

static int
header_kind(Span name)
{
    if (name.n == 1) {
        switch (name.p[0] | 0x20) {
        case 'v': return H_VIA;
        case 'f': return H_FROM;
        case 't': return H_TO;
        case 'i': return H_CALL_ID;
        case 'l': return H_LENGTH;
        default: return H_OTHER;
        }
    }
    if (span_is(name, "via")) return H_VIA;
    if (span_is(name, "from")) return H_FROM;
    if (span_is(name, "to")) return H_TO;
    if (span_is(name, "call-id")) return H_CALL_ID;
    if (span_is(name, "cseq")) return H_CSEQ;
    if (span_is(name, "content-length")) return H_LENGTH;
    if (span_is(name, "route")) return H_ROUTE;
    return H_OTHER;
}

int
sip_scan(const char *data, size_t len, size_t max_message, SipRequest *req)
{
    if (len == 0 || len > max_message || data[0] == '\r' || data[0] == '\n')
        return 0;
    /* The header block: printable ASCII in CRLF-ended lines, up to the first empty one. */
    size_t head_end = 0; /* offset of the CRLFCRLF */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\r') {
            if (i + 1 >= len || data[i + 1] != '\n')
                return 0;
            if (i + 3 < len && data[i + 2] == '\r' && data[i + 3] == '\n') {
                head_end = i;
                break;
            }
            i++; /* the LF */
        } else if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    if (head_end == 0)
        return 0;
    size_t body_len = len - (head_end + 4);

    /* Start line */
    const char *p = data, *head = data + head_end;
    const char *eol = memchr(p, '\r', (size_t)(head - p) + 1);
    if (eol == NULL || eol - p > SIP_MAX_START_LINE)
        return 0;
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (sp1 == NULL || sp1 == p)
        return 0;
    bool alnum = false;
    for (const char *c = p; c < sp1; c++) {
        if (is_alnum((unsigned char)*c))
            alnum = true;
        else if (*c != '-' && *c != '.')
            return 0;
    }
    if (!alnum)
        return 0;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1 || eol - sp2 != 8 || memcmp(sp2 + 1, "SIP/2.0", 7) != 0)
        return 0;
    req->method = (Span){p, (size_t)(sp1 - p)};
    req->uri = (Span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};

    /* Headers */
    req->nvia = 0;
    req->from.p = req->to.p = req->call_id.p = req->cseq.p = NULL;
    req->from.n = req->to.n = req->call_id.n = req->cseq.n = 0;
    Span length = {NULL, 0};
    int count = 0;
    p = eol + 2;
    while (p < head + 2) { /* each line ends at a CR at or before `head` */
        eol = memchr(p, '\r', (size_t)(head - p) + 1);
        if (++count > SIP_MAX_HEADERS)
            return 0;
        const char *c = p;
        while (c < eol && is_token((unsigned char)*c))
            c++;
        if (c == p || c == eol || *c != ':')
            return 0; /* folding, a space or odd byte in the name, no colon */
        Span name = {p, (size_t)(c - p)};
        const char *v = c + 1, *ve = eol;
        while (v < ve && *v == ' ')
            v++;
        while (ve > v && ve[-1] == ' ')
            ve--;
        Span value = {v, (size_t)(ve - v)};
        switch (header_kind(name)) {
        case H_VIA:
            if (req->nvia == SIP_MAX_VIAS || memchr(value.p, ',', value.n) != NULL)
                return 0;
            req->via[req->nvia++] = value;
            break;
        case H_FROM:
            if (req->from.p == NULL) req->from = value;
            break;
        case H_TO:
            if (req->to.p == NULL) req->to = value;
            break;
        case H_CALL_ID:
            if (req->call_id.p == NULL) req->call_id = value;
            break;
        case H_CSEQ:
            if (req->cseq.p == NULL) req->cseq = value;
            break;
        case H_LENGTH:
            if (length.p == NULL) length = value;
            break;
        case H_ROUTE:
            return 0;
        default:
            break;
        }
        p = eol + 2;
    }
    if (req->nvia == 0 || !req->from.p || !req->to.p || !req->call_id.p || !req->cseq.p)
        return 0;
    /* CSeq: number, one space, the method */
    const char *space = memchr(req->cseq.p, ' ', req->cseq.n);
    if (space == NULL)
        return 0;
    Span number = {req->cseq.p, (size_t)(space - req->cseq.p)};
    Span method = {space + 1, req->cseq.n - number.n - 1};
    if (!all_digits(number, 10) || !span_eq(method, req->method))
        return 0;
    if (length.p != NULL) {
        if (!all_digits(length, 9))
            return 0;
        size_t n = 0;
        for (size_t i = 0; i < length.n; i++)
            n = n * 10 + (size_t)(length.p[i] - '0');
        if (n > body_len)
            return 0;
    }
    return scan_via(req);
}
