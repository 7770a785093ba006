/*
 * lpm_ranges.h - in_ranges() (lpm_ranges.c): a domain's ACL addresses as merged ranges.
 */
#ifndef SIPMAP_LPM_RANGES_H
#define SIPMAP_LPM_RANGES_H

#include <Python.h>

/* Add in_ranges() to the module; -1 with an exception set. */
int ranges_add_to_module(PyObject *module);

#endif
