/*
 * test_txn.c — write transactions: abort leaves no trace, copy-on-write
 * semantics, write conflicts, NOWAIT, root-name errors, parallelism on
 * disjoint roots and serialization on a shared one, and a long random
 * sequence of transactions checked step by step against a model of the
 * root catalog (with old snapshots held open across many commits).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "support/model.h"

/* Every test ends with a leak check in ASan builds (see model.h). */
TestSuite(txn, .fini = test_leak_check);
TestSuite(txn_random, .fini = test_leak_check);

/* ---- small helpers ------------------------------------------------------------ */

static strata_txn *begin1(strata_store *s, const char *name)
{
	strata_txn *t = NULL;
	int rc = strata_txn_begin(s, &name, name ? 1 : 0, 0, &t);
	cr_assert_eq(rc, 0, "begin %s: %s", name ? name : "-", strata_strerror(rc));
	return t;
}

static strata_node_id alloc_fill(strata_txn *t, uint32_t size, int fill)
{
	strata_node_id id;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, size, (uint8_t)fill, &id, &p), 0);
	memset(p, fill, size);
	return id;
}

static strata_node_id commit_root(strata_store *s, const char *name, uint32_t size, int fill)
{
	strata_txn *t = begin1(s, name);
	strata_node_id id = alloc_fill(t, size, fill);
	cr_assert_eq(strata_txn_set_root(t, name, id), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	return id;
}

static bool all_bytes(const void *p, uint32_t n, int v)
{
	const unsigned char *b = p;
	for (uint32_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)v)
			return false;
	return true;
}

/* Root `name` through a fresh snapshot: its node holds `size` bytes of `v`. */
static void expect_root(strata_store *s, const char *name, strata_node_id id, uint32_t size, int v)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_node_id got;
	cr_assert_eq(strata_snapshot_root(snap, name, &got), 0);
	cr_assert_eq(got, id, "root %s", name);
	const void *d;
	uint32_t n;
	cr_assert_eq(strata_resolve(snap, id, &d, &n), 0);
	cr_assert_eq(n, size);
	cr_assert(all_bytes(d, n, v), "root %s content changed", name);
	strata_snapshot_close(snap);
}

static strata_store_stats stats_of(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st;
}

/* ---- abort ---------------------------------------------------------------------- */

Test(txn, abort_leaves_no_trace)
{
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "a", 200, 0xaa);
	strata_node_id b = commit_root(s, "b", 3000, 0xbb);
	strata_store_stats before = stats_of(s);

	const char *names[] = {"a", "b", "c"};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	strata_node_id fresh[4];
	fresh[0] = alloc_fill(t, 100, 1);
	fresh[1] = alloc_fill(t, 70000, 2); /* a large object */
	fresh[2] = alloc_fill(t, 5000, 3);
	void *p;
	cr_assert_eq(strata_txn_write(t, a, &fresh[3], &p, NULL), 0); /* retires a */
	memset(p, 0x11, 200);
	cr_assert_eq(strata_txn_free(t, b), 0); /* retires b */
	cr_assert_eq(strata_txn_set_root(t, "a", fresh[3]), 0);
	cr_assert_eq(strata_txn_set_root(t, "b", STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_set_root(t, "c", fresh[0]), 0);
	strata_store_stats during = stats_of(s);
	cr_assert_eq(during.nodes_reserved, before.nodes_reserved + 4);
	strata_txn_abort(t);

	strata_store_stats after = stats_of(s);
	cr_assert_eq(after.nodes_live, before.nodes_live);
	cr_assert_eq(after.nodes_retired, before.nodes_retired);
	cr_assert_eq(after.nodes_reserved, before.nodes_reserved);
	cr_assert_eq(after.handles_total - after.handles_free, before.handles_total - before.handles_free,
		     "handles in use");
	cr_assert_eq(after.epoch_current, before.epoch_current, "abort publishes no epoch");
	cr_assert_eq(after.commits, before.commits);
	cr_assert_eq(after.aborts, before.aborts + 1);
	cr_assert_eq(after.large_objects, before.large_objects);
	cr_assert_eq(after.large_bytes, before.large_bytes);
	cr_assert_eq(after.pinned_retired_nodes, before.pinned_retired_nodes);
	cr_assert_eq(after.snapshots_open, 0);
	for (int i = 0; i < STRATA_NUM_CLASSES; i++) {
		cr_assert_eq(after.classes[i].slots_used, before.classes[i].slots_used, "class %d", i);
		cr_assert_eq(after.classes[i].bytes_requested, before.classes[i].bytes_requested);
	}
	/* Roots and their bytes as before; the new name never appeared. */
	expect_root(s, "a", a, 200, 0xaa);
	expect_root(s, "b", b, 3000, 0xbb);
	strata_snapshot *snap;
	strata_node_id id;
	const void *d;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_snapshot_root(snap, "c", &id), STRATA_ENOTFOUND);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(strata_resolve(snap, fresh[i], &d, NULL), STRATA_ESTALE, "fresh[%d]", i);
	strata_snapshot_close(snap);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);

	/* What the aborted txn retired is visible and writable again. */
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(strata_txn_read(t, fresh[i], &d, NULL, NULL), STRATA_ESTALE);
	strata_node_id a2;
	cr_assert_eq(strata_txn_write(t, a, &a2, &p, NULL), 0);
	cr_assert(all_bytes(p, 200, 0xaa), "the copy starts from the committed bytes");
	cr_assert_eq(strata_txn_free(t, b), 0);
	cr_assert_eq(strata_txn_set_root(t, "a", a2), 0);
	cr_assert_eq(strata_txn_set_root(t, "b", STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	expect_root(s, "a", a2, 200, 0xaa);
	test_close(s);
}

Test(txn, abort_of_txn_that_only_created_a_root)
{
	strata_store *s = test_open(NULL);
	strata_txn *t = begin1(s, "ghost");
	strata_node_id id;
	cr_assert_eq(strata_txn_get_root(t, "ghost", &id), 0);
	cr_assert_eq(id, STRATA_NODE_NULL);
	strata_txn_abort(t);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_snapshot_root(snap, "ghost", &id), STRATA_ENOTFOUND);
	strata_snapshot_close(snap);
	cr_assert_eq(stats_of(s).epoch_current, 1);
	strata_txn_abort(NULL); /* accepted */
	test_close(s);
}

/* ---- copy-on-write ------------------------------------------------------------ */

