/*
 * _fast.c - the SIP edge's UDP fast path (sipmap.sip._fast.FastPath).
 *
 * pump() drains a UDP socket in batches: recvmmsg() reads up to `batch` waiting
 * datagrams in one system call, each is scanned (sip_scan.c) and, when it is a
 * request of the fast path's subset, the Python `decide` callable makes the
 * decision (recognition, the responder's rules, the counters) and answers with the
 * index of a prepared answer, whose replies are built here (sip_reply) and sent by
 * one sendmmsg() at the end of the batch. Everything else goes to the Python `slow`
 * callable as (bytes, address), exactly as the asyncio transport delivered it.
 *
 * respond() is the same for one datagram without a socket, for tests.
 *
 * Bounds: a receive slot holds the largest UDP datagram (64 KiB), so nothing is
 * truncated; replies are built in one growable buffer, reused between batches.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "sip_cache.h"
#include "sip_scan.h"
#include <time.h>

#define SLOT_BYTES 65536
#define MAX_BATCH 256
#define HANDLED -1 /* decide's answer: nothing more to do here */
#define MAX_COUNTERS 1024 /* counter ids a cached decision may name */
#define MAX_BOUNDS 32     /* histogram buckets */

static PyObject *generation_name; /* "generation", interned once */

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

static void free_io(FastPathObject *self);

static void
clear_answers(FastPathObject *self)
{
    for (Py_ssize_t i = 0; i < self->nanswers; i++)
        for (int j = 0; j < self->answers[i].nparts; j++) {
            Py_XDECREF(self->answers[i].parts[j].status_line);
            Py_XDECREF(self->answers[i].parts[j].fixed);
        }
    PyMem_Free(self->answers);
    self->answers = NULL;
    self->nanswers = 0;
}

static void
FastPath_dealloc(FastPathObject *self)
{
    clear_answers(self);
    free_io(self);
    free(self->out.p);
    cache_free(&self->cache);
    Py_XDECREF(self->recognizer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* FastPath(answers, max_message, batch, recognizer, bounds): answers is a sequence
 * whose item i is the answer `decide` means by returning i: a tuple of one or two
 * (status_line, fixed, tagged) tuples. With a `recognizer` (anything with an integer
 * `generation`), decisions are cached; `bounds` are the upper bounds of the histogram
 * the cache hits' lookup times are counted in. */
static int
FastPath_init(FastPathObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"answers", "max_message", "batch", "recognizer", "bounds", NULL};
    PyObject *answers, *recognizer = Py_None, *bounds = NULL;
    Py_ssize_t max_message, batch = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On|nOO", kwlist, &answers, &max_message,
                                     &batch, &recognizer, &bounds))
        return -1;
    Py_CLEAR(self->recognizer);
    cache_free(&self->cache);
    free_io(self); /* sized for the batch: allocated again by the next pump() */
    self->nbounds = 0;
    if (recognizer != Py_None) {
        PyObject *b = bounds ? PySequence_Fast(bounds, "bounds must be a sequence") : NULL;
        if (b == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a recognizer needs bounds");
            return -1;
        }
        Py_ssize_t nb = PySequence_Fast_GET_SIZE(b);
        if (nb < 1 || nb > MAX_BOUNDS) {
            Py_DECREF(b);
            PyErr_SetString(PyExc_ValueError, "bounds: 1 to 32 upper bounds");
            return -1;
        }
        for (Py_ssize_t i = 0; i < nb; i++) {
            self->bounds[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(b, i));
            if (PyErr_Occurred()) {
                Py_DECREF(b);
                return -1;
            }
        }
        Py_DECREF(b);
        if (cache_init(&self->cache) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        self->nbounds = (int)nb;
        Py_INCREF(recognizer);
        self->recognizer = recognizer;
    }
    if (max_message <= 0 || batch <= 0 || batch > MAX_BATCH) {
        PyErr_SetString(PyExc_ValueError, "max_message > 0 and 0 < batch <= 256");
        return -1;
    }
    PyObject *seq = PySequence_Fast(answers, "answers must be a sequence");
    if (seq == NULL)
        return -1;
    clear_answers(self);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    self->answers = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Answer));
    if (self->answers == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    self->nanswers = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *parts = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) < 1 || PyTuple_GET_SIZE(parts) > 2)
            goto bad;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(parts); j++) {
            PyObject *part = PyTuple_GET_ITEM(parts, j);
            PyObject *line, *fixed;
            int tagged;
            if (!PyTuple_Check(part) || !PyArg_ParseTuple(part, "SSp", &line, &fixed, &tagged))
                goto bad;
            Part *slot = &self->answers[i].parts[j];
            Py_INCREF(line);
            Py_INCREF(fixed);
            slot->status_line = line;
            slot->fixed = fixed;
            slot->tagged = tagged;
            self->answers[i].nparts = (int)j + 1;
        }
    }
    Py_DECREF(seq);
    self->max_message = (size_t)max_message;
    self->batch = (int)batch;
    return 0;
