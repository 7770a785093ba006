/* fast.h - what _fast.c (the FastPath type) and fast_udp.c (its socket side) share. */
#ifndef SIP_FAST_H
#define SIP_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "sip_cache.h"
#include "sip_reply.h"
#include "sip_scan.h"

#define SLOT_BYTES 65536
#define MAX_BATCH 256
#define HANDLED -1 /* decide's answer: nothing more to do here */
#define MAX_COUNTERS 1024 /* counter ids a cached decision may name */
#define MAX_BOUNDS 32     /* histogram buckets */

typedef struct {
    PyObject *status_line; /* bytes, with CRLF */
    PyObject *fixed;       /* bytes: Server and extra headers, each with CRLF */
    bool tagged;           /* a final response: To gets our tag */
} Part;

typedef struct {
    int nparts;
    Part parts[2];
} Answer;

typedef struct {
    size_t offset, len;
    struct sockaddr_storage to;
    socklen_t to_len;
} Pending;

typedef struct {
    PyObject_HEAD
    Answer *answers;
    Py_ssize_t nanswers;
    size_t max_message;
    int batch;
    /* I/O state, allocated on first pump() */
    char *slots;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    Pending *pending;
    int npending, cap_pending;
    Out out;
    /* the decision cache, and what its hits count until take() hands it over */
    Cache cache;
    PyObject *recognizer; /* its `generation` attribute versions the cache */
    uint64_t counts[MAX_COUNTERS];
    double bounds[MAX_BOUNDS]; /* the recognition histogram's upper bounds */
    uint64_t buckets[MAX_BOUNDS];
    double seconds;
    int nbounds;
} FastPathObject;

/* Where a datagram came from: its address, and the IP as text and binary. */
typedef struct {
    const struct sockaddr_storage *sa; /* NULL: from respond(), an (ip, port) pair */
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    int family;
    const void *binary;
} Source;

/* One scanned request from `source`: the answer's index, from the cache or from
 * `decide`, HANDLED, or -2 on a Python error (_fast.c). */
int fast_decide(FastPathObject *self, PyObject *decide, const char *data, size_t len,
                const Source *source, const SipRequest *req);
/* Part j of answer `index` appended to self->out; its length in *len (_fast.c). */
int fast_build(FastPathObject *self, int index, int j, const SipRequest *req, const char *ip,
               unsigned port, size_t *len);

/* fast_udp.c */
void fast_free_io(FastPathObject *self);
PyObject *fast_pump(FastPathObject *self, PyObject *args);

#endif