Test(txn, copy_on_write_semantics)
{
	strata_store *s = test_open(NULL);
	strata_txn *t = begin1(s, "r");
	strata_node_id x;
	void *p, *q;
	cr_assert_eq(strata_txn_alloc(t, 300, 42, &x, &p), 0);
	memset(p, 1, 300);
	strata_node_id same;
	uint32_t size = 0;
	cr_assert_eq(strata_txn_write(t, x, &same, &q, &size), 0);
	cr_assert_eq(same, x, "own node is written in place");
	cr_assert_eq(q, p);
	cr_assert_eq(size, 300);
	cr_assert_eq(strata_txn_set_root(t, "r", x), 0);
	uint64_t e1;
	cr_assert_eq(strata_txn_commit(t, &e1), 0);
	cr_assert_eq(e1, 2);

	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	const void *oldp;
	cr_assert_eq(strata_resolve(old, x, &oldp, NULL), 0);

	t = begin1(s, "r");
	strata_node_id x2;
	cr_assert_eq(strata_txn_write(t, x, &x2, &p, &size), 0);
	cr_assert_neq(x2, x, "a committed node is copied to a new id");
	cr_assert_neq(p, oldp);
	cr_assert_eq(size, 300);
	cr_assert(all_bytes(p, 300, 1), "the copy holds the old bytes");
	memset(p, 2, 300);
	const void *d;
	uint8_t kind;
	cr_assert_eq(strata_txn_read(t, x2, &d, &size, &kind), 0);
	cr_assert_eq(kind, 42, "kind survives the copy");
	cr_assert_eq(strata_txn_read(t, x, &d, NULL, NULL), STRATA_ENOTVISIBLE,
		     "the retired original is gone for its retirer");
	cr_assert_eq(strata_txn_write(t, x2, &same, &q, NULL), 0);
	cr_assert_eq(same, x2, "the copy is now own: in place");
	cr_assert_eq(q, p);
	cr_assert_eq(strata_txn_set_root(t, "r", x2), 0);
	cr_assert(all_bytes(oldp, 300, 1), "readers never see an open txn's bytes");
	uint64_t e2;
	cr_assert_eq(strata_txn_commit(t, &e2), 0);
	cr_assert_eq(e2, e1 + 1);

	/* The old snapshot still sees x, now retired as of e2. */
	strata_node_info info;
	cr_assert_eq(strata_resolve(old, x, &d, NULL), 0);
	cr_assert_eq(d, oldp);
	cr_assert(all_bytes(d, 300, 1));
	cr_assert_eq(strata_node_stat(old, x, &info), 0);
	cr_assert_eq(info.birth, e1);
	cr_assert_eq(info.retire, e2);
	cr_assert_eq(strata_resolve(old, x2, &d, NULL), STRATA_ENOTVISIBLE);
	strata_snapshot *now;
	cr_assert_eq(strata_snapshot_open(s, &now), 0);
	cr_assert_eq(strata_resolve(now, x, &d, NULL), STRATA_ENOTVISIBLE);
	cr_assert_eq(strata_node_stat(now, x2, &info), 0);
	cr_assert_eq(info.birth, e2);
	cr_assert_eq(info.retire, UINT64_MAX);
	cr_assert_eq(info.kind, 42);
	strata_snapshot_close(now);
	strata_snapshot_close(old);
	strata_reclaim(s);
	cr_assert_eq(stats_of(s).nodes_retired, 0);
	cr_assert_eq(stats_of(s).nodes_live, 1);
	expect_root(s, "r", x2, 300, 2);
	test_close(s);
}

/* Epochs end at 2^47 - 1: the commit that would take 2^47 returns
 * STRATA_EFULL and publishes nothing; nodes of the last epoch resolve. */
Test(txn, epochs_end_below_the_marker_range)
{
	strata_store *s = test_open(NULL);
	atomic_store(&s->epoch_current, EPOCH_PENDING - 2);
	strata_node_id x = commit_root(s, "r", 32, 4);
	cr_assert_eq(atomic_load(&s->epoch_current), EPOCH_PENDING - 1);
	expect_root(s, "r", x, 32, 4);
	strata_txn *t = begin1(s, "r");
	strata_node_id y = alloc_fill(t, 16, 6);
	cr_assert_eq(strata_txn_set_root(t, "r", y), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), STRATA_EFULL);
	cr_assert_eq(atomic_load(&s->epoch_current), EPOCH_PENDING - 1);
	expect_root(s, "r", x, 32, 4);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, y, &(const void *){NULL}, NULL), STRATA_ESTALE,
		     "the refused commit's node is gone");
	strata_snapshot_close(snap);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	test_close(s);
}

/* strata_txn_read_own tells committed nodes from the transaction's own,
 * and an own node's pointer is the one strata_txn_write hands back. */
Test(txn, read_own_tells_own_nodes_apart)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = commit_root(s, "r", 64, 3);
	strata_txn *t = begin1(s, "r");
	const void *d;
	uint32_t size = 0;
	int owned = -1;
	cr_assert_eq(strata_txn_read_own(t, x, &d, &size, &owned), 0);
	cr_assert(owned == 0 && size == 64 && all_bytes(d, 64, 3), "a committed node is not owned");
	strata_node_id x2;
	void *w;
	cr_assert_eq(strata_txn_write(t, x, &x2, &w, NULL), 0);
	cr_assert_eq(strata_txn_read_own(t, x2, &d, NULL, &owned), 0);
	cr_assert(owned == 1 && d == w, "the copy is owned, and its pointer is the writable one");
	((unsigned char *)w)[0] = 9;
	owned = -1;
	cr_assert_eq(strata_txn_read_own(t, x, &d, NULL, &owned), STRATA_ENOTVISIBLE);
	cr_assert_eq(owned, -1, "*owned is left alone on an error");
	cr_assert_eq(strata_txn_read_own(t, x2, &d, NULL, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_txn_read_own(t, x2 + (1ull << 36), &d, NULL, &owned), STRATA_ESTALE);
	cr_assert_eq(strata_txn_set_root(t, "r", x2), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);

	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, x2, &d, &size), 0);
	cr_assert(((const unsigned char *)d)[0] == 9 && all_bytes((const char *)d + 1, 63, 3));
	strata_snapshot_close(snap);
	test_close(s);
}

/* strata_txn_prefetch is a hint: any id (live, stale, NULL, past every
 * shard and chunk the store has, or with every bit set) and a NULL txn are
 * taken without effect, and what the transaction reads and commits is
 * unchanged (ASan watches the directory lookups). */
Test(txn, prefetch_is_only_a_hint)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = commit_root(s, "r", 64, 3);
	strata_txn *t = begin1(s, "r");
	const strata_node_id ids[] = {x, x + (1ull << 36), STRATA_NODE_NULL, ~0ull,
				      (uint64_t)0x3f | (uint64_t)0x3fffffff << 6, 63, 1ull << 6};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		strata_txn_prefetch(t, ids[i]);
		strata_txn_prefetch(NULL, ids[i]);
	}
	const void *d;
	uint32_t size = 0;
	int owned = -1;
	cr_assert_eq(strata_txn_read_own(t, x, &d, &size, &owned), 0);
	cr_assert(owned == 0 && size == 64 && all_bytes(d, 64, 3));
	strata_node_id x2;
	void *w;
	cr_assert_eq(strata_txn_write(t, x, &x2, &w, NULL), 0);
	strata_txn_prefetch(t, x2);
	strata_txn_prefetch(t, x); /* retired in this transaction */
	((unsigned char *)w)[0] = 7;
	cr_assert_eq(strata_txn_set_root(t, "r", x2), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, x2, &d, &size), 0);
	cr_assert(((const unsigned char *)d)[0] == 7 && all_bytes((const char *)d + 1, 63, 3));
	int rc = strata_resolve(snap, x, &d, &size); /* retired: reclaimed already, or not */
	cr_assert(rc == STRATA_ESTALE || rc == STRATA_ENOTVISIBLE, "old version: %d", rc);
	strata_snapshot_close(snap);
	test_close(s);
}

/* strata_txn_alloc_uninit: the caller's bytes are stored as written; the
 * checks are those of strata_txn_alloc. */