bad:
    Py_DECREF(seq);
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "answers: tuples of 1-2 (bytes, bytes, bool)");
    return -1;
}

/* Where a datagram came from: its address, and the IP as text and binary. */
typedef struct {
    const struct sockaddr_storage *sa; /* NULL: from respond(), an (ip, port) pair */
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    int family;
    const void *binary;
} Source;

/* `sa` as a Source; false for an address the fast path leaves to Python (another
 * family, or a scoped IPv6 address: its replies need the scope). */
static bool
source_of(const struct sockaddr_storage *sa, Source *source)
{
    source->sa = sa;
    source->family = sa->ss_family;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        source->port = ntohs(in->sin_port);
        source->binary = &in->sin_addr;
        return inet_ntop(AF_INET, &in->sin_addr, source->ip, sizeof source->ip) != NULL;
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        source->port = ntohs(in6->sin6_port);
        source->binary = &in6->sin6_addr;
        return in6->sin6_scope_id == 0 &&
               inet_ntop(AF_INET6, &in6->sin6_addr, source->ip, sizeof source->ip) != NULL;
    }
    return false;
}

/* The source address as Python's socket module gives it (made only when Python is
 * called: a cache hit needs none). */
static PyObject *
address_of(const Source *source)
{
    const struct sockaddr_storage *sa = source->sa;
    if (sa == NULL || sa->ss_family == AF_INET)
        return Py_BuildValue("(sI)", source->ip, source->port);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return Py_BuildValue("(sIkk)", source->ip, source->port,
                         (unsigned long)ntohl(in6->sin6_flowinfo),
                         (unsigned long)in6->sin6_scope_id);
}

/* Any datagram's address, for the Python path (NULL, no error, for another family). */
static PyObject *
any_address(const struct sockaddr_storage *sa)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip) == NULL)
            return NULL;
        return Py_BuildValue("(sI)", ip, (unsigned)ntohs(in->sin_port));
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip) == NULL)
            return NULL;
        return Py_BuildValue("(sIkk)", ip, (unsigned)ntohs(in6->sin6_port),
                             (unsigned long)ntohl(in6->sin6_flowinfo),
                             (unsigned long)in6->sin6_scope_id);
    }
    return NULL;
}

/* The index `decide` returned, checked: an answer's, HANDLED, or -2 (error set). */
static int
checked_index(FastPathObject *self, PyObject *value)
{
    long index = PyLong_AsLong(value);
    if (index == -1 && PyErr_Occurred())
        return -2;
    if (index != HANDLED && (index < 0 || index >= self->nanswers)) {
        PyErr_Format(PyExc_ValueError, "decide returned %ld: no such answer", index);
        return -2;
    }
    return (int)index;
}

/* Ask `decide` about one scanned request: the index of the answer to build, HANDLED,
 * or -2 on a Python error. `decide` returns the index, or (index, counter ids) when
 * the decision may be cached: a later hit then counts those counters itself. */
static int
ask(FastPathObject *self, PyObject *decide, const char *data, size_t len,
    const Source *source, const SipRequest *req, const CacheKey *key, long long generation)
{
    PyObject *address = address_of(source);
    PyObject *bytes = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    PyObject *uri = PyUnicode_FromStringAndSize(req->uri.p, (Py_ssize_t)req->uri.n);
    PyObject *method = PyUnicode_FromStringAndSize(req->method.p, (Py_ssize_t)req->method.n);
    PyObject *result = NULL;
    if (address && bytes && uri && method)
        result = PyObject_CallFunctionObjArgs(decide, bytes, address, uri, method, NULL);
    Py_XDECREF(address);
    Py_XDECREF(bytes);
    Py_XDECREF(uri);
    Py_XDECREF(method);
    if (result == NULL)
        return -2;
    if (!PyTuple_Check(result)) {
        int index = checked_index(self, result);
        Py_DECREF(result);
        return index;
    }
    PyObject *ids;
    int index = -2;
    if (PyTuple_GET_SIZE(result) != 2 || !PyTuple_Check(ids = PyTuple_GET_ITEM(result, 1)) ||
        PyTuple_GET_SIZE(ids) > CACHE_COUNTERS) {
        PyErr_SetString(PyExc_TypeError, "decide: an index, or (index, up to 4 counter ids)");
        goto done;
    }
    index = checked_index(self, PyTuple_GET_ITEM(result, 0));
    if (index == -2)
        goto done;
    uint16_t counters[CACHE_COUNTERS];
    int n = (int)PyTuple_GET_SIZE(ids);
    for (int i = 0; i < n; i++) {
        long id = PyLong_AsLong(PyTuple_GET_ITEM(ids, i));
        if (id < 0 || id >= MAX_COUNTERS) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "decide: counter ids from 0 to 1023");
            index = -2;
            goto done;
        }
        counters[i] = (uint16_t)id;
    }
    if (key != NULL && generation >= 0)
        cache_store(&self->cache, key, generation, index, counters, n);
