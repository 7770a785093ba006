/*
 * _lpm.c - IPv4 longest-prefix-match table (sipmap.recognize._lpm.Table4):
 * the Python type and module. The table itself is plain C in lpm_*.c:
 *
 *   lpm_prefixes  prefix slots (network, length, value) and the hash map
 *                 (network, length) -> slot, growing incrementally
 *   lpm_chunks    the address intervals, as sorted starts and owners in
 *                 cache-line-indexed chunks under a directory
 *   lpm_table     the two together: lookup, and insert/remove as interval
 *                 cuts and owner changes
 *   lpm_build     bulk build from packed records, by sort and sweep
 *   lpm_region    large arrays mapped directly
 *   lpm_args      Python arguments checked and converted (inline, header only)
 *   lpm_routes    the Routes type (packed answers indexed by table values)
 *                 and in_ranges() (a domain's ACL addresses, merged)
 *
 * Atomicity: every mutation (insert, remove) runs entirely inside one C call
 * holding the GIL and calls no Python code, so any Python thread sees the
 * table before or after it, never half-updated. An insert reserves all the
 * memory it may need before its first change, so an allocation failure
 * raises MemoryError with the table untouched; a remove allocates nothing.
 * Table4.build() fills a new table that no other thread can see yet, which
 * is why it may release the GIL.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lpm_args.h"
#include "lpm_build.h"
#include "lpm_region.h"
#include "lpm_routes.h"
#include "lpm_table.h"

/* ------------------------------------------------------------------------ */
/* The Table4 type                                                           */

typedef struct {
    PyObject_HEAD
    Lpm lpm;
} Table4Object;

static PyTypeObject Table4Type;