Test(txn, alloc_uninit_stores_what_the_caller_wrote)
{
	strata_store *s = test_open(NULL);
	strata_txn *t = begin1(s, "r");
	strata_node_id id;
	void *p;
	cr_assert_eq(strata_txn_alloc_uninit(t, 0, 1, &id, &p), STRATA_EINVAL);
	cr_assert_eq(strata_txn_alloc_uninit(t, STRATA_NODE_MAX + 1, 1, &id, &p), STRATA_ETOOBIG);
	cr_assert_eq(strata_txn_alloc_uninit(NULL, 8, 1, &id, &p), STRATA_EINVAL);
	cr_assert_eq(strata_txn_alloc_uninit(t, 300, 5, &id, &p), 0);
	memset(p, 0x5a, 300);
	int owned = 0;
	const void *d;
	cr_assert_eq(strata_txn_read_own(t, id, &d, NULL, &owned), 0);
	cr_assert(owned == 1 && d == p);
	cr_assert_eq(strata_txn_set_root(t, "r", id), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	expect_root(s, "r", id, 300, 0x5a);
	uint8_t kind = 0;
	t = begin1(s, NULL);
	cr_assert_eq(strata_txn_read(t, id, &d, NULL, &kind), 0);
	cr_assert_eq(kind, 5);
	strata_txn_abort(t);
	test_close(s);
}

/* strata_txn_rewrite: the new version is built from the old bytes, which
 * stay readable (a committed node's for old snapshots too). */
Test(txn, rewrite_builds_a_new_version_from_the_old)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = commit_root(s, "r", 200, 7);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);

	strata_txn *t = begin1(s, "r");
	strata_node_id x2, x3;
	void *p, *p3;
	const void *src, *src3;
	uint32_t osize = 0;
	cr_assert_eq(strata_txn_rewrite(t, x, 500, &x2, &p, &src, &osize), 0);
	cr_assert_neq(x2, x);
	cr_assert_eq(osize, 200);
	cr_assert(all_bytes(src, 200, 7), "the old bytes are handed over intact");
	memcpy(p, src, 200);
	memset((char *)p + 200, 8, 300);
	/* An own node is replaced too; its bytes stay readable until the end. */
	cr_assert_eq(strata_txn_rewrite(t, x2, 0, &x3, &p3, &src3, &osize), 0);
	cr_assert_neq(x3, x2);
	cr_assert_eq(src3, p, "the own node's bytes are the source");
	cr_assert_eq(osize, 500);
	memcpy(p3, src3, 500);
	cr_assert(all_bytes(src3, 200, 7), "the replaced own node is not freed before commit");
	uint32_t size;
	uint8_t kind;
	const void *d;
	cr_assert_eq(strata_txn_read(t, x3, &d, &size, &kind), 0);
	cr_assert_eq(size, 500);
	cr_assert_eq(kind, 7, "the kind is kept");
	cr_assert_eq(strata_txn_rewrite(t, x, 0, &x2, &p, &src, NULL), STRATA_ENOTVISIBLE,
		     "the claimed original is gone for its rewriter");
	cr_assert_eq(strata_txn_rewrite(t, x3, STRATA_NODE_MAX + 1, &x2, &p, &src, NULL),
		     STRATA_ETOOBIG);
	cr_assert_eq(strata_txn_rewrite(t, x3, 0, &x2, &p, NULL, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_txn_set_root(t, "r", x3), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);

	cr_assert_eq(strata_resolve(old, x, &d, &size), 0);
	cr_assert(size == 200 && all_bytes(d, 200, 7), "old snapshots keep the old version");
	strata_snapshot_close(old);
	strata_reclaim(s);
	cr_assert_eq(stats_of(s).nodes_live, 1, "only the last version lives");
	cr_assert_eq(stats_of(s).nodes_retired, 0);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	strata_snapshot *now;
	cr_assert_eq(strata_snapshot_open(s, &now), 0);
	cr_assert_eq(strata_resolve(now, x3, &d, &size), 0);
	cr_assert_eq(size, 500);
	cr_assert(all_bytes(d, 200, 7) && all_bytes((const char *)d + 200, 300, 8));
	cr_assert_eq(strata_resolve(now, x2, &d, NULL), STRATA_ESTALE, "the replaced own node is freed");
	strata_snapshot_close(now);

	/* Abort: the original stays live, the rewrites vanish. */
	t = begin1(s, "r");
	cr_assert_eq(strata_txn_rewrite(t, x3, 0, &x2, &p, &src, NULL), 0);
	cr_assert_eq(strata_txn_rewrite(t, x2, 64, &x, &p3, &src3, NULL), 0);
	strata_txn_abort(t);
	cr_assert_eq(stats_of(s).nodes_live, 1);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_snapshot_open(s, &now), 0);
	strata_node_id got;
	cr_assert_eq(strata_snapshot_root(now, "r", &got), 0);
	cr_assert_eq(got, x3);
	cr_assert_eq(strata_resolve(now, x3, &d, &size), 0);
	cr_assert(size == 500 && all_bytes((const char *)d + 200, 300, 8));
	strata_snapshot_close(now);
	test_close(s);
}

/* A handle freed inside a transaction may be issued to it again; only the
 * newer NodeID is born at commit (the older one must not be counted twice). */
Test(txn, handle_freed_and_reissued_in_one_txn)
{
	strata_store *s = test_open(NULL);
	strata_txn *t = begin1(s, "r");
	strata_node_id a = alloc_fill(t, 100, 1);
	cr_assert_eq(strata_txn_free(t, a), 0);
	strata_node_id b = alloc_fill(t, 100, 2);
	cr_assert(STRATA_NODEID_SHARD(a) == STRATA_NODEID_SHARD(b) &&
		  STRATA_NODEID_INDEX(a) == STRATA_NODEID_INDEX(b) && a != b,
		  "the freed handle is reissued under a new tag");
	cr_assert_eq(strata_txn_set_root(t, "r", b), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(stats_of(s).nodes_live, 1);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	expect_root(s, "r", b, 100, 2);
	test_close(s);
}

Test(txn, commit_without_changes_publishes_no_epoch)
{
	strata_store *s = test_open(NULL);
	commit_root(s, "r", 10, 1);
	uint64_t cur = stats_of(s).epoch_current;
	strata_txn *t = begin1(s, "r");
	strata_node_id tmp = alloc_fill(t, 10, 9);
	cr_assert_eq(strata_txn_free(t, tmp), 0); /* alloc + free in place: nothing */
	uint64_t e;
	cr_assert_eq(strata_txn_commit(t, &e), 0);
	cr_assert_eq(e, cur);
	cr_assert_eq(stats_of(s).epoch_current, cur);
	/* A new name alone is a change: the empty root appears. */
	t = begin1(s, "empty");
	cr_assert_eq(strata_txn_commit(t, &e), 0);
	cr_assert_eq(e, cur + 1);
	strata_snapshot *snap;
	strata_node_id id = 123;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_snapshot_root(snap, "empty", &id), 0);
	cr_assert_eq(id, STRATA_NODE_NULL);
	strata_snapshot_close(snap);
	test_close(s);
}

/* ---- conflicts and locks ---------------------------------------------------------- */

/* One node named by two roots, so two transactions can both reach it. */
static strata_node_id shared_node(strata_store *s)
{
	const char *names[] = {"a", "b"};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	strata_node_id x = alloc_fill(t, 128, 7);
	cr_assert_eq(strata_txn_set_root(t, "a", x), 0);
	cr_assert_eq(strata_txn_set_root(t, "b", x), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	return x;
}

Test(txn, write_conflict_on_a_shared_node)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = shared_node(s);
	strata_txn *t1 = begin1(s, "a"), *t2 = begin1(s, "b");
	strata_node_id n1, n2;
	void *p;
	cr_assert_eq(strata_txn_write(t1, x, &n1, &p, NULL), 0);
	uint64_t reserved = stats_of(s).nodes_reserved;
	cr_assert_eq(strata_txn_write(t2, x, &n2, &p, NULL), STRATA_EBUSY);
	cr_assert_eq(strata_txn_free(t2, x), STRATA_EBUSY);
	cr_assert_eq(stats_of(s).nodes_reserved, reserved, "a refused write allocates nothing");
	const void *d;
	cr_assert_eq(strata_txn_read(t2, x, &d, NULL, NULL), 0, "still readable by the loser");
	cr_assert_eq(strata_txn_set_root(t1, "a", n1), 0);
	cr_assert_eq(strata_txn_commit(t1, NULL), 0);
	/* t2 began before the commit: x is in its view but retired. */
	cr_assert_eq(strata_txn_write(t2, x, &n2, &p, NULL), STRATA_EBUSY);
	strata_txn_abort(t2);
	strata_txn *t3 = begin1(s, "b");
	cr_assert_eq(strata_txn_read(t3, x, &d, NULL, NULL), STRATA_ENOTVISIBLE);
	cr_assert_eq(strata_txn_set_root(t3, "b", n1), 0);
	cr_assert_eq(strata_txn_commit(t3, NULL), 0);
	test_close(s);
}

