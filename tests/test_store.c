/*
 * test_store.c — the store as a whole: option validation at open, close
 * refusing while handles are open, strata_strerror for every status,
 * statistics that add up, and the invariant checker shown to catch each
 * kind of corruption (white-box damage, then repair) as well as to pass on
 * a clean store.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "support/model.h"

/* Every test ends with a leak check in ASan builds (see model.h). */
TestSuite(store, .fini = test_leak_check);

static strata_store_stats stats_of(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st;
}

static strata_node_id commit_root(strata_store *s, const char *name, uint32_t size, int fill)
{
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_node_id id;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, size, 0, &id, &p), 0);
	memset(p, fill, size);
	cr_assert_eq(strata_txn_set_root(t, name, id), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	return id;
}

/* ---- open / close ------------------------------------------------------------ */

Test(store, options_init_defaults)
{
	strata_options o;
	memset(&o, 0x5a, sizeof o);
	strata_options_init(&o);
	cr_assert_eq(o.mode, STRATA_IN_MEMORY);
	cr_assert_null(o.path);
	cr_assert_eq(o.ot_shards_max, 64);
	cr_assert_eq(o.ot_shards_initial, 1);
	cr_assert_eq(o.max_snapshots, 1024);
	cr_assert_eq(o.reclaim_interval, 1);
	strata_options_init(NULL); /* harmless */
}

static int open_with(void (*tweak)(strata_options *))
{
	strata_options o;
	strata_options_init(&o);
	tweak(&o);
	strata_store *s = (strata_store *)1;
	int rc = strata_open(&o, &s);
	if (rc)
		cr_assert_null(s, "a failed open leaves *out NULL");
	else
		cr_assert_eq(strata_close(s), 0);
	return rc;
}

static void shards_3(strata_options *o) { o->ot_shards_max = 3; }
static void shards_0(strata_options *o) { o->ot_shards_max = 0; }
static void shards_128(strata_options *o) { o->ot_shards_max = 128; }
static void initial_3(strata_options *o) { o->ot_shards_initial = 3; }
static void initial_0(strata_options *o) { o->ot_shards_initial = 0; }
static void initial_gt_max(strata_options *o) { o->ot_shards_max = 4; o->ot_shards_initial = 8; }
static void snaps_0(strata_options *o) { o->max_snapshots = 0; }
static void interval_0(strata_options *o) { o->reclaim_interval = 0; }
static void bad_mode(strata_options *o) { o->mode = (strata_mode)7; }
static void durable(strata_options *o) { o->mode = STRATA_DURABLE; o->path = "/tmp/strata-test-nowhere"; }
static void durable_no_path(strata_options *o) { o->mode = STRATA_DURABLE; o->path = NULL; }
static void durable_bad_wal(strata_options *o) { durable(o); o->wal_file_size = 3u << 20; }
static void one_shard(strata_options *o) { o->ot_shards_max = 1; o->ot_shards_initial = 1; }
static void all_shards(strata_options *o) { o->ot_shards_max = 64; o->ot_shards_initial = 64; }
static void one_snapshot(strata_options *o) { o->max_snapshots = 1; }

