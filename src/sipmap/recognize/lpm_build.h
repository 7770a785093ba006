/*
 * lpm_build.h - filling a new LPM table in bulk from packed records, and
 * listing a table's prefixes in order.
 */
#ifndef SIPMAP_LPM_BUILD_H
#define SIPMAP_LPM_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "lpm_table.h"

#define RECORD_SIZE 12 /* struct '<IB3xi' */

typedef struct {
    uint32_t network;
    int32_t value;
    uint8_t len;
} Record;

typedef enum { BUILD_OK, BUILD_NOMEM, BUILD_BADLEN, BUILD_HOSTBITS, BUILD_BADVALUE } BuildStatus;

/*
 * Fill the zeroed table t from n packed '<IB3xi' records; of equal prefixes
 * the last wins. On an invalid record, *bad_index is its index. On any
 * failure lpm_free() releases what was allocated. Needs no GIL.
 */
BuildStatus lpm_build(Lpm *t, const unsigned char *data, size_t n, size_t *bad_index);

/* Write s's s->count live prefixes to recs sorted by (network, len); tmp is scratch of
 * the same size. */
void lpm_records(const PrefixSet *s, Record *recs, Record *tmp);

#endif
