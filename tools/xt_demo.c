/*
 * xt_demo.c — the X-tree step of `strata demo`: 20000 points around five
 * "cities" bulk-loaded (STR), a window query, the five nearest neighbours
 * through the distance-browsing cursor, a transaction that moves points
 * while an older snapshot keeps answering as before, the checker, stats.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "cli.h"
#include "xt.h"

#define XT_DEMO_N 20000
static const char *const XT_DEMO_ROOT = "demo-xtree";

static int count_hit(void *ctx, uint64_t id, const double *lo, const double *hi)
{
	(void)id, (void)lo, (void)hi;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Point i: around one of five centres, a deterministic spiral. */
static void point_of(uint64_t i, double *p)
{
	static const double c[5][2] = {{10, 10}, {80, 20}, {50, 50}, {20, 85}, {90, 90}};
	double r = 0.5 + (double)(i % 997) / 100.0, a = (double)i * 2.399963;
	p[0] = c[i % 5][0] + r * cos(a);
	p[1] = c[i % 5][1] + r * sin(a);
}

static uint64_t window(const strata_snapshot *snap, int *rc)
{
	double lo[2] = {45, 45}, hi[2] = {55, 55};
	uint64_t n = 0;
	*rc = strata_xt_query(snap, XT_DEMO_ROOT, 2, STRATA_XT_INTERSECTS, lo, hi, count_hit, &n);
	return n;
}

static int load(strata_store *s)
{
	double *pts = malloc(XT_DEMO_N * 2 * sizeof *pts);
	uint64_t *ids = malloc(XT_DEMO_N * sizeof *ids);
	strata_txn *t = NULL;
	int rc = pts && ids ? strata_txn_begin(s, &XT_DEMO_ROOT, 1, 0, &t) : STRATA_ENOMEM;
	for (uint64_t i = 0; !rc && i < XT_DEMO_N; i++) {
		point_of(i, pts + 2 * i);
		ids[i] = i;
	}
	if (!rc)
		rc = strata_xt_create(t, XT_DEMO_ROOT, 2, NULL);
	if (!rc)
		rc = strata_xt_bulk_load(t, XT_DEMO_ROOT, 2, XT_DEMO_N, pts, NULL, ids);
	rc = rc ? (strata_txn_abort(t), rc) : strata_txn_commit(t, NULL);
	free(pts), free(ids);
	return rc;
}

static int nearest(cli_out *out, const strata_snapshot *snap)
{
	double q[2] = {50, 50};
	strata_xt_cursor *c;
	int rc = strata_xt_cursor_open(snap, XT_DEMO_ROOT, 2, q, STRATA_XT_L2, &c);
	if (rc)
		return rc;
	cli_printf(out, "  nearest to (50, 50), by distance browsing:");
	for (int i = 0; i < 5 && !rc; i++) {
		uint64_t id;
		double dist;
		if (!(rc = strata_xt_cursor_next(c, &id, &dist, NULL, NULL)))
			cli_printf(out, " %" PRIu64 " (%.3f)", id, dist);
	}
	cli_printf(out, "\n  (%" PRIu64 " nodes read for 5 results)\n", strata_xt_cursor_nodes(c));
	strata_xt_cursor_close(c);
	return rc;
}

/* Moves every point of the centre city (i % 5 == 2) away by 30. */
static int move_city(strata_store *s)
{
	strata_txn *t;
	int rc = strata_txn_begin(s, &XT_DEMO_ROOT, 1, 0, &t);
	for (uint64_t i = 2; !rc && i < XT_DEMO_N; i += 5) {
		double p[2], n[2];
		point_of(i, p);
		n[0] = p[0] + 30, n[1] = p[1] - 30;
		rc = strata_xt_move(t, XT_DEMO_ROOT, 2, p, NULL, n, NULL, i);
	}
	return rc ? (strata_txn_abort(t), rc) : strata_txn_commit(t, NULL);
}

int xt_demo(strata_store *s, cli_out *out)
{
	strata_snapshot *before = NULL, *after = NULL;
	int rc = load(s), rc2 = 0;
	if (!rc)
		rc = strata_snapshot_open(s, &before);
	if (rc)
		return rc;
	cli_printf(out, "  bulk-loaded %d points around five cities (STR)\n", XT_DEMO_N);
	cli_printf(out, "  window [45,55]x[45,55]: %" PRIu64 " points\n", window(before, &rc2));
	if ((rc = rc2) || (rc = nearest(out, before)) || (rc = move_city(s)) ||
	    (rc = strata_snapshot_open(s, &after)))
		goto err;
	uint64_t old = window(before, &rc), now = window(after, &rc2);
	cli_printf(out, "  moved the middle city's %d points in one transaction: the window now "
			"holds %" PRIu64 "; the older snapshot still sees %" PRIu64 "\n",
		   XT_DEMO_N / 5, now, old);
	strata_xt_stats st;
	if (rc || (rc = rc2) || (rc = strata_xt_check(after, XT_DEMO_ROOT, NULL, NULL)) ||
	    (rc = strata_xt_stats_get(after, XT_DEMO_ROOT, &st)))
		goto err;
	cli_printf(out, "  checker: clean; height %u, %" PRIu64 " nodes, %" PRIu64
			" supernodes, leaves %.0f%% full\n",
		   st.height, st.nodes, st.supernodes, 100 * st.leaf_fill);
err:
	strata_snapshot_close(before);
	strata_snapshot_close(after);
	return rc;
}