Test(store, open_validates_options)
{
	cr_assert_eq(open_with(shards_3), STRATA_EINVAL);
	cr_assert_eq(open_with(shards_0), STRATA_EINVAL);
	cr_assert_eq(open_with(shards_128), STRATA_EINVAL);
	cr_assert_eq(open_with(initial_3), STRATA_EINVAL);
	cr_assert_eq(open_with(initial_0), STRATA_EINVAL);
	cr_assert_eq(open_with(initial_gt_max), STRATA_EINVAL);
	cr_assert_eq(open_with(snaps_0), STRATA_EINVAL);
	cr_assert_eq(open_with(interval_0), STRATA_EINVAL);
	cr_assert_eq(open_with(bad_mode), STRATA_EINVAL);
	cr_assert_eq(open_with(durable), -ENOENT, "no directory and no STRATA_OPEN_CREATE");
	cr_assert_eq(open_with(durable_no_path), STRATA_EINVAL);
	cr_assert_eq(open_with(durable_bad_wal), STRATA_EINVAL);
	cr_assert_eq(open_with(one_shard), 0);
	cr_assert_eq(open_with(all_shards), 0);
	cr_assert_eq(open_with(one_snapshot), 0);
	cr_assert_eq(strata_open(NULL, NULL), STRATA_EINVAL);
	strata_store *s = NULL;
	cr_assert_eq(strata_open(NULL, &s), 0, "NULL options: defaults");
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.shards_max, 64);
	cr_assert_eq(st.shards_active, 1);
	cr_assert_eq(st.epoch_current, 1, "an empty store is at epoch 1");
	cr_assert_eq(strata_close(s), 0);
	cr_assert_eq(strata_close(NULL), 0);
}

Test(store, close_refuses_while_handles_are_open)
{
	strata_store *s = test_open(NULL);
	strata_node_id id = commit_root(s, "r", 32, 9);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_close(s), STRATA_EBUSY);
	/* Still fully usable after the refusal. */
	const void *d;
	cr_assert_eq(strata_resolve(snap, id, &d, NULL), 0);
	cr_assert_eq(((const unsigned char *)d)[31], 9);
	strata_snapshot_close(snap);

	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	cr_assert_eq(strata_close(s), STRATA_EBUSY);
	strata_txn_abort(t);
	test_close(s);
}

/* ---- strerror ------------------------------------------------------------------ */

Test(store, strerror_covers_every_status)
{
	const int ours[] = {
		STRATA_EINVAL, STRATA_ESTALE, STRATA_ENOTVISIBLE, STRATA_ENOMEM, STRATA_EBUSY,
		STRATA_ENOTLOCKED, STRATA_ETOOBIG, STRATA_EFULL, STRATA_ENOTFOUND, STRATA_ENOTSUP,
		STRATA_ECORRUPT, STRATA_EIO, STRATA_ENOSPC, STRATA_EFORMAT, STRATA_ETRUNCATED,
		STRATA_ESNAPSHOT_TOO_OLD, STRATA_EREADONLY, STRATA_ENAME, STRATA_EEXIST,
		STRATA_EKEYSIZE, STRATA_EWRONGINDEX, STRATA_ECOORD, STRATA_EDIMS,
	};
	const size_t n = sizeof ours / sizeof ours[0];
	const char *unknown = strata_strerror(-10999);
	cr_assert_not_null(unknown);
	cr_assert_gt(strlen(unknown), 0);
	for (size_t i = 0; i < n; i++) {
		cr_assert(ours[i] <= -10000 && ours[i] > -11000, "code %d outside our range", ours[i]);
		const char *m = strata_strerror(ours[i]);
		cr_assert_not_null(m);
		cr_assert_gt(strlen(m), 0, "status %d", ours[i]);
		cr_assert_str_neq(m, unknown, "status %d has no message", ours[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(m, strata_strerror(ours[j]), "%d and %d share a message", ours[i],
					  ours[j]);
	}
	cr_assert_gt(strlen(strata_strerror(STRATA_OK)), 0);
	cr_assert_str_neq(strata_strerror(STRATA_OK), unknown);
	/* -errno values read as errno. */
	const int errs[] = {ENOMEM, EIO, ENOSPC, EINVAL, EBUSY, EACCES};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		const char *m = strata_strerror(-errs[i]);
		cr_assert_not_null(m);
		cr_assert_gt(strlen(m), 0);
		cr_assert_str_eq(m, strerror(errs[i]));
	}
	/* Out of every range: still a string. */
	const int odd[] = {1, 12345, -9999, -11000, -10000, INT32_MIN, INT32_MAX};
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		cr_assert_not_null(strata_strerror(odd[i]));
		cr_assert_gt(strlen(strata_strerror(odd[i])), 0, "status %d", odd[i]);
	}
}