Test(txn, loser_wins_after_the_winner_aborts)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = shared_node(s);
	strata_txn *t1 = begin1(s, "a"), *t2 = begin1(s, "b");
	cr_assert_eq(strata_txn_free(t1, x), 0);
	cr_assert_eq(strata_txn_free(t2, x), STRATA_EBUSY);
	strata_txn_abort(t1);
	strata_node_id n2;
	void *p;
	cr_assert_eq(strata_txn_write(t2, x, &n2, &p, NULL), 0);
	cr_assert_eq(strata_txn_set_root(t2, "b", n2), 0);
	cr_assert_eq(strata_txn_commit(t2, NULL), 0);
	/* Root a still names x, retired now: reset it before checking. */
	strata_txn *t3 = begin1(s, "a");
	cr_assert_eq(strata_txn_set_root(t3, "a", n2), 0);
	cr_assert_eq(strata_txn_commit(t3, NULL), 0);
	test_close(s);
}

Test(txn, nowait_on_a_held_root_is_busy)
{
	strata_store *s = test_open(NULL);
	strata_txn *t1 = begin1(s, "a");
	const char *one[] = {"a"}, *two[] = {"z", "a"}, *z[] = {"z"};
	strata_txn *t2 = (strata_txn *)1;
	cr_assert_eq(strata_txn_begin(s, one, 1, STRATA_TXN_NOWAIT, &t2), STRATA_EBUSY);
	cr_assert_null(t2);
	cr_assert_eq(strata_txn_begin(s, two, 2, STRATA_TXN_NOWAIT, &t2), STRATA_EBUSY);
	/* The failed begin must not keep "z" locked nor hold a pin. */
	cr_assert_eq(strata_txn_begin(s, z, 1, STRATA_TXN_NOWAIT, &t2), 0);
	cr_assert_eq(stats_of(s).snapshots_open, 2);
	strata_txn_abort(t2);
	strata_txn_abort(t1);
	cr_assert_eq(strata_txn_begin(s, one, 1, STRATA_TXN_NOWAIT, &t2), 0, "free again");
	strata_txn_abort(t2);
	cr_assert_eq(strata_close(s), 0, "no transaction leaked");
}

Test(txn, roots_not_named_are_not_locked)
{
	strata_store *s = test_open(NULL);
	commit_root(s, "b", 8, 1);
	strata_txn *t = begin1(s, "a");
	strata_node_id id;
	cr_assert_eq(strata_txn_get_root(t, "b", &id), STRATA_ENOTLOCKED);
	cr_assert_eq(strata_txn_set_root(t, "b", STRATA_NODE_NULL), STRATA_ENOTLOCKED);
	cr_assert_eq(strata_txn_get_root(t, "a", &id), 0);
	strata_txn_abort(t);
	t = begin1(s, NULL); /* no roots at all */
	cr_assert_eq(strata_txn_get_root(t, "a", &id), STRATA_ENOTLOCKED);
	cr_assert_eq(strata_txn_set_root(t, "a", STRATA_NODE_NULL), STRATA_ENOTLOCKED);
	strata_txn_abort(t);
	test_close(s);
}

/* A root is found by its whole name: no prefix of it, nothing it is a
 * prefix of, and a name longer than any root's still reads ENAME. */
