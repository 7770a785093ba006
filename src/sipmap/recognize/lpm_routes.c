/*
 * lpm_routes.c - sipmap.recognize._lpm.Routes: what the recogniser answers with
 * for each source IP mapping, packed in one array of 40-byte slots indexed by
 * the values in the longest-prefix table. A slot holds the mapping's and its IP
 * record's SIDs as 16 binary bytes each, the network, its prefix length and the
 * index of the domain (kept by the Python side). The SID and CIDR strings of an
 * answer are made only when one is asked for, so a million mappings cost 40 MB
 * here rather than a million Python objects (and nothing for the cyclic GC to walk).
 *
 * Atomicity as in _lpm.c: every method runs inside one C call holding the GIL
 * and calls no Python code while it changes a slot. load() fills a new object
 * no other thread can see, and gives up the GIL now and then between rows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lpm_args.h"
#include "lpm_build.h"
#include "lpm_routes.h"

#define SID_BYTES 16
#define SID_CHARS 34 /* two-letter prefix and 32 lowercase hex digits */
#define EMPTY UINT32_MAX /* meta of a free slot: prefix length 63 is never valid */
#define MAX_DOMAIN ((1u << 26) - 2)
#define MAX_SLOTS ((size_t)INT32_MAX)
#define ROWS_BETWEEN_YIELDS 4096

static const char MAPPING_PREFIX[2] = {'I', 'B'};
static const char RECORD_PREFIX[2] = {'I', 'L'};
static const char HEX[] = "0123456789abcdef";

typedef struct {
    uint8_t mapping[SID_BYTES];
    uint8_t record[SID_BYTES];
    uint32_t network;
    uint32_t meta; /* domain << 6 | prefix_len, or EMPTY */
} Route;

typedef struct {
    PyObject_HEAD
    Route *slots;
    size_t count; /* slots in use or free below the highest one set, plus one */
    size_t capacity;
} RoutesObject;

static PyTypeObject RoutesType;

/* ------------------------------------------------------------------------ */
/* SIDs and networks as text                                                 */

