/* fast_udp.c - the FastPath's socket side: pump() reads a batch of datagrams with one
 * recvmmsg(), answers what the fast path understands (fast_decide, fast_build) and
 * hands the rest to Python, then sends the batch's replies with one sendmmsg(). */
#include "fast.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

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

void
fast_free_io(FastPathObject *self)
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
        fast_free_io(self); /* all or nothing: pump() allocates again next time */
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
        int index = fast_decide(self, decide, data, len, &source, &req);
        if (index == -2) {
            status = -1;
        } else if (index != HANDLED) {
            unsigned to_port = sip_reply_port(&req, source.port);
            for (int j = 0; j < self->answers[index].nparts && status == 0; j++) {
                Pending *p = &self->pending[self->npending];
                p->offset = self->out.n;
                if (fast_build(self, index, j, &req, source.ip, source.port, &p->len) < 0) {
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
PyObject *
fast_pump(FastPathObject *self, PyObject *args)
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
