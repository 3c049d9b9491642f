/*
 * verify.h — image verification for `strata check` and the tests: reads
 * back every node image the store holds and checks it (internal; not
 * installed).
 */
#ifndef STRATA_VERIFY_H
#define STRATA_VERIFY_H
#include <stdint.h>

#include "strata/strata.h"

/* Verifies the image of every live or retired node of every shard:
 *   DURABLE, image not loaded yet: loads it through durable_load, which
 *     checks its CRC32C (`data` for small nodes, the checkpoint's large
 *     section for large ones);
 *   DURABLE, image in memory and visible at the durable checkpoint: its
 *     CRC32C must equal the one that checkpoint recorded;
 *   image in memory otherwise (IN_MEMORY mode, or born after the durable
 *     checkpoint: its WAL frames were checked at replay): only walked.
 * Then every root's NodeID as of the current epoch must resolve.
 * Each failure is reported through `report` (may be NULL) naming the node
 * and the strata_strerror reason. *checked (may be NULL) gets the number of
 * entries whose image was examined. Returns 0 if clean, STRATA_ECORRUPT if
 * anything was reported, STRATA_EINVAL for a NULL store.
 * Holds the reclamation lock while it walks (commits skip reclamation
 * meanwhile) and pins the current epoch for the roots; it blocks no reader
 * or writer otherwise. Lazily loaded images stay loaded. */
int strata_verify_images(strata_store *s, strata_report_fn report, void *ctx, uint64_t *checked);

#endif /* STRATA_VERIFY_H */