done:
    Py_DECREF(result);
    return index;
}

/* The recogniser's generation, or -1 when it cannot be read (then nothing is cached). */
static long long
generation_of(FastPathObject *self)
{
    PyObject *value = PyObject_GetAttr(self->recognizer, generation_name);
    long long generation = value ? PyLong_AsLongLong(value) : -1;
    Py_XDECREF(value);
    if (generation < 0) {
        PyErr_Clear();
        return -1;
    }
    return generation;
}

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One scanned request from `source`: the answer's index from the cache or from
 * `decide`, HANDLED, or -2 on a Python error. */
static int
decide_request(FastPathObject *self, PyObject *decide, const char *data, size_t len,
               const Source *source, const SipRequest *req)
{
    CacheKey key;
    long long generation = -1;
    bool keyed = false;
    if (self->recognizer != NULL) {
        double started = now();
        generation = generation_of(self);
        keyed = generation >= 0 &&
                cache_key(&key, source->family, source->binary, req->method, req->uri);
        CacheEntry *hit = keyed ? cache_find(&self->cache, &key, generation) : NULL;
        if (hit != NULL) {
            /* a recognition answered from the cache: counted like one, with its time */
            double took = now() - started;
            int b = 0;
            while (b < self->nbounds - 1 && took > self->bounds[b])
                b++;
            self->buckets[b]++;
            self->seconds += took;
            for (int i = 0; i < hit->ncounters; i++)
                self->counts[hit->counters[i]]++;
            return hit->index;
        }
    }
    return ask(self, decide, data, len, source, req, keyed ? &key : NULL, generation);
}

/* take() -> ([(counter id, count)], [per-bucket counts], seconds): what cache hits
 * counted since the last take(), for the Python counters. */
static PyObject *
FastPath_take(FastPathObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *counts = PyList_New(0), *buckets = PyList_New(self->nbounds);
    if (counts == NULL || buckets == NULL)
        goto error;
    for (int i = 0; i < MAX_COUNTERS; i++) {
        if (self->counts[i] == 0)
            continue;
        PyObject *item = Py_BuildValue("(iK)", i, (unsigned long long)self->counts[i]);
        if (item == NULL || PyList_Append(counts, item) < 0) {
            Py_XDECREF(item);
            goto error;
        }
        Py_DECREF(item);
    }
    for (int b = 0; b < self->nbounds; b++) {
        PyObject *n = PyLong_FromUnsignedLongLong(self->buckets[b]);
        if (n == NULL)
            goto error;
        PyList_SET_ITEM(buckets, b, n);
    }
    PyObject *result = Py_BuildValue("(NNd)", counts, buckets, self->seconds);
    if (result == NULL)
        return NULL;
    memset(self->counts, 0, sizeof self->counts);
    memset(self->buckets, 0, sizeof self->buckets);
    self->seconds = 0;
    return result;
error:
    Py_XDECREF(counts);
    Py_XDECREF(buckets);
    return NULL;
}

