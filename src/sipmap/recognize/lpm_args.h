/*
 * lpm_args.h - Table4's arguments converted to table inputs: ints checked
 * against their range, prefixes against host bits, address strings parsed
 * strictly, and METH_FASTCALL arguments unpacked by position or keyword.
 *
 * Header-only and inline (as when they lived in _lpm.c) because they run
 * on every method call, lookups included. Include it after Python.h.
 */
#ifndef SIPMAP_LPM_ARGS_H
#define SIPMAP_LPM_ARGS_H

#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "lpm_prefixes.h"

/* ------------------------------------------------------------------------ */
/* Address strings                                                           */

/*
 * Parsing is strict on purpose: it accepts what Python's ipaddress accepts,
 * so lookup() agrees with the reference table (lpm.BruteForceTable).
 */

/*
 * Strict dotted quad, as Python's ipaddress accepts it: exactly four decimal
 * octets of 1..3 ASCII digits, each <= 255, no leading zero (except "0").
 */
static inline int
parse_dotted_quad(const char *s, Py_ssize_t n, uint32_t *out)
{
    uint32_t addr = 0;
    Py_ssize_t i = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (i >= n || s[i] != '.')
                return -1;
            i++;
        }
        Py_ssize_t start = i;
        unsigned v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - start == 3)
                return -1;
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
            return -1;
        addr = (addr << 8) | v;
    }
    if (i != n)
        return -1;
    *out = addr;
    return 0;
}

/* A dotted quad, optionally behind "::ffff:" (any case). 0, or -1 if s is not one. */
static inline int
parse_address(const char *s, Py_ssize_t n, uint32_t *out)
{
    static const char mapped[] = "::ffff:";
    const Py_ssize_t mlen = (Py_ssize_t)sizeof(mapped) - 1;
    if (n > mlen && s[0] == ':') {
        for (Py_ssize_t i = 0; i < mlen; i++) {
            char c = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + ('a' - 'A')) : s[i];
            if (c != mapped[i])
                return -1;
        }
        return parse_dotted_quad(s + mlen, n - mlen, out);
    }
    return parse_dotted_quad(s, n, out);
}

/* ------------------------------------------------------------------------ */
/* Ints, prefixes and argument lists                                         */

static inline int
to_u32(PyObject *obj, const char *what, uint32_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > (long long)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be in 0..%s", what,
                     strcmp(what, "value") == 0 ? "2**31-1" : "2**32-1");
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* network and prefix_len, checked together: host bits must be zero. */
static inline int
to_prefix(PyObject *net_obj, PyObject *len_obj, uint32_t *network, unsigned *len)
{
    uint32_t l;
    if (to_u32(net_obj, "network", network) < 0)
        return -1;
    if (!PyLong_Check(len_obj)) {
        PyErr_Format(PyExc_TypeError, "prefix_len must be an int, not %.100s",
                     Py_TYPE(len_obj)->tp_name);
        return -1;
    }
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(len_obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > 32) {
        PyErr_SetString(PyExc_ValueError, "prefix_len must be in 0..32");
        return -1;
    }
    l = (uint32_t)v;
    if (*network & ~prefix_mask(l)) {
        PyErr_Format(PyExc_ValueError, "network has host bits set for prefix length %u", l);
        return -1;
    }
    *len = l;
    return 0;
}

static inline int
to_value(PyObject *obj, int32_t *out)
{
    uint32_t v;
    if (to_u32(obj, "value", &v) < 0)
        return -1;
    if (v > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "value must be in 0..2**31-1");
        return -1;
    }
    *out = (int32_t)v;
    return 0;
}

/*
 * Unpack exactly n arguments given by position or keyword (METH_FASTCALL |
 * METH_KEYWORDS). The common all-positional call costs one comparison.
 */
static inline int
unpack_args(const char *fname, const char *const *names, Py_ssize_t n, PyObject *const *args,
            Py_ssize_t nargs, PyObject *kwnames, PyObject **out)
{
    if (kwnames == NULL && nargs == n) {
        memcpy(out, args, (size_t)n * sizeof(PyObject *));
        return 0;
    }
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", fname, n, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
            i++;
        if (i == n || out[i] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         i == n ? "%s() got an unexpected keyword argument '%U'"
                                : "%s() got multiple values for argument '%U'",
                         fname, key);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}
#endif
