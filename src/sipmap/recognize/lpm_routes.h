/*
 * lpm_routes.h - the Routes type (lpm_routes.c): packed per-mapping answers
 * indexed by Table4 values.
 */
#ifndef SIPMAP_LPM_ROUTES_H
#define SIPMAP_LPM_ROUTES_H

#include <Python.h>

/* Add the Routes type and in_ranges() to the module; -1 with an exception set. */
int routes_add_to_module(PyObject *module);

#endif