/* Part j of answer `index` appended to self->out; its length in *len. */
static int
build(FastPathObject *self, int index, int j, const SipRequest *req, const char *ip,
      unsigned port, size_t *len)
{
    const Part *part = &self->answers[index].parts[j];
    size_t start = self->out.n;
    if (sip_reply(&self->out, req, ip, port, PyBytes_AS_STRING(part->status_line),
                  (size_t)PyBytes_GET_SIZE(part->status_line), PyBytes_AS_STRING(part->fixed),
                  (size_t)PyBytes_GET_SIZE(part->fixed), part->tagged) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    *len = self->out.n - start;
    return 0;
}

/* respond(data, ip, port, decide) -> None when the datagram is not for the fast path,
 * else the replies as a list of (bytes, (ip, port)). */
static PyObject *
FastPath_respond(FastPathObject *self, PyObject *args)
{
    Py_buffer data;
    PyObject *decide;
    const char *ip;
    unsigned int port;
    if (!PyArg_ParseTuple(args, "y*sIO", &data, &ip, &port, &decide))
        return NULL;
    SipRequest req;
    PyObject *result = NULL;
    if (!sip_scan(data.buf, (size_t)data.len, self->max_message, &req)) {
        PyBuffer_Release(&data);
        Py_RETURN_NONE;
    }
    Source source = {.sa = NULL, .port = port};
    unsigned char binary[16];
    source.family = inet_pton(AF_INET, ip, binary) == 1    ? AF_INET
                    : inet_pton(AF_INET6, ip, binary) == 1 ? AF_INET6
                                                           : 0;
    if (source.family == 0 || strlen(ip) >= sizeof source.ip) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "respond: ip must be an IP address");
        return NULL;
    }
    strcpy(source.ip, ip);
    source.binary = binary;
    int index = decide_request(self, decide, data.buf, (size_t)data.len, &source, &req);
    if (index == -2)
        goto done;
    result = PyList_New(0);
    if (result == NULL || index == HANDLED)
        goto done;
    unsigned to_port = sip_reply_port(&req, port);
    for (int j = 0; j < self->answers[index].nparts; j++) {
        size_t len;
        self->out.n = 0;
        if (build(self, index, j, &req, ip, port, &len) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        PyObject *item = Py_BuildValue("(y#(sI))", self->out.p, (Py_ssize_t)len, ip, to_port);
        if (item == NULL || PyList_Append(result, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(item);
    }
done:
    PyBuffer_Release(&data);
    return result;
}

static void
free_io(FastPathObject *self)
{
    PyMem_Free(self->slots);
    PyMem_Free(self->msgs);
    PyMem_Free(self->iovs);
    PyMem_Free(self->addrs);
    PyMem_Free(self->pending);
    self->slots = NULL;
    self->msgs = NULL;
    self->iovs = NULL;
    self->addrs = NULL;
    self->pending = NULL;
}

static int
allocate_io(FastPathObject *self)
{
    size_t n = (size_t)self->batch;
    self->slots = PyMem_Malloc(n * SLOT_BYTES);
    self->msgs = PyMem_Calloc(2 * n, sizeof(struct mmsghdr));
    self->iovs = PyMem_Calloc(2 * n, sizeof(struct iovec));
    self->addrs = PyMem_Calloc(n, sizeof(struct sockaddr_storage));
    self->cap_pending = 2 * (int)n; /* an answer has at most two replies */
    self->pending = PyMem_Calloc((size_t)self->cap_pending, sizeof(Pending));
    if (!self->slots || !self->msgs || !self->iovs || !self->addrs || !self->pending) {
        free_io(self); /* all or nothing: pump() allocates again next time */
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Send the batch's replies; returns how many could not be sent. */
static int
flush(FastPathObject *self, int fd)
{
    int n = self->npending, failed = 0, done = 0;
    for (int i = 0; i < n; i++) {
        Pending *p = &self->pending[i];
        self->iovs[i].iov_base = self->out.p + p->offset;
        self->iovs[i].iov_len = p->len;
        memset(&self->msgs[i], 0, sizeof self->msgs[i]);
        self->msgs[i].msg_hdr.msg_name = &p->to;
        self->msgs[i].msg_hdr.msg_namelen = p->to_len;
        self->msgs[i].msg_hdr.msg_iov = &self->iovs[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (done < n) {
        int sent = sendmmsg(fd, self->msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            failed++; /* this one cannot go (buffer full, unreachable): the rest may */
            done++;
            continue;
        }
        done += sent;
    }
    self->npending = 0;
    return failed;
}

/* One received datagram: answered here (replies queued in self->pending) or handed
 * to `slow`. 0, or -1 on a Python error. */
static int
one(FastPathObject *self, int i, PyObject *decide, PyObject *slow)
{
    const char *data = self->slots + (size_t)i * SLOT_BYTES;
    size_t len = self->msgs[i].msg_len;
    Source source;
    SipRequest req;
    int status = 0;
    if (source_of(&self->addrs[i], &source) && sip_scan(data, len, self->max_message, &req)) {
        int index = decide_request(self, decide, data, len, &source, &req);
        if (index == -2) {
            status = -1;
        } else if (index != HANDLED) {
            unsigned to_port = sip_reply_port(&req, source.port);
            for (int j = 0; j < self->answers[index].nparts && status == 0; j++) {
                Pending *p = &self->pending[self->npending];
                p->offset = self->out.n;
                if (build(self, index, j, &req, source.ip, source.port, &p->len) < 0) {
                    status = -1;
                    break;
                }
                self->npending++;
                memcpy(&p->to, &self->addrs[i], sizeof p->to);
                p->to_len = self->msgs[i].msg_hdr.msg_namelen;
                if (p->to.ss_family == AF_INET)
                    ((struct sockaddr_in *)&p->to)->sin_port = htons((uint16_t)to_port);
                else
                    ((struct sockaddr_in6 *)&p->to)->sin6_port = htons((uint16_t)to_port);
            }
        }
        return status;
    }
    PyObject *address = any_address(&self->addrs[i]);
    if (address == NULL)
        return PyErr_Occurred() ? -1 : 0; /* no IP family: not ours to answer */
    PyObject *bytes = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
    PyObject *result = bytes ? PyObject_CallFunctionObjArgs(slow, bytes, address, NULL) : NULL;
    Py_XDECREF(bytes);
    Py_DECREF(address);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* pump(fd, decide, slow, unsent=None) -> (datagrams read, replies not sent); unsent(n)
 * is called when replies could not be sent. The event loop calls it directly. */
static PyObject *
FastPath_pump(FastPathObject *self, PyObject *args)
{
    int fd;
    PyObject *decide, *slow, *unsent = Py_None;
    if (!PyArg_ParseTuple(args, "iOO|O", &fd, &decide, &slow, &unsent))
        return NULL;
    if (self->slots == NULL && allocate_io(self) < 0)
        return NULL;
    int batch = self->batch;
    for (int i = 0; i < batch; i++) {
        self->iovs[i].iov_base = self->slots + (size_t)i * SLOT_BYTES;
        self->iovs[i].iov_len = SLOT_BYTES;
        memset(&self->msgs[i], 0, sizeof self->msgs[i]);
        self->msgs[i].msg_hdr.msg_name = &self->addrs[i];
        self->msgs[i].msg_hdr.msg_namelen = sizeof self->addrs[i];
        self->msgs[i].msg_hdr.msg_iov = &self->iovs[i];
        self->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got;
    do {
        got = recvmmsg(fd, self->msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) /* EAGAIN, or an error the socket reports: nothing to read this turn */
        return Py_BuildValue("(ii)", 0, 0);
    /* Replies are copied into self->out, so the receive slots and iovecs can be
     * reused for sending once every datagram is seen. */
    self->out.n = 0;
    self->npending = 0;
    int error = 0;
    for (int i = 0; i < got && !error; i++)
        error = one(self, i, decide, slow) < 0;
    int failed = flush(self, fd);
    if (error)
        return NULL;
    if (failed > 0 && unsent != Py_None) {
        PyObject *result = PyObject_CallFunction(unsent, "i", failed);
        if (result == NULL)
            return NULL;
        Py_DECREF(result);
    }
    return Py_BuildValue("(ii)", got, failed);
}

static PyMethodDef FastPath_methods[] = {
    {"respond", (PyCFunction)FastPath_respond, METH_VARARGS,
     "respond(data, ip, port, decide): the replies to one datagram, or None."},
    {"pump", (PyCFunction)FastPath_pump, METH_VARARGS,
     "pump(fd, decide, slow, unsent): read and answer one batch of datagrams."},
    {"take", (PyCFunction)FastPath_take, METH_NOARGS,
     "take(): what the cache hits counted since the last call."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipmap.sip._fast.FastPath",
    .tp_basicsize = sizeof(FastPathObject),
    .tp_dealloc = (destructor)FastPath_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The SIP edge's UDP fast path.",
    .tp_methods = FastPath_methods,
    .tp_init = (initproc)FastPath_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fast",
    .m_doc = "The SIP edge's UDP fast path.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__fast(void)
{
    if (PyType_Ready(&FastPathType) < 0)
        return NULL;
    if (generation_name == NULL && (generation_name = PyUnicode_InternFromString("generation")) == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FastPathType);
    if (PyModule_AddObject(m, "FastPath", (PyObject *)&FastPathType) < 0) {
        Py_DECREF(&FastPathType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