static int
hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A canonical SID (prefix + 32 lowercase hex digits) into 16 bytes; -1 with an error set. */
static int
parse_sid(PyObject *obj, const char prefix[2], uint8_t out[SID_BYTES])
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "a SID must be a str, not %.100s", Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_IS_ASCII(obj) ? (const char *)PyUnicode_DATA(obj) : NULL;
    if (s == NULL || PyUnicode_GET_LENGTH(obj) != SID_CHARS || s[0] != prefix[0]
        || s[1] != prefix[1])
        goto bad;
    for (int i = 0; i < SID_BYTES; i++) {
        int hi = hex_digit(s[2 + 2 * i]), lo = hex_digit(s[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            goto bad;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
bad:
    PyErr_Format(PyExc_ValueError, "not a %c%c SID: %R", prefix[0], prefix[1], obj);
    return -1;
}

static PyObject *
format_sid(const char prefix[2], const uint8_t sid[SID_BYTES])
{
    PyObject *text = PyUnicode_New(SID_CHARS, 127);
    if (text == NULL)
        return NULL;
    char *out = (char *)PyUnicode_DATA(text);
    out[0] = prefix[0];
    out[1] = prefix[1];
    for (int i = 0; i < SID_BYTES; i++) {
        out[2 + 2 * i] = HEX[sid[i] >> 4];
        out[3 + 2 * i] = HEX[sid[i] & 15];
    }
    return text;
}

static char *
put_decimal(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

static PyObject *
format_cidr(uint32_t network, unsigned len)
{
    char buf[24], *p = buf;
    for (int shift = 24; shift >= 0; shift -= 8) {
        p = put_decimal(p, (network >> shift) & 255);
        *p++ = shift ? '.' : '/';
    }
    p = put_decimal(p, len);
    return PyUnicode_FromStringAndSize(buf, p - buf);
}

/* ------------------------------------------------------------------------ */
/* Slots                                                                     */

static int
reserve(RoutesObject *self, size_t n)
{
    if (n <= self->capacity)
        return 0;
    if (n > MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "too many routes");
        return -1;
    }
    size_t capacity = self->capacity + self->capacity / 2 + 16;
    if (capacity < n)
        capacity = n;
    Route *slots = realloc(self->slots, capacity * sizeof(Route));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->slots = slots;
    self->capacity = capacity;
    return 0;
}

static int
to_slot(PyObject *obj, size_t *out)
{
    Py_ssize_t v = PyNumber_AsSsize_t(obj, PyExc_OverflowError);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || (size_t)v >= MAX_SLOTS) {
        PyErr_SetString(PyExc_ValueError, "slot must be in 0..2**31-2");
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* The slot in use at obj, or NULL with KeyError set. */
static const Route *
used_slot(RoutesObject *self, PyObject *obj)
{
    size_t slot;
    if (to_slot(obj, &slot) < 0)
        return NULL;
    if (slot >= self->count || self->slots[slot].meta == EMPTY) {
        PyErr_Format(PyExc_KeyError, "no route in slot %zu", slot);
        return NULL;
    }
    return &self->slots[slot];
}

/* Fill r from one (mapping_sid, ip_record_sid, network, prefix_len, domain). */
static int
parse_route(PyObject *const *a, long domain, Route *r)
{
    uint32_t network;
    unsigned len;
    if (parse_sid(a[0], MAPPING_PREFIX, r->mapping) < 0
        || parse_sid(a[1], RECORD_PREFIX, r->record) < 0 || to_prefix(a[2], a[3], &network, &len) < 0)
        return -1;
    if (domain < 0 || domain > (long)MAX_DOMAIN) {
        PyErr_SetString(PyExc_ValueError, "domain must be in 0..2**26-2");
        return -1;
    }
    r->network = network;
    r->meta = (uint32_t)domain << 6 | len;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Methods                                                                   */

static PyObject *
Routes_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Routes() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static void
Routes_dealloc(RoutesObject *self)
{
    if (self->capacity * sizeof(Route) > ((size_t)1 << 20)) {
        /* Unreachable from any other thread; the kernel unmaps tens of MB meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        free(self->slots);
        Py_END_ALLOW_THREADS
    } else {
        free(self->slots);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Routes_set(RoutesObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    size_t slot;
    Route r;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "set(slot, mapping_sid, ip_record_sid, network, prefix_len, domain)");
        return NULL;
    }
    long domain = PyLong_AsLong(args[5]);
    if ((domain == -1 && PyErr_Occurred()) || to_slot(args[0], &slot) < 0
        || parse_route(args + 1, domain, &r) < 0 || reserve(self, slot + 1) < 0)
        return NULL;
    for (; self->count <= slot; self->count++)
        self->slots[self->count].meta = EMPTY;
    self->slots[slot] = r;
    Py_RETURN_NONE;
}

static PyObject *
Routes_get(RoutesObject *self, PyObject *arg)
{
    const Route *r = used_slot(self, arg);
    if (r == NULL)
        return NULL;
    PyObject *out = PyTuple_New(4);
    if (out == NULL)
        return NULL;
    PyObject *items[4] = {
        format_sid(MAPPING_PREFIX, r->mapping),
        format_sid(RECORD_PREFIX, r->record),
        format_cidr(r->network, r->meta & 63),
        PyLong_FromUnsignedLong(r->meta >> 6),
    };
    for (int i = 0; i < 4; i++) {
        if (items[i] == NULL) {
            for (int j = 0; j < 4; j++)
                Py_XDECREF(items[j]);
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, items[i]);
    }
    return out;
}

static PyObject *
Routes_sid(RoutesObject *self, PyObject *arg)
{
    const Route *r = used_slot(self, arg);
    return r == NULL ? NULL : format_sid(MAPPING_PREFIX, r->mapping);
}

static PyObject *
Routes_domain(RoutesObject *self, PyObject *arg)
{
    const Route *r = used_slot(self, arg);
    return r == NULL ? NULL : PyLong_FromUnsignedLong(r->meta >> 6);
}

static PyObject *
Routes_network(RoutesObject *self, PyObject *arg)
{
    const Route *r = used_slot(self, arg);
    return r == NULL ? NULL : Py_BuildValue("(kI)", (unsigned long)r->network, r->meta & 63);
}

static PyObject *
Routes_memory_bytes(RoutesObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(sizeof(RoutesObject) + self->capacity * sizeof(Route));
}

static Py_ssize_t
Routes_len(RoutesObject *self)
{
    return (Py_ssize_t)self->count;
}

/*
 * load(rows, domains) -> (Routes, entries): rows of (mapping_sid, ip_record_sid,
 * domain_sid, network, prefix_len) in creation order, each into the slot of its
 * position; domains maps a domain SID to its index. entries are the packed
 * Table4.build records (network, prefix_len, slot), in reverse, so that of
 * several mappings of one network the oldest is the one the table keeps.
 */
static PyObject *
Routes_load(PyObject *Py_UNUSED(cls), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "load(rows, domains: dict)");
        return NULL;
    }
    PyObject *domains = args[1], *iter = PyObject_GetIter(args[0]), *row = NULL, *result = NULL;
    RoutesObject *self = (RoutesObject *)RoutesType.tp_alloc(&RoutesType, 0);
    Record *entries = NULL; /* as many as self->capacity */
    if (iter == NULL || self == NULL)
        goto done;
    while ((row = PyIter_Next(iter)) != NULL) {
        size_t slot = self->count;
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 5) {
            PyErr_SetString(PyExc_TypeError,
                            "rows must be (mapping_sid, ip_record_sid, domain_sid, network, "
                            "prefix_len) tuples");
            goto done;
        }
        PyObject *const *a = &PyTuple_GET_ITEM(row, 0);
        PyObject *index = PyDict_GetItemWithError(domains, a[2]);
        if (index == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_KeyError, "mapping of an unknown domain: %R", a[2]);
            goto done;
        }
        long domain = PyLong_AsLong(index);
        PyObject *fields[4] = {a[0], a[1], a[3], a[4]};
        if (domain == -1 && PyErr_Occurred())
            goto done;
        if (slot == self->capacity) {
            /* Growing copies up to tens of MB: without the GIL (no one else sees these). */
            size_t capacity = self->capacity + self->capacity / 2 + 1024;
            Route *slots;
            Record *grown = NULL;
            Py_BEGIN_ALLOW_THREADS
            slots = capacity <= MAX_SLOTS ? realloc(self->slots, capacity * sizeof(Route)) : NULL;
            if (slots != NULL) {
                self->slots = slots;
                grown = realloc(entries, capacity * sizeof(Record));
                if (grown != NULL)
                    entries = grown;
            }
            Py_END_ALLOW_THREADS
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            self->capacity = capacity;
        }
        if (parse_route(fields, domain, &self->slots[slot]) < 0)
            goto done;
        entries[slot] = (Record){self->slots[slot].network, (int32_t)slot,
                                 (uint8_t)(self->slots[slot].meta & 63)};
        self->count++;
        Py_CLEAR(row);
        if (self->count % ROWS_BETWEEN_YIELDS == 0) {
            /* Lets a thread waiting for the GIL (the event loop) take it. */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
    }
    if (PyErr_Occurred())
        goto done;
    PyObject *packed = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(self->count * RECORD_SIZE));
    if (packed == NULL)
        goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(packed);
    size_t count = self->count;
    /* Nothing else can see either buffer yet: a million records are packed without the GIL. */
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < count; i++) {
        const Record *e = &entries[count - 1 - i];
        unsigned char *p = out + i * RECORD_SIZE;
        uint32_t value = (uint32_t)e->value;
        for (int b = 0; b < 4; b++) {
            p[b] = (unsigned char)(e->network >> (8 * b));
            p[8 + b] = (unsigned char)(value >> (8 * b));
        }
        p[4] = e->len;
        p[5] = p[6] = p[7] = 0;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(ON)", (PyObject *)self, packed);
done:
    Py_XDECREF(row);
    Py_XDECREF(iter);
    Py_XDECREF(self);
    free(entries);
    return result;
}

static PyMethodDef Routes_methods[] = {
    {"set", (PyCFunction)(void (*)(void))Routes_set, METH_FASTCALL,
     "set(slot, mapping_sid, ip_record_sid, network, prefix_len, domain): fill a slot."},
    {"get", (PyCFunction)Routes_get, METH_O,
     "get(slot) -> (mapping_sid, ip_record_sid, 'a.b.c.d/len', domain); KeyError if free."},
    {"sid", (PyCFunction)Routes_sid, METH_O, "sid(slot) -> the mapping's SID."},
    {"domain", (PyCFunction)Routes_domain, METH_O, "domain(slot) -> the domain index."},
    {"network", (PyCFunction)Routes_network, METH_O, "network(slot) -> (network, prefix_len)."},
    {"memory_bytes", (PyCFunction)Routes_memory_bytes, METH_NOARGS, "Bytes of C memory held."},
    {"load", (PyCFunction)(void (*)(void))Routes_load, METH_FASTCALL | METH_STATIC,
     "load(rows, domains) -> (Routes, entries for Table4.build)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Routes_as_sequence = {
    .sq_length = (lenfunc)Routes_len,
};

static PyTypeObject RoutesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipmap.recognize._lpm.Routes",
    .tp_doc = "Packed source IP mapping answers, one 40-byte slot per table value.",
    .tp_basicsize = sizeof(RoutesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Routes_new,
    .tp_dealloc = (destructor)Routes_dealloc,
    .tp_methods = Routes_methods,
    .tp_as_sequence = &Routes_as_sequence,
};

/* ------------------------------------------------------------------------ */
/* Address ranges: a domain's IP access control lists, merged                */

/*
 * in_ranges(ranges, address) -> 1 if the address is in one of the ranges, 0 if
 * not, -2 if a str address is not IPv4 (as Table4.lookup). ranges: packed
 * native uint32 (first, last) pairs, sorted and disjoint. A few bytes per list
 * address, where a Table4 of five entries takes 12 KB.
 */
static PyObject *
in_ranges(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    uint32_t addr;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "in_ranges(ranges: bytes, address: str | int)");
        return NULL;
    }
    PyObject *a = args[1];
    if (PyUnicode_Check(a)) {
        if (!PyUnicode_IS_ASCII(a)
            || parse_address((const char *)PyUnicode_DATA(a), PyUnicode_GET_LENGTH(a), &addr) < 0)
            return PyLong_FromLong(-2);
    } else if (to_u32(a, "address", &addr) < 0) {
        return NULL;
    }
    const uint32_t *r = (const uint32_t *)PyBytes_AS_STRING(args[0]);
    size_t lo = 0, hi = (size_t)PyBytes_GET_SIZE(args[0]) / (2 * sizeof(uint32_t));
    while (lo < hi) { /* the first range whose first address is above addr */
        size_t mid = lo + (hi - lo) / 2;
        if (r[2 * mid] <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PyLong_FromLong(lo > 0 && addr <= r[2 * lo - 1]);
}

static PyMethodDef functions[] = {
    {"in_ranges", (PyCFunction)(void (*)(void))in_ranges, METH_FASTCALL,
     "in_ranges(ranges: bytes, address: str | int) -> 1, 0, or -2 for a str that is not IPv4."},
    {NULL, NULL, 0, NULL},
};

int
routes_add_to_module(PyObject *module)
{
    if (PyType_Ready(&RoutesType) < 0 || PyModule_AddFunctions(module, functions) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Routes", (PyObject *)&RoutesType);
}
