/*
 * crash_ballast.c — nodes for the child's compactions to move.
 *
 * The workload's roots keep a few hundred live nodes, all in one segment
 * per size class, so compaction never had a segment to empty. After each
 * verification the verifier (never killed) frees about half of a ballast
 * of BALLAST_LIVE nodes of BALLAST_SIZE bytes (class 4096: 511 slots a
 * segment, so the ballast spans two or three segments) and tops it up
 * again in one SYNC commit; the holes leave a class under compaction's
 * threshold, and the next child's strata_compact and background rounds,
 * killed at random moments, move ballast nodes.
 *
 * Root "crash_ballast" names a node: u32 magic, u32 n, then n NodeIDs.
 * Every ballast node's bytes are a function of its NodeID alone, so a
 * node moved by compaction (same NodeID, new place) must read back the
 * same; the verifier checks every one, and counts them as reachable for
 * its leaked-node check.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"

#define BALLAST_MAGIC 0x4c4c4142u /* "BALL" */
#define BALLAST_LIST_KIND 3
#define BALLAST_KIND 4

static void ballast_fill(strata_node_id id, uint8_t *p)
{
	for (uint32_t i = 0; i < BALLAST_SIZE; i += 8) {
		uint64_t x = crash_mix(id, i);
		memcpy(p + i, &x, BALLAST_SIZE - i < 8 ? BALLAST_SIZE - i : 8);
	}
}

static bool ballast_ok(strata_node_id id, const uint8_t *p)
{
	uint8_t want[BALLAST_SIZE];
	ballast_fill(id, want);
	return !memcmp(p, want, BALLAST_SIZE);
}

static int bad(char *err, size_t len, const char *what, strata_node_id id, int rc)
{
	snprintf(err, len, "ballast %s %#" PRIx64 ": %s", what, id, rc ? strata_strerror(rc) : "bad bytes");
	return -1;
}

int crash_read_ballast(const strata_snapshot *snap, uint64_t *nodes, char *err, size_t len)
{
	strata_node_id list;
	int rc = strata_snapshot_root(snap, BALLAST_ROOT, &list);
	if (rc == STRATA_ENOTFOUND || (!rc && !list))
		return 0;
	const uint8_t *p;
	uint32_t size = 0, n;
	if (rc || (rc = strata_resolve(snap, list, (const void **)&p, &size)))
		return bad(err, len, "list", list, rc);
	uint32_t magic = 0;
	n = 0;
	if (size >= 8) {
		memcpy(&magic, p, 4);
		memcpy(&n, p + 4, 4);
	}
	if (size < 8 || magic != BALLAST_MAGIC || size != 8 + 8ull * n)
		return bad(err, len, "list", list, 0);
	for (uint32_t i = 0; i < n; i++) {
		strata_node_id id;
		const void *d;
		uint32_t got = 0;
		memcpy(&id, p + 8 + 8ull * i, 8);
		if ((rc = strata_resolve(snap, id, &d, &got)) || got != BALLAST_SIZE || !ballast_ok(id, d))
			return bad(err, len, "node", id, rc);
	}
	*nodes += 1 + n;
	return 0;
}

/* Frees about half of the ballast (chosen by seed) and tops it up to
 * BALLAST_LIVE new nodes, with a new list node, in one SYNC commit. */
int crash_refresh_ballast(strata_store *s, uint64_t seed, char *err, size_t len)
{
	const char *root = BALLAST_ROOT;
	strata_txn *t;
	strata_node_id list = STRATA_NODE_NULL, keep[BALLAST_LIVE], id;
	uint32_t n = 0, kept = 0, size = 0;
	const uint8_t *p = NULL;
	int rc = strata_txn_begin(s, &root, 1, STRATA_TXN_SYNC, &t);
	if (!rc && !(rc = strata_txn_get_root(t, root, &list)) && list)
		rc = strata_txn_read(t, list, (const void **)&p, &size, NULL);
	if (!rc && p && size >= 8)
		memcpy(&n, p + 4, 4);
	for (uint32_t i = 0; !rc && i < n && i < BALLAST_LIVE; i++) {
		memcpy(&id, p + 8 + 8ull * i, 8);
		if (crash_mix(seed, i) & 1)
			keep[kept++] = id;
		else
			rc = strata_txn_free(t, id);
	}
	if (!rc && list)
		rc = strata_txn_free(t, list);
	while (!rc && kept < BALLAST_LIVE) {
		void *d;
		if (!(rc = strata_txn_alloc(t, BALLAST_SIZE, BALLAST_KIND, &id, &d))) {
			ballast_fill(id, d);
			keep[kept++] = id;
		}
	}
	uint8_t *q = NULL;
	if (!rc && !(rc = strata_txn_alloc(t, 8 + 8 * kept, BALLAST_LIST_KIND, &list, (void **)&q))) {
		uint32_t magic = BALLAST_MAGIC;
		memcpy(q, &magic, 4);
		memcpy(q + 4, &kept, 4);
		memcpy(q + 8, keep, 8ull * kept);
		rc = strata_txn_set_root(t, root, list);
	}
	if (!rc)
		rc = strata_txn_commit(t, NULL);
	else if (t)
		strata_txn_abort(t);
	if (rc)
		snprintf(err, len, "refreshing the ballast: %s (%s)", strata_strerror(rc), strata_last_error());
	return rc;
}
