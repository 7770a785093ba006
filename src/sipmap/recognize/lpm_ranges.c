/*
 * lpm_ranges.c - sipmap.recognize._lpm.in_ranges(): is an address inside one of a
 * domain's IP access control list addresses, merged into sorted, disjoint ranges
 * (state.merged_ranges). A few bytes per list address, where a Table4 of five
 * entries takes 12 KB, and one binary search per check.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "lpm_args.h"
#include "lpm_ranges.h"

/*
 * in_ranges(ranges, address) -> 1 if the address is in one of the ranges, 0 if
 * not, -2 if a str address is not IPv4 (as Table4.lookup). ranges: packed
 * native uint32 (first, last) pairs, sorted and disjoint.
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

static PyMethodDef ranges_functions[] = {
    {"in_ranges", (PyCFunction)(void (*)(void))in_ranges, METH_FASTCALL,
     "in_ranges(ranges: bytes, address: str | int) -> 1, 0, or -2 for a str that is not IPv4."},
    {NULL, NULL, 0, NULL},
};

int
ranges_add_to_module(PyObject *module)
{
    return PyModule_AddFunctions(module, ranges_functions);
}