Test(store, version_string)
{
	const char *v = strata_version();
	cr_assert_not_null(v);
	unsigned a, b, c;
	cr_assert_eq(sscanf(v, "%u.%u.%u", &a, &b, &c), 3, "version '%s'", v);
}

Test(store, null_arguments)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(NULL, &st), STRATA_EINVAL);
	cr_assert_eq(strata_check(NULL, NULL, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_reclaim(NULL), STRATA_EINVAL);
	strata_store *s = test_open(NULL);
	cr_assert_eq(strata_stats(s, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_snapshot_open(s, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_snapshot_epoch(NULL), 0);
	test_close(s);
}

/* ---- statistics ------------------------------------------------------------------ */

Test(store, empty_store_stats)
{
	strata_store *s = test_open(NULL);
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.nodes_live + st.nodes_retired + st.nodes_reserved, 0);
	cr_assert_eq(st.segment_bytes, 0);
	cr_assert_eq(st.large_objects, 0);
	cr_assert_eq(st.fragmentation, 0.0);
	cr_assert_eq(st.epoch_oldest_pinned, st.epoch_current);
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++)
		cr_assert_eq(st.classes[c].slot_size, seg_class_size(c));
	test_close(s);
}

Test(store, stats_add_up)
{
	strata_store *s = test_open(NULL);
	const uint32_t sizes[] = {1, 64, 65, 500, 513, 4000, 4096, 65536, 65537, 300000, 70, 70, 70};
	const size_t n = sizeof sizes / sizeof sizes[0];
	uint64_t used[STRATA_NUM_CLASSES] = {0}, req[STRATA_NUM_CLASSES] = {0};
	uint64_t large = 0, large_bytes = 0;
	strata_txn *t;
	const char *name = "r";
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_node_id ids[16];
	for (size_t i = 0; i < n; i++) {
		void *p;
		cr_assert_eq(strata_txn_alloc(t, sizes[i], (uint8_t)i, &ids[i], &p), 0);
		unsigned c = seg_class_of(sizes[i]);
		if (c == STRATA_CLASS_LARGE) {
			large++;
			large_bytes += sizes[i];
		} else {
			used[c]++;
			req[c] += sizes[i];
		}
	}
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.nodes_reserved, n);
	cr_assert_eq(st.nodes_live, 0);
	cr_assert_eq(st.snapshots_open, 1, "the open transaction holds a slot");
	uint64_t e;
	cr_assert_eq(strata_txn_set_root(t, name, ids[0]), 0);
	cr_assert_eq(strata_txn_commit(t, &e), 0);

	st = stats_of(s);
	cr_assert_eq(st.nodes_live, n);
	cr_assert_eq(st.nodes_reserved, 0);
	cr_assert_eq(st.handles_total, n);
	cr_assert_eq(st.handles_free, 0);
	cr_assert_eq(st.epoch_current, e);
	cr_assert_eq(st.commits, 1);
	cr_assert_eq(st.large_objects, large);
	cr_assert_eq(st.large_bytes, large_bytes);
	uint64_t seg_bytes = 0, requested = large_bytes;
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++) {
		const strata_class_stats *cs = &st.classes[c];
		cr_assert_eq(cs->slot_size, seg_class_size(c));
		cr_assert_eq(cs->slots_used, used[c], "class %u", c);
		cr_assert_eq(cs->bytes_requested, req[c], "class %u", c);
		cr_assert_eq(cs->bytes_used, cs->slots_used * cs->slot_size);
		cr_assert_eq(cs->segments, used[c] ? 1 : 0, "class %u", c);
		cr_assert_geq(cs->slots_total, cs->slots_used);
		cr_assert_leq(cs->slots_total * cs->slot_size, cs->segments * SEG_SIZE);
		seg_bytes += cs->segments * SEG_SIZE;
		requested += cs->bytes_requested;
	}
	cr_assert_eq(st.segment_bytes, seg_bytes);
	cr_assert(st.fragmentation >= 0.0 && st.fragmentation <= 1.0, "fragmentation %f", st.fragmentation);
	double want = 1.0 - (double)requested / (double)(seg_bytes + large_bytes);
	cr_assert(fabs(st.fragmentation - want) < 1e-9, "fragmentation %f, want %f", st.fragmentation, want);

	/* node_stat agrees with the allocator's view. */
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (size_t i = 0; i < n; i++) {
		strata_node_info info;
		cr_assert_eq(strata_node_stat(snap, ids[i], &info), 0);
		cr_assert_eq(info.size, sizes[i]);
		cr_assert_eq(info.kind, (uint8_t)i);
		unsigned c = seg_class_of(sizes[i]);
		cr_assert_eq(info.size_class, c == STRATA_CLASS_LARGE ? STRATA_CLASS_LARGE : c);
		cr_assert_eq(info.birth, e);
	}
	strata_snapshot_close(snap);
	test_close(s);
}

