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
 * respond() is the same for one datagram without a socket, for tests. The socket side
 * (pump) is in fast_udp.c; the shared types in fast.h.
 *
 * Bounds: a receive slot holds the largest UDP datagram (64 KiB), so nothing is
 * truncated; replies are built in one growable buffer, reused between batches.
 */
#include "fast.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

static PyObject *generation_name; /* "generation", interned once */

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
    fast_free_io(self);
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
    fast_free_io(self); /* sized for the batch: allocated again by the next pump() */
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
int
fast_decide(FastPathObject *self, PyObject *decide, const char *data, size_t len,
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
int
fast_build(FastPathObject *self, int index, int j, const SipRequest *req, const char *ip,
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
    int index = fast_decide(self, decide, data.buf, (size_t)data.len, &source, &req);
    if (index == -2)
        goto done;
    result = PyList_New(0);
    if (result == NULL || index == HANDLED)
        goto done;
    unsigned to_port = sip_reply_port(&req, port);
    for (int j = 0; j < self->answers[index].nparts; j++) {
        size_t len;
        self->out.n = 0;
        if (fast_build(self, index, j, &req, ip, port, &len) < 0) {
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

static PyMethodDef FastPath_methods[] = {
    {"respond", (PyCFunction)FastPath_respond, METH_VARARGS,
     "respond(data, ip, port, decide): the replies to one datagram, or None."},
    {"pump", (PyCFunction)fast_pump, METH_VARARGS,
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
