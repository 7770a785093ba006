/*
 * lpm_region.h - large arrays for the LPM table (hash buckets, prefix slots,
 * build and items() scratch).
 *
 * Arrays of REGION_MIN bytes or more are mapped directly where mmap exists:
 * the kernel zeroes their pages lazily, so a new bucket array costs no
 * up-front memset; growing one is an mremap, not a copy; and freeing returns
 * the memory at once instead of leaving a hole in the heap. Smaller arrays
 * come from the raw Python allocator, zeroed. Callers pass the size back when
 * freeing. Safe to call without the GIL.
 */
#ifndef SIPMAP_LPM_REGION_H
#define SIPMAP_LPM_REGION_H

#include <stddef.h>

#define REGION_MIN ((size_t)1 << 20) /* arrays this large are mapped directly */

/* Zeroed memory of size bytes, or NULL. */
void *region_alloc(size_t size);

void region_free(void *p, size_t size);

/* Grow p from old_size to new_size bytes; the new bytes are not zeroed. NULL on failure
 * (p is then untouched). */
void *region_grow(void *p, size_t old_size, size_t new_size);

#endif