Test(txn, roots_match_whole_names_only)
{
	strata_store *s = test_open(NULL);
	char longest[STRATA_ROOT_NAME_MAX + 1], too_long[STRATA_ROOT_NAME_MAX + 2];
	memset(longest, 'x', sizeof longest - 1);
	longest[sizeof longest - 1] = 0;
	memset(too_long, 'x', sizeof too_long - 1); /* longest plus one more 'x' */
	too_long[sizeof too_long - 1] = 0;
	const char *names[] = {"alphabet", "alpha", longest};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	strata_node_id id;
	const char *absent[] = {"alph", "alphab", "alphabets", "alphA", "b"};
	for (int i = 0; i < 5; i++)
		cr_assert_eq(strata_txn_get_root(t, absent[i], &id), STRATA_ENOTLOCKED, "%s", absent[i]);
	cr_assert_eq(strata_txn_get_root(t, too_long, &id), STRATA_ENAME);
	cr_assert_eq(strata_txn_set_root(t, "alpha", STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_set_root(t, "alphabet", STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_set_root(t, longest, STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	test_close(s);
}

Test(txn, bad_names_and_arguments)
{
	strata_store *s = test_open(NULL);
	char longest[STRATA_ROOT_NAME_MAX + 1], too_long[STRATA_ROOT_NAME_MAX + 2];
	memset(longest, 'x', sizeof longest - 1);
	longest[sizeof longest - 1] = 0;
	memset(too_long, 'y', sizeof too_long - 1);
	too_long[sizeof too_long - 1] = 0;
	const char *bad[] = {NULL, "", too_long};
	strata_txn *t;
	for (int i = 0; i < 3; i++) {
		const char *names[] = {"ok", bad[i]};
		cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), STRATA_ENAME, "bad name %d", i);
	}
	const char *names[] = {longest, "ok", "ok"}; /* duplicates collapse */
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	strata_node_id id;
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(strata_txn_get_root(t, bad[i], &id), STRATA_ENAME);
		cr_assert_eq(strata_txn_set_root(t, bad[i], STRATA_NODE_NULL), STRATA_ENAME);
	}
	void *p;
	cr_assert_eq(strata_txn_alloc(t, 0, 0, &id, &p), STRATA_EINVAL);
	cr_assert_eq(strata_txn_alloc(t, STRATA_NODE_MAX + 1, 0, &id, &p), STRATA_ETOOBIG);
	cr_assert_eq(strata_txn_alloc(t, 8, 0, NULL, &p), STRATA_EINVAL);
	cr_assert_eq(strata_txn_alloc(t, STRATA_NODE_MAX, 0, &id, &p), 0, "the largest node");
	cr_assert_eq(strata_txn_set_root(t, longest, id), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_txn_begin(s, names, 1, 0x80, &t), STRATA_EINVAL, "unknown flag");
	cr_assert_eq(strata_txn_begin(s, NULL, 1, 0, &t), STRATA_EINVAL);
	cr_assert_eq(strata_txn_begin(NULL, names, 1, 0, &t), STRATA_EINVAL);
	cr_assert_eq(strata_txn_commit(NULL, NULL), STRATA_EINVAL);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(strata_snapshot_root(snap, bad[i], &id), STRATA_ENAME);
	cr_assert_eq(strata_snapshot_root(snap, longest, &id), 0);
	cr_assert_eq(strata_snapshot_root(snap, "ok", &id), 0);
	cr_assert_eq(id, STRATA_NODE_NULL);
	strata_snapshot_close(snap);
	cr_assert_eq(stats_of(s).large_objects, 1);
	test_close(s);
}

/* ---- threads ---------------------------------------------------------------------- */

typedef struct par_arg {
	strata_store *s;
	const char *root;
	_Atomic int *open_now; /* transactions currently open */
	bool overlapped;       /* saw both open at once */
	int rc;
	uint64_t epoch;
	strata_node_id id;
} par_arg;

static void *par_worker(void *p)
{
	par_arg *a = p;
	strata_txn *t;
	if ((a->rc = strata_txn_begin(a->s, &a->root, 1, 0, &t)))
		return NULL;
	void *d;
	if ((a->rc = strata_txn_alloc(t, 64, 0, &a->id, &d))) {
		strata_txn_abort(t);
		return NULL;
	}
	memset(d, a->root[0], 64);
	strata_txn_set_root(t, a->root, a->id);
	atomic_fetch_add(a->open_now, 1);
	/* Wait (bounded) for the other transaction to be open too: if
	 * disjoint roots serialized, it never would be. */
	double until = test_now_s() + 10;
	while (atomic_load(a->open_now) < 2 && test_now_s() < until)
		sched_yield();
	a->overlapped = atomic_load(a->open_now) >= 2;
	a->rc = strata_txn_commit(t, &a->epoch);
	return NULL;
}

Test(txn, disjoint_roots_run_in_parallel, .timeout = 60)
{
	strata_store *s = test_open(NULL);
	_Atomic int open_now = 0;
	par_arg a[2] = {{s, "left", &open_now, false, -1, 0, 0},
			{s, "right", &open_now, false, -1, 0, 0}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, par_worker, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(a[i].rc, 0, "%s: %s", a[i].root, strata_strerror(a[i].rc));
		cr_assert(a[i].overlapped, "%s never saw the other txn open", a[i].root);
	}
	cr_assert_neq(a[0].epoch, a[1].epoch, "each commit publishes its own epoch");
	expect_root(s, "left", a[0].id, 64, 'l');
	expect_root(s, "right", a[1].id, 64, 'r');
	test_close(s);
}

typedef struct ser_arg {
	strata_store *s;
	_Atomic int trying; /* about to call strata_txn_begin */
	_Atomic int began;
	strata_node_id seen;
	uint64_t base;
	int rc;
} ser_arg;

static void *ser_worker(void *p)
{
	ser_arg *a = p;
	strata_txn *t;
	const char *name = "shared";
	atomic_store(&a->trying, 1);
	if ((a->rc = strata_txn_begin(a->s, &name, 1, 0, &t)))
		return NULL;
	atomic_store(&a->began, 1);
	a->base = strata_txn_base_epoch(t);
	a->rc = strata_txn_get_root(t, name, &a->seen);
	strata_txn_abort(t);
	return NULL;
}

Test(txn, shared_root_blocks_until_commit, .timeout = 60)
{
	strata_store *s = test_open(NULL);
	strata_txn *t = begin1(s, "shared");
	strata_node_id x = alloc_fill(t, 16, 5);
	cr_assert_eq(strata_txn_set_root(t, "shared", x), 0);
	ser_arg a = {s, 0, 0, 0, 0, -1};
	pthread_t th;
	pthread_create(&th, NULL, ser_worker, &a);
	/* Once the waiter is at the door, give it ample time to get in. */
	while (!atomic_load(&a.trying))
		sched_yield();
	usleep(200 * 1000);
	int began_early = atomic_load(&a.began);
	uint64_t e;
	cr_assert_eq(strata_txn_commit(t, &e), 0);
	pthread_join(th, NULL);
	cr_assert_eq(began_early, 0, "second txn on the same root did not wait");
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(a.seen, x, "the waiter reads the first txn's commit");
	cr_assert_geq(a.base, e);
	test_close(s);
}

/* strata_check while writers allocate, free and abort on their own roots
 * (and one with no root at all): every check is clean. Writers' own frees
 * (an abort, strata_txn_free of a node born in the transaction) release
 * a slot and an entry outside the commit lock, so a check that only held
 * that lock could count one without the other. */
typedef struct chk_arg {
	strata_store *s;
	const char *root; /* NULL: a transaction without roots */
	_Atomic bool *stop;
	_Atomic uint64_t txns;
	int rc;
} chk_arg;

static int chk_round(chk_arg *a, test_rng *r)
{
	strata_txn *t;
	int rc = strata_txn_begin(a->s, &a->root, a->root ? 1 : 0, 0, &t);
	if (rc)
		return rc;
	strata_node_id ids[8], last = 0;
	for (int i = 0; i < 8 && !rc; i++) {
		void *p;
		uint32_t size = 16u << rng_below(r, 8);
		if (!(rc = strata_txn_alloc(t, size, 1, &ids[i], &p)))
			memset(p, i, size);
	}
	for (int i = 0; i < 8 && !rc; i += 2) /* own frees: outside the commit lock */
		rc = strata_txn_free(t, ids[i]);
	if (!rc && a->root && (rc = strata_txn_get_root(t, a->root, &last)) == 0 && last)
		rc = strata_txn_free(t, last);
	if (!rc && a->root)
		rc = strata_txn_set_root(t, a->root, ids[1]);
	if (rc || rng_below(r, 3) == 0 || !a->root) {
		strata_txn_abort(t);
		return rc;
	}
	return strata_txn_commit(t, NULL);
}

static void *chk_writer(void *p)
{
	chk_arg *a = p;
	test_rng r = {(uint64_t)(uintptr_t)p};
	while (!atomic_load(a->stop) && !a->rc) {
		a->rc = chk_round(a, &r);
		atomic_fetch_add(&a->txns, 1);
	}
	return NULL;
}

static void check_while_writers_run(strata_store *s)
{
	_Atomic bool stop = false;
	chk_arg a[3] = {{s, "a", &stop, 0, 0}, {s, "b", &stop, 0, 0}, {s, NULL, &stop, 0, 0}};
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, chk_writer, &a[i]), 0);
	int checks = 0, bad = 0;
	test_collect col = {0};
	char first[300] = "";
	double until = test_now_s() + 60;
	/* 200 checks, and on until every writer has run a while (bounded). */
	while (checks < 200 || ((atomic_load(&a[0].txns) < 1000 || atomic_load(&a[1].txns) < 1000 ||
				 atomic_load(&a[2].txns) < 1000) &&
				test_now_s() < until)) {
		int rc = strata_check(s, test_report_collect, &col);
		if (rc && !bad++)
			snprintf(first, sizeof first, "%s: %s", strata_strerror(rc), strata_last_error());
		checks++;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(a[i].rc, 0, "writer %d: %s", i, strata_strerror(a[i].rc));
	}
	cr_log_info("%d checks during %" PRIu64 " + %" PRIu64 " + %" PRIu64 " transactions", checks,
		    atomic_load(&a[0].txns), atomic_load(&a[1].txns), atomic_load(&a[2].txns));
	cr_assert_eq(bad, 0, "%d of %d checks failed; the first: %s (%s)", bad, checks, first,
		     col.first);
	test_close(s);
}

Test(txn, check_is_clean_while_writers_run, .timeout = 120)
{
	check_while_writers_run(test_open(NULL));
}

/* DURABLE: frees go through limbo, checkpoints run in the background. */
Test(txn, check_is_clean_while_writers_run_durable, .timeout = 120)
{
	char dir[] = "/tmp/strata-txn-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	strata_options o = test_durable_options(dir, false);
	o.durability = STRATA_ASYNC;
	o.checkpoint_dirty_nodes = 2000;
	check_while_writers_run(test_open(&o));
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* The gate's edges, through the internal call strata_check makes (with a
 * short wait): a NOWAIT begin is refused while it is closed, a plain one
 * waits for it to open; a transaction that does not end in time makes it
 * STRATA_EBUSY, and the gate is open again. */
typedef struct gate_arg {
	strata_store *s;
	unsigned flags;
	_Atomic int state; /* 1 calling begin, 2 begun (or refused) */
	int rc;
} gate_arg;