Test(store, shards_in_stats_follow_options)
{
	strata_options o;
	strata_options_init(&o);
	o.ot_shards_max = 8;
	o.ot_shards_initial = 4;
	strata_store *s = test_open(&o);
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.shards_max, 8);
	cr_assert_eq(st.shards_active, 4);
	test_close(s);
}

/* ---- the checker must fail when it should -------------------------------------------- */

/* Runs the checker expecting corruption whose report mentions `what`. */
static void expect_corrupt(strata_store *s, const char *what)
{
	test_collect c = {0};
	int rc = strata_check(s, test_report_collect, &c);
	cr_assert_eq(rc, STRATA_ECORRUPT, "checker missed: %s", what);
	cr_assert_gt(c.n, 0, "no message reported");
	cr_assert_not_null(strstr(c.all, what), "expected a report about '%s', got:\n%s", what, c.all);
	cr_assert_eq(strata_check(s, NULL, NULL), STRATA_ECORRUPT, "a NULL reporter changes nothing");
}

static void expect_clean(strata_store *s)
{
	test_collect c = {0};
	cr_assert_eq(strata_check(s, test_report_collect, &c), 0, "unexpected:\n%s", c.all);
	cr_assert_eq(c.n, 0);
}

static ot_entry *entry_of(strata_store *s, strata_node_id id)
{
	ot_entry *e = ot_entry_of(&s->ot, id);
	cr_assert_not_null(e);
	return e;
}

Test(store, check_passes_on_a_busy_clean_store)
{
	strata_store *s = test_open(NULL);
	expect_clean(s);
	for (int i = 0; i < 50; i++)
		commit_root(s, i % 2 ? "odd" : "even", 10 + (uint32_t)i * 1000, i);
	expect_clean(s);
	test_close(s);
}

Test(store, check_catches_retired_birth_after_retire)
{
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "r", 100, 1);
	strata_snapshot *pin; /* keeps a RETIRED instead of freed */
	cr_assert_eq(strata_snapshot_open(s, &pin), 0);
	const char *name = "r";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_txn_free(t, a), 0);
	cr_assert_eq(strata_txn_set_root(t, name, STRATA_NODE_NULL), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	ot_entry *e = entry_of(s, a);
	cr_assert_eq(OT_META_STATE(atomic_load(&e->meta)), OT_RETIRED);
	expect_clean(s);
	uint64_t birth = ot_birth(e);
	ot_stamp_set(&e->bstamp, ot_retire(e) + 1);
	expect_corrupt(s, "birth");
	ot_stamp_set(&e->bstamp, birth);
	expect_clean(s);
	strata_snapshot_close(pin);
	test_close(s);
}

Test(store, check_catches_live_node_with_retire_epoch)
{
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "r", 100, 1);
	ot_entry *e = entry_of(s, a);
	ot_stamp_set(&e->rstamp, 1);
	expect_corrupt(s, "live but retired");
	ot_stamp_set(&e->rstamp, EPOCH_INF);
	expect_clean(s);
	/* A live node born in the future. */
	uint64_t birth = ot_birth(e);
	ot_stamp_set(&e->bstamp, 1000);
	expect_corrupt(s, "live with birth");
	ot_stamp_set(&e->bstamp, birth);
	expect_clean(s);
	test_close(s);
}