static PyObject *
Table4_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Table4() takes no arguments");
        return NULL;
    }
    Table4Object *self = (Table4Object *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (lpm_init_empty(&self->lpm) < 0) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

/* Above this, a table's memory is given back without the GIL: unmapping a million
 * entries' pages takes the kernel milliseconds that other threads need not wait. */
#define FREE_WITHOUT_GIL_BYTES ((size_t)1 << 20)

static void
Table4_dealloc(Table4Object *self)
{
    if (lpm_memory(&self->lpm) > FREE_WITHOUT_GIL_BYTES) {
        /* Unreachable from any other thread: its reference count is zero. */
        Py_BEGIN_ALLOW_THREADS
        lpm_free(&self->lpm);
        Py_END_ALLOW_THREADS
    } else {
        lpm_free(&self->lpm);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *const PREFIX_ARGS[] = {"network", "prefix_len", "value"};

static PyObject *
Table4_insert(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[3];
    uint32_t network;
    unsigned len;
    int32_t value;
    if (unpack_args("insert", PREFIX_ARGS, 3, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0 || to_value(a[2], &value) < 0)
        return NULL;
    if (lpm_insert(&self->lpm, network, len, value) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *
Table4_remove(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    uint32_t network;
    unsigned len;
    if (unpack_args("remove", PREFIX_ARGS, 2, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0)
        return NULL;
    return PyBool_FromLong(lpm_remove(&self->lpm, network, len));
}

static inline PyObject *
owner_value(const Lpm *t, uint32_t owner)
{
    return PyLong_FromLong(owner == NO_OWNER ? -1 : t->set.slots[owner].value);
}

static PyObject *
Table4_get(Table4Object *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2];
    uint32_t network;
    unsigned len;
    if (unpack_args("get", PREFIX_ARGS, 2, args, nargs, kwnames, a) < 0
        || to_prefix(a[0], a[1], &network, &len) < 0)
        return NULL;
    return owner_value(&self->lpm, hash_find(&self->lpm.set, network, len));
}


static PyObject *
Table4_lookup(Table4Object *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "address must be a str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0)
        return NULL;
#endif
    uint32_t addr;
    /* Only ASCII strings can be addresses; their characters are bytes. */
    if (!PyUnicode_IS_ASCII(arg)
        || parse_address((const char *)PyUnicode_DATA(arg), PyUnicode_GET_LENGTH(arg), &addr) < 0)
        return PyLong_FromLong(-2);
    return owner_value(&self->lpm, lpm_lookup(&self->lpm, addr));
}

static PyObject *
Table4_lookup_int(Table4Object *self, PyObject *arg)
{
    uint32_t addr;
    if (to_u32(arg, "address", &addr) < 0)
        return NULL;
    return owner_value(&self->lpm, lpm_lookup(&self->lpm, addr));
}

static PyObject *
Table4_memory_bytes(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSize_t(sizeof(Table4Object) + lpm_memory(&self->lpm));
}

static PyObject *
Table4_items(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    const PrefixSet *s = &self->lpm.set;
    size_t n = s->count, rec_bytes = n * sizeof(Record);
    Record *recs = region_alloc(rec_bytes);
    Record *tmp = region_alloc(rec_bytes);
    PyObject *list = NULL;
    if (recs == NULL || tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    lpm_records(s, recs, tmp);
    list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue("(kIi)", (unsigned long)recs[i].network,
                                       (unsigned int)recs[i].len, (int)recs[i].value);
        if (item == NULL) {
            Py_CLEAR(list);
            goto done;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
done:
    region_free(recs, rec_bytes);
    region_free(tmp, rec_bytes);
    return list;
}

static PyObject *
Table4_build(PyObject *Py_UNUSED(cls), PyObject *arg)
{
    Py_buffer view;
    if (PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "entries must be bytes-like, not str");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Table4Object *self = NULL;
    if (view.len % RECORD_SIZE != 0) {
        PyErr_SetString(PyExc_ValueError,
                        "entries must be a whole number of '<IB3xi' records (12 bytes each)");
        goto done;
    }
    size_t n = (size_t)view.len / RECORD_SIZE;
    if (n > MAX_PREFIXES) {
        PyErr_SetString(PyExc_ValueError, "too many entries");
        goto done;
    }
    self = (Table4Object *)Table4Type.tp_alloc(&Table4Type, 0);
    if (self == NULL)
        goto done;
    size_t bad = 0;
    BuildStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = lpm_build(&self->lpm, view.buf, n, &bad);
    Py_END_ALLOW_THREADS
    if (status != BUILD_OK) {
        if (status == BUILD_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_ValueError, "entry %zu: %s", bad,
                         status == BUILD_BADLEN     ? "prefix_len must be in 0..32"
                         : status == BUILD_HOSTBITS ? "network has host bits set"
                                                    : "value must be in 0..2**31-1");
        Py_CLEAR(self);
    }
done:
    PyBuffer_Release(&view);
    return (PyObject *)self;
}

static Py_ssize_t
Table4_len(Table4Object *self)
{
    return (Py_ssize_t)self->lpm.set.count;
}

/* Debug aid for tests and the benchmark: verify every structural invariant
 * (AssertionError on a breach) and return a few figures about the layout. */
static PyObject *
Table4_check(Table4Object *self, PyObject *Py_UNUSED(ignored))
{
    const Lpm *t = &self->lpm;
    const char *breach = lpm_check(t);
    if (breach != NULL) {
        PyErr_Format(PyExc_AssertionError, "Table4 invariant: %s", breach);
        return NULL;
    }
    size_t intervals = 0;
    for (uint32_t ci = 0; ci < t->iv.nchunks; ci++)
        intervals += t->iv.chunks[ci]->n;
    return Py_BuildValue("{sIsnsO}", "chunks", (unsigned int)t->iv.nchunks, "intervals",
                         (Py_ssize_t)intervals, "migrating",
                         t->set.old != NULL ? Py_True : Py_False);
}

static PyMethodDef Table4_methods[] = {
    {"insert", (PyCFunction)(void (*)(void))Table4_insert, METH_FASTCALL | METH_KEYWORDS,
     "insert(network, prefix_len, value): add a prefix or replace its value."},
    {"remove", (PyCFunction)(void (*)(void))Table4_remove, METH_FASTCALL | METH_KEYWORDS,
     "remove(network, prefix_len) -> bool: False if the prefix was absent."},
    {"get", (PyCFunction)(void (*)(void))Table4_get, METH_FASTCALL | METH_KEYWORDS,
     "get(network, prefix_len) -> int: the exact entry's value, or -1."},
    {"lookup", (PyCFunction)Table4_lookup, METH_O,
     "lookup(address: str) -> int: value of the longest matching prefix, -1 if none, "
     "-2 if the string is not an IPv4 (or ::ffff:-mapped) address."},
    {"lookup_int", (PyCFunction)Table4_lookup_int, METH_O,
     "lookup_int(address: int) -> int: like lookup() for an int address."},
    {"memory_bytes", (PyCFunction)Table4_memory_bytes, METH_NOARGS,
     "Bytes of C memory held by the table."},
    {"items", (PyCFunction)Table4_items, METH_NOARGS,
     "Sorted list of (network, prefix_len, value)."},
    {"build", (PyCFunction)Table4_build, METH_O | METH_STATIC,
     "build(entries: bytes) -> Table4 from packed '<IB3xi' records; releases the GIL."},
    {"_check", (PyCFunction)Table4_check, METH_NOARGS,
     "Verify internal invariants (AssertionError on a breach); return layout figures."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Table4_as_sequence = {
    .sq_length = (lenfunc)Table4_len,
};

static PyTypeObject Table4Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipmap.recognize._lpm.Table4",
    .tp_doc = "IPv4 longest-prefix-match table mapping networks to int values.",
    .tp_basicsize = sizeof(Table4Object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Table4_new,
    .tp_dealloc = (destructor)Table4_dealloc,
    .tp_methods = Table4_methods,
    .tp_as_sequence = &Table4_as_sequence,
};

static struct PyModuleDef lpm_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sipmap.recognize._lpm",
    .m_doc = "IPv4 longest-prefix-match table in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__lpm(void)
{
    if (PyType_Ready(&Table4Type) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&lpm_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Table4", (PyObject *)&Table4Type) < 0
        || routes_add_to_module(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