static void *gate_begin(void *p)
{
	gate_arg *g = p;
	strata_txn *t;
	const char *name = "g";
	atomic_store(&g->state, 1);
	g->rc = strata_txn_begin(g->s, &name, 1, g->flags, &t);
	atomic_store(&g->state, 2);
	if (!g->rc)
		strata_txn_abort(t);
	return NULL;
}

Test(txn, check_gate_holds_new_writers_and_gives_up_in_time, .timeout = 60)
{
	strata_store *s = test_open(NULL);
	cr_assert_eq(txn_gate_close(s, 100), 0);
	gate_arg nowait = {s, STRATA_TXN_NOWAIT, 0, -1}, wait = {s, 0, 0, -1};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, gate_begin, &nowait), 0);
	pthread_join(th, NULL);
	cr_assert_eq(nowait.rc, STRATA_EBUSY, "NOWAIT begin through a closed gate");
	cr_assert_eq(pthread_create(&th, NULL, gate_begin, &wait), 0);
	while (atomic_load(&wait.state) == 0)
		sched_yield();
	usleep(100 * 1000);
	cr_assert_eq(atomic_load(&wait.state), 1, "begin went through a closed gate");
	txn_gate_open(s);
	pthread_join(th, NULL);
	cr_assert_eq(wait.rc, 0);

	/* A transaction that outlives the wait (here the caller's own): EBUSY
	 * after the wait, and the gate open again. */
	strata_txn *t = begin1(s, "mine");
	double t0 = test_now_s();
	cr_assert_eq(txn_gate_close(s, 100), STRATA_EBUSY);
	cr_assert_geq(test_now_s() - t0, 0.09);
	cr_assert(strstr(strata_last_error(), "write transactions still open after 100 ms (1)"), "%s",
		  strata_last_error());
	nowait.state = 0;
	gate_begin(&nowait);
	cr_assert_eq(nowait.rc, 0, "the gate stayed closed after a check gave up");
	strata_txn_abort(t);
	test_close(s);
}

/* ---- random transactions against a model of the root catalog ----------------------- */

#define NR 6     /* roots */
#define MAXK 4   /* children per root node */
#define RMAGIC 0x524f4f54u
#define KMAGIC 0x4b494453u

typedef struct rnode {
	uint32_t magic, root;
	uint64_t value;
	uint32_t nkids, extra;
	strata_node_id kids[MAXK];
	/* then `extra` pattern bytes */
} rnode;

typedef struct knode {
	uint32_t magic, root;
	uint64_t value;
	uint32_t slot, size;
	/* then pattern bytes up to size */
} knode;

typedef struct mroot {
	bool exists;        /* the name has been committed */
	strata_node_id id;  /* root node, or NULL (empty) */
	uint64_t value;
	uint32_t nkids, extra;
	strata_node_id kids[MAXK];
	uint32_t kid_size[MAXK];
} mroot;

typedef struct mstate {
	mroot r[NR];
} mstate;

static const char *root_names[NR] = {"root0", "root1", "root2", "root3", "root4", "root5"};

static unsigned char pat(uint64_t value, uint32_t salt, uint32_t i)
{
	return (unsigned char)(value * 31 + salt * 7 + i);
}

/* Reads a node, through a snapshot or a transaction. */
typedef struct reader {
	const strata_snapshot *snap;
	strata_txn *txn;
} reader;

static int rd(const reader *r, strata_node_id id, const void **d, uint32_t *size)
{
	return r->snap ? strata_resolve(r->snap, id, d, size) : strata_txn_read(r->txn, id, d, size, NULL);
}

/* The tree under one root must be exactly what the model says. */
static void verify_tree(const reader *rdr, const mroot *m, uint32_t r, uint64_t seed, int step)
{
	if (m->id == STRATA_NODE_NULL)
		return;
	const void *d;
	uint32_t size;
	int rc = rd(rdr, m->id, &d, &size);
	cr_assert_eq(rc, 0, "seed %llu step %d root %u: %s", (unsigned long long)seed, step, r,
		     strata_strerror(rc));
	const rnode *n = d;
	cr_assert_eq(size, sizeof *n + m->extra, "seed %llu step %d", (unsigned long long)seed, step);
	cr_assert(n->magic == RMAGIC && n->root == r && n->value == m->value && n->nkids == m->nkids,
		  "seed %llu step %d root %u: node says (%u, %llu, %u) model (%llu, %u)",
		  (unsigned long long)seed, step, r, n->root, (unsigned long long)n->value, n->nkids,
		  (unsigned long long)m->value, m->nkids);
	const unsigned char *tail = (const unsigned char *)(n + 1);
	for (uint32_t i = 0; i < m->extra; i++)
		cr_assert_eq(tail[i], pat(m->value, r, i), "seed %llu step %d", (unsigned long long)seed, step);
	for (uint32_t j = 0; j < m->nkids; j++) {
		cr_assert_eq(n->kids[j], m->kids[j], "seed %llu step %d kid %u", (unsigned long long)seed,
			     step, j);
		rc = rd(rdr, m->kids[j], &d, &size);
		cr_assert_eq(rc, 0, "seed %llu step %d kid %u: %s", (unsigned long long)seed, step, j,
			     strata_strerror(rc));
		const knode *k = d;
		cr_assert_eq(size, m->kid_size[j], "seed %llu step %d kid %u", (unsigned long long)seed, step, j);
		cr_assert(k->magic == KMAGIC && k->root == r && k->value == m->value && k->slot == j &&
				  k->size == size,
			  "seed %llu step %d root %u kid %u content", (unsigned long long)seed, step, r, j);
		const unsigned char *kb = (const unsigned char *)(k + 1);
		for (uint32_t i = 0; i < size - sizeof *k; i++)
			cr_assert_eq(kb[i], pat(m->value, r + 100 + j, i), "seed %llu step %d kid %u byte %u",
				     (unsigned long long)seed, step, j, i);
	}
}

/* A snapshot must show every root exactly as model `m`. */
static void verify_snapshot(const strata_snapshot *snap, const mstate *m, uint64_t seed, int step)
{
	reader rdr = {snap, NULL};
	for (uint32_t r = 0; r < NR; r++) {
		strata_node_id id;
		int rc = strata_snapshot_root(snap, root_names[r], &id);
		if (!m->r[r].exists) {
			cr_assert_eq(rc, STRATA_ENOTFOUND, "seed %llu step %d root %u", (unsigned long long)seed,
				     step, r);
			continue;
		}
		cr_assert_eq(rc, 0, "seed %llu step %d root %u: %s", (unsigned long long)seed, step, r,
			     strata_strerror(rc));
		cr_assert_eq(id, m->r[r].id, "seed %llu step %d root %u", (unsigned long long)seed, step, r);
		verify_tree(&rdr, &m->r[r], r, seed, step);
	}
}

static void write_rnode(rnode *n, const mroot *m, uint32_t r)
{
	n->magic = RMAGIC;
	n->root = r;
	n->value = m->value;
	n->nkids = m->nkids;
	n->extra = m->extra;
	memset(n->kids, 0, sizeof n->kids);
	memcpy(n->kids, m->kids, sizeof(strata_node_id) * m->nkids);
	unsigned char *tail = (unsigned char *)(n + 1);
	for (uint32_t i = 0; i < m->extra; i++)
		tail[i] = pat(m->value, r, i);
}

static void write_knode(knode *k, const mroot *m, uint32_t r, uint32_t j)
{
	k->magic = KMAGIC;
	k->root = r;
	k->value = m->value;
	k->slot = j;
	k->size = m->kid_size[j];
	unsigned char *kb = (unsigned char *)(k + 1);
	for (uint32_t i = 0; i < k->size - sizeof *k; i++)
		kb[i] = pat(m->value, r + 100 + j, i);
}