/* No write transaction is open while the checker runs (it waits for them):
 * a reserved entry then is one a transaction leaked, whatever its birth. */
Test(store, check_catches_a_reserved_node_outside_a_transaction)
{
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "r", 40, 1);
	ot_entry *e = entry_of(s, a);
	uint32_t m = atomic_load(&e->meta);
	uint64_t birth = ot_birth(e);
	expect_clean(s);
	atomic_store(&e->meta, OT_META(OT_META_TAG(m), OT_RESERVED));
	expect_corrupt(s, "reserved, but no write transaction is open");
	expect_corrupt(s, "reserved but birth");
	ot_stamp_set(&e->bstamp, EPOCH_PENDING | 5);
	expect_corrupt(s, "reserved, but no write transaction is open");
	ot_stamp_set(&e->bstamp, birth);
	atomic_store(&e->meta, m);
	expect_clean(s);
	test_close(s);
}

Test(store, check_catches_a_slot_freed_behind_the_tables_back)
{
	/* The only node of its class, so the allocator hands the same slot
	 * back when we repair. */
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "r", 3000, 1);
	ot_entry *e = entry_of(s, a);
	void *p = entry_data(e);
	seg_free_node(&s->seg, p, 3000); /* clears the slot's bitmap bit */
	cr_assert_not(seg_slot_in_use(&s->seg, p, 3000));
	expect_corrupt(s, "not an allocated slot");
	expect_corrupt(s, "slots used");
	void *q = seg_alloc_node(&s->seg, 3000);
	cr_assert_eq(q, p, "repair took another slot");
	expect_clean(s);
	test_close(s);
}

Test(store, check_catches_counter_drift)
{
	strata_store *s = test_open(NULL);
	commit_root(s, "r", 100, 1);
	commit_root(s, "big", 100000, 1);
	atomic_fetch_add(&s->nodes_live, 1);
	expect_corrupt(s, "live counter");
	atomic_fetch_sub(&s->nodes_live, 1);
	atomic_fetch_add(&s->nodes_retired, 1);
	expect_corrupt(s, "retired counter");
	atomic_fetch_sub(&s->nodes_retired, 1);
	atomic_fetch_add(&s->seg.large_objects, 1);
	expect_corrupt(s, "large objects");
	atomic_fetch_sub(&s->seg.large_objects, 1);
	unsigned c = seg_class_of(100);
	atomic_fetch_add(&s->seg.classes[c].segments, 1);
	expect_corrupt(s, "counters say");
	atomic_fetch_sub(&s->seg.classes[c].segments, 1);
	expect_clean(s);
	test_close(s);
}

Test(store, check_catches_shard_handle_accounting)
{
	strata_store *s = test_open(NULL);
	commit_root(s, "r", 100, 1);
	ot_shard *sh = &s->ot.shards[0];
	sh->dead++;
	expect_corrupt(s, "issued");
	sh->dead--;
	expect_clean(s);
	test_close(s);
}

Test(store, check_catches_a_root_naming_an_invisible_node)
{
	strata_store *s = test_open(NULL);
	strata_node_id a = commit_root(s, "r", 100, 1);
	root *r = catalog_find(&s->cat, "r", 1);
	cr_assert_not_null(r);
	root_version *head = atomic_load(&r->head);
	cr_assert_eq(head->id, a);
	/* Point the newest version at a handle that was never issued. */
	head->id = ot_make_id(0, 999, 1);
	expect_corrupt(s, "root 'r'");
	head->id = a + (1ull << 36); /* same handle, wrong tag */
	expect_corrupt(s, "not visible");
	head->id = a;
	expect_clean(s);
	test_close(s);
}
