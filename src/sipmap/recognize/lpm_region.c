/*
 * lpm_region.c - large arrays mapped directly, small ones from the raw Python
 * allocator; see lpm_region.h for why.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define HAVE_MMAP 1
#endif

#include "lpm_region.h"

void *
region_alloc(size_t size)
{
#ifdef HAVE_MMAP
    if (size >= REGION_MIN) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    return PyMem_RawCalloc(1, size ? size : 1);
}

void
region_free(void *p, size_t size)
{
    if (p == NULL)
        return;
#ifdef HAVE_MMAP
    if (size >= REGION_MIN) {
        munmap(p, size);
        return;
    }
#endif
    (void)size;
    PyMem_RawFree(p);
}

void *
region_grow(void *p, size_t old_size, size_t new_size)
{
#if defined(HAVE_MMAP) && defined(MREMAP_MAYMOVE)
    if (old_size >= REGION_MIN) {
        void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
#endif
    if (new_size < REGION_MIN)
        return PyMem_RawRealloc(p, new_size);
    void *q = region_alloc(new_size);
    if (q != NULL && p != NULL) {
        memcpy(q, p, old_size);
        region_free(p, old_size);
    }
    return q;
}