/* One transaction's bookkeeping. */
typedef struct txn_ctx {
	strata_txn *t;
	test_rng *rng;
	uint64_t seed;
	int step;
	mstate m;                  /* the model as this txn sees it */
	strata_node_id own[256];   /* allocated here, still held */
	int nown;
	strata_node_id retired[256]; /* committed nodes this txn retired */
	int nretired;
	bool changed;
} txn_ctx;

static bool is_own(const txn_ctx *c, strata_node_id id)
{
	for (int i = 0; i < c->nown; i++)
		if (c->own[i] == id)
			return true;
	return false;
}

static void drop_own(txn_ctx *c, strata_node_id id)
{
	for (int i = 0; i < c->nown; i++)
		if (c->own[i] == id) {
			c->own[i] = c->own[--c->nown];
			return;
		}
}

static uint32_t kid_size(test_rng *r)
{
	/* Mostly small, sometimes medium, rarely a large object. */
	uint64_t k = rng_below(r, 100);
	if (k == 0)
		return SMALL_MAX + 1 + (uint32_t)rng_below(r, 5000);
	if (k < 10)
		return 600 + (uint32_t)rng_below(r, 6000);
	return (uint32_t)sizeof(knode) + (uint32_t)rng_below(r, 300);
}

static strata_node_id c_alloc(txn_ctx *c, uint32_t size, void **p)
{
	strata_node_id id;
	int rc = strata_txn_alloc(c->t, size, 1, &id, p);
	cr_assert_eq(rc, 0, "seed %llu step %d: alloc %s", (unsigned long long)c->seed, c->step,
		     strata_strerror(rc));
	cr_assert_lt(c->nown, 256, "seed %llu step %d", (unsigned long long)c->seed, c->step);
	c->own[c->nown++] = id;
	return id;
}

/* Copy-on-write of `id`: in place if own, else a new id and `id` retired. */
static strata_node_id c_write(txn_ctx *c, strata_node_id id, void **p)
{
	strata_node_id nid;
	bool own = is_own(c, id);
	int rc = strata_txn_write(c->t, id, &nid, p, NULL);
	cr_assert_eq(rc, 0, "seed %llu step %d: write %s", (unsigned long long)c->seed, c->step,
		     strata_strerror(rc));
	if (own) {
		cr_assert_eq(nid, id, "seed %llu step %d: own node must stay in place",
			     (unsigned long long)c->seed, c->step);
	} else {
		cr_assert_neq(nid, id, "seed %llu step %d", (unsigned long long)c->seed, c->step);
		c->retired[c->nretired++] = id;
		c->own[c->nown++] = nid;
	}
	return nid;
}

static void c_free(txn_ctx *c, strata_node_id id)
{
	bool own = is_own(c, id);
	int rc = strata_txn_free(c->t, id);
	cr_assert_eq(rc, 0, "seed %llu step %d: free %s", (unsigned long long)c->seed, c->step,
		     strata_strerror(rc));
	const void *d;
	if (own) {
		drop_own(c, id);
		cr_assert_eq(strata_txn_read(c->t, id, &d, NULL, NULL), STRATA_ESTALE, "seed %llu step %d",
			     (unsigned long long)c->seed, c->step);
	} else {
		c->retired[c->nretired++] = id;
		cr_assert_eq(strata_txn_read(c->t, id, &d, NULL, NULL), STRATA_ENOTVISIBLE,
			     "seed %llu step %d", (unsigned long long)c->seed, c->step);
	}
}

static void free_tree(txn_ctx *c, mroot *m)
{
	for (uint32_t j = 0; j < m->nkids; j++)
		c_free(c, m->kids[j]);
	if (m->id)
		c_free(c, m->id);
	m->id = STRATA_NODE_NULL;
	m->nkids = 0;
}

static void write_root_node(txn_ctx *c, mroot *m, uint32_t r)
{
	void *p;
	m->id = m->id ? c_write(c, m->id, &p) : c_alloc(c, (uint32_t)sizeof(rnode) + m->extra, &p);
	write_rnode(p, m, r);
}

static void new_tree(txn_ctx *c, mroot *m, uint32_t r)
{
	m->value = rng_next(c->rng);
	m->extra = (uint32_t)rng_below(c->rng, 2000);
	m->nkids = (uint32_t)rng_below(c->rng, MAXK + 1);
	for (uint32_t j = 0; j < m->nkids; j++) {
		void *p;
		m->kid_size[j] = kid_size(c->rng);
		m->kids[j] = c_alloc(c, m->kid_size[j], &p);
		write_knode(p, m, r, j);
	}
	write_root_node(c, m, r);
}

/* New value everywhere, by copy-on-write of every node of the tree. */
static void cow_tree(txn_ctx *c, mroot *m, uint32_t r)
{
	m->value = rng_next(c->rng);
	for (uint32_t j = 0; j < m->nkids; j++) {
		void *p;
		m->kids[j] = c_write(c, m->kids[j], &p);
		write_knode(p, m, r, j);
	}
	write_root_node(c, m, r);
	if (rng_below(c->rng, 4) == 0)
		write_root_node(c, m, r); /* a second write is in place */
}

/* Drop or add one child (value unchanged). */
static void reshape_tree(txn_ctx *c, mroot *m, uint32_t r)
{
	if (m->nkids && (m->nkids == MAXK || rng_below(c->rng, 2))) {
		uint32_t j = (uint32_t)rng_below(c->rng, m->nkids);
		c_free(c, m->kids[j]);
		/* Children record their slot: rewrite the ones that move. */
		for (uint32_t k = j; k + 1 < m->nkids; k++) {
			void *p;
			m->kids[k] = c_write(c, m->kids[k + 1], &p);
			m->kid_size[k] = m->kid_size[k + 1];
			write_knode(p, m, r, k);
		}
		m->nkids--;
	} else {
		void *p;
		uint32_t j = m->nkids++;
		m->kid_size[j] = kid_size(c->rng);
		m->kids[j] = c_alloc(c, m->kid_size[j], &p);
		write_knode(p, m, r, j);
	}
	write_root_node(c, m, r);
}

static void one_op(txn_ctx *c, uint32_t r)
{
	mroot *m = &c->m.r[r];
	unsigned op = (unsigned)rng_below(c->rng, 6);
	if (!m->id && op >= 2)
		op = op == 5 ? 5 : 1; /* an empty root can only be filled */
	reader rdr = {NULL, c->t};
	switch (op) {
	case 0: /* read only */
		verify_tree(&rdr, m, r, c->seed, c->step);
		return;
	case 1:
		free_tree(c, m);
		new_tree(c, m, r);
		break;
	case 2:
		cow_tree(c, m, r);
		break;
	case 3:
		free_tree(c, m);
		break;
	case 4:
		reshape_tree(c, m, r);
		break;
	case 5: { /* scratch node born and freed here: leaves nothing */
		void *p;
		strata_node_id tmp = c_alloc(c, 1 + (uint32_t)rng_below(c->rng, 4000), &p);
		c_free(c, tmp);
		return;
	}
	}
	cr_assert_eq(strata_txn_set_root(c->t, root_names[r], m->id), 0, "seed %llu step %d",
		     (unsigned long long)c->seed, c->step);
	c->changed = true;
	strata_node_id got;
	cr_assert_eq(strata_txn_get_root(c->t, root_names[r], &got), 0);
	cr_assert_eq(got, m->id, "seed %llu step %d root %u", (unsigned long long)c->seed, c->step, r);
	verify_tree(&rdr, m, r, c->seed, c->step);
}

static uint64_t model_live_nodes(const mstate *m)
{
	uint64_t n = 0;
	for (int r = 0; r < NR; r++)
		if (m->r[r].exists && m->r[r].id)
			n += 1 + m->r[r].nkids;
	return n;
}

