/*
 * kv_demo.c — the B+tree step of `strata demo`: a table of rows keyed by
 * (city, id) tuples and a secondary index by population, changed together
 * in one transaction (and one aborted), a range count, a cursor scan, a
 * snapshot that keeps seeing the old state, the checker and the stats.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kv.h"
#include "strata/bptree.h"
#include "strata/tuple.h"

#define ROWS 10000
static const char *const cities[] = {"Lisbon", "Oslo", "Quito", "Tunis", "Zagreb"};

/* Key (city, id) of row i into buf; returns its length. */
static size_t row_key(uint64_t i, uint8_t *buf, size_t cap)
{
	const char *c = cities[i % 5];
	strata_tuple_value k[2] = {{.type = STRATA_TUPLE_STRING, .u.s = {c, strlen(c)}},
				   {.type = STRATA_TUPLE_INT64, .u.i = (int64_t)i}};
	size_t len = 0;
	strata_tuple_encode(k, 2, buf, cap, &len);
	return len;
}

/* Index key (population, id). */
static size_t pop_key(uint64_t i, int64_t pop, uint8_t *buf, size_t cap)
{
	strata_tuple_value k[2] = {{.type = STRATA_TUPLE_INT64, .u.i = pop},
				   {.type = STRATA_TUPLE_INT64, .u.i = (int64_t)i}};
	size_t len = 0;
	strata_tuple_encode(k, 2, buf, cap, &len);
	return len;
}

static int64_t population(uint64_t i)
{
	return (int64_t)((i * 7919) % 100000) - 500; /* some negative: tuples order them */
}

/* Puts rows [from, to) into both trees in transaction t. */
static int put_rows(strata_txn *t, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		uint8_t k[64], p[64], v[32];
		size_t kl = row_key(i, k, sizeof k), pl = pop_key(i, population(i), p, sizeof p);
		int vl = snprintf((char *)v, sizeof v, "row %" PRIu64, i);
		int rc = strata_bpt_put(t, "rows", k, kl, v, (size_t)vl, 0);
		if (rc || (rc = strata_bpt_put(t, "rows_by_pop", p, pl, k, kl, 0)))
			return rc;
	}
	return 0;
}

static int build(strata_store *s, cli_out *out)
{
	const char *names[] = {"rows", "rows_by_pop"};
	strata_txn *t;
	int rc = strata_txn_begin(s, names, 2, 0, &t);
	if (rc)
		return rc;
	if ((rc = strata_bpt_create(t, "rows", NULL)) || (rc = strata_bpt_create(t, "rows_by_pop", NULL)) ||
	    (rc = put_rows(t, 0, ROWS))) {
		strata_txn_abort(t);
		return rc;
	}
	if ((rc = strata_txn_commit(t, NULL)))
		return rc;
	cli_printf(out, "    One transaction created two B+trees, `rows` keyed by the tuple\n"
			"    (city, id) and `rows_by_pop` keyed by (population, id), and put\n"
			"    %d rows in both; a second one, aborted, leaves no trace:\n", ROWS);
	if ((rc = strata_txn_begin(s, names, 2, 0, &t)))
		return rc;
	rc = put_rows(t, ROWS, 2 * ROWS);
	strata_txn_abort(t);
	return rc;
}

static int show_reads(strata_store *s, cli_out *out)
{
	strata_snapshot *snap;
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		return rc;
	uint64_t all, oslo, neg;
	uint8_t lo[64], hi[64];
	strata_tuple_value c = {.type = STRATA_TUPLE_STRING, .u.s = {"Oslo", 4}};
	strata_tuple_value c2 = {.type = STRATA_TUPLE_STRING, .u.s = {"Quito", 5}};
	strata_tuple_value z = {.type = STRATA_TUPLE_INT64, .u.i = 0};
	size_t ll = 0, hl = 0, zl = 0;
	strata_tuple_encode(&c, 1, lo, sizeof lo, &ll);
	strata_tuple_encode(&c2, 1, hi, sizeof hi, &hl);
	strata_tuple_encode(&z, 1, hi + 32, 32, &zl);
	if ((rc = strata_bpt_count(snap, "rows", NULL, 0, NULL, 0, &all)) ||
	    (rc = strata_bpt_count(snap, "rows", lo, ll, hi, hl, &oslo)) ||
	    (rc = strata_bpt_count(snap, "rows_by_pop", NULL, 0, hi + 32, zl, &neg)))
		goto out;
	cli_printf(out, "    rows: %" PRIu64 "; rows in Oslo (count of a key range): %" PRIu64
			"; population < 0: %" PRIu64 "\n", all, oslo, neg);
	strata_bpt_cursor *cur;
	if ((rc = strata_bpt_cursor_open(snap, "rows_by_pop", &cur)))
		goto out;
	cli_printf(out, "    the 3 smallest populations, by a cursor on the index:\n");
	for (int i = 0; i < 3 && (rc = strata_bpt_cursor_next(cur)) == 0; i++) {
		const void *k, *v;
		size_t kl, vl;
		strata_tuple_value t[2];
		size_t n;
		if ((rc = strata_bpt_cursor_get(cur, &k, &kl, &v, &vl)) ||
		    (rc = strata_tuple_decode(k, kl, t, 2, &n, NULL, 0)))
			break;
		cli_printf(out, "      population %6" PRId64 "  id %5" PRId64 "\n", t[0].u.i, t[1].u.i);
	}
	strata_bpt_cursor_close(cur);
out:
	strata_snapshot_close(snap);
	return rc;
}

static int show_check(strata_store *s, cli_out *out)
{
	strata_snapshot *snap;
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		return rc;
	const char *names[] = {"rows", "rows_by_pop"};
	for (int i = 0; i < 2 && rc == 0; i++) {
		strata_bpt_stats st;
		if ((rc = strata_bpt_check(snap, names[i], NULL, NULL)) ||
		    (rc = strata_bpt_stats_get(snap, names[i], &st)))
			break;
		cli_printf(out, "    %-12s strata_bpt_check: clean; height %u, %" PRIu64
				" leaves (fill %.0f%%), %" PRIu64 " branch nodes\n",
			   names[i], st.height, st.leaf_nodes, st.leaf_fill * 100, st.branch_nodes);
	}
	strata_snapshot_close(snap);
	return rc;
}

int kv_demo(strata_store *s, cli_out *out)
{
	int rc = build(s, out);
	if (rc == 0)
		rc = show_reads(s, out);
	if (rc == 0)
		rc = show_check(s, out);
	return rc;
}