/* Old snapshots kept open with the model state they must keep showing. */
#define HELD 3
typedef struct held_snap {
	strata_snapshot *snap;
	mstate m;
	int step;
} held_snap;

#define RECENT 128
typedef struct random_run {
	strata_store *s;
	test_rng rng;
	uint64_t seed;
	mstate m;
	held_snap held[HELD];
	strata_node_id recent[RECENT]; /* retired by committed txns */
	int nrecent;
	int commits, aborts;
	int published; /* commits that published an epoch */
} random_run;

static void random_step(random_run *w, int step)
{
	/* Lock 1..3 distinct roots. */
	uint32_t picked[3];
	const char *names[3];
	int np = 1 + (int)rng_below(&w->rng, 3);
	for (int i = 0; i < np; i++) {
		uint32_t r;
		bool dup;
		do {
			r = (uint32_t)rng_below(&w->rng, NR);
			dup = false;
			for (int k = 0; k < i; k++)
				dup |= picked[k] == r;
		} while (dup);
		picked[i] = r;
		names[i] = root_names[r];
	}
	strata_store_stats before = stats_of(w->s);
	txn_ctx c = {.rng = &w->rng, .seed = w->seed, .step = step, .m = w->m};
	int rc = strata_txn_begin(w->s, names, (size_t)np, 0, &c.t);
	cr_assert_eq(rc, 0, "seed %llu step %d: begin %s", (unsigned long long)w->seed, step,
		     strata_strerror(rc));
	cr_assert_eq(strata_txn_base_epoch(c.t), before.epoch_current, "seed %llu step %d",
		     (unsigned long long)w->seed, step);
	for (int i = 0; i < np; i++) {
		c.changed |= !c.m.r[picked[i]].exists; /* a new name is a change */
		c.m.r[picked[i]].exists = true;
	}
	int nops = 1 + (int)rng_below(&w->rng, 4);
	for (int k = 0; k < nops; k++)
		one_op(&c, picked[rng_below(&w->rng, (uint64_t)np)]);

	if (rng_below(&w->rng, 10) < 7) {
		uint64_t e;
		cr_assert_eq(strata_txn_commit(c.t, &e), 0, "seed %llu step %d", (unsigned long long)w->seed, step);
		cr_assert_eq(e, before.epoch_current + (c.changed ? 1 : 0),
			     "seed %llu step %d: commit epoch", (unsigned long long)w->seed, step);
		w->m = c.m;
		for (int i = 0; i < c.nretired; i++)
			w->recent[w->nrecent++ % RECENT] = c.retired[i];
		w->commits++;
		w->published += c.changed;
	} else {
		strata_txn_abort(c.t);
		strata_store_stats after = stats_of(w->s);
		cr_assert_eq(after.epoch_current, before.epoch_current, "seed %llu step %d",
			     (unsigned long long)w->seed, step);
		cr_assert_eq(after.nodes_retired, before.nodes_retired, "seed %llu step %d",
			     (unsigned long long)w->seed, step);
		cr_assert_eq(after.handles_total - after.handles_free,
			     before.handles_total - before.handles_free,
			     "seed %llu step %d: abort left handles in use", (unsigned long long)w->seed, step);
		/* Nodes this txn allocated are gone. */
		strata_snapshot *snap;
		cr_assert_eq(strata_snapshot_open(w->s, &snap), 0);
		const void *d;
		for (int i = 0; i < c.nown; i++)
			cr_assert_eq(strata_resolve(snap, c.own[i], &d, NULL), STRATA_ESTALE,
				     "seed %llu step %d: aborted node survived", (unsigned long long)w->seed, step);
		strata_snapshot_close(snap);
		w->aborts++;
	}
}

/* After each step: the newest state, stats and retired IDs. */
static void verify_now(random_run *w, int step)
{
	strata_store_stats st = stats_of(w->s);
	cr_assert_eq(st.nodes_live, model_live_nodes(&w->m), "seed %llu step %d: live nodes",
		     (unsigned long long)w->seed, step);
	cr_assert_eq(st.nodes_reserved, 0, "seed %llu step %d", (unsigned long long)w->seed, step);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(w->s, &snap), 0);
	cr_assert_eq(strata_snapshot_epoch(snap), st.epoch_current, "seed %llu step %d",
		     (unsigned long long)w->seed, step);
	verify_snapshot(snap, &w->m, w->seed, step);
	int n = w->nrecent < RECENT ? w->nrecent : RECENT;
	for (int i = 0; i < n; i++) {
		const void *d;
		int rc = strata_resolve(snap, w->recent[i], &d, NULL);
		cr_assert(rc == STRATA_ENOTVISIBLE || rc == STRATA_ESTALE,
			  "seed %llu step %d: retired node %#llx resolves (%d)", (unsigned long long)w->seed,
			  step, (unsigned long long)w->recent[i], rc);
	}
	strata_snapshot_close(snap);
}

static void rotate_held(random_run *w, int step)
{
	held_snap *h = &w->held[(step / 150) % HELD];
	strata_snapshot_close(h->snap);
	cr_assert_eq(strata_snapshot_open(w->s, &h->snap), 0);
	h->m = w->m;
	h->step = step;
}

static void verify_held(random_run *w, int step)
{
	for (int i = 0; i < HELD; i++)
		if (w->held[i].snap)
			verify_snapshot(w->held[i].snap, &w->held[i].m, w->seed, step);
}

static void run_random(uint64_t seed, int steps, uint32_t reclaim_interval)
{
	strata_options o;
	strata_options_init(&o);
	o.reclaim_interval = reclaim_interval;
	random_run *w = calloc(1, sizeof *w);
	w->s = test_open(&o);
	w->rng.s = seed;
	w->seed = seed;
	for (int step = 0; step < steps; step++) {
		if (step % 150 == 0)
			rotate_held(w, step);
		random_step(w, step);
		verify_now(w, step);
		if (step % 25 == 0)
			verify_held(w, step);
		if (step % 50 == 0)
			cr_assert_eq(strata_check(w->s, test_report, NULL), 0, "seed %llu step %d",
				     (unsigned long long)seed, step);
		if (step % 97 == 0)
			cr_assert_geq(strata_reclaim(w->s), 0);
	}
	verify_held(w, steps);
	for (int i = 0; i < HELD; i++)
		strata_snapshot_close(w->held[i].snap);
	strata_reclaim(w->s);
	strata_store_stats st = stats_of(w->s);
	cr_assert_eq(st.nodes_retired, 0, "seed %llu: nothing pinned, every retired node is freed",
		     (unsigned long long)seed);
	cr_assert_eq(st.pinned_retired_nodes, 0, "seed %llu", (unsigned long long)seed);
	/* stats count commits that published an epoch; empty ones do not. */
	cr_assert_eq(st.commits, (uint64_t)w->published, "seed %llu", (unsigned long long)seed);
	cr_assert_eq(st.epoch_current, 1 + (uint64_t)w->published, "seed %llu", (unsigned long long)seed);
	cr_assert_eq(st.aborts, (uint64_t)w->aborts, "seed %llu", (unsigned long long)seed);
	cr_assert_gt(w->commits, steps / 2);
	cr_assert_gt(w->aborts, steps / 10);
	test_close(w->s);
	free(w);
}

Test(txn_random, seed_1, .timeout = 300)
{
	run_random(1, 2000, 1);
}

Test(txn_random, seed_2, .timeout = 300)
{
	run_random(0xc0ffee, 2000, 1);
}

Test(txn_random, seed_3_lazy_reclaim, .timeout = 300)
{
	run_random(20240611, 2000, 7);
}
